// Loads a Pulumi program (infrastructure/index.ts unless a path is given, relative to the working
// directory, which is the project's directory as under `pulumi up`) the way Pulumi's nodejs language host does for a CommonJS
// TypeScript project (@pulumi/pulumi cmd/run/run.js, non-ESM branch): ts-node from the project,
// registered with the project's tsconfig over Pulumi's defaults. Resources go to mocks, because
// the CLI and Azure are not here. Prints the exported output names as JSON and exits 0, or exits 1
// with the error: what `pulumi preview` would print before talking to any provider.
"use strict";
const path = require("node:path");
const pulumi = require("@pulumi/pulumi");
const tsutils = require("@pulumi/pulumi/tsutils");

const project = process.argv[2];
const stack = process.argv[3];
const main = process.argv[4] || "infrastructure/index.ts";

pulumi.runtime.setMocks(
  {
    // ARM-shaped IDs: the program derives role definition IDs from them.
    newResource: (args) => ({
      id: `/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg/providers/${args.type.replace(/:/g, ".")}/${args.name}`,
      state: args.inputs,
    }),
    call: (args) =>
      args.token === "azure-native:authorization:getClientConfig"
        ? { subscriptionId: "00000000-0000-0000-0000-000000000000", tenantId: "t", objectId: "o", clientId: "c" }
        : args.inputs,
  },
  project,
  stack,
  true,
);

const tsConfigPath = "tsconfig.json";
const compilerOptions = tsutils.loadTypeScriptCompilerOptions(tsConfigPath);
const { tsnodeRequire, typescriptRequire } = tsutils.typeScriptRequireStrings();
require(tsnodeRequire).register({
  compiler: typescriptRequire,
  transpileOnly: process.env.PULUMI_NODEJS_TRANSPILE_ONLY === "true",
  project: tsConfigPath,
  skipProject: false,
  compilerOptions: { target: "ES2020", module: "nodenext", moduleResolution: "nodenext", sourceMap: "true", ...compilerOptions },
});

try {
  const program = require(path.resolve(main));
  process.stdout.write(JSON.stringify(Object.keys(program).sort()) + "\n");
} catch (error) {
  process.stderr.write(String(error && error.stack ? error.stack : error) + "\n");
  process.exit(1);
}
