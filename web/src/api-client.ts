/**
 * The api, as the app calls it: one method per operation, typed with the api's own schemas
 * (api-types.ts). Every failure becomes an {@link ApiProblem}: the api's problem+json answer when it
 * sent one, otherwise a problem the client words itself (network down, a gateway's HTML page).
 */
import type { CreateJobRequest, CreateUploadRequest, Job, JobList, ListJobsQuery, NegotiateResponse, ProblemDetails, UploadResponse } from "./api-types";

/**
 * The operations the app uses, as the api's OpenAPI document names them. A test checks each against
 * the document, so renaming a route in the api without following here fails `npm test`.
 */
export const apiRoutes = {
  createUpload: { method: "post", path: "/api/uploads" },
  createJob: { method: "post", path: "/api/jobs" },
  listJobs: { method: "get", path: "/api/jobs" },
  getJob: { method: "get", path: "/api/jobs/{id}" },
  negotiate: { method: "get", path: "/api/negotiate" },
} as const;

/** Sent with POST /api/jobs so that a retried submission cannot create a second job. */
export const IDEMPOTENCY_KEY_HEADER = "idempotency-key";

/** A failed call: `problem` is what the api said (RFC 9457), or the client's own words for it. */
export class ApiProblem extends Error {
  constructor(readonly problem: ProblemDetails) {
    super(problem.detail);
    this.name = "ApiProblem";
  }

  get status(): number {
    return this.problem.status;
  }

  /** The api's reasons for the request members at `pointers` (e.g. `#/text`), in its words. */
  reasonsFor(pointers: readonly string[]): string[] {
    return (this.problem.errors ?? []).filter((error) => pointers.includes(error.pointer)).map((error) => error.detail);
  }
}

/** Headers that identify the caller: a bearer token, or the local development identity. */
export type CallerHeaders = () => Promise<Record<string, string>>;

function isProblem(value: unknown): value is ProblemDetails {
  if (typeof value !== "object" || value === null) return false;
  const { status, detail } = value as Record<string, unknown>;
  return typeof status === "number" && typeof detail === "string";
}

/** The problem a response stands for: the api's own when the body is one, a worded one otherwise. */
async function problemOf(response: Response): Promise<ProblemDetails> {
  const body: unknown = await response.json().catch(() => undefined);
  if (isProblem(body)) return body;
  const detail =
    response.status === 401 || response.status === 403
      ? "You are not signed in, or not allowed to do this. Sign in again."
      : `The api answered ${response.status} ${response.statusText || ""}`.trim() + ".";
  return { type: "about:blank", title: response.statusText || "Error", status: response.status, detail };
}

export class ApiClient {
  constructor(
    private readonly baseUrl: string,
    private readonly callerHeaders: CallerHeaders,
  ) {}

  private async call<T>(method: "GET" | "POST", path: string, options: { body?: unknown; headers?: Record<string, string> } = {}): Promise<T> {
    const headers: Record<string, string> = { accept: "application/json", ...(await this.callerHeaders()), ...options.headers };
    if (options.body !== undefined) headers["content-type"] = "application/json";
    let response: Response;
    try {
      response = await fetch(`${this.baseUrl}${path}`, {
        method,
        headers,
        body: options.body === undefined ? undefined : JSON.stringify(options.body),
        // Bearer tokens are ordinary headers: no cookies go to the api.
        credentials: "omit",
      });
    } catch {
      throw new ApiProblem({ type: "about:blank", title: "Network error", status: 0, detail: "The api cannot be reached. Check your connection and try again." });
    }
    if (!response.ok) throw new ApiProblem(await problemOf(response));
    return (await response.json()) as T;
  }

  createUpload(body: CreateUploadRequest): Promise<UploadResponse> {
    return this.call("POST", apiRoutes.createUpload.path, { body });
  }

  /** Queues a job; the same `idempotencyKey` sent again returns the same job. */
  createJob(body: CreateJobRequest, idempotencyKey: string): Promise<Job> {
    return this.call("POST", apiRoutes.createJob.path, { body, headers: { [IDEMPOTENCY_KEY_HEADER]: idempotencyKey } });
  }

  listJobs(query: ListJobsQuery = {}): Promise<JobList> {
    const search = new URLSearchParams();
    if (query.pageSize !== undefined) search.set("pageSize", query.pageSize);
    if (query.continuationToken !== undefined) search.set("continuationToken", query.continuationToken);
    const suffix = search.size > 0 ? `?${search}` : "";
    return this.call("GET", `${apiRoutes.listJobs.path}${suffix}`);
  }

  getJob(id: string): Promise<Job> {
    return this.call("GET", apiRoutes.getJob.path.replace("{id}", encodeURIComponent(id)));
  }

  negotiate(): Promise<NegotiateResponse> {
    return this.call("GET", apiRoutes.negotiate.path);
  }
}
