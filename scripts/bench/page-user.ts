/**
 * A browser's user for the benches that measure what a page costs (`bench:jobs`, `bench:ops`): its
 * Web PubSub connection through GET /api/negotiate, and each job event handled as the page handles
 * it (web/src/app.ts): applied to the job the page knows (web/src/jobs.ts), a job it does not know
 * read with GET /api/jobs/{id}. The page's own modules decide, so the benches count what it does.
 */
import { WebPubSubClient, type OnGroupDataMessageArgs } from "@azure/web-pubsub-client";
import type { Job } from "../../web/src/api-types.js";
import { KnownJobs } from "../../web/src/jobs.js";
import { jobEventOf } from "../../web/src/live-updates.js";

export interface PageUserOptions {
  /** GET /api/negotiate as this user: the Web PubSub client URL. */
  negotiate(): Promise<string>;
  /** GET /api/jobs/{id} as this user: the page's read of a job it does not know. */
  readJob(id: string): Promise<Job>;
  /** Each group message as it arrives, before it is handled (to count it). */
  onMessage?(message: OnGroupDataMessageArgs["message"]): void;
}

/** A job's terminal event: when it arrived (performance.now()) and which it was. */
export interface JobEnd {
  readonly at: number;
  readonly type: "job.succeeded" | "job.failed";
}

export class PageUser {
  readonly client: WebPubSubClient;
  /** The jobs the page knows: the ones this user created, and the ones it read. */
  readonly known = new KnownJobs();
  private readonly ends = new Map<string, JobEnd>();
  private readonly waiters = new Map<string, (end: JobEnd) => void>();
  private readonly reads: Promise<unknown>[] = [];

  constructor(options: PageUserOptions) {
    this.client = new WebPubSubClient({ getClientAccessUrl: () => options.negotiate() });
    this.client.on("group-message", ({ message }) => {
      options.onMessage?.(message);
      const event = jobEventOf(message.data);
      if (!event) return;
      if (!this.known.applyEvent(event)) {
        const read = options.readJob(event.jobId).then((job) => this.known.put(job));
        read.catch(() => {}); // awaited, and its failure reported, by settleReads()
        this.reads.push(read);
      }
      if (event.type === "job.succeeded" || event.type === "job.failed") {
        const end = { at: performance.now(), type: event.type } as const;
        // An event may beat the POST's answer: kept until ended() asks for it.
        this.ends.set(event.jobId, end);
        this.waiters.get(event.jobId)?.(end);
      }
    });
  }

  start(): Promise<void> {
    return this.client.start();
  }

  stop(): void {
    this.client.stop();
  }

  /** A job this user created (the POST's answer): the page knows it from now on. */
  created(job: Job): void {
    this.known.put(job);
  }

  /** The job's terminal event (already arrived or still to come); rejects after `timeoutMs`. */
  ended(jobId: string, timeoutMs: number): Promise<JobEnd> {
    const take = (end: JobEnd) => {
      this.ends.delete(jobId);
      this.waiters.delete(jobId);
      return end;
    };
    const arrived = this.ends.get(jobId);
    if (arrived) return Promise.resolve(take(arrived));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters.delete(jobId);
        reject(new Error(`no terminal event for job ${jobId} within ${timeoutMs / 1000} s`));
      }, timeoutMs);
      this.waiters.set(jobId, (end) => {
        clearTimeout(timer);
        resolve(take(end));
      });
    });
  }

  /** Waits for the reads the page made so far (a failed one throws here). */
  async settleReads(): Promise<void> {
    await Promise.all(this.reads.splice(0));
  }
}
