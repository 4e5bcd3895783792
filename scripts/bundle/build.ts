import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, readFile, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { builtinModules } from "node:module";
import { build, type BuildOptions, type Metafile, type Plugin } from "esbuild";
import type { ServiceName } from "../../functions/src/services";
import { distDir, hostJsonPath, repoRoot, serviceAssets, serviceEntries, type PackageAsset } from "./services";
import { unzipSync } from "fflate";
import { cacheKey, readCached, writeCached } from "./cache";
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

export interface ServiceBundle {
  readonly name: string;
  readonly zipPath: string;
  /** The unpacked package (the same files as the zip), for local hosts and benchmarks. */
  readonly packageDir: string;
  /** sha256 of the zip bytes, hex: THE key for redeploying. */
  readonly sha256: string;
  readonly zipBytes: number;
  /** main.js, what every start compiles. */
  readonly bundleBytes: number;
  /** Both source maps. */
  readonly mapBytes: number;
  /** deferred.js (0 when there is none): compiled on the first deferred require only. */
  readonly deferredBytes: number;
  /** The packages in deferred.js. */
  readonly deferredPackages: readonly string[];
  /** Packages bundled into both files (each file has its own copy and module state). */
  readonly duplicatedPackages: readonly string[];
  /** Inputs ranked by the bytes they put into the bundle, largest first. */
  readonly largestInputs: readonly BundleInput[];
  /** Reused from the cache rather than built. */
  readonly fromCache: boolean;
}

/** The bundle's file name inside the package; package.json `main` points at it. */
export const bundleFileName = "main.js";

/**
 * Builds one service into a self-contained package: minified CommonJS for Node 22 (the Functions runtime) holding
 * everything it imports except `@azure/functions-core`, which the Functions worker provides.
 *
 * Packages a start does not reach (the service's own code gets them only through a deferred
 * `require()`, directly or via an own module it requires lazily: SDK clients created on first use,
 * the telemetry exporter) go to a second file, `deferred.js`, read and compiled only when one of
 * them is first needed. V8 compiles a whole script on load (about 100 ms per MB here), so leaving
 * megabytes of deferred SDKs in main.js would make the bundle start slower than loading from
 * node_modules. Packages a start does reach stay in main.js.
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

  const { deferred, ownInputs } = await analyse(entry, common);
  const zipPath = path.resolve(options.outDir, `${options.name}.zip`);
  const assets = options.assets ?? [];
  const key = options.cacheDir
    ? await cacheKey({
        rootDir,
        ownInputs,
        files: [options.hostJson, ...assets.map((a) => a.source)],
        settings: { name: options.name, sourcesContent: options.sourcesContent ?? false, assets: assets.map((a) => a.path), deferred },
      })
    : undefined;
  if (options.cacheDir && key) {
    const cached = await readCached<CachedMeta>(options.cacheDir, options.name, key);
    if (cached) {
      await writePackage(packageDir, zipPath, cached.zip, Object.entries(unzipSync(cached.zip)).map(([p, bytes]) => ({ path: p, bytes })));
      return { ...cached.meta, name: options.name, zipPath, packageDir, fromCache: true };
    }
  }
  const outputs: { file: string; bytes: Uint8Array; metafile: Metafile }[] = [];
  if (deferred.length > 0) {
    const outfile = path.join(packageDir, deferredFileName);
    const loaders = deferred.map((pkg) => `${JSON.stringify(pkg)}: () => require(${JSON.stringify(pkg)})`).join(",\n");
    const result = await build({
      ...common,
      stdin: { contents: `module.exports = {\n${loaders}\n};\n`, resolveDir: path.dirname(entry), sourcefile: "deferred-packages.js", loader: "js" },
      outfile,
    });
    outputs.push({ file: deferredFileName, bytes: outputFile(result.outputFiles, outfile), metafile: result.metafile });
    outputs.push({ file: `${deferredFileName}.map`, bytes: outputFile(result.outputFiles, `${outfile}.map`), metafile: result.metafile });
  }
  const outfile = path.join(packageDir, bundleFileName);
  const result = await build({ ...common, entryPoints: [entry], outfile, plugins: [deferredPackagesPlugin(deferred)] });
  outputs.unshift(
    { file: bundleFileName, bytes: outputFile(result.outputFiles, outfile), metafile: result.metafile },
    { file: `${bundleFileName}.map`, bytes: outputFile(result.outputFiles, `${outfile}.map`), metafile: result.metafile },
  );

  const hostJson = await readFile(options.hostJson);
  JSON.parse(hostJson.toString("utf8")); // fail here, not in Azure, on a broken host.json
  const files: PackageFile[] = [
    { path: "host.json", bytes: hostJson },
    { path: "package.json", bytes: Buffer.from(packageJsonFor(options.name)) },
    ...outputs.map((o) => ({ path: o.file, bytes: o.bytes })),
    ...(await Promise.all(
      assets.map(async (asset) => ({
        path: asset.path,
        bytes: await readFile(asset.source).catch((error: unknown) => {
          throw new Error(`asset ${asset.path} of ${options.name}: cannot read ${asset.source}: ${error instanceof Error ? error.message : String(error)}`);
        }),
      })),
    )),
  ];
  const zip = deterministicZip(files);

  await writePackage(packageDir, zipPath, zip, files);

  const sizeOf = (file: string) => outputs.find((o) => o.file === file)?.bytes.byteLength ?? 0;
  const code = outputs.filter((o) => o.file.endsWith(".js"));
  const meta: CachedMeta = {
    sha256: sha256Hex(zip),
    zipBytes: zip.byteLength,
    bundleBytes: sizeOf(bundleFileName),
    mapBytes: sizeOf(`${bundleFileName}.map`) + sizeOf(`${deferredFileName}.map`),
    deferredBytes: sizeOf(deferredFileName),
    deferredPackages: deferred,
    largestInputs: mergeRanks(code.map((o) => rankInputs(o.metafile, path.relative(rootDir, path.join(packageDir, o.file))))),
    duplicatedPackages: duplicates(code.map((o) => o.metafile)),
  };
  if (options.cacheDir && key) await writeCached(options.cacheDir, options.name, key, zip, meta);
  return { ...meta, name: options.name, zipPath, packageDir, fromCache: false };
}

type CachedMeta = Omit<ServiceBundle, "name" | "zipPath" | "packageDir" | "fromCache">;

/** The zip, and the same files unpacked beside it (for local hosts and benchmarks). */
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

/** The second file of a package: packages loaded only through deferred `require()`. */
export const deferredFileName = "deferred.js";

/**
 * Packages a start does not need: those the service's own code reaches only through a deferred
 * `require()`, of the package itself or of an own module that imports it. Found by walking the
 * own modules from the entry along static imports; every package imported on that walk is
 * needed at start, every other package the own code uses is deferred.
 */
async function analyse(entry: string, common: BuildOptions & { absWorkingDir: string }): Promise<{ deferred: string[]; ownInputs: string[] }> {
  const analysis = await build({ ...common, entryPoints: [entry], outfile: path.join(path.dirname(entry), "analysis.js"), packages: "external", minify: false, sourcemap: false });
  const inputs = analysis.metafile!.inputs;
  // require.resolve() loads nothing: a package only resolved is neither needed nor deferred.
  const isPackage = (i: { path: string; kind: string; external?: boolean }) =>
    i.external === true &&
    i.kind !== "require-resolve" &&
    !i.path.startsWith("node:") &&
    !builtinModules.includes(i.path) &&
    i.path !== "@azure/functions-core";
  const used = new Set<string>();
  for (const { imports } of Object.values(inputs)) for (const i of imports) if (isPackage(i)) used.add(i.path);

  const atStart = new Set<string>();
  const start = path.relative(common.absWorkingDir, entry).split(path.sep).join("/");
  const seen = new Set<string>([start]);
  for (const queue = [start]; queue.length > 0; ) {
    for (const i of inputs[queue.pop()!]?.imports ?? []) {
      if (i.kind !== "import-statement") continue;
      if (isPackage(i)) atStart.add(i.path);
      else if (!i.external && !seen.has(i.path)) {
        seen.add(i.path);
        queue.push(i.path);
      }
    }
  }
  const ownInputs = Object.keys(inputs).filter((input) => !input.includes("node_modules/"));
  return { deferred: [...used].filter((pkg) => !atStart.has(pkg)).sort(), ownInputs };
}

/**
 * In main.js, the own code's imports of a deferred package load it from deferred.js instead.
 * (Packages inside node_modules that import it keep their own copy: none of them is at start.)
 */
function deferredPackagesPlugin(deferred: readonly string[]): Plugin {
  const names = new Set(deferred);
  return {
    name: "deferred-packages",
    setup(build) {
      build.onResolve({ filter: /.*/ }, (args) => {
        if (args.namespace === "deferred-package" && args.path === `./${deferredFileName}`) return { path: args.path, external: true };
        // Any import kind: a deferred own module may import the package statically.
        const loads = args.kind === "import-statement" || args.kind === "require-call";
        if (loads && args.namespace === "file" && names.has(args.path) && !args.importer.includes("node_modules")) {
          return { path: args.path, namespace: "deferred-package" };
        }
        return undefined;
      });
      build.onLoad({ filter: /.*/, namespace: "deferred-package" }, (args) => ({
        contents: `module.exports = require("./${deferredFileName}")[${JSON.stringify(args.path)}]();`,
        loader: "js",
      }));
    },
  };
}

function mergeRanks(ranks: readonly BundleInput[][]): BundleInput[] {
  const totals = new Map<string, number>();
  for (const input of ranks.flat()) totals.set(input.name, (totals.get(input.name) ?? 0) + input.bytes);
  return [...totals].map(([name, bytes]) => ({ name, bytes })).sort((a, b) => b.bytes - a.bytes || (a.name < b.name ? -1 : 1));
}

/** Packages bundled into both files: two copies, two module states (worth knowing). */
function duplicates(metafiles: readonly Metafile[]): string[] {
  if (metafiles.length < 2) return [];
  const sets = metafiles.map((m) => new Set(Object.keys(m.inputs).filter((i) => i.includes("node_modules/")).map(packageOf)));
  return [...sets[0]!].filter((pkg) => sets.slice(1).some((s) => s.has(pkg))).sort();
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
