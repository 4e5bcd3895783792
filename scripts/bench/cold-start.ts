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

interface Measurement {
  readonly name: string;
  readonly bundledMs: number;
  readonly unbundledMs: number;
  readonly functions: number;
  readonly bundle: ServiceBundle;
  readonly importCosts: readonly { name: string; ms: number }[];
}

export function median(values: readonly number[]): number {
  if (values.length === 0) throw new Error("median of nothing");
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

async function loadOnce(file: string): Promise<{ loadMs: number; functions: string[] }> {
  const { stdout } = await run(process.execPath, [loader, file], { cwd: repoRoot });
  return JSON.parse(stdout) as { loadMs: number; functions: string[] };
}

/** The service's own TypeScript in one file, packages left to node_modules; and which it requires. */
async function buildUnbundled(target: Target): Promise<{ file: string; packages: string[] }> {
  const file = path.join(distDir, ".bench", target.name, "main.js");
  const result = await build({
    entryPoints: [target.entry],
    outfile: file,
    bundle: true,
    packages: "external",
    platform: "node",
    target: "node20",
    format: "cjs",
    metafile: true,
    logLevel: "silent",
  });
  const imports = Object.values(result.metafile.outputs).flatMap((o) => o.imports.filter((i) => i.external).map((i) => i.path));
  const packages = [...new Set(imports.filter((p) => !p.startsWith("node:") && p !== "@azure/functions-core"))].sort();
  return { file, packages };
}

/** What `require(pkg)` alone costs in a fresh process (median of `runs`). */
async function importCost(pkg: string, runs: number): Promise<number> {
  const script = `const {performance}=require("node:perf_hooks");const t=performance.now();require(${JSON.stringify(pkg)});process.stdout.write(String(performance.now()-t))`;
  const times: number[] = [];
  for (let i = 0; i < runs; i++) times.push(Number((await run(process.execPath, ["-e", script], { cwd: repoRoot })).stdout));
  return median(times);
}

async function measure(target: Target, iterations: number): Promise<Measurement> {
  const bundle = await buildServiceBundle({ name: target.name, entry: target.entry, hostJson: hostJsonPath, outDir: distDir });
  const unbundled = await buildUnbundled(target);
  const bundledFile = path.join(bundle.packageDir, "main.js");
  const bundled: number[] = [];
  const plain: number[] = [];
  let functions = 0;
  await loadOnce(bundledFile); // warm the file cache once for both sides
  await loadOnce(unbundled.file);
  // Interleaved, so drift in machine load hits both sides alike.
  for (let i = 0; i < iterations; i++) {
    const b = await loadOnce(bundledFile);
    const u = await loadOnce(unbundled.file);
    if (b.functions.length === 0) throw new Error(`${target.name}: the bundle registered no functions`);
    if (b.functions.length !== u.functions.length) {
      throw new Error(`${target.name}: bundled registered ${b.functions.join(",")} but unbundled ${u.functions.join(",")}`);
    }
    functions = b.functions.length;
    bundled.push(b.loadMs);
    plain.push(u.loadMs);
  }
  const importCosts = [];
  for (const pkg of unbundled.packages) importCosts.push({ name: pkg, ms: await importCost(pkg, 3) });
  importCosts.sort((a, b) => b.ms - a.ms);
  return { name: target.name, bundledMs: median(bundled), unbundledMs: median(plain), functions, bundle, importCosts };
}

function verdict(ok: boolean): string {
  return ok ? "ok" : "MISSED";
}

export function formatTable(results: readonly Measurement[], iterations: number): string {
  const header = ["service", "fns", "bundled ms", "unbundled ms", "ratio", "main.js", "deferred.js", "zip", "goals (<=0.35x, <=150 ms, zip <=1.5 MB)"];
  const rows = results.map((r) => {
    const ratio = r.bundledMs / r.unbundledMs;
    const goalText = [
      verdict(ratio <= goals.maxRatio),
      verdict(r.bundledMs <= goals.maxBundledMs),
      verdict(r.bundle.zipBytes <= goals.maxZipBytes),
    ].join(" / ");
    return [r.name, String(r.functions), r.bundledMs.toFixed(1), r.unbundledMs.toFixed(1), `${ratio.toFixed(2)}x`, formatBytes(r.bundle.bundleBytes), formatBytes(r.bundle.deferredBytes), formatBytes(r.bundle.zipBytes), goalText];
  });
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  const line = (cells: readonly string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(" | ")} |`;
  const out = [
    `cold start: median of ${iterations} fresh node ${process.version} processes per variant; time = require of the entry until its functions are registered`,
    line(header),
    `|${widths.map((w) => "-".repeat(w + 2)).join("|")}|`,
    ...rows.map(line),
  ];
  for (const r of results) {
    out.push(`${r.name}: packages imported at load time, each alone in a fresh node (median of 3):`);
    for (const c of r.importCosts) out.push(`  ${c.ms.toFixed(1).padStart(7)} ms  ${c.name}`);
    out.push(`${r.name}: largest bundle inputs: ${r.bundle.largestInputs.slice(0, 5).map((i) => `${i.name} ${formatBytes(i.bytes)}`).join(", ")}`);
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
  console.log(formatTable(results, iterations));
}

if (require.main === module) {
  main().catch((error: unknown) => {
    console.error(`cold-start benchmark failed: ${error instanceof Error ? error.message : String(error)}`);
    process.exitCode = 1;
  });
}
