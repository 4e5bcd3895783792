/**
 * Every alert and the job-pipeline workbook, as data: what is watched, the query or metric, the
 * threshold, the window and the severity. The Alerts component turns these into Azure Monitor
 * resources; the README's "Alerts" table lists the same rules. Pure, so tests read it directly.
 *
 * Where the data comes from:
 * - Service Bus and Cosmos DB platform metrics (no setup, kept 93 days) for metric alerts;
 * - Application Insights, workspace-based, so its telemetry is in the Log Analytics workspace as
 *   AppRequests (server and consumer spans, and the Functions host's invocations) and
 *   AppDependencies (producer spans): log alerts query the workspace. The Functions host reports
 *   as the site name, the app's own OpenTelemetry spans as the service name (OTEL_SERVICE_NAME,
 *   see functions/src/shared/telemetry.ts); a span of ours and the host's invocation share one
 *   operation ID, so counts are taken per OperationId and never twice.
 * - Span names and attributes of the job pipeline come from functions/src/shared/job-telemetry.ts.
 */
import { jobAttributes, jobSpans } from "../functions/src/shared/job-telemetry";

/** The thresholds, in one place. */
export const thresholds = {
  /** Dead-lettered messages in a queue: any. The agent fails dead-lettered jobs and empties the sub-queue; messages that stay there mean that handler fails too. */
  deadLetteredMessages: 0,
  /** Minutes a queue may go without being empty once (Service Bus has no oldest-message-age metric; see backlog below). */
  backlogMinutes: 15,
  /** Share of an HTTP service's requests answered 5xx, in percent, over the window ... */
  http5xxPercent: 5,
  /** ... once it served at least this many requests in the window (a single 500 out of 3 is no outage). */
  http5xxMinimumRequests: 20,
  /** Failed function invocations of one app in the window (the agent's retried deliveries count each). */
  functionFailures: 5,
  /** Cosmos DB requests answered 429 (throttled) in the window; the SDK retries them, so a few are normal. */
  cosmosThrottledRequests: 10,
  /** Jobs that ended failed in the window, whatever the reason (a user's unreadable file, or deliveries exhausted). */
  failedJobs: 5,
} as const;

/** Azure Monitor severities: 0 critical, 1 error, 2 warning, 3 informational, 4 verbose. */
export type Severity = 0 | 1 | 2 | 3 | 4;

/** Window sizes and evaluation frequencies Azure accepts for metric alerts (ISO 8601). */
export const metricAlertWindows = ["PT1M", "PT5M", "PT15M", "PT30M", "PT1H", "PT6H", "PT12H", "P1D"] as const;
export const metricAlertFrequencies = ["PT1M", "PT5M", "PT15M", "PT30M", "PT1H"] as const;

/** The resources metric alerts watch. */
export type MetricTarget = "serviceBusNamespace" | "cosmosAccount";

export interface MetricAlertRule {
  /** Short, stable key: part of the rule's name. */
  readonly key: string;
  readonly description: string;
  readonly severity: Severity;
  readonly target: MetricTarget;
  readonly metricNamespace: string;
  readonly metricName: string;
  readonly timeAggregation: "Average" | "Minimum" | "Maximum" | "Total" | "Count";
  readonly operator: "GreaterThan" | "GreaterThanOrEqual" | "LessThan";
  readonly threshold: number;
  readonly dimensions: readonly { readonly name: string; readonly values: readonly string[] }[];
  readonly windowSize: (typeof metricAlertWindows)[number];
  readonly evaluationFrequency: (typeof metricAlertFrequencies)[number];
}

export interface LogAlertRule {
  readonly key: string;
  readonly description: string;
  readonly severity: Severity;
  /** KQL over the workspace's App* tables; the rule adds the time filter of its window. */
  readonly query: string;
  /** Count: the query's rows are counted; otherwise the numeric column below is aggregated. */
  readonly timeAggregation: "Count" | "Total" | "Maximum";
  readonly metricMeasureColumn?: string;
  readonly operator: "GreaterThan";
  readonly threshold: number;
  readonly windowSize: string;
  readonly evaluationFrequency: string;
}

const minutes = (m: number) => (m % 60 === 0 ? `PT${m / 60}H` : `PT${m}M`);

/** A KQL string literal. */
export function kqlString(value: string): string {
  return JSON.stringify(value);
}

/**
 * Metric alerts: per queue of functions/src/resources.ts, dead-lettered messages and a backlog
 * that does not drain; Cosmos DB throttling.
 *
 * Backlog: Service Bus reports message counts, not ages. "The queue was never empty in the last
 * N minutes" (the minimum of ActiveMessages over the window above 0) means a message waited up to
 * N minutes, or arrivals outpace the agent; unlike a telemetry-based age, it also fires when the
 * agent does not run at all.
 */
export function metricAlertRules(queues: readonly string[]): MetricAlertRule[] {
  const serviceBus = { target: "serviceBusNamespace", metricNamespace: "Microsoft.ServiceBus/namespaces" } as const;
  const backlogWindow = minutes(thresholds.backlogMinutes);
  if (!(metricAlertWindows as readonly string[]).includes(backlogWindow)) {
    throw new Error(`backlogMinutes ${thresholds.backlogMinutes} is no metric alert window; allowed: ${metricAlertWindows.join(", ")}`);
  }
  return [
    ...queues.flatMap((queue): MetricAlertRule[] => [
      {
        key: `dead-letters-${queue}`,
        description: `Messages in the dead-letter sub-queue of "${queue}": their jobs could not be delivered, and the dead-letter handler has not cleared them.`,
        severity: 1,
        ...serviceBus,
        metricName: "DeadletteredMessages",
        timeAggregation: "Maximum",
        operator: "GreaterThan",
        threshold: thresholds.deadLetteredMessages,
        dimensions: [{ name: "EntityName", values: [queue] }],
        windowSize: "PT5M",
        evaluationFrequency: "PT1M",
      },
      {
        key: `backlog-${queue}`,
        description: `Queue "${queue}" has not been empty for ${thresholds.backlogMinutes} minutes: messages wait that long, or arrive faster than they are processed (is the agent running?).`,
        severity: 2,
        ...serviceBus,
        metricName: "ActiveMessages",
        timeAggregation: "Minimum",
        operator: "GreaterThan",
        threshold: 0,
        dimensions: [{ name: "EntityName", values: [queue] }],
        windowSize: backlogWindow as MetricAlertRule["windowSize"],
        evaluationFrequency: "PT5M",
      },
    ]),
    {
      key: "cosmos-throttling",
      description: `More than ${thresholds.cosmosThrottledRequests} Cosmos DB requests throttled (429) in 15 minutes: the serverless account's burst limit is reached; the SDK retries, callers see latency and, past its retries, 503s.`,
      severity: 2,
      target: "cosmosAccount",
      metricNamespace: "Microsoft.DocumentDB/databaseAccounts",
      metricName: "TotalRequests",
      timeAggregation: "Count",
      operator: "GreaterThan",
      threshold: thresholds.cosmosThrottledRequests,
      dimensions: [{ name: "StatusCode", values: ["429"] }],
      windowSize: "PT15M",
      evaluationFrequency: "PT5M",
    },
  ];
}

/** An app as the log queries see it: the service's name (its spans' role) and its site's (the host's role). */
export interface WatchedApp {
  readonly service: string;
  readonly siteName: string;
  /** Serves HTTP (gets the 5xx-rate alert). */
  readonly http: boolean;
}

const rolesOf = (app: WatchedApp) => `dynamic([${kqlString(app.service)}, ${kqlString(app.siteName)}])`;

/** Failed invocations of an app, once per operation (the host's record and our span share it). */
export function functionFailuresQuery(app: WatchedApp): string {
  return [
    "AppRequests",
    `| where AppRoleName in~ (${rolesOf(app)})`,
    "| where Success == false",
    "| summarize failures = dcount(OperationId)",
  ].join("\n");
}

/** Percentage of an HTTP app's requests answered 5xx, once it served the minimum number of requests. */
export function http5xxPercentQuery(app: WatchedApp): string {
  return [
    "AppRequests",
    `| where AppRoleName in~ (${rolesOf(app)})`,
    "| where isnotempty(ResultCode)",
    "| summarize status = max(toint(ResultCode)) by OperationId",
    "| summarize requests = count(), failed = countif(status >= 500)",
    `| where requests >= ${thresholds.http5xxMinimumRequests}`,
    "| project failedPercent = round(100.0 * failed / requests, 1)",
  ].join("\n");
}

/** Jobs that ended failed: by the agent (a permanent error) or by the dead-letter handler. */
export function failedJobsQuery(): string {
  return [
    "AppRequests",
    `| where Name in (${kqlString(jobSpans.process)}, ${kqlString(jobSpans.failDeadLettered)})`,
    `| where tostring(Properties[${kqlString(jobAttributes.outcome)}]) == "failed"`,
    `| summarize failedJobs = dcount(tostring(Properties[${kqlString(jobAttributes.id)}]))`,
  ].join("\n");
}

/** Log alerts: per app of the service registry its failures, per HTTP app its 5xx rate, and failed jobs. */
export function logAlertRules(apps: readonly WatchedApp[]): LogAlertRule[] {
  return [
    ...apps.filter((app) => app.http).map(
      (app): LogAlertRule => ({
        key: `http-5xx-${app.service}`,
        description: `More than ${thresholds.http5xxPercent}% of ${app.service}'s requests answered 5xx in 15 minutes (at least ${thresholds.http5xxMinimumRequests} requests).`,
        severity: 1,
        query: http5xxPercentQuery(app),
        timeAggregation: "Maximum",
        metricMeasureColumn: "failedPercent",
        operator: "GreaterThan",
        threshold: thresholds.http5xxPercent,
        windowSize: "PT15M",
        evaluationFrequency: "PT5M",
      }),
    ),
    ...apps.map(
      (app): LogAlertRule => ({
        key: `function-failures-${app.service}`,
        description: `More than ${thresholds.functionFailures} failed invocations of ${app.service} in 15 minutes (exceptions, timeouts, a host that cannot start its functions).`,
        severity: 2,
        query: functionFailuresQuery(app),
        timeAggregation: "Total",
        metricMeasureColumn: "failures",
        operator: "GreaterThan",
        threshold: thresholds.functionFailures,
        windowSize: "PT15M",
        evaluationFrequency: "PT15M",
      }),
    ),
    {
      key: "failed-jobs",
      description: `More than ${thresholds.failedJobs} jobs failed in 15 minutes; the workbook's "Failed jobs by reason" tells users' unreadable files from exhausted deliveries.`,
      severity: 2,
      query: failedJobsQuery(),
      timeAggregation: "Total",
      metricMeasureColumn: "failedJobs",
      operator: "GreaterThan",
      threshold: thresholds.failedJobs,
      windowSize: "PT15M",
      evaluationFrequency: "PT15M",
    },
  ];
}

export interface WorkbookInput {
  /** The queues whose depth is charted. */
  readonly queues: readonly string[];
  readonly serviceBusNamespaceId: string;
  readonly cosmosAccountId: string;
  readonly workspaceId: string;
}

/** Queries of the workbook, by tile. */
export function jobPipelineQueries(queues: readonly string[]) {
  const enqueued = queues.map((queue) => kqlString(jobSpans.enqueue(queue))).join(", ");
  const outcome = `tostring(Properties[${kqlString(jobAttributes.outcome)}])`;
  const jobId = `tostring(Properties[${kqlString(jobAttributes.id)}])`;
  return {
    jobsOverTime: [
      "let created = AppDependencies",
      `| where Name in (${enqueued}) and Success == true`,
      `| summarize jobs = dcount(${jobId}) by bin(TimeGenerated, 5m) | extend series = "created";`,
      "let finished = AppRequests",
      `| where Name in (${kqlString(jobSpans.process)}, ${kqlString(jobSpans.failDeadLettered)}) and ${outcome} in ("succeeded", "failed")`,
      `| summarize jobs = dcount(${jobId}) by bin(TimeGenerated, 5m), series = ${outcome};`,
      "union created, finished",
      "| render timechart",
    ].join("\n"),
    failedByReason: [
      "AppRequests",
      `| where Name in (${kqlString(jobSpans.process)}, ${kqlString(jobSpans.failDeadLettered)}) and ${outcome} == "failed"`,
      `| extend reason = coalesce(tostring(Properties[${kqlString(jobAttributes.errorCode)}]), tostring(Properties[${kqlString(jobAttributes.deadLetterReason)}]))`,
      `| summarize jobs = dcount(${jobId}) by reason`,
      "| order by jobs desc",
    ].join("\n"),
    latency: [
      "let sent = AppDependencies",
      `| where Name in (${enqueued}) and Success == true`,
      `| project jobId = ${jobId}, sentAt = TimeGenerated + totimespan(DurationMs * 1ms);`,
      "AppRequests",
      `| where Name == ${kqlString(jobSpans.process)} and ${outcome} == "succeeded"`,
      `| project jobId = ${jobId}, startedAt = TimeGenerated, finishedAt = TimeGenerated + totimespan(DurationMs * 1ms)`,
      "| join kind=inner sent on jobId",
      "| extend queueWaitSeconds = (startedAt - sentAt) / 1s, totalSeconds = (finishedAt - sentAt) / 1s",
      "| summarize p50QueueWait = percentile(queueWaitSeconds, 50), p95QueueWait = percentile(queueWaitSeconds, 95), p50Total = percentile(totalSeconds, 50), p95Total = percentile(totalSeconds, 95) by bin(finishedAt, 15m)",
      "| render timechart",
    ].join("\n"),
  };
}

/**
 * The job pipeline at a glance, as an Azure Monitor workbook (serializedData, Notebook/1.0): jobs
 * created, succeeded and failed over time, failures by reason, queue depth and dead letters per
 * queue, queue wait and end-to-end latency, Cosmos DB throttling.
 */
export function jobPipelineWorkbook(input: WorkbookInput): Record<string, unknown> {
  const queries = jobPipelineQueries(input.queues);
  const timeContext = { durationMs: 86_400_000 };
  const logTile = (name: string, title: string, query: string, visualization: string) => ({
    type: 3,
    name,
    content: {
      version: "KqlItem/1.0",
      query,
      size: 0,
      title,
      timeContext,
      queryType: 0,
      resourceType: "microsoft.operationalinsights/workspaces",
      crossComponentResources: [input.workspaceId],
      visualization,
    },
  });
  // Metric ids as the portal writes them (`<namespace>--<metric>`), aggregations as it numbers
  // them: 1 sum, 3 maximum, 4 average, 7 count (portal-made workbooks label their columns so).
  const metricTile = (name: string, title: string, resourceType: string, resourceId: string, metric: string, aggregation: 1 | 3 | 4 | 7, splitBy?: string) => ({
    type: 10,
    name,
    content: {
      version: "MetricsItem/2.0",
      size: 0,
      chartType: 2,
      resourceType,
      metricScope: 0,
      resourceIds: [resourceId],
      timeContext,
      metrics: [{ namespace: resourceType, metric: `${resourceType}--${metric}`, aggregation, ...(splitBy ? { splitBy } : {}) }],
      title,
      gridSettings: { rowLimit: 10000 },
    },
  });
  return {
    version: "Notebook/1.0",
    items: [
      { type: 1, name: "title", content: { json: "## Job pipeline\nJobs from the api through the queue to the agent. Alerts: see the README's Alerts table." } },
      logTile("jobs", "Jobs created, succeeded and failed (per 5 minutes)", queries.jobsOverTime, "timechart"),
      logTile("failed-by-reason", "Failed jobs by reason", queries.failedByReason, "table"),
      metricTile("queue-depth", "Queue depth (active messages, per queue)", "microsoft.servicebus/namespaces", input.serviceBusNamespaceId, "ActiveMessages", 3, "EntityName"),
      metricTile("dead-letters", "Dead-lettered messages (per queue)", "microsoft.servicebus/namespaces", input.serviceBusNamespaceId, "DeadletteredMessages", 3, "EntityName"),
      logTile("latency", "Queue wait and end-to-end latency of succeeded jobs (seconds, p50 and p95)", queries.latency, "timechart"),
      metricTile("cosmos-429", "Cosmos DB requests by status code", "microsoft.documentdb/databaseaccounts", input.cosmosAccountId, "TotalRequests", 7, "StatusCode"),
    ],
    fallbackResourceIds: [input.workspaceId],
    $schema: "https://github.com/Microsoft/Application-Insights-Workbooks/blob/master/schema/workbook.json",
  };
}
