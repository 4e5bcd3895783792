import { createHash } from "node:crypto";
import { readdir, readFile } from "node:fs/promises";
import path from "node:path";

/** A frontend file as it will be served from `$web`. */
export interface SiteFile {
  /** Blob name: the path under the site directory, forward slashes. */
  readonly name: string;
  readonly bytes: Buffer;
  /** MD5, as Blob Storage stores it in Content-MD5 (unchanged files are not re-uploaded). */
  readonly md5: Buffer;
  readonly contentType: string;
  readonly cacheControl: string;
}

const contentTypes: Readonly<Record<string, string>> = {
  ".html": "text/html; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".mjs": "text/javascript; charset=utf-8",
  ".json": "application/json",
  ".map": "application/json",
  ".webmanifest": "application/manifest+json",
  ".txt": "text/plain; charset=utf-8",
  ".xml": "application/xml",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".jpg": "image/jpeg",
  ".jpeg": "image/jpeg",
  ".gif": "image/gif",
  ".webp": "image/webp",
  ".avif": "image/avif",
  ".ico": "image/x-icon",
  ".woff": "font/woff",
  ".woff2": "font/woff2",
  ".wasm": "application/wasm",
};

export function contentTypeFor(name: string): string {
  return contentTypes[path.extname(name).toLowerCase()] ?? "application/octet-stream";
}

/** Browsers revalidate HTML on every load, so a deployment shows at once. */
export const htmlCacheControl = "no-cache";
/** A content-hashed name changes whenever its bytes do: cache it for a year. */
export const immutableCacheControl = "public, max-age=31536000, immutable";
/** Other assets (favicon, robots.txt) keep their name across versions: cache briefly. */
export const shortCacheControl = "public, max-age=300";

/**
 * Whether a file name carries a content hash the way bundlers write one (`app.3f9a1c2b.js`,
 * `index-BdWc4uxB.css`): a `.`/`-` separated segment of 8+ url-safe characters with a digit in
 * it, right before the extension. Words like `component` have no digit and do not count.
 */
export function isContentHashed(name: string): boolean {
  const match = /[.-]([A-Za-z0-9_]{8,})\.[A-Za-z0-9]+$/.exec(path.posix.basename(name));
  return match !== null && /\d/.test(match[1]!);
}

export function cacheControlFor(name: string): string {
  if (/\.html?$/i.test(name)) return htmlCacheControl;
  return isContentHashed(name) ? immutableCacheControl : shortCacheControl;
}

/** Every file under `dir` (dot files excluded), sorted by name, with its headers. */
export async function readSiteFiles(dir: string): Promise<SiteFile[]> {
  const root = path.resolve(dir);
  const entries = await readdir(root, { recursive: true, withFileTypes: true }).catch((error: unknown) => {
    throw new Error(`cannot read the site directory ${root}: ${error instanceof Error ? error.message : String(error)}`);
  });
  const names = entries
    .filter((e) => e.isFile())
    .map((e) => path.relative(root, path.join(e.parentPath, e.name)).split(path.sep).join("/"))
    .filter((name) => !name.split("/").some((part) => part.startsWith(".")))
    .sort();
  if (!names.includes("index.html")) throw new Error(`the site directory ${root} has no index.html`);
  return Promise.all(
    names.map(async (name) => {
      const bytes = await readFile(path.join(root, ...name.split("/")));
      return { name, bytes, md5: createHash("md5").update(bytes).digest(), contentType: contentTypeFor(name), cacheControl: cacheControlFor(name) };
    }),
  );
}

/**
 * The site's content hash: names, bytes and headers. Equal hash = nothing to upload, so the
 * Pulumi resource shows no change; the headers are in it so a changed header rule redeploys.
 */
export function siteContentHash(files: readonly SiteFile[]): string {
  const hash = createHash("sha256");
  for (const file of files) {
    hash.update(`${file.name}\0${file.contentType}\0${file.cacheControl}\0${createHash("sha256").update(file.bytes).digest("hex")}\n`);
  }
  return hash.digest("hex");
}
