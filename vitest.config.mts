import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["tests/**/*.test.ts", "packages/*/test/**/*.test.ts"],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // Pulumi mocks keep global state per worker: isolate files (the default) and let
    // the 2 cores run files side by side.
    pool: "forks",
    // Trusts the local Cosmos emulator's loopback certificate in every worker (cheap; no servers).
    globalSetup: ["tests/support/global-setup.ts"],
    // The services' deferred require() of their TypeScript modules (tests/support/typescript-require.ts).
    setupFiles: ["tests/support/typescript-require.ts"],
  },
});
