/**
 * The job domain shared by the api and the agent: zod schemas (the single source of the stored
 * shape, the Service Bus body, the Web PubSub events and the OpenAPI document) and the pure
 * lifecycle rules. No SDK and no @azure/functions here.
 *
 * Lifecycle: queued -> running -> succeeded | failed. `running -> running` is a redelivery after
 * the agent died mid-job; `queued -> failed` is the dead-letter handler giving up on a job that never
 * started. succeeded and failed are terminal.
 *
 * A running job carries a lease: which delivery runs it (its message's Service Bus sequence number)
 * and until when. A duplicate message (another sequence number) leaves a leased job alone, so a
 * message sent twice never runs a job twice; a redelivery of the message that holds the lease (its
 * worker died or failed) takes the job over at once.
 */
import { z } from "zod";

export const jobStatuses = ["queued", "running", "succeeded", "failed"] as const;
export const JobStatus = z.enum(jobStatuses).meta({ id: "JobStatus", description: "Where the job is in its lifecycle" });
export type JobStatus = z.infer<typeof JobStatus>;

/**
 * Longest text a text job may carry, in characters (Unicode code points, as the analysis counts
 * them: an emoji is one); larger inputs go through an upload.
 */
export const MAX_TEXT_INPUT_CHARACTERS = 100_000;

/** Characters as the api and the analysis count them: Unicode code points. */
export function characterCount(text: string): number {
  let count = 0;
  for (let i = 0; i < text.length; i += 1) {
    const code = text.charCodeAt(i);
    // A high surrogate followed by a low one is one character.
    if (code >= 0xd800 && code <= 0xdbff && i + 1 < text.length) {
      const next = text.charCodeAt(i + 1);
      if (next >= 0xdc00 && next <= 0xdfff) i += 1;
    }
    count += 1;
  }
  return count;
}
/** Longest Idempotency-Key accepted (the IETF draft leaves it to the server). */
export const MAX_IDEMPOTENCY_KEY_LENGTH = 200;

export const TextInput = z
  .strictObject({
    kind: z.literal("text"),
    text: z
      .string()
      .min(1)
      // Code units first (cheap, and at most two per character), then characters.
      .max(2 * MAX_TEXT_INPUT_CHARACTERS, { error: `must be at most ${MAX_TEXT_INPUT_CHARACTERS} characters` })
      .refine((text) => characterCount(text) <= MAX_TEXT_INPUT_CHARACTERS, { error: `must be at most ${MAX_TEXT_INPUT_CHARACTERS} characters` })
      .meta({ description: `The text to analyse: 1 to ${MAX_TEXT_INPUT_CHARACTERS} characters (Unicode code points)` }),
  })
  .meta({ id: "TextInput" });
export const BlobInput = z
  .strictObject({
    kind: z.literal("blob"),
    blobName: z
      .string()
      .min(1)
      .max(1024)
      .meta({ description: "Name of a blob the caller uploaded with a URL from POST /api/uploads" }),
  })
  .meta({ id: "BlobInput" });
export const JobInput = z.discriminatedUnion("kind", [TextInput, BlobInput]).meta({ id: "JobInput" });
export type JobInput = z.infer<typeof JobInput>;

export const TopWord = z.strictObject({ word: z.string(), count: z.number().int().positive() }).meta({ id: "TopWord" });
export type TopWord = z.infer<typeof TopWord>;

export const AnalysisResult = z
  .strictObject({
    characters: z.number().int().nonnegative(),
    words: z.number().int().nonnegative(),
    lines: z.number().int().nonnegative(),
    topWords: z.array(TopWord).max(10).meta({ description: "The 10 most frequent words, most frequent first" }),
    readingTimeSeconds: z.number().nonnegative(),
  })
  .meta({ id: "AnalysisResult" });
export type AnalysisResult = z.infer<typeof AnalysisResult>;

export const JobError = z
  .strictObject({
    code: z.string().min(1).meta({ description: "Machine-readable reason, e.g. MaxDeliveryCountExceeded, BlobNotFound" }),
    message: z.string().meta({ description: "Human-readable reason" }),
  })
  .meta({ id: "JobError" });
export type JobError = z.infer<typeof JobError>;

const timestamp = z.iso.datetime({ offset: true });

/** The version of an uploaded blob the api accepted for a blob job: the agent reads exactly this one. */
export const PinnedUpload = z
  .strictObject({
    etag: z.string().min(1).meta({ description: "The blob's ETag when the job was accepted; the agent downloads with If-Match on it" }),
    bytes: z.number().int().nonnegative(),
  })
  .meta({ id: "PinnedUpload" });
export type PinnedUpload = z.infer<typeof PinnedUpload>;

/**
 * How long a delivery holds a job it started against duplicate messages. Equal to host.json's
 * `maxAutoLockRenewalDuration` (5 minutes, a test checks): past it the Functions host stops renewing
 * the message lock and Service Bus hands the message to another worker anyway.
 */
export const JOB_LEASE_MS = 5 * 60_000;

export const JobLease = z
  .strictObject({
    holder: z.string().min(1).meta({ description: "The delivery running the job: its message's Service Bus sequence number" }),
    until: timestamp,
  })
  .meta({ id: "JobLease" });
export type JobLease = z.infer<typeof JobLease>;

/**
 * The job document as stored in Cosmos (container partitioned by /userId). Cosmos system fields
 * (`_etag`, `_ts`, ...) are not part of it: the store strips them and carries the etag beside.
 */
export const Job = z
  .strictObject({
    id: z.string().min(1),
    userId: z.string().min(1),
    status: JobStatus,
    input: JobInput,
    attempts: z.number().int().nonnegative().meta({ description: "How many times the agent started the job" }),
    createdAt: timestamp,
    updatedAt: timestamp,
    startedAt: timestamp.optional(),
    finishedAt: timestamp.optional(),
    result: AnalysisResult.optional(),
    error: JobError.optional(),
    idempotencyKey: z.string().max(MAX_IDEMPOTENCY_KEY_LENGTH).optional(),
    /** Blob jobs accepted since uploads are pinned; older ones have none and are read unpinned. */
    upload: PinnedUpload.optional(),
    /** Present while running: see {@link JOB_LEASE_MS}. */
    lease: JobLease.optional(),
    /**
     * The delivery that finished the job (its lease holder then). When that same message comes back
     * (its worker died, or lost the database's answer, before completing it), the agent publishes
     * the outcome again: the first publish may never have happened.
     */
    finishedBy: z.string().optional(),
    /** How many times the stuck-job sweeper sent the job a new message, and when it last did. */
    requeues: z.number().int().positive().optional(),
    requeuedAt: timestamp.optional(),
  })
  .meta({ id: "JobDocument" });
export type Job = z.infer<typeof Job>;

/** The Service Bus message body that carries a job to the agent (messageId = jobId). */
export const JobMessage = z.strictObject({ jobId: z.string().min(1), userId: z.string().min(1) }).meta({ id: "JobMessage" });
export type JobMessage = z.infer<typeof JobMessage>;

/**
 * Every event: the job, when it was published (at), and the stored job's updatedAt and start and
 * finish stamps, so a client applies it like a read of the job (an older updatedAt never replaces a
 * newer one: a late or repeated push changes nothing).
 */
const eventBase = { jobId: z.string().min(1), at: timestamp, updatedAt: timestamp, startedAt: timestamp.optional(), finishedAt: timestamp.optional() };
/**
 * What the owner's Web PubSub group receives: a job's new state, every field of its view that a
 * transition changes. The web app applies it to the job it knows without reading it again, and
 * reads a job it does not know (created elsewhere) and everything after a (re)connect.
 */
export const JobEvent = z
  .discriminatedUnion("type", [
    z.strictObject({ type: z.literal("job.running"), status: z.literal("running"), attempts: z.number().int().positive(), ...eventBase }),
    z.strictObject({ type: z.literal("job.succeeded"), status: z.literal("succeeded"), attempts: z.number().int().nonnegative(), result: AnalysisResult, ...eventBase }),
    z.strictObject({ type: z.literal("job.failed"), status: z.literal("failed"), attempts: z.number().int().nonnegative(), error: JobError, ...eventBase }),
  ])
  .meta({ id: "JobEvent" });
export type JobEvent = z.infer<typeof JobEvent>;
export type JobEventType = JobEvent["type"];

// ---------------------------------------------------------------------------------------------
// Lifecycle rules (pure).

const allowedTransitions: Record<JobStatus, readonly JobStatus[]> = {
  queued: ["running", "failed"],
  running: ["running", "succeeded", "failed"],
  succeeded: [],
  failed: [],
};

export function isTerminal(status: JobStatus): boolean {
  return allowedTransitions[status].length === 0;
}

export function canTransition(from: JobStatus, to: JobStatus): boolean {
  return allowedTransitions[from].includes(to);
}

/** A transition the lifecycle does not allow (e.g. anything out of a terminal state). */
export class InvalidTransition extends Error {
  constructor(
    readonly jobId: string,
    readonly from: JobStatus,
    readonly to: JobStatus,
  ) {
    super(`job ${jobId} cannot move from ${from} to ${to}`);
    this.name = "InvalidTransition";
  }
}

export type Transition =
  /** `holder`: the delivery that starts (or takes over) the job; it holds the lease. */
  | { to: "running"; holder: string }
  | { to: "succeeded"; result: AnalysisResult }
  | { to: "failed"; error: JobError };

const finisher = (job: Job) => (job.lease ? { finishedBy: job.lease.holder } : {});

/**
 * The job after a transition: `running` counts an attempt and stamps startedAt; the terminal states
 * stamp finishedAt and carry the result or the reason. Throws {@link InvalidTransition}.
 */
export function applyTransition(job: Job, transition: Transition, now: Date = new Date()): Job {
  if (!canTransition(job.status, transition.to)) throw new InvalidTransition(job.id, job.status, transition.to);
  const at = now.toISOString();
  const { result: _result, error: _error, lease: _lease, ...rest } = job;
  switch (transition.to) {
    case "running":
      return {
        ...rest,
        status: "running",
        attempts: job.attempts + 1,
        startedAt: at,
        updatedAt: at,
        lease: { holder: transition.holder, until: new Date(now.getTime() + JOB_LEASE_MS).toISOString() },
      };
    case "succeeded":
      return { ...rest, status: "succeeded", result: transition.result, finishedAt: at, updatedAt: at, ...finisher(job) };
    case "failed":
      return { ...rest, status: "failed", error: transition.error, finishedAt: at, updatedAt: at, ...finisher(job) };
  }
}

/**
 * Whether another delivery holds the job: it is running under a lease that has not expired and that
 * names another message. A delivery that finds this leaves the job to the holder (whose own message
 * comes back if its worker dies).
 */
export function isHeldByAnother(job: Job, holder: string, now: Date): boolean {
  return job.status === "running" && job.lease !== undefined && job.lease.holder !== holder && Date.parse(job.lease.until) > now.getTime();
}

/** The job after the stuck-job sweeper sent it a new message. */
export function markRequeued(job: Job, now: Date = new Date()): Job {
  const at = now.toISOString();
  return { ...job, requeues: (job.requeues ?? 0) + 1, requeuedAt: at, updatedAt: at };
}

/** A new queued job; a blob job carries the upload version the api accepted. */
export function newJob(args: { id: string; userId: string; input: JobInput; idempotencyKey?: string; upload?: PinnedUpload; now?: Date }): Job {
  const at = (args.now ?? new Date()).toISOString();
  const job: Job = { id: args.id, userId: args.userId, status: "queued", input: args.input, attempts: 0, createdAt: at, updatedAt: at };
  if (args.idempotencyKey !== undefined) job.idempotencyKey = args.idempotencyKey;
  if (args.upload !== undefined) job.upload = args.upload;
  return job;
}

/** The event that announces a job's current state, or undefined for a queued job (nothing to say). */
export function eventFor(job: Job, now: Date = new Date()): JobEvent | undefined {
  const base = {
    jobId: job.id,
    at: now.toISOString(),
    updatedAt: job.updatedAt,
    ...(job.startedAt ? { startedAt: job.startedAt } : {}),
    ...(job.finishedAt ? { finishedAt: job.finishedAt } : {}),
  };
  switch (job.status) {
    case "queued":
      return undefined;
    case "running":
      return { type: "job.running", status: "running", attempts: Math.max(1, job.attempts), ...base };
    case "succeeded":
      if (!job.result) throw new Error(`job ${job.id} succeeded without a result`);
      return { type: "job.succeeded", status: "succeeded", attempts: job.attempts, result: job.result, ...base };
    case "failed":
      return { type: "job.failed", status: "failed", attempts: job.attempts, error: job.error ?? { code: "Unknown", message: "the job failed" }, ...base };
  }
}
