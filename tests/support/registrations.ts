/**
 * What a service's entry point registers with the Functions worker, read the way the worker reads
 * it: in a fresh Node process, through a stand-in for `@azure/functions-core` that records each
 * registration. Also records every package the entry's own code loads while registering (through
 * Module._load, which CommonJS `require` and tsx-compiled `import` both go through), so a test can
 * check that registration stays cheap: vitest's own module graph (ES modules) never shows in
 * `require.cache`, so looking there proves nothing.
 */
import { execFile } from "node:child_process";
import path from "node:path";
import { promisify } from "node:util";

const root = path.resolve(__dirname, "..", "..");

export interface Binding {
  type: string;
  direction: string;
  route?: string;
  methods?: string[];
  authLevel?: string;
  queueName?: string;
  connection?: string;
  schedule?: string;
  runOnStartup?: boolean;
}

export interface Registration {
  name: string;
  bindings: Record<string, Binding>;
}

const loader = (entry: string) => `
const Module = require("node:module");
const registrations = [];
const packages = new Set();
const disposable = { dispose() {} };
const core = {
  registerFunction(metadata) { registrations.push(metadata); return disposable; },
  registerHook() { return disposable; },
  setProgrammingModel() {},
  getProgrammingModel() { return undefined; },
  log() {},
};
const load = Module._load;
Module._load = function (request, parent, ...rest) {
  if (request === "@azure/functions-core") return core;
  const fromOurCode = parent && parent.filename && !parent.filename.includes("node_modules");
  const isPackage = !request.startsWith(".") && !request.startsWith("/") && !request.startsWith("node:") && !Module.builtinModules.includes(request);
  if (fromOurCode && isPackage) packages.add(request);
  return load.call(this, request, parent, ...rest);
};
require("tsx/cjs");
packages.clear(); // tsx's own modules are not the service's
require(${JSON.stringify(path.join(root, entry))});
process.stdout.write(JSON.stringify({ registrations, packages: [...packages] }));
`;

/**
 * Loads `entry` (relative to the repository) in a fresh process whose environment holds nothing but
 * PATH: no app setting exists, so a registration that needed one would fail.
 */
export async function registrationsOf(entry: string): Promise<{ registrations: Registration[]; packages: string[] }> {
  const { stdout } = await promisify(execFile)(process.execPath, ["-e", loader(entry)], {
    cwd: root,
    timeout: 30_000,
    env: { PATH: process.env.PATH ?? "" },
  });
  const { registrations, packages } = JSON.parse(stdout) as { registrations: Registration[]; packages: string[] };
  return { registrations, packages };
}

/** The trigger binding of each registered function, by function name. */
export function triggersOf(registrations: readonly Registration[]): Record<string, Binding> {
  return Object.fromEntries(registrations.map((r) => [r.name, Object.values(r.bindings).find((b) => /Trigger$/.test(b.type))!]));
}
