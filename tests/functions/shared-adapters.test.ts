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
    const outcomes = await Promise.allSettled([store.transition(created, { to: "running", holder: "7" }), store.transition(created, { to: "running", holder: "7" })]);
    expect(outcomes.filter((o) => o.status === "fulfilled")).toHaveLength(1);
    const rejected = outcomes.find((o): o is PromiseRejectedResult => o.status === "rejected");
    expect(rejected?.reason).toBeInstanceOf(StaleJob);
    const running = await store.get("store-etag", created.job.id);
    expect(running.job).toMatchObject({ status: "running", attempts: 1 });
    const done = await store.transition(running, { to: "succeeded", result: { characters: 1, words: 1, lines: 1, topWords: [], readingTimeSeconds: 0 } });
    expect(done.etag).not.toBe(running.etag);
    // What a transition returns (the job it wrote, not re-read) is what the database holds, etag too.
    expect(await store.get("store-etag", created.job.id)).toEqual(done);
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

  it("finds unfinished jobs of every user last written before a time (the sweeper's query), and records a re-send with the etag", async () => {
    const old = new Date("2020-01-01T00:00:00.000Z");
    const queuedA = await store.create(jobFor("sweep-a", old));
    const queuedB = await store.create(jobFor("sweep-b", old));
    const running = await store.transition(await store.create(jobFor("sweep-b", old)), { to: "running", holder: "9" }, old);
    const done = await store.transition(running, { to: "succeeded", result: { characters: 0, words: 0, lines: 0, topWords: [], readingTimeSeconds: 0 } }, old);
    await store.create(jobFor("sweep-a", new Date("2020-01-01T00:05:00.001Z"))); // written after the cut-off
    const found = await store.listUnfinishedUntouchedSince(new Date("2020-01-01T00:05:00.000Z"), 100);
    expect(found.map((f) => f.job.id).sort()).toEqual([queuedA.job.id, queuedB.job.id].sort());
    expect(found.map((f) => f.job.id)).not.toContain(done.job.id);
    expect(await store.listUnfinishedUntouchedSince(new Date("2020-01-01T00:05:00.000Z"), 1)).toHaveLength(1);
    expect(await store.listUnfinishedUntouchedSince(new Date("2019-12-31T23:59:59.999Z"), 100)).toEqual([]);

    const at = new Date("2020-01-01T00:06:00.000Z");
    const requeued = await store.markRequeued(found[0]!, at);
    expect(requeued.job).toMatchObject({ status: "queued", requeues: 1, requeuedAt: at.toISOString(), updatedAt: at.toISOString() });
    await expect(store.markRequeued(found[0]!, at)).rejects.toBeInstanceOf(StaleJob);
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
      await queue.send({ jobId: "job-q-2", userId: "u" }, { messageId: "job-q-2.requeue-1" });
      // The queue is first in, first out: once the last message sent is here, a copy that got
      // through would have arrived before it.
      const all = [];
      while (all.at(-1)?.messageId !== "job-q-2.requeue-1") all.push(...(await receiver.receiveMessages(10, { maxWaitTimeInMs: 5_000 })));
      expect(all.map((m) => m.messageId)).toEqual(["job-q-1", "job-q-2", "job-q-2.requeue-1"]);
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
      const at = new Date().toISOString();
      const event: JobEvent = { type: "job.failed", status: "failed", jobId: "j", attempts: 1, error: { code: "BlobNotFound", message: "gone" }, at, updatedAt: at, finishedAt: at };
      await events.publish("owner", event);
      await expect.poll(() => owner.received, { timeout: 3_000 }).toEqual([event]);
      // A marker to the bystander's own group, published after: once it arrives, the owner's event
      // would have arrived before it had it been routed there.
      const marker: JobEvent = { ...event, jobId: "marker" };
      await events.publish("bystander", marker);
      await expect.poll(() => bystander.received, { timeout: 3_000 }).toContainEqual(marker);
      expect(bystander.received).toEqual([marker]);
    } finally {
      owner.client.stop();
      bystander.client.stop();
    }
  });
});
