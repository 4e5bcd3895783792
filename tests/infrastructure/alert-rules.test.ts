/** The alert rules and the workbook as data: derived from the app's declarations, with valid windows and queries that name what the code emits. */
import { describe, expect, it } from "vitest";
import { resources } from "../../functions/src/resources";
import { declarationOf, serviceNames } from "../../functions/src/services";
import { jobAttributes, jobSpans } from "../../functions/src/shared/job-telemetry";
import {
  failedJobsQuery,
  functionFailuresQuery,
  http5xxPercentQuery,
  jobPipelineQueries,
  jobPipelineWorkbook,
  kqlString,
  logAlertRules,
  metricAlertFrequencies,
  metricAlertRules,
  metricAlertWindows,
  thresholds,
  type WatchedApp,
} from "../../infrastructure/alert-rules";

const queues = Object.keys(resources.queues);
const apps: WatchedApp[] = serviceNames.map((service) => ({ service, siteName: `${service}-plat-prod-abc123`, http: declarationOf(service).http !== undefined }));

describe("metricAlertRules", () => {
  const rules = metricAlertRules(queues);

  it("watches every declared queue for dead letters and a backlog, and Cosmos DB for throttling", () => {
    expect(rules.map((r) => r.key).sort()).toEqual([...queues.flatMap((q) => [`dead-letters-${q}`, `backlog-${q}`]), "cosmos-throttling"].sort());
    const more = metricAlertRules([...queues, "reports"]);
    expect(more.map((r) => r.key)).toEqual(expect.arrayContaining(["dead-letters-reports", "backlog-reports"]));
  });

  it("filters each queue's rules to that queue, on the Service Bus metrics that count its messages", () => {
    for (const queue of queues) {
      const deadLetters = rules.find((r) => r.key === `dead-letters-${queue}`)!;
      expect(deadLetters).toMatchObject({
        target: "serviceBusNamespace",
        metricNamespace: "Microsoft.ServiceBus/namespaces",
        metricName: "DeadletteredMessages",
        operator: "GreaterThan",
        threshold: 0,
        dimensions: [{ name: "EntityName", values: [queue] }],
      });
      const backlog = rules.find((r) => r.key === `backlog-${queue}`)!;
      // The minimum over the window is above zero only if the queue never emptied in it.
      expect(backlog).toMatchObject({ metricName: "ActiveMessages", timeAggregation: "Minimum", threshold: 0, windowSize: `PT${thresholds.backlogMinutes}M` });
    }
    expect(rules.find((r) => r.key === "cosmos-throttling")).toMatchObject({
      target: "cosmosAccount",
      metricName: "TotalRequests",
      timeAggregation: "Count",
      dimensions: [{ name: "StatusCode", values: ["429"] }],
      threshold: thresholds.cosmosThrottledRequests,
    });
  });

  it("uses only windows and frequencies Azure accepts, a frequency no longer than the window, and valid severities", () => {
    const toMinutes = (iso: string) => ({ PT1M: 1, PT5M: 5, PT15M: 15, PT30M: 30, PT1H: 60, PT6H: 360, PT12H: 720, P1D: 1440 })[iso]!;
    for (const rule of rules) {
      expect(metricAlertWindows, rule.key).toContain(rule.windowSize);
      expect(metricAlertFrequencies, rule.key).toContain(rule.evaluationFrequency);
      expect(toMinutes(rule.evaluationFrequency), rule.key).toBeLessThanOrEqual(toMinutes(rule.windowSize));
      expect([0, 1, 2, 3, 4]).toContain(rule.severity);
    }
  });
});

describe("logAlertRules", () => {
  const rules = logAlertRules(apps);

  it("watches every app of the registry for failures, every HTTP app for its 5xx rate, and the jobs", () => {
    const httpApps = apps.filter((a) => a.http).map((a) => a.service);
    expect(httpApps).toContain("api");
    expect(rules.map((r) => r.key).sort()).toEqual([...httpApps.map((s) => `http-5xx-${s}`), ...serviceNames.map((s) => `function-failures-${s}`), "failed-jobs"].sort());
  });

  it("measures a column each query actually produces, against the threshold of the module", () => {
    for (const rule of rules) {
      if (rule.metricMeasureColumn) expect(rule.query, rule.key).toMatch(new RegExp(`\\b${rule.metricMeasureColumn} =`));
    }
    expect(rules.find((r) => r.key === "http-5xx-api")).toMatchObject({ metricMeasureColumn: "failedPercent", threshold: thresholds.http5xxPercent });
    expect(rules.find((r) => r.key === "function-failures-agent")).toMatchObject({ metricMeasureColumn: "failures", threshold: thresholds.functionFailures });
    expect(rules.find((r) => r.key === "failed-jobs")).toMatchObject({ metricMeasureColumn: "failedJobs", threshold: thresholds.failedJobs });
  });

  it("counts an app's failures under both of its role names (its spans' service name, the host's site name), once per operation", () => {
    const query = functionFailuresQuery(apps.find((a) => a.service === "agent")!);
    expect(query).toContain(`AppRoleName in~ (dynamic(["agent", "agent-plat-prod-abc123"]))`);
    expect(query).toContain("Success == false");
    expect(query).toContain("dcount(OperationId)");
  });

  it("computes the 5xx share only past the minimum number of requests", () => {
    const query = http5xxPercentQuery(apps.find((a) => a.service === "api")!);
    expect(query).toContain(`requests >= ${thresholds.http5xxMinimumRequests}`);
    expect(query).toContain("status >= 500");
  });

  it("finds failed jobs by the span names and attributes the agent sets", () => {
    const query = failedJobsQuery();
    expect(query).toContain(kqlString(jobSpans.process));
    expect(query).toContain(kqlString(jobSpans.failDeadLettered));
    expect(query).toContain(`Properties[${kqlString(jobAttributes.outcome)}]`);
    expect(query).toContain(`dcount(tostring(Properties[${kqlString(jobAttributes.id)}]))`);
  });

  it("quotes names as KQL strings, so a name cannot end the literal", () => {
    expect(kqlString('a"b\\c')).toBe('"a\\"b\\\\c"');
    expect(functionFailuresQuery({ service: 'x") or true or ("', siteName: "s", http: false })).toContain('"x\\") or true or (\\""');
  });
});

describe("jobPipelineWorkbook", () => {
  const ids = {
    serviceBusNamespaceId: "/subscriptions/s/resourceGroups/rg/providers/Microsoft.ServiceBus/namespaces/bus",
    cosmosAccountId: "/subscriptions/s/resourceGroups/rg/providers/Microsoft.DocumentDB/databaseAccounts/db",
    workspaceId: "/subscriptions/s/resourceGroups/rg/providers/Microsoft.OperationalInsights/workspaces/logs",
  };
  const workbook = jobPipelineWorkbook({ queues, ...ids }) as { version: string; items: { type: number; name: string; content: Record<string, unknown> }[]; fallbackResourceIds: string[] };

  it("is a Notebook/1.0 workbook with the pipeline's tiles: jobs, failures by reason, queue depth, dead letters, latency, Cosmos status codes", () => {
    expect(workbook.version).toBe("Notebook/1.0");
    expect(workbook.items.map((i) => i.name)).toEqual(["title", "jobs", "failed-by-reason", "queue-depth", "dead-letters", "latency", "cosmos-429"]);
    expect(workbook.fallbackResourceIds).toEqual([ids.workspaceId]);
    expect(JSON.parse(JSON.stringify(workbook))).toEqual(workbook);
  });

  it("points its log tiles at the workspace and its metric tiles at the namespace and the account", () => {
    for (const item of workbook.items.filter((i) => i.type === 3)) {
      expect(item.content).toMatchObject({ version: "KqlItem/1.0", resourceType: "microsoft.operationalinsights/workspaces", crossComponentResources: [ids.workspaceId] });
    }
    const metric = (name: string) => workbook.items.find((i) => i.name === name)!.content as { resourceIds: string[]; metrics: { metric: string; splitBy?: string }[] };
    expect(metric("queue-depth")).toMatchObject({ resourceIds: [ids.serviceBusNamespaceId], metrics: [{ metric: "microsoft.servicebus/namespaces--ActiveMessages", splitBy: "EntityName" }] });
    expect(metric("dead-letters").metrics[0]!.metric).toBe("microsoft.servicebus/namespaces--DeadletteredMessages");
    expect(metric("cosmos-429")).toMatchObject({ resourceIds: [ids.cosmosAccountId], metrics: [{ metric: "microsoft.documentdb/databaseaccounts--TotalRequests", splitBy: "StatusCode" }] });
  });

  it("counts jobs created from every declared queue's send span, and joins them to the agent's spans for latency", () => {
    const queries = jobPipelineQueries(["jobs", "reports"]);
    expect(queries.jobsOverTime).toContain(`${kqlString(jobSpans.enqueue("jobs"))}, ${kqlString(jobSpans.enqueue("reports"))}`);
    expect(queries.latency).toContain("join kind=inner sent on jobId");
    expect(queries.failedByReason).toContain(kqlString(jobAttributes.errorCode));
    expect(queries.failedByReason).toContain(kqlString(jobAttributes.deadLetterReason));
  });
});
