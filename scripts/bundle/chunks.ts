/**
 * How a service's bundle is cut into files, so that a request compiles only the code it uses.
 *
 * V8 parses every byte of a script it loads and compiles each function on its first call: with
 * every package a service defers in one file, the first request paid for all of them (about 100 ms
 * per MB here). So the service's code is cut where its own code loads something on first use (a
 * deferred `require()` or `import()` in own code: handlers, SDK clients, the telemetry exporter),
 * and each module goes to a chunk by which of those first-use loads need it: a module only one of
 * them needs goes to that one's chunk, a module several need to a chunk shared by exactly those.
 * Own code loaded at start is main.js, the packages it needs at start lib/start.js.
 *
 * CommonJS throughout (esbuild splits only ES module output, and ESM loads no faster here): a chunk
 * is a CommonJS file whose exports are loaders, `{ "<module>": () => require(module) }`, one per
 * module other chunks import from it, and an import that crosses chunks becomes
 * `require("./lib/<chunk>.js")["<module>"]()`, so every module exists once, in one chunk.
 */
import { createHash } from "node:crypto";
import path from "node:path";
import type { Metafile, Plugin } from "esbuild";

/** The chunk that holds the service's own code loaded at start. */
export const MAIN_CHUNK = "main.js";
/** The chunk of the packages the service needs at start. */
export const START_CHUNK = "lib/start.js";
/** The chunk of own code loaded at start that code loaded later imports too (main.js exports nothing). */
export const START_OWN_CHUNK = "lib/start-own.js";

/** A module own code loads on first use, and the chunk it starts. */
export interface DeferredRoot {
  /** The module (a path relative to the root; a key of its chunk's exports). */
  readonly module: string;
  /** Its package (`@azure/cosmos`), or undefined for own code. */
  readonly package: string | undefined;
  readonly chunk: string;
}

export interface PlannedChunk {
  /** Path inside the package (`lib/api-handlers.js`). */
  readonly file: string;
  /** When it is loaded: at start, or with the first of these first-use modules. */
  readonly loadedWith: "start" | readonly string[];
  /** The packages it holds (names), and whether it holds own code. */
  readonly packages: readonly string[];
  readonly ownCode: boolean;
}

export interface ChunkPlan {
  readonly chunks: readonly PlannedChunk[];
  readonly roots: readonly DeferredRoot[];
  /** Modules of each chunk that other chunks import (found from the analysis; a build may add some). */
  readonly exports: ReadonlyMap<string, ReadonlySet<string>>;
  /**
   * The chunk of a module (a path relative to the root), or undefined for one the analysis found
   * dead (bundled wherever it is imported; reported if that is twice).
   */
  chunkOf(module: string): string | undefined;
  /** When a chunk (live or not) is loaded: at start, or with the first of these first-use modules. */
  loadedWith(chunk: string): "start" | readonly string[];
}

/** The package directory of a module path (`node_modules/@azure/cosmos`), or undefined for own code. */
export function packageDirOf(module: string): string | undefined {
  const match = /^(.*node_modules\/(?:@[^/]+\/)?[^/]+)\//.exec(module);
  return match?.[1];
}

/** The package name of a package directory (the nearest node_modules wins). */
export function packageNameOf(packageDir: string): string {
  return packageDir.slice(packageDir.lastIndexOf("node_modules/") + "node_modules/".length);
}

/** What a first-use module is called in chunk names and reports: its package, or its own path. */
export function rootName(module: string): string {
  const pkg = packageDirOf(module);
  return pkg ? packageNameOf(pkg) : module.replace(/^functions\/src\//, "").replace(/\.[cm]?[jt]s$/, "");
}

/** A file name for a chunk of one first-use module (`@azure/cosmos` -> `azure-cosmos`, `api/handlers.ts` -> `api-handlers`). */
function chunkFileOf(root: string): string {
  return `lib/${root.replace(/^@/, "").replace(/[^a-zA-Z0-9.-]+/g, "-")}.js`;
}

/** A stable file name for a chunk several first-use modules share. */
function sharedChunkFile(roots: readonly string[]): string {
  return `lib/shared-${createHash("sha256").update(roots.join("\n")).digest("hex").slice(0, 8)}.js`;
}

type Edge = Metafile["inputs"][string]["imports"][number];
/** Imports that load a module (a require.resolve only names it). */
const loads = (edge: Edge) => edge.external !== true && edge.kind !== "require-resolve";
/** In own code, what runs on first use rather than at import: a call to require() or import(). */
const deferred = (edge: Edge) => edge.kind === "require-call" || edge.kind === "dynamic-import";

/** Which chunk each module goes to, over one import graph (the live one, or the whole one). */
function assign(entry: string, modules: ReadonlySet<string>, importsOf: (module: string) => Edge[], isOwn: (module: string) => boolean) {
  const loadedWith = (module: string) => importsOf(module).filter((edge) => !isOwn(module) || !deferred(edge));
  const closure = (start: string, stop: ReadonlySet<string> = new Set()) => {
    const seen = new Set<string>();
    for (const queue = [start]; queue.length > 0; ) {
      const module = queue.pop()!;
      if (seen.has(module) || stop.has(module)) continue;
      seen.add(module);
      for (const edge of loadedWith(module)) queue.push(edge.path);
    }
    return seen;
  };
  const atStart = closure(entry);
  const roots = new Set<string>();
  for (const module of modules) {
    if (!isOwn(module)) continue;
    for (const edge of importsOf(module)) if (deferred(edge) && !atStart.has(edge.path)) roots.add(edge.path);
  }
  // Each module goes with the set of first-use modules that need it.
  const neededBy = new Map<string, string[]>();
  for (const root of [...roots].sort((a, b) => (rootName(a) < rootName(b) ? -1 : 1))) {
    for (const module of closure(root, atStart)) neededBy.set(module, [...(neededBy.get(module) ?? []), rootName(root)]);
  }
  // Own code at start that later code imports, and what it imports at start: main.js is the entry's
  // own build (so tree shaking works on it as on any entry) and exports nothing.
  const startShared = new Set<string>();
  for (const module of neededBy.keys()) {
    for (const edge of importsOf(module)) {
      if (atStart.has(edge.path) && isOwn(edge.path)) for (const reached of closure(edge.path)) if (isOwn(reached)) startShared.add(reached);
    }
  }
  if (startShared.has(entry)) throw new Error(`${entry} is the entry, yet code it loads later imports it`);
  const chunkOf = new Map<string, string>();
  for (const module of atStart) chunkOf.set(module, !isOwn(module) ? START_CHUNK : startShared.has(module) ? START_OWN_CHUNK : MAIN_CHUNK);
  for (const [module, needers] of neededBy) chunkOf.set(module, needers.length === 1 ? chunkFileOf(needers[0]!) : sharedChunkFile(needers));
  return { chunkOf, neededBy, roots };
}

/**
 * Plans the chunks from an analysis build of the whole service (everything bundled, one output):
 * which modules are live (survived tree shaking), who imports whom, and how (own code's static
 * imports load with the importer, its require() and import() on first use; a package's imports all
 * load with it).
 */
export function planChunks(metafile: Metafile, entry: string): ChunkPlan {
  const [output] = Object.values(metafile.outputs);
  if (!output) throw new Error("the analysis build has no output");
  const live = new Set(Object.entries(output.inputs).flatMap(([module, { bytesInOutput }]) => (bytesInOutput > 0 ? [module] : [])));
  live.add(entry);
  const isOwn = (module: string) => packageDirOf(module) === undefined;
  const liveImportsOf = (module: string) => (metafile.inputs[module]?.imports ?? []).filter((edge) => loads(edge) && live.has(edge.path));
  const allImportsOf = (module: string) => (metafile.inputs[module]?.imports ?? []).filter((edge) => loads(edge) && edge.path in metafile.inputs);

  // Live modules are placed by the live graph. A module tree shaking removed can still come back in
  // a chunk's build (a chunk exports whole modules, with code the analysis found unused): it is
  // placed by the whole graph, so that it too exists once, in the chunk of the code that imports it.
  const liveGraph = assign(entry, live, liveImportsOf, isOwn);
  const wholeGraph = assign(entry, new Set(Object.keys(metafile.inputs)), allImportsOf, isOwn);
  const chunkOfModule = new Map([...wholeGraph.chunkOf, ...liveGraph.chunkOf]);
  const neededBy = new Map([...wholeGraph.neededBy, ...liveGraph.neededBy]);
  const roots = liveGraph.roots;
  const importsOf = liveImportsOf;
  const chunkOf = (module: string) => chunkOfModule.get(module);
  const plannedChunkOf = (module: string) => {
    const chunk = chunkOf(module);
    if (!chunk) throw new Error(`${module} is live but in no chunk`);
    return chunk;
  };

  const atStartChunks = new Set([MAIN_CHUNK, START_CHUNK, START_OWN_CHUNK]);
  const loadedWithOf = new Map<string, "start" | string[]>();
  for (const [module, chunk] of chunkOfModule) loadedWithOf.set(chunk, atStartChunks.has(chunk) ? "start" : (neededBy.get(module) ?? []));
  const chunks = new Map<string, { loadedWith: "start" | string[]; packages: Set<string>; ownCode: boolean }>();
  for (const module of live) {
    const chunk = plannedChunkOf(module);
    if (chunk === MAIN_CHUNK) continue;
    const entry = chunks.get(chunk) ?? { loadedWith: loadedWithOf.get(chunk) ?? [], packages: new Set<string>(), ownCode: false };
    const pkg = packageDirOf(module);
    if (pkg) entry.packages.add(packageNameOf(pkg));
    else entry.ownCode = true;
    chunks.set(chunk, entry);
  }

  // Not named `exports`: TypeScript's CommonJS output (ts-node, as Pulumi loads the program) reads this
  // module's own exported constants as `exports.X`, which a local of that name would shadow.
  const chunkExports = new Map<string, Set<string>>();
  for (const module of live) {
    const from = plannedChunkOf(module);
    for (const edge of importsOf(module)) {
      const to = plannedChunkOf(edge.path);
      if (to !== from) chunkExports.set(to, (chunkExports.get(to) ?? new Set()).add(edge.path));
    }
  }

  if (chunkExports.has(MAIN_CHUNK)) throw new Error(`main.js exports nothing, yet other chunks import ${[...chunkExports.get(MAIN_CHUNK)!].join(", ")}`);
  return {
    chunks: [...chunks]
      .map(([file, { loadedWith, packages, ownCode }]) => ({ file, loadedWith, packages: [...packages].sort(), ownCode }))
      .sort((a, b) => (a.file < b.file ? -1 : 1)),
    roots: [...roots].sort().map((module) => {
      const pkg = packageDirOf(module);
      return { module, package: pkg ? packageNameOf(pkg) : undefined, chunk: plannedChunkOf(module) };
    }),
    exports: chunkExports,
    chunkOf,
    loadedWith: (chunk) => loadedWithOf.get(chunk) ?? [],
  };
}

/** The `require()` path from one chunk to another, both relative to the package root. */
export function requirePath(fromChunk: string, toChunk: string): string {
  const relative = path.posix.relative(path.posix.dirname(fromChunk), toChunk);
  return relative.startsWith(".") ? relative : `./${relative}`;
}

/** A module one chunk's build took from another chunk. */
export interface ChunkReference {
  readonly chunk: string;
  readonly module: string;
}

/** The namespace of the stand-ins for modules of other chunks (`chunk-link:<module>.cjs` in a metafile). */
const LINK_NAMESPACE = "chunk-link";

/**
 * The modules a chunk's output takes from other chunks: the stand-ins that survived tree shaking
 * (an import in code the output dropped is resolved all the same, and must not count).
 */
export function referencesIn(metafile: Metafile, plan: ChunkPlan): ChunkReference[] {
  const references: ChunkReference[] = [];
  for (const [file, output] of Object.entries(metafile.outputs)) {
    if (!file.endsWith(".js")) continue;
    for (const [input, { bytesInOutput }] of Object.entries(output.inputs)) {
      if (bytesInOutput === 0 || !input.startsWith(`${LINK_NAMESPACE}:`)) continue;
      const module = input.slice(LINK_NAMESPACE.length + 1, -".cjs".length);
      const chunk = plan.chunkOf(module);
      if (chunk) references.push({ chunk, module });
    }
  }
  return references;
}

/** While building `chunk`, every import of a module planned for another chunk loads it from that chunk instead. */
export function chunkLinkPlugin(options: { plan: ChunkPlan; chunk: string; rootDir: string }): Plugin {
  const { plan, chunk, rootDir } = options;
  return {
    name: "chunk-link",
    setup(build) {
      build.onResolve({ filter: /.*/ }, async (args) => {
        if (args.namespace === LINK_NAMESPACE) return { path: args.path, external: true };
        if (args.kind === "entry-point" || args.kind === "require-resolve" || (args.pluginData as { resolving?: boolean } | undefined)?.resolving) return undefined;
        const resolved = await build.resolve(args.path, { kind: args.kind, importer: args.importer, resolveDir: args.resolveDir, pluginData: { resolving: true } });
        if (resolved.errors.length > 0 || resolved.external || !path.isAbsolute(resolved.path)) return undefined;
        const module = path.relative(rootDir, resolved.path).split(path.sep).join("/");
        const target = plan.chunkOf(module);
        if (target === undefined || target === chunk) return undefined;
        // The stand-in is CommonJS whatever the module is: a path ending in .mjs would make esbuild
        // treat `module.exports =` as ES module code.
        return { path: `${module}.cjs`, namespace: LINK_NAMESPACE, pluginData: { target, module } };
      });
      build.onLoad({ filter: /.*/, namespace: LINK_NAMESPACE }, (args) => {
        const { target, module } = args.pluginData as { target: string; module: string };
        return { contents: `module.exports = require(${JSON.stringify(requirePath(chunk, target))})[${JSON.stringify(module)}]();`, loader: "js" };
      });
    },
  };
}

/** The entry of a chunk's build: one loader per module it exports. */
export function chunkEntry(modules: Iterable<string>, rootDir: string): string {
  const loaders = [...modules].sort().map((module) => `  ${JSON.stringify(module)}: () => require(${JSON.stringify(path.join(rootDir, module))}),`);
  return `module.exports = {\n${loaders.join("\n")}\n};\n`;
}
