/**
 * The stuck-job sweeper (api/requeue.ts): which jobs it re-sends and when, that it records each
 * re-send before sending (so concurrent sweeps send once), and that the agent runs a re-sent job
 * once however many copies of its message exist.
 */
import { beforeEach, describe, expect, it } from "vitest";
import { InvocationContext } from "@azure/functions";
import { createRequeueHandler, requeueDueAt, requeueMessageId, requeueStuckJobs } from "../../functions/src/api/requeue.js";
import { processJob } from "../../functions/src/agent/process-job.js";
import { applyTransition, JOB_LEASE_MS, markRequeued, newJob, type Job, type JobMessage } from "../../functions/src/shared/job.js";
import type { JobQueue, SendOptions } from "../../functions/src/shared/job-queue.js";
import { InMemoryJobStore, InMemoryUploads, memoryLog, RecordingJobEvents } from "./agent-fakes.js";

const MINUTE = 60_000;
const AFTER = 5 * MINUTE;
const t0 = new Date("2026-02-01T00:00:00.000Z");
const at = (ms: number) => new Date(t0.getTime() + ms);

class RecordingQueue implements JobQueue {
  readonly sent: { message: JobMessage; options: SendOptions }[] = [];
  failWith: Error | undefined;
  async send(message: JobMessage, options: SendOptions = {}): Promise<void> {
    if (this.failWith) throw this.failWith;
    this.sent.push({ message, options });
  }
  async ping(): Promise<void> {}
  async close(): Promise<void> {}
}

let store: InMemoryJobStore;
let queue: RecordingQueue;
let sequence = 0;

beforeEach(() => {
  store = new InMemoryJobStore();
  queue = new RecordingQueue();
});

async function created(now = t0): Promise<Job> {
  sequence += 1;
  return (await store.create(newJob({ id: `job-${sequence}`, userId: "u", input: { kind: "text", text: "stuck words" }, now }))).job;
}
const sweep = (now: Date) => requeueStuckJobs({ jobs: store, queue, requeueAfterMs: AFTER, now: () => now }, memoryLog());

describe("requeueDueAt", () => {
  const queued = newJob({ id: "j", userId: "u", input: { kind: "text", text: "x" }, now: t0 });

  it("is the creation plus the wait for a queued job, and doubles per re-send up to sixteen times", () => {
    expect(requeueDueAt(queued, AFTER)).toBe(t0.getTime() + AFTER);
    let job = queued;
    const waits: number[] = [];
    for (let n = 1; n <= 6; n += 1) {
      job = markRequeued(job, at(0));
      waits.push(requeueDueAt(job, AFTER)! - t0.getTime());
    }
    expect(waits.map((ms) => ms / AFTER)).toEqual([2, 4, 8, 16, 16, 16]);
  });

  it("counts from the end of the lease for a running job, and never for a finished one", () => {
    const running = applyTransition(queued, { to: "running", holder: "1" }, at(MINUTE));
    expect(requeueDueAt(running, AFTER)).toBe(t0.getTime() + MINUTE + JOB_LEASE_MS + AFTER);
    expect(requeueDueAt(applyTransition(running, { to: "failed", error: { code: "X", message: "x" } }), AFTER)).toBeUndefined();
  });
});

describe("requeueStuckJobs", () => {
  it("re-sends a job the api never sent (it died between create and send) once it is due, with a message id of its own", async () => {
    const job = await created();
    expect((await sweep(at(AFTER - 1))).requeued).toEqual([]);
    expect((await sweep(at(AFTER))).requeued).toEqual([job.id]);
    expect(queue.sent).toEqual([{ message: { jobId: job.id, userId: "u" }, options: { messageId: requeueMessageId(job.id, 1) } }]);
    expect((await store.get("u", job.id)).job).toMatchObject({ status: "queued", requeues: 1, requeuedAt: at(AFTER).toISOString() });
    // Not again before the doubled wait.
    expect((await sweep(at(AFTER + 2 * AFTER - 1))).requeued).toEqual([]);
    expect((await sweep(at(AFTER + 2 * AFTER))).requeued).toEqual([job.id]);
    expect(queue.sent.map((s) => s.options.messageId)).toEqual([requeueMessageId(job.id, 1), requeueMessageId(job.id, 2)]);
  });

  it("leaves finished jobs, fresh jobs and running jobs within their lease alone", async () => {
    const fresh = await created(at(10 * MINUTE));
    const running = await store.transition(await store.get("u", (await created()).id), { to: "running", holder: "1" }, at(MINUTE));
    const finished = await store.transition(running, { to: "succeeded", result: { characters: 1, words: 1, lines: 1, topWords: [], readingTimeSeconds: 0 } }, at(MINUTE));
    expect(finished.job.status).toBe("succeeded");
    const lateRunning = await store.transition(await store.get("u", (await created()).id), { to: "running", holder: "2" }, at(MINUTE));
    const report = await sweep(at(10 * MINUTE));
    expect(report.requeued).toEqual([]);
    expect(queue.sent).toEqual([]);
    // Past lease and wait, the running job whose message is gone is re-sent.
    expect((await sweep(at(MINUTE + JOB_LEASE_MS + AFTER))).requeued).toEqual([lateRunning.job.id]);
    expect(fresh.status).toBe("queued");
  });

  it("records the re-send before sending: of two sweeps that read the same version, one sends", async () => {
    const job = await created();
    const [first, second] = await Promise.all([sweep(at(AFTER)), sweep(at(AFTER))]);
    expect([...first.requeued, ...second.requeued]).toEqual([job.id]);
    expect(first.changedMeanwhile + second.changedMeanwhile).toBe(1);
    expect(queue.sent).toHaveLength(1);
  });

  it("fails the sweep when a send fails, after trying every due job, and the job is due again later", async () => {
    const [a, b] = [await created(), await created()];
    queue.failWith = Object.assign(new Error("service bus down"), { code: "ServiceCommunicationProblem" });
    await expect(sweep(at(AFTER))).rejects.toThrow(/2 of 2 re-sends failed/);
    queue.failWith = undefined;
    expect((await sweep(at(AFTER + 2 * AFTER))).requeued.sort()).toEqual([a.id, b.id].sort());
  });

  it("a re-sent job that still had its first message runs once: the second copy finds it finished or held", async () => {
    const job = await created();
    await sweep(at(AFTER));
    const deps = { store, events: new RecordingJobEvents(), uploads: new InMemoryUploads(), maxBlobBytes: 1024 };
    const message = { jobId: job.id, userId: "u" };
    const outcomes = await Promise.all([processJob(deps, message, { holder: "1" }, memoryLog()), processJob(deps, message, { holder: "2" }, memoryLog())]);
    expect(outcomes.map((o) => o.outcome).sort()).toEqual(["held-elsewhere", "succeeded"]);
    expect(await processJob(deps, message, { holder: "2" }, memoryLog())).toEqual({ outcome: "already-finished", status: "succeeded" });
    expect(deps.events.published.map((p) => p.event.type)).toEqual(["job.running", "job.succeeded"]);
  });
});

describe("the timer handler", () => {
  it("sweeps with the api's dependencies and logs what it re-sent", async () => {
    const job = await created(new Date(Date.now() - 2 * AFTER));
    const lines: string[] = [];
    const context = new InvocationContext({ functionName: "requeueStuckJobs", logHandler: (_level, ...args) => lines.push(args.map(String).join(" ")) });
    const handler = createRequeueHandler(async () => ({ jobs: store, queue, requeueAfterMs: AFTER }));
    const now = new Date().toISOString();
    await handler({ isPastDue: true, schedule: { adjustForDST: false }, scheduleStatus: { last: now, next: now, lastUpdated: now } }, context);
    expect(queue.sent.map((s) => s.message.jobId)).toEqual([job.id]);
    expect(lines.join("\n")).toMatch(/running late/);
    expect(lines.join("\n")).toMatch(/1 re-sent/);
  });
});
