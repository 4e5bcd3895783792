/**
 * The real services, packaged as `npm run bundle` packages them: each package registers the same
 * functions as the service's code loaded from node_modules, and every package it defers to first
 * use loads from deferred.js. Catches code the bundler cannot carry (a package read from disk, a
 * require the analysis misses) before Azure does.
 */
import { execFile } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import path from "node:path";
import { promisify } from "node:util";
import { unzipSync } from "fflate";
import { readFile } from "node:fs/promises";
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
const load = async (file: string, firstUse: readonly string[] = []) =>
  JSON.parse((await run(process.execPath, [loader, file, ...(firstUse.length ? [firstUse.join(",")] : [])], { cwd: repoRoot })).stdout) as Loaded;

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
    const code = (await Promise.all(["main.js", "deferred.js"].map((file) => readFile(path.join(bundle.packageDir, file), "utf8").catch(() => "")))).join("\n");
    expect(code).not.toContain("PLATFORM_FAULT_POINTS_DIR");
    for (const point of Object.keys(faultPoints)) expect(code).not.toContain(point);
    const unbundled = await readFile(await unbundledOf(name), "utf8");
    expect(unbundled).toContain("PLATFORM_FAULT_POINTS_DIR");
  });

  it("loads every deferred package from deferred.js, and nothing from node_modules", async () => {
    const bundle = bundles.get(name)!;
    expect(bundle.deferredPackages.length).toBeGreaterThan(0);
    expect(bundle.duplicatedPackages).toEqual([]);
    const loaded = await load(path.join(bundle.packageDir, "main.js"), bundle.deferredPackages);
    expect(Object.keys(loaded.firstUse).sort()).toEqual(["(deferred.js)", ...bundle.deferredPackages].sort());
    expect(loaded.required).toEqual([]);
    const entries = Object.keys(unzipSync(await readFile(bundle.zipPath)));
    expect(entries.filter((e) => e.includes("node_modules"))).toEqual([]);
  });
});
