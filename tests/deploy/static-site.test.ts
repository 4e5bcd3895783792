import { mkdtemp, rm, writeFile, mkdir } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import type { ContainerClient } from "@azure/storage-blob";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { readSiteFiles, siteContentHash, cacheControlFor, contentTypeFor, isContentHashed } from "../../infrastructure/deploy/site-files";
import { staticWebsiteContainer, syncStaticSite, webContainerClient } from "../../infrastructure/deploy/static-site";
import { AzuriteBlob } from "./azurite";
import { RecordingCredential } from "./scm-server";

let azurite: AzuriteBlob;
let container: ContainerClient;
let site: string;

beforeAll(async () => {
  azurite = await AzuriteBlob.start();
  container = azurite.client().getContainerClient(staticWebsiteContainer);
  await container.create();
});
afterAll(async () => {
  await azurite?.stop();
  if (site) await rm(site, { recursive: true, force: true });
});
beforeEach(async () => {
  for await (const blob of container.listBlobsFlat()) await container.deleteBlob(blob.name);
  if (site) await rm(site, { recursive: true, force: true });
  site = await mkdtemp(path.join(tmpdir(), "site-"));
  await mkdir(path.join(site, "assets"));
  await writeFile(path.join(site, "index.html"), "<!doctype html><title>v1</title>");
  await writeFile(path.join(site, "assets", "app.3f9a1c2b.js"), "console.log(1)");
  await writeFile(path.join(site, "favicon.svg"), "<svg/>");
  await writeFile(path.join(site, ".DS_Store"), "junk");
});

async function remoteBlobs() {
  const blobs: Record<string, { contentType?: string; cacheControl?: string }> = {};
  for await (const b of container.listBlobsFlat()) blobs[b.name] = { contentType: b.properties.contentType, cacheControl: b.properties.cacheControl };
  return blobs;
}

describe("syncStaticSite against Azurite", () => {
  it("uploads every file with its content type and cache header, dot files excluded", async () => {
    const result = await syncStaticSite(container, await readSiteFiles(site));
    expect([...result.uploaded].sort()).toEqual(["assets/app.3f9a1c2b.js", "favicon.svg", "index.html"]);
    expect(await remoteBlobs()).toEqual({
      "index.html": { contentType: "text/html; charset=utf-8", cacheControl: "no-cache" },
      "assets/app.3f9a1c2b.js": { contentType: "text/javascript; charset=utf-8", cacheControl: "public, max-age=31536000, immutable" },
      "favicon.svg": { contentType: "image/svg+xml", cacheControl: "public, max-age=300" },
    });
    const body = await container.getBlobClient("index.html").downloadToBuffer();
    expect(body.toString()).toBe("<!doctype html><title>v1</title>");
  });

  it("re-uploads only changed files and deletes files removed locally", async () => {
    await syncStaticSite(container, await readSiteFiles(site));
    await writeFile(path.join(site, "index.html"), "<!doctype html><title>v2</title>");
    await rm(path.join(site, "favicon.svg"));
    await writeFile(path.join(site, "assets", "app.9b8c7d6e.js"), "console.log(2)");
    await rm(path.join(site, "assets", "app.3f9a1c2b.js"));

    const result = await syncStaticSite(container, await readSiteFiles(site));
    expect(result).toEqual({ uploaded: ["assets/app.9b8c7d6e.js", "index.html"], unchanged: [], deleted: ["assets/app.3f9a1c2b.js", "favicon.svg"] });
    expect(Object.keys(await remoteBlobs()).sort()).toEqual(["assets/app.9b8c7d6e.js", "index.html"]);
    expect((await container.getBlobClient("index.html").downloadToBuffer()).toString()).toContain("v2");
  });

  it("uploads nothing when nothing changed", async () => {
    await syncStaticSite(container, await readSiteFiles(site));
    const before = (await container.getBlobClient("favicon.svg").getProperties()).etag;
    const result = await syncStaticSite(container, await readSiteFiles(site));
    expect(result.uploaded).toEqual([]);
    expect(result.deleted).toEqual([]);
    expect(result.unchanged).toHaveLength(3);
    expect((await container.getBlobClient("favicon.svg").getProperties()).etag).toBe(before);
  });

  it("fixes a blob whose headers are wrong even if its bytes are right", async () => {
    await syncStaticSite(container, await readSiteFiles(site));
    await container.getBlobClient("favicon.svg").setHTTPHeaders({ blobContentType: "application/octet-stream", blobContentMD5: (await readSiteFiles(site)).find((f) => f.name === "favicon.svg")!.md5 });
    const result = await syncStaticSite(container, await readSiteFiles(site));
    expect(result.uploaded).toEqual(["favicon.svg"]);
    expect((await remoteBlobs())["favicon.svg"]?.contentType).toBe("image/svg+xml");
  });
});

describe("site files", () => {
  it("hashes names, bytes and headers: any change changes the hash, a re-read does not", async () => {
    const first = siteContentHash(await readSiteFiles(site));
    expect(siteContentHash(await readSiteFiles(site))).toBe(first);
    await writeFile(path.join(site, "favicon.svg"), "<svg />");
    expect(siteContentHash(await readSiteFiles(site))).not.toBe(first);
  });

  it("requires an index.html", async () => {
    await rm(path.join(site, "index.html"));
    await expect(readSiteFiles(site)).rejects.toThrow(/has no index.html/);
  });

  it("knows content-hashed names from plain ones", () => {
    expect(isContentHashed("assets/index-BdWc4uxB.js")).toBe(true);
    expect(isContentHashed("app.3f9a1c2b.css")).toBe(true);
    expect(isContentHashed("my-component.js")).toBe(false);
    expect(isContentHashed("app.js")).toBe(false);
    expect(cacheControlFor("docs/page.htm")).toBe("no-cache");
    expect(contentTypeFor("font.WOFF2")).toBe("font/woff2");
    expect(contentTypeFor("data.bin")).toBe("application/octet-stream");
  });

  it("ships a placeholder frontend with several content types", async () => {
    const files = await readSiteFiles(path.join(__dirname, "../../web"));
    expect(new Set(files.map((f) => f.contentType.split(";")[0]))).toEqual(new Set(["text/html", "text/css", "text/javascript"]));
  });
});

describe("webContainerClient", () => {
  it("points at the account's $web container with the given credential", () => {
    const client = webContainerClient("https://acct.blob.core.windows.net", new RecordingCredential());
    expect(client.url).toBe("https://acct.blob.core.windows.net/%24web");
    expect(client.containerName).toBe("$web");
  });
});
