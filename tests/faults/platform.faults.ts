/**
 * The fault-injection suite (`npm run test:faults`): one local platform (kit.ts), and in turn, with
 * jobs in flight, every fault of scenarios.ts, each followed by its audit. Prints the figures per
 * fault (jobs accepted, finished, doubled, lost; the answers the api gave) and writes them to
 * .tmp/faults/report.json.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { repoRoot } from "../../scripts/bundle/services.js";
import { REPORT_HEADER, reportRow, startFaultRig, type FaultReport, type FaultRig } from "./kit.js";
import * as scenarios from "./scenarios.js";

let rig: FaultRig;
const reports: FaultReport[] = [];

beforeAll(async () => {
  rig = await startFaultRig();
}, 120_000);

afterEach((context) => {
  // What the services said, for a failure's post-mortem.
  if (context.task.result?.state === "fail") process.stderr.write(`\n--- last output lines ---\n${quiet(rig.output).slice(-120).join("\n")}\n`);
});

afterAll(async () => {
  await rig?.stop();
  if (reports.length > 0) {
    const table = [REPORT_HEADER, ...reports.map(reportRow)].join("\n");
    process.stdout.write(`\n${table}\n`);
    const directory = join(repoRoot, ".tmp", "faults");
    mkdirSync(directory, { recursive: true });
    writeFileSync(join(directory, "report.json"), `${JSON.stringify({ at: new Date().toISOString(), reports }, null, 2)}\n`);
  }
});

/** The output without the sweeper's once-a-second line. */
const quiet = (lines: readonly string[]) => lines.filter((line) => !/requeueStuckJobs timer run completed/.test(line));

const run = (scenario: (rig: FaultRig) => Promise<FaultReport>) => async () => {
  const report = await scenario(rig);
  reports.push(report);
  expect(report.lost).toBe(0);
  expect(report.doubled).toBe(0);
};

describe("faults while jobs are in flight", () => {
  it("the agent is killed mid-job", run(scenarios.agentKilledMidJob));
  it("the agent is killed after storing an outcome, before completing its message", run(scenarios.agentKilledAfterStoring));
  it("the agent is killed at any moment of a stream of jobs", run(scenarios.agentKilledAnyMoment));
  it("the api is killed between create and send", run(scenarios.apiKilledBetweenCreateAndSend));
  it("the Service Bus emulator stops and starts again", run(scenarios.serviceBusRestarted));
  it("Cosmos refuses connections", run((r) => scenarios.dependencyDown(r, "cosmos", "refuse")));
  it("Cosmos resets connections", run((r) => scenarios.dependencyDown(r, "cosmos", "reset")));
  it("Cosmos is slow", run((r) => scenarios.dependencySlow(r, "cosmos", 200)));
  it("Blob Storage refuses connections", run((r) => scenarios.dependencyDown(r, "blob", "refuse")));
  it("Blob Storage is slow", run((r) => scenarios.dependencySlow(r, "blob", 200)));
  it("Web PubSub refuses connections", run((r) => scenarios.dependencyDown(r, "webPubSub", "refuse")));
  it("Web PubSub resets connections", run((r) => scenarios.dependencyDown(r, "webPubSub", "reset")));
  it("the same message arrives several times", run(scenarios.sameMessageTwice));
});
