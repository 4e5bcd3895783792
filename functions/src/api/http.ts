/**
 * The HTTP edge shared by every api function: method dispatch (405 with Allow; a method without a
 * body refuses one), problem+json for every error, JSON bodies read as a stream that stops at the
 * size limit, a content-type check, `nosniff` on every answer, and a server span per request that
 * continues the caller's trace.
 */
import type { HttpRequest, HttpResponseInit, InvocationContext } from "@azure/functions";
import type { z } from "zod";
import { extractTraceContext, SpanKind, withSpan } from "../shared/telemetry.js";
import { HttpProblem, problemResponse, validationProblem } from "./problem.js";
import { MAX_REQUEST_BODY_BYTES } from "./request-limits.js";

export { MAX_REQUEST_BODY_BYTES };

export type Handler = (request: HttpRequest, context: InvocationContext) => Promise<HttpResponseInit>;
export type Method = "GET" | "POST" | "PUT" | "PATCH" | "DELETE";

/** Longest path echoed as a problem's instance (the longest real one, a job's, is about 50). */
const MAX_ECHOED_PATH = 256;

/** Methods whose requests carry no body here: one that does is refused unread. */
const BODYLESS_METHODS: ReadonlySet<string> = new Set(["GET", "HEAD", "DELETE"]);

export function json(status: number, body: unknown, headers: Record<string, string> = {}): HttpResponseInit {
  return {
    status,
    headers: { "content-type": "application/json; charset=utf-8", "cache-control": "no-store", "x-content-type-options": "nosniff", ...headers },
    body: JSON.stringify(body),
  };
}

/** Whether the request says it carries a body (a non-zero Content-Length, or a Transfer-Encoding). */
function announcesBody(request: HttpRequest): boolean {
  const length = request.headers.get("content-length");
  return (length !== null && length.trim() !== "0") || request.headers.has("transfer-encoding");
}

/**
 * Dispatches on the method; anything else is 405 with the Allow header, answered before the body is
 * looked at. A GET (or DELETE) that carries a body is refused with 413: no route here reads one.
 */
export function byMethod(handlers: Partial<Record<Method, Handler>>): Handler {
  const allowed = Object.keys(handlers).join(", ");
  return async (request, context) => {
    const method = request.method.toUpperCase();
    const handler = handlers[method as Method];
    if (!handler) throw new HttpProblem(405, `${request.method} is not allowed here; use ${allowed}.`, { headers: { allow: allowed } });
    if (BODYLESS_METHODS.has(method) && announcesBody(request)) throw new HttpProblem(413, `A ${method} request here takes no body.`);
    return handler(request, context);
  };
}

/**
 * Runs a handler inside a server span (parented on the host's trace context, or on an incoming
 * traceparent header where there is no host) and renders every error as problem+json: an
 * {@link HttpProblem} as itself, anything unexpected as a 500 that reveals nothing.
 */
export function serve(name: string, handler: Handler): Handler {
  return async (request, context) => {
    const path = new URL(request.url).pathname;
    // The problem's `instance`; a path longer than any route's is not echoed back (it can only be junk).
    const instance = path.length <= MAX_ECHOED_PATH ? path : undefined;
    const hostTrace = context.traceContext;
    const parent = extractTraceContext(
      hostTrace?.traceParent
        ? { traceparent: hostTrace.traceParent, tracestate: hostTrace.traceState }
        : { traceparent: request.headers.get("traceparent") ?? undefined, tracestate: request.headers.get("tracestate") ?? undefined },
    );
    return withSpan(`${request.method} ${name}`, { kind: SpanKind.SERVER, parent, attributes: { "http.request.method": request.method, "url.path": path } }, async (span) => {
      let response: HttpResponseInit;
      try {
        response = await handler(request, context);
      } catch (error) {
        if (error instanceof HttpProblem) {
          response = problemResponse(error, instance);
        } else if (isTransient(error)) {
          context.warn(`${request.method} ${path}: a dependency is unavailable`, error);
          response = problemResponse(new HttpProblem(503, "A service the api depends on is unavailable; try again shortly.", { headers: { "retry-after": "5" } }), instance);
        } else {
          context.error(`${request.method} ${path} failed`, error);
          response = problemResponse(new HttpProblem(500, "The request could not be completed. It has been logged."), instance);
        }
      }
      span.setAttribute("http.response.status_code", response.status ?? 200);
      return response;
    });
  };
}

const TRANSIENT_NETWORK_CODES = new Set(["ECONNREFUSED", "ECONNRESET", "ETIMEDOUT", "EAI_AGAIN", "ENOTFOUND", "ServiceBusy", "ServiceCommunicationProblem", "ServiceTimeout"]);

/**
 * A failure a retry may cure (throttling, a dependency down or unreachable): the client gets 503
 * with Retry-After rather than a 500 that reads as a bug. Covers the SDKs' shapes: HTTP status on
 * `statusCode` (Blob, Web PubSub) or numeric `code` (Cosmos), a string `code` (Node, Service Bus).
 */
export function isTransient(error: unknown): boolean {
  if (typeof error !== "object" || error === null) return false;
  const { statusCode, code } = error as { statusCode?: unknown; code?: unknown };
  const status = typeof statusCode === "number" ? statusCode : typeof code === "number" ? code : undefined;
  if (status === 408 || status === 429 || status === 502 || status === 503 || status === 504) return true;
  return typeof code === "string" && TRANSIENT_NETWORK_CODES.has(code);
}

/** Media types accepted for JSON bodies: application/json with an optional UTF-8 charset. */
function isJsonContentType(value: string | null): boolean {
  if (!value) return false;
  const [type, ...parameters] = value.split(";").map((part) => part.trim().toLowerCase());
  if (type !== "application/json") return false;
  return parameters.every((parameter) => parameter === "" || parameter === "charset=utf-8");
}

/**
 * The body's bytes, read as a stream that stops (413) as soon as it passes `maxBytes`: nothing past
 * the limit is copied, whatever the request declared.
 */
async function readCapped(request: HttpRequest, maxBytes: number): Promise<Uint8Array> {
  const tooLarge = () => new HttpProblem(413, `The body is larger than ${maxBytes} bytes.`);
  const declaredLength = Number(request.headers.get("content-length") ?? "0");
  if (declaredLength > maxBytes) throw tooLarge();
  if (!request.body) return new Uint8Array(0);
  const reader = request.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > maxBytes) {
      await reader.cancel();
      throw tooLarge();
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks, size);
}

/**
 * Reads and validates a JSON body: 415 for another content type, 413 over the size limit (read
 * stops there), 400 for bytes that are not UTF-8 JSON, 422 (naming each bad field) for JSON the
 * schema rejects.
 */
export async function readJsonBody<S extends z.ZodType>(request: HttpRequest, schema: S, maxBytes = MAX_REQUEST_BODY_BYTES): Promise<z.output<S>> {
  if (!isJsonContentType(request.headers.get("content-type"))) {
    throw new HttpProblem(415, "The body must be application/json.", { headers: { "accept-post": "application/json" } });
  }
  const bytes = await readCapped(request, maxBytes);
  if (bytes.byteLength === 0) throw new HttpProblem(400, "The body is empty; a JSON object is required.");
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    throw new HttpProblem(400, "The body is not valid UTF-8.");
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new HttpProblem(400, "The body is not valid JSON.");
  }
  const parsed = schema.safeParse(value);
  if (!parsed.success) throw validationProblem(parsed.error);
  return parsed.data;
}

/** Validates the query string (every parameter known, each well-formed): 400 naming each bad one. */
export function readQuery<S extends z.ZodType>(request: HttpRequest, schema: S): z.output<S> {
  // No prototype: a parameter named __proto__ or constructor is just an unknown parameter.
  const raw: Record<string, string> = Object.create(null) as Record<string, string>;
  for (const [name, value] of request.query.entries()) {
    if (Object.hasOwn(raw, name)) throw new HttpProblem(400, `The query parameter ${name} is repeated.`, { errors: [{ pointer: `#/query/${name}`, detail: "repeated" }] });
    raw[name] = value;
  }
  const parsed = schema.safeParse(raw);
  if (!parsed.success) throw validationProblem(parsed.error, "/query", 400);
  return parsed.data;
}
