import { mkdtemp, rm, writeFile, mkdir } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import type { ContainerClient } from "@azure/storage-blob";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import {
  cacheControlFor,
  contentTypeFor,
  environmentSiteFiles,
  hashedFilesOf,
  isContentHashed,
  readSiteFiles,
  siteContentHash,
  siteEnvironment,
} from "../../infrastructure/deploy/site-files";
import { runtimeConfig } from "../../web/src/runtime-config";
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

  it("keeps the redirect bridge page out of every cache and revalidates config.json", () => {
    expect(cacheControlFor("redirect.html")).toBe("no-store");
    expect(cacheControlFor("config.json")).toBe("no-cache");
    expect(cacheControlFor("index.html")).toBe("no-cache");
    // Only the top-level names are special.
    expect(cacheControlFor("docs/config.json")).toBe("public, max-age=300");
  });

  it("takes the hashed files from a Vite manifest when the build wrote one, whatever their names look like", async () => {
    const manifest = {
      "index.html": { file: "assets/index-AbCdEfGh.js", css: ["assets/index-QwErTyUi.css"], isEntry: true },
      "_shared.js": { file: "assets/shared-ZxCvBnMa.js" },
    };
    expect(hashedFilesOf(manifest)).toEqual(new Set(["assets/index-AbCdEfGh.js", "assets/index-QwErTyUi.css", "assets/shared-ZxCvBnMa.js"]));
    await mkdir(path.join(site, ".vite"));
    await writeFile(path.join(site, ".vite", "manifest.json"), JSON.stringify(manifest));
    await writeFile(path.join(site, "assets", "index-AbCdEfGh.js"), "x");
    const headers = Object.fromEntries((await readSiteFiles(site)).map((f) => [f.name, f.cacheControl]));
    // Digit-free hashes count because the manifest says so; a hash-like name it does not list does not.
    expect(headers).toEqual({
      "assets/index-AbCdEfGh.js": "public, max-age=31536000, immutable",
      "assets/app.3f9a1c2b.js": "public, max-age=300",
      "favicon.svg": "public, max-age=300",
      "index.html": "no-cache",
    });
  });

  it("makes one build an environment's site: its policy in every page, its config.json beside them", async () => {
    await writeFile(
      path.join(site, "index.html"),
      `<!doctype html><meta http-equiv="Content-Security-Policy" content="default-src 'none'"><title>v1</title>`,
    );
    const config = runtimeConfig("https://api.example.net", { mode: "none" });
    const files = environmentSiteFiles(await readSiteFiles(site), {
      runtimeConfig: config,
      endpoints: { blobEndpoint: "https://data.blob.core.windows.net/", webPubSubEndpoint: "https://wps.webpubsub.azure.com" },
    });
    expect(files.map((f) => f.name)).toEqual(["assets/app.3f9a1c2b.js", "config.json", "favicon.svg", "index.html"]);
    const page = files.find((f) => f.name === "index.html")!;
    expect(page.bytes.toString()).toContain("connect-src 'self' https://api.example.net https://data.blob.core.windows.net wss://wps.webpubsub.azure.com;");
    expect(page.md5).not.toEqual((await readSiteFiles(site)).find((f) => f.name === "index.html")!.md5);

    const result = await syncStaticSite(container, files);
    expect(result.uploaded).toContain("config.json");
    const remote = await remoteBlobs();
    expect(remote["config.json"]).toEqual({ contentType: "application/json", cacheControl: "no-cache" });
    expect(JSON.parse((await container.getBlobClient("config.json").downloadToBuffer()).toString())).toEqual(config);
  });

  it("builds an environment from a stack's plain values", () => {
    const environment = siteEnvironment({
      apiUrl: "https://func-api.azurewebsites.net",
      blobEndpoint: "https://data.blob.core.windows.net/",
      webPubSubEndpoint: "https://wps.webpubsub.azure.com",
      auth: { mode: "entra", tenantId: "t", spaClientId: "spa", apiClientId: "api" },
    });
    expect(environment.runtimeConfig).toEqual(runtimeConfig("https://func-api.azurewebsites.net", { mode: "entra", tenantId: "t", spaClientId: "spa", apiClientId: "api" }));
    expect(environment.endpoints).toEqual({ blobEndpoint: "https://data.blob.core.windows.net/", webPubSubEndpoint: "https://wps.webpubsub.azure.com" });
  });

  it("refuses a page without its policy element", async () => {
    const environment = {
      runtimeConfig: runtimeConfig("https://api.example.net", { mode: "none" }),
      endpoints: { blobEndpoint: "https://data.blob.core.windows.net/", webPubSubEndpoint: "https://wps.webpubsub.azure.com" },
    };
    expect(() => environmentSiteFiles(readSiteFilesSync(), environment)).toThrow(/index.html must carry exactly one <meta http-equiv="Content-Security-Policy"/);
  });
});

/** The fixture's index.html, which has no policy element. */
function readSiteFilesSync() {
  return [{ name: "index.html", bytes: Buffer.from("<!doctype html><title>v1</title>"), md5: Buffer.alloc(16), contentType: "text/html; charset=utf-8", cacheControl: "no-cache" }];
}

describe("webContainerClient", () => {
  it("points at the account's $web container with the given credential", () => {
    const client = webContainerClient("https://acct.blob.core.windows.net", new RecordingCredential());
    expect(client.url).toBe("https://acct.blob.core.windows.net/%24web");
    expect(client.containerName).toBe("$web");
  });
});
