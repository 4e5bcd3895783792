import { describe, expect, it } from "vitest";
import { createdOnFirstUse } from "../../functions/src/shared/azure-clients";

describe("createdOnFirstUse", () => {
  it("creates once and shares the result across concurrent and later calls", async () => {
    let creations = 0;
    const get = createdOnFirstUse(async () => ({ n: ++creations }));
    const [a, b] = await Promise.all([get(), get()]);
    expect(a).toBe(b);
    expect(await get()).toBe(a);
    expect(creations).toBe(1);
  });

  it("does not cache a failure: the next call creates again", async () => {
    let creations = 0;
    const get = createdOnFirstUse(async () => {
      creations += 1;
      if (creations === 1) throw new Error("Cosmos unreachable");
      return "ready";
    });
    await expect(get()).rejects.toThrow("Cosmos unreachable");
    expect(await get()).toBe("ready");
    expect(creations).toBe(2);
  });
});

describe("createBlobServiceClient", () => {
  it("gives up on unreachable storage after three tries (not the SDK's default four, 4 s apart), so a request can answer 503 within seconds", async () => {
    const { createServer } = await import("node:net");
    const { BLOB_RETRY_OPTIONS, createBlobServiceClient } = await import("../../functions/src/shared/azure-clients.js");
    let tries = 0;
    const server = createServer((socket) => {
      tries += 1;
      socket.resetAndDestroy();
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const { port } = server.address() as { port: number };
    try {
      const client = await createBlobServiceClient({
        mode: "connectionString",
        connectionString: `DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=a2V5;BlobEndpoint=http://127.0.0.1:${port}/devstoreaccount1;`,
      });
      await expect(client.getContainerClient("uploads").getBlobClient("x").getProperties()).rejects.toMatchObject({ code: "ECONNRESET" });
      expect(tries).toBe(BLOB_RETRY_OPTIONS.maxTries);
      expect(BLOB_RETRY_OPTIONS.maxTries).toBe(3);
    } finally {
      server.close();
    }
  });
});
