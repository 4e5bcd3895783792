/**
 * Property: whatever bytes, content type and Idempotency-Key a caller sends to POST /api/jobs,
 * a request the api does not accept gets a 4xx application/problem+json answer, never a 5xx, and
 * writes nothing (no document, no message). Run against the real Cosmos emulator and the
 * production store; the queue records sends.
 */
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createApiDependencies } from "../../functions/src/api/clients.js";
import type { ApiDependencies } from "../../functions/src/api/dependencies.js";
import { createApiHandlers, type ApiHandlers } from "../../functions/src/api/handlers.js";
import { ProblemDetails } from "../../functions/src/api/problem.js";
import { CreateJobRequest } from "../../functions/src/api/schemas.js";
import type { JobMessage } from "../../functions/src/shared/job.js";
import type { JobStore } from "../../functions/src/shared/job-store.js";
import { startTestPlatform, type TestPlatform } from "../support/emulators.js";
import { decode, httpRequest, invocationContext } from "../support/http.js";

const USER = "property-user";
let platform: TestPlatform;
let production: ApiDependencies;
let handlers: ApiHandlers;
const sent: JobMessage[] = [];
const writes: string[] = [];

beforeAll(async () => {
  platform = await startTestPlatform();
  production = await createApiDependencies(platform.settings);
  const store = production.jobs;
  // The production store, with every write recorded.
  const recordingStore: JobStore = {
    create: (job) => (writes.push(`create ${job.id}`), store.create(job)),
    transition: (current, transition, now) => (writes.push(`transition ${current.job.id}`), store.transition(current, transition, now)),
    delete: (userId, id) => (writes.push(`delete ${id}`), store.delete(userId, id)),
    get: (userId, id) => store.get(userId, id),
    list: (userId, options) => store.list(userId, options),
    findByIdempotencyKey: (userId, key) => store.findByIdempotencyKey(userId, key),
    listUnfinishedUntouchedSince: (since, maxItems) => store.listUnfinishedUntouchedSince(since, maxItems),
    markRequeued: (current, now) => (writes.push(`requeue ${current.job.id}`), store.markRequeued(current, now)),
    ping: () => store.ping(),
  };
  const deps: ApiDependencies = {
    ...production,
    jobs: recordingStore,
    queue: { send: async (message) => void sent.push(message), ping: async () => {}, close: async () => {} },
  };
  handlers = createApiHandlers(async () => deps);
});

afterAll(async () => {
  await platform?.stop();
});

const contentTypes = fc.constantFrom(
  "application/json",
  "application/json; charset=utf-8",
  "Application/JSON",
  "application/json; charset=utf-16",
  "text/plain",
  "application/xml",
  "multipart/form-data; boundary=x",
  "",
);

const jobLike = fc.record(
  {
    kind: fc.oneof(fc.constantFrom("text", "blob", "TEXT", ""), fc.string(), fc.integer(), fc.constant(null)),
    text: fc.oneof(fc.string({ maxLength: 20 }), fc.constant(""), fc.integer(), fc.array(fc.string()), fc.constant(null)),
    blobName: fc.oneof(fc.string({ maxLength: 40 }), fc.constant("users/0000/x.txt"), fc.constant("../../etc/passwd")),
    extra: fc.jsonValue(),
    __proto__: fc.jsonValue(),
    constructor: fc.string(),
  },
  { requiredKeys: [] },
);

const bodies = fc.oneof(
  jobLike.map((value) => Buffer.from(JSON.stringify(value))),
  fc.jsonValue().map((value) => Buffer.from(JSON.stringify(value) ?? "")),
  fc.string().map((value) => Buffer.from(value)),
  fc.uint8Array({ maxLength: 64 }).map((value) => Buffer.from(value)),
  fc.constant(Buffer.from(`{"kind":"text","text":"${"x".repeat(100_001)}"}`)),
  fc.constant(Buffer.from('{"kind":"text","text":"a"}{')),
);

const idempotencyKeys = fc.option(fc.oneof(fc.string({ maxLength: 10 }), fc.constant(""), fc.constant("x".repeat(201)), fc.constant("ok-key")), { nil: undefined });

/** Would the api accept this request (then it is not a case for this property)? */
function acceptable(body: Buffer, contentType: string, key: string | undefined): boolean {
  if (!/^application\/json(; ?charset=utf-8)?$/i.test(contentType.trim())) return false;
  if (key !== undefined && !/^[\x21-\x7e]{1,200}$/.test(key)) return false;
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(body));
  } catch {
    return false;
  }
  const parsed = CreateJobRequest.safeParse(value);
  return parsed.success && parsed.data.kind === "text";
}

describe("POST /api/jobs under random input", () => {
  it("answers every unacceptable request with a 4xx problem and writes nothing", async () => {
    let cases = 0;
    await fc.assert(
      fc.asyncProperty(bodies, contentTypes, idempotencyKeys, async (body, contentType, key) => {
        fc.pre(!acceptable(body, contentType, key));
        cases += 1;
        const headers: Record<string, string> = { "x-dev-user": USER };
        if (contentType) headers["content-type"] = contentType;
        if (key !== undefined) headers["idempotency-key"] = key;
        let request;
        try {
          request = httpRequest({ method: "POST", path: "/api/jobs", headers, body });
        } catch {
          return; // a header value the HTTP stack itself refuses never reaches the api
        }
        const response = decode(await handlers.jobs(request, invocationContext()));
        expect(response.status, response.text).toBeGreaterThanOrEqual(400);
        expect(response.status, response.text).toBeLessThan(500);
        expect(response.headers["content-type"]).toBe("application/problem+json");
        expect(ProblemDetails.parse(response.body).status).toBe(response.status);
        expect(writes).toEqual([]);
        expect(sent).toEqual([]);
      }),
      { numRuns: 300 },
    );
    expect(cases).toBeGreaterThan(250);
    expect((await production.jobs.list(USER, { pageSize: 10 })).jobs).toEqual([]);
  });

  it("never answers 5xx to random query strings or job ids", async () => {
    await fc.assert(
      fc.asyncProperty(fc.dictionary(fc.constantFrom("pageSize", "continuationToken", "x", "__proto__"), fc.string({ maxLength: 30 })), async (query) => {
        const search = new URLSearchParams(query).toString();
        const response = decode(await handlers.jobs(httpRequest({ path: `/api/jobs?${search}`, headers: { "x-dev-user": USER } }), invocationContext()));
        expect(response.status, response.text).toBeLessThan(500);
      }),
      { numRuns: 100 },
    );
    await fc.assert(
      fc.asyncProperty(fc.string({ maxLength: 60 }), async (id) => {
        const response = decode(await handlers.job(httpRequest({ path: "/api/jobs/x", params: { id }, headers: { "x-dev-user": USER } }), invocationContext()));
        expect(response.status).toBe(404);
      }),
      { numRuns: 100 },
    );
  });
});
