/**
 * `npm run test:new-service`: the generator end to end, the slow way, in a scratch copy of the
 * repository (this one is not touched). It generates a queue-triggered `notifier` and an
 * HTTP-triggered `status` with the real command, then typechecks the whole copy and runs, there,
 * the generated services' own tests (under the local Functions host) and the suites that depend on
 * the registry: the program under mocks, the content deployments, the service packages, the local
 * platform's mirror of a deployed stack, and the whole local platform as `npm start` runs it.
 * Prints each step's duration. `--keep` leaves the copy for a look.
 *
 * tests/scripts/new-service-e2e.test.ts checks the cheap part of this in `npm test`.
 */
import { spawn } from "node:child_process";
import { rm } from "node:fs/promises";
import { repoRoot } from "../bundle/services";
import { scratchCopy, unusedServiceName } from "./scratch";

/** The suites that read the registry, run in the copy beside the generated services' own tests. */
const registrySuites = [
  "tests/infrastructure/platform.test.ts",
  "tests/deploy/platform-deployments.test.ts",
  "tests/deploy/service-packages.test.ts",
  "tests/local/local-mirror.test.ts",
  "tests/local/platform.test.ts",
];

function step(cwd: string, command: string, args: readonly string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd, stdio: "inherit" });
    child.once("error", reject);
    child.once("exit", (code, signal) => (code === 0 ? resolve() : reject(new Error(`${command} ${args.join(" ")} failed (${signal ?? `exit code ${code}`})`))));
  });
}

async function main(argv: readonly string[]): Promise<void> {
  const keep = argv.includes("--keep");
  const timings: [string, number][] = [];
  const timed = async (what: string, work: () => Promise<unknown>) => {
    process.stdout.write(`\n▶ ${what}\n`);
    const started = performance.now();
    await work();
    const seconds = (performance.now() - started) / 1000;
    timings.push([what, seconds]);
    process.stdout.write(`✓ ${what} (${seconds.toFixed(1)} s)\n`);
  };
  let scratch: string | undefined;
  try {
    await timed("scratch copy of the repository (node_modules linked)", async () => {
      scratch = await scratchCopy(repoRoot);
      process.stdout.write(`  ${scratch}\n`);
    });
    const node = (...args: string[]) => step(scratch!, process.execPath, args);
    const generated = [
      [unusedServiceName(repoRoot, "notifier"), "queue"],
      [unusedServiceName(repoRoot, "status"), "http"],
    ] as const;
    for (const [name, trigger] of generated) {
      await timed(`npm run new:service -- ${name} --trigger ${trigger}`, () => node("--import", "tsx", "scripts/new-service/cli.ts", name, "--trigger", trigger));
    }
    await timed("tsc --noEmit (the whole copy)", () => node("node_modules/typescript/bin/tsc", "--noEmit", "-p", "tsconfig.json"));
    const suites = [...generated.map(([name]) => `tests/functions/${name}.test.ts`), ...registrySuites];
    await timed(`vitest: ${suites.length} files`, () => node("node_modules/vitest/vitest.mjs", "run", ...suites));
  } finally {
    process.stdout.write(`\n${timings.map(([what, seconds]) => `  ${seconds.toFixed(1).padStart(6)} s  ${what}`).join("\n")}\n`);
    if (scratch && !keep) await rm(scratch, { recursive: true, force: true });
    else if (scratch) process.stdout.write(`Kept ${scratch}\n`);
  }
}

main(process.argv.slice(2)).catch((error: unknown) => {
  process.stderr.write(`test:new-service failed: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exitCode = 1;
});
