/**
 * The first request after a cold start, on the local platform: a fresh Node process runs the local
 * Functions host (compiled and bundled, as Azure's worker is), loads one service, and serves its
 * first request against the emulators. Timed from the fork to the end of that request:
 *
 * - api: POST /api/jobs (a text job) sent the moment the host reports ready, until its 202 is read.
 * - agent: a job queued beforehand (through a warm api), until the host logs the message completed.
 *
 * Warmed (FirstRequestMode): the same first request on an instance started ahead of its traffic,
 * timed from its sending (the agent's: from the job's submission) once the service's warm-up logged
 * its end.
 *
 * With telemetry on, both services export to a local Application Insights ingestion endpoint, as
 * in Azure where APPLICATIONINSIGHTS_CONNECTION_STRING is always set.
 */
import path from "node:path";
import { build, type BuildOptions } from "esbuild";
import { hostChildSource, startHostProcess, type HostProcess } from "@platform-tools/functions-host";
import type { LocalPlatform } from "../../local/platform.js";
import { WARMED_UP } from "../../functions/src/shared/warm-up.js";
import { distDir, repoRoot } from "../bundle/services.js";

/** The variable telling floor-app.ts which service's trigger to register. */
const FLOOR_SERVICE = "BENCH_FLOOR_SERVICE";

/** The services this bench knows how to send a first request to. */
export type ColdStartService = "api" | "agent";

/** One way of loading a service: its entry (main.js) and the host.json beside it. */
export interface ServiceVariant {
  readonly entry: string;
  readonly hostJson: string;
  /** The floor app (floor-app.ts): its handlers do nothing, so the agent's job is not checked. */
  readonly floor?: boolean;
}

export interface FirstRequestSample {
  /** Fork to the host reporting ready (functions loaded and registered, triggers listening). */
  readonly readyMs: number;
  /**
   * The first request: from the fork to its end (cold, sent the moment the host is ready), or from
   * its sending to its end (warmed, sent once the service logged that its warm-up finished).
   */
  readonly firstRequestMs: number;
  /** Warmed only: fork to the service's warm-up line. */
  readonly warmUpMs?: number;
}

/**
 * cold: the request that started the instance, sent the moment the host is ready (the issue's
 * measure). warmed: an instance started ahead of its traffic (always-ready, a scale-out), its first
 * request sent after the service's warm-up (functions/src/shared/warm-up.ts) logged its end.
 */
export type FirstRequestMode = "cold" | "warmed";

/**
 * The local host's child module compiled and bundled, built once per run: child.js, and its Service
 * Bus client in service-bus.js beside it, read only by a host with a Service Bus trigger (the host
 * requires the SDK when its first trigger starts). Azure's host is a .NET process whose triggers
 * run before the worker starts; loading the local host's own SDK from node_modules (about 100 ms
 * more for the agent), or compiling it into an api's host that never uses it, would be a cost of the
 * stand-in, not of the service measured.
 */
export async function compileHostChild(): Promise<string> {
  const outdir = path.join(distDir, ".bench", "functions-host");
  const common: BuildOptions = { bundle: true, platform: "node", target: "node22", format: "cjs", mainFields: ["module", "main"], minify: true, sourcemap: "linked", logLevel: "silent" };
  await build({
    ...common,
    stdin: { contents: 'export { RetryMode, ServiceBusClient } from "@azure/service-bus";', resolveDir: repoRoot, loader: "ts" },
    outfile: path.join(outdir, "service-bus.js"),
  });
  const outfile = path.join(outdir, "child.js");
  await build({
    ...common,
    entryPoints: [hostChildSource],
    outfile,
    plugins: [{ name: "service-bus-beside", setup: (b) => b.onResolve({ filter: /^@azure\/service-bus$/ }, () => ({ path: "./service-bus.js", external: true })) }],
  });
  return outfile;
}

/** Environment that keeps SDK self-reporting (statsbeat) on this machine: it would call Microsoft's endpoints. */
export const NO_SELF_REPORTING = { APPLICATIONINSIGHTS_STATSBEAT_DISABLED: "true", APPLICATION_INSIGHTS_NO_STATSBEAT: "true", APPLICATIONINSIGHTS_SDKSTATS_DISABLED: "true" } as const;

export interface FirstRequestOptions {
  readonly platform: LocalPlatform;
  readonly compiledChild: string;
  /** The connection string of a local ingestion endpoint; telemetry off when absent. */
  readonly telemetry?: string;
  /** cold unless given. */
  readonly mode?: FirstRequestMode;
}

/** A user of the bench's own (the per-user quotas are raised by the caller's platform config). */
const caller = { "x-dev-user": "bench-cold-start" };

/** Runs one start of `service` from `variant` and its first request (cold or warmed, see FirstRequestMode). */
export async function measureFirstRequest(service: ColdStartService, variant: ServiceVariant, options: FirstRequestOptions): Promise<FirstRequestSample> {
  const mode = options.mode ?? "cold";
  const settings = {
    ...options.platform.settings[service],
    ...(options.telemetry ? { APPLICATIONINSIGHTS_CONNECTION_STRING: options.telemetry, ...NO_SELF_REPORTING } : {}),
  };
  const recent: string[] = [];
  const lineWaiters = new Set<(line: string) => void>();
  const output = (line: string) => {
    recent.push(line);
    if (recent.length > 60) recent.shift();
    for (const waiter of lineWaiters) waiter(line);
  };
  const failure = (what: string, error?: unknown) =>
    new Error(`${service} (${variant.entry}): ${what}${error ? `: ${error instanceof Error ? error.message : String(error)}` : ""}\n${recent.join("\n")}`);
  /** Resolves on the first output line (among those already seen too) `verdict` calls done, rejects on failed. */
  const lineOf = (what: string, verdict: (line: string) => "done" | "failed" | undefined) =>
    new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => finish(failure(`no ${what} within 60 s`)), 60_000);
      const waiter = (line: string) => {
        const seen = verdict(line);
        if (seen) finish(seen === "failed" ? failure(`${what}: ${line}`) : undefined);
      };
      function finish(error?: Error) {
        clearTimeout(timer);
        lineWaiters.delete(waiter);
        if (error) reject(error);
        else resolve();
      }
      lineWaiters.add(waiter);
      for (const line of [...recent]) waiter(line);
    });
  const completionOf = (jobId: string) =>
    lineOf(`completion of job ${jobId}`, (line) =>
      !line.includes(`message ${jobId} `) ? undefined : line.includes(" completed in ") ? "done" : line.includes("abandoned") ? "failed" : undefined,
    );

  // Cold: the agent's job waits in the queue before the fork; registered before it, as the line
  // may come before startHostProcess resolves.
  let jobId: string | undefined;
  let completed: Promise<void> | undefined;
  if (service === "agent" && mode === "cold") {
    jobId = await submitJob(options.platform.urls.api);
    completed = completionOf(jobId);
  }
  const warmedUp =
    mode === "warmed" ? lineOf("warm-up line", (line) => (line.includes(`${service}: ${WARMED_UP}`) ? "done" : line.includes(`${service}: warm-up failed`) ? "failed" : undefined)) : undefined;
  // Never an unhandled rejection when the host fails first (its own error is thrown).
  void completed?.catch(() => {});
  void warmedUp?.catch(() => {});

  const forked = performance.now();
  let host: HostProcess | undefined;
  try {
    host = await startHostProcess({
      name: service,
      entry: variant.entry,
      hostJson: variant.hostJson,
      settings,
      nodeEnv: { ...options.platform.nodeEnv, ...(variant.floor ? { [FLOOR_SERVICE]: service } : {}) },
      compiledChild: options.compiledChild,
      output,
    }).catch((error: unknown) => {
      throw failure("the host did not start", error);
    });
    const readyMs = performance.now() - forked;
    let warmUpMs: number | undefined;
    let sent = forked;
    if (warmedUp) {
      await warmedUp;
      warmUpMs = performance.now() - forked;
      sent = performance.now();
    }
    if (service === "api") {
      const response = await fetch(`${host.url}/api/jobs`, {
        method: "POST",
        headers: { ...caller, "content-type": "application/json" },
        body: JSON.stringify({ kind: "text", text: "the first request after a cold start" }),
      });
      const body = await response.text();
      if (response.status !== 202) throw failure(`POST /api/jobs answered ${response.status}: ${body}`);
    } else {
      // Warmed: the job is submitted (through the platform's warm api) only now.
      if (!jobId) {
        jobId = await submitJob(options.platform.urls.api);
        completed = completionOf(jobId);
      }
      await completed;
      if (variant.floor) return { readyMs, firstRequestMs: performance.now() - sent };
      const job = (await (await fetch(`${options.platform.urls.api}/jobs/${jobId}`, { headers: caller })).json()) as { status?: string };
      if (job.status !== "succeeded") throw failure(`job ${jobId} is ${job.status}, not succeeded`);
    }
    const firstRequestMs = performance.now() - sent;
    return { readyMs, firstRequestMs, ...(warmUpMs === undefined ? {} : { warmUpMs }) };
  } finally {
    await host?.stop();
  }
}

async function submitJob(api: string): Promise<string> {
  const response = await fetch(`${api}/jobs`, {
    method: "POST",
    headers: { ...caller, "content-type": "application/json" },
    body: JSON.stringify({ kind: "text", text: "a job waiting for a cold agent" }),
  });
  if (response.status !== 202) throw new Error(`queuing a job for the agent: POST /api/jobs answered ${response.status}: ${await response.text()}`);
  return ((await response.json()) as { id: string }).id;
}
