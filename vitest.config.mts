import { defineConfig } from "vitest/config";

/**
 * Test files that need a fresh module registry of their own: they load the Pulumi program (whose
 * resources are registered once per load, against the mocks the file set up), start or record
 * OpenTelemetry (one global provider per process), or install the Functions host's core module
 * before @azure/functions is first required. Every other file shares its worker's modules with the
 * files before it (`isolate: false`): the suite then imports zod, the Azure SDKs and Pulumi once per
 * worker instead of once per file, which was about a third of its time. The infrastructure and
 * policy files are named one by one: those that only call the program's pure functions (names,
 * config, settings, policies) share a worker too; a new file that installs the Pulumi mocks
 * (tests/infrastructure/support/mocks.ts) and builds the program from this checkout belongs here.
 */
const ISOLATED = [
  "tests/infrastructure/app-registrations.test.ts",
  "tests/infrastructure/gateway.test.ts",
  "tests/infrastructure/platform.test.ts",
  "tests/infrastructure/prod-stack.test.ts",
  "tests/infrastructure/program.test.ts",
  "tests/infrastructure/transforms.test.ts",
  "tests/infrastructure/unique-suffix.test.ts",
  "tests/policy/pack.test.ts",
  "tests/policy/program.test.ts",
  "tests/bootstrap/**/*.test.ts",
  "tests/env/**/*.test.ts",
  "tests/deploy/code-deployment.test.ts",
  "tests/deploy/platform-deployments.test.ts",
  "tests/functions/agent-emulators.test.ts",
  "tests/functions/agent.test.ts",
  "tests/functions/api-tracing.test.ts",
  "tests/functions/external-processor.test.ts",
  "tests/functions/telemetry-export.test.ts",
  "tests/functions/telemetry.test.ts",
  "packages/functions-host/test/core-contract.test.ts",
];
const ALL = ["tests/**/*.test.ts", "packages/*/test/**/*.test.ts"];

export default defineConfig({
  test: {
    testTimeout: 30_000,
    hookTimeout: 60_000,
    pool: "forks",
    // Two files at a time (vitest's default is one fewer than the cores: one here). Most files wait on
    // child processes and sockets, so a second worker uses the time the first leaves idle.
    maxWorkers: 2,
    // Trusts the local Cosmos emulator's loopback certificate in every worker (cheap; no servers).
    globalSetup: ["tests/support/global-setup.ts"],
    // The services' deferred require() of their TypeScript modules (tests/support/typescript-require.ts).
    setupFiles: ["tests/support/typescript-require.ts"],
    projects: [
      { extends: true, test: { name: "isolated", include: ISOLATED, isolate: true } },
      { extends: true, test: { name: "shared", include: ALL, exclude: ISOLATED, isolate: false } },
    ],
  },
});
