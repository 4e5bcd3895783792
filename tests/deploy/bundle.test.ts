import { execFileSync } from "node:child_process";
import { cp, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { builtinModules } from "node:module";
import path from "node:path";
import { unzipSync } from "fflate";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildServiceBundle, sha256Hex, type ServiceBundle } from "../../scripts/bundle/build";
import { repoRoot, serviceAssets } from "../../scripts/bundle/services";
import { deterministicZip } from "../../scripts/bundle/zip";

const fixture = path.join(repoRoot, "tests/deploy/fixtures/hello");
const hostJson = path.join(repoRoot, "functions/host.json");
let work: string;
let first: ServiceBundle;
let second: ServiceBundle;

beforeAll(async () => {
  // Inside the repository so the copied fixture resolves packages from its node_modules.
  await import("node:fs/promises").then((fs) => fs.mkdir(path.join(repoRoot, ".tmp"), { recursive: true }));
  work = await mkdtemp(path.join(repoRoot, ".tmp", "bundle-test-"));
  const assets = [{ source: path.join(fixture, "greeting.ts"), path: "assets/greeting.txt" }];
  first = await buildServiceBundle({ name: "hello", entry: path.join(fixture, "index.ts"), hostJson, outDir: path.join(work, "a"), assets });
  second = await buildServiceBundle({ name: "hello", entry: path.join(fixture, "index.ts"), hostJson, outDir: path.join(work, "b"), assets });
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

describe("service bundle", () => {
  it("is byte-identical when built twice from the same inputs", async () => {
    const [a, b] = await Promise.all([readFile(first.zipPath), readFile(second.zipPath)]);
    expect(a.equals(b)).toBe(true);
    expect(first.sha256).toBe(second.sha256);
    expect(first.sha256).toBe(sha256Hex(a));
  });

  it("is byte-identical when built from a checkout at another path", async () => {
    // A second checkout: the fixture at the same place in the tree, host.json, tsconfig.json,
    // package.json, and the packages it bundles in its own node_modules (copied, not linked:
    // esbuild would follow a link back to this checkout).
    const checkout = path.join(work, "elsewhere", "another-checkout");
    const relative = path.relative(repoRoot, fixture);
    await cp(fixture, path.join(checkout, relative), { recursive: true });
    for (const file of ["functions/host.json", "tsconfig.json", "package.json"]) await cp(path.join(repoRoot, file), path.join(checkout, file));
    for (const pkg of ["@azure/functions", "@azure/functions-extensions-base", "cookie", "zod", "cockatiel"]) {
      await cp(path.join(repoRoot, "node_modules", pkg), path.join(checkout, "node_modules", pkg), { recursive: true, dereference: true });
    }
    const moved = await buildServiceBundle({
      name: "hello",
      entry: path.join(checkout, relative, "index.ts"),
      hostJson: path.join(checkout, "functions/host.json"),
      // The same place within the checkout (source maps name sources relative to the map).
      outDir: path.join(checkout, path.relative(repoRoot, path.join(work, "a"))),
      rootDir: checkout,
      assets: [{ source: path.join(checkout, relative, "greeting.ts"), path: "assets/greeting.txt" }],
    });
    expect(moved.sha256).toBe(first.sha256);
    // Nothing of either checkout's location is inside.
    const entries = unzipSync(await readFile(moved.zipPath));
    for (const [name, bytes] of Object.entries(entries)) {
      expect(Buffer.from(bytes).includes(repoRoot), `${name} names the checkout's path`).toBe(false);
      expect(Buffer.from(bytes).includes(checkout), `${name} names the checkout's path`).toBe(false);
    }
  });

  it("changes its hash when one byte of the source changes", async () => {
    const copy = path.join(work, "src");
    await cp(fixture, copy, { recursive: true });
    const greeting = path.join(copy, "greeting.ts");
    await writeFile(greeting, (await readFile(greeting, "utf8")).replace("Hello", "Hallo"));
    const changed = await buildServiceBundle({ name: "hello", entry: path.join(copy, "index.ts"), hostJson, outDir: path.join(work, "c") });
    expect(changed.sha256).not.toBe(first.sha256);
  });

  it("holds host.json, a CommonJS package.json pointing at the bundle, the code and maps, the assets, nothing else", async () => {
    const entries = unzipSync(await readFile(first.zipPath));
    expect(Object.keys(entries).sort()).toEqual(["assets/greeting.txt", "deferred.js", "deferred.js.map", "host.json", "main.js", "main.js.map", "package.json"]);
    expect(Buffer.from(entries["assets/greeting.txt"]!).equals(await readFile(path.join(fixture, "greeting.ts")))).toBe(true);
    expect(await readFile(path.join(first.packageDir, "assets/greeting.txt"), "utf8")).toContain("Hello");
    const pkg = JSON.parse(Buffer.from(entries["package.json"]!).toString("utf8")) as Record<string, unknown>;
    expect(pkg.main).toBe("main.js");
    expect(pkg.type).not.toBe("module");
    expect(Buffer.from(entries["host.json"]!).equals(await readFile(hostJson))).toBe(true);
    const map = JSON.parse(Buffer.from(entries["main.js.map"]!).toString("utf8")) as { sources: string[]; sourcesContent?: unknown };
    expect(map.sourcesContent).toBeUndefined();
    expect(map.sources.some((s) => s.endsWith("greeting.ts"))).toBe(true);
  });

  it("requires nothing at run time but Node built-ins and @azure/functions-core", async () => {
    const code = await readFile(path.join(first.packageDir, "main.js"), "utf8");
    const required = new Set([...code.matchAll(/require\("([^"]+)"\)/g)].map((m) => m[1]!));
    const builtins = new Set(builtinModules.flatMap((m) => [m, `node:${m}`]));
    const foreign = [...required].filter((r) => !builtins.has(r) && r !== "@azure/functions-core" && r !== "./deferred.js");
    expect(foreign).toEqual([]);
    expect(required.has("@azure/functions-core")).toBe(true);
    expect(code.trimEnd().endsWith("//# sourceMappingURL=main.js.map")).toBe(true);
  });

  it("moves packages that own code only require() on first use to deferred.js, loaded on demand", async () => {
    expect(first.deferredPackages).toEqual(["cockatiel"]);
    expect(first.duplicatedPackages).toEqual([]);
    const main = await readFile(path.join(first.packageDir, "main.js"), "utf8");
    // (booleans, not toContain: a failure would print the whole minified bundle)
    expect(/require\("\.\/deferred\.js"\)(\["cockatiel"\]|\.cockatiel)\(\)/.test(main)).toBe(true);
    expect(main.includes("BulkheadRejectedError")).toBe(false); // cockatiel's own code stays out of main.js
    const deferred = require(path.join(first.packageDir, "deferred.js")) as Record<string, () => typeof import("cockatiel")>;
    expect(Object.keys(deferred)).toEqual(["cockatiel"]);
    expect(typeof deferred.cockatiel!().retry).toBe("function");
  });

  it("registers its functions when a fresh node loads it the way the Functions worker does", () => {
    const out = execFileSync(process.execPath, [path.join(repoRoot, "scripts/bench/load-service.cjs"), path.join(first.packageDir, "main.js")], {
      encoding: "utf8",
    });
    expect(JSON.parse(out)).toMatchObject({ functions: ["hello"] });
  });

  it("reports the largest inputs from the metafile, packages and own files, largest first", () => {
    const names = first.largestInputs.map((i) => i.name);
    expect(names).toContain("zod");
    expect(names).toContain("@azure/functions");
    expect(names).toContain("tests/deploy/fixtures/hello/greeting.ts");
    const sizes = first.largestInputs.map((i) => i.bytes);
    expect(sizes).toEqual([...sizes].sort((a, b) => b - a));
  });
});

describe("build cache", () => {
  it("reuses a package built from identical inputs, and rebuilds when a source byte or the entry changes", async () => {
    const cacheDir = path.join(work, "cache");
    const src = path.join(work, "cached-src");
    await cp(fixture, src, { recursive: true });
    const options = { name: "hello", entry: path.join(src, "index.ts"), hostJson, cacheDir };
    const built = await buildServiceBundle({ ...options, outDir: path.join(work, "cache-a") });
    const reused = await buildServiceBundle({ ...options, outDir: path.join(work, "cache-b") });
    expect([built.fromCache, reused.fromCache]).toEqual([false, true]);
    expect(reused.sha256).toBe(built.sha256);
    expect((await readFile(reused.zipPath)).equals(await readFile(built.zipPath))).toBe(true);
    expect((await readFile(path.join(reused.packageDir, "main.js"))).equals(await readFile(path.join(built.packageDir, "main.js")))).toBe(true);
    expect(reused.deferredPackages).toEqual(built.deferredPackages);

    await writeFile(path.join(src, "greeting.ts"), (await readFile(path.join(src, "greeting.ts"), "utf8")).replace("Hello", "Hallo"));
    const rebuilt = await buildServiceBundle({ ...options, outDir: path.join(work, "cache-c") });
    expect(rebuilt.fromCache).toBe(false);
    expect(rebuilt.sha256).not.toBe(built.sha256);
  });

  it("treats a damaged entry as a miss, never as a package", async () => {
    const cacheDir = path.join(work, "cache-damaged");
    const options = { name: "hello", entry: path.join(fixture, "index.ts"), hostJson, cacheDir };
    const built = await buildServiceBundle({ ...options, outDir: path.join(work, "damaged-a") });
    const { readdir } = await import("node:fs/promises");
    for (const f of (await readdir(cacheDir)).filter((f) => f.endsWith(".zip"))) await writeFile(path.join(cacheDir, f), "not the package");
    const again = await buildServiceBundle({ ...options, outDir: path.join(work, "damaged-b") });
    expect(again.fromCache).toBe(false);
    expect(again.sha256).toBe(built.sha256);
  });
});

describe("service assets", () => {
  it("ship Swagger UI beside the api's code, where docs.ts looks for it, and nothing for the agent", async () => {
    const assets = serviceAssets("api");
    expect(assets.map((a) => a.path).sort()).toEqual(["swagger-ui/favicon-32x32.png", "swagger-ui/swagger-ui-bundle.js", "swagger-ui/swagger-ui.css"]);
    for (const asset of assets) expect((await readFile(asset.source)).byteLength, asset.source).toBeGreaterThan(0);
    expect(serviceAssets("agent")).toEqual([]);
  });
});

describe("deterministic zip", () => {
  const files = [
    { path: "b.txt", bytes: Buffer.from("b") },
    { path: "a/x.json", bytes: Buffer.from("{}") },
  ];

  it("does not depend on input order, the clock or the time zone", () => {
    const tz = process.env.TZ;
    try {
      process.env.TZ = "UTC";
      const utc = deterministicZip(files);
      process.env.TZ = "Pacific/Kiritimati";
      const far = deterministicZip([...files].reverse());
      expect(Buffer.from(far).equals(Buffer.from(utc))).toBe(true);
    } finally {
      if (tz === undefined) delete process.env.TZ;
      else process.env.TZ = tz;
    }
  });

  it("rejects paths that would escape the package or collide", () => {
    expect(() => deterministicZip([{ path: "../x", bytes: Buffer.from("") }])).toThrow(/relative/);
    expect(() => deterministicZip([{ path: "C:\\x", bytes: Buffer.from("") }])).toThrow(/forward slashes/);
    expect(() => deterministicZip([...files, files[0]!])).toThrow(/duplicate zip entry: b.txt/);
  });
});
