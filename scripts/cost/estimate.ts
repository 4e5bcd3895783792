/**
 * The monthly cost of a stack, idle and at N jobs a month: the stack's configuration (tiers, units,
 * always-ready instances, memory, gateway, private networking) × the prices (prices.ts) × the
 * operations one job costs (measured.json, npm run bench:ops). Pure: `npm run cost` prints it,
 * the unit test checks the arithmetic.
 */
import { parseNcrontab } from "@platform-tools/functions-host";
import type { PlatformConfig } from "../../infrastructure/config.js";
import { privateLinkServices } from "../../infrastructure/private-networking.js";
import type { MeasuredFile } from "./measured.js";
import type { Tally } from "./operations.js";
import { HOURS_PER_MONTH, SECONDS_PER_MONTH, prices, requestUnitRule } from "./prices.js";

const DAYS_PER_MONTH = HOURS_PER_MONTH / 24;

/** How the jobs of a month are made up; the defaults are assumptions, shown with the table. */
export interface Workload {
  jobsPerMonth: number;
  /** Share of jobs that upload a file (the rest submit text). @default 0.5 */
  uploadShare: number;
  /** Jobs a browser session submits on average (negotiate, connection and first page are per session). @default 10 */
  jobsPerSession: number;
  /**
   * Telemetry ingested per function execution and per dependency call, in bytes (request,
   * dependency and trace items; not measured here: an assumption). @default 1500 and 500
   */
  telemetryBytesPerExecution: number;
  telemetryBytesPerDependency: number;
}

export const defaultWorkload: Omit<Workload, "jobsPerMonth"> = {
  uploadShare: 0.5,
  jobsPerSession: 10,
  telemetryBytesPerExecution: 1500,
  telemetryBytesPerDependency: 500,
};

export interface CostLine {
  service: string;
  item: string;
  /** USD a month with no jobs. */
  idle: number;
  /** USD a month at the workload's jobs (idle included). */
  atN: number;
  note?: string;
}

/** The services the api runs (its HTTP functions run on its always-ready instances when it has any). */
const API_FUNCTIONS = new Set(["uploads", "jobs", "job", "negotiate", "health", "openapi", "docs"]);

/**
 * With zone redundancy Azure keeps at least two always-ready instances per scale group, billed as
 * always ready (infrastructure/components/function-app.ts): the api's `http` group, and one group per
 * Service Bus function of the agent (processJob and failDeadLetteredJob).
 */
const ZONE_REDUNDANT_MINIMUM_INSTANCES = 2;
const AGENT_SCALE_GROUPS = 2;
/** Cosmos DB request units cost 1.25 times as much in a zone-redundant region (Microsoft's Cosmos DB reliability article). */
const ZONE_REDUNDANT_RU_FACTOR = 1.25;

/** Estimated request units of a window's Cosmos requests (prices.ts requestUnitRule). */
export function requestUnits(tally: Tally): number {
  const avg = (bytes: number, requests: number) => (requests > 0 ? bytes / requests : 0);
  const c = tally.cosmos;
  const r = requestUnitRule;
  // A point read that misses (404, a few hundred bytes back) costs about 1 RU, like a small hit.
  return (
    c.pointRead.requests * r.pointRead(avg(c.pointRead.responseBytes, c.pointRead.requests)) +
    (c.create.requests + c.upsert.requests + c.batch.requests) *
      r.write(avg(c.create.requestBytes + c.upsert.requestBytes + c.batch.requestBytes, c.create.requests + c.upsert.requests + c.batch.requests)) +
    (c.replace.requests + c.patch.requests) * r.write(avg(c.replace.requestBytes + c.patch.requestBytes, c.replace.requests + c.patch.requests)) * r.replaceFactor +
    c.delete.requests * r.write(1024) * r.deleteFactor +
    c.query.requests * r.queryFloor +
    (c.query.requests > 0 ? c.query.requests * (r.pointRead(avg(c.query.responseBytes, c.query.requests)) - 1) : 0)
  );
}

/** One job of the workload's mix, sessions included: every count weighted. */
export function blendedJob(measured: MeasuredFile, workload: Omit<Workload, "jobsPerMonth">): Tally {
  const parts: [Tally, number][] = [
    [measured.perJob.text, 1 - workload.uploadShare],
    [measured.perJob.upload, workload.uploadShare],
    [measured.perSession, 1 / workload.jobsPerSession],
  ];
  const blend = (values: unknown[], weights: number[]): unknown => {
    const first = values.find((v) => v !== undefined);
    if (typeof first === "number") return values.reduce<number>((sum, v, i) => sum + (typeof v === "number" ? v * weights[i]! : 0), 0);
    if (first && typeof first === "object") {
      const keys = new Set(values.flatMap((v) => (v && typeof v === "object" ? Object.keys(v) : [])));
      return Object.fromEntries([...keys].map((k) => [k, blend(values.map((v) => (v as Record<string, unknown> | undefined)?.[k]), weights)]));
    }
    return first;
  };
  return blend(
    parts.map(([t]) => t),
    parts.map(([, w]) => w),
  ) as Tally;
}

/** Timer runs a month for an NCRONTAB schedule (the stuck-job sweeper's), counted over 30 days from a fixed date. */
export function runsPerMonth(schedule: string): number {
  let runs = runsBySchedule.get(schedule);
  if (runs === undefined) runsBySchedule.set(schedule, (runs = countRuns(schedule)));
  return runs;
}
const runsBySchedule = new Map<string, number>();

function countRuns(schedule: string): number {
  const parsed = parseNcrontab(schedule);
  const start = new Date(Date.UTC(2025, 0, 1));
  const end = start.getTime() + 30 * 24 * 3600 * 1000;
  let runs = 0;
  for (let at = parsed.next(start); at.getTime() <= end && runs < 3_000_000; at = parsed.next(at)) runs += 1;
  return Math.round((runs * DAYS_PER_MONTH) / 30);
}

/** Service Bus Standard's tiered operations charge beyond the included 13 M. */
function standardOperationsUsd(operations: number): number {
  const sb = prices.serviceBus;
  const tiers: [number, number][] = [
    [sb.standardIncludedOperations.usd, 0],
    [100_000_000, sb.standardPerMillionTo100M.usd],
    [2_500_000_000, sb.standardPerMillionTo2500M.usd],
    [Number.POSITIVE_INFINITY, sb.standardPerMillionOver2500M.usd],
  ];
  let usd = 0;
  let floor = 0;
  for (const [ceiling, perMillion] of tiers) {
    const inTier = Math.max(0, Math.min(operations, ceiling) - floor);
    usd += (inTier / 1e6) * perMillion;
    floor = ceiling;
  }
  return usd;
}

/** Monthly cost lines of one stack. */
export function estimateStack(config: PlatformConfig, measured: MeasuredFile, workload: Workload): CostLine[] {
  const n = workload.jobsPerMonth;
  const job = blendedJob(measured, workload);
  const memoryGb = config.functionMemoryMb / 1024;
  const lines: CostLine[] = [];
  const f = prices.functions;

  // Functions (Flex Consumption). The sweeper's timer runs whatever the load: idle cost.
  const sweeps = runsPerMonth(config.jobSweepSchedule);
  const sweepMs = measured.timerRunMs ?? 50;
  const executions = Object.entries(job.functions);
  const apiAlwaysReady = config.apiAlwaysReadyInstances > 0;
  const onAlwaysReady = (name: string) => apiAlwaysReady && API_FUNCTIONS.has(name);
  const perJob = (pick: (name: string) => boolean, of: "executions" | "ms") => executions.filter(([name]) => pick(name)).reduce((sum, [, e]) => sum + e[of], 0);
  const onDemandExecutions = (jobs: number) => jobs * perJob((name) => !onAlwaysReady(name), "executions") + sweeps;
  const onDemandGbs = (jobs: number) => ((jobs * perJob((name) => !onAlwaysReady(name), "ms") + sweeps * sweepMs) / 1000) * memoryGb;
  const freeGbs = f.onDemandFreeGbSeconds.usd;
  const freeExecutions = f.onDemandFreeExecutions.usd;
  const onDemandUsd = (jobs: number) =>
    (Math.max(0, onDemandExecutions(jobs) - freeExecutions) / 1e6) * f.onDemandExecutionsPerMillion.usd + Math.max(0, onDemandGbs(jobs) - freeGbs) * f.onDemandGbSecond.usd;
  lines.push({
    service: "Functions",
    item: `on demand: executions and ${config.functionMemoryMb} MB × execution time`,
    idle: onDemandUsd(0),
    atN: onDemandUsd(n),
    note: `${fmt(perJob((name) => !onAlwaysReady(name), "executions"))} executions, ${fmt(onDemandGbs(1) - onDemandGbs(0), 3)} GB-s a job; sweeper ${fmt(sweeps)} runs a month; free grant ${fmt(freeGbs)} GB-s and ${fmt(freeExecutions)} executions (per subscription)`,
  });
  if (apiAlwaysReady) {
    const instances = config.zoneRedundant ? Math.max(ZONE_REDUNDANT_MINIMUM_INSTANCES, config.apiAlwaysReadyInstances) : config.apiAlwaysReadyInstances;
    const baseline = instances * memoryGb * SECONDS_PER_MONTH * f.alwaysReadyBaselineGbSecond.usd;
    const active = (jobs: number) =>
      ((jobs * perJob(onAlwaysReady, "executions")) / 1e6) * f.alwaysReadyExecutionsPerMillion.usd + ((jobs * perJob(onAlwaysReady, "ms")) / 1000) * memoryGb * f.alwaysReadyExecutionGbSecond.usd;
    lines.push({
      service: "Functions",
      item: `api always ready: ${config.apiAlwaysReadyInstances} × ${config.functionMemoryMb} MB baseline, and its executions`,
      idle: baseline,
      atN: baseline + active(n),
      note: "api HTTP executions billed on the always-ready instances (no free grant)",
    });
  }
  if (config.zoneRedundant) {
    const instances = AGENT_SCALE_GROUPS * ZONE_REDUNDANT_MINIMUM_INSTANCES;
    const baseline = instances * memoryGb * SECONDS_PER_MONTH * f.alwaysReadyBaselineGbSecond.usd;
    lines.push({
      service: "Functions",
      item: `agent zone redundancy: ${instances} × ${config.functionMemoryMb} MB always ready`,
      idle: baseline,
      atN: baseline,
      note: `${ZONE_REDUNDANT_MINIMUM_INSTANCES} per scale group (${AGENT_SCALE_GROUPS} Service Bus functions); its executions are priced on demand above (an overestimate: they run on these instances at the lower always-ready rate)`,
    });
  }

  // Cosmos DB serverless.
  const ruFactor = config.zoneRedundant ? ZONE_REDUNDANT_RU_FACTOR : 1;
  const ru = requestUnits(job) * ruFactor;
  const sweepRu = sweeps * requestUnitRule.queryFloor * ruFactor;
  lines.push({
    service: "Cosmos DB",
    item: "serverless request units (estimated)",
    idle: (sweepRu / 1e6) * prices.cosmos.perMillionRequestUnits.usd,
    atN: ((sweepRu + n * ru) / 1e6) * prices.cosmos.perMillionRequestUnits.usd,
    note: `${fmt(ru, 1)} RU a job (estimate: the emulator does not charge RU)${config.zoneRedundant ? `, × ${ZONE_REDUNDANT_RU_FACTOR} zone redundant` : ""}; the sweeper's query ${requestUnitRule.queryFloor} RU a run; storage not counted`,
  });

  // Service Bus.
  const sbOps = job.serviceBus.billedOperations;
  const sb = prices.serviceBus;
  if (config.serviceBusSku === "Basic") {
    lines.push({ service: "Service Bus", item: "Basic: operations", idle: 0, atN: ((n * sbOps) / 1e6) * sb.basicPerMillionOperations.usd, note: `${fmt(sbOps)} operations a job` });
  } else if (config.serviceBusSku === "Standard") {
    const base = sb.standardBaseHour.usd * HOURS_PER_MONTH;
    lines.push({ service: "Service Bus", item: "Standard: base charge and operations over 13 M", idle: base, atN: base + standardOperationsUsd(n * sbOps), note: `${fmt(sbOps)} operations a job` });
  } else {
    const units = config.serviceBusMessagingUnits * sb.premiumMessagingUnitHour.usd * HOURS_PER_MONTH;
    lines.push({ service: "Service Bus", item: `Premium: ${config.serviceBusMessagingUnits} messaging unit(s)`, idle: units, atN: units, note: `operations included (${fmt(sbOps)} a job)` });
  }

  // Web PubSub.
  const messagesPerDay = (n * job.webPubSub.billedMessages) / DAYS_PER_MONTH;
  const wps = prices.webPubSub;
  if (config.webPubSubSku === "Free_F1") {
    const limit = wps.freeMessagesPerDay.usd;
    lines.push({
      service: "Web PubSub",
      item: "Free_F1",
      idle: 0,
      atN: 0,
      note: `${fmt(job.webPubSub.billedMessages)} messages a job; ${fmt(messagesPerDay)} a day${messagesPerDay > limit ? `: OVER the Free tier's ${fmt(limit)} a day (pushes stop; choose Standard_S1)` : ` (limit ${fmt(limit)})`}; 20 connections at most`,
    });
  } else {
    const unitDay = config.webPubSubSku === "Premium_P1" ? wps.premiumUnitDay.usd : wps.standardUnitDay.usd;
    const units = config.webPubSubUnits * unitDay * DAYS_PER_MONTH;
    const over = Math.max(0, messagesPerDay - config.webPubSubUnits * wps.includedMessagesPerUnitDay.usd) * DAYS_PER_MONTH;
    lines.push({
      service: "Web PubSub",
      item: `${config.webPubSubSku}: ${config.webPubSubUnits} unit(s), messages over the included`,
      idle: units,
      atN: units + (over / 1e6) * wps.perMillionMessages.usd,
      note: `${fmt(job.webPubSub.billedMessages)} messages (2 KB units) a job`,
    });
  }

  // Blob Storage (the data account's operations).
  const redundancy = config.storageSku === "Standard_LRS" ? "LRS" : "ZRS";
  const b = prices.blob;
  const blobUsdPerJob =
    (job.blob.write * b.hotWritePer10k[redundancy] + job.blob.list * b.hotListPer10k[redundancy] + job.blob.read * b.hotReadPer10k[redundancy] + job.blob.other * b.hotOtherPer10k[redundancy]) / 10_000;
  lines.push({
    service: "Blob Storage",
    item: `hot ${redundancy} operations`,
    idle: 0,
    atN: n * blobUsdPerJob,
    note: `write ${fmt(job.blob.write)}, read ${fmt(job.blob.read)}, other ${fmt(job.blob.other)} a job${redundancy === "ZRS" && config.storageSku !== "Standard_ZRS" ? ` (${config.storageSku} priced as ZRS)` : ""}; stored uploads not counted`,
  });

  // Monitoring: telemetry ingested (an assumption per execution and dependency call).
  const dependencies =
    Object.values(job.cosmos).reduce((sum, e) => sum + e.requests, 0) +
    Object.values(job.blob).reduce((sum, count) => sum + count, 0) +
    job.serviceBus.sends +
    job.serviceBus.settles +
    job.webPubSub.restCalls;
  const gbPerJob = (perJob(() => true, "executions") * workload.telemetryBytesPerExecution + dependencies * workload.telemetryBytesPerDependency) / 1024 ** 3;
  const sweepGb = (sweeps * (workload.telemetryBytesPerExecution + workload.telemetryBytesPerDependency)) / 1024 ** 3;
  const monitorUsd = (gb: number) => Math.max(0, gb - prices.monitor.freeGbPerMonth.usd) * prices.monitor.ingestionPerGb.usd;
  lines.push({
    service: "Monitoring",
    item: "Application Insights / Log Analytics ingestion",
    idle: monitorUsd(sweepGb),
    atN: monitorUsd(sweepGb + n * gbPerJob),
    note: `assumed ${workload.telemetryBytesPerExecution} B an execution, ${workload.telemetryBytesPerDependency} B a dependency call (not measured); ${fmt(prices.monitor.freeGbPerMonth.usd)} GB free`,
  });

  if (config.gatewayEnabled) {
    const tier = prices.apiManagement[config.gatewaySku];
    const requestsPerJob = perJob((name) => API_FUNCTIONS.has(name), "executions");
    const included = tier.includedRequestsPerUnit * config.gatewayUnits;
    const fixed = tier.unitMonth * config.gatewayUnits;
    lines.push({
      service: "API Management",
      item: `${config.gatewaySku}: ${config.gatewayUnits} unit(s), requests over the included`,
      idle: fixed,
      atN: fixed + (Math.max(0, n * requestsPerJob - included) / 1e6) * tier.perMillionRequests,
      note: `${fmt(requestsPerJob)} api requests a job; ${fmt(included)} included`,
    });
  }

  if (config.alertEmail || config.alertActionGroupId) {
    const a = prices.alerts;
    const fixed = a.logRuleFiveMinuteMonth.usd + 3 * a.logRuleFifteenMinuteMonth.usd + 3 * a.metricTimeSeriesMonth.usd;
    lines.push({ service: "Alerts", item: "4 log alert rules, 3 metric time series", idle: fixed, atN: fixed, note: "infrastructure/alert-rules.ts; e-mails extra (fractions of a cent)" });
  }

  if (config.privateNetworking) {
    const endpoints = Object.keys(privateLinkServices).length;
    const fixed = endpoints * prices.networking.privateEndpointHour.usd * HOURS_PER_MONTH + endpoints * prices.networking.privateDnsZoneMonth.usd;
    lines.push({
      service: "Networking",
      item: `${endpoints} private endpoints and their private DNS zones`,
      idle: fixed,
      atN: fixed,
      note: "data processed through the endpoints ($0.01/GB each way) and DNS queries not counted: cents at these sizes",
    });
  }
  return lines;
}

export const totals = (lines: readonly CostLine[]) => ({ idle: lines.reduce((s, l) => s + l.idle, 0), atN: lines.reduce((s, l) => s + l.atN, 0) });

function fmt(value: number, digits = 2): string {
  if (Math.abs(value) >= 1000) return Math.round(value).toLocaleString("en-US");
  return Number.isInteger(value) ? String(value) : value.toFixed(digits).replace(/\.?0+$/, "");
}
