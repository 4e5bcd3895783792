/**
 * The HTTP trigger as the Functions host plays it: one node http server for the app, routes from the
 * httpTrigger registrations under host.json's routePrefix, the request handed to the function as the
 * host's RPC http data, the RPC response written back (status, headers, cookies, body). Unknown
 * paths get 404, a known path with another method 405 with Allow, an oversized body 413; all as
 * RFC 9457 problem+json, the house style for HTTP errors.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import type { RpcHttpCookie, RpcHttpData, RpcInvocationResponse, RpcTypedData } from "./core-types.js";
import type { FunctionsApp, HostLogSink } from "./functions-app.js";
import { DEFAULT_MAX_REQUEST_BYTES, type HostConfig } from "./host-config.js";
import { compileRoute, RouteTable } from "./http-routes.js";


export interface HttpFunction {
  functionName: string;
  /** Name of the trigger binding: the invocation's input is passed under it. */
  triggerName: string;
}

/** The route table of every httpTrigger registration. Throws on a template the host would refuse. */
export function httpRoutesOf(app: FunctionsApp, config: HostConfig): RouteTable<HttpFunction> {
  const table = new RouteTable<HttpFunction>();
  for (const { metadata } of app.functions.values()) {
    for (const [triggerName, binding] of Object.entries(metadata.bindings)) {
      if (binding.type?.toLowerCase() !== "httptrigger") continue;
      const route = typeof binding.route === "string" && binding.route !== "" ? binding.route : metadata.name;
      const methods = Array.isArray(binding.methods) ? binding.methods.map(String) : [];
      table.add(compileRoute(config.routePrefix, route, methods, { functionName: metadata.name, triggerName }));
    }
  }
  return table;
}

export interface HttpTriggerServer {
  readonly url: string;
  readonly port: number;
  close(): Promise<void>;
}

export interface HttpTriggerOptions {
  app: FunctionsApp;
  routes: RouteTable<HttpFunction>;
  port: number;
  /** @default "127.0.0.1" */
  host?: string;
  /** Largest request body, in bytes (the app setting FUNCTIONS_REQUEST_BODY_SIZE_LIMIT). @default DEFAULT_MAX_REQUEST_BYTES (100 MB) */
  maxRequestBytes?: number;
  /** Browser origins allowed to call the app (App Service CORS, `Host.CORS` in local.settings.json). @default none */
  corsAllowedOrigins?: readonly string[];
  log: HostLogSink;
}

/** Interfaces that only this machine can reach. */
const LOOPBACK_INTERFACES = new Set(["127.0.0.1", "::1", "localhost"]);

/**
 * On a loopback interface, only requests addressed to a loopback name are served: a web page whose
 * own host name was pointed at 127.0.0.1 (DNS rebinding) sends its own name in Host and is refused,
 * so it cannot call the local functions as if it were the local site. Azure's front ends do this
 * routing by host name themselves.
 */
export function isServedHost(hostHeader: string | undefined, listeningOn: string): boolean {
  if (!LOOPBACK_INTERFACES.has(listeningOn)) return true;
  if (!hostHeader) return false;
  const name = hostHeader.startsWith("[") ? hostHeader.slice(1, hostHeader.indexOf("]")) : hostHeader.replace(/:\d+$/, "");
  return LOOPBACK_INTERFACES.has(name.toLowerCase());
}

/** How long browsers may cache a preflight answer, in seconds. */
const CORS_MAX_AGE_SECONDS = 3600;

/**
 * App Service CORS in front of the functions: preflights are answered by the platform (the function
 * never sees them), and answers to an allowed origin carry Access-Control-Allow-Origin.
 */
export function corsHeadersFor(req: IncomingMessage, allowedOrigins: readonly string[]): { preflight: boolean; headers: Record<string, string> } {
  const origin = req.headers.origin;
  const preflight = req.method === "OPTIONS" && typeof req.headers["access-control-request-method"] === "string";
  if (!origin || !(allowedOrigins.includes(origin) || allowedOrigins.includes("*"))) return { preflight, headers: {} };
  const headers: Record<string, string> = { "access-control-allow-origin": allowedOrigins.includes("*") ? "*" : origin, vary: "Origin" };
  if (preflight) {
    headers["access-control-allow-methods"] = String(req.headers["access-control-request-method"]);
    const requested = req.headers["access-control-request-headers"];
    if (requested) headers["access-control-allow-headers"] = String(requested);
    headers["access-control-max-age"] = String(CORS_MAX_AGE_SECONDS);
  }
  return { preflight, headers };
}

class RequestTooLarge extends Error {}

function sendProblem(res: ServerResponse, status: number, title: string, detail: string, headers: Record<string, string> = {}): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body = JSON.stringify({ type: "about:blank", title, status, detail });
  res.writeHead(status, { "content-type": "application/problem+json", "content-length": Buffer.byteLength(body), ...headers });
  res.end(body);
}

function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const declared = Number(req.headers["content-length"]);
  if (Number.isFinite(declared) && declared > limit) return Promise.reject(new RequestTooLarge());
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        req.removeAllListeners("data");
        req.resume();
        reject(new RequestTooLarge());
        return;
      }
      chunks.push(chunk);
    });
    req.once("end", () => resolve(Buffer.concat(chunks)));
    req.once("error", reject);
  });
}

function headersOf(req: IncomingMessage): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(req.headers)) {
    if (value === undefined) continue;
    headers[name] = Array.isArray(value) ? value.join(name === "cookie" ? "; " : ", ") : value;
  }
  return headers;
}

function bodyBytes(body: RpcTypedData | null | undefined): Buffer {
  if (!body) return Buffer.alloc(0);
  if (body.bytes) return Buffer.from(body.bytes);
  if (body.stream) return Buffer.from(body.stream);
  if (typeof body.string === "string") return Buffer.from(body.string, "utf8");
  if (typeof body.json === "string") return Buffer.from(body.json, "utf8");
  if (typeof body.int === "number") return Buffer.from(String(body.int));
  if (typeof body.double === "number") return Buffer.from(String(body.double));
  return Buffer.alloc(0);
}

/** A Set-Cookie header value from the RPC cookie the library produced. */
export function setCookieHeader(cookie: RpcHttpCookie): string {
  const parts = [`${cookie.name ?? ""}=${cookie.value ?? ""}`];
  if (cookie.domain?.value) parts.push(`Domain=${cookie.domain.value}`);
  if (cookie.path?.value) parts.push(`Path=${cookie.path.value}`);
  const seconds = cookie.expires?.value?.seconds;
  if (typeof seconds === "number") parts.push(`Expires=${new Date(seconds * 1000).toUTCString()}`);
  if (typeof cookie.maxAge?.value === "number") parts.push(`Max-Age=${Math.trunc(cookie.maxAge.value)}`);
  if (cookie.secure?.value) parts.push("Secure");
  if (cookie.httpOnly?.value) parts.push("HttpOnly");
  if (cookie.sameSite === "lax") parts.push("SameSite=Lax");
  else if (cookie.sameSite === "strict") parts.push("SameSite=Strict");
  else if (cookie.sameSite === "explicitNone") parts.push("SameSite=None");
  return parts.join("; ");
}

/** The HTTP answer in an RPC response: the `$return` binding, else the first http output. */
function httpResponseOf(response: RpcInvocationResponse): RpcHttpData | undefined {
  if (response.returnValue?.http) return response.returnValue.http;
  return response.outputData?.find((output) => output.data?.http)?.data?.http ?? undefined;
}

function writeResponse(res: ServerResponse, http: RpcHttpData | undefined, method: string, extraHeaders: Record<string, string>): number {
  if (!http) {
    // The host answers an invocation that produced no HTTP response with 204.
    res.writeHead(204, extraHeaders).end();
    return 204;
  }
  const status = Number(http.statusCode ?? 200);
  const headers: Record<string, string | string[]> = { ...(http.headers ?? {}), ...extraHeaders };
  const cookies = (http.cookies ?? []).map(setCookieHeader);
  if (cookies.length > 0) headers["set-cookie"] = cookies;
  const body = bodyBytes(http.body);
  const bodyless = method === "HEAD" || status === 204 || status === 304 || (status >= 100 && status < 200);
  if (!bodyless) headers["content-length"] = String(body.length);
  delete headers["transfer-encoding"];
  res.writeHead(Number.isInteger(status) && status >= 100 && status <= 599 ? status : 500, headers);
  res.end(bodyless ? undefined : body);
  return status;
}

export async function startHttpTrigger(options: HttpTriggerOptions): Promise<HttpTriggerServer> {
  const { app, routes, log } = options;
  const limit = options.maxRequestBytes ?? DEFAULT_MAX_REQUEST_BYTES;
  const host = options.host ?? "127.0.0.1";
  let baseUrl = "";

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const method = (req.method ?? "GET").toUpperCase();
    const url = new URL(req.url ?? "/", baseUrl);
    if (!isServedHost(req.headers.host, host)) {
      req.resume();
      sendProblem(res, 421, "Misdirected Request", "This local host serves requests addressed to 127.0.0.1 or localhost only.");
      return;
    }
    const cors = corsHeadersFor(req, options.corsAllowedOrigins ?? []);
    if (cors.preflight && cors.headers["access-control-allow-origin"]) {
      req.resume();
      res.writeHead(204, cors.headers).end();
      return;
    }
    const match = routes.match(method, url.pathname);
    if (match.kind === "notFound") {
      req.resume();
      sendProblem(res, 404, "Not Found", `No function serves ${url.pathname}.`, cors.headers);
      return;
    }
    if (match.kind === "methodNotAllowed") {
      req.resume();
      sendProblem(res, 405, "Method Not Allowed", `${url.pathname} does not accept ${method}; it accepts ${match.allow.join(", ")}.`, { allow: match.allow.join(", "), ...cors.headers });
      return;
    }
    let body: Buffer;
    try {
      body = await readBody(req, limit);
    } catch (error) {
      if (error instanceof RequestTooLarge) {
        sendProblem(res, 413, "Content Too Large", `The request body exceeds the host's limit of ${limit} bytes.`, { connection: "close", ...cors.headers });
        return;
      }
      throw error;
    }
    const { functionName, triggerName } = match.route.target;
    const headers = headersOf(req);
    const http: RpcHttpData = {
      method,
      url: url.toString(),
      headers,
      params: match.params,
      ...(body.length > 0 ? { body: { bytes: body } } : {}),
    };
    const query = Object.fromEntries(url.searchParams);
    const started = performance.now();
    let status = 500;
    try {
      const response = await app.invoke(functionName, {
        inputData: [{ name: triggerName, data: { http } }],
        // What the host's binding data carries for HTTP (the library reads none of it for http).
        triggerMetadata: { Query: { json: JSON.stringify(query) }, Headers: { json: JSON.stringify(headers) }, ...Object.fromEntries(Object.entries(match.params).map(([k, v]) => [k, { string: v }])) },
      });
      status = writeResponse(res, httpResponseOf(response), method, cors.headers);
    } catch (error) {
      log({ level: "error", category: "system", functionName, message: `${method} ${url.pathname} failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}` });
      // The host answers a failed invocation with a bare 500 and keeps the details in its logs.
      if (!res.headersSent) res.writeHead(500, { "content-length": "0", ...cors.headers }).end();
      else res.destroy();
    } finally {
      log({ level: "information", category: "system", functionName, message: `${method} ${url.pathname}${url.search} ${status} ${Math.round(performance.now() - started)} ms` });
    }
  };

  const sockets = new Set<Socket>();
  const server: Server = createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      log({ level: "error", category: "system", message: `request failed: ${error instanceof Error ? error.message : String(error)}` });
      if (!res.headersSent) sendProblem(res, 500, "Internal Server Error", "The local Functions host failed to handle the request.");
    });
  });
  server.on("connection", (socket: Socket) => {
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port, host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  baseUrl = `http://${host.includes(":") ? `[${host}]` : host}:${port}`;
  return {
    url: baseUrl,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const socket of sockets) socket.destroy();
      }),
  };
}
