/**
 * The api's request and response shapes: validated at the edge and rendered into the OpenAPI
 * document from these very schemas. Requests are strict: an unknown member is an error, not
 * silently dropped.
 */
import { z } from "zod";
import { AnalysisResult, JobError, JobInput, JobStatus } from "../shared/job";

/**
 * A job request: the stored input's shape, and text the analysis can take. A NUL character makes
 * the analysis refuse the text as binary (InputNotText), so the api refuses it at once (422)
 * rather than accept a job that can only fail.
 */
export const CreateJobRequest = JobInput.superRefine((input, context) => {
  if (input.kind === "text" && input.text.includes("\u0000")) {
    context.addIssue({ code: "custom", path: ["text"], message: "must not contain NUL characters (binary data is not text)" });
  }
});
export type CreateJobRequest = z.infer<typeof CreateJobRequest>;

export const CreateUploadRequest = z
  .strictObject({
    size: z.number().int().positive().meta({ description: "Size in bytes of the file to upload (at most the service's limit)" }),
  })
  .meta({ id: "CreateUploadRequest" });

export const UploadResponse = z
  .strictObject({
    blobName: z.string().meta({ description: "Pass this as blobName to POST /api/jobs after the upload" }),
    uploadUrl: z.string().meta({ description: "Create-only SAS URL for this one blob: one PUT creates it; it cannot be overwritten, read or deleted with it" }),
    method: z.literal("PUT"),
    headers: z.strictObject({ "x-ms-blob-type": z.literal("BlockBlob") }).meta({ description: "Headers the PUT must carry" }),
    expiresAt: z.iso.datetime(),
    maxBytes: z.number().int().positive().meta({ description: "The size declared for this upload: POST /api/jobs refuses (and deletes) a larger blob" }),
  })
  .meta({ id: "UploadResponse" });
export type UploadResponse = z.infer<typeof UploadResponse>;

export const JobInputView = z
  .discriminatedUnion("kind", [
    z.strictObject({ kind: z.literal("text"), characters: z.number().int().nonnegative().meta({ description: "Length of the text in Unicode code points, as the result's characters" }) }),
    z.strictObject({ kind: z.literal("blob"), blobName: z.string() }),
  ])
  .meta({ id: "JobInputView", description: "What the job analyses (the text itself is not echoed)" });

export const JobView = z
  .strictObject({
    id: z.string(),
    status: JobStatus,
    input: JobInputView,
    attempts: z.number().int().nonnegative(),
    createdAt: z.iso.datetime(),
    updatedAt: z.iso.datetime(),
    startedAt: z.iso.datetime().optional(),
    finishedAt: z.iso.datetime().optional(),
    result: AnalysisResult.optional(),
    error: JobError.optional(),
  })
  .meta({ id: "Job" });
export type JobView = z.infer<typeof JobView>;

export const JobList = z
  .strictObject({
    items: z.array(JobView).meta({ description: "Newest first" }),
    continuationToken: z.string().optional().meta({ description: "Pass as continuationToken for the next page; absent on the last page" }),
  })
  .meta({ id: "JobList" });
export type JobList = z.infer<typeof JobList>;

export const MAX_PAGE_SIZE = 100;
export const DEFAULT_PAGE_SIZE = 20;
/** Opaque tokens are base64url; bounded so a hostile token cannot be huge. */
const MAX_CONTINUATION_TOKEN_LENGTH = 8192;

export const ListJobsQuery = z.strictObject({
  pageSize: z
    .string()
    .regex(/^\d{1,3}$/, "must be an integer")
    .transform(Number)
    .pipe(z.number().int().min(1).max(MAX_PAGE_SIZE))
    .optional()
    .meta({ description: `Jobs per page, 1 to ${MAX_PAGE_SIZE}; default ${DEFAULT_PAGE_SIZE}` }),
  continuationToken: z
    .string()
    .min(1)
    .max(MAX_CONTINUATION_TOKEN_LENGTH)
    .regex(/^[A-Za-z0-9_-]+$/, "must be a token returned by a previous page")
    .optional()
    .meta({ description: "From the previous page's continuationToken" }),
});

export const JobIdPath = z.strictObject({ id: z.string().meta({ description: "Job id" }) });

export const NegotiateResponse = z
  .strictObject({
    url: z.string().meta({ description: "WebSocket URL for @azure/web-pubsub-client; joins the caller's group" }),
    group: z.string().meta({ description: "The caller's group: job events arrive here" }),
    expiresAt: z.iso.datetime(),
  })
  .meta({ id: "NegotiateResponse" });

export const HealthResponse = z
  .strictObject({
    status: z.enum(["ok", "degraded"]),
    checks: z.strictObject({
      cosmos: z.enum(["ok", "unreachable"]),
      blob: z.enum(["ok", "unreachable"]),
      serviceBus: z.enum(["ok", "unreachable"]),
      webPubSub: z.enum(["ok", "unreachable"]),
    }),
  })
  .meta({ id: "HealthResponse" });

export const IDEMPOTENCY_KEY_HEADER = "idempotency-key";
