/** What bench:jobs reads CPU time with (scripts/bench/process-cpu.ts) and how profiles are summed by package (cpu-profile-summary.ts). */
import { spawn } from "node:child_process";
import { once } from "node:events";
import { describe, expect, it } from "vitest";
import { packageOf } from "../../scripts/bench/cpu-profile-summary.js";
import { childPids, commandLine, cpuPerJob, ownCpuMs, processCpuMs } from "../../scripts/bench/process-cpu.js";

describe("CPU time per process", () => {
  it.runIf(process.platform === "linux")("reads a process's CPU time from /proc as it grows, and finds a child by its command line", async () => {
    const before = processCpuMs(process.pid)!;
    const start = ownCpuMs();
    while (ownCpuMs() - start < 100); // spend 100 ms of CPU
    // /proc counts in 10 ms ticks.
    expect(processCpuMs(process.pid)! - before).toBeGreaterThanOrEqual(80);

    const child = spawn(process.execPath, ["-e", "process.stdin.resume()", "bench-marker"], { stdio: ["pipe", "ignore", "ignore"] });
    await once(child, "spawn");
    try {
      expect(childPids()).toContain(child.pid);
      expect(commandLine(child.pid!)).toContain("bench-marker");
    } finally {
      child.kill();
      await once(child, "exit");
    }
    expect(processCpuMs(child.pid!)).toBeUndefined();
  });

  it("divides each process's CPU time over a batch by its jobs, unknown where a reading is missing", () => {
    expect(cpuPerJob({ api: 100, agent: 50, gone: 10 }, { api: 300, agent: 90, gone: undefined }, 20)).toEqual({ api: 10, agent: 2, gone: undefined });
  });

  it("names the package of a profiled script", () => {
    expect(packageOf("file:///repo/node_modules/@azure/cosmos/dist/commonjs/request/RequestHandler.js")).toBe("@azure/cosmos");
    expect(packageOf("file:///repo/node_modules/.pnpm/x/node_modules/rhea/lib/session.js")).toBe("rhea");
    expect(packageOf("file:///repo/functions/src/api/quota-store.ts")).toBe("functions/src/api");
    expect(packageOf("file:///repo/packages/functions-host/src/host.ts")).toBe("packages/functions-host");
    expect(packageOf("node:internal/tls/wrap")).toBe("node:internal");
    expect(packageOf("")).toBe("(native: GC, I/O, program)");
  });
});
