/**
 * The api's handlers, called with real HttpRequest/InvocationContext objects, wired by the
 * production clients.ts from local-shaped settings, against the local platform: Cosmos
 * (cosmosdb-server), Blob (Azurite), Service Bus and Web PubSub (the project's emulators).
 */
import { ServiceBusClient, type ServiceBusReceivedMessage, type ServiceBusReceiver } from "@azure/service-bus";
import { BlobServiceClient, BlockBlobClient } from "@azure/storage-blob";
import { WebPubSubClient } from "@azure/web-pubsub-client";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { createApiDependencies } from "../../functions/src/api/clients.js";
import type { ApiDependencies } from "../../functions/src/api/dependencies.js";
import { createApiHandlers, documentationHandlers, type ApiHandlers } from "../../functions/src/api/handlers.js";
import { MAX_REQUEST_BODY_BYTES } from "../../functions/src/api/http.js";
import { createWebPubSubClient } from "../../functions/src/shared/azure-clients.js";
import type { JobMessage } from "../../functions/src/shared/job.js";
import { userGroup, WebPubSubJobEvents } from "../../functions/src/shared/job-events.js";
import type { JobQueue } from "../../functions/src/shared/job-queue.js";
import { uploadPrefix } from "../../functions/src/shared/upload-names.js";
import { startTestPlatform, TEST_QUEUE_NAME, TEST_UPLOAD_MAX_BYTES, TEST_UPLOADS_CONTAINER, type TestPlatform } from "../support/emulators.js";
import { decode, httpRequest, invocationContext, type DecodedResponse, type RequestOptions } from "../support/http.js";

let platform: TestPlatform;
let production: ApiDependencies;
/** What the handlers get: the production wiring, with parts swapped by individual tests. */
let current: ApiDependencies;
let handlers: ApiHandlers;
let serviceBus: ServiceBusClient;
let receiver: ServiceBusReceiver;
let userCounter = 0;

beforeAll(async () => {
  platform = await startTestPlatform({ blob: true, serviceBus: true, webPubSub: true });
  production = await createApiDependencies(platform.settings);
  handlers = createApiHandlers(async () => current);
  serviceBus = new ServiceBusClient(platform.settings.ServiceBus!);
  receiver = serviceBus.createReceiver(TEST_QUEUE_NAME, { receiveMode: "receiveAndDelete" });
});

afterAll(async () => {
  await production?.queue.close();
  await serviceBus?.close();
  await platform?.stop();
});

beforeEach(() => {
  current = production;
});

/** A fresh user per test, so tests never see each other's jobs. */
function newUser(): string {
  userCounter += 1;
  return `user-${userCounter}-${Math.random().toString(36).slice(2, 8)}`;
}

async function call(handler: keyof ApiHandlers, options: RequestOptions & { user?: string }): Promise<DecodedResponse> {
  const headers = { ...options.headers, ...(options.user ? { "x-dev-user": options.user } : {}) };
  return decode(await handlers[handler](httpRequest({ ...options, headers }), invocationContext(handler)));
}

const submit = (user: string, json: unknown, headers: Record<string, string> = {}) =>
  call("jobs", { method: "POST", path: "/api/jobs", user, json, headers });

/** Messages on the jobs queue within a short wait (the queue is drained by every call). */
/**
 * Every message the queue holds, taken off it. The api answers only once its send was acknowledged,
 * so what a request sent is in the queue when its answer is: a peek (which answers at once) says how
 * many, and exactly that many are received. No waiting to see whether more arrive.
 */
async function drainQueue(): Promise<ServiceBusReceivedMessage[]> {
  const peeker = serviceBus.createReceiver(TEST_QUEUE_NAME);
  const held = (await peeker.peekMessages(100)).length;
  await peeker.close();
  const messages: ServiceBusReceivedMessage[] = [];
  while (messages.length < held) messages.push(...(await receiver.receiveMessages(held - messages.length, { maxWaitTimeInMs: 5_000 })));
  return messages;
}

async function jobCountOf(user: string): Promise<number> {
  const page = await production.jobs.list(user, { pageSize: 100 });
  return page.jobs.length;
}

function expectProblem(response: DecodedResponse, status: number): { detail: string; errors?: { pointer: string; detail: string }[] } {
  expect(response.status).toBe(status);
  expect(response.headers["content-type"]).toBe("application/problem+json");
  const body = response.body as { type: string; title: string; status: number; detail: string; errors?: { pointer: string; detail: string }[] };
  expect(body.status).toBe(status);
  expect(body.type).toBe("about:blank");
  expect(body.title.length).toBeGreaterThan(0);
  expect(body.detail.length).toBeGreaterThan(0);
  return body;
}

describe("identity", () => {
  it("answers 401 problem+json on every caller-scoped route when no identity is given", async () => {
    const cases: [keyof ApiHandlers, RequestOptions][] = [
      ["uploads", { method: "POST", path: "/api/uploads", json: { size: 10 } }],
      ["jobs", { method: "POST", path: "/api/jobs", json: { kind: "text", text: "hello" } }],
      ["jobs", { method: "GET", path: "/api/jobs" }],
      ["job", { method: "GET", path: "/api/jobs/00000000-0000-4000-8000-000000000000", params: { id: "00000000-0000-4000-8000-000000000000" } }],
      ["negotiate", { method: "GET", path: "/api/negotiate" }],
    ];
    for (const [handler, options] of cases) {
      const response = await call(handler, options);
      expectProblem(response, 401);
      expect(response.headers["www-authenticate"]).toMatch(/^Bearer/);
    }
    expect(await drainQueue()).toHaveLength(0);
  });

  it("accepts App Service Authentication headers: the principal id, or the oid claim of the principal", async () => {
    const principalId = newUser();
    const byId = await call("jobs", { method: "POST", path: "/api/jobs", json: { kind: "text", text: "a b" }, headers: { "x-ms-client-principal-id": principalId } });
    expect(byId.status).toBe(202);
    const oid = newUser();
    const principal = Buffer.from(JSON.stringify({ auth_typ: "aad", claims: [{ typ: "oid", val: oid }] })).toString("base64");
    const byClaims = await call("jobs", { method: "POST", path: "/api/jobs", json: { kind: "text", text: "c d" }, headers: { "x-ms-client-principal": principal } });
    expect(byClaims.status).toBe(202);
    expect(await jobCountOf(principalId)).toBe(1);
    expect(await jobCountOf(oid)).toBe(1);
    await drainQueue();
  });

  it("rejects a malformed principal and ignores x-dev-user unless the local-only setting allows it", async () => {
    expectProblem(await call("jobs", { method: "GET", path: "/api/jobs", headers: { "x-ms-client-principal": "not base64 json" } }), 401);
    current = { ...production, identity: { trustAppServiceAuthentication: true, allowDevelopmentIdentity: false } };
    expectProblem(await call("jobs", { method: "GET", path: "/api/jobs", user: newUser() }), 401);
    // Without App Service Authentication in front, the platform's headers could be forged: refused.
    current = { ...production, identity: { trustAppServiceAuthentication: false, allowDevelopmentIdentity: false } };
    expectProblem(await call("jobs", { method: "GET", path: "/api/jobs", headers: { "x-ms-client-principal-id": newUser() } }), 401);
  });
});

describe("POST /api/jobs", () => {
  it("creates a queued job, answers 202 with Location, and sends one message whose id is the job id", async () => {
    const user = newUser();
    const response = await submit(user, { kind: "text", text: "the quick brown fox" });
    expect(response.status).toBe(202);
    const job = response.body as { id: string; status: string; input: unknown; attempts: number };
    expect(response.headers.location).toBe(`/api/jobs/${job.id}`);
    expect(job).toMatchObject({ status: "queued", input: { kind: "text", characters: 19 }, attempts: 0 });

    const stored = await production.jobs.get(user, job.id);
    expect(stored.job).toMatchObject({ userId: user, status: "queued", input: { kind: "text", text: "the quick brown fox" } });

    const messages = await drainQueue();
    expect(messages).toHaveLength(1);
    expect(messages[0]!.messageId).toBe(job.id);
    expect(messages[0]!.body as JobMessage).toEqual({ jobId: job.id, userId: user });
    expect(messages[0]!.contentType).toBe("application/json");
  });

  it("rejects bad input with a problem naming the field, and writes nothing", async () => {
    const user = newUser();
    const cases: { request: RequestOptions; status: number; pointer?: string }[] = [
      { request: { method: "POST", path: "/api/jobs", json: { kind: "text", text: "x", extra: 1 } }, status: 422, pointer: "#/extra" },
      { request: { method: "POST", path: "/api/jobs", json: { kind: "text" } }, status: 422, pointer: "#/text" },
      { request: { method: "POST", path: "/api/jobs", json: { kind: "text", text: "" } }, status: 422, pointer: "#/text" },
      { request: { method: "POST", path: "/api/jobs", json: { kind: "pdf", text: "x" } }, status: 422, pointer: "#/kind" },
      { request: { method: "POST", path: "/api/jobs", json: { kind: "text", text: "x".repeat(100_001) } }, status: 422, pointer: "#/text" },
      { request: { method: "POST", path: "/api/jobs", json: [1, 2] }, status: 422 },
      { request: { method: "POST", path: "/api/jobs", body: "{not json", headers: { "content-type": "application/json" } }, status: 400 },
      { request: { method: "POST", path: "/api/jobs", body: "", headers: { "content-type": "application/json" } }, status: 400 },
      { request: { method: "POST", path: "/api/jobs", body: new Uint8Array([0x7b, 0xff, 0x7d]), headers: { "content-type": "application/json" } }, status: 400 },
      { request: { method: "POST", path: "/api/jobs", body: "kind=text", headers: { "content-type": "application/x-www-form-urlencoded" } }, status: 415 },
      { request: { method: "POST", path: "/api/jobs", json: { kind: "text", text: "x" }, headers: { "content-type": "application/json; charset=latin1" } }, status: 415 },
      {
        request: { method: "POST", path: "/api/jobs", body: JSON.stringify({ kind: "text", text: "x".repeat(MAX_REQUEST_BODY_BYTES) }), headers: { "content-type": "application/json" } },
        status: 413,
      },
      { request: { method: "POST", path: "/api/jobs", json: { kind: "text", text: "x" }, headers: { "idempotency-key": "" } }, status: 400, pointer: "#/headers/idempotency-key" },
    ];
    for (const { request, status, pointer } of cases) {
      const response = await call("jobs", { ...request, user });
      const problem = expectProblem(response, status);
      if (pointer) expect(problem.errors?.map((e) => e.pointer), JSON.stringify(request.json)).toContain(pointer);
    }
    expect(expectProblem(await call("jobs", { method: "POST", path: "/api/jobs", user, body: "x", headers: { "content-type": "text/plain" } }), 415)).toBeDefined();
    expect(await jobCountOf(user)).toBe(0);
    expect(await drainQueue()).toHaveLength(0);
  });

  it("answers 405 with Allow for methods a route does not serve", async () => {
    const put = await call("jobs", { method: "PUT", path: "/api/jobs", user: newUser(), json: {} });
    expectProblem(put, 405);
    expect(put.headers.allow).toBe("POST, GET");
    const del = await call("job", { method: "DELETE", path: "/api/jobs/x", params: { id: "x" } });
    expectProblem(del, 405);
    expect(del.headers.allow).toBe("GET");
    expectProblem(await call("uploads", { method: "GET", path: "/api/uploads" }), 405);
    expectProblem(await call("negotiate", { method: "POST", path: "/api/negotiate", json: {} }), 405);
  });

  it("returns the same job for a repeated Idempotency-Key, even for concurrent requests, and one message", async () => {
    const user = newUser();
    const key = `order-${Math.random()}`;
    const first = await submit(user, { kind: "text", text: "same text" }, { "idempotency-key": key });
    expect(first.status).toBe(202);
    expect(first.headers["idempotent-replayed"]).toBeUndefined();
    const again = await Promise.all([1, 2, 3, 4].map(() => submit(user, { kind: "text", text: "same text" }, { "idempotency-key": key })));
    for (const response of again) {
      expect(response.status).toBe(202);
      expect(response.headers["idempotent-replayed"]).toBe("true");
      expect((response.body as { id: string }).id).toBe((first.body as { id: string }).id);
      expect(response.headers.location).toBe(first.headers.location);
    }
    expect(await jobCountOf(user)).toBe(1);
    // Replays of a queued job re-send with the same messageId; duplicate detection keeps one.
    const messages = await drainQueue();
    expect(messages.map((m) => m.messageId)).toEqual([(first.body as { id: string }).id]);

    // The same key from another user is another job.
    const other = await submit(newUser(), { kind: "text", text: "same text" }, { "idempotency-key": key });
    expect((other.body as { id: string }).id).not.toBe((first.body as { id: string }).id);
    await drainQueue();
  });

  it("creates one job when first requests with the same key race", async () => {
    const user = newUser();
    const responses = await Promise.all([1, 2, 3].map(() => submit(user, { kind: "text", text: "race" }, { "idempotency-key": "race-key" })));
    expect(new Set(responses.map((r) => r.status))).toEqual(new Set([202]));
    expect(new Set(responses.map((r) => (r.body as { id: string }).id)).size).toBe(1);
    expect(responses.filter((r) => r.headers["idempotent-replayed"] === undefined)).toHaveLength(1);
    expect(await jobCountOf(user)).toBe(1);
    expect(await drainQueue()).toHaveLength(1);
  });

  it("rejects a reused Idempotency-Key with a different body (422) and writes nothing more", async () => {
    const user = newUser();
    expect((await submit(user, { kind: "text", text: "one" }, { "idempotency-key": "k1" })).status).toBe(202);
    const reused = await submit(user, { kind: "text", text: "two" }, { "idempotency-key": "k1" });
    expect(expectProblem(reused, 422).errors?.[0]?.pointer).toBe("#/headers/idempotency-key");
    expect(await jobCountOf(user)).toBe(1);
    await drainQueue();
  });

  it("keeps nothing when the job cannot be queued (503 problem), and a retry with the key then succeeds", async () => {
    const user = newUser();
    const failingQueue: JobQueue = { send: () => Promise.reject(new Error("broker down")), ping: () => Promise.resolve(), close: () => Promise.resolve() };
    current = { ...production, queue: failingQueue };
    const failed = await submit(user, { kind: "text", text: "lost?" }, { "idempotency-key": "retry-me" });
    expectProblem(failed, 503);
    expect(failed.headers["retry-after"]).toBe("5");
    expect(failed.text).not.toContain("broker down");
    expect(await jobCountOf(user)).toBe(0);

    current = production;
    const retried = await submit(user, { kind: "text", text: "lost?" }, { "idempotency-key": "retry-me" });
    expect(retried.status).toBe(202);
    expect(retried.headers["idempotent-replayed"]).toBeUndefined();
    expect(await drainQueue()).toHaveLength(1);
  });

  it("marks the job failed when it can neither be queued nor removed, so it is never stuck queued", async () => {
    const user = newUser();
    const failingQueue: JobQueue = { send: () => Promise.reject(new Error("broker down")), ping: () => Promise.resolve(), close: () => Promise.resolve() };
    const stubbornStore = Object.create(production.jobs) as ApiDependencies["jobs"];
    stubbornStore.delete = () => Promise.reject(new Error("cosmos hiccup"));
    current = { ...production, queue: failingQueue, jobs: stubbornStore };
    expectProblem(await submit(user, { kind: "text", text: "stuck?" }), 503);
    const page = await production.jobs.list(user, { pageSize: 10 });
    expect(page.jobs).toHaveLength(1);
    expect(page.jobs[0]).toMatchObject({ status: "failed", error: { code: "EnqueueFailed" } });
  });
});

describe("GET /api/jobs/{id}", () => {
  it("shows the caller's own job and answers 404 for another caller's, an unknown or a malformed id", async () => {
    const owner = newUser();
    const created = await submit(owner, { kind: "text", text: "mine" });
    const id = (created.body as { id: string }).id;
    await drainQueue();
    const own = await call("job", { method: "GET", path: `/api/jobs/${id}`, params: { id }, user: owner });
    expect(own.status).toBe(200);
    expect(own.body).toMatchObject({ id, status: "queued" });
    expect(own.body).not.toHaveProperty("userId");

    const intruder = await call("job", { method: "GET", path: `/api/jobs/${id}`, params: { id }, user: newUser() });
    expectProblem(intruder, 404);
    const unknownId = "6f1c1b9e-0000-4000-8000-000000000000";
    expectProblem(await call("job", { method: "GET", path: `/api/jobs/${unknownId}`, params: { id: unknownId }, user: owner }), 404);
    expectProblem(await call("job", { method: "GET", path: "/api/jobs/..", params: { id: ".." }, user: owner }), 404);
  });
});

describe("GET /api/jobs", () => {
  it("pages through the caller's jobs newest first with continuation tokens, and only the caller's", async () => {
    const user = newUser();
    const ids: string[] = [];
    for (let i = 0; i < 5; i += 1) {
      ids.push(((await submit(user, { kind: "text", text: `job ${i}` })).body as { id: string }).id);
      await new Promise((resolve) => setTimeout(resolve, 3)); // distinct createdAt
    }
    await submit(newUser(), { kind: "text", text: "someone else" });
    await drainQueue();

    const seen: string[] = [];
    let token: string | undefined;
    let pages = 0;
    do {
      const response = await call("jobs", { method: "GET", path: `/api/jobs?pageSize=2${token ? `&continuationToken=${token}` : ""}`, user });
      expect(response.status).toBe(200);
      const page = response.body as { items: { id: string }[]; continuationToken?: string };
      expect(page.items.length).toBeLessThanOrEqual(2);
      seen.push(...page.items.map((item) => item.id));
      token = page.continuationToken;
      pages += 1;
    } while (token && pages < 10);
    expect(seen).toEqual([...ids].reverse());
    expect(pages).toBeGreaterThanOrEqual(3);
  });

  it("rejects bad query parameters and a forged continuation token with 400 naming the parameter", async () => {
    const user = newUser();
    await submit(user, { kind: "text", text: "one" });
    await submit(user, { kind: "text", text: "two" });
    await drainQueue();
    const cases: [string, string][] = [
      ["/api/jobs?pageSize=0", "#/query/pageSize"],
      ["/api/jobs?pageSize=101", "#/query/pageSize"],
      ["/api/jobs?pageSize=abc", "#/query/pageSize"],
      ["/api/jobs?limit=5", "#/query/limit"],
      ["/api/jobs?continuationToken=not*base64", "#/query/continuationToken"],
      ["/api/jobs?continuationToken=eyJmb3JnZWQiOnRydWV9", "#/query/continuationToken"],
      ["/api/jobs?pageSize=1&pageSize=2", "#/query/pageSize"],
    ];
    for (const [path, pointer] of cases) {
      const problem = expectProblem(await call("jobs", { method: "GET", path, user }), 400);
      expect(problem.errors?.map((e) => e.pointer), path).toContain(pointer);
    }
  });
});

describe("uploads", () => {
  async function issue(user: string, size = 100) {
    const response = await call("uploads", { method: "POST", path: "/api/uploads", user, json: { size } });
    expect(response.status).toBe(201);
    return response.body as { blobName: string; uploadUrl: string; method: string; headers: Record<string, string>; maxBytes: number; expiresAt: string };
  }

  it("issues a create-only URL for one blob under the caller's prefix, then accepts a job for that blob", async () => {
    const user = newUser();
    const upload = await issue(user);
    expect(upload.blobName.startsWith(uploadPrefix(user))).toBe(true);
    expect(upload.maxBytes).toBe(100);
    expect(new Date(upload.expiresAt).getTime()).toBeGreaterThan(Date.now() + 200_000);
    const sas = new URL(upload.uploadUrl).searchParams;
    expect(sas.get("sp")).toBe("c");
    expect(sas.get("sr")).toBe("b");

    const blob = new BlockBlobClient(upload.uploadUrl);
    await blob.upload("hello upload", 12);
    // The URL cannot read back what it wrote.
    await expect(blob.downloadToBuffer()).rejects.toMatchObject({ statusCode: 403 });

    const created = await submit(user, { kind: "blob", blobName: upload.blobName });
    expect(created.status).toBe(202);
    expect(created.body).toMatchObject({ input: { kind: "blob", blobName: upload.blobName } });
    expect((await drainQueue()).map((m) => m.messageId)).toEqual([(created.body as { id: string }).id]);
  });

  it("rejects sizes over the limit and jobs for missing, foreign or oversized blobs, writing nothing", async () => {
    const user = newUser();
    const tooBig = await call("uploads", { method: "POST", path: "/api/uploads", user, json: { size: TEST_UPLOAD_MAX_BYTES + 1 } });
    expect(expectProblem(tooBig, 422).errors?.[0]?.pointer).toBe("#/size");
    expectProblem(await call("uploads", { method: "POST", path: "/api/uploads", user, json: { size: 10, name: "x" } }), 422);

    const someoneElse = newUser();
    const theirs = await issue(someoneElse);
    await new BlockBlobClient(theirs.uploadUrl).upload("secret", 6);
    const foreign = await submit(user, { kind: "blob", blobName: theirs.blobName });
    expect(expectProblem(foreign, 422).errors?.[0]?.pointer).toBe("#/blobName");

    const missing = await issue(user);
    expectProblem(await submit(user, { kind: "blob", blobName: missing.blobName }), 422);

    // The SAS cannot cap the size; the job submission checks the stored blob against the limit
    // and against the size declared for the URL, and deletes a refused blob.
    const large = await issue(user, TEST_UPLOAD_MAX_BYTES);
    const content = Buffer.alloc(TEST_UPLOAD_MAX_BYTES + 10, 0x61);
    await new BlockBlobClient(large.uploadUrl).upload(content, content.length);
    const oversized = await submit(user, { kind: "blob", blobName: large.blobName });
    expect(expectProblem(oversized, 422).detail).toContain(String(TEST_UPLOAD_MAX_BYTES));
    const undeclared = await issue(user, 10);
    await new BlockBlobClient(undeclared.uploadUrl).upload("eleven byte", 11);
    expect(expectProblem(await submit(user, { kind: "blob", blobName: undeclared.blobName }), 422).detail).toContain("more than the 10 bytes declared");

    expect(await jobCountOf(user)).toBe(0);
    expect(await drainQueue()).toHaveLength(0);
    // Sanity: the foreign blob really exists, so the 422 above was the ownership rule.
    const admin = BlobServiceClient.fromConnectionString(platform.settings.DataStorage!).getContainerClient(TEST_UPLOADS_CONTAINER);
    expect(await admin.getBlobClient(theirs.blobName).exists()).toBe(true);
    expect(await admin.getBlobClient(large.blobName).exists()).toBe(false);
    expect(await admin.getBlobClient(undeclared.blobName).exists()).toBe(false);
  });
});

describe("GET /api/negotiate", () => {
  it("gives a client URL that receives the caller's job events, cannot join another caller's group and cannot send", async () => {
    const user = newUser();
    const response = await call("negotiate", { method: "GET", path: "/api/negotiate", user });
    expect(response.status).toBe(200);
    const access = response.body as { url: string; group: string };
    expect(access.group).toBe(userGroup(user));

    const client = new WebPubSubClient(access.url);
    const received: unknown[] = [];
    client.on("group-message", (event) => received.push(event.message.data));
    await client.start();
    try {
      const events = new WebPubSubJobEvents(await createWebPubSubClient({ mode: "connectionString", connectionString: platform.settings.WebPubSub! }, "jobs"));
      const at = new Date().toISOString();
      const event = { type: "job.running", status: "running", jobId: "j-1", attempts: 1, at, updatedAt: at, startedAt: at } as const;
      await events.publish(newUser(), { ...event, jobId: "not-mine" });
      await events.publish(user, event);
      await expect.poll(() => received, { timeout: 3_000 }).toHaveLength(1);
      expect(received[0]).toEqual(event);

      // The token's role names its own group only: joining another is refused by the service...
      await expect(client.joinGroup(userGroup(newUser()))).rejects.toMatchObject({ name: "SendMessageError", errorDetail: { name: "Forbidden" } });
      // ...and it carries no send role: a browser can listen to its group, never publish to it.
      await expect(client.sendToGroup(access.group, "forged job.succeeded", "text")).rejects.toMatchObject({ name: "SendMessageError", errorDetail: { name: "Forbidden" } });
      // Control: a token with the send role may send to the same group, so the refusals above are the roles'.
      const service = await createWebPubSubClient({ mode: "connectionString", connectionString: platform.settings.WebPubSub! }, "jobs");
      const sender = new WebPubSubClient((await service.getClientAccessToken({ userId: user, roles: [`webpubsub.sendToGroup.${access.group}`] })).url);
      await sender.start();
      try {
        await expect(sender.sendToGroup(access.group, "allowed", "text")).resolves.toMatchObject({ ackId: expect.any(Number) });
      } finally {
        sender.stop();
      }
    } finally {
      client.stop();
    }
  });
});

describe("GET /api/health", () => {
  it("reports every dependency reachable", async () => {
    const response = await call("health", { method: "GET", path: "/api/health" });
    expect(response.status).toBe(200);
    expect(response.body).toEqual({ status: "ok", checks: { cosmos: "ok", blob: "ok", serviceBus: "ok", webPubSub: "ok" } });
  });

  it("reports an unreachable dependency as 503 without leaking why", async () => {
    const broken = await createApiDependencies({
      ...platform.settings,
      WebPubSub: "Endpoint=http://127.0.0.1:9;AccessKey=a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5;Version=1.0;",
    });
    current = { ...broken, healthProbeTimeoutMs: 1_000 };
    const response = await call("health", { method: "GET", path: "/api/health" });
    expect(response.status).toBe(503);
    expect(response.headers["retry-after"]).toBe("5");
    expect(response.body).toEqual({ status: "degraded", checks: { cosmos: "ok", blob: "ok", serviceBus: "ok", webPubSub: "unreachable" } });
    expect(response.text).not.toMatch(/127\.0\.0\.1|ECONNREFUSED|Error/);
    await broken.queue.close();
  });
});

describe("documentation", () => {
  it("serves an OpenAPI 3.1 document generated from the validation schemas", async () => {
    const response = decode(await documentationHandlers.openapi(httpRequest({ path: "/api/openapi.json" }), invocationContext()));
    expect(response.status).toBe(200);
    const document = response.body as { openapi: string; paths: Record<string, Record<string, unknown>>; components: { schemas: Record<string, { additionalProperties?: unknown; required?: string[] }> } };
    expect(document.openapi).toBe("3.1.0");
    expect(Object.keys(document.paths).sort()).toEqual(["/api/health", "/api/jobs", "/api/jobs/{id}", "/api/negotiate", "/api/uploads"]);
    expect(Object.keys(document.paths["/api/jobs"]!).sort()).toEqual(["get", "post"]);
    expect(document.components.schemas.TextInput).toMatchObject({ additionalProperties: false, required: ["kind", "text"] });
    expect(document.components.schemas.ProblemDetails).toBeDefined();
  });

  it("serves Swagger UI from the installed package with a strict CSP, and 404 for other assets", async () => {
    const docs = (asset: string) => documentationHandlers.docs(httpRequest({ path: `/api/docs/${asset}`, params: { asset } }), invocationContext());
    const page = decode(await docs(""));
    expect(page.status).toBe(200);
    expect(page.text).toContain('<script src="/api/docs/swagger-ui-bundle.js">');
    expect(page.text).not.toMatch(/https?:\/\//);
    expect(page.headers["content-security-policy"]).toContain("script-src 'self'");
    const bundle = decode(await docs("swagger-ui-bundle.js"));
    expect(bundle.status).toBe(200);
    expect(bundle.text).toContain("SwaggerUIBundle");
    expectProblem(decode(await docs("../package.json")), 404);
  });
});
