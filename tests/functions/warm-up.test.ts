/**
 * The start-up warm-up (functions/src/shared/warm-up.ts): it runs after the appStart hook returns,
 * logs one line when it ends, and a failure (rejected or thrown) is logged, never thrown at the
 * worker nor left as an unhandled rejection.
 */
import { describe, expect, it } from "vitest";
import { WARMED_UP, warmUpInBackground } from "../../functions/src/shared/warm-up.js";

function logged(): { lines: string[]; next: Promise<string>; log: (line: string) => void } {
  const lines: string[] = [];
  let resolve!: (line: string) => void;
  const next = new Promise<string>((r) => (resolve = r));
  return { lines, next, log: (line) => (lines.push(line), resolve(line)) };
}

describe("warmUpInBackground", () => {
  it("starts only after the hook has returned, and logs how long it took", async () => {
    const { lines, next, log } = logged();
    let started = false;
    warmUpInBackground("api", async () => void (started = true), log);
    // The hook's caller (the worker) goes on first.
    expect(started).toBe(false);
    expect(await next).toMatch(new RegExp(`^api: ${WARMED_UP} \\d+ ms`));
    expect(started).toBe(true);
    expect(lines).toHaveLength(1);
  });

  it("logs a failed warm-up (rejected or thrown) in one line and lets it go", async () => {
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on("unhandledRejection", onUnhandled);
    try {
      const rejected = logged();
      warmUpInBackground("agent", () => Promise.reject(new Error("cosmos unreachable")), rejected.log);
      expect(await rejected.next).toBe("agent: warm-up failed, the first invocation will try again: cosmos unreachable");

      const thrown = logged();
      warmUpInBackground("agent", () => {
        throw new Error("settings missing");
      }, thrown.log);
      expect(await thrown.next).toBe("agent: warm-up failed, the first invocation will try again: settings missing");
      // A macrotask later, any unhandled rejection would have been reported.
      await new Promise((resolve) => setImmediate(resolve));
      expect(unhandled).toEqual([]);
    } finally {
      process.off("unhandledRejection", onUnhandled);
    }
  });
});
