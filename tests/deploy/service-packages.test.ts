/**
 * The real services, packaged as `npm run bundle` packages them: each package registers the same
 * functions as the service's code loaded from node_modules, and everything its code loads on first
 * use loads from its chunks. Catches code the bundler cannot carry (a package read from disk, a
 * require the analysis misses, a module split between chunks) before Azure does.
 */
import { execFile } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import path from "node:path";
import { promisify } from "node:util";
import { unzipSync } from "fflate";
import { readFile, writeFile } from "node:fs/promises";
import { build } from "esbuild";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildService, type ServiceBundle } from "../../scripts/bundle/build";
import { serviceNames, type ServiceName } from "../../functions/src/services";
import { faultPoints } from "../../functions/src/shared/fault-points";
import { repoRoot, serviceEntries } from "../../scripts/bundle/services";

const run = promisify(execFile);
const loader = path.join(repoRoot, "scripts/bench/load-service.cjs");
let work: string;
const bundles = new Map<ServiceName, ServiceBundle>();

interface Loaded {
  functions: string[];
  firstUse: Record<string, number>;
  /** Packages the process required from node_modules. */
  required: string[];
}
const load = async (file: string, loads?: string) => JSON.parse((await run(process.execPath, [loader, file, ...(loads ? [loads] : [])], { cwd: repoRoot })).stdout) as Loaded;

beforeAll(async () => {
  await import("node:fs/promises").then((fs) => fs.mkdir(path.join(repoRoot, ".tmp"), { recursive: true }));
  work = await mkdtemp(path.join(repoRoot, ".tmp", "service-packages-"));
  for (const name of serviceNames) bundles.set(name, await buildService(name, work));
}, 180_000);
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

/** The service's own code in one file, its packages left to node_modules, built as-is (no defines). */
const unbundledBuilds = new Map<ServiceName, Promise<string>>();
function unbundledOf(name: ServiceName): Promise<string> {
  let built = unbundledBuilds.get(name);
  if (!built) {
    const outfile = path.join(work, "unbundled", name, "main.js");
    built = build({ entryPoints: [path.join(repoRoot, serviceEntries[name])], outfile, bundle: true, packages: "external", platform: "node", format: "cjs", logLevel: "silent" }).then(() => outfile);
    unbundledBuilds.set(name, built);
  }
  return built;
}

describe.each(serviceNames)("the %s package", (name) => {
  it("registers exactly the functions its code registers when loaded from node_modules", async () => {
    const unbundled = await unbundledOf(name);
    const [fromPackage, fromSource] = await Promise.all([load(path.join(bundles.get(name)!.packageDir, "main.js")), load(unbundled)]);
    expect(fromPackage.functions.length).toBeGreaterThan(0);
    expect(fromPackage.functions).toEqual(fromSource.functions);
  });

  it("carries no fault point: the bundler folds them away, while the unbundled code has them", async () => {
    const bundle = bundles.get(name)!;
    const scripts = Object.entries(unzipSync(await readFile(bundle.zipPath))).filter(([entry]) => entry.endsWith(".js"));
    expect(scripts.length).toBeGreaterThan(1);
    const code = scripts.map(([, bytes]) => Buffer.from(bytes).toString("utf8")).join("\n");
    expect(code).not.toContain("PLATFORM_FAULT_POINTS_DIR");
    for (const point of Object.keys(faultPoints)) expect(code).not.toContain(point);
    const unbundled = await readFile(await unbundledOf(name), "utf8");
    expect(unbundled).toContain("PLATFORM_FAULT_POINTS_DIR");
  });

  it("loads everything its code loads on first use from its chunks, each module once, and nothing from node_modules", async () => {
    const bundle = bundles.get(name)!;
    expect(bundle.deferredRoots.length).toBeGreaterThan(0);
    expect(bundle.duplicatedModules).toEqual([]);
    const loads = path.join(work, `${name}-loads.json`);
    await writeFile(loads, JSON.stringify(bundle.deferredRoots.map((root) => ({ label: root.module, chunk: root.chunk, module: root.module }))));
    const loaded = await load(path.join(bundle.packageDir, "main.js"), loads);
    expect(Object.keys(loaded.firstUse).sort()).toEqual(bundle.deferredRoots.map((root) => root.module).sort());
    expect(loaded.required).toEqual([]);
    const entries = Object.keys(unzipSync(await readFile(bundle.zipPath)));
    expect(entries.filter((e) => e.includes("node_modules"))).toEqual([]);
  });

  it("is at most 1.5 MB, with each SDK in a chunk of its own and zod without its translations", () => {
    const bundle = bundles.get(name)!;
    expect(bundle.zipBytes).toBeLessThanOrEqual(1.5 * 1024 * 1024);
    expect(bundle.trimmed).toContain("zod/^v4\\/locales\\/index\\.c?js$");
    for (const sdk of ["cosmos", "storage-blob", "web-pubsub"]) {
      expect(bundle.deferredRoots.find((root) => root.module === `functions/src/shared/sdk/${sdk}.ts`)?.chunk).toBe(`lib/shared-sdk-${sdk}.js`);
    }
  });
});
