import { createHash } from "node:crypto";
import { readdir, readFile } from "node:fs/promises";
import path from "node:path";
import { contentSecurityPolicy, withContentSecurityPolicy, type SiteEndpoints } from "../../web/site/content-security-policy";
import { runtimeConfig, type AuthSettings, type RuntimeConfig } from "../../web/src/runtime-config";

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

/** Browsers revalidate HTML and config.json on every load, so a deployment shows at once. */
export const htmlCacheControl = "no-cache";
/** Never stored: MSAL's redirect bridge page must always be the deployed one (MSAL's guidance). */
export const noStoreCacheControl = "no-store";
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

/** The web app's runtime configuration, read by the page at start-up: one per environment. */
export const runtimeConfigFile = "config.json";
/** MSAL's redirect bridge page (web/redirect.html). */
export const redirectBridgeFile = "redirect.html";
/** Vite's manifest of the build (web/vite.config.mts): names every content-hashed file it wrote. */
export const buildManifestFile = ".vite/manifest.json";

/**
 * The Cache-Control of a site file. `hashed` lists the files the build says are content-hashed
 * (its manifest); without a manifest, names that look hashed count ({@link isContentHashed}).
 */
export function cacheControlFor(name: string, hashed?: ReadonlySet<string>): string {
  if (name === redirectBridgeFile) return noStoreCacheControl;
  if (/\.html?$/i.test(name) || name === runtimeConfigFile) return htmlCacheControl;
  const isHashed = hashed ? hashed.has(name) : isContentHashed(name);
  return isHashed ? immutableCacheControl : shortCacheControl;
}

/** Every file a Vite manifest names: chunks, their CSS and assets, all content-hashed. */
export function hashedFilesOf(manifest: unknown): Set<string> {
  const files = new Set<string>();
  if (typeof manifest !== "object" || manifest === null) return files;
  for (const chunk of Object.values(manifest as Record<string, unknown>)) {
    if (typeof chunk !== "object" || chunk === null) continue;
    const { file, css, assets } = chunk as { file?: unknown; css?: unknown; assets?: unknown };
    if (typeof file === "string") files.add(file);
    for (const list of [css, assets]) if (Array.isArray(list)) for (const item of list) if (typeof item === "string") files.add(item);
  }
  return files;
}

async function readManifest(root: string): Promise<Set<string> | undefined> {
  const text = await readFile(path.join(root, ...buildManifestFile.split("/")), "utf8").catch(() => undefined);
  if (text === undefined) return undefined;
  try {
    return hashedFilesOf(JSON.parse(text));
  } catch {
    throw new Error(`the site directory ${root} has an unreadable ${buildManifestFile}; build the web app again (npm run build:web)`);
  }
}

function siteFile(name: string, bytes: Buffer, hashed?: ReadonlySet<string>): SiteFile {
  return { name, bytes, md5: createHash("md5").update(bytes).digest(), contentType: contentTypeFor(name), cacheControl: cacheControlFor(name, hashed) };
}

/**
 * Every file under `dir` (dot files excluded), sorted by name, with its headers. A Vite build's
 * manifest (in the dot directory .vite, so never uploaded) says which files are content-hashed.
 */
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
  const hashed = await readManifest(root);
  return Promise.all(names.map(async (name) => siteFile(name, await readFile(path.join(root, ...name.split("/"))), hashed)));
}

/** What makes a build one environment's site: its config.json and the origins its pages may reach. */
export interface SiteEnvironment {
  readonly runtimeConfig: RuntimeConfig;
  readonly endpoints: SiteEndpoints;
}

/** Where an environment's api, Blob endpoint and Web PubSub are, and how its users sign in. */
export interface SiteEnvironmentValues {
  /** The api's origin: `https://<app>.azurewebsites.net` (the app's `url`), or the local host's. */
  readonly apiUrl: string;
  /** The Blob endpoint uploads go to (the data account's `primaryEndpoints.blob`). */
  readonly blobEndpoint: string;
  /** The Web PubSub endpoint (`https://<name>.webpubsub.azure.com`). */
  readonly webPubSubEndpoint: string;
  readonly auth: AuthSettings;
}

/** An environment from the plain values its writer has (stack outputs, or the local platform's URLs). */
export function siteEnvironment(values: SiteEnvironmentValues): SiteEnvironment {
  return {
    runtimeConfig: runtimeConfig(values.apiUrl, values.auth),
    endpoints: { blobEndpoint: values.blobEndpoint, webPubSubEndpoint: values.webPubSubEndpoint },
  };
}

/**
 * The built site as one environment serves it: each HTML page with the environment's
 * Content-Security-Policy, and config.json (no-cache) beside them. One build, any environment.
 */
export function environmentSiteFiles(files: readonly SiteFile[], environment: SiteEnvironment): SiteFile[] {
  const policy = contentSecurityPolicy(environment.runtimeConfig, environment.endpoints);
  const pages = files
    .filter((file) => file.name !== runtimeConfigFile)
    .map((file) =>
      file.contentType.startsWith("text/html") ? { ...siteFile(file.name, Buffer.from(withContentSecurityPolicy(file.bytes.toString("utf8"), policy, file.name))), cacheControl: file.cacheControl } : file,
    );
  const config = siteFile(runtimeConfigFile, Buffer.from(`${JSON.stringify(environment.runtimeConfig, null, 2)}\n`));
  return [...pages, config].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
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

/** The files that go to `$web`: the build, made the environment's site when one is given. */
export async function siteFilesToDeploy(siteDir: string, environment?: SiteEnvironment): Promise<SiteFile[]> {
  const files = await readSiteFiles(siteDir);
  return environment ? environmentSiteFiles(files, environment) : files;
}
