/**
 * Exports this process's spans to Application Insights: the OpenTelemetry tracing SDK (a tracer
 * provider, a batching span processor, the AsyncLocalStorage context manager) and the Azure Monitor
 * trace exporter, and nothing else. The trace api -> queue -> agent -> Web PubSub is made of the
 * spans this code creates (telemetry.ts); the Functions host reports requests, logs and exceptions
 * of every invocation itself.
 *
 * Not the Azure Monitor distro (@azure/monitor-opentelemetry): its metrics, logs, live metrics and
 * automatic instrumentations were about 4 MB of each 7 MB package and half a second of each cold
 * start. The exporter itself is loaded on the first export, which the batch processor makes after the
 * request that created the spans, never during it.
 */
import type { AzureMonitorExporterOptions, AzureMonitorTraceExporter } from "@azure/monitor-opentelemetry-exporter";
import { context, trace } from "@opentelemetry/api";
import { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks";
import { ExportResultCode, type ExportResult } from "@opentelemetry/core";
import { defaultResource, resourceFromAttributes } from "@opentelemetry/resources";
import { AlwaysOnSampler, BasicTracerProvider, BatchSpanProcessor, type ReadableSpan, type SpanExporter } from "@opentelemetry/sdk-trace-base";
import { connectionStringPart, credentialFor } from "./azure-clients.js";

export interface TelemetryOptions {
  /** APPLICATIONINSIGHTS_CONNECTION_STRING; telemetry stays off without it. */
  connectionString: string | undefined;
  /** The cloud role name (`service.name`), unless OTEL_SERVICE_NAME names another: the service's name. */
  serviceName: string;
  /**
   * Entra ingestion with the app's managed identity (Azure). `clientId` selects a user-assigned
   * identity; without it DefaultAzureCredential finds the system-assigned one. Off on the local platform, where no managed
   * identity exists and the connection string's key is the only way in.
   */
  managedIdentity?: { clientId?: string };
}

/**
 * The Azure Monitor exporter, created on the first export: loading it (about 0.5 MB of code) is
 * then off the path of the request whose spans it sends.
 */
class ExporterOnFirstExport implements SpanExporter {
  private exporter: AzureMonitorTraceExporter | undefined;

  constructor(private readonly options: AzureMonitorExporterOptions) {}

  export(spans: ReadableSpan[], resultCallback: (result: ExportResult) => void): void {
    try {
      if (!this.exporter) {
        // A deferred require (this package is CommonJS): evaluated on the first export only.
        const { AzureMonitorTraceExporter } = require("./sdk/monitor-exporter.js") as typeof import("./sdk/monitor-exporter.js");
        this.exporter = new AzureMonitorTraceExporter(this.options);
      }
    } catch (error) {
      resultCallback({ code: ExportResultCode.FAILED, error: error instanceof Error ? error : new Error(String(error)) });
      return;
    }
    void this.exporter.export(spans, resultCallback);
  }

  async shutdown(): Promise<void> {
    await this.exporter?.shutdown();
  }
}

/** The setting the platform gives every app in Azure for Entra ingestion (the Functions host reads it too). */
export const TELEMETRY_AUTHENTICATION_SETTING = "APPLICATIONINSIGHTS_AUTHENTICATION_STRING";

/**
 * The managed identity for Entra ingestion, from `APPLICATIONINSIGHTS_AUTHENTICATION_STRING`
 * (`Authorization=AAD;ClientId=<client id>`, set on every app by the FunctionApp component).
 * It does not depend on the service's links, so a service without any still exports telemetry in
 * Azure. Undefined without the setting (the local platform).
 */
export function ingestionIdentity(env: NodeJS.ProcessEnv): { clientId?: string } | undefined {
  const authentication = env[TELEMETRY_AUTHENTICATION_SETTING];
  if (!authentication || connectionStringPart(authentication, "Authorization")?.toUpperCase() !== "AAD") return undefined;
  const clientId = connectionStringPart(authentication, "ClientId");
  return clientId ? { clientId } : {};
}

let started: Promise<BasicTracerProvider | undefined> | undefined;

/**
 * Starts exporting spans once per process. Resolves to whether it started; never rejects. Safe to
 * call on every invocation: later calls share the first call's result.
 */
export async function startTelemetry(options: TelemetryOptions): Promise<boolean> {
  // Telemetry must never take a service down: a failure to start it is reported and the service
  // runs without it (spans stay no-ops).
  started ??= startOnce(options).catch((error: unknown) => {
    console.error(`telemetry is off: the Azure Monitor exporter did not start: ${(error as Error).message}`);
    return undefined;
  });
  return (await started) !== undefined;
}

async function startOnce(options: TelemetryOptions): Promise<BasicTracerProvider | undefined> {
  if (!options.connectionString) return undefined;
  const credential = options.managedIdentity ? await credentialFor(options.managedIdentity.clientId) : undefined;
  const provider = new BasicTracerProvider({
    resource: defaultResource().merge(resourceFromAttributes({ "service.name": process.env.OTEL_SERVICE_NAME || options.serviceName })),
    // Every trace, unless the operator chose a sampler (OTEL_TRACES_SAMPLER): one job is one trace
    // of a few spans, and on a scale-to-zero app every job may come just after a start. Not
    // parent-based: a caller's unsampled flag does not drop the job's spans. host.json keeps the
    // host's own sampling.
    ...(process.env.OTEL_TRACES_SAMPLER ? {} : { sampler: new AlwaysOnSampler() }),
    spanProcessors: [
      new BatchSpanProcessor(new ExporterOnFirstExport(credential ? { connectionString: options.connectionString, credential } : { connectionString: options.connectionString })),
    ],
  });
  const contextManager = new AsyncLocalStorageContextManager();
  contextManager.enable();
  context.setGlobalContextManager(contextManager);
  trace.setGlobalTracerProvider(provider);
  return provider;
}

/**
 * Sends the spans still batched. The entry points call it from the app's terminate hook, so a
 * scale-in or a redeploy does not drop the last seconds of traces.
 */
export async function flushTelemetry(): Promise<void> {
  await (await started)?.forceFlush();
}

/** Flushes and stops exporting, and unregisters the SDK (tests start it again). */
export async function stopTelemetry(): Promise<void> {
  const provider = await started;
  started = undefined;
  if (!provider) return;
  await provider.shutdown();
  trace.disable();
  context.disable();
}
