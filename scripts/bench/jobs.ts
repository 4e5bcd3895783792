/**
 * `npm run bench:jobs`: end-to-end job latency and throughput on the local platform, measured the
 * way a browser sees them: POST /api/jobs, then the job.succeeded event pushed over Web PubSub to a
 * client subscribed through /api/negotiate. Starts the platform on free ports and stops it after.
 *
 *   npm run bench:jobs -- [--jobs 50] [--concurrency 8] [--code source|bundle]
 *
 * `--code bundle` runs what `npm run bundle` built (dist/), as Azure would.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { WebPubSubClient } from "@azure/web-pubsub-client";
import { FREE_PORTS, startLocalPlatform } from "../../local/platform.js";

interface Options {
  jobs: number;
  concurrency: number;
  code: "source" | "bundle";
}

function parseOptions(argv: string[]): Options {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: { jobs: { type: "string", default: "50" }, concurrency: { type: "string", default: "8" }, code: { type: "string", default: "source" } },
  });
  const positive = (name: string, raw: string): number => {
    const n = Number(raw);
    if (!Number.isInteger(n) || n < 1 || n > 10_000) throw new Error(`--${name} must be an integer from 1 to 10000 (got ${raw})`);
    return n;
  };
  if (values.code !== "source" && values.code !== "bundle") throw new Error(`--code must be source or bundle (got ${values.code})`);
  return { jobs: positive("jobs", values.jobs), concurrency: positive("concurrency", values.concurrency), code: values.code };
}

const percentile = (sorted: number[], p: number): number => sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? Number.NaN;
const ms = (n: number): string => `${n.toFixed(0)} ms`;

async function main(): Promise<void> {
  const options = parseOptions(process.argv.slice(2));
  const output: string[] = [];
  const scratch = mkdtempSync(join(tmpdir(), "bench-jobs-"));
  console.log(`Starting the local platform (${options.code}) on free ports…`);
  const platform = await startLocalPlatform({
    ports: FREE_PORTS,
    code: options.code,
    ...(options.code === "source" ? { bundleDirectory: scratch } : {}),
    writeLocalSettings: false,
    // One user submits every job: the per-user quotas would throttle the bench, not the platform.
    config: { quotaJobsPerHour: 10_000, quotaJobsInFlight: 1_000 },
    progress: () => {},
    output: (source, line) => void output.push(`[${source}] ${line}`),
  });
  console.log(`  ready in ${(platform.startupMs / 1000).toFixed(1)} s`);

  const caller = { "x-dev-user": "bench-jobs" };
  /** When each job's job.succeeded (or job.failed) event arrived; events may beat the POST's answer. */
  const finished = new Map<string, { at: number; type: string }>();
  const waiters = new Map<string, () => void>();
  const client = new WebPubSubClient({
    getClientAccessUrl: async () => ((await (await fetch(`${platform.urls.api}/negotiate`, { headers: caller })).json()) as { url: string }).url,
  });
  client.on("group-message", (event) => {
    const { type, jobId } = event.message.data as { type: string; jobId: string };
    if (type !== "job.succeeded" && type !== "job.failed") return;
    finished.set(jobId, { at: performance.now(), type });
    waiters.get(jobId)?.();
  });

  /** One job: POST, then its terminal event. Returns POST time and end-to-end time. */
  const runJob = async (n: number): Promise<{ post: number; total: number }> => {
    const started = performance.now();
    const response = await fetch(`${platform.urls.api}/jobs`, {
      method: "POST",
      headers: { ...caller, "content-type": "application/json" },
      body: JSON.stringify({ kind: "text", text: `job ${n}: the quick brown fox jumps over the lazy dog `.repeat(20) }),
    });
    const posted = performance.now();
    if (response.status !== 202) throw new Error(`POST /api/jobs answered ${response.status}: ${await response.text()}`);
    const { id } = (await response.json()) as { id: string };
    if (!finished.has(id)) {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no terminal event for job ${id} within 30 s`)), 30_000);
        waiters.set(id, () => {
          clearTimeout(timer);
          resolve();
        });
      });
      waiters.delete(id);
    }
    const end = finished.get(id);
    if (end?.type !== "job.succeeded") throw new Error(`job ${id} ended ${end?.type}`);
    return { post: posted - started, total: end.at - started };
  };

  try {
    await client.start();
    const cold = await runJob(0);
    for (let n = 1; n <= 3; n += 1) await runJob(n); // warm the remaining code paths

    const sequential: { post: number; total: number }[] = [];
    for (let n = 0; n < options.jobs; n += 1) sequential.push(await runJob(1000 + n));
    const totals = sequential.map((r) => r.total).sort((a, b) => a - b);
    const posts = sequential.map((r) => r.post).sort((a, b) => a - b);

    let next = 0;
    const began = performance.now();
    const worker = async () => {
      while (next < options.jobs) await runJob(2000 + next++);
    };
    await Promise.all(Array.from({ length: options.concurrency }, worker));
    const seconds = (performance.now() - began) / 1000;

    console.log(`End-to-end jobs on the local platform (${options.code}), POST /api/jobs -> job.succeeded over Web PubSub:`);
    console.log(`  first job (handlers and SDKs load on first use): ${ms(cold.total)}`);
    console.log(
      `  latency, ${options.jobs} jobs one at a time: median ${ms(percentile(totals, 50))}, p95 ${ms(percentile(totals, 95))}, max ${ms(totals.at(-1) ?? Number.NaN)} (POST answered: median ${ms(percentile(posts, 50))})`,
    );
    console.log(`  throughput, ${options.jobs} jobs, ${options.concurrency} in flight: ${(options.jobs / seconds).toFixed(1)} jobs/s (${seconds.toFixed(2)} s)`);
  } catch (error) {
    console.error(output.slice(-40).join("\n"));
    throw error;
  } finally {
    client.stop();
    await platform.stop();
    rmSync(scratch, { recursive: true, force: true });
  }
}

main().then(
  // Exit at once: @azure/web-pubsub-client 1.1's keep-alive loops sleep (up to 40 s) in a delay
  // that stop() cannot abort, and would hold the process open after everything else stopped.
  () => process.exit(0),
  (error: unknown) => {
    console.error(error instanceof Error ? error.message : error);
    process.exit(1);
  },
);
