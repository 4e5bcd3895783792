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

  it("holds host.json, a CommonJS package.json pointing at the bundle, the code, own code's map, the assets, nothing else", async () => {
    const entries = unzipSync(await readFile(first.zipPath));
    expect(Object.keys(entries).sort()).toEqual(["assets/greeting.txt", "host.json", "lib/cockatiel.js", "lib/start.js", "main.js", "main.js.map", "package.json"]);
    // Third-party code's maps stay beside the unpacked package, for debugging.
    for (const map of ["lib/cockatiel.js.map", "lib/start.js.map"]) expect(JSON.parse(await readFile(path.join(first.packageDir, map), "utf8"))).toHaveProperty("mappings");
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

  it("requires nothing at run time but Node built-ins, @azure/functions-core and its own chunks", async () => {
    const builtins = new Set(builtinModules.flatMap((m) => [m, `node:${m}`]));
    const chunks = new Set(first.chunks.map((c) => c.file));
    for (const chunk of chunks) {
      const code = await readFile(path.join(first.packageDir, chunk), "utf8");
      const required = [...code.matchAll(/require\("([^"]+)"\)/g)].map((m) => m[1]!);
      const foreign = required.filter((r) => !builtins.has(r) && r !== "@azure/functions-core" && !chunks.has(path.posix.join(path.posix.dirname(chunk), r)));
      expect(foreign, chunk).toEqual([]);
    }
    const main = await readFile(path.join(first.packageDir, "main.js"), "utf8");
    expect(main.trimEnd().endsWith("//# sourceMappingURL=main.js.map")).toBe(true);
  });

  it("keeps own code in main.js, the packages its start needs in lib/start.js, and one it require()s on first use in a chunk of its own", async () => {
    expect(first.deferredPackages).toEqual(["cockatiel"]);
    expect(first.duplicatedModules).toEqual([]);
    expect(first.chunks.map((c) => [c.file, c.loadedWith])).toEqual([
      ["main.js", "start"],
      ["lib/cockatiel.js", ["cockatiel"]],
      ["lib/start.js", "start"],
    ]);
    expect(first.chunks.find((c) => c.file === "lib/start.js")?.packages).toEqual(expect.arrayContaining(["@azure/functions", "zod"]));
    const main = await readFile(path.join(first.packageDir, "main.js"), "utf8");
    // (booleans, not toContain: a failure would print the whole minified bundle)
    expect(main.includes('require("./lib/cockatiel.js")')).toBe(true);
    expect(main.includes("BulkheadRejectedError")).toBe(false); // cockatiel's own code stays out of main.js
    const [root] = first.deferredRoots;
    const cockatiel = (require(path.join(first.packageDir, root!.chunk)) as Record<string, () => typeof import("cockatiel")>)[root!.module]!();
    expect(typeof cockatiel.retry).toBe("function");
  });

  it("drops zod's translations (trims.ts) and still validates with English messages", () => {
    expect(first.trimmed).toEqual(["zod/^v4\\/locales\\/index\\.c?js$"]);
    const start = require(path.join(first.packageDir, "lib/start.js")) as Record<string, () => typeof import("zod")>;
    const zodModule = Object.keys(start).find((module) => /node_modules\/zod\/[^/]+\.c?js$/.test(module));
    const { z } = start[zodModule!]!();
    expect(z.string().safeParse(42).error?.issues[0]?.message).toBe("Invalid input: expected string, received number");
    expect(Object.keys(z.locales)).toEqual([]);
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

describe("chunks", () => {
  const chunksFixture = path.join(repoRoot, "tests/deploy/fixtures/chunks");
  let chunked: ServiceBundle;
  const loaderOf = (module: string) => {
    const root = chunked.deferredRoots.find((r) => r.module === module);
    if (!root) throw new Error(`no first-use load of ${module}: ${chunked.deferredRoots.map((r) => r.module).join(", ")}`);
    return (require(path.join(chunked.packageDir, root.chunk)) as Record<string, () => { answer(): Promise<string> }>)[root.module]!;
  };
  beforeAll(async () => {
    chunked = await buildServiceBundle({ name: "chunks", entry: path.join(chunksFixture, "index.ts"), hostJson, outDir: path.join(work, "chunks") });
  });

  it("gives each first-use load a chunk, code two of them need one shared chunk, and code nothing reaches no file at all", () => {
    const first = "tests/deploy/fixtures/chunks/first";
    const second = "tests/deploy/fixtures/chunks/second";
    expect(chunked.deferredRoots.map((r) => r.module)).toEqual([`${first}.ts`, `${second}.ts`]);
    const byFile = new Map(chunked.chunks.map((c) => [c.file, c]));
    expect(byFile.get(`lib/${first.replaceAll("/", "-")}.js`)).toMatchObject({ loadedWith: [first], packages: ["cockatiel"] });
    expect(byFile.get(`lib/${second.replaceAll("/", "-")}.js`)).toMatchObject({ loadedWith: [second], packages: [] });
    const shared = chunked.chunks.filter((c) => c.file.startsWith("lib/shared-"));
    expect(shared.map((c) => [c.loadedWith, c.packages])).toEqual([[[first, second], ["zod"]]]);
    expect(chunked.chunks.flatMap((c) => c.packages)).not.toContain("@azure/service-bus");
    expect(chunked.duplicatedModules).toEqual([]);
  });

  it("ships the source maps of chunks of own code only", async () => {
    const entries = Object.keys(unzipSync(await readFile(chunked.zipPath)));
    expect(entries.filter((e) => e.endsWith(".map")).sort()).toEqual(["lib/tests-deploy-fixtures-chunks-second.js.map", "main.js.map"]);
  });

  it("runs both handlers from the package with one copy of the module they share", async () => {
    expect(await loaderOf("tests/deploy/fixtures/chunks/first.ts")().answer()).toBe("first ok 1");
    expect(await loaderOf("tests/deploy/fixtures/chunks/second.ts")().answer()).toBe("second 2 2");
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
    // The maps kept out of the zip come back from the cache too.
    expect((await readFile(path.join(reused.packageDir, "lib/cockatiel.js.map"))).equals(await readFile(path.join(built.packageDir, "lib/cockatiel.js.map")))).toBe(true);

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
