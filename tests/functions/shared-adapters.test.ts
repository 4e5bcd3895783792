/**
 * The shared adapters through the real SDKs against the local platform: the Cosmos job store
 * (cosmosdb-server), the Service Bus job queue and the Web PubSub job events (the project's
 * emulators), each built by azure-clients.ts from a local connection string.
 */
import { ServiceBusClient } from "@azure/service-bus";
import type { Container } from "@azure/cosmos";
import { WebPubSubClient } from "@azure/web-pubsub-client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createCosmosContainer, createServiceBusClient, createWebPubSubClient } from "../../functions/src/shared/azure-clients.js";
import { InvalidTransition, newJob, type JobEvent } from "../../functions/src/shared/job.js";
import { userGroup, WebPubSubJobEvents } from "../../functions/src/shared/job-events.js";
import { JOB_MESSAGE_SUBJECT, ServiceBusJobQueue } from "../../functions/src/shared/job-queue.js";
import { CosmosJobStore, InvalidContinuationToken, JobConflict, JobNotFound, StaleJob } from "../../functions/src/shared/job-store.js";
import { startTestPlatform, TEST_HUB, TEST_QUEUE_NAME, type TestPlatform } from "../support/emulators.js";
import { jobResources } from "../../functions/src/shared/job-resources.js";

let platform: TestPlatform;
let container: Container;
let store: CosmosJobStore;

beforeAll(async () => {
  platform = await startTestPlatform({ serviceBus: true, webPubSub: true });
  container = await createCosmosContainer({ mode: "connectionString", connectionString: platform.settings.Cosmos! }, jobResources.database, jobResources.container);
  store = new CosmosJobStore(container);
});

afterAll(async () => {
  await platform?.stop();
});

let sequence = 0;
const jobFor = (userId: string, at = new Date()) => {
  sequence += 1;
  return newJob({ id: `00000000-0000-4000-8000-${String(sequence).padStart(12, "0")}`, userId, input: { kind: "text", text: `text ${sequence}` }, now: at });
};

describe("CosmosJobStore", () => {
  it("creates once (409 -> JobConflict) and reads only within the owner's partition", async () => {
    const job = jobFor("store-a");
    const created = await store.create(job);
    expect(created.job).toEqual(job);
    expect(created.etag).toMatch(/\S/);
    await expect(store.create(job)).rejects.toBeInstanceOf(JobConflict);
    expect((await store.get("store-a", job.id)).job).toEqual(job);
    await expect(store.get("store-b", job.id)).rejects.toBeInstanceOf(JobNotFound);
    await expect(store.get("store-a", "missing")).rejects.toBeInstanceOf(JobNotFound);
  });

  it("guards transitions with the etag: of two writers holding the same version, exactly one wins", async () => {
    const created = await store.create(jobFor("store-etag"));
    const outcomes = await Promise.allSettled([store.transition(created, { to: "running" }), store.transition(created, { to: "running" })]);
    expect(outcomes.filter((o) => o.status === "fulfilled")).toHaveLength(1);
    const rejected = outcomes.find((o): o is PromiseRejectedResult => o.status === "rejected");
    expect(rejected?.reason).toBeInstanceOf(StaleJob);
    const running = await store.get("store-etag", created.job.id);
    expect(running.job).toMatchObject({ status: "running", attempts: 1 });
    const done = await store.transition(running, { to: "succeeded", result: { characters: 1, words: 1, lines: 1, topWords: [], readingTimeSeconds: 0 } });
    expect(done.etag).not.toBe(running.etag);
    await expect(store.transition(done, { to: "failed", error: { code: "X", message: "late" } })).rejects.toBeInstanceOf(InvalidTransition);
    await expect(store.transition(running, { to: "failed", error: { code: "X", message: "stale" } })).rejects.toBeInstanceOf(StaleJob);
  });

  it("lists newest first in pages, finds by idempotency key, deletes idempotently", async () => {
    const base = Date.parse("2026-03-01T00:00:00Z");
    for (let i = 0; i < 5; i += 1) await store.create(jobFor("store-list", new Date(base + i * 1000)));
    await store.create(jobFor("store-other"));
    const first = await store.list("store-list", { pageSize: 3 });
    expect(first.jobs.map((j) => j.createdAt)).toEqual([4, 3, 2].map((i) => new Date(base + i * 1000).toISOString()));
    expect(first.continuationToken).toBeDefined();
    const second = await store.list("store-list", { pageSize: 3, continuationToken: first.continuationToken! });
    expect(second.jobs.map((j) => j.createdAt)).toEqual([1, 0].map((i) => new Date(base + i * 1000).toISOString()));
    expect(second.continuationToken).toBeUndefined();
    // A token of the right shape that the database did not issue (the emulator ignores tokens that
    // are not JSON at all, where Cosmos answers 400: both end as a caller error or a first page).
    await expect(store.list("store-list", { pageSize: 3, continuationToken: '{"forged":true}' })).rejects.toBeInstanceOf(InvalidContinuationToken);

    const { idempotentJobId } = await import("../../functions/src/shared/job-store.js");
    const keyed = newJob({ id: idempotentJobId("store-key", "k"), userId: "store-key", input: { kind: "text", text: "x" }, idempotencyKey: "k" });
    await store.create(keyed);
    expect((await store.findByIdempotencyKey("store-key", "k"))?.job.id).toBe(keyed.id);
    expect(await store.findByIdempotencyKey("store-key", "other")).toBeUndefined();
    await store.delete("store-key", keyed.id);
    await store.delete("store-key", keyed.id);
    await expect(store.get("store-key", keyed.id)).rejects.toBeInstanceOf(JobNotFound);
    await expect(store.ping()).resolves.toBeUndefined();
  });
});

describe("ServiceBusJobQueue", () => {
  it("sends the job message with messageId = job id, and duplicate detection keeps one copy", async () => {
    const client = await createServiceBusClient({ mode: "connectionString", connectionString: platform.settings.ServiceBus! });
    const queue = new ServiceBusJobQueue(client, TEST_QUEUE_NAME);
    const receiverClient = new ServiceBusClient(platform.settings.ServiceBus!);
    const receiver = receiverClient.createReceiver(TEST_QUEUE_NAME);
    try {
      await queue.ping();
      await queue.send({ jobId: "job-q-1", userId: "u" });
      await queue.send({ jobId: "job-q-1", userId: "u" });
      await queue.send({ jobId: "job-q-2", userId: "u" });
      const received = await receiver.receiveMessages(10, { maxWaitTimeInMs: 1_000 });
      const more = await receiver.receiveMessages(10, { maxWaitTimeInMs: 300 });
      const all = [...received, ...more];
      expect(all.map((m) => m.messageId)).toEqual(["job-q-1", "job-q-2"]);
      expect(all[0]).toMatchObject({ body: { jobId: "job-q-1", userId: "u" }, contentType: "application/json", subject: JOB_MESSAGE_SUBJECT });
      for (const message of all) await receiver.completeMessage(message);
    } finally {
      await receiver.close();
      await receiverClient.close();
      await queue.close();
      await client.close();
    }
  });
});

describe("WebPubSubJobEvents", () => {
  it("publishes an event to its owner's group only", async () => {
    const service = await createWebPubSubClient({ mode: "connectionString", connectionString: platform.settings.WebPubSub! }, TEST_HUB);
    const events = new WebPubSubJobEvents(service);
    await events.ping();
    const listen = async (userId: string) => {
      const { url } = await service.getClientAccessToken({ userId, groups: [userGroup(userId)] });
      const client = new WebPubSubClient(url);
      const received: unknown[] = [];
      client.on("group-message", (e) => received.push(e.message.data));
      await client.start();
      return { client, received };
    };
    const owner = await listen("owner");
    const bystander = await listen("bystander");
    try {
      const event: JobEvent = { type: "job.failed", status: "failed", jobId: "j", error: { code: "BlobNotFound", message: "gone" }, at: new Date().toISOString() };
      await events.publish("owner", event);
      await expect.poll(() => owner.received, { timeout: 3_000 }).toEqual([event]);
      await new Promise((resolve) => setTimeout(resolve, 200));
      expect(bystander.received).toEqual([]);
    } finally {
      owner.client.stop();
      bystander.client.stop();
    }
  });
});
