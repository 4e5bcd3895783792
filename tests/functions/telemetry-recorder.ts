/**
 * Records the spans the code under test creates, with the OpenTelemetry SDK the production exporter
 * uses: the very copy `@azure/monitor-opentelemetry` depends on, resolved from its location, so the
 * tests cannot drift from the SDK that runs in Azure.
 */
import { createRequire } from "node:module";
import { context, trace, type SpanContext, type SpanKind, type Attributes, type SpanStatus } from "@opentelemetry/api";

/** The fields of an SDK ReadableSpan the tests read. */
export interface RecordedSpan {
  name: string;
  kind: SpanKind;
  attributes: Attributes;
  status: SpanStatus;
  spanContext(): SpanContext;
  parentSpanContext?: SpanContext;
  events: { name: string }[];
}

interface SdkModules {
  BasicTracerProvider: new (config: { spanProcessors: unknown[] }) => { shutdown(): Promise<void> };
  SimpleSpanProcessor: new (exporter: unknown) => unknown;
  InMemorySpanExporter: new () => { getFinishedSpans(): RecordedSpan[]; reset(): void };
}
interface ContextModules {
  AsyncLocalStorageContextManager: new () => { enable(): unknown; disable(): unknown };
}

export interface SpanRecorder {
  spans(): RecordedSpan[];
  reset(): void;
  stop(): Promise<void>;
}

/** Registers a recording tracer provider and an AsyncLocalStorage context manager globally. */
export function recordSpans(): SpanRecorder {
  const requireFromDistro = createRequire(require.resolve("@azure/monitor-opentelemetry/package.json"));
  const sdk = requireFromDistro("@opentelemetry/sdk-trace-base") as SdkModules;
  const contextAsyncHooks = requireFromDistro("@opentelemetry/context-async-hooks") as ContextModules;
  const exporter = new sdk.InMemorySpanExporter();
  const provider = new sdk.BasicTracerProvider({ spanProcessors: [new sdk.SimpleSpanProcessor(exporter)] });
  const contextManager = new contextAsyncHooks.AsyncLocalStorageContextManager();
  contextManager.enable();
  // The structural types differ only in private members between api copies.
  if (!trace.setGlobalTracerProvider(provider as unknown as Parameters<typeof trace.setGlobalTracerProvider>[0])) {
    throw new Error("a tracer provider is already registered");
  }
  context.setGlobalContextManager(contextManager as unknown as Parameters<typeof context.setGlobalContextManager>[0]);
  return {
    spans: () => exporter.getFinishedSpans(),
    reset: () => exporter.reset(),
    stop: async () => {
      await provider.shutdown();
      trace.disable();
      context.disable();
    },
  };
}
