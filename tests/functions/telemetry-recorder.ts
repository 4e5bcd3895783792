/**
 * Records the spans the code under test creates, with the OpenTelemetry SDK the production exporter
 * uses (functions/src/shared/telemetry-export.ts: the same packages, the same copies), so the
 * tests cannot drift from the SDK that runs in Azure.
 */
import { context, trace, type SpanContext, type SpanKind, type Attributes, type SpanStatus } from "@opentelemetry/api";
import { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks";
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from "@opentelemetry/sdk-trace-base";

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

export interface SpanRecorder {
  spans(): RecordedSpan[];
  reset(): void;
  stop(): Promise<void>;
}

/** Registers a recording tracer provider and an AsyncLocalStorage context manager globally. */
export function recordSpans(): SpanRecorder {
  const exporter = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
  const contextManager = new AsyncLocalStorageContextManager();
  contextManager.enable();
  if (!trace.setGlobalTracerProvider(provider)) throw new Error("a tracer provider is already registered");
  context.setGlobalContextManager(contextManager);
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
