/**
 * Upstream CloudEvents, received by the real @azure/web-pubsub-express handler: the
 * abuse-protection handshake, the blocking connect event (accept with userId/groups/roles, or
 * reject), connected/disconnected, and user events whose reply goes back to the client.
 */
import { createHmac } from "node:crypto";
import { once } from "node:events";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { WebPubSubServiceClient } from "@azure/web-pubsub";
import { SendMessageError, WebPubSubClient } from "@azure/web-pubsub-client";
import { WebPubSubEventHandler, type ConnectionContext, type WebPubSubEventHandlerOptions } from "@azure/web-pubsub-express";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { startWebPubSubEmulator, type WebPubSubEmulator } from "../src/index.js";
import { connectClient, serviceClient, stopAllClients, waitFor } from "../src/testing.js";
import { settle } from "./kit.js";

const accessKey = "upstream-test-key";
let emulator: WebPubSubEmulator;
let handlerServer: Server;
let handlers: WebPubSubEventHandler[] = [];
/** Everything the handlers saw, in order. */
let seen: { event: string; context: ConnectionContext; signatureValid: boolean; detail?: unknown }[] = [];
let preflights: (string | undefined)[] = [];

/** What the express middleware needs of a request, supplied by a bare node server (no express here). */
type MiddlewareRequest = IncomingMessage & { baseUrl: string; path: string };

beforeAll(async () => {
  handlerServer = createServer((req: IncomingMessage, res: ServerResponse) => {
    const request = Object.assign(req, { baseUrl: "", path: new URL(req.url ?? "/", "http://handler").pathname }) as MiddlewareRequest;
    if (req.method === "OPTIONS") preflights.push(req.headers["webhook-request-origin"] as string | undefined);
    const chain = [...handlers.map((h) => h.getMiddleware())];
    const next = (): void => {
      const middleware = chain.shift();
      if (middleware) void middleware(request, res, next);
      else res.writeHead(404).end();
    };
    next();
  });
  await new Promise<void>((resolve) => handlerServer.listen(0, "127.0.0.1", resolve));
  const handlerBase = `http://127.0.0.1:${(handlerServer.address() as AddressInfo).port}`;
  emulator = await startWebPubSubEmulator({
    accessKey,
    eventHandlers: [
      { hub: "events", urlTemplate: `${handlerBase}/api/webpubsub/hubs/{hub}/`, userEventPattern: "echo,fail,binary,message", systemEvents: ["connect", "connected", "disconnected"] },
      { hub: "guarded", urlTemplate: `${handlerBase}/guarded/{event}`, systemEvents: ["connect"] },
    ],
  });
  handlers = [
    handlerFor("events", { allowedEndpoints: [emulator.endpoint] }),
    handlerFor("guarded", { path: "/guarded", allowedEndpoints: ["https://some-other-service.webpubsub.azure.com"] }),
  ];
});
afterEach(async () => {
  await stopAllClients();
  await settle(); // let the disconnected events of this test land before the next one starts
  seen = [];
  preflights = [];
});
afterAll(async () => {
  await emulator.stop();
  await new Promise<void>((resolve) => handlerServer.close(() => resolve()));
});

/** A copy: the handler mutates context.states through setState after we record it. */
const snapshot = (context: ConnectionContext): ConnectionContext => ({ ...context, states: { ...context.states } });

const validSignature = (context: ConnectionContext) =>
  context.signature === `sha256=${createHmac("sha256", accessKey).update(context.connectionId).digest("hex")}`;

function handlerFor(hub: string, options: WebPubSubEventHandlerOptions): WebPubSubEventHandler {
  return new WebPubSubEventHandler(hub, {
    ...options,
    handleConnect(req, res) {
      seen.push({ event: "connect", context: snapshot(req.context), signatureValid: validSignature(req.context), detail: req.query });
      const wish = req.query?.["wish"]?.[0];
      if (wish === "reject") return res.fail(401, "not you");
      res.setState("plan", "gold");
      res.success({ userId: "from-handler", groups: ["handler-group"], roles: ["webpubsub.sendToGroup.handler-group"] });
    },
    onConnected(req) {
      seen.push({ event: "connected", context: snapshot(req.context), signatureValid: validSignature(req.context) });
    },
    onDisconnected(req) {
      seen.push({ event: "disconnected", context: snapshot(req.context), signatureValid: validSignature(req.context), detail: req.reason });
    },
    handleUserEvent(req, res) {
      seen.push({ event: `user.${req.context.eventName}`, context: snapshot(req.context), signatureValid: validSignature(req.context), detail: req.data });
      if (req.context.eventName === "fail") return res.fail(500, "handler broke");
      // Typed as ArrayBuffer, but handed to node's res.end(), which needs a Buffer.
      if (req.context.eventName === "binary") return res.success(Buffer.from([7, 7, 7]) as unknown as ArrayBuffer, "binary");
      res.setState("echoes", ((req.context.states["echoes"] as number | undefined) ?? 0) + 1);
      if (req.dataType === "json") res.success(JSON.stringify({ echoed: req.data }), "json");
      else res.success(`echo: ${String(req.data)}`, "text");
    },
  });
}

function service(hub: string): WebPubSubServiceClient {
  return serviceClient(emulator.connectionString, hub);
}

async function connectWithQuery(hub: string, query: string) {
  const client = new WebPubSubClient(
    { getClientAccessUrl: async () => `${(await service(hub).getClientAccessToken({ userId: "token-user" })).url}&${query}` },
    { autoReconnect: false, keepAliveIntervalInMs: 0, keepAliveTimeoutInMs: 0, messageRetryOptions: { maxRetries: 0 } },
  );
  return client;
}

describe("abuse protection", () => {
  it("asks the handler first and sends nothing to a handler that does not allow this origin", async () => {
    const client = await connectWithQuery("guarded", "wish=hello");
    await expect(client.start()).rejects.toThrow(/500/);
    expect(preflights).toContain(new URL(emulator.endpoint).host);
    expect(seen).toEqual([]);
  });
});

describe("connect", () => {
  it("lets the connect handler set the user, groups and roles, and signs every event", async () => {
    const client = await connectClient(service("events"), { userId: "token-user" }, { messageRetryOptions: { maxRetries: 0 } });
    expect(client.userId).toBe("from-handler");
    await waitFor(() => seen.some((e) => e.event === "connected"), "the connected event");
    const connect = seen.find((e) => e.event === "connect");
    expect(connect?.context).toMatchObject({ hub: "events", connectionId: client.connectionId, userId: "token-user" });
    expect(seen.find((e) => e.event === "connected")?.context).toMatchObject({ userId: "from-handler", states: { plan: "gold" } });
    expect(seen.every((e) => e.signatureValid)).toBe(true);

    // The handler's groups and roles apply: it can send to handler-group, and nowhere else.
    await client.client.sendToGroup("handler-group", "hello", "text");
    await waitFor(() => client.groupMessages.length === 1, "the group message");
    await expect(client.client.sendToGroup("elsewhere", "no", "text")).rejects.toMatchObject({ errorDetail: { name: "Forbidden" } });
  });

  it("refuses the upgrade with the handler's 401", async () => {
    const client = await connectWithQuery("events", "wish=reject");
    await expect(client.start()).rejects.toThrow(/401/);
    await settle();
    expect(seen.map((e) => e.event)).toEqual(["connect"]);
    expect(await service("events").userExists("token-user")).toBe(false);
  });

  it("sends disconnected when the client leaves, never before connected", async () => {
    const client = await connectClient(service("events"));
    client.client.stop();
    await waitFor(() => seen.some((e) => e.event === "disconnected"), "the disconnected event");
    const events = seen.filter((e) => e.context.connectionId === client.connectionId).map((e) => e.event);
    expect(events).toEqual(["connect", "connected", "disconnected"]);
  });
});

describe("user events", () => {
  it("relays the handler's reply to the client, typed by its content type, and round-trips connection state", async () => {
    const client = await connectClient(service("events"), {}, { messageRetryOptions: { maxRetries: 0 } });
    await client.client.sendEvent("echo", { n: 1 }, "json");
    await client.client.sendEvent("echo", "plain", "text");
    await client.client.sendEvent("binary", new Uint8Array([1]).buffer, "binary");
    await waitFor(() => client.serverMessages.length === 3, "three replies");
    expect(client.serverMessages[0]).toMatchObject({ dataType: "json", data: { echoed: { n: 1 } } });
    expect(client.serverMessages[1]).toMatchObject({ dataType: "text", data: "echo: plain" });
    expect(client.serverMessages[2]?.dataType).toBe("binary");
    expect([...new Uint8Array(client.serverMessages[2]?.data as ArrayBuffer)]).toEqual([7, 7, 7]);

    const echoes = seen.filter((e) => e.event === "user.echo").map((e) => e.context.states);
    expect(echoes).toEqual([
      { plan: "gold" },
      { plan: "gold", echoes: 1 },
    ]);
  });

  it("fails the ack when the handler fails, and skips events no handler subscribes to", async () => {
    const client = await connectClient(service("events"), {}, { messageRetryOptions: { maxRetries: 0 } });
    const failed = client.client.sendEvent("fail", "x", "text");
    await expect(failed).rejects.toBeInstanceOf(SendMessageError);
    await expect(failed).rejects.toMatchObject({ errorDetail: { name: "InternalServerError", message: "handler broke" } });
    await client.client.sendEvent("unsubscribed", "x", "text");
    await settle();
    expect(seen.filter((e) => e.event.startsWith("user.")).map((e) => e.event)).toEqual(["user.fail"]);
  });

  it("answers invokeEvent with the handler's reply", async () => {
    const client = await connectClient(service("events"));
    const result = await client.client.invokeEvent("echo", "ping", "text");
    expect(result).toMatchObject({ dataType: "text", data: "echo: ping" });
  });
});

describe("plain WebSocket clients (no subprotocol)", () => {
  it("turns each frame into the user event 'message' and sends replies and server messages as raw frames", async () => {
    const { url } = await service("events").getClientAccessToken({ userId: "plain-user" });
    const socket = new WebSocket(url);
    const frames: { data: string | Buffer; binary: boolean }[] = [];
    socket.on("message", (data: Buffer, binary: boolean) => frames.push({ data: binary ? data : data.toString(), binary }));
    await once(socket, "open");
    expect(socket.protocol).toBe("");
    try {
      socket.send("hi there");
      await waitFor(() => frames.length === 1, "the handler's reply");
      expect(frames[0]).toEqual({ data: "echo: hi there", binary: false });
      expect(seen.find((e) => e.event === "user.message")?.detail).toBe("hi there");

      // The connect handler renamed the user.
      await service("events").sendToUser("from-handler", { raw: true });
      await service("events").sendToUser("from-handler", Buffer.from([1, 2]));
      await waitFor(() => frames.length === 3, "two server messages");
      expect(frames[1]).toEqual({ data: '{"raw":true}', binary: false });
      expect(frames[2]).toEqual({ data: Buffer.from([1, 2]), binary: true });
    } finally {
      socket.close();
    }
  });
});
