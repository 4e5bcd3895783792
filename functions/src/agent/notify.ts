/**
 * Telling a job's owner about its new state through their Web PubSub group. Pushes are hints
 * (clients re-read the job from the api after a reconnect), so a failed publish is logged and
 * never fails the job or makes Service Bus retry it.
 */
import { eventFor, type Job } from "../shared/job.js";
import type { JobEvents } from "../shared/job-events.js";
import { SpanKind, withSpan } from "../shared/telemetry.js";

export interface NotifyLog {
  warn(message: string): void;
}

export async function notifyOwner(events: JobEvents, job: Job, log: NotifyLog, at: Date = new Date()): Promise<void> {
  const event = eventFor(job, at);
  if (!event) return;
  try {
    await withSpan(
      `publish ${event.type}`,
      { kind: SpanKind.PRODUCER, attributes: { "job.id": job.id, "messaging.system": "webpubsub", "messaging.operation.type": "publish" } },
      () => events.publish(job.userId, event),
    );
  } catch (error) {
    log.warn(`could not publish ${event.type} (the owner sees the state when they re-read the job): ${(error as Error).message}`);
  }
}
