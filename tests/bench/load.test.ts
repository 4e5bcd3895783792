/** The load bench's decisions (scripts/bench/load.ts): its options, percentiles and when a step counts as saturated. */
import { describe, expect, it } from "vitest";
import { parseLoadOptions, percentile, saturationOf } from "../../scripts/bench/load.js";

const step = (over: Partial<Parameters<typeof saturationOf>[0]> = {}) => ({
  offeredPerSecond: 40,
  acceptedPerSecond: 40,
  statuses: { "202": 160 },
  succeededMs: { p50: 300, p95: 600, p99: 700 },
  ...over,
});

describe("the load bench", () => {
  it("reads bounded options and refuses others, naming them", () => {
    expect(parseLoadOptions([])).toMatchObject({ users: 20, startRate: 10, stepSeconds: 4, maxJobs: 3000, maxSeconds: 90, apiMaxConcurrent: 100, code: "source" });
    expect(() => parseLoadOptions(["--users", "0"])).toThrow(/--users must be an integer from 1 to 500/);
    expect(() => parseLoadOptions(["--max-seconds", "9999"])).toThrow(/--max-seconds/);
    expect(() => parseLoadOptions(["--code", "docker"])).toThrow(/--code must be source or bundle/);
  });

  it("takes nearest-rank percentiles", () => {
    const sorted = Array.from({ length: 100 }, (_, i) => i + 1);
    expect([50, 95, 99].map((p) => percentile(sorted, p))).toEqual([50, 95, 99]);
    expect(percentile([], 50)).toBeNaN();
  });

  it("calls a step saturated when the api sheds load, accepts too little, or jobs slow down five times", () => {
    expect(saturationOf(step(), 250)).toBeUndefined();
    expect(saturationOf(step({ statuses: { "202": 150, "503": 10 } }), 250)).toMatch(/shed 10 requests/);
    expect(saturationOf(step({ acceptedPerSecond: 30 }), 250)).toMatch(/accepted 30\/s of 40\/s/);
    expect(saturationOf(step({ succeededMs: { p50: 1_300, p95: 2_000, p99: 2_000 } }), 250)).toMatch(/over 5 times/);
    // A fast first step counts as 200 ms: jitter of a few ms is no saturation.
    expect(saturationOf(step({ succeededMs: { p50: 900, p95: 900, p99: 900 } }), 20)).toBeUndefined();
  });
});
