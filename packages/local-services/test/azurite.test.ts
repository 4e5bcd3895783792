/** Azurite as the local platform starts it (src/azurite.ts): real SDK traffic and browser CORS. */
import { BlobServiceClient } from "@azure/storage-blob";
import { afterAll, beforeAll, expect, it } from "vitest";
import { allowBrowserUploads, startAzurite, type AzuriteBlobEmulator } from "../src/azurite.js";

let azurite: AzuriteBlobEmulator;
beforeAll(async () => {
  azurite = await startAzurite();
});
afterAll(async () => {
  await azurite?.stop();
});

it("serves the current storage SDK and answers browser upload preflights only for allowed origins", async () => {
  const container = BlobServiceClient.fromConnectionString(azurite.connectionString).getContainerClient("cors");
  await container.createIfNotExists();
  await container.getBlockBlobClient("a.txt").upload("hi", 2);
  expect((await container.getBlobClient("a.txt").downloadToBuffer()).toString()).toBe("hi");

  await allowBrowserUploads(azurite.connectionString, ["http://127.0.0.1:5173"]);
  const preflight = (origin: string) =>
    fetch(`${azurite.blobEndpoint}/cors/b.txt`, {
      method: "OPTIONS",
      headers: { origin, "access-control-request-method": "PUT", "access-control-request-headers": "x-ms-blob-type,content-type" },
    });
  const allowed = await preflight("http://127.0.0.1:5173");
  expect(allowed.status).toBe(200);
  expect(allowed.headers.get("access-control-allow-origin")).toBe("http://127.0.0.1:5173");
  const refused = await preflight("http://evil.example");
  expect(refused.headers.get("access-control-allow-origin")).toBeNull();
});
