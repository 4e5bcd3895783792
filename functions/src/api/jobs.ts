/**
 * The api's job use cases: submit (validate the input's blob, create, enqueue; idempotent), read
 * one, list. No HTTP here beyond the problems it raises; handlers map requests to these calls.
 */
import { randomUUID } from "node:crypto";
import { reachFaultPoint } from "../shared/fault-points.js";
import { characterCount, newJob, type Job, type JobInput, type PinnedUpload } from "../shared/job.js";
import type { JobQueue } from "../shared/job-queue.js";
import { idempotentJobId, JobConflict, type JobStore, type StoredJob } from "../shared/job-store.js";
import { openContinuationToken, sealContinuationToken } from "./continuation-tokens.js";
import { HttpProblem } from "./problem.js";
import type { Quotas } from "./quotas.js";
import type { JobList, JobView } from "./schemas.js";
import type { StoredUpload, Uploads } from "./uploads.js";

export interface JobsDependencies {
  readonly jobs: JobStore;
  readonly queue: JobQueue;
  readonly uploads: Uploads;
  readonly quotas: Quotas;
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
  const upload = input.kind === "blob" ? await acceptUpload(deps, userId, input.blobName) : undefined;

  const id = idempotencyKey === undefined ? randomUUID() : idempotentJobId(userId, idempotencyKey);
  // After validation (bad requests cost no quota), before anything is written. Throws QuotaExceeded.
  await deps.quotas.admitJob(userId, id);
  let created: StoredJob;
  try {
    created = await deps.jobs.create(newJob({ id, userId, input, ...(idempotencyKey === undefined ? {} : { idempotencyKey }), ...(upload ? { upload } : {}) }));
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

/**
 * Accepts a blob job's upload only when it is what the upload URL was for: a block blob the caller
 * uploaded (not one copied in from elsewhere), no larger than the size declared for the URL (and
 * the service's limit). Returns its version, which the job pins: the agent reads that version or
 * nothing, so the blob cannot be swapped after the job was accepted. A refused upload is deleted.
 */
async function acceptUpload(deps: JobsDependencies, userId: string, blobName: string): Promise<PinnedUpload> {
  const check = await deps.uploads.check(userId, blobName);
  if (!check.ok) {
    // Someone else's blob and a missing blob look the same: nothing to learn about other users.
    throw new HttpProblem(422, "No such upload: upload the file with a URL from POST /api/uploads first.", {
      errors: [{ pointer: "#/blobName", detail: "no such upload" }],
    });
  }
  const refusal = uploadRefusal(check.upload, deps.uploadMaxBytes);
  if (refusal) {
    await deps.uploads.discard(blobName, check.upload.etag);
    throw new HttpProblem(422, `${refusal.detail} The upload was deleted; upload the file again with a new URL.`, {
      errors: [{ pointer: "#/blobName", detail: refusal.field }],
    });
  }
  return { etag: check.upload.etag, bytes: check.upload.size };
}

function uploadRefusal(upload: StoredUpload, maxBytes: number): { detail: string; field: string } | undefined {
  if (upload.copied) return { detail: "The blob was filled by a copy from another blob, not uploaded with its URL.", field: "copied, not uploaded" };
  if (upload.blobType !== "BlockBlob") return { detail: `The blob is a ${upload.blobType ?? "blob of unknown type"}; upload it as a BlockBlob (x-ms-blob-type: BlockBlob).`, field: "not a block blob" };
  const allowed = Math.min(upload.declaredSize ?? maxBytes, maxBytes);
  if (upload.size > allowed) {
    return {
      detail: `The upload is ${upload.size} bytes, more than the ${allowed} bytes ${upload.declaredSize === undefined ? "allowed" : "declared when its URL was issued"}.`,
      field: `larger than ${allowed} bytes`,
    };
  }
  return undefined;
}

/** The caller's job; JobNotFound (404) for a missing job and for another caller's job alike. */
export async function jobOf(jobs: JobStore, userId: string, id: string): Promise<Job> {
  return (await jobs.get(userId, id)).job;
}

export async function listJobsOf(jobs: JobStore, userId: string, pageSize: number, continuationToken: string | undefined): Promise<JobList> {
  const cosmosToken = continuationToken === undefined ? undefined : openContinuationToken(userId, continuationToken);
  const page = await jobs.list(userId, { pageSize, ...(cosmosToken === undefined ? {} : { continuationToken: cosmosToken }) });
  const items = page.jobs.map(toJobView);
  return page.continuationToken ? { items, continuationToken: sealContinuationToken(userId, page.continuationToken) } : { items };
}

export function toJobView(job: Job): JobView {
  const view: JobView = {
    id: job.id,
    status: job.status,
    // Characters as the result counts them (code points), so the two never disagree.
    input: job.input.kind === "text" ? { kind: "text", characters: characterCount(job.input.text) } : { kind: "blob", blobName: job.input.blobName },
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

