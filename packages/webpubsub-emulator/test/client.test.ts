/**
 * The client endpoint, driven by the real @azure/web-pubsub-client with tokens from the real
 * @azure/web-pubsub server SDK: token checks before the upgrade, both JSON subprotocols,
 * groups, acks, roles and data types.
 */
import { WebPubSubServiceClient } from "@azure/web-pubsub";
import { SendMessageError, WebPubSubClient, WebPubSubJsonProtocol } from "@azure/web-pubsub-client";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { WebSocket } from "ws";
import { startWebPubSubEmulator, type WebPubSubEmulator } from "../src/index.js";
import { signHs256 } from "../src/jwt.js";
import { connectClient, serviceClient, startRecording, stopAllClients, waitFor } from "../src/testing.js";
import { everythingSentHasArrived } from "./kit.js";

let emulator: WebPubSubEmulator;
let service: WebPubSubServiceClient;
const accessKey = "client-test-key";
const allRoles = ["webpubsub.joinLeaveGroup", "webpubsub.sendToGroup"];

beforeAll(async () => {
  emulator = await startWebPubSubEmulator({ hubs: ["chat"], accessKey });
  service = serviceClient(emulator.connectionString, "chat");
});
afterEach(() => stopAllClients());
afterAll(() => emulator.stop());

/** A client that fails fast: no retries, so a refused connection surfaces at once. */
const noRetry = { autoReconnect: false, reconnectRetryOptions: { maxRetries: 0 }, messageRetryOptions: { maxRetries: 0 } };

function clientFor(url: string): WebPubSubClient {
  return new WebPubSubClient(url, { ...noRetry, keepAliveIntervalInMs: 0, keepAliveTimeoutInMs: 0 });
}

describe("connecting", () => {
  it("sends the connected message with the connection id and the token's user id", async () => {
    const alice = await connectClient(service, { userId: "alice" });
    expect(alice.userId).toBe("alice");
    expect(alice.connectionId).toMatch(/^[A-Za-z0-9_-]{16,}$/);
    expect(await service.connectionExists(alice.connectionId)).toBe(true);
    expect(await service.userExists("alice")).toBe(true);
  });

  it("refuses a token signed with another key before the upgrade", async () => {
    const other = serviceClient(emulator.connectionString.replace(`AccessKey=${accessKey}`, "AccessKey=not-the-key"), "chat");
    const { url } = await other.getClientAccessToken({ userId: "mallory" });
    await expect(clientFor(url).start()).rejects.toThrow(/401/);
    expect(await service.userExists("mallory")).toBe(false);
  });

  it("refuses an expired token", async () => {
    const audience = `${emulator.endpoint}/client/hubs/chat`;
    const token = signHs256({ aud: audience, sub: "late", exp: Math.floor(Date.now() / 1000) - 5 }, accessKey);
    await expect(clientFor(`${audience.replace("http", "ws")}?access_token=${token}`).start()).rejects.toThrow(/401/);
  });

  it("refuses a token whose audience is another hub", async () => {
    const { token } = await serviceClient(emulator.connectionString, "other").getClientAccessToken({ userId: "eve" });
    const url = `${emulator.endpoint.replace("http", "ws")}/client/hubs/chat?access_token=${token}`;
    await expect(clientFor(url).start()).rejects.toThrow(/401/);
  });

  it("refuses a hub the emulator does not serve with 404", async () => {
    const { url } = await serviceClient(emulator.connectionString, "unknownhub").getClientAccessToken();
    await expect(clientFor(url).start()).rejects.toThrow(/404/);
  });

  it("with allowedOrigins, refuses a browser page from another origin with 403 and serves the allowed one and non-browser clients", async () => {
    const guarded = await startWebPubSubEmulator({ hubs: ["chat"], accessKey, allowedOrigins: ["http://127.0.0.1:4280"] });
    try {
      const { url } = await serviceClient(guarded.connectionString, "chat").getClientAccessToken({ userId: "bob" });
      /** The status of the upgrade: 101 when the socket opened. */
      const upgrade = (origin?: string) =>
        new Promise<number>((resolve, reject) => {
          const socket = new WebSocket(url, ["json.webpubsub.azure.v1"], origin ? { origin } : {});
          socket.once("open", () => {
            socket.close();
            resolve(101);
          });
          socket.once("unexpected-response", (_request, response) => resolve(response.statusCode ?? 0));
          socket.once("error", reject);
        });
      expect(await upgrade("https://evil.example")).toBe(403);
      expect(await upgrade("http://127.0.0.1:4280")).toBe(101);
      expect(await upgrade()).toBe(101);
    } finally {
      await guarded.stop();
    }
  });

  it("puts the connection in the token's webpubsub.group groups", async () => {
    const bob = await connectClient(service, { userId: "bob", groups: ["initial-a", "initial-b"] });
    await service.group("initial-b").sendToAll("hi from the server", { contentType: "text/plain" });
    await waitFor(() => bob.groupMessages.length === 1, "the group message");
    expect(bob.groupMessages[0]).toMatchObject({ group: "initial-b", dataType: "text", data: "hi from the server" });
    expect(await service.groupExists("initial-a")).toBe(true);
  });
});

describe("groups and acks", () => {
  it("joins, sends to the group and leaves; noEcho keeps the sender's copy away", async () => {
    const sender = await connectClient(service, { userId: "s", roles: allRoles });
    const receiver = await connectClient(service, { userId: "r", roles: allRoles });
    await sender.client.joinGroup("room");
    await receiver.client.joinGroup("room");

    await sender.client.sendToGroup("room", { n: 1 }, "json");
    await sender.client.sendToGroup("room", "quiet", "text", { noEcho: true });
    await waitFor(() => receiver.groupMessages.length === 2, "two group messages");
    await everythingSentHasArrived(service, sender, receiver);
    expect(receiver.groupMessages.map((m) => m.data)).toEqual([{ n: 1 }, "quiet"]);
    expect(receiver.groupMessages[0]).toMatchObject({ group: "room", fromUserId: "s", dataType: "json" });
    expect(sender.groupMessages.map((m) => m.data)).toEqual([{ n: 1 }]);

    await receiver.client.leaveGroup("room");
    await sender.client.sendToGroup("room", "after leave", "text");
    await waitFor(() => sender.groupMessages.length === 2, "the sender's echo");
    await everythingSentHasArrived(service, receiver);
    expect(receiver.groupMessages).toHaveLength(2);
  });

  it("answers a denied join and a denied send with a failed ack naming Forbidden", async () => {
    const limited = await connectClient(service, { roles: ["webpubsub.joinLeaveGroup.open", "webpubsub.sendToGroup.open"] }, noRetry);
    await limited.client.joinGroup("open");
    await limited.client.sendToGroup("open", "allowed", "text");

    const join = limited.client.joinGroup("closed");
    await expect(join).rejects.toBeInstanceOf(SendMessageError);
    await expect(join).rejects.toMatchObject({ errorDetail: { name: "Forbidden" } });
    await expect(limited.client.sendToGroup("closed", "denied", "text")).rejects.toMatchObject({
      errorDetail: { name: "Forbidden", message: expect.stringContaining("closed") },
    });
    await waitFor(() => limited.groupMessages.length === 1, "the allowed message");
  });

  it("answers a resent ackId that succeeded with Duplicate", async () => {
    const client = await connectClient(service, { roles: allRoles });
    expect(await client.client.sendToGroup("dup", "first", "text", { ackId: 42 })).toEqual({ ackId: 42, isDuplicated: false });
    expect(await client.client.sendToGroup("dup", "again", "text", { ackId: 42 })).toEqual({ ackId: 42, isDuplicated: true });
  });
});

describe("data types", () => {
  it("carries json, text and binary between clients and from the server (base64 on the wire)", async () => {
    const sender = await connectClient(service, { roles: allRoles });
    const receiver = await connectClient(service, { userId: "types", groups: ["types"] });
    const bytes = new Uint8Array([0, 1, 2, 250, 255]);

    await sender.client.sendToGroup("types", { a: [1, "b"] }, "json");
    await sender.client.sendToGroup("types", "plain text", "text");
    await sender.client.sendToGroup("types", bytes.buffer, "binary");
    await service.sendToUser("types", { server: true });
    await service.sendToUser("types", "server text", { contentType: "text/plain" });
    await service.sendToUser("types", Buffer.from([9, 8, 7]));

    await waitFor(() => receiver.groupMessages.length === 3 && receiver.serverMessages.length === 3, "six messages");
    const [json, text, binary] = receiver.groupMessages;
    expect(json).toMatchObject({ dataType: "json", data: { a: [1, "b"] } });
    expect(text).toMatchObject({ dataType: "text", data: "plain text" });
    expect(binary?.dataType).toBe("binary");
    expect([...new Uint8Array(binary?.data as ArrayBuffer)]).toEqual([...bytes]);
    const [sJson, sText, sBinary] = receiver.serverMessages;
    expect(sJson).toMatchObject({ dataType: "json", data: { server: true } });
    expect(sText).toMatchObject({ dataType: "text", data: "server text" });
    expect([...new Uint8Array(sBinary?.data as ArrayBuffer)]).toEqual([9, 8, 7]);
  });

  it("serves the plain json.webpubsub.azure.v1 subprotocol without sequence ids", async () => {
    const client = await connectClient(service, { userId: "plain", groups: ["plain"] }, { protocol: WebPubSubJsonProtocol() });
    await service.group("plain").sendToAll({ v: 1 });
    await waitFor(() => client.groupMessages.length === 1, "the message");
    expect(client.groupMessages[0]?.sequenceId).toBeUndefined();
    expect(client.userId).toBe("plain");
  });

  it("numbers messages with sequence ids under the reliable subprotocol", async () => {
    const client = await connectClient(service, { userId: "seq", groups: ["seq"] });
    await service.group("seq").sendToAll("one", { contentType: "text/plain" });
    await service.sendToUser("seq", "two", { contentType: "text/plain" });
    await waitFor(() => client.groupMessages.length === 1 && client.serverMessages.length === 1, "both messages");
    expect(client.groupMessages[0]?.sequenceId).toBe(1);
    expect(client.serverMessages[0]?.sequenceId).toBe(2);
  });

  it("lets a client start from a bare access URL string", async () => {
    const { url } = await service.getClientAccessToken({ userId: "bare" });
    const client = await startRecording(clientFor(url));
    expect(client.userId).toBe("bare");
  });
});
