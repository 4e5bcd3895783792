/**
 * In-memory stand-ins for the agent's adapters, with the same contracts as the real ones (etags,
 * typed errors), for the domain tests that need precise control of timing and failures. The
 * emulator-backed tests (agent-emulators.test.ts) run the real adapters.
 */
import { applyTransition, isTerminal, markRequeued, type Job, type JobEvent, type Transition } from "../../functions/src/shared/job.js";
import type { JobEvents } from "../../functions/src/shared/job-events.js";
import { JobConflict, JobNotFound, StaleJob, type JobPage, type JobStore, type StoredJob } from "../../functions/src/shared/job-store.js";
import { BlobNotFound, type OpenedBlob, type UploadsReader } from "../../functions/src/agent/uploads.js";

export class InMemoryJobStore implements JobStore {
  private readonly documents = new Map<string, { job: Job; etag: string }>();
  private version = 0;
  /** Every successful write, in order. */
  readonly writes: { id: string; status: Job["status"] }[] = [];
  /** Called before each transition is applied: tests inject delays or concurrent writers here. */
  beforeTransition: (current: StoredJob, transition: Transition) => Promise<void> | void = () => {};

  private key(userId: string, id: string) {
    return `${userId}\u0000${id}`;
  }
  private store(job: Job): StoredJob {
    this.version += 1;
    const entry = { job: structuredClone(job), etag: `"${this.version}"` };
    this.documents.set(this.key(job.userId, job.id), entry);
    this.writes.push({ id: job.id, status: job.status });
    return { job: structuredClone(entry.job), etag: entry.etag };
  }

  async create(job: Job): Promise<StoredJob> {
    if (this.documents.has(this.key(job.userId, job.id))) throw new JobConflict(job.id);
    return this.store(job);
  }
  async get(userId: string, id: string): Promise<StoredJob> {
    await Promise.resolve();
    const entry = this.documents.get(this.key(userId, id));
    if (!entry) throw new JobNotFound(id);
    return { job: structuredClone(entry.job), etag: entry.etag };
  }
  async list(): Promise<JobPage> {
    throw new Error("not used by the agent");
  }
  async findByIdempotencyKey(): Promise<StoredJob | undefined> {
    throw new Error("not used by the agent");
  }
  async transition(current: StoredJob, transition: Transition, now?: Date): Promise<StoredJob> {
    await this.beforeTransition(current, transition);
    return this.replace(current, applyTransition(current.job, transition, now));
  }
  async listUnfinishedUntouchedSince(since: Date, maxItems: number): Promise<StoredJob[]> {
    await Promise.resolve();
    return [...this.documents.values()]
      .filter((entry) => !isTerminal(entry.job.status) && Date.parse(entry.job.updatedAt) <= since.getTime())
      .slice(0, maxItems)
      .map((entry) => ({ job: structuredClone(entry.job), etag: entry.etag }));
  }
  async markRequeued(current: StoredJob, now?: Date): Promise<StoredJob> {
    return this.replace(current, markRequeued(current.job, now));
  }
  private replace(current: StoredJob, next: Job): StoredJob {
    const entry = this.documents.get(this.key(next.userId, next.id));
    if (!entry) throw new JobNotFound(next.id);
    if (entry.etag !== current.etag) throw new StaleJob(next.id);
    return this.store(next);
  }
  async delete(userId: string, id: string): Promise<void> {
    this.documents.delete(this.key(userId, id));
  }
  async ping(): Promise<void> {}
}

export class RecordingJobEvents implements JobEvents {
  readonly published: { userId: string; event: JobEvent }[] = [];
  failWith: Error | undefined;
  async publish(userId: string, event: JobEvent): Promise<void> {
    if (this.failWith) throw this.failWith;
    this.published.push({ userId, event });
  }
  async ping(): Promise<void> {}
}

export class InMemoryUploads implements UploadsReader {
  readonly blobs = new Map<string, { bytes: Uint8Array; announcedLength?: number }>();
  /** Thrown by open() when set: a storage outage. */
  failWith: Error | undefined;
  /** Awaited before open() answers: lets a test hold a delivery mid-analysis. */
  gate: () => Promise<void> = async () => {};
  opened = 0;
  bytesServed = 0;

  put(name: string, content: string | Uint8Array, announcedLength?: number) {
    const bytes = typeof content === "string" ? new TextEncoder().encode(content) : content;
    this.blobs.set(name, announcedLength === undefined ? { bytes } : { bytes, announcedLength });
  }

  async open(name: string): Promise<OpenedBlob> {
    await this.gate();
    if (this.failWith) throw this.failWith;
    const blob = this.blobs.get(name);
    if (!blob) throw new BlobNotFound(name);
    this.opened += 1;
    let cancelled = false;
    const self = this;
    return {
      contentLength: blob.announcedLength ?? blob.bytes.byteLength,
      cancel: () => {
        cancelled = true;
      },
      content: (async function* () {
        for (let offset = 0; offset < blob.bytes.byteLength && !cancelled; offset += 1024) {
          const chunk = blob.bytes.subarray(offset, offset + 1024);
          self.bytesServed += chunk.byteLength;
          yield chunk;
        }
      })(),
    };
  }
}

/** A log that keeps its lines. */
export function memoryLog() {
  const lines: string[] = [];
  return {
    lines,
    info: (message: string) => void lines.push(`info ${message}`),
    warn: (message: string) => void lines.push(`warn ${message}`),
    error: (message: string) => void lines.push(`error ${message}`),
  };
}
