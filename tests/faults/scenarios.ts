/**
 * The faults, each a function of a running rig (kit.ts) that injects one fault while jobs are in
 * flight and ends with the audit. Every scenario's verdict depends on outcomes only (final states,
 * counts, answers), never on how the fault happened to interleave with the jobs.
 */
import { expect } from "vitest";
import { JOB_MESSAGE_SUBJECT } from "../../functions/src/shared/job-queue.js";
import { jobResources } from "../../functions/src/shared/job-resources.js";
import { audit, bodyOf, outputLine, type Answer, type FaultReport, type FaultRig, type ProxiedDependency, type User } from "./kit.js";

const is202 = (answer: Answer) => answer.status === 202;

/** Submits `count` jobs, one after another; every one must be accepted. */
async function submitJobs(user: User, count: number): Promise<void> {
  for (let i = 0; i < count; i += 1) {
    const answer = await user.submit(`job ${i} of ${user.id}: the quick brown fox jumps over the lazy dog`);
    expect(answer, JSON.stringify(answer)).toSatisfy(is202);
  }
}

/** The supervisor's line once the service is running again after it was killed. */
const restarted = (rig: FaultRig, service: "api" | "agent") => outputLine(rig, new RegExp(`^\\[platform\\] ${service} restarted in \\d+ ms after it killed by SIGKILL`));

/** SIGKILL the agent at the fault point after it marked a job running: the job is redelivered and run once more, to the end. */
export async function agentKilledMidJob(rig: FaultRig): Promise<FaultReport> {
  const started = Date.now();
  const user = await rig.user("agent-killed-mid-job");
  const back = restarted(rig, "agent");
  rig.arm("agent.job-running");
  await submitJobs(user, 6);
  await back;
  const report = await audit(rig, "agent killed (SIGKILL) mid-job", [user], started);
  // The job it died on ran twice: once killed, once to the end (a new attempt, not a double).
  expect(report.retried).toBeGreaterThanOrEqual(1);
  return report;
}

/** SIGKILL the agent after it stored and published a job's outcome, before the message was completed: the redelivery finds it finished. */
export async function agentKilledAfterStoring(rig: FaultRig): Promise<FaultReport> {
  const started = Date.now();
  const user = await rig.user("agent-killed-after-storing");
  const back = restarted(rig, "agent");
  const redelivered = outputLine(rig, /job is already succeeded; redelivered message ignored/);
  rig.arm("agent.job-finished");
  await submitJobs(user, 3);
  await back;
  await redelivered;
  return audit(rig, "agent killed (SIGKILL) after storing, before completing", [user], started);
}

/** SIGKILL the agent's process from outside at an arbitrary moment while a stream of jobs flows. */
export async function agentKilledAnyMoment(rig: FaultRig): Promise<FaultReport> {
  const started = Date.now();
  const user = await rig.user("agent-killed-any-moment");
  const back = restarted(rig, "agent");
  const submitting = submitJobs(user, 20);
  await user.eventsWhere((events) => events.filter((e) => e.type === "job.running").length >= 5);
  process.kill(rig.platform.services.agent.pid, "SIGKILL");
  await submitting;
  await back;
  // A job whose outcome was stored just before the kill, but not yet published, has no terminal
  // event: the redelivery finds it finished and says nothing (pushes are hints; the list is right).
  return audit(rig, "agent killed (SIGKILL) at any moment, 20 jobs streaming", [user], started, { eventsExpected: false });
}

/**
 * Kill the api between storing a job and sending its message: the caller gets no answer, the job
 * has no message, and the stuck-job sweeper sends one. Then the same with an Idempotency-Key: the
 * caller's retry gets the same job (202, replayed), which runs once.
 */
export async function apiKilledBetweenCreateAndSend(rig: FaultRig): Promise<FaultReport> {
  const started = Date.now();
  const user = await rig.user("api-killed-before-send");
  let back = restarted(rig, "api");
  rig.arm("api.job-created");
  const lost = await user.submit("the api dies before it sends this job's message");
  expect(lost.status).toBe("no answer");
  await back;
  // The job exists, queued, without a message; the owner sees it.
  const orphan = (await user.list()).find((job) => job.status === "queued");
  expect(orphan, "the job the api stored before it died").toBeDefined();
  await outputLine(rig, new RegExp(`job ${orphan!.id}: queued with no progress since .*; sent it a new message \\(re-send 1\\)`), { includePast: true });

  back = restarted(rig, "api");
  rig.arm("api.job-created");
  const key = `retry-${user.id}`;
  expect((await user.submit("retried with the same key", { idempotencyKey: key })).status).toBe("no answer");
  await back;
  const retry = await user.submit("retried with the same key", { idempotencyKey: key });
  expect(retry.status).toBe(202);
  const report = await audit(rig, "api killed (SIGKILL) between create and send", [user], started);
  expect(report.accepted).toBe(2);
  return report;
}

/**
 * Stop the Service Bus emulator while jobs are in flight (its data directory keeps what it
 * accepted), submit while it is down (503 with Retry-After, nothing kept), start it again.
 */
export async function serviceBusRestarted(rig: FaultRig): Promise<FaultReport> {
  const started = Date.now();
  const user = await rig.user("service-bus-restarted");
  await submitJobs(user, 8);
  await rig.platform.serviceBus.stop();
  const whileDown = [await user.submit("sent while Service Bus is down"), await user.submit("sent while Service Bus is down, again")];
  for (const answer of whileDown) {
    expect(answer.status).toBe(503);
    expect(answer.status === 503 && answer.retryAfter).toBeTruthy();
  }
  await rig.platform.serviceBus.start();
  await submitJobs(user, 2);
  const report = await audit(rig, "Service Bus emulator stopped and started (data directory kept)", [user], started);
  expect(report.accepted).toBe(10); // the two refused while it was down left nothing behind
  return report;
}

/** Uploads a small text file the way the web app does, so a blob job can name it. */
async function upload(user: User, text: string): Promise<string> {
  const issued = await user.request("POST", "/uploads", { size: Buffer.byteLength(text) });
  expect(issued.status, JSON.stringify(issued)).toBe(201);
  const { uploadUrl, blobName, headers } = bodyOf<{ uploadUrl: string; blobName: string; headers: Record<string, string> }>(issued);
  const put = await fetch(uploadUrl, { method: "PUT", headers: { ...headers, "content-type": "text/plain" }, body: text });
  expect(put.status).toBe(201);
  return blobName;
}

/**
 * Make a dependency unreachable while jobs are in flight, keep it so until the api has answered 503
 * (with Retry-After, never 500) to requests that need it, then make it reachable again; every
 * accepted job still finishes, once.
 */
export async function dependencyDown(rig: FaultRig, dependency: ProxiedDependency, mode: "refuse" | "reset"): Promise<FaultReport> {
  const started = Date.now();
  const user = await rig.user(`${dependency}-${mode}`);
  const blobs = dependency === "blob" ? await Promise.all([1, 2, 3].map((n) => upload(user, `uploaded file ${n} of ${user.id}`))) : [];
  const submitOne = (n: number) =>
    dependency === "blob" ? user.request("POST", "/jobs", { kind: "blob", blobName: blobs[n % blobs.length] }).then((a) => (a.status === 202 && user.accepted.add(bodyOf<{ id: string }>(a).id), a)) : user.submit();
  // Jobs in flight when it goes: slowed down first (every chunk held 300 ms), so the agent is still
  // working on them when the connections go (Web PubSub: its publishes are).
  await rig.proxies[dependency].set("delay", { delayMs: 300 });
  for (let n = 0; n < 3; n += 1) expect(await submitOne(n)).toSatisfy(is202);
  await user.eventsWhere((events) => events.some((e) => e.type === "job.running"));

  await rig.proxies[dependency].set(mode);
  // While it is down: requests that need it are refused with 503 and Retry-After. (Kept short: the
  // agent's in-flight jobs spend a delivery per failed attempt, and five fail a job.)
  const whileDown: Answer[] = [];
  if (dependency === "cosmos") {
    whileDown.push(await user.submit());
    // Reads the SDK retries on a reset connection for seconds; a refused one fails at once.
    if (mode === "refuse") whileDown.push(await user.request("GET", "/jobs"), await user.request("GET", `/jobs/${[...user.accepted][0]}`));
    for (const answer of whileDown) expect(answer.status, JSON.stringify(answer)).toBe(503);
  } else if (dependency === "blob") {
    whileDown.push(await submitOne(0));
    for (const answer of whileDown) expect(answer.status, JSON.stringify(answer)).toBe(503);
    // A text job needs no blob: accepted meanwhile.
    expect(await user.submit()).toSatisfy(is202);
  } else {
    // Web PubSub down: nothing the api does for a job needs it (pushes are hints), so jobs are
    // accepted; health reports it once its cached report (5 s) has expired.
    for (let n = 0; n < 3; n += 1) expect(await user.submit()).toSatisfy(is202);
    let health = await user.request("GET", "/health");
    for (let tries = 0; health.status === 200 && tries < 20; tries += 1) {
      await new Promise((resolve) => setTimeout(resolve, 500));
      health = await user.request("GET", "/health");
    }
    whileDown.push(health);
    expect(health.status).toBe(503);
  }
  for (const answer of whileDown) if (answer.status === 503) expect(answer.retryAfter).toBeTruthy();
  await rig.proxies[dependency].set("pass");
  for (let n = 0; n < 2; n += 1) expect(await submitOne(n)).toSatisfy(is202);
  return audit(rig, `${dependency} unreachable (${mode === "refuse" ? "connections refused" : "connections reset"})`, [user], started, {
    eventsExpected: dependency !== "webPubSub",
  });
}

/** Slow a dependency down (every chunk each way held): answers come later, none fails. */
export async function dependencySlow(rig: FaultRig, dependency: ProxiedDependency, delayMs: number): Promise<FaultReport> {
  const started = Date.now();
  const user = await rig.user(`${dependency}-slow`);
  await rig.proxies[dependency].set("delay", { delayMs });
  try {
    await submitJobs(user, 4);
  } finally {
    await rig.proxies[dependency].set("pass");
  }
  return audit(rig, `${dependency} slow (${delayMs} ms per chunk)`, [user], started);
}

/**
 * The same job message several times, as a producer retry or a replayed request would send it
 * (the rig's Basic tier has no duplicate detection): copies racing the original, and a copy after
 * the job finished. The job runs once: one attempt, one job.running, one job.succeeded.
 */
export async function sameMessageTwice(rig: FaultRig): Promise<FaultReport> {
  const started = Date.now();
  const user = await rig.user("same-message-twice");
  const sender = rig.serviceBus.createSender(jobResources.queue);
  const copy = (jobId: string) => sender.sendMessages({ messageId: jobId, contentType: "application/json", subject: JOB_MESSAGE_SUBJECT, body: { jobId, userId: user.id } });
  try {
    const racing: string[] = [];
    for (let i = 0; i < 3; i += 1) {
      const answer = await user.submit(`sent ${i} more times`);
      const id = bodyOf<{ id: string }>(answer).id;
      racing.push(id);
      await Promise.all([copy(id), copy(id)]);
    }
    await user.eventsWhere((events) => racing.every((id) => events.some((e) => e.jobId === id && e.type === "job.succeeded")));
    const dropped = outputLine(rig, /job is already succeeded; redelivered message ignored/);
    await copy(racing[0]!);
    await dropped;
  } finally {
    await sender.close();
  }
  const report = await audit(rig, "the same message sent three times (no duplicate detection)", [user], started);
  expect(report.retried).toBe(0);
  return report;
}
