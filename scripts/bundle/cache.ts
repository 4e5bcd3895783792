import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, readdir, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import path from "node:path";
import { version as esbuildVersion } from "esbuild";

/**
 * A content-addressed cache of built packages, so `pulumi preview`, `pulumi up` and the tests
 * that build the same code do not rebuild it (esbuild + zip of a service: seconds of CPU).
 *
 * The key covers everything the package's bytes depend on: the bundler's own source, the esbuild
 * version, the build settings, the contents of every own source file the entry reaches, host.json
 * and assets, tsconfig.json, and the installed dependency tree (npm's node_modules/.package-lock.json,
 * rewritten by every npm install/ci). A package edited by hand inside node_modules is the one
 * change it cannot see: `npm run bundle -- --no-cache` rebuilds from scratch.
 */

const bundlerSources = ["build.ts", "chunks.ts", "trims.ts", "zip.ts", "cache.ts"].map((f) => path.join(__dirname, f));

export interface CacheKeyInputs {
  readonly rootDir: string;
  /** Own source files the entry reaches, relative to rootDir (from the analysis build). */
  readonly ownInputs: readonly string[];
  /** Other files whose bytes matter: host.json, assets. */
  readonly files: readonly string[];
  /** Settings that change the output (name, source-map options, asset paths). */
  readonly settings: unknown;
}

/** The key, or undefined when the installed tree cannot be fingerprinted (then: no caching). */
export async function cacheKey(inputs: CacheKeyInputs): Promise<string | undefined> {
  const installed = path.join(inputs.rootDir, "node_modules", ".package-lock.json");
  if (!existsSync(installed)) return undefined;
  const hash = createHash("sha256");
  const add = async (label: string, file: string) => {
    hash.update(`${label}\0${file}\0`);
    hash.update(existsSync(file) ? await readFile(file) : "(absent)");
    hash.update("\0");
  };
  hash.update(`esbuild ${esbuildVersion}\0${JSON.stringify(inputs.settings)}\0`);
  for (const file of bundlerSources) await add("bundler", file);
  await add("installed", installed);
  await add("tsconfig", path.join(inputs.rootDir, "tsconfig.json"));
  for (const input of [...inputs.ownInputs].sort()) await add("source", path.join(inputs.rootDir, input));
  for (const file of inputs.files) await add("file", file);
  return hash.digest("hex");
}

/** What a cache entry remembers beside the zip. */
export interface CachedPackage<Meta> {
  readonly zip: Uint8Array;
  readonly meta: Meta;
  /** Files built with the package but kept out of the zip (source maps of third-party code), zipped. */
  readonly extra?: Uint8Array;
}

const entryPath = (cacheDir: string, name: string, key: string, ext: string) => path.join(cacheDir, `${name}-${key.slice(0, 32)}.${ext}`);

export async function readCached<Meta extends { sha256: string }>(cacheDir: string, name: string, key: string): Promise<CachedPackage<Meta> | undefined> {
  try {
    const [zip, metaText] = await Promise.all([readFile(entryPath(cacheDir, name, key, "zip")), readFile(entryPath(cacheDir, name, key, "json"), "utf8")]);
    const meta = JSON.parse(metaText) as Meta & { key?: string; extraSha256?: string };
    // A torn or foreign entry is a miss, never a wrong package.
    if (meta.key !== key || createHash("sha256").update(zip).digest("hex") !== meta.sha256) return undefined;
    if (meta.extraSha256 === undefined) return { zip, meta };
    const extra = await readFile(entryPath(cacheDir, name, key, "extra.zip"));
    if (createHash("sha256").update(extra).digest("hex") !== meta.extraSha256) return undefined;
    return { zip, meta, extra };
  } catch {
    return undefined;
  }
}

/** Stores an entry atomically (temp file + rename) and keeps the newest few per service. */
export async function writeCached(cacheDir: string, name: string, key: string, zip: Uint8Array, meta: object, extra?: Uint8Array, keep = 3): Promise<void> {
  await mkdir(cacheDir, { recursive: true });
  const temp = `.${process.pid}-${Date.now()}`;
  const write = async (file: string, bytes: Uint8Array | string) => {
    await writeFile(file + temp, bytes);
    await rename(file + temp, file);
  };
  await write(entryPath(cacheDir, name, key, "zip"), zip);
  if (extra) await write(entryPath(cacheDir, name, key, "extra.zip"), extra);
  // The metadata last: it names what the entry holds, so a torn entry is never read as whole.
  const extraSha256 = extra ? createHash("sha256").update(extra).digest("hex") : undefined;
  await write(entryPath(cacheDir, name, key, "json"), JSON.stringify({ ...meta, key, ...(extraSha256 ? { extraSha256 } : {}) }));

  const mine = (await readdir(cacheDir)).filter((f) => f.startsWith(`${name}-`) && f.endsWith(".zip") && !f.endsWith(".extra.zip"));
  if (mine.length <= keep) return;
  const dated = await Promise.all(mine.map(async (f) => ({ f, mtime: (await stat(path.join(cacheDir, f)).catch(() => undefined))?.mtimeMs ?? 0 })));
  for (const { f } of dated.sort((a, b) => b.mtime - a.mtime).slice(keep)) {
    await rm(path.join(cacheDir, f), { force: true });
    await rm(path.join(cacheDir, f.replace(/\.zip$/, ".extra.zip")), { force: true });
    await rm(path.join(cacheDir, f.replace(/\.zip$/, ".json")), { force: true });
  }
}
