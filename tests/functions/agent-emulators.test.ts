/**
 * The agent against the emulators with the real SDKs, wired exactly as the deployed app wires it
 * (clients.ts, from app settings in their local shapes): Cosmos (@vercel/cosmosdb-server over
 * HTTPS), Blob Storage (Azurite), Service Bus (the local AMQP emulator) and Web PubSub (the local
 * emulator, with a real @azure/web-pubsub-client in the owner's group). Messages are received in
 * peek-lock and settled the way the Functions host does: complete on success, abandon on a throw.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { InvocationContext } from "@azure/functions";
import { ServiceBusClient, type ServiceBusReceivedMessage, type ServiceBusReceiver } from "@azure/service-bus";
import { BlobServiceClient, type ContainerClient } from "@azure/storage-blob";
import { WebPubSubServiceClient } from "@azure/web-pubsub";
import { SpanKind } from "@opentelemetry/api";
import { analyzeText } from "../../functions/src/shared/analysis.js";
import { newJob, type PinnedUpload, type Job, type JobEvent, type JobInput } from "../../functions/src/shared/job.js";
import { userGroup } from "../../functions/src/shared/job-events.js";
import { ServiceBusJobQueue } from "../../functions/src/shared/job-queue.js";
import { StaleJob } from "../../functions/src/shared/job-store.js";
import { uploadBlobName } from "../../functions/src/shared/upload-names.js";
import { withSpan } from "../../functions/src/shared/telemetry.js";
import { createAgentDependencies } from "../../functions/src/agent/clients.js";
import { createAgentHandlers } from "../../functions/src/agent/handlers.js";
import { processJob, type AgentDependencies } from "../../functions/src/agent/process-job.js";
import type { UploadsReader } from "../../functions/src/agent/uploads.js";
import { startTestPlatform, TEST_HUB, TEST_QUEUE_NAME, TEST_UPLOAD_MAX_BYTES, TEST_UPLOADS_CONTAINER, type TestPlatform } from "../support/emulators.js";
import { connectClient, stopAllClients, waitFor, type RecordingClient } from "@platform-tools/webpubsub-emulator/testing";
import { memoryLog } from "./agent-fakes.js";
import { recordSpans } from "./telemetry-recorder.js";

const MAX_DELIVERIES = 3;
/** The redelivery backoff is tested on its own (agent.test.ts) and by the hosted run (agent-host.test.ts). */
const noBackoff = { redeliveryDelayMs: () => 0 };

let platform: TestPlatform;
let uploadsContainer: ContainerClient;
let webPubSubClient: WebPubSubServiceClient;
let serviceBusClient: ServiceBusClient;
let deps: AgentDependencies;
const recorder = recordSpans();

beforeAll(async () => {
  platform = await startTestPlatform({ blob: true, serviceBus: { maxDeliveryCount: MAX_DELIVERIES }, webPubSub: true });
  // The production wiring, from settings alone.
  deps = await createAgentDependencies({ ...process.env, ...platform.settings });
  uploadsContainer = BlobServiceClient.fromConnectionString(platform.settings.DataStorage!).getContainerClient(TEST_UPLOADS_CONTAINER);
  webPubSubClient = new WebPubSubServiceClient(platform.settings.WebPubSub!, TEST_HUB, { allowInsecureConnection: true });
  serviceBusClient = new ServiceBusClient(platform.settings.ServiceBus!);
}, 60_000);

afterEach(() => stopAllClients());

afterAll(async () => {
  await serviceBusClient?.close();
  await platform?.stop();
  await recorder.stop();
});

let sequence = 0;
async function createJob(input: JobInput, userId: string, upload?: PinnedUpload): Promise<Job> {
  sequence += 1;
  const job = newJob({ id: `emu-job-${sequence}-${Date.now()}`, userId, input, ...(upload ? { upload } : {}) });
  await deps.store.create(job);
  return job;
}

/** Sends the job's message as the api does, from inside a producer span; returns that span's ids. */
async function enqueue(job: Job) {
  const queue = new ServiceBusJobQueue(serviceBusClient, TEST_QUEUE_NAME);
  try {
    return await withSpan("POST /api/jobs", { kind: SpanKind.SERVER }, async (span) => {
      await queue.send({ jobId: job.id, userId: job.userId });
      return span.spanContext();
    });
  } finally {
    await queue.close();
  }
}

/** The trigger metadata the Functions host passes for a Service Bus message (DeliveryCount is 1-based there). */
function invocationFor(message: ServiceBusReceivedMessage, functionName: string) {
  const logs: string[] = [];
  const context = new InvocationContext({
    invocationId: `inv-${message.messageId}-${message.deliveryCount}`,
    functionName,
    logHandler: (level, ...args) => logs.push(`${level} ${args.map(String).join(" ")}`),
    triggerMetadata: {
      messageId: message.messageId,
      deliveryCount: (message.deliveryCount ?? 0) + 1,
      enqueuedTimeUtc: message.enqueuedTimeUtc?.toISOString(),
      applicationProperties: message.applicationProperties ?? {},
    },
  });
  return { context, logs };
}

/** One delivery, settled like the host settles it. Returns whether the handler succeeded. */
async function deliverOnce(receiver: ServiceBusReceiver, handler: (body: unknown, context: InvocationContext) => Promise<void>, name: string) {
  const [message] = await receiver.receiveMessages(1, { maxWaitTimeInMs: 3_000 });
  if (!message) throw new Error(`no message arrived on ${receiver.entityPath}`);
  const { context, logs } = invocationFor(message, name);
  try {
    await handler(message.body, context);
    await receiver.completeMessage(message);
    return { ok: true as const, message, logs };
  } catch (error) {
    await receiver.abandonMessage(message);
    return { ok: false as const, message, logs, error };
  }
}

async function ownerClient(userId: string): Promise<RecordingClient> {
  return connectClient(webPubSubClient, { userId, groups: [userGroup(userId)] });
}
const eventsOf = (client: RecordingClient) => client.groupMessages.map((message) => message.data as JobEvent);

describe("agent with the real SDKs against the emulators", () => {
  it("a job sent as the api sends it runs to succeeded in Cosmos, its owner's group sees both events, nobody else's does", async () => {
    const text = "Azure functions process jobs; jobs publish events.\nEvents reach browsers.";
    const blobName = uploadBlobName("user-1", "input", 1024);
    await uploadsContainer.getBlockBlobClient(blobName).upload(text, Buffer.byteLength(text));
    const job = await createJob({ kind: "blob", blobName }, "user-1");
    const [owner, stranger] = await Promise.all([ownerClient("user-1"), ownerClient("user-2")]);
    const producer = await enqueue(job);

    const receiver = serviceBusClient.createReceiver(TEST_QUEUE_NAME);
    const handlers = createAgentHandlers(async () => deps, noBackoff);
    const delivery = await deliverOnce(receiver, handlers.processJobMessage, "processJob");
    await receiver.close();
    expect(delivery.ok).toBe(true);
    expect(delivery.message.messageId).toBe(job.id);

    const finished = (await deps.store.get("user-1", job.id)).job;
    expect(finished).toMatchObject({ status: "succeeded", attempts: 1, result: analyzeText(text) });
    await waitFor(() => owner.groupMessages.length >= 2, "two events in the owner's group");
    expect(eventsOf(owner).map((event) => event.type)).toEqual(["job.running", "job.succeeded"]);
    expect(eventsOf(owner)[1]).toMatchObject({ jobId: job.id, result: analyzeText(text) });
    expect(stranger.groupMessages).toEqual([]);

    const agentSpan = recorder.spans().find((span) => span.name === "process job" && span.attributes["job.id"] === job.id)!;
    expect(agentSpan.spanContext().traceId).toBe(producer.traceId);
    expect(delivery.logs.every((line) => line.includes(`[job ${job.id}]`))).toBe(true);
  });

  it("a job that keeps failing is dead-lettered after maxDeliveryCount, then the dead-letter function fails it and tells the owner", async () => {
    const blobName = uploadBlobName("user-3", "flaky", 1024);
    await uploadsContainer.getBlockBlobClient(blobName).upload("text", 4);
    const job = await createJob({ kind: "blob", blobName }, "user-3");
    const owner = await ownerClient("user-3");
    const unavailable: UploadsReader = {
      open: async () => {
        throw Object.assign(new Error("storage is unavailable"), { statusCode: 503 });
      },
    };
    const handlers = createAgentHandlers(async () => ({ ...deps, uploads: unavailable }), noBackoff);
    await enqueue(job);

    const receiver = serviceBusClient.createReceiver(TEST_QUEUE_NAME);
    for (let delivery = 1; delivery <= MAX_DELIVERIES; delivery += 1) {
      const result = await deliverOnce(receiver, handlers.processJobMessage, "processJob");
      expect(result.ok).toBe(false);
      expect((await deps.store.get("user-3", job.id)).job).toMatchObject({ status: "running", attempts: delivery });
    }
    // Settled: the last abandon moved it to the dead-letter queue before it returned.
    expect(await receiver.peekMessages(1)).toEqual([]);
    await receiver.close();

    const deadLetters = serviceBusClient.createReceiver(TEST_QUEUE_NAME, { subQueueType: "deadLetter" });
    const result = await deliverOnce(deadLetters, handlers.failDeadLetteredJobMessage, "failDeadLetteredJob");
    await deadLetters.close();
    expect(result.ok).toBe(true);
    expect(result.message.deadLetterReason).toBe("MaxDeliveryCountExceeded");
    expect((await deps.store.get("user-3", job.id)).job).toMatchObject({
      status: "failed",
      attempts: MAX_DELIVERIES,
      error: { code: "MaxDeliveryCountExceeded" },
    });
    await waitFor(() => eventsOf(owner).some((event) => event.type === "job.failed"), "job.failed in the owner's group");
    expect(eventsOf(owner).map((event) => event.type)).toEqual([...Array<string>(MAX_DELIVERIES).fill("job.running"), "job.failed"]);
  });

  it("the same message delivered twice at once on the real database: one StaleJob, one run, one terminal write", async () => {
    const job = await createJob({ kind: "text", text: "racing on cosmos" }, "user-4");
    const message = { jobId: job.id, userId: "user-4" };
    // "At once": both deliveries read the queued job before either writes. Without this the second
    // read may come after the first delivery's write (one reused connection is faster than a new
    // one), and it would rightly run the job again as a redelivery of the same message.
    const waiting: (() => void)[] = [];
    let reads = 0;
    const store = new Proxy(deps.store, {
      get(target, property, receiver) {
        if (property !== "get") return Reflect.get(target, property, receiver);
        return async (userId: string, id: string) => {
          const found = await target.get(userId, id);
          if (reads < 2) {
            reads += 1;
            if (reads === 2) for (const release of waiting) release();
            else await new Promise<void>((resolve) => waiting.push(resolve));
          }
          return found;
        };
      },
    });
    const racing = { ...deps, store };
    const results = await Promise.allSettled([processJob(racing, message, { holder: "1" }, memoryLog()), processJob(racing, message, { holder: "1" }, memoryLog())]);
    const statuses = results.map((result) => result.status).sort();
    expect(statuses).toEqual(["fulfilled", "rejected"]);
    const rejected = results.find((result): result is PromiseRejectedResult => result.status === "rejected");
    expect(rejected?.reason).toBeInstanceOf(StaleJob);
    expect((await deps.store.get("user-4", job.id)).job).toMatchObject({ status: "succeeded", attempts: 1 });
    expect(await processJob(deps, message, { holder: "1" }, memoryLog())).toEqual({ outcome: "already-finished", status: "succeeded" });
  });

  it("two copies of the message racing on the real database: one run, the copy drops out, one terminal write", async () => {
    const job = await createJob({ kind: "text", text: "sent twice to cosmos" }, "user-5");
    const message = { jobId: job.id, userId: "user-5" };
    const outcomes = await Promise.all([processJob(deps, message, { holder: "1" }, memoryLog()), processJob(deps, message, { holder: "2" }, memoryLog())]);
    expect(outcomes.map((outcome) => outcome.outcome).sort()).toEqual(["held-elsewhere", "succeeded"]);
    expect((await deps.store.get("user-5", job.id)).job).toMatchObject({ status: "succeeded", attempts: 1 });
  });

  it("reads exactly the blob version the api accepted: one swapped after acceptance fails the job (abuse review F8)", async () => {
    const blobName = uploadBlobName("user-7", "pinned", 1024);
    const blob = uploadsContainer.getBlockBlobClient(blobName);
    const accepted = await blob.upload("harmless words", 14);
    const job = await createJob({ kind: "blob", blobName }, "user-7", { etag: accepted.etag!, bytes: 14 });
    await blob.upload("payroll confidential numbers", 28);
    expect(await processJob(deps, { jobId: job.id, userId: "user-7" }, { holder: "1" }, memoryLog())).toMatchObject({ outcome: "failed", error: { code: "UploadChanged" } });
  });

  it("refuses a blob filled by Copy Blob, even for a job accepted without a pinned version (abuse review F1)", async () => {
    const victim = uploadsContainer.getBlockBlobClient(uploadBlobName("user-8", "secret", 1024));
    await victim.upload("bob secret content words here", 29);
    const blobName = uploadBlobName("user-9", "copied", 1024);
    await (await uploadsContainer.getBlockBlobClient(blobName).beginCopyFromURL(victim.url)).pollUntilDone();
    const job = await createJob({ kind: "blob", blobName }, "user-9");
    expect(await processJob(deps, { jobId: job.id, userId: "user-9" }, { holder: "1" }, memoryLog())).toMatchObject({ outcome: "failed", error: { code: "UploadCopied" } });
  });

  it("enforces UPLOAD_MAX_BYTES from the settings on a real blob, reading no more than the limit", async () => {
    const blobName = uploadBlobName("user-6", "big", 1024);
    const size = TEST_UPLOAD_MAX_BYTES + 1;
    await uploadsContainer.getBlockBlobClient(blobName).upload(Buffer.alloc(size, "a"), size);
    const job = await createJob({ kind: "blob", blobName }, "user-6");
    expect(await processJob(deps, { jobId: job.id, userId: "user-6" }, { holder: "1" }, memoryLog())).toMatchObject({ outcome: "failed", error: { code: "InputTooLarge" } });
    expect((await deps.store.get("user-6", job.id)).job).toMatchObject({ status: "failed", error: { code: "InputTooLarge" } });
  });
});
