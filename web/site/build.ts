/**
 * Builds the web app with Vite (web/vite.config.mts): once for a deployment or `npm run build:web`,
 * or watching for `npm start`, where each rebuild is reported so the page can reload. Also measures
 * what a browser downloads in each sign-in mode, from the build's manifest.
 */
import { createHash } from "node:crypto";
import { mkdir, mkdtemp, readdir, readFile, rename, rm, stat, utimes } from "node:fs/promises";
import path from "node:path";
import { gzipSync } from "node:zlib";
import type { InlineConfig, Manifest, Rolldown } from "vite" with { "resolution-mode": "import" };

/** The app's sources (index.html, src/, public/). */
export const webRoot = path.resolve(__dirname, "..");
/** Where the build goes unless told otherwise: what the deployment syncs to `$web`. */
export const defaultWebOutDir = path.resolve(webRoot, "..", "dist", "web");
/** Where deployments keep their builds, one directory per content ({@link buildWebAppSnapshot}). */
export const defaultSnapshotParent = path.resolve(webRoot, "..", "dist", "site");
/** Vite's manifest inside the build: lists every content-hashed file; never deployed (a dot directory). */
export const manifestPath = path.join(".vite", "manifest.json");

export interface WebBuildOptions {
  /** The app's directory (its vite.config.mts, index.html, src/). @default web/ */
  readonly root?: string;
  /** @default dist/web */
  readonly outDir?: string;
  /** Progress and warning lines. @default none */
  readonly log?: (line: string) => void;
}

function viteConfig(options: WebBuildOptions, watch: boolean): InlineConfig {
  return {
    configFile: path.join(options.root ?? webRoot, "vite.config.mts"),
    // Our own progress line replaces Vite's file table; warnings and errors still show.
    logLevel: "warn",
    build: { outDir: path.resolve(options.outDir ?? defaultWebOutDir), emptyOutDir: true, ...(watch ? { watch: {} } : {}) },
  };
}

/** Builds the app once; resolves with the output directory when every file is written. */
export async function buildWebApp(options: WebBuildOptions = {}): Promise<{ outDir: string; ms: number }> {
  const { build } = await import("vite");
  const started = performance.now();
  await build(viteConfig(options, false));
  const ms = Math.round(performance.now() - started);
  const outDir = path.resolve(options.outDir ?? defaultWebOutDir);
  options.log?.(`web app built in ${ms} ms: ${path.relative(process.cwd(), outDir) || outDir}`);
  return { outDir, ms };
}

/** sha256 over every file's name and bytes, dot files included. */
async function directoryHash(dir: string): Promise<string> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  const names = entries.filter((e) => e.isFile()).map((e) => path.relative(dir, path.join(e.parentPath, e.name)).split(path.sep).join("/"));
  const hash = createHash("sha256");
  for (const name of names.sort()) hash.update(`${name}\0`).update(await readFile(path.join(dir, name))).update("\0");
  return hash.digest("hex");
}

/**
 * Builds the app into a directory named after its content (`<parent>/<hash>`) that is never written
 * again, for a deployment: builds running side by side (a preview, the test suite, `npm start`
 * rebuilding dist/web) never see each other's half-written files, and identical sources share one
 * directory. The newest `keep` builds stay; older ones are removed.
 */
export async function buildWebAppSnapshot(options: { parentDir?: string; keep?: number; root?: string; log?: (line: string) => void } = {}): Promise<{ outDir: string; ms: number }> {
  const parent = path.resolve(options.parentDir ?? defaultSnapshotParent);
  await mkdir(parent, { recursive: true });
  const scratch = await mkdtemp(path.join(parent, ".building-"));
  try {
    const { ms } = await buildWebApp({ outDir: scratch, root: options.root, log: options.log });
    const outDir = path.join(parent, (await directoryHash(scratch)).slice(0, 16));
    try {
      await rename(scratch, outDir);
    } catch (error) {
      // The same content is there already (built earlier, or by a build running beside this one).
      if (!(await stat(outDir).catch(() => undefined))?.isDirectory()) throw error;
      const now = new Date();
      await utimes(outDir, now, now);
    }
    await pruneSnapshots(parent, outDir, options.keep ?? 5);
    return { outDir, ms };
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}

async function pruneSnapshots(parent: string, current: string, keep: number): Promise<void> {
  const entries = await readdir(parent, { withFileTypes: true });
  const builds = await Promise.all(
    entries
      .filter((e) => e.isDirectory() && !e.name.startsWith("."))
      // Another build may be pruning at the same time: a directory gone meanwhile is simply skipped.
      .map(async (e) => ({ dir: path.join(parent, e.name), mtime: (await stat(path.join(parent, e.name)).catch(() => undefined))?.mtimeMs })),
  );
  const old = builds
    .filter((b): b is { dir: string; mtime: number } => b.dir !== current && b.mtime !== undefined)
    .sort((a, b) => b.mtime - a.mtime)
    .slice(Math.max(0, keep - 1));
  await Promise.all(old.map((b) => rm(b.dir, { recursive: true, force: true })));
}

export interface WebAppWatcher {
  readonly outDir: string;
  /** How long the first build took. */
  readonly firstBuildMs: number;
  close(): Promise<void>;
}

export interface WebWatchOptions extends WebBuildOptions {
  /** A rebuild after an edit finished and its files are written. */
  readonly onRebuilt: (ms: number) => void;
  /** A rebuild failed (a syntax error, say); the previous files stay in place. */
  readonly onError: (message: string) => void;
}

function isWatcher(value: unknown): value is Rolldown.RolldownWatcher {
  return typeof value === "object" && value !== null && "on" in value && "close" in value;
}

/**
 * Builds the app and keeps rebuilding it when its sources change. Resolves once the first build
 * is written (rejects if that one fails, since nothing could be served).
 */
export async function watchWebApp(options: WebWatchOptions): Promise<WebAppWatcher> {
  const { build } = await import("vite");
  const outDir = path.resolve(options.outDir ?? defaultWebOutDir);
  const watcher = await build(viteConfig(options, true));
  if (!isWatcher(watcher)) throw new Error("Vite did not start watching the web app");
  let started = performance.now();
  let first: { resolve: (ms: number) => void; reject: (error: Error) => void } | undefined;
  const firstBuild = new Promise<number>((resolve, reject) => (first = { resolve, reject }));
  watcher.on("event", async (event) => {
    switch (event.code) {
      case "START":
        started = performance.now();
        break;
      case "BUNDLE_END":
        await event.result.close();
        break;
      case "END": {
        const ms = Math.round(performance.now() - started);
        if (first) {
          first.resolve(ms);
          first = undefined;
        } else options.onRebuilt(ms);
        break;
      }
      case "ERROR": {
        await event.result.close();
        const message = event.error.message.split("\n")[0] ?? String(event.error);
        if (first) {
          first.reject(new Error(`the web app does not build: ${message}`));
          first = undefined;
        } else options.onError(message);
        break;
      }
    }
  });
  const firstBuildMs = await firstBuild.catch(async (error: unknown) => {
    await watcher.close();
    throw error;
  });
  return { outDir, firstBuildMs, close: () => watcher.close() };
}

/** Bytes a browser downloads, raw and gzip-compressed (what Blob Storage serves uncompressed). */
export interface TransferSize {
  readonly bytes: number;
  readonly gzipBytes: number;
}

export interface ModeSizes {
  readonly js: TransferSize;
  readonly css: TransferSize;
  readonly files: readonly string[];
}

/** What the app page downloads: in development (or no sign-in) mode, and in Entra mode (plus MSAL). */
export interface BundleSizes {
  readonly development: ModeSizes;
  readonly entra: ModeSizes;
  /** The redirect bridge page's own scripts (Entra mode only). */
  readonly redirectBridge: ModeSizes;
}

/** The files an entry loads: itself, its static imports (transitively), their CSS. */
function filesOf(manifest: Manifest, keys: readonly string[], seen = new Set<string>()): Set<string> {
  const files = new Set<string>();
  for (const key of keys) {
    if (seen.has(key)) continue;
    seen.add(key);
    const chunk = manifest[key];
    if (!chunk) throw new Error(`the web build's manifest has no entry ${key}`);
    files.add(chunk.file);
    for (const css of chunk.css ?? []) files.add(css);
    for (const file of filesOf(manifest, chunk.imports ?? [], seen)) files.add(file);
  }
  return files;
}

async function sizesOf(outDir: string, files: ReadonlySet<string>): Promise<ModeSizes> {
  const total = { js: { bytes: 0, gzipBytes: 0 }, css: { bytes: 0, gzipBytes: 0 } };
  for (const file of files) {
    const bytes = await readFile(path.join(outDir, file));
    const kind = file.endsWith(".css") ? total.css : total.js;
    kind.bytes += bytes.length;
    kind.gzipBytes += gzipSync(bytes, { level: 9 }).length;
  }
  return { ...total, files: [...files].sort() };
}

/** Measures a build's download per mode, from its manifest. */
export async function bundleSizes(outDir: string = defaultWebOutDir): Promise<BundleSizes> {
  const manifest = JSON.parse(await readFile(path.join(outDir, manifestPath), "utf8")) as Manifest;
  const page = filesOf(manifest, ["index.html"]);
  const entraChunks = (manifest["index.html"]?.dynamicImports ?? []).filter((key) => key.includes("entra"));
  if (entraChunks.length === 0) throw new Error("the web build has no separate Entra sign-in chunk: MSAL would load in every mode");
  const withEntra = new Set([...page, ...filesOf(manifest, entraChunks)]);
  return {
    development: await sizesOf(outDir, page),
    entra: await sizesOf(outDir, withEntra),
    redirectBridge: await sizesOf(outDir, filesOf(manifest, ["redirect.html"])),
  };
}

/** One line per mode, for logs and the README. */
export function describeSizes(sizes: BundleSizes): string[] {
  const kb = (n: number) => `${(n / 1000).toFixed(1)} kB`;
  const line = (name: string, mode: ModeSizes) =>
    `${name}: JS ${kb(mode.js.bytes)} (${kb(mode.js.gzipBytes)} gzip), CSS ${kb(mode.css.bytes)} (${kb(mode.css.gzipBytes)} gzip)`;
  return [line("development identity", sizes.development), line("Entra (MSAL)", sizes.entra), line("redirect bridge page", sizes.redirectBridge)];
}
