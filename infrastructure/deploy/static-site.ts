import { DefaultAzureCredential, type TokenCredential } from "@azure/identity";
import { BlobServiceClient, type ContainerClient } from "@azure/storage-blob";
import type { SiteFile } from "./site-files";

/** The container Blob Storage serves a static website from. */
export const staticWebsiteContainer = "$web";

/**
 * The `$web` container of an account, reached keylessly (the deployer needs Storage Blob Data
 * Contributor on the account). Tests pass a client of their own instead.
 */
export function webContainerClient(blobEndpoint: string, credential: TokenCredential = new DefaultAzureCredential()): ContainerClient {
  return new BlobServiceClient(blobEndpoint, credential).getContainerClient(staticWebsiteContainer);
}

export interface SiteSyncResult {
  readonly uploaded: readonly string[];
  readonly unchanged: readonly string[];
  readonly deleted: readonly string[];
}

/**
 * Makes the container hold exactly `files`: uploads new and changed files (by MD5 and headers),
 * leaves unchanged ones alone, deletes blobs that no longer exist locally. HTML goes last and
 * deletions after that, so a visitor mid-deployment never gets a page whose assets are missing.
 */
export async function syncStaticSite(container: ContainerClient, files: readonly SiteFile[], log: (message: string) => void = () => {}): Promise<SiteSyncResult> {
  const remote = new Map<string, { md5?: string; contentType?: string; cacheControl?: string }>();
  for await (const blob of container.listBlobsFlat()) {
    remote.set(blob.name, {
      md5: blob.properties.contentMD5 ? Buffer.from(blob.properties.contentMD5).toString("base64") : undefined,
      contentType: blob.properties.contentType,
      cacheControl: blob.properties.cacheControl,
    });
  }

  const changed: SiteFile[] = [];
  const unchanged: string[] = [];
  for (const file of files) {
    const current = remote.get(file.name);
    const same = current?.md5 === file.md5.toString("base64") && current.contentType === file.contentType && current.cacheControl === file.cacheControl;
    (same ? unchanged.push(file.name) : changed.push(file));
  }
  const isHtml = (f: SiteFile) => f.contentType.startsWith("text/html");
  const upload = (file: SiteFile) =>
    container.getBlockBlobClient(file.name).uploadData(file.bytes, {
      blobHTTPHeaders: { blobContentType: file.contentType, blobCacheControl: file.cacheControl, blobContentMD5: file.md5 },
    });
  await forEachLimited(changed.filter((f) => !isHtml(f)), upload);
  await forEachLimited(changed.filter(isHtml), upload);

  const local = new Set(files.map((f) => f.name));
  const deleted = [...remote.keys()].filter((name) => !local.has(name)).sort();
  await forEachLimited(deleted, (name) => container.deleteBlob(name));

  const uploaded = changed.map((f) => f.name);
  log(`static site: ${uploaded.length} uploaded, ${unchanged.length} unchanged, ${deleted.length} deleted`);
  return { uploaded, unchanged, deleted };
}

// A few requests in flight: fast for a small site, polite to the account for a large one.
const parallelRequests = 8;

async function forEachLimited<T>(items: readonly T[], action: (item: T) => Promise<unknown>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await action(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(parallelRequests, items.length) }, worker));
}
