/**
 * What the agent does with one job message, free of @azure/functions so it is tested directly.
 *
 * Reliability rules (README.md next to this file tells the whole story of a job message):
 * - Idempotent: a message for a finished job (succeeded or failed) is a no-op, and so is a duplicate
 *   message for a job another delivery holds (job.ts, the lease): a job sent twice (no duplicate
 *   detection on a Basic namespace, a replayed Idempotency-Key, the stuck-job sweeper) runs once,
 *   its result written once, its events published once.
 * - Every state change is an etag-guarded replace. Two deliveries racing never both write a
 *   terminal state: the loser gets StaleJob, re-reads, and stops if the job is finished.
 * - Transient failures (database, storage, anything unexpected) throw, so the Functions host
 *   abandons the message and Service Bus redelivers it; after maxDeliveryCount it is dead-lettered
 *   and dead-letter.ts fails the job. The job is left `running` meanwhile, never forever.
 * - Permanent failures (input too large, not text, blob missing or not the owner's) fail the job
 *   at once: retrying cannot change the outcome, so spending deliveries on them only delays it.
 * - Web PubSub pushes are hints: a failed publish is logged, never fails the job.
 */
import { analyzeReopenable, InputRejected } from "../shared/analysis.js";
import { analyzeWithFallback, type EngineResult, type ExternalProcessor, type ReopenableInput } from "../shared/external-processor.js";
import { reachFaultPoint } from "../shared/fault-points.js";
import { isHeldByAnother, isTerminal, type Job, type JobError, type JobMessage } from "../shared/job.js";
import type { JobEvents } from "../shared/job-events.js";
import { JobNotFound, StaleJob, type JobStore, type StoredJob } from "../shared/job-store.js";
import { isUploadOf } from "../shared/upload-names.js";
import { notifyOwner } from "./notify.js";
import { BlobNotFound, UploadChanged, UploadCopied, UploadNotOwned, type UploadsReader } from "./uploads.js";

/** Blob size cap when UPLOAD_MAX_BYTES is not set for the agent. */
export const DEFAULT_MAX_BLOB_BYTES = 16 * 1024 * 1024;

export interface AgentDependencies {
  readonly store: JobStore;
  readonly events: JobEvents;
  readonly uploads: UploadsReader;
  /** Present when EXTERNAL_PROCESSOR_URL is set; one instance per process (it holds the breaker). */
  readonly externalProcessor?: ExternalProcessor;
  readonly maxBlobBytes: number;
  readonly now?: () => Date;
}

/** Where log lines go; the handler's implementation tags every line with the job id. */
export interface JobLog {
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
}

/**
 * Which delivery this is: its message's Service Bus sequence number. Every redelivery of one
 * message has the same; a duplicate message (sent again) has its own.
 */
export interface Delivery {
  readonly holder: string;
}

export type ProcessOutcome =
  | { outcome: "succeeded"; engine: EngineResult["engine"]; fallbackReason?: EngineResult["fallbackReason"] }
  | { outcome: "failed"; error: JobError }
  | { outcome: "already-finished"; status: Job["status"] }
  /** Another delivery finished the job while this one worked; nothing was written. */
  | { outcome: "lost-race"; status: Job["status"] }
  /** A duplicate message: another delivery holds the job's lease; nothing was written or published. */
  | { outcome: "held-elsewhere"; holder: string };

/** Loads, runs and finishes one job. Throws when Service Bus should retry the message. */
export async function processJob(deps: AgentDependencies, message: JobMessage, delivery: Delivery, log: JobLog): Promise<ProcessOutcome> {
  const now = deps.now ?? (() => new Date());
  let current: StoredJob;
  try {
    current = await deps.store.get(message.userId, message.jobId);
  } catch (error) {
    // The api writes the job before it sends the message, so "not found" is replication lag or a
    // job the api rolled back. Retrying covers the first; the dead-letter handler ends the second.
    if (error instanceof JobNotFound) log.warn("job not found; the message will be retried");
    throw error;
  }
  if (isTerminal(current.job.status)) {
    log.info(`job is already ${current.job.status}; redelivered message ignored`);
    return { outcome: "already-finished", status: current.job.status };
  }
  if (isHeldByAnother(current.job, delivery.holder, now())) return heldElsewhere(current.job, log);

  try {
    current = await deps.store.transition(current, { to: "running", holder: delivery.holder }, now());
  } catch (error) {
    if (error instanceof StaleJob) return settleLostRace(deps, message, delivery, log, "marking it running");
    throw error;
  }
  log.info(`job running (attempt ${current.job.attempts})`);
  await notifyOwner(deps.events, current.job, log, now());
  reachFaultPoint("agent.job-running");

  let outcome: { result: EngineResult } | { error: JobError };
  try {
    outcome = { result: await analyze(deps, current.job, log) };
  } catch (error) {
    const permanent = permanentError(error);
    if (!permanent) throw error;
    outcome = { error: permanent };
  }

  try {
    current =
      "result" in outcome
        ? await deps.store.transition(current, { to: "succeeded", result: outcome.result.result }, now())
        : await deps.store.transition(current, { to: "failed", error: outcome.error }, now());
  } catch (error) {
    if (error instanceof StaleJob) return settleLostRace(deps, message, delivery, log, "storing its outcome");
    throw error;
  }
  await notifyOwner(deps.events, current.job, log, now());

  let finished: ProcessOutcome;
  if ("error" in outcome) {
    log.warn(`job failed: ${outcome.error.code}: ${outcome.error.message}`);
    finished = { outcome: "failed", error: outcome.error };
  } else {
    const { engine, fallbackReason } = outcome.result;
    log.info(`job succeeded (engine ${engine}${fallbackReason ? `, fallback: ${fallbackReason}` : ""})`);
    finished = fallbackReason ? { outcome: "succeeded", engine, fallbackReason } : { outcome: "succeeded", engine };
  }
  reachFaultPoint("agent.job-finished");
  return finished;
}

function heldElsewhere(job: Job, log: JobLog): ProcessOutcome {
  const holder = job.lease?.holder ?? "?";
  // Safe to complete: the holder's own message stays until the job is finished, and comes back to
  // another worker if the holder's worker dies.
  log.info(`job is running under delivery ${holder} until ${job.lease?.until ?? "?"}; this duplicate message is dropped`);
  return { outcome: "held-elsewhere", holder };
}

/**
 * Another writer changed the job between our read and our write. If it finished the job, or holds
 * it, this delivery has nothing left to do; otherwise (the job changed but nobody holds it) throwing
 * lets Service Bus redeliver, so the job cannot be stranded.
 */
async function settleLostRace(deps: AgentDependencies, message: JobMessage, delivery: Delivery, log: JobLog, step: string): Promise<ProcessOutcome> {
  const latest = await deps.store.get(message.userId, message.jobId);
  if (isTerminal(latest.job.status)) {
    log.info(`another delivery finished the job (${latest.job.status}) while this one was ${step}; nothing written`);
    return { outcome: "lost-race", status: latest.job.status };
  }
  if (isHeldByAnother(latest.job, delivery.holder, (deps.now ?? (() => new Date()))())) return heldElsewhere(latest.job, log);
  log.warn(`the job changed while ${step}; the message will be retried`);
  throw new StaleJob(message.jobId);
}

async function analyze(deps: AgentDependencies, job: Job, log: JobLog): Promise<EngineResult> {
  const { open, maxBytes } = inputOf(deps, job);
  const result = await analyzeWithFallback(deps.externalProcessor, job.id, open, async (input) => {
    const analysis = await analyzeReopenable(input, { maxBytes });
    if (!analysis.topWordsExact) log.warn("more distinct words than the frequency table holds: topWords lists frequent words, but a word as rare as the summary's error may be missing");
    return analysis.result;
  });
  if (result.fallbackReason) log.warn(`external processor not used (${result.fallbackReason}): ${result.fallbackDetail ?? ""}`);
  return result;
}

function inputOf(deps: AgentDependencies, job: Job): { open: ReopenableInput; maxBytes: number } {
  const input = job.input;
  if (input.kind === "text") {
    const bytes = Buffer.from(input.text, "utf8");
    return {
      maxBytes: bytes.byteLength, // already bounded by the job schema
      open: async function* () {
        yield bytes;
      },
    };
  }
  const maxBytes = deps.maxBlobBytes;
  return {
    maxBytes,
    open: async () => {
      if (!isUploadOf(job.userId, input.blobName)) throw new UploadNotOwned(input.blobName);
      // A pinned job reads the version the api accepted, or fails: the blob cannot be swapped.
      const blob = await deps.uploads.open(input.blobName, job.upload?.etag);
      // Refuse early when the service announces the size; the stream cap still guards a liar.
      if (blob.contentLength !== undefined && blob.contentLength > maxBytes) {
        blob.cancel();
        throw new InputRejected("InputTooLarge", `the upload is ${blob.contentLength} bytes, larger than the limit of ${maxBytes} bytes`);
      }
      return blob.content;
    },
  };
}

function permanentError(error: unknown): JobError | undefined {
  if (error instanceof InputRejected) return { code: error.code, message: error.message };
  if (error instanceof UploadNotOwned) return { code: "UploadNotOwned", message: "the file is not one of your uploads" };
  if (error instanceof BlobNotFound) return { code: "BlobNotFound", message: "the uploaded file does not exist (it was never uploaded, or it was deleted)" };
  if (error instanceof UploadChanged) return { code: "UploadChanged", message: "the uploaded file was replaced after the job was accepted" };
  if (error instanceof UploadCopied) return { code: "UploadCopied", message: "the file was copied from another blob, not uploaded" };
  return undefined;
}
