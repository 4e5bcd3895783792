import { DelegateBackoff, handleWhen, retry, type IRetryBackoffContext, type RetryPolicy } from "cockatiel";

/** How hard to retry transient failures. */
export interface RetryOptions {
  /** Retries after the first attempt. @default 6 */
  readonly maxRetries?: number;
  /** First backoff; doubles per retry. @default 1000 */
  readonly initialDelayMs?: number;
  /** Cap of one backoff, and of a server's Retry-After. @default 60000 */
  readonly maxDelayMs?: number;
}

/** A non-2xx answer, carrying the service's own message. */
export class HttpStatusError extends Error {
  constructor(
    readonly method: string,
    readonly url: string,
    readonly status: number,
    /** The service's message (the body's `Message`/`message`/`error`, or the body text). */
    readonly serviceMessage: string,
    /** From Retry-After (429/503), in ms. */
    readonly retryAfterMs?: number,
  ) {
    super(`${method} ${url} answered ${status}${serviceMessage ? `: ${serviceMessage}` : ""}`);
    this.name = "HttpStatusError";
  }
}

// Connection-level failures worth another attempt. fetch (undici) reports them as
// TypeError("fetch failed") with the socket error as `cause`.
const transientNetworkCodes = new Set([
  "ECONNRESET",
  "ETIMEDOUT",
  "EPIPE",
  "EAI_AGAIN",
  "UND_ERR_SOCKET",
  "UND_ERR_CONNECT_TIMEOUT",
  "UND_ERR_HEADERS_TIMEOUT",
  "UND_ERR_BODY_TIMEOUT",
]);

function errorCode(error: unknown): string | undefined {
  for (let e: unknown = error, depth = 0; e && typeof e === "object" && depth < 4; depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === "string") return code;
    e = (e as { cause?: unknown }).cause;
  }
  return undefined;
}

/** 408, 429 and 5xx answers and dropped connections are retried; every other 4xx is final. */
export function isTransient(error: unknown): boolean {
  if (error instanceof HttpStatusError) return error.status === 408 || error.status === 429 || error.status >= 500;
  const code = errorCode(error);
  return code !== undefined && transientNetworkCodes.has(code);
}

/**
 * Exponential backoff, except that a server's Retry-After wins (capped): Azure front ends send
 * it with 429 and 503, and retrying earlier only earns another 429.
 */
export function transientRetryPolicy(options: RetryOptions = {}): RetryPolicy {
  const initial = options.initialDelayMs ?? 1000;
  const max = options.maxDelayMs ?? 60_000;
  return retry(handleWhen(isTransient), {
    maxAttempts: options.maxRetries ?? 6,
    backoff: new DelegateBackoff((context: IRetryBackoffContext<unknown>) => {
      const failure = "error" in context.result ? context.result.error : undefined;
      if (failure instanceof HttpStatusError && failure.retryAfterMs !== undefined) {
        return Math.min(failure.retryAfterMs, max);
      }
      return Math.min(initial * 2 ** (context.attempt - 1), max);
    }),
  });
}

/** Retry-After as seconds or an HTTP date, in ms from now; undefined when absent or unreadable. */
export function parseRetryAfter(header: string | null, now: number = Date.now()): number | undefined {
  if (header === null || header.trim() === "") return undefined;
  const seconds = Number(header);
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
  const date = Date.parse(header);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

/** Reads a failed response's message the way Azure services shape it (JSON or text). */
export async function serviceMessageOf(response: Response): Promise<string> {
  const text = (await response.text().catch(() => "")).trim();
  if (text === "") return response.statusText;
  try {
    const body = JSON.parse(text) as unknown;
    if (typeof body === "string") return body;
    if (body && typeof body === "object") {
      const record = body as Record<string, unknown>;
      const error = record.error;
      for (const candidate of [record.Message, record.message, record.ExceptionMessage, error && typeof error === "object" ? (error as Record<string, unknown>).message : error]) {
        if (typeof candidate === "string" && candidate !== "") return candidate;
      }
    }
  } catch {
    // not JSON: the text is the message
  }
  return text.length > 2000 ? `${text.slice(0, 2000)}...` : text;
}

/**
 * fetch that turns a non-2xx answer into an HttpStatusError and a request that outlives
 * `timeoutMs` into an ETIMEDOUT error, so the retry policy can judge both.
 */
export async function fetchOk(url: string, init: RequestInit & { method: string }, timeoutMs = 300_000): Promise<Response> {
  let response: Response;
  try {
    response = await fetch(url, { ...init, signal: AbortSignal.timeout(timeoutMs) });
  } catch (error) {
    if (error instanceof Error && error.name === "TimeoutError") {
      throw Object.assign(new Error(`${init.method} ${url} got no answer within ${timeoutMs} ms`), { code: "ETIMEDOUT", cause: error });
    }
    throw error;
  }
  if (response.ok) return response;
  throw new HttpStatusError(init.method, url, response.status, await serviceMessageOf(response), parseRetryAfter(response.headers.get("retry-after")));
}
