/**
 * `npm run bench:ops`: the Azure operations one job costs, counted on the local platform at the
 * emulators' boundary, and written to scripts/cost/measured.json for `npm run cost`.
 *
 *   npm run bench:ops -- [--jobs 50] [--concurrency 1] [--out scripts/cost/measured.json] [--no-write]
 *
 * One user submits the jobs the way the web app does: a session (GET /api/negotiate, the Web PubSub
 * connection, GET /api/jobs), then `--jobs` text jobs (POST /api/jobs) and `--jobs` upload jobs
 * (POST /api/uploads, PUT of the file to Blob Storage, POST /api/jobs); each job event pushed is
 * applied to the job created, as the page does (web/src/jobs.ts), and a job the client does not
 * know is read (GET /api/jobs/{id}). Counted:
 * - Cosmos DB and Blob Storage requests through a counting HTTP(S) proxy (`interpose`);
 * - Service Bus operations from the emulator's operation meter;
 * - Web PubSub outbound messages as the client receives them (their size as JSON frames), and the
 *   services' REST calls through the proxy;
 * - function executions and their durations from the local Functions host's execution lines.
 * The session, the text jobs and the upload jobs are counted apart (each window starts after the
 * previous one has settled). Timer runs (the stuck-job sweeper) are idle cost and left out of jobs.
 * One job at a time by default: one user's concurrent submissions race for their quota record
 * (an etag-guarded replace), and the retries would count as the job's cost.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { parseArgs } from "node:util";
import { loopbackCertificateIn } from "@platform-tools/local-services";
import { FREE_PORTS, startLocalPlatform } from "../../local/platform.js";
import type { Job } from "../../web/src/api-types.js";
import { exitWhenDone } from "../bench/exit-when-done.js";
import { PageUser } from "../bench/page-user.js";
import { repoRoot } from "../bundle/services.js";
import { startCountingProxy, type CountingProxy } from "./counting-proxy.js";
import { countBlob, countCosmos, countExecution, countServiceBus, countWebPubSubMessage, emptyTally, parseExecutionLine, perJob, type Tally } from "./operations.js";
import { formatTally, type MeasuredFile } from "./measured.js";

interface Options {
  jobs: number;
  concurrency: number;
  out: string;
  write: boolean;
}

function parseMeasureOptions(argv: string[]): Options {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      jobs: { type: "string", default: "50" },
      concurrency: { type: "string", default: "1" },
      out: { type: "string", default: join(repoRoot, "scripts", "cost", "measured.json") },
      "no-write": { type: "boolean", default: false },
    },
  });
  const integer = (name: string, raw: string, max: number): number => {
    const n = Number(raw);
    if (!Number.isInteger(n) || n < 1 || n > max) throw new Error(`--${name} must be an integer from 1 to ${max} (got ${raw})`);
    return n;
  };
  return { jobs: integer("jobs", values.jobs, 2000), concurrency: integer("concurrency", values.concurrency, 64), out: values.out, write: !values["no-write"] };
}

const TEXT = "The quick brown fox jumps over the lazy dog. ".repeat(22); // about 1 KB, a paragraph
const UPLOAD = Buffer.from("A line of an uploaded text file, to be analysed.\n".repeat(84)); // about 4 KB

async function main(): Promise<void> {
  const options = parseMeasureOptions(process.argv.slice(2));
  const scratch = mkdtempSync(join(tmpdir(), "bench-ops-"));
  const stateDirectory = join(repoRoot, ".tmp", "local-platform");
  const certificate = await loopbackCertificateIn(stateDirectory);
  let tally = emptyTally();
  /** Wakes whoever waits for the counts to settle. */
  let onCount: (() => void) | undefined;
  const counted = () => onCount?.();
  const proxies: CountingProxy[] = [];
  const output: string[] = [];
  const timers = { executions: 0, ms: 0 };
  /**
   * Since the start, across windows: messages settled and api responses read, and the host's lines
   * for those executions (logged when they end, possibly after the client saw the outcome).
   */
  const messages = { settled: 0, executionLines: 0, responses: 0, httpLines: 0 };

  console.log("Starting the local platform on free ports, with counting proxies…");
  const platform = await startLocalPlatform({
    ports: FREE_PORTS,
    bundleDirectory: scratch,
    stateDirectory,
    writeLocalSettings: false,
    web: { outDir: join(scratch, "web") },
    // One user submits every job: the per-user quotas would throttle the bench.
    config: { quotaJobsPerHour: 10_000, quotaJobsInFlight: 1_000, quotaUploadUrlsPerHour: 10_000 },
    progress: () => {},
    output: (source, line) => {
      output.push(`[${source}] ${line}`);
      const execution = parseExecutionLine(line);
      if (!execution) return;
      if (execution.trigger === "timer") {
        timers.executions += 1;
        timers.ms += execution.ms;
        return;
      }
      countExecution(tally, execution);
      if (execution.trigger === "serviceBus") messages.executionLines += 1;
      if (execution.trigger === "http") messages.httpLines += 1;
      counted();
    },
    onServiceBusOperation: (operation) => {
      const before = tally.serviceBus.settles;
      countServiceBus(tally, operation);
      messages.settled += tally.serviceBus.settles - before;
      counted();
    },
    interpose: async (family, port) => {
      const proxy = await startCountingProxy({
        targetPort: port,
        ...(family === "cosmos" ? { tls: { cert: certificate.cert, key: certificate.key } } : {}),
        onExchange: (exchange) => {
          if (family === "cosmos") countCosmos(tally, exchange);
          else if (family === "blob") countBlob(tally, exchange);
          else tally.webPubSub.restCalls += 1;
          counted();
        },
      });
      proxies.push(proxy);
      return proxy.port;
    },
  });
  console.log(`  ready in ${(platform.startupMs / 1000).toFixed(1)} s`);

  const caller = { "x-dev-user": "bench-ops" };
  const api = platform.urls.api;
  const call = async (method: string, path: string, body?: unknown, headers: Record<string, string> = {}) => {
    const send = () =>
      fetch(`${api}${path}`, {
        method,
        headers: { ...caller, accept: "application/json", ...(body === undefined ? {} : { "content-type": "application/json" }), ...headers },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
    // A kept-alive connection the host closed as it was reused fails before any request is sent: send once more.
    const response = await send().catch((error: unknown) => {
      if ((error as { cause?: { code?: string } }).cause?.code !== "UND_ERR_SOCKET") throw error;
      return send();
    });
    messages.responses += 1;
    const text = await response.text();
    if (!response.ok) throw new Error(`${method} ${path} answered ${response.status}: ${text}`);
    return text ? (JSON.parse(text) as Record<string, unknown>) : {};
  };

  /** The one user, handling each job event as the page does (an unknown job read through `call`, counted). */
  const page = new PageUser({
    negotiate: async () => (await call("GET", "/negotiate")).url as string,
    readJob: async (id) => (await call("GET", `/jobs/${encodeURIComponent(id)}`)) as unknown as Job,
    onMessage: (message) =>
      countWebPubSubMessage(tally, Buffer.byteLength(JSON.stringify({ type: "message", from: "group", group: message.group, dataType: message.dataType, data: message.data, sequenceId: message.sequenceId }))),
  });
  const client = page.client;
  const terminal = (id: string) => page.ended(id, 60_000);

  /**
   * Waits until every message received was settled and its execution logged (the host may log it
   * after the settlement), and no request is in flight: the window's counts are complete.
   */
  const settled = async () => {
    await page.settleReads();
    const pending = () => tally.serviceBus.settles < tally.serviceBus.receives || messages.executionLines < messages.settled || messages.httpLines < messages.responses;
    while (pending()) await new Promise<void>((resolve) => (onCount = resolve));
    onCount = undefined;
  };
  const window = async (work: () => Promise<void>): Promise<Tally> => {
    await settled();
    tally = emptyTally();
    await work();
    await settled();
    return tally;
  };
  const runAll = async (count: number, job: (n: number) => Promise<void>) => {
    let next = 0;
    await Promise.all(Array.from({ length: options.concurrency }, async () => {
      while (next < count) await job(next++);
    }));
  };
  const textJob = async (n: number) => {
    const created = await call("POST", "/jobs", { kind: "text", text: `${n}: ${TEXT}` }, { "idempotency-key": crypto.randomUUID() });
    page.created(created as unknown as Job);
    await terminal(created.id as string);
  };
  const uploadJob = async () => {
    const upload = await call("POST", "/uploads", { size: UPLOAD.length });
    const put = await fetch(upload.uploadUrl as string, { method: "PUT", headers: { ...(upload.headers as Record<string, string>), "content-type": "text/plain" }, body: UPLOAD });
    if (!put.ok) throw new Error(`the upload PUT answered ${put.status}: ${await put.text()}`);
    const created = await call("POST", "/jobs", { kind: "blob", blobName: upload.blobName }, { "idempotency-key": crypto.randomUUID() });
    page.created(created as unknown as Job);
    await terminal(created.id as string);
  };

  try {
    // Warm up: first requests read account and container metadata, which later ones do not.
    await window(async () => {
      await client.start();
      await textJob(-1);
      await uploadJob();
    });
    const session = await window(async () => {
      const stopped = new Promise<void>((resolve) => client.on("stopped", () => resolve()));
      client.stop();
      await stopped;
      await client.start();
      await call("GET", "/jobs?pageSize=20");
    });
    console.log(`Counting ${options.jobs} text jobs and ${options.jobs} upload jobs, ${options.concurrency} at a time…`);
    const text = await window(() => runAll(options.jobs, textJob));
    const upload = await window(() => runAll(options.jobs, () => uploadJob()));
    const commit = execFileSync("git", ["rev-parse", "--short", "HEAD"], { cwd: repoRoot, encoding: "utf8" }).trim();
    const dirty = execFileSync("git", ["status", "--porcelain", "--untracked-files=no"], { cwd: repoRoot, encoding: "utf8" }).trim() !== "";
    const measured: MeasuredFile = {
      $comment: "Written by npm run bench:ops (scripts/cost/measure.ts); read by npm run cost. Counts per job on the local platform.",
      measuredAt: new Date().toISOString().slice(0, 10),
      commit: `${commit}${dirty ? " (with uncommitted changes)" : ""}`,
      jobsPerKind: options.jobs,
      perJob: { text: perJob(text, options.jobs), upload: perJob(upload, options.jobs) },
      perSession: session,
      timerRunMs: timers.executions > 0 ? Math.round(timers.ms / timers.executions) : null,
    };
    console.log(formatTally(measured));
    if (options.write) {
      writeFileSync(options.out, `${JSON.stringify(measured, null, 2)}\n`);
      console.log(`\nWrote ${relative(process.cwd(), options.out) || options.out}`);
    }
  } catch (error) {
    console.error(output.slice(-40).join("\n"));
    throw error;
  } finally {
    client.stop();
    await platform.stop();
    await Promise.allSettled(proxies.map((proxy) => proxy.close()));
    rmSync(scratch, { recursive: true, force: true });
  }
}

exitWhenDone(main);
