import { defineConfig } from "vitest/config";

/**
 * `npm run test:faults`: the fault-injection suite (tests/faults/*.faults.ts), the whole local
 * platform with faults injected while jobs are in flight. Apart from `npm test` (which runs a few of
 * the same faults in tests/local/platform.test.ts) because it takes minutes.
 */
export default defineConfig({
  test: {
    include: ["tests/faults/**/*.faults.ts"],
    testTimeout: 180_000,
    hookTimeout: 120_000,
    pool: "forks",
    globalSetup: ["tests/support/global-setup.ts"],
  },
});
