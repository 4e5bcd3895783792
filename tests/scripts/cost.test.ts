/**
 * The cost estimate's pure pieces: how requests are classified as Azure bills them, how the host's
 * execution lines are read, and the monthly arithmetic over the real stack files. The counting on
 * the local platform itself is npm run bench:ops (a benchmark, not a test).
 */
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parseConfig } from "../../infrastructure/config";
import { parseCostArgs, stackConfig, UsageError } from "../../scripts/cost/cli";
import { blendedJob, estimateStack, requestUnits, runsPerMonth, totals, defaultWorkload } from "../../scripts/cost/estimate";
import type { MeasuredFile } from "../../scripts/cost/measured";
import {
  classifyBlob,
  classifyCosmos,
  countCosmos,
  countServiceBus,
  emptyTally,
  parseExecutionLine,
  perJob,
  webPubSubBilledMessages,
  type Tally,
} from "../../scripts/cost/operations";
import { HOURS_PER_MONTH, prices } from "../../scripts/cost/prices";

const docs = "/dbs/app/colls/jobs/docs";

describe("classifying requests as Azure bills them", () => {
  it("Cosmos: point reads, writes by kind, queries and metadata", () => {
    expect(classifyCosmos({ method: "GET", url: `${docs}/abc`, headers: {} })).toBe("pointRead");
    expect(classifyCosmos({ method: "PUT", url: `${docs}/abc`, headers: {} })).toBe("replace");
    expect(classifyCosmos({ method: "PATCH", url: `${docs}/abc`, headers: {} })).toBe("patch");
    expect(classifyCosmos({ method: "DELETE", url: `${docs}/abc`, headers: {} })).toBe("delete");
    expect(classifyCosmos({ method: "POST", url: docs, headers: {} })).toBe("create");
    expect(classifyCosmos({ method: "POST", url: docs, headers: { "x-ms-documentdb-is-upsert": "True" } })).toBe("upsert");
    expect(classifyCosmos({ method: "POST", url: docs, headers: { "x-ms-documentdb-isquery": "True", "content-type": "application/query+json" } })).toBe("query");
    expect(classifyCosmos({ method: "POST", url: docs, headers: { "content-type": "application/query+json" } })).toBe("query");
    expect(classifyCosmos({ method: "GET", url: "/", headers: {} })).toBe("metadata");
    expect(classifyCosmos({ method: "GET", url: "/dbs/app/colls/jobs", headers: {} })).toBe("metadata");
    expect(classifyCosmos({ method: "GET", url: "/dbs/app/colls/jobs/pkranges", headers: {} })).toBe("metadata");
  });

  it("Blob: the pricing classes (write, read, list and create container, other; deletes free)", () => {
    expect(classifyBlob({ method: "PUT", url: "/acct/uploads/u/a.txt" })).toBe("write");
    expect(classifyBlob({ method: "PUT", url: "/acct/uploads/u/a.txt?comp=block&blockid=x" })).toBe("write");
    expect(classifyBlob({ method: "PUT", url: "/acct/uploads?restype=container" })).toBe("list");
    expect(classifyBlob({ method: "GET", url: "/acct/uploads?restype=container&comp=list" })).toBe("list");
    expect(classifyBlob({ method: "GET", url: "/acct/uploads/u/a.txt" })).toBe("read");
    expect(classifyBlob({ method: "HEAD", url: "/acct/uploads/u/a.txt" })).toBe("other");
    expect(classifyBlob({ method: "GET", url: "/acct/uploads/u/a.txt?comp=metadata" })).toBe("other");
    expect(classifyBlob({ method: "DELETE", url: "/acct/uploads/u/a.txt" })).toBe("delete");
  });

  it("Service Bus: one operation per call, one per 64 KB of a message; tokens not billed", () => {
    const tally = emptyTally();
    countServiceBus(tally, { kind: "send", bytes: 70 * 1024 });
    countServiceBus(tally, { kind: "receive", bytes: 500 });
    countServiceBus(tally, { kind: "settle", outcome: "complete" });
    countServiceBus(tally, { kind: "management", operation: "renew-lock" });
    countServiceBus(tally, { kind: "token" });
    expect(tally.serviceBus).toEqual({ sends: 1, receives: 1, settles: 1, management: { "renew-lock": 1 }, tokens: 1, billedOperations: 5 });
  });

  it("Web PubSub: outbound messages in 2 KB units", () => {
    expect([1, 2048, 2049, 5000].map(webPubSubBilledMessages)).toEqual([1, 1, 2, 3]);
  });

  it("reads the local Functions host's execution lines, and nothing else", () => {
    expect(parseExecutionLine("08:00:02.550 info  negotiate GET /api/negotiate 200 1596 ms")).toEqual({ functionName: "negotiate", trigger: "http", ms: 1596 });
    expect(parseExecutionLine("08:00:04.007 info  processJob message 2181 from jobs completed in 54 ms")).toEqual({ functionName: "processJob", trigger: "serviceBus", ms: 54 });
    expect(parseExecutionLine("08:01:00.012 info  requeueStuckJobs 1a2b3c4d timer run completed in 9 ms")).toEqual({ functionName: "requeueStuckJobs", trigger: "timer", ms: 9 });
    expect(parseExecutionLine("08:00:03.916 info  processJob 184a655b [job 2181] job running (attempt 1)")).toBeUndefined();
    expect(parseExecutionLine("GET /api/jobs 200 3 ms")).toBeUndefined();
  });

  it("per job divides every count", () => {
    const tally = emptyTally();
    countCosmos(tally, { method: "GET", url: `${docs}/a`, headers: {}, status: 200, requestBytes: 0, responseBytes: 1000 });
    countCosmos(tally, { method: "GET", url: `${docs}/b`, headers: {}, status: 200, requestBytes: 0, responseBytes: 3000 });
    expect(perJob(tally, 2).cosmos.pointRead).toEqual({ requests: 1, requestBytes: 0, responseBytes: 2000 });
    expect(() => perJob(tally, 0)).toThrow(/positive integer/);
  });
});

/** A job of known operations: 2 point reads of 1 KB, 1 create of 1 KB, 2 replaces of 1 KB; 3 Service Bus operations; 2 messages; 4 executions of 50 ms. */
function syntheticJob(): Tally {
  const t = emptyTally();
  t.cosmos.pointRead = { requests: 2, requestBytes: 0, responseBytes: 2048 };
  t.cosmos.create = { requests: 1, requestBytes: 1024, responseBytes: 1024 };
  t.cosmos.replace = { requests: 2, requestBytes: 2048, responseBytes: 2048 };
  t.serviceBus = { sends: 1, receives: 1, settles: 1, management: {}, tokens: 0, billedOperations: 3 };
  t.webPubSub = { restCalls: 2, outboundMessages: 2, outboundBytes: 800, billedMessages: 2 };
  t.blob = { write: 1, read: 1, list: 0, other: 1, delete: 0 };
  t.functions = { jobs: { executions: 1, ms: 50 }, job: { executions: 2, ms: 100 }, processJob: { executions: 1, ms: 50 } };
  return t;
}
const measured: MeasuredFile = { measuredAt: "2026-01-01", commit: "test", jobsPerKind: 1, perJob: { text: syntheticJob(), upload: syntheticJob() }, perSession: emptyTally(), timerRunMs: 10 };
const workload = { ...defaultWorkload, jobsPerMonth: 0 };
const line = (lines: ReturnType<typeof estimateStack>, service: string) => lines.find((l) => l.service === service)!;

describe("the monthly arithmetic", () => {
  it("estimates request units from the documented rule: 1 RU a 1 KB read, about 5 a 1 KB insert, twice that a replace", () => {
    expect(requestUnits(syntheticJob())).toBeCloseTo(2 * 1 + 4.95 + 2 * 4.95 * 2, 5);
  });

  it("counts the sweeper's runs from its NCRONTAB schedule", () => {
    expect(runsPerMonth("0 * * * * *")).toBe(43_800);
    expect(runsPerMonth("0 */5 * * * *")).toBe(8_760);
  });

  it("blends text and upload jobs by the upload share, and adds a session's share", () => {
    const session = emptyTally();
    session.functions = { negotiate: { executions: 1, ms: 10 } };
    const blended = blendedJob({ ...measured, perSession: session }, { ...defaultWorkload, jobsPerSession: 10 });
    expect(blended.functions.negotiate).toEqual({ executions: 0.1, ms: 1 });
    expect(blended.functions.job).toEqual({ executions: 2, ms: 100 });
  });

  it("Service Bus Standard: the base charge, 13 M operations included, then tiers", () => {
    const config = parseConfig({ serviceBusSku: "Standard" });
    const base = prices.serviceBus.standardBaseHour.usd * HOURS_PER_MONTH;
    expect(line(estimateStack(config, measured, { ...workload, jobsPerMonth: 4_000_000 }), "Service Bus").atN).toBeCloseTo(base, 6); // 12 M operations: included
    // 40 M jobs × 3 = 120 M operations: 87 M at the second tier, 20 M at the third.
    expect(line(estimateStack(config, measured, { ...workload, jobsPerMonth: 40_000_000 }), "Service Bus").atN).toBeCloseTo(
      base + 87 * prices.serviceBus.standardPerMillionTo100M.usd + 20 * prices.serviceBus.standardPerMillionTo2500M.usd,
      6,
    );
  });

  it("Functions on demand: nothing within the free grant, then executions and GB-s beyond it", () => {
    const config = parseConfig({ functionMemoryMb: 2048 });
    expect(line(estimateStack(config, measured, { ...workload, jobsPerMonth: 10_000 }), "Functions").atN).toBe(0);
    // 10 M jobs: 40 M executions and 2 GB × 0.2 s = 0.4 GB-s each, plus the sweeper's 43,800 runs of 10 ms.
    const executions = 40_000_000 + 43_800 - prices.functions.onDemandFreeExecutions.usd;
    const gbs = 10_000_000 * 0.4 + 43_800 * 0.01 * 2 - prices.functions.onDemandFreeGbSeconds.usd;
    expect(line(estimateStack(config, measured, { ...workload, jobsPerMonth: 10_000_000 }), "Functions").atN).toBeCloseTo(
      (executions / 1e6) * prices.functions.onDemandExecutionsPerMillion.usd + gbs * prices.functions.onDemandGbSecond.usd,
      6,
    );
  });

  it("always-ready api instances cost their baseline idle, and take the api's executions off the free grant", () => {
    const lines = estimateStack(parseConfig({ apiAlwaysReadyInstances: 2 }), measured, { ...workload, jobsPerMonth: 0 });
    const alwaysReady = lines.find((l) => l.item.startsWith("api always ready"))!;
    expect(alwaysReady.idle).toBeCloseTo(2 * 2 * HOURS_PER_MONTH * 3600 * prices.functions.alwaysReadyBaselineGbSecond.usd, 6);
  });

  it("Web PubSub Free: says when the jobs' messages go over its daily limit", () => {
    const config = parseConfig({ webPubSubSku: "Free_F1" });
    expect(line(estimateStack(config, measured, { ...workload, jobsPerMonth: 100_000 }), "Web PubSub").note).not.toMatch(/OVER/);
    expect(line(estimateStack(config, measured, { ...workload, jobsPerMonth: 1_000_000 }), "Web PubSub").note).toMatch(/OVER the Free tier's 20,000 a day/);
  });

  it("reads the real stack files: prod is Premium Service Bus, private endpoints and a gateway; dev is neither", () => {
    const prod = estimateStack(stackConfig("prod"), measured, workload);
    expect(line(prod, "Service Bus").idle).toBeCloseTo(prices.serviceBus.premiumMessagingUnitHour.usd * HOURS_PER_MONTH, 6);
    expect(prod.map((l) => l.service)).toEqual(expect.arrayContaining(["API Management", "Networking"]));
    const dev = estimateStack(stackConfig("dev"), measured, workload);
    expect(dev.map((l) => l.service)).not.toContain("Networking");
    expect(totals(dev).idle).toBeLessThan(1);
  });
});

describe("npm run cost arguments", () => {
  it("refuses bad arguments with a usage error", () => {
    expect(() => parseCostArgs([])).toThrow(UsageError);
    expect(() => parseCostArgs(["--jobs-per-month", "lots"])).toThrow(/whole number/);
    expect(() => parseCostArgs(["--jobs-per-month", "10", "--stack", "staging"])).toThrow(/dev, prod or both/);
    expect(() => parseCostArgs(["--jobs-per-month", "10", "--upload-share", "2"])).toThrow(/0 to 1/);
    expect(() => parseCostArgs(["--jobs-per-month", "10", "--bogus"])).toThrow(UsageError);
    expect(parseCostArgs(["--jobs-per-month", "1_000_000", "--stack", "dev"])).toMatchObject({ stacks: ["dev"], workload: { jobsPerMonth: 1_000_000 } });
  });

  it("exits 2 on bad arguments and prints the table from the checked-in measurement", () => {
    const cli = join(__dirname, "..", "..", "scripts", "cost", "cli.ts");
    const tsx = join(__dirname, "..", "..", "node_modules", "tsx", "dist", "cli.mjs");
    const bad = spawnSync(process.execPath, [tsx, cli, "--stack", "dev"], { encoding: "utf8" });
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/--jobs-per-month is required/);
    const good = spawnSync(process.execPath, [tsx, cli, "--jobs-per-month", "10000"], { encoding: "utf8" });
    expect(good.stderr).toBe("");
    expect(good.status).toBe(0);
    expect(good.stdout).toMatch(/dev stack, USD a month:[\s\S]*Total[\s\S]*prod stack, USD a month:/);
  });
});
