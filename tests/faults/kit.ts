/**
 * The fault-injection kit: the whole local platform with its faults within reach, browser-like
 * users, and the audit every fault ends with.
 *
 * The platform runs as `npm start` runs it, except: a Basic-tier Service Bus (no duplicate
 * detection, the harder case), a 5-second message lock (a killed agent's messages come back in
 * seconds rather than a minute), the stuck-job sweeper every second re-sending jobs after 5
 * seconds, a durable Service Bus emulator that can be stopped and started, a TCP fault proxy
 * (../support/fault-proxy.ts) between the services and Cosmos, Blob and Web PubSub, and fault
 * points the test arms (functions/src/shared/fault-points.ts).
 *
 * The audit after a fault: every job the platform holds for the fault's users is final within a
 * bound (read through the api, woken by the users' Web PubSub events, re-read every second since
 * pushes are only hints), none ran twice (one terminal write in the agent's log, one terminal
 * outcome pushed, no more distinct job.running events than attempts), the jobs queue and its dead-letter
 * queue are empty (nothing left unaccounted for), and each user's GET /api/jobs lists exactly their
 * jobs, as their GET /api/jobs/{id} reads them.
 *
 * Pushes are at least once: a publish whose answer was lost is sent again (the SDK's retry), and
 * the message that finished a job publishes its outcome again when it comes back (process-job.ts).
 * A client recognises a repeat by its job, type and attempt; the audit counts repeats apart
 * (`repeatedPushes`) and judges "ran twice" on distinct events.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { RetryMode, ServiceBusClient } from "@azure/service-bus";
import { WebPubSubClient } from "@azure/web-pubsub-client";
import { parseConfig, type PlatformConfig } from "../../infrastructure/config.js";
import type { FaultPoint } from "../../functions/src/shared/fault-points.js";
import { jobResources } from "../../functions/src/shared/job-resources.js";
import { FREE_PORTS, startLocalPlatform, type LocalPlatform, type LocalPlatformOptions } from "../../local/platform.js";
import { TEST_CERTIFICATE_DIRECTORY } from "../support/certificate-directory.js";
import { startFaultProxy, type FaultProxy } from "../support/fault-proxy.js";

export type ProxiedDependency = "cosmos" | "blob" | "webPubSub";

/** The configuration the rig's platform stands for (see the header). */
export const FAULT_RIG_CONFIG: PlatformConfig = parseConfig({
  serviceBusSku: "Basic",
  jobSweepSchedule: "*/1 * * * * *",
  jobRequeueAfterSeconds: "5",
  // A fault's users submit streams of jobs; the per-user quotas (tested in tests/abuse) would refuse them.
  quotaJobsInFlight: "1000",
  quotaJobsPerHour: "10000",
  quotaUploadUrlsPerHour: "10000",
});
export const FAULT_RIG_LOCK_SECONDS = 5;

/** The job as GET /api/jobs/{id} shows it (the fields the audit reads). */
export interface JobView {
  id: string;
  status: "queued" | "running" | "succeeded" | "failed";
  attempts: number;
  error?: { code: string; message: string };
}

interface JobEventData {
  type: "job.running" | "job.succeeded" | "job.failed";
  jobId: string;
  /** On job.running: the attempt it announces. */
  attempts?: number;
}

/** What one request got: an HTTP answer, or no answer at all (the connection died). */
export type Answer = { status: number; retryAfter: string | null; body: unknown } | { status: "no answer"; error: string };

/** The body of an HTTP answer; throws, saying what came instead, for no answer. */
export function bodyOf<T>(answer: Answer): T {
  if (answer.status === "no answer") throw new Error(`no answer: ${answer.error}`);
  return answer.body as T;
}

export interface FaultRig {
  readonly platform: LocalPlatform;
  readonly proxies: Readonly<Record<ProxiedDependency, FaultProxy>>;
  /** Every output line of the platform and the services, `[source] line`. */
  readonly output: string[];
  /** Calls `listener` with each new output line; returns a function that stops the calls. */
  onLine(listener: (line: string) => void): () => void;
  /** Arms a fault point: the next process that reaches it is killed (SIGKILL). */
  arm(point: FaultPoint): void;
  /** A Service Bus client with the emulator's key (what a second producer or an operator would hold). */
  readonly serviceBus: ServiceBusClient;
  user(name: string): Promise<User>;
  stop(): Promise<void>;
}

export interface User {
  readonly id: string;
  /** Every event pushed to this user, in arrival order. */
  readonly events: JobEventData[];
  /** Ids of jobs the api accepted (202) for this user. */
  readonly accepted: Set<string>;
  /** Every answer the api gave this user, in order. */
  readonly answers: { request: string; answer: Answer }[];
  submit(text?: string, options?: { idempotencyKey?: string }): Promise<Answer>;
  request(method: "GET" | "POST", path: string, body?: unknown): Promise<Answer>;
  /** GET /api/jobs, every page. */
  list(): Promise<JobView[]>;
  get(id: string): Promise<JobView>;
  /** Resolves at the next event for one of `ids`, or after `ms`. */
  nextEvent(ids: ReadonlySet<string>, ms: number): Promise<void>;
  /** Resolves once `predicate` holds for the events received so far (checked at each new one); rejects after `ms`. */
  eventsWhere(predicate: (events: readonly JobEventData[]) => boolean, ms?: number): Promise<void>;
  close(): Promise<void>;
}

export interface FaultRigOptions {
  /** Extra platform options (ports stay free ones). */
  platform?: Partial<LocalPlatformOptions>;
}

export async function startFaultRig(options: FaultRigOptions = {}): Promise<FaultRig> {
  const directory = mkdtempSync(join(tmpdir(), "fault-rig-"));
  const faultPoints = join(directory, "fault-points");
  mkdirSync(faultPoints);
  const proxies: Partial<Record<ProxiedDependency, FaultProxy>> = {};
  const output: string[] = [];
  const lineListeners = new Set<(line: string) => void>();
  const record = (line: string) => {
    output.push(line);
    for (const listener of [...lineListeners]) listener(line);
  };
  let platform: LocalPlatform;
  try {
    platform = await startLocalPlatform({
      ports: FREE_PORTS,
      stateDirectory: TEST_CERTIFICATE_DIRECTORY,
      bundleDirectory: directory,
      writeLocalSettings: false,
      web: { outDir: join(directory, "web") },
      progress: (line) => record(`[platform] ${line}`),
      output: (source, line) => record(`[${source}] ${line}`),
      config: FAULT_RIG_CONFIG,
      queues: { [jobResources.queue]: { lockDurationSeconds: FAULT_RIG_LOCK_SECONDS } },
      serviceBusDataDir: join(directory, "servicebus"),
      faultPointsDirectory: faultPoints,
      interpose: async (family, port) => {
        const proxy = await startFaultProxy({ port });
        proxies[family] = proxy;
        return proxy.port;
      },
      ...options.platform,
    });
  } catch (error) {
    await Promise.allSettled(Object.values(proxies).map((proxy) => proxy.close()));
    rmSync(directory, { recursive: true, force: true });
    throw error;
  }
  // Retries as the Functions extension does (exponential from 0.8 s), not the SDK's fixed 30 s, so
  // it is back within seconds after the emulator was stopped and started.
  const serviceBus = new ServiceBusClient(platform.settings.api.ServiceBus!, {
    retryOptions: { mode: RetryMode.Exponential, retryDelayInMs: 800, maxRetryDelayInMs: 10_000, maxRetries: 3 },
  });
  const users: User[] = [];
  return {
    platform,
    proxies: proxies as Record<ProxiedDependency, FaultProxy>,
    output,
    onLine(listener) {
      lineListeners.add(listener);
      return () => lineListeners.delete(listener);
    },
    serviceBus,
    arm(point) {
      writeFileSync(join(faultPoints, point), "");
    },
    async user(name) {
      const user = await connectUser(platform.urls.api, `${name}-${crypto.randomUUID().slice(0, 8)}`);
      users.push(user);
      return user;
    },
    async stop() {
      await Promise.allSettled(users.map((user) => user.close()));
      await serviceBus.close();
      await platform.stop();
      await Promise.allSettled(Object.values(proxies).map((proxy) => proxy.close()));
      rmSync(directory, { recursive: true, force: true });
    },
  };
}

async function connectUser(api: string, id: string): Promise<User> {
  const headers = { "x-dev-user": id };
  const events: JobEventData[] = [];
  const accepted = new Set<string>();
  const answers: { request: string; answer: Answer }[] = [];
  const waiters = new Set<{ ids: ReadonlySet<string> | "any"; wake: () => void }>();

  const request = async (method: "GET" | "POST", path: string, body?: unknown, extraHeaders: Record<string, string> = {}): Promise<Answer> => {
    let answer: Answer;
    try {
      const response = await fetch(`${api}${path}`, {
        method,
        headers: { ...headers, ...extraHeaders, ...(body === undefined ? {} : { "content-type": "application/json" }) },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        signal: AbortSignal.timeout(60_000),
      });
      const text = await response.text();
      answer = { status: response.status, retryAfter: response.headers.get("retry-after"), body: text && /json/.test(response.headers.get("content-type") ?? "") ? JSON.parse(text) : text };
    } catch (error) {
      answer = { status: "no answer", error: error instanceof Error ? `${error.message}${error.cause instanceof Error ? `: ${error.cause.message}` : ""}` : String(error) };
    }
    answers.push({ request: `${method} ${path.split("?")[0]}`, answer });
    return answer;
  };

  let client: WebPubSubClient | undefined;
  let closed = false;
  const connect = async () => {
    client = new WebPubSubClient({
      getClientAccessUrl: async () => {
        const answer = await request("GET", "/negotiate");
        if (answer.status !== 200) throw new Error(`negotiate answered ${answer.status}`);
        return (answer.body as { url: string }).url;
      },
    });
    client.on("group-message", (message) => {
      const event = message.message.data as JobEventData;
      events.push(event);
      for (const waiter of [...waiters]) if (waiter.ids === "any" || waiter.ids.has(event.jobId)) waiter.wake();
    });
    // The client gives up after its reconnect retries (Web PubSub was down a while): start anew.
    client.on("stopped", () => {
      if (!closed) setTimeout(() => void connect().catch(() => {}), 500);
    });
    await client.start();
  };
  await connect();

  return {
    id,
    events,
    accepted,
    answers,
    request: (method, path, body) => request(method, path, body),
    async submit(text = `a job for ${id}: the quick brown fox`, options = {}) {
      const answer = await request("POST", "/jobs", { kind: "text", text }, options.idempotencyKey ? { "idempotency-key": options.idempotencyKey } : {});
      if (answer.status === 202) accepted.add(bodyOf<JobView>(answer).id);
      return answer;
    },
    async list() {
      const jobs: JobView[] = [];
      let token: string | undefined;
      do {
        const answer = await request("GET", `/jobs?pageSize=100${token ? `&continuationToken=${encodeURIComponent(token)}` : ""}`);
        if (answer.status !== 200) throw new Error(`GET /api/jobs answered ${JSON.stringify(answer)}`);
        const page = answer.body as { items: JobView[]; continuationToken?: string };
        jobs.push(...page.items);
        token = page.continuationToken;
      } while (token);
      return jobs;
    },
    async get(jobId) {
      const answer = await request("GET", `/jobs/${jobId}`);
      if (answer.status !== 200) throw new Error(`GET /api/jobs/${jobId} answered ${JSON.stringify(answer)}`);
      return answer.body as JobView;
    },
    nextEvent(ids, ms) {
      return new Promise<void>((resolve) => {
        const waiter = {
          ids,
          wake: () => {
            clearTimeout(timer);
            waiters.delete(waiter);
            resolve();
          },
        };
        const timer = setTimeout(waiter.wake, ms);
        waiters.add(waiter);
      });
    },
    async eventsWhere(predicate, ms = 30_000) {
      const deadline = Date.now() + ms;
      while (!predicate(events)) {
        if (Date.now() > deadline) throw new Error(`${id}: the expected events did not arrive within ${ms} ms; got ${JSON.stringify(events.map((e) => `${e.type} ${e.jobId}`))}`);
        await new Promise<void>((resolve) => {
          const waiter = { ids: "any" as const, wake: () => (clearTimeout(timer), waiters.delete(waiter), resolve()) };
          const timer = setTimeout(waiter.wake, Math.max(0, deadline - Date.now()));
          waiters.add(waiter);
        });
      }
    },
    async close() {
      closed = true;
      client?.stop();
    },
  };
}

const isFinal = (job: JobView) => job.status === "succeeded" || job.status === "failed";

/** Per fault: what the closing note reports. */
export interface FaultReport {
  fault: string;
  /** Jobs the platform holds for the fault's users (accepted with a 202, or created by a request that died). */
  accepted: number;
  finished: number;
  succeeded: number;
  failed: number;
  /** Jobs with more than one terminal write or distinct terminal event, or more distinct job.running events than attempts. */
  doubled: number;
  /** Pushes a user received again (same job, type and attempt): at-least-once delivery, harmless to a client. */
  repeatedPushes: number;
  /** Jobs not final within the bound, or missing from their owner's list. */
  lost: number;
  /** Answers by status while the fault lasted and after ("no answer": the connection died). */
  answers: Record<string, number>;
  /** Jobs that needed more than one attempt. */
  retried: number;
  ms: number;
}

export interface AuditOptions {
  /** How long jobs may take to be final after the fault ended. @default 60000 */
  boundMs?: number;
  /** Every job must have its terminal event (false while Web PubSub was down: pushes are hints). @default true */
  eventsExpected?: boolean;
  /** Jobs that must succeed (rather than fail). @default all */
  mustSucceed?: boolean;
}

/** Waits for every job of `users` to be final and checks the fault's promises; returns the figures. */
export async function audit(rig: FaultRig, fault: string, users: readonly User[], startedAt: number, options: AuditOptions = {}): Promise<FaultReport> {
  const boundMs = options.boundMs ?? 60_000;
  const deadline = Date.now() + boundMs;
  const problems: string[] = [];

  // 1. Every job the platform holds for these users is final within the bound.
  const final = new Map<string, { user: User; job: JobView }>();
  for (;;) {
    const pending: { user: User; ids: Set<string> }[] = [];
    for (const user of users) {
      const listed = await user.list();
      const ids = new Set<string>();
      for (const job of listed) {
        if (isFinal(job)) final.set(job.id, { user, job });
        else ids.add(job.id);
      }
      for (const id of user.accepted) if (!listed.some((job) => job.id === id)) problems.push(`job ${id}: accepted (202) but not in ${user.id}'s list`);
      if (ids.size > 0) pending.push({ user, ids });
    }
    if (pending.length === 0 || problems.length > 0) break;
    if (Date.now() > deadline) {
      for (const { ids } of pending) for (const id of ids) problems.push(`job ${id}: not final ${boundMs} ms after the fault`);
      break;
    }
    // Woken by an event for one of them; re-read every second anyway (pushes are hints).
    await Promise.race(pending.map(({ user, ids }) => user.nextEvent(ids, 1_000)));
  }

  // A job can be final in the api before its push reaches the owner (the agent publishes after the
  // write the list reads): wait for the pushes still on their way, a few seconds at most.
  if (options.eventsExpected ?? true) {
    const owners = new Map<User, string[]>();
    for (const [id, { user }] of final) owners.set(user, [...(owners.get(user) ?? []), id]);
    await Promise.all(
      [...owners].map(([user, ids]) =>
        user.eventsWhere((events) => ids.every((id) => events.some((e) => e.jobId === id && e.type !== "job.running")), 5_000).catch(() => undefined),
      ),
    );
  }

  // 2. None ran twice; each as its owner reads it.
  let doubled = 0;
  let retried = 0;
  let repeatedPushes = 0;
  for (const [id, { user, job }] of final) {
    const reread = await user.get(id);
    if (reread.status !== job.status || reread.attempts !== job.attempts) problems.push(`job ${id}: the list says ${job.status}/${job.attempts}, GET says ${reread.status}/${reread.attempts}`);
    const pushed = user.events.filter((e) => e.jobId === id);
    const distinct = new Set(pushed.map((e) => `${e.type} ${e.attempts ?? ""}`));
    repeatedPushes += pushed.length - distinct.size;
    const terminalEvents = [...distinct].filter((key) => !key.startsWith("job.running")).length;
    const runningEvents = [...distinct].filter((key) => key.startsWith("job.running")).length;
    const terminalWrites = rig.output.filter((line) => line.startsWith("[agent]") && (line.includes(`[job ${id}] job succeeded`) || line.includes(`[job ${id}] job failed:`))).length;
    const twice = terminalWrites > 1 || terminalEvents > 1 || runningEvents > Math.max(job.attempts, 1);
    if (twice) {
      doubled += 1;
      problems.push(`job ${id}: ran twice? ${terminalWrites} terminal writes, ${terminalEvents} terminal events, ${runningEvents} running events for ${job.attempts} attempts`);
    }
    if ((options.eventsExpected ?? true) && terminalEvents !== 1) problems.push(`job ${id}: ${terminalEvents} terminal events, expected 1`);
    if ((options.mustSucceed ?? true) && job.status !== "succeeded") problems.push(`job ${id}: ${job.status} (${job.error?.code}: ${job.error?.message})`);
    if (job.attempts > 1) retried += 1;
  }

  // 3. Nothing left in the queue or its dead-letter queue: every message was settled and every
  //    dead-lettered one handled (a copy of a finished job's message is completed at once).
  for (const [what, subQueueType] of [
    ["the jobs queue", undefined],
    ["the dead-letter queue", "deadLetter"],
  ] as const) {
    // A fresh receiver per look: a receiver's peeks go on from where its last one stopped.
    const peek = async () => {
      const receiver = rig.serviceBus.createReceiver(jobResources.queue, subQueueType ? { subQueueType } : {});
      try {
        return await receiver.peekMessages(10);
      } finally {
        await receiver.close();
      }
    };
    // Service Bus tells nobody when a queue empties: look again until it has (a copy of a finished
    // job's message is settled within a lock duration at most), up to the bound.
    let left = await peek();
    while (left.length > 0 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 250));
      left = await peek();
    }
    if (left.length > 0) problems.push(`${what} still holds ${left.length} message(s): ${left.map((m) => `${String(m.messageId)} ${JSON.stringify(m.body)}`).join(", ")}`);
  }

  // 4. The browser-facing list holds exactly these jobs.
  const answers: Record<string, number> = {};
  for (const user of users) {
    for (const { request, answer } of user.answers) {
      answers[String(answer.status)] = (answers[String(answer.status)] ?? 0) + 1;
      if (answer.status === 503 && !answer.retryAfter) problems.push(`${request}: 503 without Retry-After`);
      if (typeof answer.status === "number" && answer.status >= 500 && answer.status !== 503) problems.push(`${request}: ${answer.status} ${JSON.stringify(answer.body)}`);
    }
  }
  const jobs = [...final.values()].map(({ job }) => job);
  const report: FaultReport = {
    fault,
    accepted: jobs.length + problems.filter((p) => /not final/.test(p)).length, // every job listed, final or not
    finished: jobs.length,
    succeeded: jobs.filter((job) => job.status === "succeeded").length,
    failed: jobs.filter((job) => job.status === "failed").length,
    doubled,
    repeatedPushes,
    lost: problems.filter((p) => /not final|not in .* list/.test(p)).length,
    answers,
    retried,
    ms: Date.now() - startedAt,
  };
  if (problems.length > 0) {
    const tail = rig.output.filter((line) => !/requeueStuckJobs timer run completed/.test(line)).slice(-60).join("\n");
    throw new Error(`${fault}:\n  - ${problems.join("\n  - ")}\nreport: ${JSON.stringify(report)}\nlast output:\n${tail}`);
  }
  return report;
}

/**
 * Resolves with the first output line from now on that matches (or, with `includePast`, one already
 * there); callers bound the wait with the test's timeout.
 */
export function outputLine(rig: FaultRig, pattern: RegExp, options: { includePast?: boolean } = {}): Promise<string> {
  const past = options.includePast ? rig.output.find((line) => pattern.test(line)) : undefined;
  if (past) return Promise.resolve(past);
  return new Promise((resolve) => {
    const off = rig.onLine((line) => {
      if (pattern.test(line)) {
        off();
        resolve(line);
      }
    });
  });
}

/** The report as one table row. */
export function reportRow(report: FaultReport): string {
  const answers = Object.entries(report.answers)
    .map(([status, count]) => `${status}×${count}`)
    .join(" ");
  return `| ${report.fault} | ${report.accepted} | ${report.finished} | ${report.doubled} | ${report.lost} | ${report.retried} | ${report.repeatedPushes} | ${answers} | ${(report.ms / 1000).toFixed(1)} s |`;
}
export const REPORT_HEADER = "| fault | accepted | finished | doubled | lost | retried | pushes repeated | answers | time |\n|---|---|---|---|---|---|---|---|---|";
