/**
 * `npm run bench:cold-start [-- --iterations 9] [--telemetry on|off] [--entry name=path/to/index.ts]`
 *
 * Per service, the esbuild bundle against the same code loaded unbundled from node_modules (own
 * TypeScript transpiled, packages external), medians of fresh processes, interleaved:
 *
 * 1. The first request after a cold start (first-request.ts): on the local platform, from the fork
 *    of the host process to the end of the api's first POST /api/jobs, and to the end of the agent's
 *    first message. Telemetry on by default (a local ingestion endpoint), as in Azure. Beside it the
 *    floor (floor-app.ts: the same trigger with a handler that does nothing) and the bundle warmed
 *    (its first request once its start-up warm-up has ended, as on an always-ready instance).
 * 2. What the load itself costs: a fresh `node` requiring the service and registering its functions
 *    (through a fake @azure/functions-core, as the Functions worker provides it), then loading every
 *    package it defers to first use, and what each package costs on its own, so a slow start can be
 *    traced to an import. (`--entry` measures only this, for any entry.)
 */
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import { cpus, loadavg } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { build } from "esbuild";
import { buildService, buildServiceBundle, type ServiceBundle } from "../bundle/build";
import { rootName } from "../bundle/chunks";
import { serviceNames, type ServiceName } from "../../functions/src/services";
import { formatBytes } from "../bundle/report";
import { startIngestionEndpoint } from "./ingestion-endpoint";
import { distDir, hostJsonPath, repoRoot, serviceEntries } from "../bundle/services";
import { FREE_PORTS, startLocalPlatform } from "../../local/platform";
import {
  compileHostChild,
  measureFirstRequest,
  type ColdStartService,
  type FirstRequestOptions,
  type FirstRequestSample,
} from "./first-request";

const run = promisify(execFile);
const loader = path.join(repoRoot, "scripts/bench/load-service.cjs");

/** Goals from the deployment design, per service: loading (registration) and the first request after a cold start. */
export const goals = { maxRatio: 0.35, maxBundledMs: 150, maxZipBytes: 1.5 * 1024 * 1024, maxFirstRequestMs: 400, maxFirstRequestRatio: 0.3 } as const;

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

async function loadOnce(file: string, loads: string): Promise<LoadResult> {
  const args = [loader, file, loads];
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

/** A bench build of one service: the bundle, and the same code unbundled with its first-use loads listed for load-service.cjs. */
interface Builds {
  readonly bundle: ServiceBundle;
  /** The service's own TypeScript in one file, packages left to node_modules. */
  readonly unbundledFile: string;
  /** What load-service.cjs loads on first use, for each side (JSON files). */
  readonly loads: { readonly bundled: string; readonly unbundled: string };
}

/** A registry service is built as `npm run bundle` builds it (into dist/, assets included); any other entry beside it. */
const isServiceName = (name: string): name is ServiceName => (serviceNames as readonly string[]).includes(name);

async function buildBoth(target: Target): Promise<Builds> {
  const service = isServiceName(target.name) && path.join(repoRoot, serviceEntries[target.name]) === target.entry ? target.name : undefined;
  const bundle = service
    ? await buildService(service)
    : await buildServiceBundle({ name: target.name, entry: target.entry, hostJson: hostJsonPath, outDir: path.join(distDir, ".bench", "entries") });
  // Unbundled: the entry, and each first-use module of own code on its own (what its require() loads).
  const outdir = path.join(distDir, ".bench", target.name);
  const ownRoots = bundle.deferredRoots.filter((root) => root.package === undefined);
  const outOf = (module: string) => `first-use/${module.replace(/[^a-zA-Z0-9.-]+/g, "-")}`;
  await build({
    entryPoints: [{ in: target.entry, out: "main" }, ...ownRoots.map((root) => ({ in: path.join(repoRoot, root.module), out: outOf(root.module) }))],
    outdir,
    bundle: true,
    packages: "external",
    platform: "node",
    target: "node22",
    format: "cjs",
    logLevel: "silent",
  });
  const loads = { bundled: path.join(outdir, "loads-bundled.json"), unbundled: path.join(outdir, "loads-unbundled.json") };
  await writeFile(loads.bundled, JSON.stringify(bundle.deferredRoots.map((root) => ({ label: rootName(root.module), chunk: root.chunk, module: root.module }))));
  await writeFile(
    loads.unbundled,
    JSON.stringify(bundle.deferredRoots.map((root) => ({ label: rootName(root.module), file: root.package ?? path.join(outdir, `${outOf(root.module)}.js`) }))),
  );
  return { bundle, unbundledFile: path.join(outdir, "main.js"), loads };
}

async function measureLoad(target: Target, builds: Builds, iterations: number): Promise<Measurement> {
  const { bundle, unbundledFile, loads } = builds;
  const bundledFile = path.join(bundle.packageDir, "main.js");
  const bundled: LoadResult[] = [];
  const plain: LoadResult[] = [];
  await loadOnce(bundledFile, loads.bundled); // warm the file cache once for both sides
  await loadOnce(unbundledFile, loads.unbundled);
  // Interleaved, so drift in machine load hits both sides alike.
  for (let i = 0; i < iterations; i++) {
    const b = await loadOnce(bundledFile, loads.bundled);
    const u = await loadOnce(unbundledFile, loads.unbundled);
    if (b.functions.length === 0) throw new Error(`${target.name}: the bundle registered no functions`);
    if (b.functions.join() !== u.functions.join()) {
      throw new Error(`${target.name}: bundled registered ${b.functions.join(",")} but unbundled ${u.functions.join(",")}`);
    }
    bundled.push(b);
    plain.push(u);
  }
  return { name: target.name, functions: bundled[0]!.functions.length, bundled: summarise(bundled), unbundled: summarise(plain), bundle };
}

interface FirstRequestMeasurement {
  readonly name: ColdStartService;
  readonly bundled: { readyMs: number; firstRequestMs: number };
  readonly unbundled: { readyMs: number; firstRequestMs: number };
  /** The floor app's cold first request (floor-app.ts): what no service can go below. */
  readonly floor: { readyMs: number; firstRequestMs: number };
  /** The bundle warmed: its first request from sending, and fork to the end of its warm-up. */
  readonly warmed: { firstRequestMs: number; warmUpMs: number };
  /** One-minute load average before and after this service's runs. */
  readonly load: readonly [number, number];
}

async function measureFirstRequests(
  name: ColdStartService,
  builds: Builds,
  floor: ServiceBundle,
  iterations: number,
  options: FirstRequestOptions,
): Promise<FirstRequestMeasurement> {
  const bundled: FirstRequestSample[] = [];
  const plain: FirstRequestSample[] = [];
  const floors: FirstRequestSample[] = [];
  const warmed: FirstRequestSample[] = [];
  const variants = {
    bundled: { entry: path.join(builds.bundle.packageDir, "main.js"), hostJson: path.join(builds.bundle.packageDir, "host.json") },
    unbundled: { entry: builds.unbundledFile, hostJson: hostJsonPath },
    floor: { entry: path.join(floor.packageDir, "main.js"), hostJson: path.join(floor.packageDir, "host.json"), floor: true },
  };
  const warmedOptions = { ...options, mode: "warmed" } as const;
  const loadBefore = loadavg()[0]!;
  // One unmeasured run of each warms the file cache.
  await measureFirstRequest(name, variants.bundled, options);
  await measureFirstRequest(name, variants.unbundled, options);
  await measureFirstRequest(name, variants.floor, options);
  for (let i = 0; i < iterations; i++) {
    bundled.push(await measureFirstRequest(name, variants.bundled, options));
    plain.push(await measureFirstRequest(name, variants.unbundled, options));
    floors.push(await measureFirstRequest(name, variants.floor, options));
    warmed.push(await measureFirstRequest(name, variants.bundled, warmedOptions));
  }
  const medians = (samples: readonly FirstRequestSample[]) => ({
    readyMs: median(samples.map((s) => s.readyMs)),
    firstRequestMs: median(samples.map((s) => s.firstRequestMs)),
  });
  return {
    name,
    bundled: medians(bundled),
    unbundled: medians(plain),
    floor: medians(floors),
    warmed: { firstRequestMs: median(warmed.map((s) => s.firstRequestMs)), warmUpMs: median(warmed.map((s) => s.warmUpMs!)) },
    load: [loadBefore, loadavg()[0]!],
  };
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

export function formatFirstRequestReport(results: readonly FirstRequestMeasurement[], iterations: number, telemetry: boolean): string {
  return [
    `first request after a cold start: median of ${iterations} fresh host processes per variant, telemetry ${telemetry ? "on (a local ingestion endpoint)" : "off"}`,
    "ready = fork of the local Functions host (compiled JS) until its functions are registered and its triggers listen; first request = fork until the api's POST /api/jobs answered 202, or the agent's first message completed",
    "floor = the same first request to floor-app.ts (the service's trigger, a handler that does nothing): Node, the host and @azure/functions, no code of ours",
    "warmed = the bundle started ahead of its traffic: its first request from sending (the agent's: from the job's submission through the warm api) once its warm-up logged its end; warm-up = fork until then",
    ...table(
      ["service", "first request bundled", "first request unbundled", "ratio", "floor", "bundled above floor", "warmed", "warm-up", "ready bundled", "ready unbundled", "load avg (1 min) before/after", "goals (<=400 ms, <=0.3x)"],
      results.map((r) => {
        const ratio = r.bundled.firstRequestMs / r.unbundled.firstRequestMs;
        return [
          r.name,
          `${ms(r.bundled.firstRequestMs)} ms`,
          `${ms(r.unbundled.firstRequestMs)} ms`,
          `${ratio.toFixed(2)}x`,
          `${ms(r.floor.firstRequestMs)} ms`,
          `${ms(r.bundled.firstRequestMs - r.floor.firstRequestMs)} ms`,
          `${ms(r.warmed.firstRequestMs)} ms`,
          `${ms(r.warmed.warmUpMs)} ms`,
          `${ms(r.bundled.readyMs)} ms`,
          `${ms(r.unbundled.readyMs)} ms`,
          `${r.load[0].toFixed(2)} / ${r.load[1].toFixed(2)}`,
          [r.bundled.firstRequestMs <= goals.maxFirstRequestMs, ratio <= goals.maxFirstRequestRatio].map(verdict).join(" / "),
        ];
      }),
    ),
  ].join("\n");
}

export function formatReport(results: readonly Measurement[], iterations: number): string {
  const out = [
    `cold start: median of ${iterations} fresh node ${process.version} processes per variant`,
    "start = require of the entry until its functions are registered; first use = then loading every module its code loads on first use (handlers, SDK clients, telemetry)",
    ...table(
      ["service", "fns", "start bundled", "start unbundled", "ratio", "first use bundled", "first use unbundled", "at start", "on first use", "zip", "goals (<=0.35x, <=150 ms, zip <=1.5 MB)"],
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
          formatBytes(r.bundle.startBytes),
          formatBytes(r.bundle.deferredBytes),
          formatBytes(r.bundle.zipBytes),
          goalText,
        ];
      }),
    ),
  ];
  for (const r of results) {
    const packages = [...new Set([...Object.keys(r.unbundled.atStart), ...Object.keys(r.unbundled.firstUse), ...Object.keys(r.bundled.firstUse)])];
    out.push(
      `${r.name}: what each load costs (median ms, in this order, code shared with a later one paid by the first; unbundled = require from node_modules, bundled = its chunks)`,
    );
    out.push(
      ...table(
        ["package or first-use module", "when", "unbundled", "bundled"],
        packages.map((p) => [
          p,
          p in r.unbundled.atStart ? "start" : "first use",
          p in r.unbundled.atStart ? ms(r.unbundled.atStart[p]!) : p in r.unbundled.firstUse ? ms(r.unbundled.firstUse[p]!) : "-",
          p in r.bundled.firstUse ? ms(r.bundled.firstUse[p]!) : "(lib/start.js)",
        ]),
      ),
    );
    out.push(`${r.name}: largest bundle inputs: ${r.bundle.largestInputs.slice(0, 6).map((i) => `${i.name} ${formatBytes(i.bytes)}`).join(", ")}`);
  }
  return out.join("\n");
}

interface Options {
  readonly iterations: number;
  readonly telemetry: boolean;
  /** Targets given with --entry: only their load is measured (no first request). */
  readonly entries: readonly Target[];
}

function parseArgs(argv: readonly string[]): Options {
  let iterations = 9;
  let telemetry = true;
  const entries: Target[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const value = argv[i + 1];
    if (arg === "--iterations" && value) {
      iterations = Number(value);
      if (!Number.isInteger(iterations) || iterations < 1) throw new Error(`--iterations must be a positive integer, got ${value}`);
      i++;
    } else if (arg === "--telemetry" && (value === "on" || value === "off")) {
      telemetry = value === "on";
      i++;
    } else if (arg === "--entry" && value && /^[\w-]+=.+/.test(value)) {
      const [name, entry] = [value.slice(0, value.indexOf("=")), value.slice(value.indexOf("=") + 1)];
      entries.push({ name, entry: path.resolve(entry) });
      i++;
    } else {
      throw new Error(`unknown argument ${arg}; use --iterations N, --telemetry on|off and --entry name=path/to/index.ts`);
    }
  }
  return { iterations, telemetry, entries };
}

/** The services the first-request bench drives, from the registry (each must exist). */
const coldStartServices: readonly ColdStartService[] = ["agent", "api"];

async function main(): Promise<void> {
  const options = parseArgs(process.argv.slice(2));
  const targets = options.entries.length > 0 ? options.entries : coldStartServices.map((name) => ({ name, entry: path.join(repoRoot, serviceEntries[name]) }));
  for (const target of targets) if (!existsSync(target.entry)) throw new Error(`${target.name}: no entry point at ${path.relative(repoRoot, target.entry)}`);
  console.log(`load average ${loadavg().map((n) => n.toFixed(2)).join(" ")}, ${cpus().length} cores; building ${targets.map((t) => t.name).join(", ")}…`);
  const builds = new Map<string, Builds>();
  for (const target of targets) builds.set(target.name, await buildBoth(target));

  if (options.entries.length === 0) {
    const ingestion = options.telemetry ? await startIngestionEndpoint(path.join(repoRoot, ".tmp", "local-platform")) : undefined;
    const output: string[] = [];
    console.log("starting the local platform on free ports…");
    const platform = await startLocalPlatform({
      ports: FREE_PORTS,
      code: "source",
      bundleDirectory: path.join(distDir, ".bench", "platform"),
      writeLocalSettings: false,
      // One user submits every job: the per-user quotas would throttle the bench, not the platform.
      config: { quotaJobsPerHour: 10_000, quotaJobsInFlight: 1_000 },
      progress: () => {},
      output: (source, line) => void output.push(`[${source}] ${line}`),
    });
    try {
      // The bench's own agent hosts take the jobs; the platform's would race them for the messages.
      await platform.services.agent.stop();
      const compiledChild = await compileHostChild();
      const floor = await buildServiceBundle({ name: "floor", entry: path.join(repoRoot, "scripts/bench/floor-app.ts"), hostJson: hostJsonPath, outDir: path.join(distDir, ".bench", "entries") });
      const results: FirstRequestMeasurement[] = [];
      // The agent first: the api's jobs stay queued after its runs, and no agent of the bench should meet them.
      for (const name of coldStartServices) {
        console.log(`${name}: first requests…`);
        results.push(await measureFirstRequests(name, builds.get(name)!, floor, options.iterations, { platform, compiledChild, ...(ingestion ? { telemetry: ingestion.connectionString } : {}) }));
      }
      console.log(formatFirstRequestReport(results, options.iterations, options.telemetry));
      if (ingestion) console.log(`telemetry items received by the local ingestion endpoint: ${ingestion.envelopes.length}`);
    } catch (error) {
      console.error(output.slice(-30).join("\n"));
      throw error;
    } finally {
      await platform.stop();
      await ingestion?.close();
    }
  }

  const loads: Measurement[] = [];
  for (const target of targets) loads.push(await measureLoad(target, builds.get(target.name)!, options.iterations));
  console.log(formatReport(loads, options.iterations));
}

if (require.main === module) {
  main().catch((error: unknown) => {
    console.error(`cold-start benchmark failed: ${error instanceof Error ? error.message : String(error)}`);
    process.exitCode = 1;
  });
}
