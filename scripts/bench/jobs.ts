/**
 * `npm run bench:jobs`: end-to-end job latency, throughput and CPU per job on the local platform,
 * measured the way a browser sees jobs: POST /api/jobs, then the job.succeeded event pushed over
 * Web PubSub to a client subscribed through /api/negotiate, each event handled as the page does
 * (applied to the job it created, a job it does not know yet read with GET /api/jobs/{id}: an
 * event that beats the POST's answer). Starts the platform on free ports and stops it after.
 *
 *   npm run bench:jobs -- [--jobs 100] [--concurrency 32] [--runs 1] [--code source|bundle] [--cpu-prof <dir>]
 *
 * Each run submits `--jobs` jobs one at a time (latency), then `--jobs` more with `--concurrency`
 * in flight, each in-flight slot a user of its own (throughput; one user's jobs contend for its
 * quota record). Around each batch it reads the CPU time of every process (Linux /proc): CPU ms per
 * job of the api and the agent is what Azure bills, the rest is the local emulators. With
 * `--runs` above 1 it prints the median of the runs too, and the load average beside each run
 * (the machine's other work moves the figures).
 *
 * `--code bundle` runs what `npm run bundle` built (dist/), as Azure would. `--cpu-prof <dir>`
 * starts the services' processes with Node's --cpu-prof and leaves a .cpuprofile per process in
 * <dir> after the stop (`npx tsx scripts/bench/cpu-profile-summary.ts <file>` sums it).
 */
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { FREE_PORTS, startLocalPlatform } from "../../local/platform.js";
import type { Job } from "../../web/src/api-types.js";
import { exitWhenDone } from "./exit-when-done.js";
import { PageUser } from "./page-user.js";
import { childPids, commandLine, cpuPerJob, cpuTimesMs, ownCpuMs, processCpuMs, type CpuProbes } from "./process-cpu.js";

interface Options {
  jobs: number;
  concurrency: number;
  runs: number;
  code: "source" | "bundle";
  cpuProf: string | undefined;
}

function parseOptions(argv: string[]): Options {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      jobs: { type: "string", default: "100" },
      concurrency: { type: "string", default: "32" },
      runs: { type: "string", default: "1" },
      code: { type: "string", default: "source" },
      "cpu-prof": { type: "string" },
    },
  });
  const positive = (name: string, raw: string, max = 10_000): number => {
    const n = Number(raw);
    if (!Number.isInteger(n) || n < 1 || n > max) throw new Error(`--${name} must be an integer from 1 to ${max} (got ${raw})`);
    return n;
  };
  if (values.code !== "source" && values.code !== "bundle") throw new Error(`--code must be source or bundle (got ${values.code})`);
  return {
    jobs: positive("jobs", values.jobs),
    // Each in-flight slot holds a Web PubSub connection of its own user.
    concurrency: positive("concurrency", values.concurrency, 200),
    runs: positive("runs", values.runs, 20),
    code: values.code,
    cpuProf: values["cpu-prof"] === undefined ? undefined : resolve(values["cpu-prof"]),
  };
}

const percentile = (sorted: number[], p: number): number => sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? Number.NaN;
const median = (values: number[]): number => percentile([...values].sort((a, b) => a - b), 50);
const ms = (n: number): string => `${n.toFixed(0)} ms`;
const loadAverage = (): string => loadavg().map((n) => n.toFixed(2)).join(" ");

/** What one run measured. */
interface RunFigures {
  p50: number;
  p95: number;
  max: number;
  postP50: number;
  jobsPerSecond: number;
  /** CPU ms per job by process, one at a time and with `concurrency` in flight. */
  cpuSequential: Record<string, number | undefined>;
  cpuConcurrent: Record<string, number | undefined>;
  load: string;
}

function formatCpu(perJob: Record<string, number | undefined>): string {
  return Object.entries(perJob)
    .map(([name, value]) => `${name} ${value === undefined ? "n/a" : value.toFixed(1)}`)
    .join(", ");
}

async function main(): Promise<void> {
  const options = parseOptions(process.argv.slice(2));
  const output: string[] = [];
  const scratch = mkdtempSync(join(tmpdir(), "bench-jobs-"));
  if (options.cpuProf) {
    mkdirSync(options.cpuProf, { recursive: true });
    // The services' processes inherit NODE_OPTIONS (and so does Azurite): each writes its profile when it stops.
    process.env.NODE_OPTIONS = `${process.env.NODE_OPTIONS ?? ""} --cpu-prof --cpu-prof-dir=${options.cpuProf}`.trim();
  }
  console.log(`Starting the local platform (${options.code}) on free ports…`);
  const platform = await startLocalPlatform({
    ports: FREE_PORTS,
    code: options.code,
    ...(options.code === "source" ? { bundleDirectory: scratch } : {}),
    writeLocalSettings: false,
    // The bench measures the platform, not the per-user quotas.
    config: { quotaJobsPerHour: 10_000, quotaJobsInFlight: 1_000 },
    progress: () => {},
    output: (source, line) => void output.push(`[${source}] ${line}`),
  });
  console.log(`  ready in ${(platform.startupMs / 1000).toFixed(1)} s`);

  // Every process the jobs cost CPU in: the services (what Azure bills), Azurite, and this one.
  const servicePids = new Set(Object.values(platform.services).map((s) => s.pid));
  const azurite = childPids().find((pid) => !servicePids.has(pid) && commandLine(pid).includes("azurite"));
  const probes: CpuProbes = {
    ...Object.fromEntries(Object.entries(platform.services).map(([name, host]) => [name, () => processCpuMs(host.pid)])),
    ...(azurite === undefined ? {} : { azurite: () => processCpuMs(azurite) }),
    "bench process (Cosmos, Service Bus and Web PubSub emulators, client)": ownCpuMs,
  };

  const users: { caller: Record<string, string>; page: PageUser }[] = [];
  /** A user with a Web PubSub client subscribed to its jobs' events, handling them as the page does. */
  const connectUser = async (userId: string) => {
    const caller = { "x-dev-user": userId };
    const page = new PageUser({
      negotiate: async () => ((await (await fetch(`${platform.urls.api}/negotiate`, { headers: caller })).json()) as { url: string }).url,
      readJob: async (id) => {
        const answer = await fetch(`${platform.urls.api}/jobs/${encodeURIComponent(id)}`, { headers: caller });
        if (!answer.ok) throw new Error(`GET /api/jobs/${id} answered ${answer.status}: ${await answer.text()}`);
        return (await answer.json()) as Job;
      },
    });
    const user = { caller, page };
    users.push(user);
    await page.start();
    return user;
  };
  /** The reads the pages made of jobs they did not know yet: done before a batch's CPU is read. */
  const settleReads = () => Promise.all(users.map((user) => user.page.settleReads()));

  /** One job: POST, then its terminal event. Returns POST time and end-to-end time. */
  const runJob = async ({ caller, page }: { caller: Record<string, string>; page: PageUser }, n: number): Promise<{ post: number; total: number }> => {
    const started = performance.now();
    const response = await fetch(`${platform.urls.api}/jobs`, {
      method: "POST",
      headers: { ...caller, "content-type": "application/json" },
      body: JSON.stringify({ kind: "text", text: `job ${n}: the quick brown fox jumps over the lazy dog `.repeat(20) }),
    });
    const posted = performance.now();
    if (response.status !== 202) throw new Error(`POST /api/jobs answered ${response.status}: ${await response.text()}`);
    const created = (await response.json()) as Job;
    page.created(created);
    const end = await page.ended(created.id, 30_000);
    if (end.type !== "job.succeeded") throw new Error(`job ${created.id} ended ${end.type}`);
    return { post: posted - started, total: end.at - started };
  };

  /** One run, with users of its own (a user's quota record grows with its jobs of the last hour). */
  const measure = async (run: number): Promise<RunFigures> => {
    const solo = await connectUser(`bench-${run}-solo`);
    const slots = await Promise.all(Array.from({ length: options.concurrency }, (_, slot) => connectUser(`bench-${run}-slot-${slot}`)));

    let cpu = cpuTimesMs(probes);
    const sequential: { post: number; total: number }[] = [];
    for (let n = 0; n < options.jobs; n += 1) sequential.push(await runJob(solo, n));
    await settleReads();
    const cpuSequential = cpuPerJob(cpu, (cpu = cpuTimesMs(probes)), options.jobs);
    const totals = sequential.map((r) => r.total).sort((a, b) => a - b);
    const posts = sequential.map((r) => r.post).sort((a, b) => a - b);

    let next = 0;
    const began = performance.now();
    await Promise.all(
      slots.map(async (caller) => {
        while (next < options.jobs) await runJob(caller, next++);
      }),
    );
    const seconds = (performance.now() - began) / 1000;
    await settleReads();
    const cpuConcurrent = cpuPerJob(cpu, cpuTimesMs(probes), options.jobs);
    return {
      p50: percentile(totals, 50),
      p95: percentile(totals, 95),
      max: totals.at(-1) ?? Number.NaN,
      postP50: percentile(posts, 50),
      jobsPerSecond: options.jobs / seconds,
      cpuSequential,
      cpuConcurrent,
      load: loadAverage(),
    };
  };

  const print = (label: string, f: RunFigures) => {
    console.log(`${label} (load average ${f.load}):`);
    console.log(`  latency, ${options.jobs} jobs one at a time: median ${ms(f.p50)}, p95 ${ms(f.p95)}, max ${ms(f.max)} (POST answered: median ${ms(f.postP50)})`);
    console.log(`  throughput, ${options.jobs} jobs, ${options.concurrency} in flight: ${f.jobsPerSecond.toFixed(1)} jobs/s`);
    console.log(`  CPU ms per job, one at a time: ${formatCpu(f.cpuSequential)}`);
    console.log(`  CPU ms per job, ${options.concurrency} in flight: ${formatCpu(f.cpuConcurrent)}`);
  };

  try {
    const warm = await connectUser("bench-warm-up");
    const cold = await runJob(warm, 0);
    for (let n = 1; n <= 3; n += 1) await runJob(warm, n); // warm the remaining code paths
    console.log(`End-to-end jobs on the local platform (${options.code}), POST /api/jobs -> job.succeeded over Web PubSub:`);
    console.log(`  first job (handlers and SDKs load on first use): ${ms(cold.total)}`);
    if (azurite === undefined && processCpuMs(process.pid) === undefined) console.log("  (CPU per process needs Linux /proc: only this process's is shown)");

    const runs: RunFigures[] = [];
    for (let run = 1; run <= options.runs; run += 1) {
      runs.push(await measure(run));
      print(options.runs > 1 ? `Run ${run} of ${options.runs}` : "Measured", runs.at(-1)!);
    }
    if (options.runs > 1) {
      const medianOf = (pick: (f: RunFigures) => Record<string, number | undefined>) =>
        Object.fromEntries(
          Object.keys(pick(runs[0]!)).map((name) => {
            const values = runs.map((f) => pick(f)[name]).filter((v): v is number => v !== undefined);
            return [name, values.length === runs.length ? median(values) : undefined];
          }),
        );
      print(`Median of ${options.runs} runs`, {
        p50: median(runs.map((f) => f.p50)),
        p95: median(runs.map((f) => f.p95)),
        max: median(runs.map((f) => f.max)),
        postP50: median(runs.map((f) => f.postP50)),
        jobsPerSecond: median(runs.map((f) => f.jobsPerSecond)),
        cpuSequential: medianOf((f) => f.cpuSequential),
        cpuConcurrent: medianOf((f) => f.cpuConcurrent),
        load: loadAverage(),
      });
    }
  } catch (error) {
    console.error(output.slice(-40).join("\n"));
    throw error;
  } finally {
    for (const user of users) user.page.stop();
    await platform.stop();
    rmSync(scratch, { recursive: true, force: true });
    if (options.cpuProf) console.log(`CPU profiles in ${options.cpuProf}`);
  }
}

exitWhenDone(main);
