/**
 * The api's request and response types, taken from the api's own zod schemas (the ones its
 * handlers validate with and its OpenAPI document is generated from). Type-only imports: nothing
 * of zod or the api reaches the bundle, and a schema change the app does not follow fails the
 * type check (`npm run typecheck`).
 */
import type { z } from "zod";
import type * as api from "../../functions/src/api/schemas.js";
import type { ProblemDetails as ApiProblemDetails } from "../../functions/src/api/problem.js";
import type { JobEvent as ApiJobEvent } from "../../functions/src/shared/job.js";

/** Requests: what the api accepts (z.input: before its parsing, e.g. query values are strings). */
export type CreateUploadRequest = z.input<typeof api.CreateUploadRequest>;
export type CreateJobRequest = z.input<typeof api.CreateJobRequest>;
export type ListJobsQuery = z.input<typeof api.ListJobsQuery>;

/** Responses: what the api sends. */
export type UploadResponse = z.output<typeof api.UploadResponse>;
export type Job = z.output<typeof api.JobView>;
export type JobList = z.output<typeof api.JobList>;
export type NegotiateResponse = z.output<typeof api.NegotiateResponse>;
export type ProblemDetails = ApiProblemDetails;
export type JobStatus = Job["status"];
export type AnalysisResult = NonNullable<Job["result"]>;
export type TopWord = AnalysisResult["topWords"][number];

/** What arrives over Web PubSub: a job's new state (applied by jobs.ts to the job the page knows). */
export type JobEvent = ApiJobEvent;
