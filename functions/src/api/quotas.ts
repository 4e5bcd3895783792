/**
 * Per-user quotas: how many upload URLs a user may obtain and how many jobs submit per hour, and
 * how many of the user's jobs may be queued or running at once. Over a limit the api answers 429
 * with Retry-After (handlers.ts), before it writes anything.
 *
 * The rules here are pure (a quota record in, a decision out); quota-store.ts keeps one record per
 * user in Cosmos DB and applies a decision with an etag-guarded write, so every api instance sees
 * the same counts and two instances admitting at once cannot both take the last slot.
 *
 * Windows are sliding: "60 an hour" means at most 60 in any 60 minutes, and Retry-After says when
 * the oldest one leaves the window. Jobs in flight are released without the agent's help: when a
 * user is at the limit, the store reads the recorded jobs and drops those that finished (or never
 * got created: a submission that failed after admission).
 *
 * The gateway's rate limits (a separate concern, per client and route) are an outer layer: they
 * shed floods before they reach the api, but they neither know users nor jobs in flight, so they
 * do not replace these.
 */

/** The limits, per user (settings QUOTA_*; stack config quota*). */
export interface QuotaLimits {
  readonly uploadUrlsPerHour: number;
  readonly jobsPerHour: number;
  readonly jobsInFlight: number;
}

/** One user's quota record: what was admitted recently, by key, with when (ms since the epoch). */
export interface QuotaRecord {
  /** Upload URLs issued in the last hour, by blob name. */
  readonly uploadUrls: Readonly<Record<string, number>>;
  /** Jobs admitted in the last hour, by job id. */
  readonly jobs: Readonly<Record<string, number>>;
  /** Jobs admitted and not yet seen finished, by job id. */
  readonly inFlight: Readonly<Record<string, number>>;
}

export const emptyQuotaRecord: QuotaRecord = { uploadUrls: {}, jobs: {}, inFlight: {} };

export const WINDOW_MS = 60 * 60 * 1000;
/** A job admitted this recently and not found yet may still be being created: it keeps its slot. */
export const CREATION_GRACE_MS = 60 * 1000;
/** What Retry-After says when the user's jobs in flight are at the limit (their end cannot be known). */
export const IN_FLIGHT_RETRY_AFTER_SECONDS = 10;

/** Over a limit: the detail for the caller and when to try again. */
export class QuotaExceeded extends Error {
  constructor(
    readonly detail: string,
    readonly retryAfterSeconds: number,
  ) {
    super(detail);
    this.name = "QuotaExceeded";
  }
}

export type QuotaDecision = { admitted: true; record: QuotaRecord } | { admitted: false; refusal: QuotaExceeded };

function recent(entries: Readonly<Record<string, number>>, now: number): Record<string, number> {
  return Object.fromEntries(Object.entries(entries).filter(([, at]) => at > now - WINDOW_MS));
}

function whenOldestLeaves(entries: Readonly<Record<string, number>>, now: number): number {
  const oldest = Math.min(...Object.values(entries));
  return Math.max(1, Math.ceil((oldest + WINDOW_MS - now) / 1000));
}

const inMinutes = (seconds: number) => (seconds < 90 ? `${seconds} seconds` : `${Math.ceil(seconds / 60)} minutes`);

/** May the user get one more upload URL (for `blobName`)? */
export function decideUploadUrl(record: QuotaRecord, limits: QuotaLimits, blobName: string, now: number): QuotaDecision {
  const uploadUrls = recent(record.uploadUrls, now);
  if (Object.keys(uploadUrls).length >= limits.uploadUrlsPerHour) {
    const seconds = whenOldestLeaves(uploadUrls, now);
    return {
      admitted: false,
      refusal: new QuotaExceeded(`You have asked for ${limits.uploadUrlsPerHour} upload URLs in the last hour, the most allowed; try again in ${inMinutes(seconds)}.`, seconds),
    };
  }
  return { admitted: true, record: { ...record, uploadUrls: { ...uploadUrls, [blobName]: now } } };
}

/**
 * May the user submit job `jobId`? `finished` names jobs of the record's in-flight set known to be
 * finished (or never created); they leave it. Admitting a job already admitted (a concurrent
 * request with the same Idempotency-Key) changes nothing.
 */
export function decideJob(record: QuotaRecord, limits: QuotaLimits, jobId: string, now: number, finished: ReadonlySet<string> = new Set()): QuotaDecision {
  const jobs = recent(record.jobs, now);
  const inFlight = Object.fromEntries(Object.entries(record.inFlight).filter(([id]) => !finished.has(id)));
  if (jobId in jobs || jobId in inFlight) return { admitted: true, record: { ...record, jobs, inFlight } };
  if (Object.keys(jobs).length >= limits.jobsPerHour) {
    const seconds = whenOldestLeaves(jobs, now);
    return {
      admitted: false,
      refusal: new QuotaExceeded(`You have submitted ${limits.jobsPerHour} jobs in the last hour, the most allowed; try again in ${inMinutes(seconds)}.`, seconds),
    };
  }
  if (Object.keys(inFlight).length >= limits.jobsInFlight) {
    return {
      admitted: false,
      refusal: new QuotaExceeded(
        `You have ${limits.jobsInFlight} jobs queued or running, the most allowed at once; submit this one when one of them has finished.`,
        IN_FLIGHT_RETRY_AFTER_SECONDS,
      ),
    };
  }
  return { admitted: true, record: { uploadUrls: record.uploadUrls, jobs: { ...jobs, [jobId]: now }, inFlight: { ...inFlight, [jobId]: now } } };
}

/** The quota checks the api makes; both throw {@link QuotaExceeded} over a limit. */
export interface Quotas {
  admitUploadUrl(userId: string, blobName: string): Promise<void>;
  admitJob(userId: string, jobId: string): Promise<void>;
}
