/**
 * The per-user quota records in Cosmos DB (the `quotas` container, partitioned by /userId, one
 * document per user): where every api instance sees the same counts. Each admission reads the
 * record, decides (quotas.ts) and writes the new record guarded by the etag it read (or creates
 * it); a concurrent admission by another instance makes the write fail (412 or 409), and the
 * admission starts over from the record that won. So a limit holds however many instances run.
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
  constructor(
    private readonly container: Container,
    private readonly jobs: Pick<JobStore, "get">,
    private readonly limits: QuotaLimits,
    private readonly now: () => number = Date.now,
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
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt += 1) {
      const { record, etag } = await this.read(userId);
      const decision = await decide(record, this.now());
      if (!decision.admitted) throw decision.refusal;
      if (await this.write(userId, decision.record, etag)) return;
    }
    throw new QuotaContention(userId);
  }

  private async read(userId: string): Promise<{ record: QuotaRecord; etag: string | undefined }> {
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

  /** Writes the record if nobody else did since it was read; false when someone did. */
  private async write(userId: string, record: QuotaRecord, etag: string | undefined): Promise<boolean> {
    const document = { id: QUOTA_DOCUMENT_ID, userId, ...record };
    try {
      if (etag === undefined) await this.container.items.create(document);
      else await this.container.item(QUOTA_DOCUMENT_ID, userId).replace(document, { accessCondition: { type: "IfMatch", condition: etag } });
      return true;
    } catch (error) {
      const status = statusCodeOf(error);
      if (status === 412 || status === 409) return false;
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
