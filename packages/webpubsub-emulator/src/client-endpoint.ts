/**
 * The client endpoint `/client/hubs/{hub}`: checks the access token (or, for a reliable
 * reconnect, the reconnection token) before the WebSocket upgrade, runs the blocking connect
 * event, then serves the JSON subprotocols or raw frames on the open socket.
 */
import type { IncomingMessage } from "node:http";
import type { Duplex } from "node:stream";
import { timingSafeEqual } from "node:crypto";
import { WebSocketServer, type RawData, type WebSocket } from "ws";
import {
  ackMessage,
  ClientMessageError,
  invokeResponseMessage,
  jsonSubprotocol,
  OutboundMessage,
  parseClientMessage,
  pongMessage,
  protocolOf,
  reliableJsonSubprotocol,
  type AckErrorName,
  type ClientMessage,
  type Payload,
} from "./client-protocol.js";
import { closeCodeRemoved, Connection, type Hub } from "./hub.js";
import { JwtError, verifyHs256, type JwtClaims } from "./jwt.js";
import type { EventConnection, UpstreamClient } from "./upstream.js";

export interface ClientEndpointContext {
  hub(name: string): Hub | undefined;
  accessKey: string;
  scheme: "http" | "https";
  /** The advertised endpoint (`http://127.0.0.1:PORT/`): token audiences may name it. */
  endpoint: () => string;
  upstream: UpstreamClient;
  /** How long a dropped reliable connection waits for its client. */
  reconnectWindowMs: number;
  /** Browser origins allowed to connect (see WebPubSubEmulatorOptions.allowedOrigins). @default any */
  allowedOrigins?: readonly string[];
  log: (message: string) => void;
}

/** WebSocket close code for an abnormal drop (no close frame): the only one a reliable client recovers from. */
const closeCodeAbnormal = 1006;

export class ClientEndpoint {
  private readonly wss: WebSocketServer;
  /** The subprotocol picked for each pending upgrade, read back by ws's handleProtocols hook. */
  private readonly chosenProtocols = new WeakMap<IncomingMessage, string | false>();
  private readonly openSockets = new Set<WebSocket>();

  constructor(private readonly context: ClientEndpointContext) {
    this.wss = new WebSocketServer({
      noServer: true,
      maxPayload: 1024 * 1024,
      clientTracking: false,
      handleProtocols: (_offered, req) => this.chosenProtocols.get(req) ?? false,
    });
  }

  /** True when the request was for the client endpoint (it has then been answered). */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): boolean {
    const url = new URL(req.url ?? "/", `${this.context.scheme}://${req.headers.host ?? "localhost"}`);
    const match = /^\/client\/hubs\/([^/]+)\/?$/.exec(url.pathname);
    if (!match) return false;
    this.upgrade(req, socket, head, url, decodeURIComponent(match[1]!)).catch((error: unknown) => {
      this.context.log(`client upgrade failed: ${error instanceof Error ? error.message : String(error)}`);
      refuseUpgrade(socket, 500, "internal error");
    });
    return true;
  }

  private async upgrade(req: IncomingMessage, socket: Duplex, head: Buffer, url: URL, hubName: string): Promise<void> {
    const refuse = (status: number, message: string) => {
      this.context.log(`refused a client of hub ${hubName}: ${status} ${message}`);
      refuseUpgrade(socket, status, message);
    };
    const origin = req.headers.origin;
    if (origin !== undefined && this.context.allowedOrigins && !this.context.allowedOrigins.includes(origin)) {
      return refuse(403, "this origin may not connect to the emulator");
    }
    const hub = this.context.hub(hubName.toLowerCase());
    if (!hub) return refuse(404, `hub ${hubName} does not exist in this emulator`);
    const offered = (req.headers["sec-websocket-protocol"] ?? "")
      .split(",")
      .map((p) => p.trim())
      .filter((p) => p.length > 0);

    const resumeId = url.searchParams.get("awps_connection_id");
    if (resumeId !== null) return this.resume(req, socket, head, hub, resumeId, url.searchParams.get("awps_reconnection_token") ?? "", offered);

    const token = url.searchParams.get("access_token") ?? /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? "")?.[1];
    if (!token) return refuse(401, "an access_token query parameter is required");
    let claims: JwtClaims;
    try {
      claims = verifyHs256(token, {
        key: this.context.accessKey,
        audiences: [`${url.protocol}//${url.host}/client/hubs/${hubName}`, `${this.context.endpoint()}client/hubs/${hubName}`],
      });
    } catch (error) {
      if (error instanceof JwtError) return refuse(401, error.reason);
      throw error;
    }

    let userId = typeof claims.sub === "string" && claims.sub !== "" ? claims.sub : undefined;
    const roles = claimStrings(claims["role"]);
    const groups = claimStrings(claims["webpubsub.group"]);
    let subprotocol: string | undefined = offered.find((p) => p === reliableJsonSubprotocol || p === jsonSubprotocol);
    let connectionState: string | undefined;

    // Chosen before the upgrade so the connect event can name it.
    const connectionId = Connection.newId();
    const eventConnection: EventConnection = { hub: hub.name, connectionId, userId, subprotocol, connectionState: undefined };
    const outcome = await this.context.upstream.connect(eventConnection, {
      claims: claimsForEvent(claims),
      query: queryForEvent(url),
      headers: headersForEvent(req),
      subprotocols: offered,
      clientCertificates: [],
    });
    if (outcome.kind === "rejected") return refuse(outcome.status, outcome.message);
    if (outcome.kind === "accepted") {
      if (outcome.userId !== undefined) userId = outcome.userId;
      roles.push(...outcome.roles);
      groups.push(...outcome.groups);
      connectionState = outcome.connectionState;
      if (outcome.subprotocol !== undefined) {
        if (!offered.includes(outcome.subprotocol)) {
          return refuse(500, `the connect handler chose subprotocol ${outcome.subprotocol}, which the client did not offer`);
        }
        subprotocol = outcome.subprotocol;
      }
    }

    this.chosenProtocols.set(req, subprotocol ?? false);
    this.wss.handleUpgrade(req, socket, head, (ws) => {
      const accepted = new Connection({ userId, protocol: protocolOf(subprotocol), subprotocol, roles, connectionState }, connectionId);
      hub.add(accepted, groups);
      this.serve(hub, accepted, ws);
      accepted.attach(ws);
      accepted.connectedEvent = this.context.upstream.notify(eventFor(hub, accepted), "connected", {});
    });
  }

  private resume(
    req: IncomingMessage,
    socket: Duplex,
    head: Buffer,
    hub: Hub,
    connectionId: string,
    reconnectionToken: string,
    offered: string[],
  ): void {
    const connection = hub.connections.get(connectionId);
    const valid =
      connection !== undefined &&
      connection.protocol === "reliable" &&
      connection.reconnectionToken !== undefined &&
      sameSecret(connection.reconnectionToken, reconnectionToken) &&
      offered.includes(reliableJsonSubprotocol);
    this.chosenProtocols.set(req, offered.includes(reliableJsonSubprotocol) ? reliableJsonSubprotocol : (offered[0] ?? false));
    this.wss.handleUpgrade(req, socket, head, (ws) => {
      if (!valid || connection.removed) {
        this.track(ws);
        // 1008 tells the client the connection is gone, so it starts a new one instead of retrying.
        ws.close(closeCodeRemoved, "connection not found or not recoverable");
        return;
      }
      this.serve(hub, connection, ws);
      connection.attach(ws);
    });
  }

  private serve(hub: Hub, connection: Connection, ws: WebSocket): void {
    this.track(ws);
    let queue = Promise.resolve();
    ws.on("message", (data: RawData, isBinary: boolean) => {
      // Messages of one connection are handled in order, including those waiting on the event handler.
      queue = queue.then(() => this.onMessage(hub, connection, toBuffer(data), isBinary)).catch((error: unknown) => {
        this.context.log(`connection ${connection.id}: ${error instanceof Error ? error.message : String(error)}`);
      });
    });
    ws.on("error", (error) => this.context.log(`connection ${connection.id}: ${error.message}`));
    ws.on("close", (code: number) => {
      // A socket replaced by a reconnect, or closed by the service, changes nothing here.
      if (connection.removed || !connection.owns(ws)) return;
      if (connection.protocol === "reliable" && code === closeCodeAbnormal) {
        connection.detach(this.context.reconnectWindowMs, () => hub.remove(connection, "the client did not reconnect in time"));
        return;
      }
      hub.remove(connection);
    });
  }

  private async onMessage(hub: Hub, connection: Connection, data: Buffer, isBinary: boolean): Promise<void> {
    if (connection.protocol === "simple") {
      // Plain WebSocket clients: every frame is the user event "message".
      const payload: Payload = isBinary ? { dataType: "binary", bytes: data } : { dataType: "text", text: data.toString("utf8") };
      const outcome = await this.context.upstream.userEvent(eventFor(hub, connection), "message", payload);
      if (outcome.kind === "handled") {
        if (outcome.connectionState !== undefined) connection.connectionState = outcome.connectionState;
        if (outcome.reply) hub.deliver([connection], new OutboundMessage({ from: "server" }, outcome.reply));
      } else if (outcome.kind === "failed") {
        this.context.log(`connection ${connection.id}: message event failed: ${outcome.message}`);
      }
      return;
    }
    if (isBinary) {
      this.context.log(`connection ${connection.id}: binary frame ignored (JSON subprotocol)`);
      return;
    }
    let message: ClientMessage;
    try {
      message = parseClientMessage(data.toString("utf8"));
    } catch (error) {
      if (!(error instanceof ClientMessageError)) throw error;
      if (error.ackId !== undefined) connection.sendControl(ackMessage(error.ackId, { name: "BadRequest", message: error.message }));
      else if (error.invocationId !== undefined) {
        connection.sendControl(invokeResponseMessage(error.invocationId, { error: { name: "BadRequest", message: error.message } }));
      } else this.context.log(`connection ${connection.id}: ${error.message}`);
      return;
    }
    await this.dispatch(hub, connection, message);
  }

  private async dispatch(hub: Hub, connection: Connection, message: ClientMessage): Promise<void> {
    switch (message.type) {
      case "ping":
        return connection.sendControl(pongMessage);
      case "sequenceAck":
        return connection.acknowledge(message.sequenceId);
      case "cancelInvocation":
        return;
      case "joinGroup":
      case "leaveGroup":
        return this.withAck(connection, message.ackId, async () => {
          if (!connection.permissions.has("joinLeaveGroup", message.group)) {
            return { name: "Forbidden", message: `the connection has no permission to join or leave group ${message.group}` };
          }
          if (message.type === "joinGroup") hub.join(connection, message.group);
          else hub.leave(connection, message.group);
          return undefined;
        });
      case "sendToGroup":
        return this.withAck(connection, message.ackId, async () => {
          if (!connection.permissions.has("sendToGroup", message.group)) {
            return { name: "Forbidden", message: `the connection has no permission to send to group ${message.group}` };
          }
          const targets = hub.select({ group: message.group }, message.noEcho ? { excluded: new Set([connection.id]) } : {});
          const outbound = new OutboundMessage({ from: "group", group: message.group, fromUserId: connection.userId }, message.payload);
          hub.deliver(targets, outbound);
          return undefined;
        });
      case "event":
        return this.withAck(connection, message.ackId, async () => {
          const outcome = await this.context.upstream.userEvent(eventFor(hub, connection), message.event, message.payload);
          if (outcome.kind === "failed") return { name: "InternalServerError", message: outcome.message };
          if (outcome.kind === "handled") {
            if (outcome.connectionState !== undefined) connection.connectionState = outcome.connectionState;
            if (outcome.reply) hub.deliver([connection], new OutboundMessage({ from: "server" }, outcome.reply));
          }
          return undefined;
        });
      case "invoke": {
        const outcome = await this.context.upstream.userEvent(eventFor(hub, connection), message.event, message.payload);
        if (outcome.kind === "handled") {
          if (outcome.connectionState !== undefined) connection.connectionState = outcome.connectionState;
          connection.sendControl(invokeResponseMessage(message.invocationId, { payload: outcome.reply }));
        } else {
          const error =
            outcome.kind === "failed"
              ? { name: "InternalServerError", message: outcome.message }
              : { name: "NotFound", message: `no event handler for event ${message.event}` };
          connection.sendControl(invokeResponseMessage(message.invocationId, { error }));
        }
        return;
      }
    }
  }

  /** Runs an action that the client may want acknowledged; a resent ackId that succeeded is a Duplicate. */
  private async withAck(
    connection: Connection,
    ackId: number | undefined,
    action: () => Promise<{ name: AckErrorName; message: string } | undefined>,
  ): Promise<void> {
    if (ackId !== undefined && connection.isDuplicateAck(ackId)) {
      connection.sendControl(ackMessage(ackId, { name: "Duplicate", message: `message with ackId ${ackId} has been processed` }));
      return;
    }
    const error = await action();
    if (ackId === undefined) return;
    if (!error) connection.rememberAck(ackId);
    connection.sendControl(ackMessage(ackId, error));
  }

  private track(ws: WebSocket): void {
    this.openSockets.add(ws);
    ws.once("close", () => this.openSockets.delete(ws));
  }

  /**
   * Waits for every socket to finish its close handshake (the hubs have sent the close frames),
   * then cuts the ones whose client did not answer within `timeoutMs`.
   */
  async drain(timeoutMs: number): Promise<void> {
    const closing = [...this.openSockets].map((ws) => new Promise<void>((resolve) => ws.once("close", () => resolve())));
    const timer = new Promise<void>((resolve) => setTimeout(resolve, timeoutMs).unref());
    await Promise.race([Promise.all(closing), timer]);
    for (const ws of this.openSockets) ws.terminate();
    this.wss.close();
  }
}

function eventFor(hub: Hub, connection: Connection): EventConnection {
  return {
    hub: hub.name,
    connectionId: connection.id,
    userId: connection.userId,
    subprotocol: connection.subprotocol,
    connectionState: connection.connectionState,
  };
}

/** Answers a WebSocket upgrade with a plain HTTP error and closes the socket. */
function refuseUpgrade(socket: Duplex, status: number, message: string): void {
  if (!socket.writable) return void socket.destroy();
  const body = JSON.stringify({ code: statusText(status), message });
  socket.end(
    `HTTP/1.1 ${status} ${statusText(status)}\r\nConnection: close\r\nContent-Type: application/json; charset=utf-8\r\n` +
      `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
  );
}

function statusText(status: number): string {
  const texts: Record<number, string> = { 400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound", 500: "InternalServerError" };
  return texts[status] ?? "Error";
}

function sameSecret(expected: string, actual: string): boolean {
  const a = Buffer.from(expected);
  const b = Buffer.from(actual);
  return a.length === b.length && timingSafeEqual(a, b);
}

function claimStrings(value: unknown): string[] {
  if (typeof value === "string") return [value];
  return Array.isArray(value) ? value.filter((v): v is string => typeof v === "string") : [];
}

function claimsForEvent(claims: JwtClaims): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const [name, value] of Object.entries(claims)) {
    out[name] = Array.isArray(value) ? value.map(String) : [String(value)];
  }
  return out;
}

function queryForEvent(url: URL): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const [name, value] of url.searchParams) {
    if (name === "access_token") continue;
    (out[name] ??= []).push(value);
  }
  return out;
}

function headersForEvent(req: IncomingMessage): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const [name, value] of Object.entries(req.headersDistinct)) {
    if (value && name !== "authorization") out[name] = value;
  }
  return out;
}

function toBuffer(data: RawData): Buffer {
  if (Buffer.isBuffer(data)) return data;
  if (Array.isArray(data)) return Buffer.concat(data);
  return Buffer.from(data);
}
