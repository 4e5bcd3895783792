/**
 * The Cosmos emulator names, as its endpoint, the address a client reached it through: the SDK sends
 * every request after the account read there, so a client behind a proxy stays behind it.
 */
import { createServer, connect, type Socket } from "node:net";
import { CosmosClient } from "@azure/cosmos";
import { afterAll, beforeAll, expect, it } from "vitest";
import { loopbackCertificateIn, startCosmosEmulator, type CosmosEmulator } from "../src/index.js";
import { TEST_CERTIFICATE_DIRECTORY } from "../../../tests/support/certificate-directory.js";

let cosmos: CosmosEmulator;
beforeAll(async () => {
  cosmos = await startCosmosEmulator({ certificate: await loopbackCertificateIn(TEST_CERTIFICATE_DIRECTORY) });
});
afterAll(async () => {
  await cosmos?.stop();
});

/** A TCP proxy in front of the emulator that counts the connections it was given. */
async function startProxy() {
  let connections = 0;
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    connections += 1;
    const upstream = connect(cosmos.port, "127.0.0.1");
    for (const socket of [client, upstream]) sockets.add(socket);
    client.pipe(upstream).pipe(client);
    client.on("error", () => upstream.destroy());
    upstream.on("error", () => client.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as { port: number }).port;
  return {
    server,
    sockets,
    connections: () => connections,
    /** A client of the emulator that goes through the proxy. */
    client: () => new CosmosClient(cosmos.connectionString.replace(`127.0.0.1:${cosmos.port}`, `127.0.0.1:${port}`)),
    port,
  };
}

it("keeps a client that came through a proxy on the proxy for every request", async () => {
  const proxy = await startProxy();
  const client = proxy.client();
  try {
    const account = await client.getDatabaseAccount();
    expect(account.resource?.writableLocations.map((l) => l.databaseAccountEndpoint)).toEqual([`https://127.0.0.1:${proxy.port}/`]);
    const { database } = await client.databases.createIfNotExists({ id: "through-proxy" });
    await database.containers.createIfNotExists({ id: "c", partitionKey: { paths: ["/k"] } });
    const before = proxy.connections();
    // With the proxy gone, the next request can only fail: it would succeed if it went around it.
    for (const socket of proxy.sockets) socket.destroy();
    await new Promise((resolve) => proxy.server.close(resolve));
    await expect(database.container("c").items.create({ id: "x", k: "k" })).rejects.toMatchObject({ code: "ECONNREFUSED" });
    expect(before).toBeGreaterThan(0);
  } finally {
    client.dispose();
    if (proxy.server.listening) proxy.server.close();
  }
});

it("keeps connections alive: a client's requests share one connection, as with Cosmos DB", async () => {
  const proxy = await startProxy();
  const client = proxy.client();
  try {
    const { database } = await client.databases.createIfNotExists({ id: "keep-alive" });
    const { container } = await database.containers.createIfNotExists({ id: "c", partitionKey: { paths: ["/k"] } });
    // One at a time, so the agent has an idle connection to reuse for each.
    for (let n = 0; n < 5; n += 1) await container.items.upsert({ id: `x${n}`, k: "k" });
    expect(proxy.connections()).toBe(1);
  } finally {
    client.dispose();
    proxy.server.close();
  }
});
