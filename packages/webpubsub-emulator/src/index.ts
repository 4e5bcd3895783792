/**
 * A local Azure Web PubSub service that the real SDKs accept unchanged: the REST data plane of
 * @azure/web-pubsub, the client endpoint of @azure/web-pubsub-client (JSON and reliable JSON
 * subprotocols, plain WebSockets) and upstream CloudEvents to event handlers.
 *
 * Over plain http the server SDK needs `{ allowInsecureConnection: true }`:
 *   new WebPubSubServiceClient(connectionString, "jobs", { allowInsecureConnection: true })
 * With `tls` the endpoint is https/wss and no flag is needed once the certificate is trusted.
 */
import { randomBytes } from "node:crypto";
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import type { AddressInfo } from "node:net";
import type { Duplex } from "node:stream";
import { ClientEndpoint } from "./client-endpoint.js";
import { defaultReconnectWindowMs, Hub } from "./hub.js";
import { handleRestRequest, hubNamePattern } from "./rest-api.js";
import { systemEvents, UpstreamClient, type EventHandlerSettings } from "./upstream.js";

export type { EventHandlerSettings } from "./upstream.js";

export interface WebPubSubEmulatorOptions {
  /** Port to listen on. @default 0 (a free port) */
  port?: number;
  /** Interface to listen on. @default "127.0.0.1" */
  host?: string;
  /** Hubs that exist; others answer 404. @default any hub exists */
  hubs?: string[];
  /** The access key every token is signed with. @default a random key */
  accessKey?: string;
  /** Upstream event handlers, checked in order; the first that subscribes to an event gets it. */
  eventHandlers?: EventHandlerSettings[];
  /** Serve https/wss with this PEM certificate and key. @default plain http/ws */
  tls?: { cert: string; key: string };
  /** How long a reliable connection whose network dropped waits for its client to resume it. @default 60000 */
  reconnectWindowMs?: number;
  /** Diagnostics (refused tokens, failing handlers). @default silent */
  log?: (message: string) => void;
  /**
   * Browser origins whose pages may open client connections: a WebSocket upgrade that carries
   * another Origin header is refused with 403 (one without, from a non-browser client, is served).
   * Beyond the service, which does not check Origin: on a developer's machine it keeps a page from
   * some other site from listening to the local hubs. @default any origin
   */
  allowedOrigins?: readonly string[];
}

export interface WebPubSubEmulator {
  /** `Endpoint=http://127.0.0.1:PORT;AccessKey=KEY;Version=1.0;`, what the SDKs take. */
  connectionString: string;
  /** `http://127.0.0.1:PORT` (or https). */
  endpoint: string;
  port: number;
  /** Closes every client with a disconnected message and a close frame (1008), then the listener. */
  stop(): Promise<void>;
}

/** How long stop() waits for clients to answer the close frame before cutting them. */
const closeHandshakeTimeoutMs = 1_000;

export async function startWebPubSubEmulator(options: WebPubSubEmulatorOptions = {}): Promise<WebPubSubEmulator> {
  const accessKey = options.accessKey ?? randomBytes(32).toString("base64");
  if (accessKey.length === 0 || accessKey.includes(";")) throw new Error("accessKey must be non-empty and contain no ';'");
  for (const hub of options.hubs ?? []) {
    if (!hubNamePattern.test(hub)) throw new Error(`hub name ${JSON.stringify(hub)} is invalid (a letter, then up to 127 letters, digits or _ \` , . [ ])`);
  }
  for (const handler of options.eventHandlers ?? []) validateEventHandler(handler);
  const host = options.host ?? "127.0.0.1";
  const scheme = options.tls ? "https" : "http";
  const log = options.log ?? (() => {});
  const allowedHubs = options.hubs?.map((h) => h.toLowerCase());
  const hubs = new Map<string, Hub>();
  let stopping = false;
  let endpoint = "";

  const upstream = new UpstreamClient({
    handlers: options.eventHandlers ?? [],
    accessKey,
    get origin() {
      return new URL(endpoint).host;
    },
    log,
  });

  const hubNamed = (name: string): Hub | undefined => {
    if (allowedHubs && !allowedHubs.includes(name)) return undefined;
    let hub = hubs.get(name);
    if (!hub) {
      hub = new Hub(name, (connection, reason) => {
        if (stopping) return;
        const event = {
          hub: name,
          connectionId: connection.id,
          userId: connection.userId,
          subprotocol: connection.subprotocol,
          connectionState: connection.connectionState,
        };
        void connection.connectedEvent.then(() => upstream.notify(event, "disconnected", reason === undefined ? {} : { reason }));
      });
      hubs.set(name, hub);
    }
    return hub;
  };

  const clients = new ClientEndpoint({
    hub: hubNamed,
    accessKey,
    scheme,
    endpoint: () => `${endpoint}/`,
    upstream,
    reconnectWindowMs: options.reconnectWindowMs ?? defaultReconnectWindowMs,
    ...(options.allowedOrigins ? { allowedOrigins: options.allowedOrigins } : {}),
    log,
  });
  const onRequest = (req: IncomingMessage, res: ServerResponse) => {
    handleRestRequest({ hub: hubNamed, accessKey, scheme, log }, req, res).then(
      (handled) => {
        if (!handled) res.writeHead(404, { "content-type": "application/json" }).end(JSON.stringify({ code: "NotFound", message: `no route ${req.url}` }));
      },
      (error: unknown) => {
        log(`request failed: ${error instanceof Error ? error.message : String(error)}`);
        if (!res.headersSent) res.writeHead(500).end();
      },
    );
  };
  const server: Server = options.tls ? createHttpsServer({ cert: options.tls.cert, key: options.tls.key }, onRequest) : createHttpServer(onRequest);
  server.on("upgrade", (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    if (stopping || !clients.handleUpgrade(req, socket, head)) {
      socket.end("HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
    }
  });

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port ?? 0, host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const advertisedHost = host === "0.0.0.0" || host === "::" ? "127.0.0.1" : host.includes(":") ? `[${host}]` : host;
  endpoint = `${scheme}://${advertisedHost}:${port}`;

  return {
    connectionString: `Endpoint=${endpoint};AccessKey=${accessKey};Version=1.0;`,
    endpoint,
    port,
    async stop() {
      if (stopping) return;
      stopping = true;
      for (const hub of hubs.values()) {
        for (const connection of [...hub.connections.values()]) hub.remove(connection, "the service is stopping");
      }
      await clients.drain(closeHandshakeTimeoutMs);
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}

/** Catches a mistyped handler at start-up rather than as events that silently go nowhere. */
function validateEventHandler(handler: EventHandlerSettings): void {
  let url: URL | undefined;
  try {
    url = new URL(handler.urlTemplate.replaceAll("{hub}", "hub").replaceAll("{event}", "event"));
  } catch {
    url = undefined;
  }
  if (!url || (url.protocol !== "http:" && url.protocol !== "https:")) {
    throw new Error(`event handler for hub ${handler.hub}: urlTemplate ${JSON.stringify(handler.urlTemplate)} is not an absolute http(s) URL`);
  }
  const unknown = (handler.systemEvents ?? []).filter((e) => !(systemEvents as readonly string[]).includes(e));
  if (unknown.length > 0) {
    throw new Error(`event handler for hub ${handler.hub}: unknown system events ${unknown.join(", ")} (supported: ${systemEvents.join(", ")})`);
  }
}
