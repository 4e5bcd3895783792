import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, readFile, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { build, type Metafile } from "esbuild";
import { distDir, hostJsonPath, repoRoot, serviceEntries, type ServiceName } from "./services";
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
  readonly bundleBytes: number;
  readonly mapBytes: number;
  /** Inputs ranked by the bytes they put into the bundle, largest first. */
  readonly largestInputs: readonly BundleInput[];
}

/** The bundle's file name inside the package; package.json `main` points at it. */
export const bundleFileName = "main.js";

/**
 * Builds one service into a self-contained package: a minified CommonJS bundle (Node 20 and 22)
 * with everything it imports except `@azure/functions-core`, which the Functions worker provides.
 */
export async function buildServiceBundle(options: ServiceBundleOptions): Promise<ServiceBundle> {
  const entry = path.resolve(options.entry);
  const packageDir = path.resolve(options.outDir, options.name);
  const outfile = path.join(packageDir, bundleFileName);
  const rootDir = path.resolve(options.rootDir ?? repoRoot);
  const result = await build({
    entryPoints: [entry],
    outfile,
    // Paths in the metafile and source map are relative to this, never to the caller's cwd.
    absWorkingDir: rootDir,
    bundle: true,
    platform: "node",
    target: "node20",
    format: "cjs",
    minify: true,
    // "linked": a separate .map plus the sourceMappingURL comment Node's --enable-source-maps follows.
    sourcemap: "linked",
    sourcesContent: options.sourcesContent ?? false,
    external: ["@azure/functions-core"],
    metafile: true,
    write: false,
    logLevel: "silent",
  });
  const bundle = outputFile(result.outputFiles, outfile);
  const map = outputFile(result.outputFiles, `${outfile}.map`);
  const hostJson = await readFile(options.hostJson);
  JSON.parse(hostJson.toString("utf8")); // fail here, not in Azure, on a broken host.json
  const files: PackageFile[] = [
    { path: "host.json", bytes: hostJson },
    { path: "package.json", bytes: Buffer.from(packageJsonFor(options.name)) },
    { path: bundleFileName, bytes: bundle },
    { path: `${bundleFileName}.map`, bytes: map },
  ];
  const zip = deterministicZip(files);

  await rm(packageDir, { recursive: true, force: true });
  await mkdir(packageDir, { recursive: true });
  await Promise.all(files.map((f) => writeFile(path.join(packageDir, f.path), f.bytes)));
  const zipPath = path.resolve(options.outDir, `${options.name}.zip`);
  await writeFile(zipPath, zip);

  return {
    name: options.name,
    zipPath,
    packageDir,
    sha256: sha256Hex(zip),
    zipBytes: zip.byteLength,
    bundleBytes: bundle.byteLength,
    mapBytes: map.byteLength,
    largestInputs: rankInputs(result.metafile, path.relative(rootDir, outfile)),
  };
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

/** Builds one of this repository's services (see services.ts) into dist/. */
export async function buildService(name: ServiceName, outDir: string = distDir): Promise<ServiceBundle> {
  const entry = path.join(repoRoot, serviceEntries[name]);
  if (!existsSync(entry)) throw new Error(`service "${name}" has no entry point at ${serviceEntries[name]}`);
  return buildServiceBundle({ name, entry, hostJson: hostJsonPath, outDir });
}
