/**
 * `npm run bench:load`: the local platform under a rising load, until the api or the agent
 * saturates. N users (each with its own identity and Web PubSub connection, as browsers) submit
 * text jobs at a rate that doubles every step; requests are fired on schedule whatever the answers
 * (an open loop, as independent users are), loopback only. Bounded in jobs and in time.
 *
 *   npm run bench:load -- [--users 20] [--start-rate 10] [--step-seconds 4] [--max-jobs 3000]
 *                         [--max-seconds 90] [--api-max-concurrent 100] [--code source|bundle]
 *
 * Per step: the offered and accepted rates, the answers by status (503 and 429 must carry
 * Retry-After), POST latency and the latency to the job.succeeded event (p50/p95/p99); the bench
 * waits for a step's jobs (up to 30 s) before the next, so each step is measured on its own. A step
 * saturates when the api sheds load (429/503), accepts under 90% of what was offered, or jobs take
 * (median) more than five times as long to succeed as in the first step (the agent fell behind). The load
 * stops rising after the first saturated step. Then every accepted job must finish: the bench
 * waits for them (events, or GET /api/jobs for one whose push was lost) and fails if any did not.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { WebPubSubClient } from "@azure/web-pubsub-client";
import { parseConfig } from "../../infrastructure/config.js";
import { FREE_PORTS, startLocalPlatform } from "../../local/platform.js";
import { exitWhenDone } from "./exit-when-done.js";

interface Options {
  users: number;
  startRate: number;
  stepSeconds: number;
  maxJobs: number;
  maxSeconds: number;
  apiMaxConcurrent: number;
  code: "source" | "bundle";
}

export function parseLoadOptions(argv: string[]): Options {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      users: { type: "string", default: "20" },
      "start-rate": { type: "string", default: "10" },
      "step-seconds": { type: "string", default: "4" },
      "max-jobs": { type: "string", default: "3000" },
      "max-seconds": { type: "string", default: "90" },
      "api-max-concurrent": { type: "string", default: String(parseConfig({}).apiMaxConcurrentRequests) },
      code: { type: "string", default: "source" },
    },
  });
  const integer = (name: string, raw: string, min: number, max: number): number => {
    const n = Number(raw);
    if (!Number.isInteger(n) || n < min || n > max) throw new Error(`--${name} must be an integer from ${min} to ${max} (got ${raw})`);
    return n;
  };
  if (values.code !== "source" && values.code !== "bundle") throw new Error(`--code must be source or bundle (got ${values.code})`);
  return {
    users: integer("users", values.users, 1, 500),
    startRate: integer("start-rate", values["start-rate"], 1, 10_000),
    stepSeconds: integer("step-seconds", values["step-seconds"], 1, 60),
    maxJobs: integer("max-jobs", values["max-jobs"], 1, 50_000),
    maxSeconds: integer("max-seconds", values["max-seconds"], 5, 600),
    apiMaxConcurrent: integer("api-max-concurrent", values["api-max-concurrent"], 1, 10_000),
    code: values.code,
  };
}

export const percentile = (sorted: readonly number[], p: number): number => sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? Number.NaN;
const ms = (n: number): string => (Number.isNaN(n) ? "-" : `${Math.round(n)}`);

interface Attempt {
  step: number;
  user: number;
  sentAt: number;
  /** HTTP status, or "error" when no answer came. */
  status?: number | "error";
  retryAfter?: string | null;
  answeredAt?: number;
  jobId?: string;
  finishedAt?: number;
  finishedAs?: "succeeded" | "failed";
}

export interface StepReport {
  step: number;
  offeredPerSecond: number;
  sent: number;
  acceptedPerSecond: number;
  statuses: Record<string, number>;
  /** 503/429 answers without Retry-After (should be 0). */
  sheddingWithoutRetryAfter: number;
  postMs: { p50: number; p95: number; p99: number };
  succeededMs: { p50: number; p95: number; p99: number };
  saturated: string | undefined;
}

/**
 * Why a step counts as saturated, or undefined. `baselineP50` is the first step's median time to
 * succeeded (its p95 holds the cold start); under 200 ms counts as 200 ms.
 */
export function saturationOf(step: Pick<StepReport, "offeredPerSecond" | "acceptedPerSecond" | "statuses" | "succeededMs">, baselineP50: number | undefined): string | undefined {
  const shed = (step.statuses["503"] ?? 0) + (step.statuses["429"] ?? 0);
  if (shed > 0) return `the api shed ${shed} requests (429/503)`;
  if (step.acceptedPerSecond < 0.9 * step.offeredPerSecond) return `accepted ${step.acceptedPerSecond.toFixed(0)}/s of ${step.offeredPerSecond}/s offered`;
  if (baselineP50 !== undefined && step.succeededMs.p50 > 5 * Math.max(baselineP50, 200)) return `jobs took ${ms(step.succeededMs.p50)} ms to succeed (median), over 5 times the first step's`;
  return undefined;
}

async function main(): Promise<void> {
  const options = parseLoadOptions(process.argv.slice(2));
  const scratch = mkdtempSync(join(tmpdir(), "bench-load-"));
  const output: string[] = [];
  console.log(`Starting the local platform (${options.code}, api limit ${options.apiMaxConcurrent} requests in progress) on free loopback ports…`);
  const platform = await startLocalPlatform({
    ports: FREE_PORTS,
    code: options.code,
    ...(options.code === "source" ? { bundleDirectory: scratch } : {}),
    web: { outDir: join(scratch, "web") },
    writeLocalSettings: false,
    config: parseConfig({ apiMaxConcurrentRequests: String(options.apiMaxConcurrent) }),
    progress: (line) => void output.push(`[platform] ${line}`),
    output: (source, line) => void output.push(`[${source}] ${line}`),
  });
  const api = platform.urls.api;
  const attempts: Attempt[] = [];
  const byJob = new Map<string, Attempt>();
  /** Terminal events that arrived before the POST's answer named their job. */
  const early = new Map<string, { at: number; type: "succeeded" | "failed" }>();
  const clients: WebPubSubClient[] = [];
  const userId = (n: number) => `load-user-${n}`;
  let doubled = 0;

  const onTerminal = (jobId: string, type: "succeeded" | "failed") => {
    const at = performance.now();
    const attempt = byJob.get(jobId);
    if (!attempt) return void early.set(jobId, { at, type });
    if (attempt.finishedAt !== undefined) doubled += 1;
    else [attempt.finishedAt, attempt.finishedAs] = [at, type];
  };

  try {
    console.log(`  ready in ${(platform.startupMs / 1000).toFixed(1)} s; connecting ${options.users} users to Web PubSub…`);
    for (let n = 0; n < options.users; n += 1) {
      const client = new WebPubSubClient({
        getClientAccessUrl: async () => ((await (await fetch(`${api}/negotiate`, { headers: { "x-dev-user": userId(n) } })).json()) as { url: string }).url,
      });
      client.on("group-message", (event) => {
        const { type, jobId } = event.message.data as { type: string; jobId: string };
        if (type === "job.succeeded") onTerminal(jobId, "succeeded");
        if (type === "job.failed") onTerminal(jobId, "failed");
      });
      await client.start();
      clients.push(client);
    }

    const submit = (step: number, user: number) => {
      const attempt: Attempt = { step, user, sentAt: performance.now() };
      attempts.push(attempt);
      void fetch(`${api}/jobs`, {
        method: "POST",
        headers: { "x-dev-user": userId(user), "content-type": "application/json" },
        body: JSON.stringify({ kind: "text", text: `load job ${attempts.length}: the quick brown fox jumps over the lazy dog` }),
        signal: AbortSignal.timeout(60_000),
      })
        .then(async (response) => {
          attempt.answeredAt = performance.now();
          attempt.status = response.status;
          attempt.retryAfter = response.headers.get("retry-after");
          const body = (await response.json()) as { id?: string };
          if (response.status === 202 && body.id) {
            attempt.jobId = body.id;
            byJob.set(body.id, attempt);
            const seen = early.get(body.id);
            if (seen) [attempt.finishedAt, attempt.finishedAs] = [seen.at, seen.type];
          }
        })
        .catch(() => {
          attempt.answeredAt = performance.now();
          attempt.status = "error";
        });
    };

    const began = performance.now();
    const steps: StepReport[] = [];
    let rate = options.startRate;
    let next = 0;
    for (let step = 1; ; step += 1) {
      const stepStart = performance.now();
      const stepEnd = stepStart + options.stepSeconds * 1000;
      let sent = 0;
      process.stdout.write(`  step ${step}: ${rate} jobs/s for ${options.stepSeconds} s… `);
      // Open loop: each tick fires what the schedule owes, answered or not.
      await new Promise<void>((resolve) => {
        const tick = setInterval(() => {
          const now = performance.now();
          const due = Math.floor(((Math.min(now, stepEnd) - stepStart) / 1000) * rate);
          while (sent < due && attempts.length < options.maxJobs) {
            submit(step, next++ % options.users);
            sent += 1;
          }
          if (now >= stepEnd || attempts.length >= options.maxJobs || now - began > options.maxSeconds * 1000) {
            clearInterval(tick);
            resolve();
          }
        }, 5);
      });
      // The step's answers and, for the accepted, their outcome (bounded: a backlog is a result too).
      const mine = () => attempts.filter((a) => a.step === step);
      const settleBy = performance.now() + 30_000;
      while (performance.now() < settleBy && mine().some((a) => a.status === undefined || (a.status === 202 && a.finishedAt === undefined && a.jobId !== undefined))) {
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      const these = mine();
      const statuses: Record<string, number> = {};
      for (const a of these) statuses[String(a.status ?? "no answer yet")] = (statuses[String(a.status ?? "no answer yet")] ?? 0) + 1;
      const posts = these.filter((a) => a.answeredAt !== undefined).map((a) => a.answeredAt! - a.sentAt).sort((x, y) => x - y);
      const succeeded = these.filter((a) => a.finishedAs === "succeeded").map((a) => a.finishedAt! - a.sentAt).sort((x, y) => x - y);
      const seconds = options.stepSeconds;
      const partial: StepReport = {
        step,
        offeredPerSecond: rate,
        sent: these.length,
        acceptedPerSecond: (statuses["202"] ?? 0) / seconds,
        statuses,
        sheddingWithoutRetryAfter: these.filter((a) => (a.status === 503 || a.status === 429) && !a.retryAfter).length,
        postMs: { p50: percentile(posts, 50), p95: percentile(posts, 95), p99: percentile(posts, 99) },
        succeededMs: { p50: percentile(succeeded, 50), p95: percentile(succeeded, 95), p99: percentile(succeeded, 99) },
        saturated: undefined,
      };
      partial.saturated = saturationOf(partial, steps[0]?.succeededMs.p50);
      steps.push(partial);
      console.log(partial.saturated ? `saturated: ${partial.saturated}` : "ok");
      const outOfBudget = attempts.length >= options.maxJobs || performance.now() - began > options.maxSeconds * 1000;
      if (partial.saturated || outOfBudget) break;
      rate *= 2;
    }

    // Every accepted job must finish. Pushes are hints: a job without its event is read back.
    const accepted = attempts.filter((a) => a.jobId !== undefined);
    const drainBy = performance.now() + 120_000;
    while (accepted.some((a) => a.finishedAt === undefined) && performance.now() < drainBy) {
      for (let user = 0; user < options.users; user += 1) {
        let token: string | undefined;
        do {
          const response = await fetch(`${api}/jobs?pageSize=100${token ? `&continuationToken=${encodeURIComponent(token)}` : ""}`, { headers: { "x-dev-user": userId(user) } });
          if (response.status !== 200) break;
          const page = (await response.json()) as { items: { id: string; status: string }[]; continuationToken?: string };
          for (const job of page.items) {
            const attempt = byJob.get(job.id);
            if (attempt && attempt.finishedAt === undefined && (job.status === "succeeded" || job.status === "failed")) {
              [attempt.finishedAt, attempt.finishedAs] = [performance.now(), job.status];
            }
          }
          token = page.continuationToken;
        } while (token);
      }
      if (accepted.some((a) => a.finishedAt === undefined)) await new Promise((resolve) => setTimeout(resolve, 1_000));
    }
    const unfinished = accepted.filter((a) => a.finishedAt === undefined).length;
    const failed = accepted.filter((a) => a.finishedAs === "failed").length;

    console.log(`\nLoad on the local platform (${options.code}), ${options.users} users, api limit ${options.apiMaxConcurrent} requests in progress:`);
    console.log("| step | offered/s | sent | accepted/s | answers | POST p50/p95/p99 ms | to job.succeeded p50/p95/p99 ms | saturated |");
    console.log("|---|---|---|---|---|---|---|---|");
    for (const s of steps) {
      const answers = Object.entries(s.statuses)
        .map(([status, count]) => `${status}×${count}`)
        .join(" ");
      console.log(
        `| ${s.step} | ${s.offeredPerSecond} | ${s.sent} | ${s.acceptedPerSecond.toFixed(1)} | ${answers} | ${ms(s.postMs.p50)}/${ms(s.postMs.p95)}/${ms(s.postMs.p99)} | ${ms(s.succeededMs.p50)}/${ms(s.succeededMs.p95)}/${ms(s.succeededMs.p99)} | ${s.saturated ?? "no"} |`,
      );
    }
    const errors = attempts.filter((a) => a.status === "error" || (typeof a.status === "number" && a.status >= 500 && a.status !== 503)).length;
    const withoutRetryAfter = steps.reduce((sum, s) => sum + s.sheddingWithoutRetryAfter, 0);
    console.log(
      `\n${attempts.length} requests, ${accepted.length} accepted: ${accepted.length - unfinished - failed} succeeded, ${failed} failed, ${unfinished} unfinished after 2 minutes, ${doubled} terminal events doubled; ${errors} answered 5xx other than 503 or not at all; ${withoutRetryAfter} 429/503 without Retry-After.`,
    );
    const saturatedAt = steps.find((s) => s.saturated);
    console.log(saturatedAt ? `Saturated at ${saturatedAt.offeredPerSecond} jobs/s offered: ${saturatedAt.saturated}.` : "Did not saturate within the bounds; raise --max-jobs or --max-seconds.");
    if (unfinished > 0 || errors > 0 || withoutRetryAfter > 0 || doubled > 0) {
      console.error(output.filter((line) => /error|warn/.test(line)).slice(-30).join("\n"));
      throw new Error("the platform broke a promise under load (see above)");
    }
  } finally {
    for (const client of clients) client.stop();
    await platform.stop();
    rmSync(scratch, { recursive: true, force: true });
  }
}

if (require.main === module) {
  exitWhenDone(main);
}
