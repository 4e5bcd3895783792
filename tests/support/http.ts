/** Real @azure/functions request and context objects for calling handlers directly. */
import { HttpRequest, InvocationContext, type HttpResponseInit } from "@azure/functions";

export interface RequestOptions {
  method?: string;
  /** Path and query, e.g. "/api/jobs?pageSize=2". */
  path: string;
  headers?: Record<string, string>;
  /** An object is sent as JSON (content-type set unless given). */
  json?: unknown;
  body?: string | Uint8Array;
  params?: Record<string, string>;
}

export function httpRequest(options: RequestOptions): HttpRequest {
  const headers: Record<string, string> = { ...options.headers };
  let body: { string: string } | { bytes: Uint8Array } | undefined;
  if (options.json !== undefined) {
    body = { string: JSON.stringify(options.json) };
    headers["content-type"] ??= "application/json";
  } else if (typeof options.body === "string") {
    body = { string: options.body };
  } else if (options.body) {
    body = { bytes: options.body };
  }
  return new HttpRequest({
    method: options.method ?? "GET",
    url: `http://127.0.0.1:7071${options.path}`,
    headers,
    params: options.params ?? {},
    ...(body ? { body } : {}),
  });
}

export interface RecordedLog {
  level: string;
  args: unknown[];
}

export function invocationContext(functionName = "test"): InvocationContext & { logs: RecordedLog[] } {
  const logs: RecordedLog[] = [];
  const context = new InvocationContext({
    invocationId: crypto.randomUUID(),
    functionName,
    logHandler: (level, ...args) => logs.push({ level, args }),
  });
  return Object.assign(context, { logs });
}

/** The decoded response: status, headers (lower-case) and body (JSON parsed when it is JSON). */
export interface DecodedResponse {
  status: number;
  headers: Record<string, string>;
  body: unknown;
  text: string;
}

export function decode(response: HttpResponseInit): DecodedResponse {
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries((response.headers ?? {}) as Record<string, string>)) headers[name.toLowerCase()] = value;
  const raw = response.body;
  const text = typeof raw === "string" ? raw : raw instanceof Uint8Array ? Buffer.from(raw).toString("utf8") : raw === undefined || raw === null ? "" : String(raw);
  const contentType = headers["content-type"] ?? "";
  const body = /json/.test(contentType) && text ? (JSON.parse(text) as unknown) : text;
  return { status: response.status ?? 200, headers, body, text };
}
