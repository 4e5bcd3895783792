/**
 * The agent's domain rules (process-job.ts, dead-letter.ts) and its handlers (handlers.ts, called
 * with real InvocationContext objects), over in-memory adapters that let the tests control timing
 * and failures precisely. agent-emulators.test.ts runs the same paths against the real SDKs.
 */
import { afterAll, beforeEach, describe, expect, it } from "vitest";
import { InvocationContext, type LogLevel } from "@azure/functions";
import { SpanKind } from "@opentelemetry/api";
import { analyzeText } from "../../functions/src/shared/analysis.js";
import { ExternalProcessor } from "../../functions/src/shared/external-processor.js";
import { JOB_LEASE_MS, newJob, type Job, type JobInput } from "../../functions/src/shared/job.js";
import { JobNotFound, StaleJob } from "../../functions/src/shared/job-store.js";
import { jobAttributes, jobSpans } from "../../functions/src/shared/job-telemetry.js";
import { uploadBlobName } from "../../functions/src/shared/upload-names.js";
import { formatTraceparent, injectTraceContext, withSpan } from "../../functions/src/shared/telemetry.js";
import { failDeadLetteredJob, deadLetterError } from "../../functions/src/agent/dead-letter.js";
import { createAgentHandlers, parseJobMessage, redeliveryDelayMs, REDELIVERY_BACKOFF } from "../../functions/src/agent/handlers.js";
import { processJob, type AgentDependencies } from "../../functions/src/agent/process-job.js";
import { InMemoryJobStore, InMemoryUploads, memoryLog, RecordingJobEvents } from "./agent-fakes.js";
import { recordSpans } from "./telemetry-recorder.js";

const recorder = recordSpans();
afterAll(() => recorder.stop());

const owner = "user-a";
let store: InMemoryJobStore;
let events: RecordingJobEvents;
let uploads: InMemoryUploads;
let deps: AgentDependencies;
let sequence = 0;

beforeEach(() => {
  store = new InMemoryJobStore();
  events = new RecordingJobEvents();
  uploads = new InMemoryUploads();
  deps = { store, events, uploads, maxBlobBytes: 4096 };
  recorder.reset();
});

async function queued(input: JobInput, userId = owner): Promise<Job> {
  sequence += 1;
  const job = newJob({ id: `job-${sequence}`, userId, input });
  await store.create(job);
  store.writes.length = 0;
  return job;
}
const messageFor = (job: Job) => ({ jobId: job.id, userId: job.userId });
/** The delivery of a job's message (its sequence number "1"), and of a copy of it sent again ("2"). */
const delivery = { holder: "1" };
const copy = { holder: "2" };
const stored = async (job: Job) => (await store.get(job.userId, job.id)).job;
const eventTypes = () => events.published.map((entry) => entry.event.type);
/** A blob name under the owner's upload prefix, as the api mints them. */
const upload = (id: string, userId = owner) => uploadBlobName(userId, id, 1024);

/**
 * Holds the first delivery that opens an upload inside its analysis until `release()`; later
 * openings pass. `inAnalysis` resolves once the first one is held.
 */
function holdFirstAnalysis(): { inAnalysis: Promise<void>; release: () => void } {
  let release!: () => void;
  const held = new Promise<void>((resolve) => (release = resolve));
  let opening!: () => void;
  const inAnalysis = new Promise<void>((resolve) => (opening = resolve));
  let calls = 0;
  uploads.gate = () => (++calls === 1 ? (opening(), held) : Promise.resolve());
  return { inAnalysis, release };
}

describe("processJob", () => {
  it("runs a text job to succeeded: running first, the result stored, both events to the owner", async () => {
    const text = "the quick brown fox jumps over the lazy dog\nthe end";
    const job = await queued({ kind: "text", text });
    const outcome = await processJob(deps, messageFor(job), delivery, memoryLog());
    expect(outcome).toEqual({ outcome: "succeeded", engine: "builtin" });
    const finished = await stored(job);
    expect(finished).toMatchObject({ status: "succeeded", attempts: 1, result: analyzeText(text) });
    expect(finished.startedAt).toBeDefined();
    expect(finished.finishedAt).toBeDefined();
    expect(store.writes.map((write) => write.status)).toEqual(["running", "succeeded"]);
    expect(eventTypes()).toEqual(["job.running", "job.succeeded"]);
    expect(events.published.every((entry) => entry.userId === owner)).toBe(true);
    expect(events.published[1]?.event).toMatchObject({ jobId: job.id, status: "succeeded", result: analyzeText(text) });
  });

  it("streams an uploaded blob and stores its analysis", async () => {
    const text = "alpha beta ".repeat(300); // 3300 bytes: several 1 KiB chunks
    uploads.put(upload("notes"), text);
    const job = await queued({ kind: "blob", blobName: upload("notes") });
    await processJob(deps, messageFor(job), delivery, memoryLog());
    expect((await stored(job)).result).toEqual(analyzeText(text));
  });

  it("ignores a copy of a finished job's message: no write, no event", async () => {
    const job = await queued({ kind: "text", text: "once" });
    await processJob(deps, messageFor(job), delivery, memoryLog());
    store.writes.length = 0;
    events.published.length = 0;
    const log = memoryLog();
    expect(await processJob(deps, messageFor(job), copy, log)).toEqual({ outcome: "already-finished", status: "succeeded" });
    expect(store.writes).toEqual([]);
    expect(events.published).toEqual([]);
    expect(log.lines.join("\n")).toMatch(/already succeeded; redelivered message ignored/);
  });

  it("publishes the outcome again, writing nothing, when the message that finished the job comes back (its worker lost the answer or died before completing it)", async () => {
    const job = await queued({ kind: "text", text: "once" });
    await processJob(deps, messageFor(job), delivery, memoryLog());
    expect((await stored(job)).finishedBy).toBe(delivery.holder);
    store.writes.length = 0;
    events.published.length = 0;
    expect(await processJob(deps, messageFor(job), delivery, memoryLog())).toEqual({ outcome: "already-finished", status: "succeeded" });
    expect(store.writes).toEqual([]);
    expect(events.published.map((entry) => [entry.userId, entry.event.type, entry.event.jobId])).toEqual([[owner, "job.succeeded", job.id]]);
  });

  it.each([
    ["a blob that does not exist", () => undefined, "BlobNotFound"],
    ["a blob announced larger than the limit", () => uploads.put(upload("b"), "x".repeat(10), 5000), "InputTooLarge"],
    ["a blob whose announced size lies", () => uploads.put(upload("b"), "word ".repeat(2000), 10), "InputTooLarge"],
    ["a binary blob", () => uploads.put(upload("b"), new Uint8Array([0x50, 0x4b, 0x03, 0x04, 0x00, 0x00])), "InputNotText"],
    ["a blob that is not UTF-8", () => uploads.put(upload("b"), new Uint8Array([0xc3, 0x28])), "InputNotText"],
  ])("fails the job at once, without a retry, for %s", async (_label, arrange, code) => {
    arrange();
    const job = await queued({ kind: "blob", blobName: upload("b") });
    const outcome = await processJob(deps, messageFor(job), delivery, memoryLog());
    expect(outcome).toMatchObject({ outcome: "failed", error: { code } });
    expect(await stored(job)).toMatchObject({ status: "failed", attempts: 1, error: { code } });
    expect((await stored(job)).result).toBeUndefined();
    expect(eventTypes()).toEqual(["job.running", "job.failed"]);
    expect(uploads.bytesServed).toBeLessThanOrEqual(deps.maxBlobBytes + 1024);
  });

  it("fails the job without reading anything when the blob is not under the owner's prefix", async () => {
    uploads.put(upload("theirs", "user-b"), "someone else's file");
    for (const blobName of [upload("theirs", "user-b"), "users/../secret.txt", `${upload("b")}/../x.txt`]) {
      const job = await queued({ kind: "blob", blobName });
      expect(await processJob(deps, messageFor(job), delivery, memoryLog())).toMatchObject({ outcome: "failed", error: { code: "UploadNotOwned" } });
    }
    expect(uploads.opened).toBe(0);
  });

  it("throws on a transient failure, leaving the job running, and the redelivery finishes it", async () => {
    uploads.put(upload("b"), "hello world");
    const job = await queued({ kind: "blob", blobName: upload("b") });
    uploads.failWith = Object.assign(new Error("storage unavailable"), { statusCode: 503 });
    await expect(processJob(deps, messageFor(job), delivery, memoryLog())).rejects.toThrow("storage unavailable");
    expect(await stored(job)).toMatchObject({ status: "running", attempts: 1 });
    uploads.failWith = undefined;
    await processJob(deps, messageFor(job), delivery, memoryLog());
    expect(await stored(job)).toMatchObject({ status: "succeeded", attempts: 2 });
  });

  it("throws when the job is not (yet) visible, so the message is retried", async () => {
    await expect(processJob(deps, { jobId: "missing", userId: owner }, delivery, memoryLog())).rejects.toBeInstanceOf(JobNotFound);
  });

  it("never reads another user's job: the message's user id scopes the read", async () => {
    const job = await queued({ kind: "text", text: "private" }, "user-b");
    await expect(processJob(deps, { jobId: job.id, userId: owner }, delivery, memoryLog())).rejects.toBeInstanceOf(JobNotFound);
    expect((await stored(job)).status).toBe("queued");
  });

  it("finishes the job although publishing events fails (pushes are hints)", async () => {
    const job = await queued({ kind: "text", text: "still fine" });
    events.failWith = new Error("web pubsub down");
    const log = memoryLog();
    expect((await processJob(deps, messageFor(job), delivery, log)).outcome).toBe("succeeded");
    expect((await stored(job)).status).toBe("succeeded");
    expect(log.lines.filter((line) => line.startsWith("warn") && line.includes("web pubsub down"))).toHaveLength(2);
  });

  it("the same message delivered twice at once (a lost lock): one runs the job, the other writes nothing and asks for a retry", async () => {
    const job = await queued({ kind: "text", text: "race" });
    const results = await Promise.allSettled([processJob(deps, messageFor(job), delivery, memoryLog()), processJob(deps, messageFor(job), delivery, memoryLog())]);
    const fulfilled = results.filter((result) => result.status === "fulfilled");
    const rejected = results.filter((result): result is PromiseRejectedResult => result.status === "rejected");
    expect(fulfilled).toHaveLength(1);
    expect(rejected).toHaveLength(1);
    expect(rejected[0]?.reason).toBeInstanceOf(StaleJob);
    expect(store.writes.map((write) => write.status)).toEqual(["running", "succeeded"]);
    // The retried message then finds the job finished.
    expect(await processJob(deps, messageFor(job), delivery, memoryLog())).toEqual({ outcome: "already-finished", status: "succeeded" });
  });

  it("two copies of a job's message racing to start (no duplicate detection): one runs it, the copy drops out without a retry", async () => {
    const job = await queued({ kind: "text", text: "sent twice" });
    const outcomes = await Promise.all([processJob(deps, messageFor(job), delivery, memoryLog()), processJob(deps, messageFor(job), copy, memoryLog())]);
    expect(outcomes.map((outcome) => outcome.outcome).sort()).toEqual(["held-elsewhere", "succeeded"]);
    expect(store.writes.map((write) => write.status)).toEqual(["running", "succeeded"]);
    expect(eventTypes()).toEqual(["job.running", "job.succeeded"]);
    expect(await stored(job)).toMatchObject({ status: "succeeded", attempts: 1 });
  });

  it("a copy that arrives while the job runs writes and publishes nothing, and the holder finishes once", async () => {
    uploads.put(upload("b"), "slow blob");
    const job = await queued({ kind: "blob", blobName: upload("b") });
    const { inAnalysis, release } = holdFirstAnalysis();
    const holder = processJob(deps, messageFor(job), delivery, memoryLog());
    await inAnalysis;
    const log = memoryLog();
    expect(await processJob(deps, messageFor(job), copy, log)).toEqual({ outcome: "held-elsewhere", holder: "1" });
    expect(log.lines.join("\n")).toMatch(/running under delivery 1 .* duplicate message is dropped/);
    release();
    expect(await holder).toMatchObject({ outcome: "succeeded" });
    expect(store.writes.map((write) => write.status)).toEqual(["running", "succeeded"]);
    expect(eventTypes()).toEqual(["job.running", "job.succeeded"]);
  });

  it("a redelivery of the holder's own message (its worker died) takes the job over at once, lease or not", async () => {
    const job = await queued({ kind: "text", text: "worker died" });
    await store.transition(await store.get(owner, job.id), { to: "running", holder: "1" });
    expect(await processJob(deps, messageFor(job), delivery, memoryLog())).toMatchObject({ outcome: "succeeded" });
    expect(await stored(job)).toMatchObject({ status: "succeeded", attempts: 2 });
  });

  it("a copy takes a job over once its lease has run out (the holder's message is gone)", async () => {
    const job = await queued({ kind: "text", text: "orphaned" });
    const started = new Date("2026-01-01T00:00:00.000Z");
    await store.transition(await store.get(owner, job.id), { to: "running", holder: "1" }, started);
    const justBefore = { ...deps, now: () => new Date(started.getTime() + JOB_LEASE_MS - 1) };
    expect(await processJob(justBefore, messageFor(job), copy, memoryLog())).toMatchObject({ outcome: "held-elsewhere" });
    const after = { ...deps, now: () => new Date(started.getTime() + JOB_LEASE_MS) };
    expect(await processJob(after, messageFor(job), copy, memoryLog())).toMatchObject({ outcome: "succeeded" });
    expect(await stored(job)).toMatchObject({ status: "succeeded", attempts: 2 });
  });

  it("the same message racing to finish (a lost lock): exactly one terminal write, the loser stops without writing", async () => {
    uploads.put(upload("b"), "slow blob");
    const job = await queued({ kind: "blob", blobName: upload("b") });
    // Hold the first delivery inside its analysis while the second runs the job to the end.
    const { inAnalysis, release } = holdFirstAnalysis();
    const first = processJob(deps, messageFor(job), delivery, memoryLog());
    await inAnalysis;
    const second = await processJob(deps, messageFor(job), delivery, memoryLog());
    release();
    expect(second).toMatchObject({ outcome: "succeeded" });
    expect(await first).toEqual({ outcome: "lost-race", status: "succeeded" });
    expect(store.writes.map((write) => write.status)).toEqual(["running", "running", "succeeded"]);
    expect(await stored(job)).toMatchObject({ status: "succeeded", attempts: 2 });
  });

  it("uses the built-in analysis when the external processor's breaker is open", async () => {
    const processor = new ExternalProcessor({ url: "http://127.0.0.1:9/", maxBytes: 4096, retries: 0, breakAfterFailures: 1, timeoutMs: 500 });
    const withExternal = { ...deps, externalProcessor: processor };
    const first = await queued({ kind: "text", text: "first job" });
    expect(await processJob(withExternal, messageFor(first), delivery, memoryLog())).toEqual({ outcome: "succeeded", engine: "builtin", fallbackReason: "unavailable" });
    expect(processor.circuitState).toBe("open");
    const second = await queued({ kind: "text", text: "second job" });
    const log = memoryLog();
    expect(await processJob(withExternal, messageFor(second), delivery, log)).toEqual({ outcome: "succeeded", engine: "builtin", fallbackReason: "circuit-open" });
    expect((await stored(second)).result).toEqual(analyzeText("second job"));
    expect(log.lines.join("\n")).toMatch(/external processor not used \(circuit-open\)/);
  });
});

describe("failDeadLetteredJob", () => {
  const reason = { reason: "MaxDeliveryCountExceeded", description: "Message could not be consumed after 10 delivery attempts.", deliveryCount: 10 };

  it.each(["queued", "running"] as const)("marks a %s job failed with the reason and tells the owner", async (status) => {
    const job = await queued({ kind: "text", text: "doomed" });
    if (status === "running") await store.transition(await store.get(owner, job.id), { to: "running", holder: "1" });
    expect(await failDeadLetteredJob(deps, messageFor(job), delivery, reason, memoryLog())).toBe("failed");
    expect(await stored(job)).toMatchObject({ status: "failed", error: { code: "MaxDeliveryCountExceeded" } });
    expect(events.published.at(-1)?.event).toMatchObject({ type: "job.failed", jobId: job.id, error: { code: "MaxDeliveryCountExceeded" } });
  });

  it("leaves a job that another delivery holds to that delivery (the dead-lettered message was a copy)", async () => {
    const job = await queued({ kind: "text", text: "held" });
    await store.transition(await store.get(owner, job.id), { to: "running", holder: "1" });
    store.writes.length = 0;
    expect(await failDeadLetteredJob(deps, messageFor(job), copy, reason, memoryLog())).toBe("held-elsewhere");
    expect(store.writes).toEqual([]);
    // The holder's own message dead-lettered: the job is failed.
    expect(await failDeadLetteredJob(deps, messageFor(job), delivery, reason, memoryLog())).toBe("failed");
  });

  it("leaves a finished job alone", async () => {
    const job = await queued({ kind: "text", text: "made it" });
    await processJob(deps, messageFor(job), delivery, memoryLog());
    store.writes.length = 0;
    expect(await failDeadLetteredJob(deps, messageFor(job), delivery, reason, memoryLog())).toBe("already-finished");
    expect(store.writes).toEqual([]);
    expect((await stored(job)).status).toBe("succeeded");
  });

  it("completes quietly for a job that no longer exists", async () => {
    expect(await failDeadLetteredJob(deps, { jobId: "gone", userId: owner }, delivery, reason, memoryLog())).toBe("not-found");
  });

  it("re-reads and retries when a late delivery changes the job under it", async () => {
    const job = await queued({ kind: "text", text: "contended" });
    let interfered = false;
    store.beforeTransition = async (current, transition) => {
      if (transition.to === "failed" && !interfered) {
        interfered = true;
        await store.transition(current, { to: "running", holder: "1" }); // a late delivery restarts it
      }
    };
    expect(await failDeadLetteredJob(deps, messageFor(job), delivery, reason, memoryLog())).toBe("failed");
    expect(await stored(job)).toMatchObject({ status: "failed", attempts: 1 });
  });

  it("turns Service Bus reasons into a message for the owner without leaking odd input", () => {
    expect(deadLetterError(reason)).toEqual({ code: "MaxDeliveryCountExceeded", message: expect.stringMatching(/10 times/) });
    expect(deadLetterError({ reason: "TTLExpiredException" }).code).toBe("TTLExpiredException");
    expect(deadLetterError({ reason: "<script>", description: "x".repeat(2000) })).toMatchObject({ code: "DeadLettered" });
    expect(deadLetterError({ description: "x".repeat(2000) }).message.length).toBeLessThan(600);
  });
});

describe("handlers (real InvocationContext)", () => {
  function invocation(triggerMetadata: Record<string, unknown>) {
    const logs: { level: LogLevel; text: string }[] = [];
    const context = new InvocationContext({
      invocationId: `inv-${++sequence}`,
      functionName: "processJob",
      logHandler: (level, ...args) => logs.push({ level, text: args.map(String).join(" ") }),
      triggerMetadata,
    });
    return { context, logs };
  }
  const handlers = () => createAgentHandlers(async () => deps, { redeliveryDelayMs: () => 0 });

  it("continues the producer's trace, tags every log line with the job id, and finishes the job", async () => {
    const job = await queued({ kind: "text", text: "traced text" });
    const { applicationProperties, producerSpan } = await withSpan("send jobs", { kind: SpanKind.PRODUCER }, async (span) => ({
      applicationProperties: injectTraceContext({}),
      producerSpan: span.spanContext(),
    }));
    const { context, logs } = invocation({ messageId: job.id, deliveryCount: 1, applicationProperties });
    await handlers().processJobMessage(messageFor(job), context);
    expect((await stored(job)).status).toBe("succeeded");
    expect(logs.length).toBeGreaterThan(0);
    for (const line of logs) expect(line.text).toContain(`[job ${job.id}]`);
    const agentSpan = recorder.spans().find((span) => span.name === "process job")!;
    expect(agentSpan.spanContext().traceId).toBe(producerSpan.traceId);
    expect(agentSpan.parentSpanContext?.spanId).toBe(producerSpan.spanId);
    expect(agentSpan.attributes).toMatchObject({ "job.id": job.id, "job.outcome": "succeeded", "analysis.engine": "builtin" });
    const publishSpans = recorder.spans().filter((span) => span.name.startsWith("publish job."));
    expect(publishSpans.map((span) => span.name)).toEqual(["publish job.running", "publish job.succeeded"]);
    for (const span of publishSpans) expect(span.parentSpanContext?.spanId).toBe(agentSpan.spanContext().spanId);
    expect(formatTraceparent(producerSpan)).toBe(applicationProperties.traceparent);
  });

  it("accepts the body as JSON text or bytes, and discards (without throwing) a message that is no job", async () => {
    const job = await queued({ kind: "text", text: "bytes" });
    await handlers().processJobMessage(Buffer.from(JSON.stringify(messageFor(job))), invocation({}).context);
    expect((await stored(job)).status).toBe("succeeded");
    for (const body of ["not json", { jobId: "x" }, { jobId: "x", userId: "u", extra: 1 }, 42, null]) {
      const { context, logs } = invocation({ messageId: "m-1" });
      await expect(handlers().processJobMessage(body, context)).resolves.toBeUndefined();
      expect(logs.some((line) => line.level === "error" && line.text.includes("m-1"))).toBe(true);
    }
    expect(parseJobMessage(JSON.stringify({ jobId: "a", userId: "b" }))).toEqual({ jobId: "a", userId: "b" });
  });

  it("records a failed job's reason on its span, under the names the alerts and the workbook query", async () => {
    const job = await queued({ kind: "blob", blobName: upload("missing") });
    await handlers().processJobMessage(messageFor(job), invocation({ deliveryCount: 1 }).context);
    expect((await stored(job)).status).toBe("failed");
    const span = recorder.spans().find((s) => s.name === jobSpans.process && s.attributes[jobAttributes.id] === job.id)!;
    expect(span.attributes).toMatchObject({ [jobAttributes.outcome]: "failed", [jobAttributes.errorCode]: "BlobNotFound", [jobAttributes.deliveryCount]: 1 });
  });

  it("rethrows a transient failure so the host abandons the message, and marks the span failed", async () => {
    uploads.put(upload("b"), "text");
    uploads.failWith = new Error("storage timeout");
    const job = await queued({ kind: "blob", blobName: upload("b") });
    const { context, logs } = invocation({ deliveryCount: 3 });
    await expect(handlers().processJobMessage(messageFor(job), context)).rejects.toThrow("storage timeout");
    expect(logs.some((line) => line.level === "error" && line.text.includes("(delivery 3)"))).toBe(true);
    expect(recorder.spans().find((span) => span.name === "process job")?.status.code).toBe(2); // ERROR
  });

  it("waits the backoff for the delivery before handing a failed message back", async () => {
    uploads.put(upload("b"), "text");
    uploads.failWith = new Error("storage timeout");
    const job = await queued({ kind: "blob", blobName: upload("b") });
    const seen: (number | undefined)[] = [];
    const slow = createAgentHandlers(async () => deps, { redeliveryDelayMs: (count) => (seen.push(count), 150) });
    const started = Date.now();
    await expect(slow.processJobMessage(messageFor(job), invocation({ deliveryCount: 4 }).context)).rejects.toThrow("storage timeout");
    expect(Date.now() - started).toBeGreaterThanOrEqual(140);
    expect(seen).toEqual([4]);
  });

  it("backs off exponentially per delivery, capped, with jitter between half and all of it", () => {
    const most = (count: number | undefined) => redeliveryDelayMs(count, () => 1);
    const least = (count: number | undefined) => redeliveryDelayMs(count, () => 0);
    expect([1, 2, 3, 4, 5, 6].map(most)).toEqual([1000, 2000, 4000, 8000, 16000, 30000]);
    expect(most(1000)).toBe(REDELIVERY_BACKOFF.maxMs);
    expect(least(3)).toBe(2000);
    expect(most(undefined)).toBe(REDELIVERY_BACKOFF.initialMs);
    expect(most(0)).toBe(REDELIVERY_BACKOFF.initialMs);
  });

  it.each([
    ["camelCased by @azure/functions (a real invocation)", { deadLetterReason: "MaxDeliveryCountExceeded", deadLetterErrorDescription: "too many" }],
    ["as the SDK names them", { DeadLetterReason: "MaxDeliveryCountExceeded", DeadLetterErrorDescription: "too many" }],
  ])("dead-letter handler: reads the reason from the application properties %s and fails the job", async (_label, applicationProperties) => {
    const job = await queued({ kind: "text", text: "never processed" });
    const { context } = invocation({ messageId: job.id, deliveryCount: 1, applicationProperties });
    await handlers().failDeadLetteredJobMessage(messageFor(job), context);
    expect(await stored(job)).toMatchObject({ status: "failed", error: { code: "MaxDeliveryCountExceeded" } });
    expect(eventTypes()).toEqual(["job.failed"]);
  });
});
