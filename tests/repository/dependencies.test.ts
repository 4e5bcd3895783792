/**
 * Every package the repository's own code imports or requires is declared in a package.json that
 * covers it (the root's, or its workspace's for the workspace and its tests/<workspace>/), so a fresh clone's `npm ci` installs it on purpose
 * rather than by luck as some other package's dependency.
 */
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { builtinModules } from "node:module";
import path from "node:path";
import { expect, it } from "vitest";

const root = path.resolve(__dirname, "..", "..");
const tracked = execFileSync("git", ["ls-files", "-z"], { cwd: root, encoding: "utf8" }).split("\0").filter(Boolean);

interface Manifest {
  name?: string;
  dependencies?: Record<string, string>;
  devDependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
}
const manifest = (file: string) => JSON.parse(readFileSync(path.join(root, file), "utf8")) as Manifest;
const declared = (m: Manifest) => new Set([...Object.keys(m.dependencies ?? {}), ...Object.keys(m.devDependencies ?? {}), ...Object.keys(m.peerDependencies ?? {})]);

/** The package a module specifier names (`@scope/name/sub` -> `@scope/name`), or undefined for a relative path or a built-in. */
function packageOf(specifier: string): string | undefined {
  if (specifier.startsWith(".") || specifier.startsWith("/") || specifier.startsWith("node:") || builtinModules.includes(specifier.split("/")[0]!)) return undefined;
  const parts = specifier.split("/");
  return specifier.startsWith("@") ? parts.slice(0, 2).join("/") : parts[0];
}

it("imports only declared packages", () => {
  const rootDeclared = declared(manifest("package.json"));
  const workspaces = tracked.filter((f) => /^(packages\/[^/]+|policy|bootstrap)\/package\.json$/.test(f)).map((f) => ({ dir: path.dirname(f), manifest: manifest(f) }));
  const undeclared: string[] = [];
  for (const file of tracked.filter((f) => /\.(ts|mts|cts|cjs|mjs)$/.test(f) && !f.startsWith("web/site/"))) {
    const text = readFileSync(path.join(root, file), "utf8");
    // A workspace's files, and its tests under tests/<workspace>/, may use what it declares.
    const workspace = workspaces.find((w) => file.startsWith(`${w.dir}/`) || file.startsWith(`tests/${w.dir}/`));
    const allowed = new Set([...rootDeclared, ...(workspace ? declared(workspace.manifest) : []), ...workspaces.map((w) => w.manifest.name ?? "")]);
    const specifiers = [...text.matchAll(/(?:^|[^\w.])(?:import|export)[^'"]*?from\s*["']([^"']+)["']|require\(\s*["']([^"']+)["']\s*\)|import\(\s*["']([^"']+)["']\s*\)/gm)].map((m) => m[1] ?? m[2] ?? m[3] ?? "");
    for (const specifier of specifiers) {
      const name = packageOf(specifier);
      // @azure/functions-core is provided by the Functions worker, never installed.
      if (name && name !== "@azure/functions-core" && !allowed.has(name)) undeclared.push(`${file}: ${name}`);
    }
  }
  expect(undeclared).toEqual([]);
});
