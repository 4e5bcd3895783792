import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, readFile, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { build, type BuildOptions, type Metafile } from "esbuild";
import type { ServiceName } from "../../functions/src/services";
import { distDir, hostJsonPath, repoRoot, serviceAssets, serviceEntries, type PackageAsset } from "./services";
import { unzipSync } from "fflate";
import { cacheKey, readCached, writeCached } from "./cache";
import {
  chunkEntry,
  chunkLinkPlugin,
  MAIN_CHUNK,
  packageDirOf,
  packageNameOf,
  planChunks,
  START_CHUNK,
  type ChunkPlan,
  referencesIn,
  type ChunkReference,
  type DeferredRoot,
} from "./chunks";
import { trimPlugin, type Trim } from "./trims";
import { deterministicZip, type PackageFile } from "./zip";

/** What to bundle, and where the package goes. */
export interface ServiceBundleOptions {
  /** The service name: the zip is `<outDir>/<name>.zip`, the unpacked package `<outDir>/<name>/`. */
  readonly name: string;
  /** The service's entry point (TypeScript); what it imports is all that gets bundled. */
  readonly entry: string;
  /** host.json to ship in the package. */
  readonly hostJson: string;
  readonly outDir: string;
  /**
   * Source map `sourcesContent`: off keeps the zip small (stack traces still map to file and line).
   * @default false
   */
  readonly sourcesContent?: boolean;
  /**
   * Input names in the size report are relative to this (the zip does not depend on it).
   * @default the repository root
   */
  readonly rootDir?: string;
  /**
   * Files the code reads at run time, copied into the package.
   * @default []
   */
  readonly assets?: readonly PackageAsset[];
  /**
   * Reuse a package built from identical inputs (see cache.ts); none when absent.
   * @default undefined
   */
  readonly cacheDir?: string;
}

/** One input's share of the bundle, from esbuild's metafile. */
export interface BundleInput {
  /** A package name (`@azure/cosmos`) or a source file of this repository. */
  readonly name: string;
  readonly bytes: number;
}

/** One file of the package's code. */
export interface BundleChunk {
  /** Path inside the package (`main.js`, `lib/azure-cosmos.js`). */
  readonly file: string;
  readonly bytes: number;
  /** Loaded at start, or with the first of these deferred packages. */
  readonly loadedWith: "start" | readonly string[];
  /** The packages it holds (none for main.js, the service's own code). */
  readonly packages: readonly string[];
}

export interface ServiceBundle {
  readonly name: string;
  readonly zipPath: string;
  /** The unpacked package: the zip's files plus the source maps of third-party code (kept out of the zip). */
  readonly packageDir: string;
  /** sha256 of the zip bytes, hex: THE key for redeploying. */
  readonly sha256: string;
  readonly zipBytes: number;
  /** main.js: the service's own code. */
  readonly bundleBytes: number;
  /** What every start compiles: main.js and the packages it needs at start (lib/start.js). */
  readonly startBytes: number;
  /** Every source map (in packageDir); the zip carries those of chunks of own code only. */
  readonly mapBytes: number;
  /** The chunks loaded on first use (0 when there are none). */
  readonly deferredBytes: number;
  /** The packages own code loads on first use (each the way into its chunk). */
  readonly deferredPackages: readonly string[];
  /** Where each deferred package starts: its chunk and the module own code imports. */
  readonly deferredRoots: readonly DeferredRoot[];
  /** Every code file, main.js first. */
  readonly chunks: readonly BundleChunk[];
  /** Modules bundled into more than one chunk (each copy has its own module state): should be none. */
  readonly duplicatedModules: readonly string[];
  /** Inputs ranked by the bytes they put into the bundle, largest first. */
  readonly largestInputs: readonly BundleInput[];
  /** The trims (trims.ts) that replaced a module of this service: `<package>/<module pattern>`. */
  readonly trimmed: readonly string[];
  /** Reused from the cache rather than built. */
  readonly fromCache: boolean;
}

/** The bundle's file name inside the package; package.json `main` points at it. */
export const bundleFileName = MAIN_CHUNK;

/**
 * Builds one service into a self-contained package: minified CommonJS for Node 22 (the Functions
 * runtime) holding everything it imports except `@azure/functions-core`, which the Functions worker
 * provides.
 *
 * The code is cut into chunks (chunks.ts): main.js is the entry and the own code its start needs,
 * lib/start.js the packages its start needs, and what its code loads only on first use (handlers
 * and their schemas, SDK clients created lazily, the telemetry exporter) is in chunks read and
 * compiled only when a request first needs them, code several of them share once, in a chunk of
 * its own. V8 parses a whole script on load and compiles each function on first call (about 100 ms
 * per MB here), so a request compiles what it uses and nothing else.
 *
 * The zip carries the source maps of chunks of own code only; the maps of chunks with third-party
 * code stay in the unpacked package (`packageDir`, for debugging), out of what is deployed.
 */
export async function buildServiceBundle(options: ServiceBundleOptions): Promise<ServiceBundle> {
  const entry = path.resolve(options.entry);
  const packageDir = path.resolve(options.outDir, options.name);
  const rootDir = path.resolve(options.rootDir ?? repoRoot);
  const common = {
    // Paths in the metafile and source map are relative to this, never to the caller's cwd.
    absWorkingDir: rootDir,
    bundle: true,
    platform: "node",
    target: "node22",
    format: "cjs",
    // ES module builds first, also for packages that declare them only as `module` (OpenTelemetry,
    // rhea-promise): tree shaking then keeps only what the code reaches, half of Service Bus and of
    // the exporter. (esbuild's default for node, main first, guards against `module` builds written
    // for browsers; none of this graph's is, and the bundle tests load every chunk.)
    mainFields: ["module", "main"],
    minify: true,
    // "linked": a separate .map plus the sourceMappingURL comment Node's --enable-source-maps follows.
    sourcemap: "linked",
    sourcesContent: options.sourcesContent ?? false,
    external: ["@azure/functions-core"],
    // Fault points (functions/src/shared/fault-points.ts) exist for the local fault-injection suite
    // only: in a package the variable is `undefined`, so every point folds away to nothing.
    define: { "process.env.PLATFORM_FAULT_POINTS_DIR": "undefined" },
    metafile: true,
    write: false,
    logLevel: "silent",
  } as const satisfies BuildOptions;

  const entryModule = path.relative(rootDir, entry).split(path.sep).join("/");
  const trimmed = new Set<Trim>();
  const analysis = await build({ ...common, entryPoints: [entry], outfile: path.join(packageDir, "analysis.js"), sourcemap: false, plugins: [trimPlugin(trimmed)] });
  const plan = planChunks(analysis.metafile, entryModule);
  const ownInputs = Object.keys(analysis.metafile.inputs).filter((input) => !input.includes("node_modules/"));
  const zipPath = path.resolve(options.outDir, `${options.name}.zip`);
  const assets = options.assets ?? [];
  const key = options.cacheDir
    ? await cacheKey({
        rootDir,
        ownInputs,
        files: [options.hostJson, ...assets.map((a) => a.source)],
        settings: { name: options.name, sourcesContent: options.sourcesContent ?? false, assets: assets.map((a) => a.path) },
      })
    : undefined;
  if (options.cacheDir && key) {
    const cached = await readCached<CachedMeta>(options.cacheDir, options.name, key);
    if (cached) {
      const unpack = (zip: Uint8Array) => Object.entries(unzipSync(zip)).map(([p, bytes]) => ({ path: p, bytes }));
      await writePackage(packageDir, zipPath, cached.zip, [...unpack(cached.zip), ...(cached.extra ? unpack(cached.extra) : [])]);
      return { ...cached.meta, name: options.name, zipPath, packageDir, fromCache: true };
    }
  }

  const built = await buildChunks({ common, entry, packageDir, rootDir, plan });
  const code = [...built.values()];
  const hostJson = await readFile(options.hostJson);
  JSON.parse(hostJson.toString("utf8")); // fail here, not in Azure, on a broken host.json
  const packaged: PackageFile[] = [
    { path: "host.json", bytes: hostJson },
    { path: "package.json", bytes: Buffer.from(packageJsonFor(options.name)) },
    ...code.flatMap((c) => [{ path: c.file, bytes: c.code }, ...(isOwnCodeOnly(c) ? [{ path: `${c.file}.map`, bytes: c.map }] : [])]),
    ...(await Promise.all(
      assets.map(async (asset) => ({
        path: asset.path,
        bytes: await readFile(asset.source).catch((error: unknown) => {
          throw new Error(`asset ${asset.path} of ${options.name}: cannot read ${asset.source}: ${error instanceof Error ? error.message : String(error)}`);
        }),
      })),
    )),
  ];
  const thirdPartyMaps: PackageFile[] = code.filter((c) => !isOwnCodeOnly(c)).map((c) => ({ path: `${c.file}.map`, bytes: c.map }));
  const zip = deterministicZip(packaged);

  await writePackage(packageDir, zipPath, zip, [...packaged, ...thirdPartyMaps]);

  const chunks: BundleChunk[] = code.map((c) => {
    const output = c.metafile.outputs[path.relative(rootDir, path.join(packageDir, c.file)).split(path.sep).join("/")];
    const inputs = Object.entries(output?.inputs ?? {}).flatMap(([input, { bytesInOutput }]) => (bytesInOutput > 0 ? [input] : []));
    const packages = [...new Set(inputs.flatMap((input) => (input.startsWith("chunk-link:") ? [] : [packageDirOf(input)]).flatMap((dir) => (dir ? [packageNameOf(dir)] : []))))].sort();
    return { file: c.file, bytes: c.code.byteLength, loadedWith: plan.loadedWith(c.file), packages };
  });
  const sizeOf = (file: string) => chunks.find((c) => c.file === file)?.bytes ?? 0;
  const meta: CachedMeta = {
    sha256: sha256Hex(zip),
    zipBytes: zip.byteLength,
    bundleBytes: sizeOf(MAIN_CHUNK),
    startBytes: sizeOf(MAIN_CHUNK) + sizeOf(START_CHUNK),
    mapBytes: code.reduce((sum, c) => sum + c.map.byteLength, 0),
    deferredBytes: chunks.filter((c) => c.loadedWith !== "start").reduce((sum, c) => sum + c.bytes, 0),
    deferredPackages: [...new Set(plan.roots.flatMap((r) => (r.package ? [r.package] : [])))].sort(),
    deferredRoots: plan.roots,
    chunks,
    largestInputs: mergeRanks(code.map((c) => rankInputs(c.metafile, path.relative(rootDir, path.join(packageDir, c.file))))),
    duplicatedModules: duplicates(code.map((c) => c.metafile)),
    trimmed: [...trimmed].map((t) => `${t.package}/${t.module.source}`).sort(),
  };
  if (options.cacheDir && key) await writeCached(options.cacheDir, options.name, key, zip, meta, deterministicZip(thirdPartyMaps));
  return { ...meta, name: options.name, zipPath, packageDir, fromCache: false };
}

/** A chunk of the service's own code only: its source map ships in the zip (third-party code's maps stay in dist/). */
function isOwnCodeOnly(chunk: BuiltChunk): boolean {
  return Object.entries(chunk.metafile.outputs)
    .filter(([file]) => file.endsWith(".js"))
    .every(([, output]) =>
      Object.entries(output.inputs).every(([input, { bytesInOutput }]) => bytesInOutput === 0 || input.startsWith("chunk-link:") || packageDirOf(input) === undefined),
    );
}

type CachedMeta = Omit<ServiceBundle, "name" | "zipPath" | "packageDir" | "fromCache">;

interface BuiltChunk {
  readonly file: string;
  readonly code: Uint8Array;
  readonly map: Uint8Array;
  readonly metafile: Metafile;
}

/**
 * Builds main.js and every planned chunk. A chunk exports the modules other chunks import from it;
 * the analysis finds most of them, and a build that imports one more (a module the analysis had
 * shaken out but a chunk's `require()` keeps) has its chunk built again with it, until none is missing.
 */
async function buildChunks(options: { common: BuildOptions & { absWorkingDir: string }; entry: string; packageDir: string; rootDir: string; plan: ChunkPlan }): Promise<Map<string, BuiltChunk>> {
  const { common, entry, packageDir, rootDir, plan } = options;
  const exports = new Map([...plan.exports].map(([chunk, modules]) => [chunk, new Set(modules)]));
  const built = new Map<string, BuiltChunk>();
  const referencesOf = new Map<string, ChunkReference[]>();
  const buildOne = async (file: string) => {
    const outfile = path.join(packageDir, file);
    const plugins = [chunkLinkPlugin({ plan, chunk: file, rootDir }), trimPlugin(new Set())];
    const result =
      file === MAIN_CHUNK
        ? await build({ ...common, entryPoints: [entry], outfile, plugins })
        : await build({
            ...common,
            stdin: { contents: chunkEntry(exports.get(file) ?? [], rootDir), resolveDir: rootDir, sourcefile: `${file} (exports)`, loader: "js" },
            outfile,
            plugins,
          });
    if (!result.metafile) throw new Error(`esbuild wrote no metafile for ${file}`);
    built.set(file, { file, code: outputFile(result.outputFiles, outfile), map: outputFile(result.outputFiles, `${outfile}.map`), metafile: result.metafile });
    referencesOf.set(file, referencesIn(result.metafile, plan));
  };
  let pending = [MAIN_CHUNK, ...plan.chunks.map((c) => c.file).filter((file) => (exports.get(file)?.size ?? 0) > 0)];
  for (let round = 0; pending.length > 0; round++) {
    if (round > 8) throw new Error(`the chunks' exports did not settle after ${round} rounds: ${pending.join(", ")}`);
    await Promise.all(pending.map(buildOne));
    const missing = new Set<string>();
    for (const { chunk, module } of [...referencesOf.values()].flat()) {
      if (chunk === MAIN_CHUNK) throw new Error(`main.js exports nothing, yet a chunk imports ${module} from it`);
      const modules = exports.get(chunk) ?? new Set<string>();
      if (!modules.has(module)) {
        exports.set(chunk, modules.add(module));
        missing.add(chunk);
      }
    }
    pending = [...missing].sort();
  }
  // main.js first, then the chunks by name: the order of the zip and of the report.
  return new Map([...built].sort(([a], [b]) => (a === MAIN_CHUNK ? -1 : b === MAIN_CHUNK ? 1 : a < b ? -1 : 1)));
}

function mergeRanks(ranks: readonly BundleInput[][]): BundleInput[] {
  const totals = new Map<string, number>();
  for (const input of ranks.flat()) totals.set(input.name, (totals.get(input.name) ?? 0) + input.bytes);
  return [...totals].map(([name, bytes]) => ({ name, bytes })).sort((a, b) => b.bytes - a.bytes || (a.name < b.name ? -1 : 1));
}

/** The zip, and the package unpacked beside it (the zip's files and the maps kept out of it), for local hosts and benchmarks. */
async function writePackage(packageDir: string, zipPath: string, zip: Uint8Array, files: readonly PackageFile[]): Promise<void> {
  await rm(packageDir, { recursive: true, force: true });
  await mkdir(packageDir, { recursive: true });
  await Promise.all(
    files.map(async (f) => {
      await mkdir(path.dirname(path.join(packageDir, f.path)), { recursive: true });
      await writeFile(path.join(packageDir, f.path), f.bytes);
    }),
  );
  await mkdir(path.dirname(zipPath), { recursive: true });
  await writeFile(zipPath, zip);
}

/** Modules bundled into more than one chunk: two copies, two module states (should be none). */
function duplicates(metafiles: readonly Metafile[]): string[] {
  const chunksOf = new Map<string, number>();
  for (const metafile of metafiles) {
    for (const [file, output] of Object.entries(metafile.outputs)) {
      if (!file.endsWith(".js")) continue;
      for (const [input, { bytesInOutput }] of Object.entries(output.inputs)) {
        if (bytesInOutput > 0 && !input.startsWith("chunk-link:") && !input.startsWith("<stdin>")) chunksOf.set(input, (chunksOf.get(input) ?? 0) + 1);
      }
    }
  }
  return [...chunksOf].filter(([, count]) => count > 1).map(([module]) => module).sort();
}

/** The package.json Functions reads to find the code: CommonJS, `main` at the bundle. */
export function packageJsonFor(service: string): string {
  return `${JSON.stringify({ name: service, private: true, type: "commonjs", main: bundleFileName }, null, 2)}\n`;
}

export function sha256Hex(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

function outputFile(files: readonly { path: string; contents: Uint8Array }[] | undefined, wanted: string): Uint8Array {
  const file = files?.find((f) => path.resolve(f.path) === wanted);
  if (!file) throw new Error(`esbuild produced no ${wanted}`);
  return file.contents;
}

/** Sums bytesInOutput per package (node_modules/<pkg>/...) or per own source file. */
export function rankInputs(metafile: Metafile, outputKey: string): BundleInput[] {
  const output = metafile.outputs[outputKey.split(path.sep).join("/")];
  if (!output) throw new Error(`metafile has no output ${outputKey}`);
  const totals = new Map<string, number>();
  for (const [input, { bytesInOutput }] of Object.entries(output.inputs)) {
    const name = packageOf(input);
    totals.set(name, (totals.get(name) ?? 0) + bytesInOutput);
  }
  return [...totals]
    .map(([name, bytes]) => ({ name, bytes }))
    .filter((i) => i.bytes > 0)
    .sort((a, b) => b.bytes - a.bytes || (a.name < b.name ? -1 : 1));
}

function packageOf(input: string): string {
  const parts = input.split("/");
  const at = parts.lastIndexOf("node_modules");
  if (at < 0) return input;
  const first = parts[at + 1] ?? input;
  return first.startsWith("@") ? `${first}/${parts[at + 2] ?? ""}` : first;
}

/** Where buildService keeps packages built from identical inputs. */
export const defaultCacheDir = path.join(distDir, ".cache");

/** Builds one of the registry's services (functions/src/services.ts) into dist/, reusing an identical earlier build. */
export async function buildService(name: ServiceName, outDir: string = distDir, options: { cache?: boolean } = {}): Promise<ServiceBundle> {
  const entry = path.join(repoRoot, serviceEntries[name]);
  if (!existsSync(entry)) throw new Error(`service "${name}" has no entry point at ${serviceEntries[name]}`);
  return buildServiceBundle({ name, entry, hostJson: hostJsonPath, outDir, assets: serviceAssets(name), cacheDir: options.cache === false ? undefined : defaultCacheDir });
}
