/**
 * The api's job use cases: submit (validate the input's blob, create, enqueue; idempotent), read
 * one, list. No HTTP here beyond the problems it raises; handlers map requests to these calls.
 */
import { randomUUID } from "node:crypto";
import { reachFaultPoint } from "../shared/fault-points.js";
import { newJob, type Job, type JobInput } from "../shared/job.js";
import type { JobQueue } from "../shared/job-queue.js";
import { idempotentJobId, InvalidContinuationToken, JobConflict, type JobStore, type StoredJob } from "../shared/job-store.js";
import { HttpProblem } from "./problem.js";
import type { JobList, JobView } from "./schemas.js";
import type { Uploads } from "./uploads.js";

export interface JobsDependencies {
  readonly jobs: JobStore;
  readonly queue: JobQueue;
  readonly uploads: Uploads;
  readonly uploadMaxBytes: number;
}

export interface Log {
  info(message: string): void;
  warn(message: string): void;
  error(message: string, error?: unknown): void;
}

export interface SubmitResult {
  readonly job: Job;
  /** True when an earlier request with the same Idempotency-Key created the job. */
  readonly replayed: boolean;
}

/**
 * Creates the job and enqueues it. With an Idempotency-Key, the job id is derived from the key, so
 * a repeated (or concurrent) request finds the same job instead of creating a second one; a queued
 * job is enqueued again (the first request may have died before its send; if it did not, the agent
 * drops the second copy). When the enqueue fails the job is removed again, so the rejected request
 * leaves nothing behind and a retry starts clean. If this instance dies between the create and the
 * send, the stuck-job sweeper sends the message (requeue.ts).
 */
export async function submitJob(
  deps: JobsDependencies,
  userId: string,
  input: JobInput,
  idempotencyKey: string | undefined,
  log: Log,
): Promise<SubmitResult> {
  if (idempotencyKey !== undefined) {
    const existing = await deps.jobs.findByIdempotencyKey(userId, idempotencyKey);
    if (existing) return replay(deps, existing, input, idempotencyKey, log);
  }
  if (input.kind === "blob") await checkUpload(deps, userId, input.blobName);

  const id = idempotencyKey === undefined ? randomUUID() : idempotentJobId(userId, idempotencyKey);
  let created: StoredJob;
  try {
    created = await deps.jobs.create(newJob({ id, userId, input, ...(idempotencyKey === undefined ? {} : { idempotencyKey }) }));
  } catch (error) {
    // A concurrent request with the same key won the create: answer as its replay.
    if (error instanceof JobConflict && idempotencyKey !== undefined) {
      return replay(deps, await deps.jobs.get(userId, id), input, idempotencyKey, log);
    }
    throw error;
  }
  // Should this instance die here, the job has no message: the stuck-job sweeper (requeue.ts) sends one.
  reachFaultPoint("api.job-created");
  try {
    await deps.queue.send({ jobId: id, userId });
  } catch (error) {
    log.error(`job ${id}: enqueue failed; removing the job`, error);
    await rollBack(deps, created, log);
    throw new HttpProblem(503, "The job could not be queued. Nothing was kept; try again later.", { headers: { "retry-after": "5" } });
  }
  log.info(`job ${id}: queued`);
  return { job: created.job, replayed: false };
}

async function replay(deps: JobsDependencies, existing: StoredJob, input: JobInput, idempotencyKey: string, log: Log): Promise<SubmitResult> {
  if (JSON.stringify(existing.job.input) !== JSON.stringify(input)) {
    throw new HttpProblem(422, "This Idempotency-Key was already used for a different request.", {
      errors: [{ pointer: "#/headers/idempotency-key", detail: "already used with a different body" }],
    });
  }
  if (existing.job.status === "queued") {
    // The first request may have died between create and send. If it did not, the queue holds a
    // message already: duplicate detection (Standard tier) or the agent's job lease drops this one.
    try {
      await deps.queue.send({ jobId: existing.job.id, userId: existing.job.userId });
    } catch (error) {
      log.error(`job ${existing.job.id}: re-enqueue on replay failed`, error);
      throw new HttpProblem(503, "The job could not be queued; try again later.", { headers: { "retry-after": "5" } });
    }
  }
  log.info(`job ${existing.job.id}: replayed for Idempotency-Key ${JSON.stringify(idempotencyKey)}`);
  return { job: existing.job, replayed: true };
}

/** Undo a create whose enqueue failed; if even that fails, fail the job so it is never stuck. */
async function rollBack(deps: JobsDependencies, created: StoredJob, log: Log): Promise<void> {
  try {
    await deps.jobs.delete(created.job.userId, created.job.id);
  } catch (deleteError) {
    log.error(`job ${created.job.id}: removal failed; marking it failed instead`, deleteError);
    try {
      await deps.jobs.transition(created, { to: "failed", error: { code: "EnqueueFailed", message: "the job could not be queued" } });
    } catch (failError) {
      log.error(`job ${created.job.id}: could not mark it failed either`, failError);
    }
  }
}

async function checkUpload(deps: JobsDependencies, userId: string, blobName: string): Promise<void> {
  const check = await deps.uploads.check(userId, blobName);
  if (!check.ok) {
    // Someone else's blob and a missing blob look the same: nothing to learn about other users.
    throw new HttpProblem(422, "No such upload: upload the file with a URL from POST /api/uploads first.", {
      errors: [{ pointer: "#/blobName", detail: "no such upload" }],
    });
  }
  if (check.size > deps.uploadMaxBytes) {
    throw new HttpProblem(422, `The upload is ${check.size} bytes; the limit is ${deps.uploadMaxBytes} bytes.`, {
      errors: [{ pointer: "#/blobName", detail: `larger than ${deps.uploadMaxBytes} bytes` }],
    });
  }
}

/** The caller's job; JobNotFound (404) for a missing job and for another caller's job alike. */
export async function jobOf(jobs: JobStore, userId: string, id: string): Promise<Job> {
  return (await jobs.get(userId, id)).job;
}

export async function listJobsOf(jobs: JobStore, userId: string, pageSize: number, continuationToken: string | undefined): Promise<JobList> {
  let cosmosToken: string | undefined;
  if (continuationToken !== undefined) {
    cosmosToken = Buffer.from(continuationToken, "base64url").toString("utf8");
    // base64url decoding never fails; a token that does not re-encode identically was not ours.
    if (Buffer.from(cosmosToken, "utf8").toString("base64url") !== continuationToken) throw new InvalidContinuationToken();
  }
  const page = await jobs.list(userId, { pageSize, ...(cosmosToken === undefined ? {} : { continuationToken: cosmosToken }) });
  const items = page.jobs.map(toJobView);
  return page.continuationToken ? { items, continuationToken: Buffer.from(page.continuationToken, "utf8").toString("base64url") } : { items };
}

export function toJobView(job: Job): JobView {
  const view: JobView = {
    id: job.id,
    status: job.status,
    input: job.input.kind === "text" ? { kind: "text", characters: job.input.text.length } : { kind: "blob", blobName: job.input.blobName },
    attempts: job.attempts,
    createdAt: job.createdAt,
    updatedAt: job.updatedAt,
  };
  if (job.startedAt) view.startedAt = job.startedAt;
  if (job.finishedAt) view.finishedAt = job.finishedAt;
  if (job.result) view.result = job.result;
  if (job.error) view.error = job.error;
  return view;
}

