/** The job lifecycle rules and schemas (pure). */
import { describe, expect, it } from "vitest";
import {
  applyTransition,
  canTransition,
  eventFor,
  InvalidTransition,
  isHeldByAnother,
  isTerminal,
  JOB_LEASE_MS,
  Job,
  JobEvent,
  JobMessage,
  jobStatuses,
  newJob,
  type JobStatus,
} from "../../functions/src/shared/job.js";
import { idempotentJobId } from "../../functions/src/shared/job-store.js";
import { userGroup } from "../../functions/src/shared/job-events.js";
import { isUploadOf, uploadBlobName, uploadPrefix } from "../../functions/src/shared/upload-names.js";
import { connectionStringPart, isLoopbackHttp } from "../../functions/src/shared/azure-clients.js";

const t0 = new Date("2026-01-01T00:00:00.000Z");
const t1 = new Date("2026-01-01T00:00:05.000Z");
const result = { characters: 3, words: 1, lines: 1, topWords: [{ word: "abc", count: 1 }], readingTimeSeconds: 0.3 };
const queued = () => newJob({ id: "00000000-0000-4000-8000-000000000001", userId: "u1", input: { kind: "text", text: "abc" }, now: t0 });

describe("job lifecycle", () => {
  it("allows exactly queued->running|failed and running->running|succeeded|failed; terminal states stay put", () => {
    const allowed = new Set(["queued>running", "queued>failed", "running>running", "running>succeeded", "running>failed"]);
    for (const from of jobStatuses) {
      for (const to of jobStatuses) expect(canTransition(from, to), `${from}>${to}`).toBe(allowed.has(`${from}>${to}`));
    }
    expect(jobStatuses.filter((status: JobStatus) => isTerminal(status))).toEqual(["succeeded", "failed"]);
  });

  it("counts an attempt and stamps times on each transition, and clears stale outcome fields", () => {
    const job = queued();
    expect(job).toMatchObject({ status: "queued", attempts: 0, createdAt: t0.toISOString(), updatedAt: t0.toISOString() });
    const running = applyTransition(job, { to: "running", holder: "7" }, t1);
    expect(running).toMatchObject({ status: "running", attempts: 1, startedAt: t1.toISOString(), updatedAt: t1.toISOString(), createdAt: t0.toISOString() });
    const rerun = applyTransition(running, { to: "running", holder: "7" }, t1);
    expect(rerun.attempts).toBe(2);
    const done = applyTransition(rerun, { to: "succeeded", result }, t1);
    expect(done).toMatchObject({ status: "succeeded", result, finishedAt: t1.toISOString() });
    expect(() => Job.parse(done)).not.toThrow();
    expect(() => applyTransition(done, { to: "failed", error: { code: "X", message: "y" } })).toThrow(InvalidTransition);
    const failed = applyTransition(queued(), { to: "failed", error: { code: "MaxDeliveryCountExceeded", message: "gave up" } }, t1);
    expect(failed).toMatchObject({ status: "failed", error: { code: "MaxDeliveryCountExceeded" }, attempts: 0 });
    expect(failed).not.toHaveProperty("result");
  });

  it("describes each state as the event its owner receives, and validates it", () => {
    expect(eventFor(queued())).toBeUndefined();
    const running = applyTransition(queued(), { to: "running", holder: "7" });
    // The stored job's stamps, so the page applies the event like a read of the job (web/src/jobs.ts).
    expect(JobEvent.parse(eventFor(running, t1))).toEqual({
      type: "job.running",
      status: "running",
      jobId: running.id,
      attempts: 1,
      at: t1.toISOString(),
      updatedAt: running.updatedAt,
      startedAt: running.startedAt,
    });
    const done = applyTransition(running, { to: "succeeded", result });
    expect(JobEvent.parse(eventFor(done))).toMatchObject({ type: "job.succeeded", result, attempts: 1, updatedAt: done.updatedAt, startedAt: running.startedAt, finishedAt: done.finishedAt });
    const failed = applyTransition(running, { to: "failed", error: { code: "InputTooLarge", message: "too big" } });
    expect(JobEvent.parse(eventFor(failed))).toMatchObject({ type: "job.failed", error: { code: "InputTooLarge" } });
  });

  it("leases a running job for as long as the host renews its message's lock (host.json maxAutoLockRenewalDuration)", async () => {
    const { readFileSync } = await import("node:fs");
    const { parseTimeSpan } = await import("../../packages/functions-host/src/host-config.js");
    const hostJson = JSON.parse(readFileSync(`${__dirname}/../../functions/host.json`, "utf8")) as { extensions: { serviceBus: { maxAutoLockRenewalDuration: string } } };
    expect(JOB_LEASE_MS).toBe(parseTimeSpan(hostJson.extensions.serviceBus.maxAutoLockRenewalDuration, "maxAutoLockRenewalDuration"));
    const running = applyTransition(queued(), { to: "running", holder: "42" }, t1);
    expect(running.lease).toEqual({ holder: "42", until: new Date(t1.getTime() + JOB_LEASE_MS).toISOString() });
    expect(isHeldByAnother(running, "43", t1)).toBe(true);
    expect(isHeldByAnother(running, "42", t1)).toBe(false);
    expect(isHeldByAnother(running, "43", new Date(t1.getTime() + JOB_LEASE_MS))).toBe(false);
    expect(applyTransition(running, { to: "succeeded", result }, t1)).not.toHaveProperty("lease");
  });

  it("rejects documents and messages with unknown or missing fields", () => {
    expect(Job.safeParse({ ...queued(), owner: "x" }).success).toBe(false);
    expect(Job.safeParse({ ...queued(), input: { kind: "text", text: "" } }).success).toBe(false);
    expect(JobMessage.safeParse({ jobId: "a", userId: "b" }).success).toBe(true);
    expect(JobMessage.safeParse({ jobId: "a" }).success).toBe(false);
    expect(JobMessage.safeParse({ jobId: "a", userId: "b", extra: 1 }).success).toBe(false);
  });
});

describe("derived names", () => {
  it("derives a stable, UUID-shaped job id per user and idempotency key", () => {
    const id = idempotentJobId("u1", "key");
    expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(idempotentJobId("u1", "key")).toBe(id);
    expect(idempotentJobId("u2", "key")).not.toBe(id);
    expect(idempotentJobId("u1", "key2")).not.toBe(id);
    // The separator keeps ("ab","c") and ("a","bc") apart.
    expect(idempotentJobId("ab", "c")).not.toBe(idempotentJobId("a", "bc"));
  });

  it("gives each user one realtime group and one upload prefix, neither revealing the id", () => {
    expect(userGroup("alice")).toMatch(/^user\.[0-9a-f]{40}$/);
    expect(userGroup("alice")).not.toBe(userGroup("bob"));
    expect(userGroup("alice")).not.toContain("alice");
    expect(uploadPrefix("alice")).toMatch(/^users\/[0-9a-f]{40}\/$/);
    const name = uploadBlobName("alice", "0b7e2f0c-1111-4222-8333-444455556666", 1024);
    expect(isUploadOf("alice", name)).toBe(true);
    expect(isUploadOf("bob", name)).toBe(false);
    expect(isUploadOf("alice", `${uploadPrefix("alice")}nested/x.txt`)).toBe(false);
    expect(isUploadOf("alice", `${uploadPrefix("alice")}../x.txt`)).toBe(false);
  });
});

describe("connection helpers", () => {
  it("allows plain http only on loopback", () => {
    expect(isLoopbackHttp("http://127.0.0.1:8080")).toBe(true);
    expect(isLoopbackHttp("http://localhost:1")).toBe(true);
    expect(isLoopbackHttp("http://[::1]:1/")).toBe(true);
    expect(isLoopbackHttp("https://127.0.0.1:1")).toBe(false);
    expect(isLoopbackHttp("http://example.com")).toBe(false);
    expect(isLoopbackHttp("http://127.0.0.1.example.com")).toBe(false);
    expect(isLoopbackHttp("not a url")).toBe(false);
  });

  it("reads connection string parts case-insensitively, keeping '=' inside values", () => {
    const cs = "Endpoint=http://127.0.0.1:5;AccessKey=abc==;Version=1.0;";
    expect(connectionStringPart(cs, "endpoint")).toBe("http://127.0.0.1:5");
    expect(connectionStringPart(cs, "AccessKey")).toBe("abc==");
    expect(connectionStringPart(cs, "Missing")).toBeUndefined();
  });
});
