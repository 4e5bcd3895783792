// Loads one service package the way the Functions Node worker does: it supplies
// @azure/functions-core (here a fake that records registerFunction calls), then requires the
// package's entry. Prints one JSON line: {"loadMs": <require time>, "functions": [names]}.
// Plain CommonJS on purpose: it runs in a fresh `node` per measurement, with nothing preloaded.
"use strict";
const { performance } = require("node:perf_hooks");
const Module = require("node:module");

const entry = process.argv[2];
if (!entry) {
  console.error("usage: node load-service.cjs <path to the service's main .js>");
  process.exit(2);
}

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
const load = Module._load;
Module._load = function (request, ...rest) {
  return request === "@azure/functions-core" ? fakeCore : load.call(this, request, ...rest);
};

const start = performance.now();
require(require("node:path").resolve(entry));
const loadMs = performance.now() - start;
process.stdout.write(`${JSON.stringify({ loadMs, functions })}\n`);
