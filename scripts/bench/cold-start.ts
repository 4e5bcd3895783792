/**
 * `npm run bench:cold-start [-- --iterations 9] [-- --entry name=path/to/index.ts]`
 *
 * Per service: the median time a fresh `node` takes to load the service and register its
 * functions (through a fake @azure/functions-core, as the Functions worker provides it), for the
 * esbuild bundle against the same code loaded unbundled from node_modules (own TypeScript
 * transpiled, packages external). Also the bundle and zip sizes, and what each package the
 * service imports at load time costs on its own, so a slow start can be traced to an import.
 */
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import path from "node:path";
import { promisify } from "node:util";
import { build } from "esbuild";
import { buildServiceBundle, type ServiceBundle } from "../bundle/build";
import { formatBytes } from "../bundle/report";
import { distDir, hostJsonPath, repoRoot, serviceEntries } from "../bundle/services";

const run = promisify(execFile);
const loader = path.join(repoRoot, "scripts/bench/load-service.cjs");

/** Goals from the deployment design: per service. */
export const goals = { maxRatio: 0.35, maxBundledMs: 150, maxZipBytes: 1.5 * 1024 * 1024 } as const;

interface Target {
  readonly name: string;
  readonly entry: string;
}

interface LoadResult {
  loadMs: number;
  functions: string[];
  atStart: Record<string, number>;
  firstUseMs: number;
  firstUse: Record<string, number>;
}

interface Side {
  readonly startMs: number;
  readonly firstUseMs: number;
  /** Per package (and deferred.js itself), the median ms. */
  readonly atStart: Readonly<Record<string, number>>;
  readonly firstUse: Readonly<Record<string, number>>;
}

interface Measurement {
  readonly name: string;
  readonly functions: number;
  readonly bundled: Side;
  readonly unbundled: Side;
  readonly bundle: ServiceBundle;
}

export function median(values: readonly number[]): number {
  if (values.length === 0) throw new Error("median of nothing");
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

async function loadOnce(file: string, firstUse: readonly string[]): Promise<LoadResult> {
  const args = [loader, file, ...(firstUse.length > 0 ? [firstUse.join(",")] : [])];
  const { stdout } = await run(process.execPath, args, { cwd: repoRoot });
  return JSON.parse(stdout) as LoadResult;
}

function summarise(results: readonly LoadResult[]): Side {
  const medians = (pick: (r: LoadResult) => Record<string, number>) => {
    const keys = new Set(results.flatMap((r) => Object.keys(pick(r))));
    return Object.fromEntries([...keys].map((k) => [k, median(results.map((r) => pick(r)[k] ?? 0))]));
  };
  return {
    startMs: median(results.map((r) => r.loadMs)),
    firstUseMs: median(results.map((r) => r.firstUseMs)),
    atStart: medians((r) => r.atStart),
    firstUse: medians((r) => r.firstUse),
  };
}

/** The service's own TypeScript in one file, packages left to node_modules. */
async function buildUnbundled(target: Target): Promise<string> {
  const file = path.join(distDir, ".bench", target.name, "main.js");
  await build({ entryPoints: [target.entry], outfile: file, bundle: true, packages: "external", platform: "node", target: "node20", format: "cjs", logLevel: "silent" });
  return file;
}

async function measure(target: Target, iterations: number): Promise<Measurement> {
  const bundle = await buildServiceBundle({ name: target.name, entry: target.entry, hostJson: hostJsonPath, outDir: distDir });
  const unbundledFile = await buildUnbundled(target);
  const bundledFile = path.join(bundle.packageDir, "main.js");
  const firstUse = bundle.deferredPackages;
  const bundled: LoadResult[] = [];
  const plain: LoadResult[] = [];
  await loadOnce(bundledFile, firstUse); // warm the file cache once for both sides
  await loadOnce(unbundledFile, firstUse);
  // Interleaved, so drift in machine load hits both sides alike.
  for (let i = 0; i < iterations; i++) {
    const b = await loadOnce(bundledFile, firstUse);
    const u = await loadOnce(unbundledFile, firstUse);
    if (b.functions.length === 0) throw new Error(`${target.name}: the bundle registered no functions`);
    if (b.functions.join() !== u.functions.join()) {
      throw new Error(`${target.name}: bundled registered ${b.functions.join(",")} but unbundled ${u.functions.join(",")}`);
    }
    bundled.push(b);
    plain.push(u);
  }
  return { name: target.name, functions: bundled[0]!.functions.length, bundled: summarise(bundled), unbundled: summarise(plain), bundle };
}

function verdict(ok: boolean): string {
  return ok ? "ok" : "MISSED";
}

function table(header: readonly string[], rows: readonly (readonly string[])[]): string[] {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  const line = (cells: readonly string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(" | ")} |`;
  return [line(header), `|${widths.map((w) => "-".repeat(w + 2)).join("|")}|`, ...rows.map(line)];
}

const ms = (n: number) => n.toFixed(1);

export function formatReport(results: readonly Measurement[], iterations: number): string {
  const out = [
    `cold start: median of ${iterations} fresh node ${process.version} processes per variant`,
    "start = require of the entry until its functions are registered; first use = then loading every package the service defers (its SDK clients, telemetry)",
    ...table(
      ["service", "fns", "start bundled", "start unbundled", "ratio", "first use bundled", "first use unbundled", "main.js", "deferred.js", "zip", "goals (<=0.35x, <=150 ms, zip <=1.5 MB)"],
      results.map((r) => {
        const ratio = r.bundled.startMs / r.unbundled.startMs;
        const goalText = [ratio <= goals.maxRatio, r.bundled.startMs <= goals.maxBundledMs, r.bundle.zipBytes <= goals.maxZipBytes].map(verdict).join(" / ");
        return [
          r.name,
          String(r.functions),
          `${ms(r.bundled.startMs)} ms`,
          `${ms(r.unbundled.startMs)} ms`,
          `${ratio.toFixed(2)}x`,
          `${ms(r.bundled.firstUseMs)} ms`,
          `${ms(r.unbundled.firstUseMs)} ms`,
          formatBytes(r.bundle.bundleBytes),
          formatBytes(r.bundle.deferredBytes),
          formatBytes(r.bundle.zipBytes),
          goalText,
        ];
      }),
    ),
  ];
  for (const r of results) {
    const packages = [...new Set([...Object.keys(r.unbundled.atStart), ...Object.keys(r.unbundled.firstUse), ...Object.keys(r.bundled.firstUse)])];
    out.push(`${r.name}: what each package costs (median ms; unbundled = require from node_modules, bundled = evaluate inside deferred.js)`);
    out.push(
      ...table(
        ["package", "when", "unbundled", "bundled"],
        packages.map((p) => [
          p,
          p in r.unbundled.atStart ? "start" : "first use",
          p in r.unbundled.atStart ? ms(r.unbundled.atStart[p]!) : p in r.unbundled.firstUse ? ms(r.unbundled.firstUse[p]!) : "-",
          p in r.bundled.firstUse ? ms(r.bundled.firstUse[p]!) : "(in main.js)",
        ]),
      ),
    );
    out.push(`${r.name}: largest bundle inputs: ${r.bundle.largestInputs.slice(0, 6).map((i) => `${i.name} ${formatBytes(i.bytes)}`).join(", ")}`);
  }
  return out.join("\n");
}

function parseArgs(argv: readonly string[]): { iterations: number; targets: Target[] } {
  let iterations = 9;
  const extra: Target[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const value = argv[i + 1];
    if (arg === "--iterations" && value) {
      iterations = Number(value);
      if (!Number.isInteger(iterations) || iterations < 1) throw new Error(`--iterations must be a positive integer, got ${value}`);
      i++;
    } else if (arg === "--entry" && value && /^[\w-]+=.+/.test(value)) {
      const [name, entry] = [value.slice(0, value.indexOf("=")), value.slice(value.indexOf("=") + 1)];
      extra.push({ name, entry: path.resolve(entry) });
      i++;
    } else {
      throw new Error(`unknown argument ${arg}; use --iterations N and --entry name=path/to/index.ts`);
    }
  }
  const services = Object.entries(serviceEntries).map(([name, entry]) => ({ name, entry: path.join(repoRoot, entry) }));
  const targets = extra.length > 0 ? extra : services.filter((s) => existsSync(s.entry));
  for (const s of services) if (extra.length === 0 && !existsSync(s.entry)) console.log(`${s.name}: skipped, no entry point at ${path.relative(repoRoot, s.entry)} yet`);
  if (targets.length === 0) throw new Error("nothing to measure");
  return { iterations, targets };
}

async function main(): Promise<void> {
  const { iterations, targets } = parseArgs(process.argv.slice(2));
  const results: Measurement[] = [];
  for (const target of targets) results.push(await measure(target, iterations));
  console.log(formatReport(results, iterations));
}

if (require.main === module) {
  main().catch((error: unknown) => {
    console.error(`cold-start benchmark failed: ${error instanceof Error ? error.message : String(error)}`);
    process.exitCode = 1;
  });
}
