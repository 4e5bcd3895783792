/**
 * Azure prices for `npm run cost`, in one place: USD, pay-as-you-go, East US (the stacks'
 * location), with the page each comes from. Update `pricesAsOf` and each `verified` when you check
 * them against the pricing pages (the Azure pricing calculator shows the same figures).
 *
 * `verified` says how each figure was obtained when this file was written: "listed" when a stored
 * copy of the pricing page (or Microsoft's documentation) showed the figure on the date given;
 * "not verified here" when the pricing page renders its figures in the browser only and the figure
 * is the maintainers' best knowledge of the list price. Treat the second kind as an estimate.
 */

export const pricesAsOf = "2026-11-30";
export const currency = "USD";
export const region = "eastus";

export interface Price {
  /** USD per `unit`. */
  readonly usd: number;
  readonly unit: string;
  readonly source: string;
  readonly verified: string;
}

const NOT_VERIFIED = "not verified here (the pricing page renders prices in the browser only)";
/** Hours in Azure's monthly estimates. */
export const HOURS_PER_MONTH = 730;
export const SECONDS_PER_MONTH = HOURS_PER_MONTH * 3600;

const functionsPage = "https://azure.microsoft.com/pricing/details/functions/";
const cosmosPage = "https://azure.microsoft.com/pricing/details/cosmos-db/serverless/";
const serviceBusPage = "https://azure.microsoft.com/pricing/details/service-bus/";
const webPubSubPage = "https://azure.microsoft.com/pricing/details/web-pubsub/";
const blobPage = "https://azure.microsoft.com/pricing/details/storage/blobs/";
const monitorPage = "https://azure.microsoft.com/pricing/details/monitor/";
const apimPage = "https://azure.microsoft.com/pricing/details/api-management/";
const privateLinkPage = "https://azure.microsoft.com/pricing/details/private-link/";
const dnsPage = "https://azure.microsoft.com/pricing/details/dns/";

export const prices = {
  functions: {
    /** Flex Consumption, on demand: memory × time while an instance executes. */
    onDemandGbSecond: {
      usd: 0.000026,
      unit: "GB-s",
      source: functionsPage,
      verified: "as listed on 2025-05-22 by a third-party guide quoting the page (modal.com/blog/azure-function-pricing-guide); not verified here on the page itself",
    },
    onDemandExecutionsPerMillion: { usd: 0.4, unit: "million executions", source: functionsPage, verified: NOT_VERIFIED },
    /** Monthly free grant of the on-demand meters, per subscription (not for always ready). */
    onDemandFreeGbSeconds: { usd: 100_000, unit: "GB-s per month free (a count, not a price)", source: functionsPage, verified: NOT_VERIFIED },
    onDemandFreeExecutions: { usd: 250_000, unit: "executions per month free (a count, not a price)", source: functionsPage, verified: NOT_VERIFIED },
    /** Always ready: the baseline (memory of each always-ready instance, all the time). */
    alwaysReadyBaselineGbSecond: { usd: 0.000004, unit: "GB-s", source: functionsPage, verified: NOT_VERIFIED },
    /** Always ready: memory × time while an always-ready instance executes (no free grant). */
    alwaysReadyExecutionGbSecond: { usd: 0.000016, unit: "GB-s", source: functionsPage, verified: NOT_VERIFIED },
    alwaysReadyExecutionsPerMillion: { usd: 0.4, unit: "million executions", source: functionsPage, verified: NOT_VERIFIED },
  },
  cosmos: {
    /** Serverless: request units consumed. */
    perMillionRequestUnits: { usd: 0.25, unit: "million RU", source: cosmosPage, verified: NOT_VERIFIED },
    storageGbMonth: { usd: 0.25, unit: "GB-month", source: cosmosPage, verified: NOT_VERIFIED },
  },
  serviceBus: {
    basicPerMillionOperations: { usd: 0.05, unit: "million operations", source: serviceBusPage, verified: NOT_VERIFIED },
    /** Standard: an hourly base charge that includes the first 13 M operations a month. */
    standardBaseHour: { usd: 0.0135, unit: "hour", source: serviceBusPage, verified: NOT_VERIFIED },
    standardIncludedOperations: {
      usd: 13_000_000,
      unit: "operations per month included (a count)",
      source: serviceBusPage,
      verified: "as listed on the stored page (azure.microsoft.com/en-in/pricing/details/service-bus/): 'First 13M ops/month Included'",
    },
    /** Standard, 13 M to 100 M operations a month. */
    standardPerMillionTo100M: { usd: 0.8, unit: "million operations", source: serviceBusPage, verified: NOT_VERIFIED },
    /** Standard, 100 M to 2,500 M. */
    standardPerMillionTo2500M: { usd: 0.5, unit: "million operations", source: serviceBusPage, verified: NOT_VERIFIED },
    /** Standard, over 2,500 M. */
    standardPerMillionOver2500M: { usd: 0.2, unit: "million operations", source: serviceBusPage, verified: NOT_VERIFIED },
    /** Premium: per messaging unit, operations included. */
    premiumMessagingUnitHour: { usd: 0.9275, unit: "messaging unit-hour", source: serviceBusPage, verified: "as recorded from the Azure Retail Prices API in infracost's test snapshots (2024-07-01, West Europe); not verified here for East US" },
  },
  webPubSub: {
    /** Free_F1: no charge; 20 concurrent connections and 20,000 messages a day. */
    freeMessagesPerDay: {
      usd: 20_000,
      unit: "messages per day included, no overage (a count)",
      source: webPubSubPage,
      verified: "as listed on 2026-09-20 in a transcription of the Web PubSub/SignalR pricing tables (Free: 20 connections, 20,000 messages/unit/day)",
    },
    standardUnitDay: { usd: 1.61, unit: "unit-day", source: webPubSubPage, verified: NOT_VERIFIED },
    premiumUnitDay: { usd: 2.0, unit: "unit-day", source: webPubSubPage, verified: NOT_VERIFIED },
    /** Standard and Premium: messages included per unit and day, then per million. */
    includedMessagesPerUnitDay: {
      usd: 1_000_000,
      unit: "messages per unit-day included (a count)",
      source: webPubSubPage,
      verified: "as listed on 2026-09-20 in a transcription of the pricing table ('free for the first 1,000,000 messages')",
    },
    perMillionMessages: { usd: 1.0, unit: "million messages", source: webPubSubPage, verified: NOT_VERIFIED },
  },
  blob: {
    /** Hot tier, operations per 10,000, by redundancy (LRS / ZRS). */
    hotWritePer10k: { LRS: 0.055, ZRS: 0.0688, unit: "10,000 write operations", source: blobPage, verified: NOT_VERIFIED },
    hotListPer10k: { LRS: 0.055, ZRS: 0.0688, unit: "10,000 list and create container operations", source: blobPage, verified: NOT_VERIFIED },
    hotReadPer10k: { LRS: 0.0044, ZRS: 0.0044, unit: "10,000 read operations", source: blobPage, verified: NOT_VERIFIED },
    hotOtherPer10k: { LRS: 0.0044, ZRS: 0.0044, unit: "10,000 other operations", source: blobPage, verified: NOT_VERIFIED },
    hotStorageGbMonth: { LRS: 0.0208, ZRS: 0.026, unit: "GB-month (first 50 TB)", source: blobPage, verified: "as recorded in infracost's test snapshots (2024-07-01, West US)" },
  },
  monitor: {
    /** Log Analytics (workspace-based Application Insights), Analytics logs. */
    ingestionPerGb: { usd: 2.3, unit: "GB ingested", source: monitorPage, verified: NOT_VERIFIED },
    freeGbPerMonth: { usd: 5, unit: "GB per month free per billing account (a count)", source: monitorPage, verified: NOT_VERIFIED },
  },
  apiManagement: {
    /** v2 tiers: per unit-month, with requests included; more requests per million. */
    BasicV2: { unitMonth: 150, includedRequestsPerUnit: 10_000_000, perMillionRequests: 3, source: apimPage, verified: NOT_VERIFIED },
    StandardV2: { unitMonth: 700, includedRequestsPerUnit: 50_000_000, perMillionRequests: 2.5, source: apimPage, verified: NOT_VERIFIED },
  },
  alerts: {
    logRuleFiveMinuteMonth: { usd: 1.5, unit: "log alert rule evaluated every 5 minutes, month", source: monitorPage, verified: "as recorded from the Azure Retail Prices API in infracost's test snapshots (2024-07-01, West Europe); not verified here for East US" },
    logRuleFifteenMinuteMonth: { usd: 0.5, unit: "log alert rule evaluated every 15 minutes, month", source: monitorPage, verified: "as recorded in infracost's test snapshots (2024-07-01, West Europe)" },
    metricTimeSeriesMonth: { usd: 0.1, unit: "monitored metric time series, month", source: monitorPage, verified: "as recorded in infracost's test snapshots (2024-07-01, East US)" },
  },
  networking: {
    privateEndpointHour: { usd: 0.01, unit: "endpoint-hour", source: privateLinkPage, verified: "as recorded in infracost's test snapshots (2024-07-01, West US); not verified here for East US" },
    privateEndpointPerGb: { usd: 0.01, unit: "GB processed (each way)", source: privateLinkPage, verified: "as recorded in infracost's test snapshots (2024-07-01, West US)" },
    privateDnsZoneMonth: { usd: 0.5, unit: "zone-month (first 25)", source: dnsPage, verified: "as recorded in infracost's test snapshots (2024-07-01, West US)" },
    privateDnsPerMillionQueries: { usd: 0.4, unit: "million queries", source: dnsPage, verified: NOT_VERIFIED },
  },
} as const;

/**
 * Cosmos DB request units are estimated: the local emulator does not charge them. The rule, from
 * Microsoft's documented figures (a point read of a 1 KB item is 1 RU, of 100 KB 10 RU; a write of
 * a 1 KB item with default indexing about 5 RU, 2 KB about 6.3, 4 KB about 6.7, 8 KB about 7);
 * a replace is charged about twice an insert (the old index entries go, the new ones come); a
 * query at least about 2.3 RU plus what it reads; metadata reads are not charged to the account's
 * RU budget in the same way and are left out.
 */
export const requestUnitRule = {
  source: "https://learn.microsoft.com/azure/cosmos-db/understand-request-unit-consumption and https://learn.microsoft.com/azure/cosmos-db/optimize-cost-reads-writes",
  verified: "as listed on the stored Microsoft Learn pages (read 1 KB = 1.00 RU, write 1 KB = 4.95 RU, 2 KB = 6.29, 4 KB = 6.67, 8 KB = 7.04); the replace factor and the query floor are estimates",
  /** Point read of an item of `bytes`: 1 RU up to 1 KB, then as the documented table (about 1 RU per 10 KB more). */
  pointRead: (bytes: number) => Math.max(1, 1 + Math.max(0, bytes - 1024) / (10 * 1024)),
  /** A point read that finds nothing (404) is charged about 1 RU. */
  missedRead: 1,
  /** Insert (create or upsert) of an item of `bytes`, default indexing: about 5 RU for 1 KB, plus about 0.33 RU per KB more up to 8 KB. */
  write: (bytes: number) => 4.95 + Math.max(0, bytes - 1024) / 1024 / 3,
  /** Replace: about twice an insert of the same size (estimate). */
  replaceFactor: 2,
  /** Delete: about an insert (estimate). */
  deleteFactor: 1,
  /** Query: a floor of about 2.3 RU, plus a point read's worth for what it returns (estimate). */
  queryFloor: 2.3,
} as const;
