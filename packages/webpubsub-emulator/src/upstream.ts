/**
 * Upstream events: the CloudEvents-over-HTTP calls the service makes to an app's event
 * handler (what @azure/web-pubsub-express and the Functions Web PubSub trigger consume).
 * Before the first event to a URL it runs the abuse-protection handshake and sends nothing
 * unless the handler allows this origin.
 */
import { createHmac, randomUUID } from "node:crypto";
import type { Payload } from "./client-protocol.js";

export const systemEvents = ["connect", "connected", "disconnected"] as const;
export type SystemEvent = (typeof systemEvents)[number];

/** Where a hub's events go (the portal's event handler settings). */
export interface EventHandlerSettings {
  hub: string;
  /** Handler URL; `{hub}` and `{event}` are replaced by the hub and event name. */
  urlTemplate: string;
  /** User events to send: `*` for all, or a comma-separated list of names. Absent: none. */
  userEventPattern?: string;
  /** System events to send. Absent: none. */
  systemEvents?: string[];
}

/** The connection an event is about. */
export interface EventConnection {
  hub: string;
  connectionId: string;
  userId: string | undefined;
  subprotocol: string | undefined;
  /** ce-connectionState as last returned by the handler (base64 JSON), round-tripped verbatim. */
  connectionState: string | undefined;
}

export type ConnectOutcome =
  | { kind: "no-handler" }
  | {
      kind: "accepted";
      userId?: string | undefined;
      groups: string[];
      roles: string[];
      subprotocol?: string | undefined;
      connectionState?: string | undefined;
    }
  | { kind: "rejected"; status: number; message: string };

export type UserEventOutcome =
  | { kind: "no-handler" }
  | { kind: "handled"; reply?: Payload | undefined; connectionState?: string | undefined }
  | { kind: "failed"; status: number; message: string };

export interface UpstreamOptions {
  handlers: readonly EventHandlerSettings[];
  accessKey: string;
  /** This service's host (`127.0.0.1:PORT`): WebHook-Request-Origin, checked against the reply. */
  origin: string;
  /** How long to wait for a handler. @default 10000 */
  timeoutMs?: number;
  log: (message: string) => void;
}

export class UpstreamClient {
  private readonly validations = new Map<string, Promise<void>>();
  private readonly timeoutMs: number;

  constructor(private readonly options: UpstreamOptions) {
    this.timeoutMs = options.timeoutMs ?? 10_000;
  }

  /** The handler URL for an event, or undefined when no handler subscribes to it. */
  urlFor(hub: string, event: { system: SystemEvent } | { user: string }): string | undefined {
    for (const handler of this.options.handlers) {
      if (handler.hub.toLowerCase() !== hub) continue;
      const matches =
        "system" in event
          ? (handler.systemEvents ?? []).includes(event.system)
          : userEventMatches(handler.userEventPattern, event.user);
      if (matches) {
        const name = "system" in event ? event.system : event.user;
        return handler.urlTemplate.replaceAll("{hub}", encodeURIComponent(hub)).replaceAll("{event}", encodeURIComponent(name));
      }
    }
    return undefined;
  }

  /** The blocking connect event: the reply decides whether and how the client connects. */
  async connect(connection: EventConnection, body: Record<string, unknown>): Promise<ConnectOutcome> {
    const url = this.urlFor(connection.hub, { system: "connect" });
    if (!url) return { kind: "no-handler" };
    let response: Response;
    try {
      response = await this.post(url, connection, "azure.webpubsub.sys.connect", "connect", {
        contentType: "application/json",
        body: JSON.stringify(body),
      });
    } catch (error) {
      return { kind: "rejected", status: 500, message: `connect event handler failed: ${describe(error)}` };
    }
    const text = await response.text();
    if (response.status >= 400) {
      // A handler's 4xx (401 Unauthorized, 403 Forbidden, 400) is passed on; anything else is our failure.
      const status = response.status < 500 ? response.status : 500;
      return { kind: "rejected", status, message: text || `connect event handler answered ${response.status}` };
    }
    const connectionState = response.headers.get("ce-connectionState") ?? undefined;
    if (response.status === 204 || text.trim() === "") return { kind: "accepted", groups: [], roles: [], connectionState };
    let reply: unknown;
    try {
      reply = JSON.parse(text);
    } catch {
      return { kind: "rejected", status: 500, message: "connect event handler replied with invalid JSON" };
    }
    if (typeof reply !== "object" || reply === null) {
      return { kind: "rejected", status: 500, message: "connect event handler reply must be a JSON object" };
    }
    const r = reply as Record<string, unknown>;
    return {
      kind: "accepted",
      userId: typeof r["userId"] === "string" ? r["userId"] : undefined,
      groups: stringArray(r["groups"]),
      roles: stringArray(r["roles"]),
      subprotocol: typeof r["subprotocol"] === "string" ? r["subprotocol"] : undefined,
      connectionState,
    };
  }

  /** A user event (a client's `event` or `invoke` message); the reply goes back to that client. */
  async userEvent(connection: EventConnection, event: string, payload: Payload | undefined): Promise<UserEventOutcome> {
    const url = this.urlFor(connection.hub, { user: event });
    if (!url) return { kind: "no-handler" };
    const body =
      payload === undefined || payload.dataType === "text"
        ? { contentType: "text/plain; charset=utf-8", body: payload?.text ?? "" }
        : payload.dataType === "json"
          ? { contentType: "application/json", body: payload.json }
          : { contentType: "application/octet-stream", body: payload.bytes };
    let response: Response;
    try {
      response = await this.post(url, connection, `azure.webpubsub.user.${event}`, event, body);
    } catch (error) {
      return { kind: "failed", status: 500, message: `event handler failed: ${describe(error)}` };
    }
    const bytes = Buffer.from(await response.arrayBuffer());
    if (response.status >= 400) {
      return { kind: "failed", status: response.status, message: bytes.toString("utf8") || `event handler answered ${response.status}` };
    }
    const connectionState = response.headers.get("ce-connectionState") ?? undefined;
    if (response.status === 204 || bytes.length === 0) return { kind: "handled", connectionState };
    const mediaType = (response.headers.get("content-type") ?? "application/octet-stream").split(";")[0]!.trim().toLowerCase();
    let reply: Payload;
    if (mediaType === "application/json") {
      const text = bytes.toString("utf8");
      try {
        JSON.parse(text);
      } catch {
        return { kind: "failed", status: 500, message: "event handler replied with invalid JSON" };
      }
      reply = { dataType: "json", json: text };
    } else if (mediaType === "text/plain") {
      reply = { dataType: "text", text: bytes.toString("utf8") };
    } else {
      reply = { dataType: "binary", bytes };
    }
    return { kind: "handled", reply, connectionState };
  }

  /** Non-blocking system events (connected, disconnected): failures are logged, never thrown. */
  notify(connection: EventConnection, event: "connected" | "disconnected", body: Record<string, unknown>): Promise<void> {
    const url = this.urlFor(connection.hub, { system: event });
    if (!url) return Promise.resolve();
    return this.post(url, connection, `azure.webpubsub.sys.${event}`, event, {
      contentType: "application/json",
      body: JSON.stringify(body),
    }).then(
      async (response) => {
        await response.arrayBuffer();
        if (response.status >= 400) this.options.log(`${event} event handler answered ${response.status}`);
      },
      (error: unknown) => this.options.log(`${event} event handler failed: ${describe(error)}`),
    );
  }

  private async post(
    url: string,
    connection: EventConnection,
    type: string,
    eventName: string,
    content: { contentType: string; body: string | Buffer },
  ): Promise<Response> {
    await this.validate(url);
    const headers: Record<string, string> = {
      "content-type": content.contentType,
      "webhook-request-origin": this.options.origin,
      "ce-specversion": "1.0",
      "ce-type": type,
      "ce-source": `/hubs/${connection.hub}/client/${connection.connectionId}`,
      "ce-id": randomUUID(),
      "ce-time": new Date().toISOString(),
      "ce-awpsversion": "1.0",
      "ce-hub": connection.hub,
      "ce-connectionId": connection.connectionId,
      "ce-eventName": eventName,
      "ce-signature": signatureFor(this.options.accessKey, connection.connectionId),
    };
    if (connection.userId !== undefined) headers["ce-userId"] = connection.userId;
    if (connection.subprotocol !== undefined) headers["ce-subprotocol"] = connection.subprotocol;
    if (connection.connectionState !== undefined) headers["ce-connectionState"] = connection.connectionState;
    return fetch(url, {
      method: "POST",
      headers,
      body: content.body,
      signal: AbortSignal.timeout(this.timeoutMs),
    });
  }

  /** Abuse protection (CloudEvents webhook validation), once per URL while it keeps passing. */
  private validate(url: string): Promise<void> {
    let validation = this.validations.get(url);
    if (!validation) {
      validation = this.runValidation(url);
      this.validations.set(url, validation);
      // A failed handshake is retried on the next event, so a handler started later still works.
      validation.catch(() => this.validations.delete(url));
    }
    return validation;
  }

  private async runValidation(url: string): Promise<void> {
    const response = await fetch(url, {
      method: "OPTIONS",
      headers: { "webhook-request-origin": this.options.origin, "ce-awpsversion": "1.0" },
      signal: AbortSignal.timeout(this.timeoutMs),
    });
    await response.arrayBuffer();
    const allowed = (response.headers.get("webhook-allowed-origin") ?? "")
      .split(",")
      .map((s) => s.trim().toLowerCase())
      .filter((s) => s.length > 0);
    if (response.status >= 400 || !(allowed.includes("*") || allowed.includes(this.options.origin.toLowerCase()))) {
      throw new Error(
        `abuse protection: ${url} answered ${response.status} with WebHook-Allowed-Origin ${JSON.stringify(allowed.join(","))}, ` +
          `which does not allow ${this.options.origin}`,
      );
    }
  }
}

/** ce-signature: lets a handler check the event came from a service holding the access key. */
export function signatureFor(accessKey: string, connectionId: string): string {
  return `sha256=${createHmac("sha256", accessKey).update(connectionId).digest("hex")}`;
}

function userEventMatches(pattern: string | undefined, event: string): boolean {
  if (pattern === undefined || pattern.trim() === "") return false;
  return pattern.split(",").some((p) => {
    const name = p.trim();
    return name === "*" || name === event;
  });
}

function stringArray(value: unknown): string[] {
  return Array.isArray(value) ? value.filter((v): v is string => typeof v === "string") : [];
}

function describe(error: unknown): string {
  if (error instanceof Error) {
    const cause = error.cause instanceof Error ? `: ${error.cause.message}` : "";
    return `${error.message}${cause}`;
  }
  return String(error);
}
