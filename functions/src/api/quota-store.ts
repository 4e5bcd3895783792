/**
 * The per-user quota records in Cosmos DB (the `quotas` container, partitioned by /userId, one
 * document per user): where every api instance sees the same counts. Each admission reads the
 * record, decides (quotas.ts) and writes the new record guarded by the etag it read (or creates
 * it); a concurrent admission by another instance makes the write fail (412 or 409), and the
 * admission starts over from the record that won. So a limit holds however many instances run.
 *
 * Each instance remembers the last record (and etag) it read or wrote per user, so a user's next
 * admission on the same instance writes straight away instead of reading first: one Cosmos round
 * trip per admission instead of two. The etag guard makes this safe: if another instance wrote
 * since, the write fails and the admission reads the record that won. A refusal is never decided
 * on a remembered record alone: it is checked against a fresh read first.
 */
import type { Container, ItemDefinition } from "@azure/cosmos";
import { isTerminal } from "../shared/job.js";
import { JobNotFound, type JobStore } from "../shared/job-store.js";
import {
  CREATION_GRACE_MS,
  decideJob,
  decideUploadUrl,
  emptyQuotaRecord,
  type QuotaDecision,
  type QuotaLimits,
  type QuotaRecord,
  type Quotas,
} from "./quotas.js";

/** The one quota document of a user. */
const QUOTA_DOCUMENT_ID = "quota";
/** Admissions racing for one user's record retry this often before giving up (503, retry later). */
const MAX_ATTEMPTS = 8;
/** Users whose last record an instance remembers; the least recently admitted are forgotten first. */
export const REMEMBERED_USERS = 1_000;

interface VersionedRecord {
  readonly record: QuotaRecord;
  readonly etag: string | undefined;
}

/** Too many concurrent admissions for one user: the request may be retried. */
export class QuotaContention extends Error {
  readonly statusCode = 503;
  constructor(userId: string) {
    super(`the quota record of ${userId} kept changing during admission`);
    this.name = "QuotaContention";
  }
}

function statusCodeOf(error: unknown): number | undefined {
  const { code, statusCode } = (error ?? {}) as { code?: unknown; statusCode?: unknown };
  return typeof statusCode === "number" ? statusCode : typeof code === "number" ? code : undefined;
}

const entries = (value: unknown): Record<string, number> =>
  typeof value === "object" && value !== null
    ? Object.fromEntries(Object.entries(value).filter((entry): entry is [string, number] => typeof entry[1] === "number"))
    : {};

export class CosmosQuotas implements Quotas {
  /** The last record this instance read or wrote per user, in least recently used order. */
  private readonly remembered = new Map<string, VersionedRecord>();

  constructor(
    private readonly container: Container,
    private readonly jobs: Pick<JobStore, "get">,
    private readonly limits: QuotaLimits,
    private readonly now: () => number = Date.now,
    /** Users whose last record this instance remembers. @default REMEMBERED_USERS */
    private readonly rememberedUsers: number = REMEMBERED_USERS,
  ) {}

  admitUploadUrl(userId: string, blobName: string): Promise<void> {
    return this.admit(userId, async (record, now) => decideUploadUrl(record, this.limits, blobName, now));
  }

  admitJob(userId: string, jobId: string): Promise<void> {
    return this.admit(userId, async (record, now) => {
      // Only at the limit is it worth reading the jobs in flight to release the finished ones.
      const full = Object.keys(record.inFlight).length >= this.limits.jobsInFlight;
      const finished = full ? await this.finishedAmong(userId, record.inFlight, now) : new Set<string>();
      return decideJob(record, this.limits, jobId, now, finished);
    });
  }

  private async admit(userId: string, decide: (record: QuotaRecord, now: number) => Promise<QuotaDecision>): Promise<void> {
    let remembered = this.remembered.get(userId);
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt += 1) {
      let current = remembered ?? (await this.read(userId));
      let decision = await decide(current.record, this.now());
      if (!decision.admitted && remembered) {
        // The remembered record may be older than the stored one: refuse only on what is stored.
        current = await this.read(userId);
        decision = await decide(current.record, this.now());
      }
      remembered = undefined;
      if (!decision.admitted) throw decision.refusal;
      const written = await this.write(userId, decision.record, current.etag);
      if (written) {
        this.remember(userId, written);
        return;
      }
      // Another instance wrote first: what this one remembers is stale.
      this.remembered.delete(userId);
    }
    throw new QuotaContention(userId);
  }

  private remember(userId: string, versioned: VersionedRecord): void {
    this.remembered.delete(userId);
    // Without an etag the next write could not be guarded: the next admission reads first.
    if (versioned.etag === undefined) return;
    this.remembered.set(userId, versioned);
    const oldest = this.remembered.keys().next();
    if (this.remembered.size > this.rememberedUsers && !oldest.done) this.remembered.delete(oldest.value);
  }

  private async read(userId: string): Promise<VersionedRecord> {
    try {
      const { resource } = await this.container.item(QUOTA_DOCUMENT_ID, userId).read<ItemDefinition>();
      if (!resource) return { record: emptyQuotaRecord, etag: undefined };
      const etag = typeof resource._etag === "string" ? resource._etag : undefined;
      return { record: { uploadUrls: entries(resource.uploadUrls), jobs: entries(resource.jobs), inFlight: entries(resource.inFlight) }, etag };
    } catch (error) {
      if (statusCodeOf(error) === 404) return { record: emptyQuotaRecord, etag: undefined };
      throw error;
    }
  }

  /** Writes the record if nobody else did since it was read: the record and its new etag, or undefined when someone did. */
  private async write(userId: string, record: QuotaRecord, etag: string | undefined): Promise<VersionedRecord | undefined> {
    const document = { id: QUOTA_DOCUMENT_ID, userId, ...record };
    try {
      const response =
        etag === undefined
          ? await this.container.items.create(document)
          : await this.container.item(QUOTA_DOCUMENT_ID, userId).replace(document, { accessCondition: { type: "IfMatch", condition: etag } });
      return { record, etag: response.etag || undefined };
    } catch (error) {
      const status = statusCodeOf(error);
      if (status === 412 || status === 409) return undefined;
      throw error;
    }
  }

  /** The in-flight jobs that finished, or were never created (admitted more than a grace period ago). */
  private async finishedAmong(userId: string, inFlight: Readonly<Record<string, number>>, now: number): Promise<Set<string>> {
    const finished = new Set<string>();
    await Promise.all(
      Object.entries(inFlight).map(async ([jobId, admittedAt]) => {
        try {
          if (isTerminal((await this.jobs.get(userId, jobId)).job.status)) finished.add(jobId);
        } catch (error) {
          if (!(error instanceof JobNotFound)) throw error;
          if (admittedAt < now - CREATION_GRACE_MS) finished.add(jobId);
        }
      }),
    );
    return finished;
  }
}
