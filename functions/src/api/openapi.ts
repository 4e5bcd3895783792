/**
 * The OpenAPI 3.1 document, generated from the same zod schemas the handlers validate with, so
 * the document cannot drift from the behaviour. Built on first request and cached.
 */
import { OpenAPIRegistry, OpenApiGeneratorV31 } from "@asteasolutions/zod-to-openapi";
import { z } from "zod";
import { PROBLEM_CONTENT_TYPE, ProblemDetails } from "./problem";
import {
  CreateJobRequest,
  CreateUploadRequest,
  HealthResponse,
  JobIdPath,
  JobList,
  JobView,
  NegotiateResponse,
  UploadResponse,
} from "./schemas";
import { MAX_IDEMPOTENCY_KEY_LENGTH } from "../shared/job";

const problem = (description: string) => ({ description, content: { [PROBLEM_CONTENT_TYPE]: { schema: ProblemDetails } } });
const jsonBody = <T extends z.ZodType>(schema: T) => ({ content: { "application/json": { schema } } });

/** The query schema as documented (the handler's own one parses strings into numbers). */
const ListJobsQueryDocument = z.strictObject({
  pageSize: z.number().int().min(1).max(100).optional().meta({ description: "Jobs per page, 1 to 100; default 20" }),
  continuationToken: z.string().optional().meta({ description: "From the previous page's continuationToken" }),
});
const IdempotencyHeaders = z.object({
  "idempotency-key": z
    .string()
    .max(MAX_IDEMPOTENCY_KEY_LENGTH)
    .optional()
    .meta({ description: "Repeat a request safely: the same key returns the same job (a different body with the same key is 422)" }),
});

const authenticated = [{ appServiceAuthentication: [] as string[] }];

export function buildOpenApiDocument(): ReturnType<OpenApiGeneratorV31["generateDocument"]> {
  const registry = new OpenAPIRegistry();
  registry.registerComponent("securitySchemes", "appServiceAuthentication", {
    type: "http",
    scheme: "bearer",
    description: "App Service Authentication in front of the api (a bearer token or its session cookie). On the local platform the x-dev-user header names the caller.",
  });
  const common = { 401: problem("No valid identity"), 405: problem("Method not allowed"), 500: problem("Unexpected failure") };

  registry.registerPath({
    method: "post",
    path: "/api/uploads",
    summary: "A short-lived, create-only URL for uploading one text file",
    security: authenticated,
    request: { body: { required: true, ...jsonBody(CreateUploadRequest) } },
    responses: {
      201: { description: "Upload with PUT to uploadUrl, then submit a job with blobName", ...jsonBody(UploadResponse) },
      400: problem("Malformed body"),
      413: problem("Body too large"),
      415: problem("Not application/json"),
      422: problem("Invalid field (each listed in errors)"),
      429: problem("Too many upload URLs in the last hour for this user; Retry-After says when to try again"),
      ...common,
    },
  });
  registry.registerPath({
    method: "post",
    path: "/api/jobs",
    summary: "Submit a text or an upload for analysis",
    security: authenticated,
    request: { headers: IdempotencyHeaders, body: { required: true, ...jsonBody(CreateJobRequest) } },
    responses: {
      202: {
        description: "Accepted; the Location header names the job",
        headers: { Location: { schema: { type: "string" }, description: "/api/jobs/{id}" } },
        ...jsonBody(JobView),
      },
      400: problem("Malformed body or header"),
      413: problem("Body too large"),
      415: problem("Not application/json"),
      422: problem("Invalid field, an upload that is unknown, copied, larger than declared or not a block blob (it is deleted), or Idempotency-Key reused with a different body"),
      429: problem("Too many jobs in the last hour, or too many queued or running, for this user; Retry-After says when to try again"),
      503: problem("The job could not be queued; nothing was kept"),
      ...common,
    },
  });
  registry.registerPath({
    method: "get",
    path: "/api/jobs",
    summary: "The caller's jobs, newest first, one page at a time",
    security: authenticated,
    request: { query: ListJobsQueryDocument },
    responses: { 200: { description: "A page of jobs", ...jsonBody(JobList) }, 400: problem("Invalid query parameter"), ...common },
  });
  registry.registerPath({
    method: "get",
    path: "/api/jobs/{id}",
    summary: "One of the caller's jobs",
    security: authenticated,
    request: { params: JobIdPath },
    responses: { 200: { description: "The job", ...jsonBody(JobView) }, 404: problem("No such job for this caller"), ...common },
  });
  registry.registerPath({
    method: "get",
    path: "/api/negotiate",
    summary: "A Web PubSub client URL that receives the caller's job events",
    security: authenticated,
    responses: { 200: { description: "Connect with @azure/web-pubsub-client", ...jsonBody(NegotiateResponse) }, ...common },
  });
  registry.registerPath({
    method: "get",
    path: "/api/health",
    summary: "Reachability of each dependency",
    responses: { 200: { description: "All reachable", ...jsonBody(HealthResponse) }, 503: { description: "Some unreachable", ...jsonBody(HealthResponse) } },
  });

  return new OpenApiGeneratorV31(registry.definitions).generateDocument({
    openapi: "3.1.0",
    info: {
      title: "Text analysis api",
      version: "1.0.0",
      description: "Submit texts or uploads for analysis; follow jobs by polling or over Web PubSub. Errors are RFC 9457 problem details.",
    },
  });
}

let cached: string | undefined;
/** The document as JSON text (generated once per process). */
export function openApiJson(): string {
  cached ??= JSON.stringify(buildOpenApiDocument());
  return cached;
}
