/**
 * The api entry point as the Functions worker loads it: through @azure/functions-core (a fake that
 * records registrations, in a fresh Node process). Checks the routes, methods and auth level the
 * host will see, and that registration loads no package besides @azure/functions (cold start:
 * zod, the SDKs and the OpenAPI generator wait for the first request).
 */
import { execFile } from "node:child_process";
import path from "node:path";
import { promisify } from "node:util";
import { expect, it } from "vitest";

const root = path.resolve(__dirname, "..", "..");

const loader = `
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
require(${JSON.stringify(path.join(root, "functions/src/api/index.ts"))});
process.stdout.write(JSON.stringify({ registrations, packages: [...packages] }));
`;

interface Binding {
  type: string;
  direction: string;
  route?: string;
  methods?: string[];
  authLevel?: string;
}

it("registers each route for the methods it serves and every other method on a second function, anonymously, loading only @azure/functions", async () => {
  const { stdout } = await promisify(execFile)(process.execPath, ["-e", loader], { cwd: root, timeout: 30_000 });
  const { registrations, packages } = JSON.parse(stdout) as { registrations: { name: string; bindings: Record<string, Binding> }[]; packages: string[] };
  const triggers = Object.fromEntries(
    registrations.map((r) => [r.name, Object.values(r.bindings).find((b) => b.type === "httpTrigger")!]),
  );
  const served = (name: string) => [triggers[name]!.route, triggers[name]!.methods?.map((m) => m.toUpperCase()).sort()];
  expect(Object.fromEntries(Object.keys(triggers).filter((name) => !name.endsWith("-other-methods")).map((name) => [name, served(name)]))).toEqual({
    uploads: ["uploads", ["POST"]],
    jobs: ["jobs", ["GET", "POST"]],
    job: ["jobs/{id}", ["GET"]],
    negotiate: ["negotiate", ["GET"]],
    health: ["health", ["GET"]],
    openapi: ["openapi.json", ["GET"]],
    docs: ["docs/{*asset}", ["GET"]],
  });
  for (const [name, trigger] of Object.entries(triggers)) {
    expect(trigger.authLevel).toBe("anonymous");
    if (name.endsWith("-other-methods")) continue;
    // The rest of the methods reach the handler's 405 through a second function on the same route.
    const others = triggers[`${name}-other-methods`]!;
    expect(others.route).toBe(trigger.route);
    expect([...(trigger.methods ?? []), ...(others.methods ?? [])].map((m) => m.toUpperCase()).sort()).toEqual(["DELETE", "GET", "PATCH", "POST", "PUT"]);
  }
  expect(packages).toEqual(["@azure/functions"]);
});
