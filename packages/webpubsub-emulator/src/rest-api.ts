/**
 * The REST data plane that WebPubSubServiceClient (@azure/web-pubsub, api-version 2024-12-01)
 * calls: sends, group/user membership, connection checks and closes, permissions and
 * :generateToken. Every call but the health probe needs a bearer JWT signed with the access key.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { OutboundMessage, type Payload } from "./client-protocol.js";
import type { Hub, Targeting } from "./hub.js";
import { JwtError, signHs256, verifyHs256 } from "./jwt.js";
import { FilterSyntaxError, parseFilter, type ConnectionFilter } from "./odata-filter.js";
import { isPermission } from "./permissions.js";

/** The audience of Entra tokens for Web PubSub: what a TokenCredential-signed token carries. */
export const entraAudience = "https://webpubsub.azure.com";
/** The service's own limit on a message. */
export const maxMessageBytes = 1024 * 1024;

export interface RestContext {
  /** The hub, created on first use; undefined when the emulator does not serve that hub. */
  hub(name: string): Hub | undefined;
  accessKey: string;
  scheme: "http" | "https";
  log: (message: string) => void;
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** The service's rule for hub names. */
export const hubNamePattern = /^[A-Za-z][A-Za-z0-9_`,.[\]]{0,127}$/;

/** True when the request was for this API (even when it failed). */
export async function handleRestRequest(context: RestContext, req: IncomingMessage, res: ServerResponse): Promise<boolean> {
  const url = new URL(req.url ?? "/", `${context.scheme}://${req.headers.host ?? "localhost"}`);
  if (url.pathname === "/api/health") {
    res.writeHead(200).end();
    return true;
  }
  if (!url.pathname.startsWith("/api/hubs/")) return false;
  try {
    authenticate(context, req, url);
    if (!url.searchParams.has("api-version")) throw new HttpError(400, "BadRequest", "the api-version query parameter is required");
    const segments = url.pathname
      .slice("/api/hubs/".length)
      .split("/")
      .map((s) => decodeURIComponent(s));
    const hubName = segments.shift() ?? "";
    if (!hubNamePattern.test(hubName)) throw new HttpError(400, "BadRequest", `invalid hub name ${JSON.stringify(hubName)}`);
    const hub = context.hub(hubName.toLowerCase());
    if (!hub) throw new HttpError(404, "NotFound", `hub ${JSON.stringify(hubName)} does not exist in this emulator`);
    await route(context, hub, req, res, url, segments);
  } catch (error) {
    if (error instanceof HttpError && (error.status === 401 || error.status >= 500)) {
      context.log(`${req.method} ${url.pathname}: ${error.status} ${error.message}`);
    }
    if (error instanceof HttpError) sendError(res, error.status, error.code, error.message, req.method === "HEAD");
    else if (error instanceof FilterSyntaxError) {
      sendError(res, 400, "BadRequest", `Invalid syntax for '${error.subject}': ${error.message} (Parameter 'filter')`, req.method === "HEAD");
    }
    else sendError(res, 500, "InternalServerError", error instanceof Error ? error.message : String(error), req.method === "HEAD");
  }
  return true;
}

function authenticate(context: RestContext, req: IncomingMessage, url: URL): void {
  const header = req.headers.authorization;
  const match = header ? /^Bearer\s+(\S+)$/i.exec(header) : null;
  if (!match) throw new HttpError(401, "Unauthorized", "an Authorization: Bearer <JWT> header is required");
  try {
    // The SDK signs each request with aud = its full URL; an Entra-style token names the service.
    const requestUrl = `${url.protocol}//${url.host}${req.url ?? "/"}`;
    verifyHs256(match[1]!, { key: context.accessKey, audiences: [requestUrl, entraAudience] });
  } catch (error) {
    if (error instanceof JwtError) throw new HttpError(401, "Unauthorized", error.reason);
    throw error;
  }
}

async function route(context: RestContext, hub: Hub, req: IncomingMessage, res: ServerResponse, url: URL, s: string[]): Promise<void> {
  const method = req.method ?? "GET";
  const q = url.searchParams;
  const [a, b, c, d] = s;
  const n = s.length;
  const is = (m: string, length: number) => method === m && n === length;

  // Hub-wide operations.
  if (is("POST", 1) && a === ":send") {
    const payload = await readPayload(req);
    const targets = hub.select("all", targeting(q));
    hub.deliver(targets, new OutboundMessage({ from: "server" }, payload));
    return accepted(res);
  }
  if (is("POST", 1) && a === ":closeConnections") {
    for (const connection of hub.select("all", targeting(q))) hub.remove(connection, q.get("reason") ?? "closed by the server");
    return noContent(res);
  }
  if (is("POST", 1) && (a === ":addToGroups" || a === ":removeFromGroups")) {
    const body = await readJsonObject(req);
    const groups = body["groups"];
    if (!Array.isArray(groups) || groups.some((g) => typeof g !== "string" || !validGroup(g))) {
      throw new HttpError(400, "BadRequest", "'groups' must be an array of group names");
    }
    const filter = typeof body["filter"] === "string" && body["filter"].trim() !== "" ? parseFilter(body["filter"]) : undefined;
    for (const connection of hub.select("all", { filter })) {
      for (const group of groups as string[]) {
        if (a === ":addToGroups") hub.join(connection, group);
        else hub.leave(connection, group);
      }
    }
    return ok(res);
  }
  if (is("POST", 1) && a === ":generateToken") {
    const clientType = q.get("clientType");
    if (clientType !== null && clientType.toLowerCase() !== "default") {
      throw new HttpError(400, "BadRequest", `clientType ${clientType} is not supported by this emulator (only Default)`);
    }
    const minutes = q.has("minutesToExpire") ? Number(q.get("minutesToExpire")) : 60;
    if (!Number.isFinite(minutes) || minutes <= 0) throw new HttpError(400, "BadRequest", "minutesToExpire must be a positive number");
    const claims: Record<string, unknown> = {
      aud: `${url.protocol}//${url.host}/client/hubs/${hub.name}`,
      exp: Math.floor(Date.now() / 1000 + minutes * 60),
    };
    const userId = q.get("userId");
    if (userId) claims["sub"] = userId;
    if (q.getAll("role").length > 0) claims["role"] = q.getAll("role");
    if (q.getAll("group").length > 0) claims["webpubsub.group"] = q.getAll("group");
    return json(res, 200, { token: signHs256(claims, context.accessKey) });
  }

  // Connections.
  if (a === "connections" && b !== undefined) {
    const connection = hub.connections.get(b);
    if (is("HEAD", 2)) return connection ? ok(res) : notFound(res, true);
    if (is("DELETE", 2)) {
      if (connection) hub.remove(connection, q.get("reason") ?? "closed by the server");
      return noContent(res);
    }
    if (is("POST", 3) && c === ":send") {
      const payload = await readPayload(req);
      hub.deliver(hub.select({ connection: b }), new OutboundMessage({ from: "server" }, payload));
      return accepted(res);
    }
    if (is("DELETE", 3) && c === "groups") {
      if (connection) for (const group of [...connection.groups]) hub.leave(connection, group);
      return noContent(res);
    }
  }

  // Groups.
  if (a === "groups" && b !== undefined) {
    if (!validGroup(b)) throw new HttpError(400, "BadRequest", "group names are 1 to 1024 characters");
    if (is("HEAD", 2)) return hub.groupExists(b) ? ok(res) : notFound(res, true);
    if (is("POST", 3) && c === ":send") {
      const payload = await readPayload(req);
      hub.deliver(hub.select({ group: b }, targeting(q)), new OutboundMessage({ from: "group", group: b }, payload));
      return accepted(res);
    }
    if (is("POST", 3) && c === ":closeConnections") {
      for (const connection of hub.select({ group: b }, targeting(q))) hub.remove(connection, q.get("reason") ?? "closed by the server");
      return noContent(res);
    }
    if (is("GET", 3) && c === "connections") return listGroupMembers(res, hub, b, q);
    if (n === 4 && c === "connections" && d !== undefined) {
      const connection = hub.connections.get(d);
      if (method === "PUT") {
        if (!connection) throw new HttpError(404, "NotFound", `connection ${d} does not exist`);
        hub.join(connection, b);
        return ok(res);
      }
      if (method === "DELETE") {
        if (connection) hub.leave(connection, b);
        return noContent(res);
      }
    }
  }

  // Users.
  if (a === "users" && b !== undefined) {
    if (is("HEAD", 2)) return hub.userExists(b) ? ok(res) : notFound(res, true);
    if (is("POST", 3) && c === ":send") {
      const payload = await readPayload(req);
      hub.deliver(hub.select({ user: b }, targeting(q)), new OutboundMessage({ from: "server" }, payload));
      return accepted(res);
    }
    if (is("POST", 3) && c === ":closeConnections") {
      for (const connection of hub.select({ user: b }, targeting(q))) hub.remove(connection, q.get("reason") ?? "closed by the server");
      return noContent(res);
    }
    if (is("DELETE", 3) && c === "groups") {
      hub.removeUserFromAllGroups(b);
      return noContent(res);
    }
    if (n === 4 && c === "groups" && d !== undefined) {
      if (!validGroup(d)) throw new HttpError(400, "BadRequest", "group names are 1 to 1024 characters");
      if (method === "PUT") {
        hub.addUserToGroup(b, d);
        return ok(res);
      }
      if (method === "DELETE") {
        hub.removeUserFromGroup(b, d);
        return noContent(res);
      }
    }
  }

  // Permissions.
  if (a === "permissions" && b !== undefined && c === "connections" && d !== undefined && n === 4) {
    if (!isPermission(b)) throw new HttpError(400, "BadRequest", `unknown permission ${JSON.stringify(b)} (sendToGroup, joinLeaveGroup)`);
    const connection = hub.connections.get(d);
    const target = q.get("targetName") ?? undefined;
    if (method === "HEAD") return connection?.permissions.has(b, target) ? ok(res) : notFound(res, true);
    if (method === "PUT") {
      if (!connection) throw new HttpError(404, "NotFound", `connection ${d} does not exist`);
      connection.permissions.grant(b, target);
      return ok(res);
    }
    if (method === "DELETE") {
      connection?.permissions.revoke(b, target);
      return noContent(res);
    }
  }

  throw new HttpError(404, "NotFound", `no operation ${method} ${url.pathname}`);
}

function listGroupMembers(res: ServerResponse, hub: Hub, group: string, q: URLSearchParams): void {
  const members = hub.groupMembers(group);
  const start = Number(q.get("continuationToken") ?? "0");
  const pageSize = Number(q.get("maxpagesize") ?? "200");
  const top = q.has("top") ? Number(q.get("top")) : Number.POSITIVE_INFINITY;
  if (![start, pageSize].every((v) => Number.isSafeInteger(v) && v >= 0) || pageSize === 0) {
    throw new HttpError(400, "BadRequest", "maxpagesize and continuationToken must be non-negative integers");
  }
  const end = Math.min(start + pageSize, members.length, top);
  const value = members.slice(start, end).map((m) => ({ connectionId: m.id, userId: m.userId }));
  const body: Record<string, unknown> = { value };
  if (end < Math.min(members.length, top)) {
    const next = new URLSearchParams({ "api-version": q.get("api-version") ?? "", maxpagesize: String(pageSize), continuationToken: String(end) });
    if (Number.isFinite(top)) next.set("top", String(top));
    body["nextLink"] = `/api/hubs/${encodeURIComponent(hub.name)}/groups/${encodeURIComponent(group)}/connections?${next}`;
  }
  json(res, 200, body);
}

function targeting(q: URLSearchParams): Targeting {
  const filter = q.get("filter");
  const parsed: ConnectionFilter | undefined = filter && filter.trim() !== "" ? parseFilter(filter) : undefined;
  return { excluded: new Set(q.getAll("excluded")), filter: parsed };
}

function validGroup(group: string): boolean {
  return group.length >= 1 && group.length <= 1024;
}

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > maxMessageBytes) throw new HttpError(413, "PayloadTooLarge", `message is larger than ${maxMessageBytes} bytes`);
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

/** The SDK sends JSON as application/json, strings as text/plain, bytes as octet-stream. */
async function readPayload(req: IncomingMessage): Promise<Payload> {
  const body = await readBody(req);
  const mediaType = (req.headers["content-type"] ?? "application/octet-stream").split(";")[0]!.trim().toLowerCase();
  if (mediaType === "application/json") {
    const text = body.toString("utf8");
    try {
      JSON.parse(text);
    } catch {
      throw new HttpError(400, "BadRequest", "the body is not valid JSON");
    }
    return { dataType: "json", json: text };
  }
  if (mediaType === "text/plain") return { dataType: "text", text: body.toString("utf8") };
  return { dataType: "binary", bytes: body };
}

async function readJsonObject(req: IncomingMessage): Promise<Record<string, unknown>> {
  const text = (await readBody(req)).toString("utf8");
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new HttpError(400, "BadRequest", "the body is not valid JSON");
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) throw new HttpError(400, "BadRequest", "the body must be a JSON object");
  return value as Record<string, unknown>;
}

const ok = (res: ServerResponse) => void res.writeHead(200).end();
const accepted = (res: ServerResponse) => void res.writeHead(202).end();
const noContent = (res: ServerResponse) => void res.writeHead(204).end();
const notFound = (res: ServerResponse, head: boolean) => sendError(res, 404, "NotFound", "not found", head);

function json(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { "content-type": "application/json; charset=utf-8", "content-length": Buffer.byteLength(text) }).end(text);
}

/**
 * An error as the service answers it: a JSON body `{code, message}` sent as text/plain, so the
 * SDK does not deserialize it and RestError.message is the body itself (the SDK's own live tests
 * read `JSON.parse(error.message).message`); the code also goes in x-ms-error-code.
 */
function sendError(res: ServerResponse, status: number, code: string, message: string, head: boolean): void {
  if (res.headersSent) return;
  if (head) {
    res.writeHead(status, { "x-ms-error-code": code }).end();
    return;
  }
  const text = JSON.stringify({ code, message });
  res
    .writeHead(status, { "content-type": "text/plain; charset=utf-8", "content-length": Buffer.byteLength(text), "x-ms-error-code": code })
    .end(text);
}
