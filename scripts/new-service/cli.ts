/**
 * `npm run new:service -- <name> --trigger http|queue [--from <service>] [--description <text>]`:
 * scaffolds a service (functions/src/<name>/, its registry entry, for a queue trigger its queue, a
 * first test) and says what it wrote and what comes next. Bad input changes nothing.
 */
import { parseArgs } from "node:util";
import { repoRoot } from "../bundle/services";
import { newService, NewServiceError, triggers, type NewServiceOptions, type NewServicePlan } from "./scaffold";
import { pascalCase, type Trigger } from "./templates";

export const usage = `Usage: npm run new:service -- <name> --trigger http|queue [options]

Scaffolds a service: functions/src/<name>/ (entry, handlers, clients), its entry in
functions/src/services.ts, a first test in tests/functions/<name>.test.ts, and for a queue trigger a
queue named <name> in functions/src/resources.ts that the service receives from. The service gets
its own Function App, plan and identity with the role assignments of its links on the next
\`pulumi up\`, its own bundle, and its own process under \`npm start\`.

<name>: 2 to 16 lowercase letters or digits, starting with a letter.

Options:
  --trigger http|queue    http: GET /api/hello on the next free local port
                          queue: its own queue, with a dead-letter handler
  --from <service>        (queue) link an existing service to the new queue for "send"
  --description <text>    the service's one line in the registry
  --help                  show this text`;

export class UsageError extends Error {
  override readonly name = "UsageError";
}

export function parseNewServiceArgs(argv: readonly string[]): NewServiceOptions | "help" {
  let parsed;
  try {
    parsed = parseArgs({
      args: [...argv],
      allowPositionals: true,
      options: { trigger: { type: "string" }, from: { type: "string" }, description: { type: "string" }, help: { type: "boolean", short: "h" } },
    });
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  if (parsed.values.help) return "help";
  const [name, ...extra] = parsed.positionals;
  if (name === undefined) throw new UsageError("the service name is missing");
  if (extra.length > 0) throw new UsageError(`one service at a time; unexpected: ${extra.join(" ")}`);
  const trigger = parsed.values.trigger;
  if (trigger === undefined) throw new UsageError(`--trigger is missing: one of ${triggers.join(", ")}`);
  if (!(triggers as readonly string[]).includes(trigger)) throw new UsageError(`unknown trigger "${trigger}"; one of: ${triggers.join(", ")}`);
  return {
    name,
    trigger: trigger as Trigger,
    ...(parsed.values.from !== undefined ? { from: parsed.values.from } : {}),
    ...(parsed.values.description !== undefined ? { description: parsed.values.description } : {}),
  };
}

/** What the user reads after a service was written. */
export function report(plan: NewServicePlan, from: string | undefined): string {
  const lines = [`Created the ${plan.name} service (${plan.trigger} trigger):`];
  for (const edit of plan.edits) lines.push(`  edited   ${edit.path}`);
  for (const file of plan.creates) lines.push(`  created  ${file.path}`);
  lines.push("");
  if (plan.trigger === "http") lines.push(`Under \`npm start\` it answers on http://127.0.0.1:${plan.localPort}/api/hello (\`--${plan.name}-port N\` moves it).`);
  if (plan.sendLink) {
    if (from) {
      lines.push(`${from} may now send to the ${plan.name} queue (${plan.sendLink} in its links): use ${pascalCase(plan.name)}Queue from functions/src/shared/${plan.name}-queue.ts.`);
    } else {
      lines.push(
        `Nothing sends to the ${plan.name} queue yet. To let a service send, add this to its links in functions/src/services.ts:`,
        `    ${plan.sendLink},`,
        `and send with ${pascalCase(plan.name)}Queue from functions/src/shared/${plan.name}-queue.ts.`,
      );
    }
  }
  lines.push(
    `Next: npx vitest run tests/functions/${plan.name}.test.ts, then npm start (it runs as its own process),`,
    `npm run bundle -- ${plan.name} (its package), and pulumi up (its own Function App, plan, identity and grants).`,
  );
  return lines.join("\n");
}

/** Where the command line writes. */
export interface Output {
  out(text: string): void;
  err(text: string): void;
}

/** The command line against the repository at `root`; resolves to the exit code (2: refused, nothing changed). */
export async function runNewService(argv: readonly string[], root: string, output: Output): Promise<number> {
  let options: NewServiceOptions | "help";
  try {
    options = parseNewServiceArgs(argv);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    output.err(`new:service: ${error.message}\n\n${usage}\n`);
    return 2;
  }
  if (options === "help") {
    output.out(`${usage}\n`);
    return 0;
  }
  try {
    const plan = await newService(root, options);
    output.out(`${report(plan, options.from)}\n`);
    return 0;
  } catch (error) {
    output.err(`new:service: ${(error as Error).message}${error instanceof NewServiceError ? "\nNothing was changed." : ""}\n`);
    return error instanceof NewServiceError ? 2 : 1;
  }
}

if (require.main === module) {
  const output: Output = { out: (text) => process.stdout.write(text), err: (text) => process.stderr.write(text) };
  void runNewService(process.argv.slice(2), repoRoot, output).then((code) => {
    process.exitCode = code;
  });
}
