// Loads one service package the way the Functions Node worker does: it supplies
// @azure/functions-core (here a fake that records registerFunction calls), then requires the
// package's entry. Then, optionally, does what the service's first invocations would: loads each
// module its code loads on first use, in order. Prints one JSON line:
//   {"loadMs": <require of the entry>, "functions": [names], "atStart": {pkg: ms},
//    "firstUseMs": <all first-use loads>, "firstUse": {label: ms}, "required": [packages]}
// atStart: packages from node_modules the entry loaded, with inclusive time (none for a bundle).
// The first-use loads are a JSON file: [{"label", "chunk", "module"}] for a bundle (the chunk's
// loader for the module) or [{"label", "file"}] for unbundled code (a file or package to require).
// Plain CommonJS on purpose: it runs in a fresh `node` per measurement, with nothing preloaded.
"use strict";
const { performance } = require("node:perf_hooks");
const Module = require("node:module");
const fs = require("node:fs");
const path = require("node:path");

const [entryArg, loadsArg] = process.argv.slice(2);
if (!entryArg) {
  console.error("usage: node load-service.cjs <service main .js> [first-use loads .json]");
  process.exit(2);
}
const entry = path.resolve(entryArg);

const functions = [];
const disposable = { dispose() {} };
const fakeCore = {
  registerFunction(metadata) {
    functions.push(metadata.name);
    return disposable;
  },
  registerHook() {
    return disposable;
  },
  setProgrammingModel() {},
  getProgrammingModel() {
    return undefined;
  },
  log() {},
};

const atStart = {};
let packageDepth = 0;
const isPackage = (request) =>
  !request.startsWith(".") && !request.startsWith("/") && !request.startsWith("node:") && !Module.builtinModules.includes(request);
const load = Module._load;
Module._load = function (request, ...rest) {
  if (request === "@azure/functions-core") return fakeCore;
  // Time only the outermost package loads: what the service itself asked for.
  if (packageDepth > 0 || !isPackage(request)) return load.call(this, request, ...rest);
  packageDepth++;
  const started = performance.now();
  try {
    return load.call(this, request, ...rest);
  } finally {
    packageDepth--;
    if (!(request in atStart)) atStart[request] = performance.now() - started;
  }
};

const start = performance.now();
require(entry);
const loadMs = performance.now() - start;
const startPackages = { ...atStart };

const firstUse = {};
let firstUseMs = 0;
if (loadsArg) {
  const loads = JSON.parse(fs.readFileSync(loadsArg, "utf8"));
  const requireFromEntry = Module.createRequire(entry);
  const began = performance.now();
  for (const item of loads) {
    const t = performance.now();
    if (item.chunk) {
      const loader = require(path.join(path.dirname(entry), item.chunk))[item.module];
      if (typeof loader !== "function") throw new Error(`${item.chunk} exports no ${item.module}`);
      loader();
    } else {
      requireFromEntry(item.file);
    }
    firstUse[item.label] = (firstUse[item.label] ?? 0) + performance.now() - t;
  }
  firstUseMs = performance.now() - began;
}
// Every package the process required from node_modules, start and first use (none for a package).
const required = Object.keys(atStart);
process.stdout.write(`${JSON.stringify({ loadMs, functions, atStart: startPackages, firstUseMs, firstUse, required })}\n`);
