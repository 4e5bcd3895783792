/**
 * The contract between the two services, end to end on the local platform: jobs submitted through
 * the api's handlers travel as real Service Bus messages to the agent's handlers (called the way
 * the Functions host calls them: body plus trigger metadata), and the owner follows them through
 * the api and over Web PubSub. Covers success (text and upload) and the dead-letter path.
 */
import { InvocationContext } from "@azure/functions";
import { ServiceBusClient, type ServiceBusReceivedMessage, type ServiceBusReceiver } from "@azure/service-bus";
import { BlockBlobClient } from "@azure/storage-blob";
import { WebPubSubClient } from "@azure/web-pubsub-client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createAgentDependencies } from "../../functions/src/agent/clients.js";
import { createAgentHandlers, type AgentHandlers } from "../../functions/src/agent/handlers.js";
import type { AgentDependencies } from "../../functions/src/agent/process-job.js";
import { createApiDependencies } from "../../functions/src/api/clients.js";
import type { ApiDependencies } from "../../functions/src/api/dependencies.js";
import { createApiHandlers, type ApiHandlers } from "../../functions/src/api/handlers.js";
import type { JobEvent } from "../../functions/src/shared/job.js";
import { startTestPlatform, TEST_QUEUE_NAME, type TestPlatform } from "../support/emulators.js";
import { decode, httpRequest, invocationContext, type DecodedResponse, type RequestOptions } from "../support/http.js";

const MAX_DELIVERY_COUNT = 2;
let platform: TestPlatform;
let apiDeps: ApiDependencies;
let agentDeps: AgentDependencies;
let api: ApiHandlers;
let agent: AgentHandlers;
let serviceBus: ServiceBusClient;
let receiver: ServiceBusReceiver;

beforeAll(async () => {
  platform = await startTestPlatform({ blob: true, serviceBus: { maxDeliveryCount: MAX_DELIVERY_COUNT }, webPubSub: true });
  [apiDeps, agentDeps] = await Promise.all([createApiDependencies(platform.settings), createAgentDependencies(platform.settings)]);
  api = createApiHandlers(async () => apiDeps);
  agent = createAgentHandlers(async () => agentDeps);
  serviceBus = new ServiceBusClient(platform.settings.ServiceBus!);
  receiver = serviceBus.createReceiver(TEST_QUEUE_NAME);
});

afterAll(async () => {
  await apiDeps?.queue.close();
  await serviceBus?.close();
  await platform?.stop();
});

async function call(handler: keyof ApiHandlers, user: string, options: RequestOptions): Promise<DecodedResponse> {
  return decode(await api[handler](httpRequest({ ...options, headers: { ...options.headers, "x-dev-user": user } }), invocationContext(handler)));
}

/** What the host passes next to the body (the SDK's names; the agent reads both casings). */
function triggerContext(message: ServiceBusReceivedMessage, functionName: string): InvocationContext {
  return new InvocationContext({
    invocationId: `${functionName}-${message.messageId}`,
    functionName,
    triggerMetadata: {
      messageId: message.messageId,
      deliveryCount: message.deliveryCount,
      applicationProperties: { ...message.applicationProperties },
    },
  });
}

async function listen(user: string): Promise<{ events: JobEvent[]; stop(): void }> {
  const { url } = (await call("negotiate", user, { path: "/api/negotiate" })).body as { url: string };
  const client = new WebPubSubClient(url);
  const events: JobEvent[] = [];
  client.on("group-message", (e) => events.push(e.message.data as JobEvent));
  await client.start();
  return { events, stop: () => client.stop() };
}

async function receiveOne(from: ServiceBusReceiver = receiver): Promise<ServiceBusReceivedMessage> {
  const [message] = await from.receiveMessages(1, { maxWaitTimeInMs: 3_000 });
  if (!message) throw new Error("no message arrived");
  return message;
}

describe("api -> Service Bus -> agent", () => {
  it("runs a text job and an uploaded file to succeeded, visible through the api and pushed to the owner", async () => {
    const user = "pipeline-owner";
    const listener = await listen(user);
    try {
      const text = await call("jobs", user, { method: "POST", path: "/api/jobs", json: { kind: "text", text: "one fish two fish\nred fish blue fish" } });
      expect(text.status).toBe(202);

      const upload = (await call("uploads", user, { method: "POST", path: "/api/uploads", json: { size: 27 } })).body as { uploadUrl: string; blobName: string };
      await new BlockBlobClient(upload.uploadUrl).upload("alpha beta\nbeta gamma beta\n", 27);
      const blob = await call("jobs", user, { method: "POST", path: "/api/jobs", json: { kind: "blob", blobName: upload.blobName } });
      expect(blob.status).toBe(202);

      for (let i = 0; i < 2; i += 1) {
        const message = await receiveOne();
        await agent.processJobMessage(message.body, triggerContext(message, "processJob"));
        await receiver.completeMessage(message);
      }

      const textJob = (await call("job", user, { path: text.headers.location!, params: { id: (text.body as { id: string }).id } })).body;
      expect(textJob).toMatchObject({ status: "succeeded", attempts: 1, result: { words: 8, lines: 2 } });
      expect((textJob as { result: { topWords: { word: string; count: number }[] } }).result.topWords[0]).toEqual({ word: "fish", count: 4 });
      const blobJob = (await call("job", user, { path: blob.headers.location!, params: { id: (blob.body as { id: string }).id } })).body;
      expect(blobJob).toMatchObject({ status: "succeeded", result: { words: 5, lines: 2 } });
      expect((blobJob as { result: { topWords: unknown[] } }).result.topWords[0]).toEqual({ word: "beta", count: 3 });

      await expect.poll(() => listener.events.filter((e) => e.type === "job.succeeded").length, { timeout: 3_000 }).toBe(2);
      expect(listener.events.filter((e) => e.type === "job.running").map((e) => e.jobId).sort()).toEqual(
        [(text.body as { id: string }).id, (blob.body as { id: string }).id].sort(),
      );
    } finally {
      listener.stop();
    }
  });

  it("fails a job whose message was dead-lettered after maxDeliveryCount, with the reason, and tells the owner", async () => {
    const user = "pipeline-dead-letter";
    const listener = await listen(user);
    try {
      const submitted = await call("jobs", user, { method: "POST", path: "/api/jobs", json: { kind: "text", text: "never processed" } });
      const id = (submitted.body as { id: string }).id;
      // The host abandons the message each time the function throws; after the last delivery
      // Service Bus moves it to the dead-letter queue.
      for (let delivery = 0; delivery < MAX_DELIVERY_COUNT; delivery += 1) await receiver.abandonMessage(await receiveOne());
      // The last abandon moved it before it returned: the queue holds nothing (a peek answers at once).
      const peeker = serviceBus.createReceiver(TEST_QUEUE_NAME);
      expect(await peeker.peekMessages(10)).toHaveLength(0);
      await peeker.close();

      const deadLetters = serviceBus.createReceiver(TEST_QUEUE_NAME, { subQueueType: "deadLetter" });
      try {
        const dead = await receiveOne(deadLetters);
        expect(dead.messageId).toBe(id);
        await agent.failDeadLetteredJobMessage(dead.body, triggerContext(dead, "failDeadLetteredJob"));
        await deadLetters.completeMessage(dead);
      } finally {
        await deadLetters.close();
      }

      const job = (await call("job", user, { path: `/api/jobs/${id}`, params: { id } })).body;
      expect(job).toMatchObject({ status: "failed", error: { code: "MaxDeliveryCountExceeded" } });
      await expect.poll(() => listener.events.map((e) => e.type), { timeout: 3_000 }).toEqual(["job.failed"]);
    } finally {
      listener.stop();
    }
  });
});
