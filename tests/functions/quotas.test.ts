/**
 * Per-user quotas (api/quotas.ts rules, api/quota-store.ts records) against the Cosmos emulator:
 * sliding windows with Retry-After, jobs in flight released when they finish, and limits that hold
 * with several api instances admitting at once (each its own Cosmos client, as separate processes
 * would have).
 */
import { CosmosClient, type Container } from "@azure/cosmos";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CosmosQuotas } from "../../functions/src/api/quota-store.js";
import { decideJob, decideUploadUrl, emptyQuotaRecord, QuotaExceeded, WINDOW_MS, type QuotaLimits } from "../../functions/src/api/quotas.js";
import { newJob } from "../../functions/src/shared/job.js";
import { jobResources } from "../../functions/src/shared/job-resources.js";
import { CosmosJobStore } from "../../functions/src/shared/job-store.js";
import { startTestPlatform, type TestPlatform } from "../support/emulators.js";

let platform: TestPlatform;
const clients: CosmosClient[] = [];
let userCounter = 0;
const newUser = () => `quota-user-${++userCounter}-${Math.random().toString(36).slice(2, 8)}`;

/** An api instance's view: its own Cosmos client, the shared database; `requests` lists the quota store's document requests ("read", "create", "replace"). */
function instance(limits: QuotaLimits, now?: () => number, rememberedUsers?: number) {
  const client = new CosmosClient(platform.cosmos.connectionString);
  clients.push(client);
  const database = client.database(jobResources.database);
  const jobs = new CosmosJobStore(database.container(jobResources.container));
  const requests: string[] = [];
  const quotas = new CosmosQuotas(counted(database.container(jobResources.quotas), requests), jobs, limits, now, rememberedUsers);
  return { quotas, jobs, requests, database };
}

/** The container, recording each read, create and replace of a document in `requests`. */
function counted(container: Container, requests: string[]): Container {
  const recording = <T extends object>(target: T, methods: readonly string[]): T =>
    new Proxy(target, {
      get(object, property, receiver) {
        const value: unknown = Reflect.get(object, property, receiver);
        if (typeof value !== "function") return value;
        if (typeof property === "string" && methods.includes(property)) {
          return (...args: unknown[]) => {
            requests.push(property);
            return Reflect.apply(value, object, args);
          };
        }
        return value.bind(object);
      },
    });
  return new Proxy(container, {
    get(object, property, receiver) {
      if (property === "item") return (id: string, partitionKey: string) => recording(object.item(id, partitionKey), ["read", "replace"]);
      if (property === "items") return recording(object.items, ["create"]);
      return Reflect.get(object, property, receiver);
    },
  });
}

beforeAll(async () => {
  platform = await startTestPlatform();
});

afterAll(async () => {
  for (const client of clients) client.dispose();
  await platform?.stop();
});

describe("the rules", () => {
  const limits: QuotaLimits = { uploadUrlsPerHour: 2, jobsPerHour: 3, jobsInFlight: 2 };

  it("counts upload URLs in a sliding hour and says when the oldest leaves it", () => {
    const t0 = Date.UTC(2026, 0, 1);
    let record = emptyQuotaRecord;
    for (const [name, at] of [["a", t0], ["b", t0 + 600_000]] as const) {
      const decision = decideUploadUrl(record, limits, name, at);
      if (!decision.admitted) throw decision.refusal;
      record = decision.record;
    }
    const refused = decideUploadUrl(record, limits, "c", t0 + 1_200_000);
    expect(refused).toMatchObject({ admitted: false, refusal: { retryAfterSeconds: 2400 } });
    // An hour after the first, there is room again (and the old entry is gone from the record).
    const later = decideUploadUrl(record, limits, "c", t0 + WINDOW_MS + 1);
    expect(later.admitted && Object.keys(later.record.uploadUrls)).toEqual(["b", "c"]);
  });

  it("limits jobs in flight until finished ones are named, and admits the same job twice only once", () => {
    const now = Date.UTC(2026, 0, 1);
    let record = emptyQuotaRecord;
    for (const id of ["j1", "j2", "j2"]) {
      const decision = decideJob(record, limits, id, now);
      if (!decision.admitted) throw decision.refusal;
      record = decision.record;
    }
    expect(Object.keys(record.inFlight)).toEqual(["j1", "j2"]);
    expect(decideJob(record, limits, "j3", now)).toMatchObject({ admitted: false, refusal: { retryAfterSeconds: 10 } });
    expect(decideJob(record, limits, "j3", now, new Set(["j1"])).admitted).toBe(true);
  });
});

describe("the records in Cosmos DB", () => {
  it("refuses the upload URL over the hourly limit with a Retry-After, across instances", async () => {
    const limits = { uploadUrlsPerHour: 3, jobsPerHour: 100, jobsInFlight: 100 };
    const [a, b] = [instance(limits), instance(limits)];
    const user = newUser();
    await a.quotas.admitUploadUrl(user, "u1");
    await b.quotas.admitUploadUrl(user, "u2");
    await a.quotas.admitUploadUrl(user, "u3");
    const refusal = await b.quotas.admitUploadUrl(user, "u4").catch((error: unknown) => error);
    expect(refusal).toBeInstanceOf(QuotaExceeded);
    expect((refusal as QuotaExceeded).retryAfterSeconds).toBeGreaterThan(3500);
    expect((refusal as QuotaExceeded).detail).toMatch(/3 upload URLs in the last hour/);
    // Another user is not affected.
    await b.quotas.admitUploadUrl(newUser(), "u5");
  });

  it("holds the limit exactly with many instances admitting at once (etag-guarded writes)", async () => {
    const limits = { uploadUrlsPerHour: 5, jobsPerHour: 100, jobsInFlight: 100 };
    const instances = Array.from({ length: 4 }, () => instance(limits));
    const user = newUser();
    const outcomes = await Promise.allSettled(Array.from({ length: 24 }, (_, n) => instances[n % 4]!.quotas.admitUploadUrl(user, `u${n}`)));
    expect(outcomes.filter((o) => o.status === "fulfilled")).toHaveLength(5);
    for (const outcome of outcomes) {
      if (outcome.status === "rejected") expect(outcome.reason).toBeInstanceOf(QuotaExceeded);
    }
  });

  it("releases a job in flight once it finished, and one that was never created after the grace period", async () => {
    let clock = Date.now();
    const limits = { uploadUrlsPerHour: 100, jobsPerHour: 100, jobsInFlight: 2 };
    const { quotas, jobs } = instance(limits, () => clock);
    const user = newUser();
    const created = await jobs.create(newJob({ id: crypto.randomUUID(), userId: user, input: { kind: "text", text: "x" } }));
    await quotas.admitJob(user, created.job.id);
    await quotas.admitJob(user, "never-created");
    await expect(quotas.admitJob(user, "third")).rejects.toBeInstanceOf(QuotaExceeded);
    // The stored job finishes: its slot is free again.
    const running = await jobs.transition(created, { to: "running", holder: "1" });
    await jobs.transition(running, { to: "failed", error: { code: "X", message: "x" } });
    await quotas.admitJob(user, "third");
    await expect(quotas.admitJob(user, "fourth")).rejects.toBeInstanceOf(QuotaExceeded);
    // A minute on, the admission whose job never appeared gives its slot back.
    clock += 61_000;
    await quotas.admitJob(user, "fourth");
  });

  it("writes a user's next admission on the same instance without reading first, and reads when another instance wrote since", async () => {
    const limits = { uploadUrlsPerHour: 10, jobsPerHour: 100, jobsInFlight: 100 };
    const [a, b] = [instance(limits), instance(limits)];
    const user = newUser();
    await a.quotas.admitUploadUrl(user, "u1");
    expect(a.requests.splice(0)).toEqual(["read", "create"]);
    await a.quotas.admitUploadUrl(user, "u2");
    expect(a.requests.splice(0)).toEqual(["replace"]);
    await b.quotas.admitUploadUrl(user, "u3");
    // a's record is stale now: its guarded write fails, it reads the record that won and writes again.
    await a.quotas.admitUploadUrl(user, "u4");
    expect(a.requests.splice(0)).toEqual(["replace", "read", "replace"]);
    const { resource } = await a.database.container(jobResources.quotas).item("quota", user).read<{ uploadUrls: Record<string, number> }>();
    expect(Object.keys(resource?.uploadUrls ?? {}).sort()).toEqual(["u1", "u2", "u3", "u4"]);
  });

  it("refuses only on the stored record: a record reset since it was remembered admits again", async () => {
    const limits = { uploadUrlsPerHour: 2, jobsPerHour: 100, jobsInFlight: 100 };
    const { quotas, database } = instance(limits);
    const user = newUser();
    await quotas.admitUploadUrl(user, "u1");
    await quotas.admitUploadUrl(user, "u2");
    // An operator resets the user's quota: the instance still remembers a full record.
    await database.container(jobResources.quotas).item("quota", user).delete();
    await quotas.admitUploadUrl(user, "u3");
  });

  it("remembers a bounded number of users, forgetting the least recently admitted first", async () => {
    const limits = { uploadUrlsPerHour: 10, jobsPerHour: 100, jobsInFlight: 100 };
    const { quotas, requests } = instance(limits, undefined, 1);
    const [first, second] = [newUser(), newUser()];
    await quotas.admitUploadUrl(first, "u1");
    await quotas.admitUploadUrl(second, "u1");
    requests.length = 0;
    await quotas.admitUploadUrl(second, "u2");
    await quotas.admitUploadUrl(first, "u2");
    expect(requests).toEqual(["replace", "read", "replace"]);
  });
});
