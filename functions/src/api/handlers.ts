/**
 * The api's HTTP handlers: parse and validate, call a use case, map the result to HTTP. Each is a
 * plain function of (HttpRequest, InvocationContext), registered in index.ts and called directly by
 * the tests.
 */
import type { HttpRequest, InvocationContext } from "@azure/functions";
import { InvalidContinuationToken, JobNotFound } from "../shared/job-store.js";
import { MAX_IDEMPOTENCY_KEY_LENGTH } from "../shared/job.js";
import type { ApiDependencies, DependencyProvider } from "./dependencies.js";
import { checkHealth, type HealthReport } from "./health.js";
import { byMethod, json, readJsonBody, readQuery, serve, type Handler } from "./http.js";
import { callerFrom, type Caller } from "./identity.js";
import { jobOf, listJobsOf, submitJob, toJobView, type Log } from "./jobs.js";
import { ConcurrencyLimit, underLimit } from "./overload.js";
import { HttpProblem } from "./problem.js";
import { QuotaExceeded } from "./quotas.js";
import {
  CreateJobRequest,
  CreateUploadRequest,
  DEFAULT_PAGE_SIZE,
  IDEMPOTENCY_KEY_HEADER,
  ListJobsQuery,
  type UploadResponse,
} from "./schemas.js";

/** Job ids are UUIDs; anything else cannot name a job (and is a 404 like any unknown id). */
const JOB_ID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
/** Idempotency keys: visible ASCII, bounded (they become part of a stored document). */
const IDEMPOTENCY_KEY_PATTERN = new RegExp(`^[\\x21-\\x7e]{1,${MAX_IDEMPOTENCY_KEY_LENGTH}}$`);

async function callerOf(request: HttpRequest, deps: ApiDependencies): Promise<Caller> {
  const caller = callerFrom(request.headers, deps.identity);
  if (!caller) {
    throw new HttpProblem(401, "Sign in first: the request carries no valid identity.", { headers: { "www-authenticate": 'Bearer realm="api"' } });
  }
  return caller;
}

function logOf(context: InvocationContext): Log {
  return {
    info: (message) => context.log(message),
    warn: (message) => context.warn(message),
    error: (message, error) => (error === undefined ? context.error(message) : context.error(message, error)),
  };
}

function idempotencyKeyOf(request: HttpRequest): string | undefined {
  const key = request.headers.get(IDEMPOTENCY_KEY_HEADER);
  if (key === null) return undefined;
  if (!IDEMPOTENCY_KEY_PATTERN.test(key)) {
    throw new HttpProblem(400, `The Idempotency-Key header must be 1 to ${MAX_IDEMPOTENCY_KEY_LENGTH} visible ASCII characters.`, {
      errors: [{ pointer: "#/headers/idempotency-key", detail: "invalid" }],
    });
  }
  return key;
}

const jobLocation = (id: string) => `/api/jobs/${id}`;

/** Runs `work`, answering a quota refusal with 429 and Retry-After. */
async function withinQuota<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    if (error instanceof QuotaExceeded) throw new HttpProblem(429, error.detail, { headers: { "retry-after": String(error.retryAfterSeconds) } });
    throw error;
  }
}

export interface ApiHandlers {
  uploads: Handler;
  jobs: Handler;
  job: Handler;
  negotiate: Handler;
  health: Handler;
}

/** How long one health report answers later health requests. */
const HEALTH_CACHE_MS = 5_000;

export function createApiHandlers(dependencies: DependencyProvider, limit: ConcurrencyLimit = new ConcurrencyLimit()): ApiHandlers {
  const recentHealth = new WeakMap<ApiDependencies, { at: number; report: Promise<HealthReport> }>();
  // Every route but health counts against the instance's limit: health stays cheap (cached) and
  // must answer while the instance sheds load, or the platform would take it for dead.
  const limited = (handler: Handler): Handler => underLimit(limit, async () => (await dependencies()).maxConcurrentRequests, handler);
  return {
    uploads: serve(
      "/api/uploads",
      limited(byMethod({
        POST: async (request) => {
          const deps = await dependencies();
          const caller = await callerOf(request, deps);
          const body = await readJsonBody(request, CreateUploadRequest);
          if (body.size > deps.uploadMaxBytes) {
            throw new HttpProblem(422, `Uploads are limited to ${deps.uploadMaxBytes} bytes.`, {
              errors: [{ pointer: "#/size", detail: `must be at most ${deps.uploadMaxBytes}` }],
            });
          }
          const issued = await deps.uploads.issueUploadUrl(caller.userId, body.size, deps.uploadUrlTtlSeconds);
          await withinQuota(() => deps.quotas.admitUploadUrl(caller.userId, issued.blobName));
          const answer: UploadResponse = {
            blobName: issued.blobName,
            uploadUrl: issued.uploadUrl,
            method: "PUT",
            headers: { "x-ms-blob-type": "BlockBlob" },
            expiresAt: issued.expiresAt.toISOString(),
            maxBytes: body.size,
          };
          return json(201, answer);
        },
      })),
    ),

    jobs: serve(
      "/api/jobs",
      limited(byMethod({
        POST: async (request, context) => {
          const deps = await dependencies();
          const caller = await callerOf(request, deps);
          const idempotencyKey = idempotencyKeyOf(request);
          const input = await readJsonBody(request, CreateJobRequest);
          const { job, replayed } = await withinQuota(() => submitJob(deps, caller.userId, input, idempotencyKey, logOf(context)));
          const headers: Record<string, string> = { location: jobLocation(job.id) };
          if (replayed) headers["idempotent-replayed"] = "true";
          return json(202, toJobView(job), headers);
        },
        GET: async (request) => {
          const deps = await dependencies();
          const caller = await callerOf(request, deps);
          const query = readQuery(request, ListJobsQuery);
          try {
            return json(200, await listJobsOf(deps.jobs, caller.userId, query.pageSize ?? DEFAULT_PAGE_SIZE, query.continuationToken));
          } catch (error) {
            if (error instanceof InvalidContinuationToken) {
              throw new HttpProblem(400, "The continuation token is not valid; start again from the first page.", {
                errors: [{ pointer: "#/query/continuationToken", detail: "not a token from a previous page" }],
              });
            }
            throw error;
          }
        },
      })),
    ),

    job: serve(
      "/api/jobs/{id}",
      limited(byMethod({
        GET: async (request) => {
          const deps = await dependencies();
          const caller = await callerOf(request, deps);
          const id = request.params.id ?? "";
          // Only a well-formed id is echoed back: anything else cannot name a job.
          if (!JOB_ID_PATTERN.test(id)) throw new HttpProblem(404, "There is no job with this id; job ids are UUIDs.");
          const notFound = new HttpProblem(404, `There is no job ${id}.`);
          try {
            return json(200, toJobView(await jobOf(deps.jobs, caller.userId, id)));
          } catch (error) {
            // Another caller's job is not found either: the store reads only the caller's partition.
            if (error instanceof JobNotFound) throw notFound;
            throw error;
          }
        },
      })),
    ),

    negotiate: serve(
      "/api/negotiate",
      limited(byMethod({
        GET: async (request) => {
          const deps = await dependencies();
          const caller = await callerOf(request, deps);
          const access = await deps.realtime.clientAccess(caller.userId);
          return json(200, { url: access.url, group: access.group, expiresAt: access.expiresAt.toISOString() });
        },
      })),
    ),

    health: serve(
      "/api/health",
      byMethod({
        GET: async (_request, context) => {
          const deps = await dependencies();
          // The route is anonymous: a flood of probes must not become a flood of calls to every
          // dependency, so concurrent and recent requests share one report.
          let cached = recentHealth.get(deps);
          if (!cached || Date.now() - cached.at > HEALTH_CACHE_MS) {
            cached = {
              at: Date.now(),
              report: checkHealth(
                { cosmos: () => deps.jobs.ping(), blob: () => deps.uploads.ping(), serviceBus: () => deps.queue.ping(), webPubSub: () => deps.realtime.ping() },
                (dependency, error) => context.warn(`health: ${dependency} unreachable`, error),
                deps.healthProbeTimeoutMs,
              ),
            };
            recentHealth.set(deps, cached);
          }
          const report = await cached.report;
          // A 503 says when to ask again, as every other 503 of the api does: the report is kept that long.
          return report.status === "ok" ? json(200, report) : json(503, report, { "retry-after": String(HEALTH_CACHE_MS / 1000) });
        },
      }),
    ),
  };
}

/** The OpenAPI document and its Swagger UI: no identity needed, no dependencies. */
export const documentationHandlers: { openapi: Handler; docs: Handler } = {
  openapi: serve(
    "/api/openapi.json",
    byMethod({
      GET: async () => {
        // Loaded on demand: the OpenAPI generator is needed only by this route.
        const { openApiJson } = await import("./openapi.js");
        return { status: 200, headers: { "content-type": "application/json; charset=utf-8", "cache-control": "no-cache" }, body: openApiJson() };
      },
    }),
  ),
  docs: serve(
    "/api/docs",
    byMethod({
      GET: async (request) => {
        const { docsAsset } = await import("./docs.js");
        const asset = await docsAsset(request.params.asset ?? "");
        if (!asset) throw new HttpProblem(404, "There is no such documentation asset.");
        return { status: 200, headers: { "content-type": asset.contentType, ...asset.headers }, body: asset.body };
      },
    }),
  ),
};
