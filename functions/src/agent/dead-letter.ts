/**
 * The end of the line for a job message: Service Bus dead-lettered it (after maxDeliveryCount
 * failed deliveries, or for another reason it records), so no further delivery will come. The job
 * must not stay queued or running forever: it is marked failed with the reason, and the owner is
 * told. Free of @azure/functions so it is tested directly.
 */
import { isHeldByAnother, isTerminal, type JobError, type JobMessage } from "../shared/job.js";
import type { JobEvents } from "../shared/job-events.js";
import { JobNotFound, StaleJob, type JobStore, type StoredJob } from "../shared/job-store.js";
import { notifyOwner } from "./notify.js";
import type { Delivery, JobLog } from "./process-job.js";

/** Why Service Bus dead-lettered the message (its DeadLetterReason / DeadLetterErrorDescription). */
export interface DeadLetterReason {
  reason?: string;
  description?: string;
  deliveryCount?: number;
}

export type DeadLetterOutcome = "failed" | "already-finished" | "not-found" | "held-elsewhere";

/** Writes retried when a concurrent writer (a late agent delivery) keeps changing the job. */
const MAX_WRITE_ATTEMPTS = 5;

/** What the owner reads as the failure; the code keeps Service Bus's reason for support. */
export function deadLetterError(reason: DeadLetterReason): JobError {
  const code = reason.reason && /^[A-Za-z0-9_.-]{1,100}$/.test(reason.reason) ? reason.reason : "DeadLettered";
  if (code === "MaxDeliveryCountExceeded") {
    const attempts = reason.deliveryCount ? ` ${reason.deliveryCount} times` : " repeatedly";
    return { code, message: `the agent tried the job${attempts} and could not finish it; it will not be retried` };
  }
  const detail = reason.description ? `: ${reason.description.slice(0, 500)}` : "";
  return { code, message: `the job could not be delivered to the agent${detail}` };
}

/**
 * Marks the job failed unless it already finished, or another delivery holds it (then this was a
 * duplicate message, and the holder's own message decides). Throws (so the host retries) on storage
 * errors.
 */
export async function failDeadLetteredJob(
  deps: { store: JobStore; events: JobEvents; now?: () => Date },
  message: JobMessage,
  delivery: Delivery,
  reason: DeadLetterReason,
  log: JobLog,
): Promise<DeadLetterOutcome> {
  const now = deps.now ?? (() => new Date());
  const error = deadLetterError(reason);
  for (let attempt = 1; ; attempt += 1) {
    let current: StoredJob;
    try {
      current = await deps.store.get(message.userId, message.jobId);
    } catch (readError) {
      if (readError instanceof JobNotFound) {
        // The api rolled the job back (its enqueue failed), so nobody is waiting for it.
        log.warn(`dead-lettered message for a job that does not exist (${error.code}); nothing to mark`);
        return "not-found";
      }
      throw readError;
    }
    if (isTerminal(current.job.status)) {
      log.info(`dead-lettered message for a job already ${current.job.status}; nothing to do`);
      return "already-finished";
    }
    if (isHeldByAnother(current.job, delivery.holder, now())) {
      log.info(`dead-lettered duplicate message; delivery ${current.job.lease?.holder} still runs the job, so it is left to that one`);
      return "held-elsewhere";
    }
    try {
      current = await deps.store.transition(current, { to: "failed", error }, now());
    } catch (writeError) {
      if (writeError instanceof StaleJob && attempt < MAX_WRITE_ATTEMPTS) continue;
      throw writeError;
    }
    log.error(`job failed after dead-lettering: ${error.code}: ${error.message}`);
    await notifyOwner(deps.events, current.job, log, now());
    return "failed";
  }
}
