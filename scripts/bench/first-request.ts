/**
 * The first request after a cold start, on the local platform: a fresh Node process runs the local
 * Functions host (compiled to JavaScript, as Azure's worker is), loads one service, and serves its
 * first request against the emulators. Timed from the fork to the end of that request:
 *
 * - api: POST /api/jobs (a text job) sent the moment the host reports ready, until its 202 is read.
 * - agent: a job queued beforehand (through a warm api), until the host logs the message completed.
 *
 * With telemetry on, both services export to a local Application Insights ingestion endpoint, as
 * in Azure where APPLICATIONINSIGHTS_CONNECTION_STRING is always set.
 */
import path from "node:path";
import { build } from "esbuild";
import { hostChildSource, startHostProcess, type HostProcess } from "@platform-tools/functions-host";
import type { LocalPlatform } from "../../local/platform.js";
import { distDir } from "../bundle/services.js";

/** The services this bench knows how to send a first request to. */
export type ColdStartService = "api" | "agent";

/** One way of loading a service: its entry (main.js) and the host.json beside it. */
export interface ServiceVariant {
  readonly entry: string;
  readonly hostJson: string;
}

export interface FirstRequestSample {
  /** Fork to the host reporting ready (functions loaded and registered, triggers listening). */
  readonly readyMs: number;
  /** Fork to the end of the first request. */
  readonly firstRequestMs: number;
}

/** The local host's child module as plain JavaScript (packages from node_modules), built once per run. */
export async function compileHostChild(): Promise<string> {
  const outfile = path.join(distDir, ".bench", "functions-host", "child.js");
  await build({ entryPoints: [hostChildSource], outfile, bundle: true, packages: "external", platform: "node", target: "node22", format: "cjs", sourcemap: "linked", logLevel: "silent" });
  return outfile;
}

/** Environment that keeps SDK self-reporting (statsbeat) on this machine: it would call Microsoft's endpoints. */
export const NO_SELF_REPORTING = { APPLICATIONINSIGHTS_STATSBEAT_DISABLED: "true", APPLICATION_INSIGHTS_NO_STATSBEAT: "true", APPLICATIONINSIGHTS_SDKSTATS_DISABLED: "true" } as const;

export interface FirstRequestOptions {
  readonly platform: LocalPlatform;
  readonly compiledChild: string;
  /** The connection string of a local ingestion endpoint; telemetry off when absent. */
  readonly telemetry?: string;
}

/** A user of the bench's own (the per-user quotas are raised by the caller's platform config). */
const caller = { "x-dev-user": "bench-cold-start" };

/** Runs one cold start of `service` from `variant` and its first request. */
export async function measureFirstRequest(service: ColdStartService, variant: ServiceVariant, options: FirstRequestOptions): Promise<FirstRequestSample> {
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

  let jobId: string | undefined;
  if (service === "agent") jobId = await submitJob(options.platform.urls.api);
  // Registered before the fork: the line may come before startHostProcess resolves.
  const completed =
    jobId === undefined
      ? undefined
      : new Promise<void>((resolve, reject) => {
          const timer = setTimeout(() => done(failure(`no completion of job ${jobId} within 60 s`)), 60_000);
          const waiter = (line: string) => {
            if (line.includes(`message ${jobId} `) && line.includes(" completed in ")) done();
            else if (line.includes(`message ${jobId} `) && line.includes("abandoned")) done(failure(`job ${jobId} failed in the agent`));
          };
          function done(error?: Error) {
            clearTimeout(timer);
            lineWaiters.delete(waiter);
            if (error) reject(error);
            else resolve();
          }
          lineWaiters.add(waiter);
        });

  const forked = performance.now();
  let host: HostProcess | undefined;
  try {
    host = await startHostProcess({
      name: service,
      entry: variant.entry,
      hostJson: variant.hostJson,
      settings,
      nodeEnv: { ...options.platform.nodeEnv },
      compiledChild: options.compiledChild,
      output,
    }).catch((error: unknown) => {
      throw failure("the host did not start", error);
    });
    const readyMs = performance.now() - forked;
    if (service === "api") {
      const response = await fetch(`${host.url}/api/jobs`, {
        method: "POST",
        headers: { ...caller, "content-type": "application/json" },
        body: JSON.stringify({ kind: "text", text: "the first request after a cold start" }),
      });
      const body = await response.text();
      if (response.status !== 202) throw failure(`POST /api/jobs answered ${response.status}: ${body}`);
    } else {
      await completed;
      const job = (await (await fetch(`${options.platform.urls.api}/jobs/${jobId}`, { headers: caller })).json()) as { status?: string };
      if (job.status !== "succeeded") throw failure(`job ${jobId} is ${job.status}, not succeeded`);
    }
    return { readyMs, firstRequestMs: performance.now() - forked };
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
