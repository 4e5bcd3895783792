/**
 * The reliable subprotocol across a real network cut (a TCP proxy drops both sockets with no
 * close frame): the real client resumes the same connection with awps_connection_id and
 * awps_reconnection_token, and gets what was sent while it was away, once and in order.
 */
import { WebPubSubServiceClient } from "@azure/web-pubsub";
import { WebPubSubClient } from "@azure/web-pubsub-client";
import type { WebSocket } from "ws";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { OutboundMessage } from "../src/client-protocol.js";
import { Connection, maxUnackedMessages } from "../src/hub.js";
import { startWebPubSubEmulator, type WebPubSubEmulator } from "../src/index.js";
import { serviceClient, startRecording, stopAllClients, waitFor, type RecordingClient } from "../src/testing.js";
import { startTcpProxy, type TcpProxy } from "./kit.js";

let emulator: WebPubSubEmulator;
let service: WebPubSubServiceClient;
let proxy: TcpProxy;

beforeAll(async () => {
  emulator = await startWebPubSubEmulator({ hubs: ["live"] });
  service = serviceClient(emulator.connectionString, "live");
  proxy = await startTcpProxy(emulator.port);
});
afterEach(async () => {
  await stopAllClients();
  proxy.unblock();
});
afterAll(async () => {
  await proxy.close();
  await emulator.stop();
});

/** A reliable client whose traffic goes through a proxy. */
async function connectThroughProxy(
  userId: string,
  groups: string[],
  via: { service: WebPubSubServiceClient; emulator: WebPubSubEmulator; proxy: TcpProxy } = { service, emulator, proxy },
  autoReconnect = true,
): Promise<RecordingClient> {
  const client = new WebPubSubClient(
    {
      getClientAccessUrl: async () => {
        const { url } = await via.service.getClientAccessToken({ userId, groups });
        return url.replace(`:${via.emulator.port}/`, `:${via.proxy.port}/`);
      },
    },
    { keepAliveIntervalInMs: 0, keepAliveTimeoutInMs: 0, reconnectRetryOptions: { retryDelayInMs: 200 }, autoReconnect },
  );
  return startRecording(client);
}

describe("reliable reconnection", () => {
  it("resumes the same connection and delivers what was sent during the cut, once and in order", async () => {
    const client = await connectThroughProxy("rita", ["feed"]);
    await service.group("feed").sendToAll("before", { contentType: "text/plain" });
    await waitFor(() => client.groupMessages.length === 1, "the first message");

    proxy.cutAndBlock();
    await service.group("feed").sendToAll("during 1", { contentType: "text/plain" });
    await service.sendToUser("rita", "during 2", { contentType: "text/plain" });
    expect(await service.connectionExists(client.connectionId)).toBe(true);
    proxy.unblock();

    await waitFor(() => client.serverMessages.length === 1 && client.groupMessages.length === 2, "the messages sent during the cut");
    // "before" was not yet sequence-acked, so it was resent on resume; the client dropped the copy.
    expect(client.groupMessages.map((m) => [m.data, m.sequenceId])).toEqual([
      ["before", 1],
      ["during 1", 2],
    ]);
    expect(client.serverMessages.map((m) => [m.data, m.sequenceId])).toEqual([["during 2", 3]]);
    expect(client.connectedCount()).toBe(1);
    expect(client.disconnects).toEqual([]);
    expect(await service.connectionExists(client.connectionId)).toBe(true);
    expect(await service.groupExists("feed")).toBe(true);
  });

  it("closes a resume of a removed connection with 1008, and the client starts a new one", async () => {
    const client = await connectThroughProxy("sam", []);
    const firstId = client.connectionId;
    proxy.cutAndBlock();
    await service.closeConnection(firstId, { reason: "gone while away" });
    proxy.unblock();
    await waitFor(() => client.connectedCount() === 2, "a new connection", 10_000);
    expect(client.disconnects).toHaveLength(1);
    expect(await service.userExists("sam")).toBe(true);
    expect(await service.connectionExists(firstId)).toBe(false);
  });

  it("removes a dropped connection whose client does not come back within the reconnect window", async () => {
    // Long enough that "still there right after the cut" cannot fail by a slow machine; the removal is waited for.
    const shortWindow = await startWebPubSubEmulator({ hubs: ["live"], reconnectWindowMs: 2_000 });
    const shortProxy = await startTcpProxy(shortWindow.port);
    try {
      const shortService = serviceClient(shortWindow.connectionString, "live");
      const client = await connectThroughProxy("uma", ["kept"], { service: shortService, emulator: shortWindow, proxy: shortProxy }, false);
      shortProxy.cutAndBlock();
      expect(await shortService.connectionExists(client.connectionId)).toBe(true);
      await waitFor(async () => !(await shortService.connectionExists(client.connectionId)), "the window to pass");
      expect(await shortService.groupExists("kept")).toBe(false);
      shortProxy.unblock();
      await waitFor(() => client.disconnects.length === 1, "the client to learn its connection is gone", 10_000);
      expect(client.connectedCount()).toBe(1);
    } finally {
      await shortProxy.close();
      await shortWindow.stop();
    }
  });

  it("removes the connection at once when the client closes it cleanly", async () => {
    const client = await connectThroughProxy("tess", []);
    client.client.stop();
    await waitFor(() => client.disconnects.length === 1, "the client to stop");
    await waitFor(async () => !(await service.connectionExists(client.connectionId)), "the connection to go");
  });
});

describe("sequence acknowledgement", () => {
  /** Stands in for a WebSocket: records what the connection sends. */
  function recordingSocket(): { socket: WebSocket; frames: string[] } {
    const frames: string[] = [];
    const socket = { send: (frame: string) => frames.push(frame), terminate: () => {} } as unknown as WebSocket;
    return { socket, frames };
  }

  it("resends on resume only what the client has not acknowledged", () => {
    const connection = new Connection({ userId: "u", protocol: "reliable", subprotocol: undefined, roles: [], connectionState: undefined });
    const first = recordingSocket();
    connection.attach(first.socket);
    for (const n of [1, 2, 3]) connection.deliver(new OutboundMessage({ from: "server" }, { dataType: "text", text: `m${n}` }));
    connection.acknowledge(2);

    const second = recordingSocket();
    connection.attach(second.socket);
    const frames = second.frames.map((f) => JSON.parse(f) as Record<string, unknown>);
    expect(frames[0]).toMatchObject({ type: "system", event: "connected", connectionId: connection.id, reconnectionToken: connection.reconnectionToken });
    expect(frames.slice(1)).toEqual([{ type: "message", from: "server", dataType: "text", data: "m3", sequenceId: 3 }]);
  });

  it("refuses more than the unacknowledged limit, so the hub drops a client that never acknowledges", () => {
    const connection = new Connection({ userId: "u", protocol: "reliable", subprotocol: undefined, roles: [], connectionState: undefined });
    connection.attach(recordingSocket().socket);
    const message = new OutboundMessage({ from: "server" }, { dataType: "text", text: "x" });
    for (let i = 0; i < maxUnackedMessages; i++) expect(connection.deliver(message)).toBe(true);
    expect(connection.deliver(message)).toBe(false);
    connection.acknowledge(1);
    expect(connection.deliver(message)).toBe(true);
  });
});
