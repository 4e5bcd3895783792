/**
 * The REST data plane, driven by the real WebPubSubServiceClient: sends with filters and
 * exclusions, group and user membership, existence checks, closes, permissions, and
 * refusals (bad key, expired or mis-addressed tokens).
 */
import { odata, WebPubSubServiceClient, type WebPubSubServiceClientOptions } from "@azure/web-pubsub";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { startWebPubSubEmulator, type WebPubSubEmulator } from "../src/index.js";
import { signHs256 } from "../src/jwt.js";
import { connectClient, serviceClient, stopAllClients, waitFor } from "../src/testing.js";
import { everythingSentHasArrived } from "./kit.js";

let emulator: WebPubSubEmulator;
let service: WebPubSubServiceClient;
const accessKey = "rest-test-key";

beforeAll(async () => {
  emulator = await startWebPubSubEmulator({ hubs: ["jobs"], accessKey });
  service = serviceClient(emulator.connectionString, "jobs");
});
afterEach(() => stopAllClients());
afterAll(() => emulator.stop());

type PipelinePolicy = NonNullable<WebPubSubServiceClientOptions["additionalPolicies"]>[number]["policy"];

/** A client whose every request carries `token` instead of the one the SDK signs. */
function clientWithToken(token: (url: string) => string): WebPubSubServiceClient {
  const replaceToken: PipelinePolicy = {
    name: "replace-token",
    sendRequest(request, next) {
      request.headers.set("Authorization", `Bearer ${token(request.url)}`);
      return next(request);
    },
  };
  return new WebPubSubServiceClient(emulator.connectionString, "jobs", {
    allowInsecureConnection: true,
    retryOptions: { maxRetries: 0 },
    additionalPolicies: [{ policy: replaceToken, position: "perRetry" }],
  });
}

describe("authentication", () => {
  it("refuses a request signed with another access key with 401", async () => {
    const wrong = serviceClient(emulator.connectionString.replace(`AccessKey=${accessKey}`, "AccessKey=wrong"), "jobs");
    await expect(wrong.sendToAll("x", { contentType: "text/plain" })).rejects.toMatchObject({ statusCode: 401 });
  });

  it("refuses an expired token and one addressed to another URL", async () => {
    const hour = 3600;
    const now = Math.floor(Date.now() / 1000);
    const expired = clientWithToken((url) => signHs256({ aud: url, exp: now - 1 }, accessKey));
    await expect(expired.sendToAll("x", { contentType: "text/plain" })).rejects.toMatchObject({ statusCode: 401, message: expect.stringMatching(/expired/) });
    const misaddressed = clientWithToken(() => signHs256({ aud: `${emulator.endpoint}/api/hubs/jobs/:send?api-version=2024-12-01`, exp: now + hour }, accessKey));
    await expect(misaddressed.userExists("someone")).rejects.toMatchObject({ statusCode: 401 });
    const correct = clientWithToken((url) => signHs256({ aud: url, exp: now + hour }, accessKey));
    expect(await correct.userExists("someone")).toBe(false);
  });

  it("answers 404 for a hub the emulator does not serve", async () => {
    await expect(serviceClient(emulator.connectionString, "nothere").sendToAll({})).rejects.toMatchObject({ statusCode: 404 });
  });
});

describe("sends", () => {
  it("sends to all, minus excluded connections and those a filter rejects", async () => {
    const a = await connectClient(service, { userId: "a", groups: ["vip"] });
    const b = await connectClient(service, { userId: "b" });
    const c = await connectClient(service, { userId: "c" });

    await service.sendToAll({ all: true });
    await service.sendToAll({ notB: true }, { excludedConnections: [b.connectionId] });
    await service.sendToAll({ vipOnly: true }, { filter: odata`'vip' in groups` });
    await service.sendToAll({ notC: true }, { filter: odata`userId ne ${"c"} and not (userId eq ${"nobody"})` });

    await waitFor(() => a.serverMessages.length === 4 && b.serverMessages.length === 2 && c.serverMessages.length === 2, "all sends");
    await everythingSentHasArrived(service, a, b, c);
    expect(a.serverMessages.map((m) => m.data)).toEqual([{ all: true }, { notB: true }, { vipOnly: true }, { notC: true }]);
    expect(b.serverMessages.map((m) => m.data)).toEqual([{ all: true }, { notC: true }]);
    expect(c.serverMessages.map((m) => m.data)).toEqual([{ all: true }, { notB: true }]);
  });

  it("refuses a filter it cannot parse or type with 400 and the service's own message, sending nothing", async () => {
    const listener = await connectClient(service, { userId: "listener" });
    // What the SDK's own live test (can broadcast with filter) reads: the body, as RestError.message.
    const syntax = await service.sendToAll("hello", { contentType: "text/plain", filter: "invalid filter" }).catch((error: unknown) => error);
    expect(syntax).toMatchObject({ name: "RestError", statusCode: 400 });
    expect(JSON.parse((syntax as Error).message)).toEqual({
      code: "BadRequest",
      message: "Invalid syntax for 'invalid filter': Syntax error at position 14 in 'invalid filter'. (Parameter 'filter')",
    });
    // The service's documented example of an operand of the wrong type.
    const typed = await service.sendToAll("hello", { contentType: "text/plain", filter: "not length(userId) gt 5" }).catch((error: unknown) => error);
    expect(JSON.parse((typed as Error).message).message).toBe("Invalid syntax for 'not length(userId)': Type 'null', expect 'bool'. (Parameter 'filter')");
    // The same answer wherever a filter goes: user and group sends, adding to and removing from groups.
    const expected = { code: "BadRequest", message: expect.stringContaining("Syntax error at position 14 in 'invalid filter'") };
    for (const call of [
      service.sendToUser("listener", "hello", { contentType: "text/plain", filter: "invalid filter" }),
      service.group("g").sendToAll("hello", { contentType: "text/plain", filter: "invalid filter" }),
      service.addConnectionsToGroups(["g1", "g2"], "invalid filter"),
      service.removeConnectionsFromGroups(["g1", "g2"], "invalid filter"),
    ]) {
      const error = await call.catch((caught: unknown) => caught);
      expect(JSON.parse((error as Error).message)).toMatchObject(expected);
    }
    await expect(service.sendToAll({}, { filter: "userId eq" })).rejects.toMatchObject({ statusCode: 400 });
    await everythingSentHasArrived(service, listener);
    expect(listener.serverMessages).toEqual([]);
  });

  it("filters with the documented functions, in-lists and the groups collection", async () => {
    const upper = await connectClient(service, { userId: "USER1", groups: ["g1", "g2"] });
    const dashed = await connectClient(service, { userId: "user-ab-de" });
    const anonymous = await connectClient(service);
    const sends: Array<[string, string]> = [
      ["lower", "tolower(userId) eq 'user1'"],
      ["list", "userId in ('user-ab-de', 'nobody')"],
      ["two groups", "length(groups) gt 1"],
      ["substring", "substring(userId,5,2) eq 'ab' and endswith(userId,'de')"],
      ["not dashed", "not (indexof(userId,'-ab-') ge 0)"],
      ["no user", "userId eq null"],
    ];
    for (const [data, filter] of sends) await service.sendToAll(data, { contentType: "text/plain", filter });
    await waitFor(() => upper.serverMessages.length === 3 && dashed.serverMessages.length === 2 && anonymous.serverMessages.length === 2, "filtered sends");
    await everythingSentHasArrived(service, upper, dashed, anonymous);
    expect(upper.serverMessages.map((m) => m.data)).toEqual(["lower", "two groups", "not dashed"]);
    expect(dashed.serverMessages.map((m) => m.data)).toEqual(["list", "substring"]);
    // Without a user, functions of userId are null; a comparison with null is false, so its negation holds.
    expect(anonymous.serverMessages.map((m) => m.data)).toEqual(["not dashed", "no user"]);
  });

  it("answers other REST errors the same way: a JSON body with the code, which the SDK leaves unparsed", async () => {
    const error = await service.group("g").addConnection("no-such-connection").catch((caught: unknown) => caught);
    expect(error).toMatchObject({ name: "RestError", statusCode: 404 });
    expect(JSON.parse((error as Error).message)).toMatchObject({ code: "NotFound", message: expect.stringContaining("no-such-connection") });
  });

  it("sends to one user's connections and to one connection", async () => {
    const first = await connectClient(service, { userId: "dana" });
    const second = await connectClient(service, { userId: "dana" });
    const other = await connectClient(service, { userId: "erin" });
    await service.sendToUser("dana", "to dana", { contentType: "text/plain" });
    await service.sendToConnection(second.connectionId, "to second", { contentType: "text/plain" });
    await waitFor(() => first.serverMessages.length === 1 && second.serverMessages.length === 2, "user and connection sends");
    await everythingSentHasArrived(service, first, second, other);
    expect(second.serverMessages.map((m) => m.data)).toEqual(["to dana", "to second"]);
    expect(other.serverMessages).toEqual([]);
  });
});

describe("membership", () => {
  it("adds and removes a connection to and from a group, and lists members page by page", async () => {
    const a = await connectClient(service, { userId: "m1" });
    const b = await connectClient(service, { userId: "m2" });
    const group = service.group("members");
    expect(await service.groupExists("members")).toBe(false);
    await group.addConnection(a.connectionId);
    await group.addConnection(b.connectionId);
    expect(await service.groupExists("members")).toBe(true);

    const listed: { connectionId: string; userId?: string }[] = [];
    const pages = (await group.listConnections({ maxPageSize: 1 } as Parameters<typeof group.listConnections>[0])).byPage();
    let pageCount = 0;
    for await (const page of pages) {
      pageCount++;
      listed.push(...page);
    }
    expect(pageCount).toBe(2);
    expect(listed.map((m) => m.userId).sort()).toEqual(["m1", "m2"]);

    await group.removeConnection(a.connectionId);
    await group.sendToAll("only b", { contentType: "text/plain" });
    await waitFor(() => b.groupMessages.length === 1, "b's message");
    await everythingSentHasArrived(service, a);
    expect(a.groupMessages).toEqual([]);
    await service.removeConnectionFromAllGroups(b.connectionId);
    expect(await service.groupExists("members")).toBe(false);
  });

  it("refuses to add a connection that does not exist with 404", async () => {
    await expect(service.group("g").addConnection("no-such-connection")).rejects.toMatchObject({ statusCode: 404 });
  });

  it("keeps a user's group membership for the user's later connections", async () => {
    const early = await connectClient(service, { userId: "frank" });
    await service.group("team").addUser("frank");
    const later = await connectClient(service, { userId: "frank" });
    await service.group("team").sendToAll("team news", { contentType: "text/plain" });
    await waitFor(() => early.groupMessages.length === 1 && later.groupMessages.length === 1, "both connections");

    await service.group("team").removeUser("frank");
    expect(await service.groupExists("team")).toBe(false);
    await service.group("a1").addUser("frank");
    await service.group("a2").addUser("frank");
    await service.removeUserFromAllGroups("frank");
    expect(await service.groupExists("a1")).toBe(false);
    expect(await service.groupExists("a2")).toBe(false);
  });

  it("adds the connections a filter selects to several groups, and removes them", async () => {
    const g = await connectClient(service, { userId: "grace" });
    const h = await connectClient(service, { userId: "heidi" });
    await service.addConnectionsToGroups(["x1", "x2"], odata`userId eq ${"grace"}`);
    await service.group("x2").sendToAll("x2 news", { contentType: "text/plain" });
    await waitFor(() => g.groupMessages.length === 1, "grace's message");
    await everythingSentHasArrived(service, h);
    expect(h.groupMessages).toEqual([]);
    await service.removeConnectionsFromGroups(["x1", "x2"], odata`userId eq ${"grace"}`);
    expect(await service.groupExists("x1")).toBe(false);
  });
});

describe("closing connections", () => {
  it("closes one connection with a reason the client receives", async () => {
    const client = await connectClient(service, { userId: "ivan" }, { autoReconnect: false });
    await service.closeConnection(client.connectionId, { reason: "maintenance" });
    await waitFor(() => client.disconnects.length === 1, "the disconnected event");
    expect(client.disconnects[0]?.message?.message).toBe("maintenance");
    expect(await service.connectionExists(client.connectionId)).toBe(false);
  });

  it("closes a user's, a group's and all connections", async () => {
    const u1 = await connectClient(service, { userId: "judy" }, { autoReconnect: false });
    const g1 = await connectClient(service, { userId: "k1", groups: ["closing"] }, { autoReconnect: false });
    const g2 = await connectClient(service, { userId: "k2", groups: ["staying"] }, { autoReconnect: false });
    await service.closeUserConnections("judy");
    await service.group("closing").closeAllConnections({ reason: "group closed" });
    await waitFor(() => u1.disconnects.length === 1 && g1.disconnects.length === 1, "two disconnects");
    expect(g1.disconnects[0]?.message?.message).toBe("group closed");
    expect(await service.connectionExists(g2.connectionId)).toBe(true);
    await service.closeAllConnections({ reason: "all closed" });
    await waitFor(() => g2.disconnects.length === 1, "the last disconnect");
    expect(g2.disconnects[0]?.message?.message).toBe("all closed");
  });
});

describe("permissions", () => {
  it("grants, checks and revokes per group and for all groups", async () => {
    const client = await connectClient(service, { userId: "leo" }, { messageRetryOptions: { maxRetries: 0 } });
    const id = client.connectionId;
    expect(await service.hasPermission(id, "joinLeaveGroup", { targetName: "p" })).toBe(false);
    await expect(client.client.joinGroup("p")).rejects.toMatchObject({ errorDetail: { name: "Forbidden" } });

    await service.grantPermission(id, "joinLeaveGroup", { targetName: "p" });
    expect(await service.hasPermission(id, "joinLeaveGroup", { targetName: "p" })).toBe(true);
    expect(await service.hasPermission(id, "joinLeaveGroup")).toBe(false);
    await client.client.joinGroup("p");

    await service.grantPermission(id, "sendToGroup");
    expect(await service.hasPermission(id, "sendToGroup", { targetName: "anything" })).toBe(true);
    await client.client.sendToGroup("p", "granted", "text");

    await service.revokePermission(id, "sendToGroup");
    await expect(client.client.sendToGroup("p", "revoked", "text")).rejects.toMatchObject({ errorDetail: { name: "Forbidden" } });
    await service.revokePermission(id, "joinLeaveGroup", { targetName: "p" });
    expect(await service.hasPermission(id, "joinLeaveGroup", { targetName: "p" })).toBe(false);
  });

  it("refuses to grant to a connection that does not exist", async () => {
    await expect(service.grantPermission("missing", "sendToGroup")).rejects.toMatchObject({ statusCode: 404 });
  });
});
