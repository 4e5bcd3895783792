/**
 * The Cosmos DB repository of job documents (container partitioned by /userId, so every read is
 * scoped to its owner and a caller cannot reach another caller's job even by id).
 *
 * Concurrency: every state change is a replace guarded by the document's etag (If-Match); a
 * concurrent writer surfaces as {@link StaleJob}, never as a lost update.
 */
import { createHash } from "node:crypto";
import type { Container, ItemDefinition } from "@azure/cosmos";
import { applyTransition, Job, markRequeued, type Transition } from "./job.js";

/** A job and the etag of the stored version it was read from. */
export interface StoredJob {
  readonly job: Job;
  readonly etag: string;
}

export interface JobPage {
  /** Newest first. */
  readonly jobs: Job[];
  /** Opaque; absent on the last page. */
  readonly continuationToken?: string;
}

export interface ListOptions {
  readonly pageSize: number;
  readonly continuationToken?: string;
}

export interface JobStore {
  /** Stores a new job. Throws {@link JobConflict} when a job with this id already exists. */
  create(job: Job): Promise<StoredJob>;
  /** Throws {@link JobNotFound} when the caller has no job with this id. */
  get(userId: string, id: string): Promise<StoredJob>;
  /** The caller's jobs, newest first, one page at a time (continuation tokens, no OFFSET). */
  list(userId: string, options: ListOptions): Promise<JobPage>;
  /** The caller's job created with this Idempotency-Key, if any. */
  findByIdempotencyKey(userId: string, idempotencyKey: string): Promise<StoredJob | undefined>;
  /**
   * Applies a lifecycle transition to the version that was read. Throws {@link StaleJob} when the
   * document changed since (someone else won), InvalidTransition when the lifecycle forbids it.
   */
  transition(current: StoredJob, transition: Transition, now?: Date): Promise<StoredJob>;
  /**
   * Jobs of every user that are not finished (queued or running) and were last written at or
   * before `since`: at most `maxItems`, in no particular order. The stuck-job sweeper's candidates,
   * from one cross-partition query that the default index serves (status, updatedAt).
   */
  listUnfinishedUntouchedSince(since: Date, maxItems: number): Promise<StoredJob[]>;
  /** Records that the sweeper sent the job a new message (etag-guarded: {@link StaleJob} if it changed). */
  markRequeued(current: StoredJob, now?: Date): Promise<StoredJob>;
  /** Removes a job (the api rolls back a job it could not enqueue). Missing is not an error. */
  delete(userId: string, id: string): Promise<void>;
  /** Cheap reachability probe for health checks. */
  ping(): Promise<void>;
}

export class JobNotFound extends Error {
  constructor(readonly jobId: string) {
    super(`job ${jobId} not found`);
    this.name = "JobNotFound";
  }
}
export class JobConflict extends Error {
  constructor(readonly jobId: string) {
    super(`job ${jobId} already exists`);
    this.name = "JobConflict";
  }
}
export class StaleJob extends Error {
  constructor(readonly jobId: string) {
    super(`job ${jobId} changed since it was read (etag mismatch)`);
    this.name = "StaleJob";
  }
}
/** A continuation token the database rejected (tampered, truncated, or from another query). */
export class InvalidContinuationToken extends Error {
  constructor() {
    super("the continuation token is not valid for this listing");
    this.name = "InvalidContinuationToken";
  }
}

/** The container's shape; the infrastructure and the local platform create it the same way. */
/**
 * The job id for an Idempotency-Key: derived, so that two racing requests with the same key try to
 * create the same document and the database lets only one win (409), no read-then-write window.
 * Formatted as a UUID (version nibble 8, "custom") so it looks like every other job id.
 */
export function idempotentJobId(userId: string, idempotencyKey: string): string {
  const hex = createHash("sha256").update(`${userId}\u0000${idempotencyKey}`).digest("hex");
  const variant = ((parseInt(hex.slice(16, 17), 16) & 0x3) | 0x8).toString(16);
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-8${hex.slice(13, 16)}-${variant}${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
}

function statusCodeOf(error: unknown): number | undefined {
  if (typeof error !== "object" || error === null) return undefined;
  const { code, statusCode } = error as { code?: unknown; statusCode?: unknown };
  if (typeof statusCode === "number") return statusCode;
  if (typeof code === "number") return code;
  return undefined;
}

/** Drops Cosmos system properties (`_rid`, `_etag`, ...) and validates the document. */
function toJob(document: ItemDefinition): Job {
  const fields = Object.fromEntries(Object.entries(document).filter(([key]) => !key.startsWith("_")));
  return Job.parse(fields);
}

/**
 * A job this process just wrote, with the etag of the write: the job is the validated object it
 * sent (the database stores it as sent), so the echoed document is not parsed and checked again.
 */
function written(job: Job, etag: string | undefined): StoredJob {
  if (!etag) throw new Error(`job ${job.id}: the database returned no etag`);
  return { job, etag };
}

function stored(document: ItemDefinition | undefined, id: string): StoredJob {
  if (!document) throw new JobNotFound(id);
  const etag = (document as { _etag?: unknown })._etag;
  if (typeof etag !== "string") throw new Error(`job ${id}: the database returned no etag`);
  return { job: toJob(document), etag };
}

export class CosmosJobStore implements JobStore {
  constructor(private readonly container: Container) {}

  async create(job: Job): Promise<StoredJob> {
    try {
      const valid = Job.parse(job);
      const response = await this.container.items.create<Job>(valid);
      return written(valid, response.etag);
    } catch (error) {
      if (statusCodeOf(error) === 409) throw new JobConflict(job.id);
      throw error;
    }
  }

  async get(userId: string, id: string): Promise<StoredJob> {
    try {
      const response = await this.container.item(id, userId).read<Job>();
      return stored(response.resource, id);
    } catch (error) {
      if (statusCodeOf(error) === 404) throw new JobNotFound(id);
      throw error;
    }
  }

  async list(userId: string, options: ListOptions): Promise<JobPage> {
    const iterator = this.container.items.query<Job>(
      {
        query: "SELECT * FROM c WHERE c.userId = @userId ORDER BY c.createdAt DESC",
        parameters: [{ name: "@userId", value: userId }],
      },
      {
        partitionKey: userId,
        maxItemCount: options.pageSize,
        ...(options.continuationToken ? { continuationToken: options.continuationToken } : {}),
      },
    );
    try {
      const page = await iterator.fetchNext();
      const jobs = page.resources.map((document) => toJob(document));
      return page.continuationToken ? { jobs, continuationToken: page.continuationToken } : { jobs };
    } catch (error) {
      // A token the caller altered is bad input, not a server fault: the service rejects it (400)
      // or the SDK fails to parse it before sending.
      const rejectedToken = statusCodeOf(error) === 400 || error instanceof SyntaxError || error instanceof TypeError;
      if (options.continuationToken && rejectedToken) throw new InvalidContinuationToken();
      throw error;
    }
  }

  async findByIdempotencyKey(userId: string, idempotencyKey: string): Promise<StoredJob | undefined> {
    try {
      const found = await this.get(userId, idempotentJobId(userId, idempotencyKey));
      return found.job.idempotencyKey === idempotencyKey ? found : undefined;
    } catch (error) {
      if (error instanceof JobNotFound) return undefined;
      throw error;
    }
  }

  async listUnfinishedUntouchedSince(since: Date, maxItems: number): Promise<StoredJob[]> {
    const iterator = this.container.items.query<Job>(
      {
        query: "SELECT * FROM c WHERE (c.status = @queued OR c.status = @running) AND c.updatedAt <= @since",
        parameters: [
          { name: "@queued", value: "queued" },
          { name: "@running", value: "running" },
          // Every timestamp is written by toISOString(): UTC, fixed width, so text order is time order.
          { name: "@since", value: since.toISOString() },
        ],
      },
      { maxItemCount: Math.min(maxItems, 100) },
    );
    const found: StoredJob[] = [];
    while (found.length < maxItems && iterator.hasMoreResults()) {
      const page = await iterator.fetchNext();
      for (const document of page.resources) {
        if (found.length < maxItems) found.push(stored(document, String(document.id)));
      }
    }
    return found;
  }

  async markRequeued(current: StoredJob, now?: Date): Promise<StoredJob> {
    return this.replace(current, markRequeued(current.job, now));
  }

  async transition(current: StoredJob, transition: Transition, now?: Date): Promise<StoredJob> {
    return this.replace(current, applyTransition(current.job, transition, now));
  }

  private async replace(current: StoredJob, next: Job): Promise<StoredJob> {
    try {
      const response = await this.container
        .item(next.id, next.userId)
        .replace<Job>(next, { accessCondition: { type: "IfMatch", condition: current.etag } });
      return written(next, response.etag);
    } catch (error) {
      const status = statusCodeOf(error);
      if (status === 412) throw new StaleJob(next.id);
      if (status === 404) throw new JobNotFound(next.id);
      throw error;
    }
  }

  async delete(userId: string, id: string): Promise<void> {
    try {
      await this.container.item(id, userId).delete();
    } catch (error) {
      if (statusCodeOf(error) !== 404) throw error;
    }
  }

  async ping(): Promise<void> {
    await this.container.read();
  }
}

