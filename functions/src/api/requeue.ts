/**
 * The stuck-job sweeper: every accepted job must reach succeeded or failed, whatever process dies
 * when. Service Bus keeps a message until it is settled, and the agent settles it only once the job
 * is finished (or dead-lettered, and then failed), so a job can be left without a message only
 * before its first send lands: the api instance died between creating the job and sending it, or a
 * broker without durable storage (the local emulator without a data directory) lost the message.
 *
 * A timer (index.ts, `requeueStuckJobs`) finds the jobs left too long queued, or running past
 * their lease, and sends each a new message. It only sends: the api's identity has no receive right
 * on the queue. A job that did still have a message gets a second one, which the agent drops (the
 * job lease, agent/process-job.ts), so a re-send is always harmless; the wait before the next one
 * doubles per re-send, so a long backlog is not flooded with copies.
 */
import type { InvocationContext, Timer } from "@azure/functions";
import { isTerminal, type Job } from "../shared/job.js";
import type { JobQueue } from "../shared/job-queue.js";
import { StaleJob, type JobStore, type StoredJob } from "../shared/job-store.js";
import type { Log } from "./jobs.js";

/** The wait doubles per re-send up to this many times (×16). */
const MAX_BACKOFF_DOUBLINGS = 4;
/** Jobs one sweep looks at; more wait for the next run (a sweep must end well within its timer period). */
export const MAX_JOBS_PER_SWEEP = 500;

/**
 * When the sweeper should send the job a new message if nothing happens to it before, in ms since
 * the epoch; undefined for a finished job. A queued job: `requeueAfterMs` after it was created (or
 * last re-sent). A running job: that long after its lease ends (the delivery that holds it renews
 * nothing; its own message comes back within a lock duration if its worker dies, so reaching this
 * means the message is gone). Each re-send doubles the wait, up to 16 times `requeueAfterMs`.
 */
export function requeueDueAt(job: Job, requeueAfterMs: number): number | undefined {
  if (isTerminal(job.status)) return undefined;
  const lastResend = job.requeuedAt === undefined ? Number.NEGATIVE_INFINITY : Date.parse(job.requeuedAt);
  const since = job.status === "running" && job.lease ? Math.max(Date.parse(job.lease.until), lastResend) : Math.max(Date.parse(job.createdAt), lastResend);
  return since + requeueAfterMs * 2 ** Math.min(job.requeues ?? 0, MAX_BACKOFF_DOUBLINGS);
}

/** The message id of the n-th re-send: its own, so duplicate detection cannot drop it as a copy of a lost first send. */
export function requeueMessageId(jobId: string, requeues: number): string {
  return `${jobId}.requeue-${requeues}`;
}

export interface SweepDependencies {
  readonly jobs: JobStore;
  readonly queue: JobQueue;
  readonly requeueAfterMs: number;
  readonly now?: () => Date;
  /** @default MAX_JOBS_PER_SWEEP */
  readonly maxJobs?: number;
}

export interface SweepReport {
  /** Unfinished jobs not written for at least requeueAfterMs. */
  readonly examined: number;
  /** Sent a new message. */
  readonly requeued: string[];
  /** Due, but changed by someone else (an agent, another sweep) between the read and the write. */
  readonly changedMeanwhile: number;
}

/**
 * One sweep. For each due job: record the re-send on the job (etag-guarded, so of two concurrent
 * sweeps only one sends), then send. A send that fails is logged and the sweep ends with an error
 * once every job was tried; the job is due again after the longer wait.
 */
export async function requeueStuckJobs(deps: SweepDependencies, log: Log): Promise<SweepReport> {
  const now = (deps.now ?? (() => new Date()))();
  const candidates = await deps.jobs.listUnfinishedUntouchedSince(new Date(now.getTime() - deps.requeueAfterMs), deps.maxJobs ?? MAX_JOBS_PER_SWEEP);
  const requeued: string[] = [];
  let changedMeanwhile = 0;
  const failures: unknown[] = [];
  for (const candidate of candidates) {
    const due = requeueDueAt(candidate.job, deps.requeueAfterMs);
    if (due === undefined || due > now.getTime()) continue;
    let marked: StoredJob;
    try {
      marked = await deps.jobs.markRequeued(candidate, now);
    } catch (error) {
      if (error instanceof StaleJob) {
        changedMeanwhile += 1;
        continue;
      }
      throw error;
    }
    const { id, userId, status, requeues = 0 } = marked.job;
    try {
      await deps.queue.send({ jobId: id, userId }, { messageId: requeueMessageId(id, requeues) });
      requeued.push(id);
      log.warn(`job ${id}: ${status} with no progress since ${candidate.job.updatedAt}; sent it a new message (re-send ${requeues})`);
    } catch (error) {
      failures.push(error);
      log.error(`job ${id}: could not re-send it (re-send ${requeues}); it is due again later`, error);
    }
  }
  if (failures.length > 0) throw new AggregateError(failures, `${failures.length} of ${requeued.length + failures.length} re-sends failed`);
  return { examined: candidates.length, requeued, changedMeanwhile };
}

/** The sweeper's dependencies as the api's clients provide them. */
export type SweepDependencyProvider = () => Promise<SweepDependencies>;

/** The timer function's handler: one sweep per tick, a line in the log when it did anything. */
export function createRequeueHandler(dependencies: SweepDependencyProvider) {
  return async (timer: Timer, context: InvocationContext): Promise<void> => {
    if (timer.isPastDue) context.warn("the sweep is running late (the app was idle or busy at its scheduled time)");
    const log: Log = {
      info: (message) => context.log(message),
      warn: (message) => context.warn(message),
      error: (message, error) => (error === undefined ? context.error(message) : context.error(message, error)),
    };
    const report = await requeueStuckJobs(await dependencies(), log);
    if (report.requeued.length > 0 || report.changedMeanwhile > 0) {
      context.log(`sweep: ${report.examined} unfinished jobs examined, ${report.requeued.length} re-sent, ${report.changedMeanwhile} changed meanwhile`);
    }
  };
}
