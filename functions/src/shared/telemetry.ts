/**
 * Tracing for both services: one trace from the api's HTTP request, through the Service Bus message
 * (W3C `traceparent`/`tracestate` in the message's application properties), to the agent and its
 * Web PubSub publish.
 *
 * Only `@opentelemetry/api` is imported here: it is small, and without a registered SDK every span
 * is a no-op. The SDK and the Azure Monitor exporter are started by telemetry-export.ts, only when
 * an Application Insights connection string is configured.
 *
 * Trace context is formatted and parsed here rather than through the global propagator: the
 * global propagator is a no-op until an SDK registers one, and the message must carry the caller's
 * trace id whether or not this process exports telemetry (the other service may).
 */
import {
  context,
  createTraceState,
  isSpanContextValid,
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  trace,
  TraceFlags,
  type Attributes,
  type Context,
  type Span,
  type SpanContext,
} from "@opentelemetry/api";

/** Application-property names of the W3C trace context on a Service Bus message. */
export const TRACEPARENT_PROPERTY = "traceparent";
export const TRACESTATE_PROPERTY = "tracestate";

/** The trace-context application properties of a message (absent when there is no active span). */
// A type alias, not an interface: aliases are assignable to index-signature types such as the
// SDK's application-properties record.
export type TraceContextProperties = {
  traceparent?: string;
  tracestate?: string;
};

const TRACEPARENT_PATTERN = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$/;

/** W3C `traceparent` (version 00) for a span context. */
export function formatTraceparent(spanContext: SpanContext): string {
  const flags = (spanContext.traceFlags & 0xff).toString(16).padStart(2, "0");
  return `00-${spanContext.traceId}-${spanContext.spanId}-${flags}`;
}

/**
 * Parses a W3C `traceparent`; `undefined` for anything invalid (a bad header must never fail a
 * job, it only starts a new trace). Per the spec, version ff is invalid, version 00 has exactly four
 * fields, and a later version may append fields after the fourth.
 */
export function parseTraceparent(value: unknown, tracestate?: unknown): SpanContext | undefined {
  if (typeof value !== "string") return undefined;
  const match = TRACEPARENT_PATTERN.exec(value.trim());
  if (!match) return undefined;
  const [, version, traceId, spanId, flags, rest] = match as unknown as [string, string, string, string, string, string | undefined];
  if (version === "ff" || (version === "00" && rest !== undefined)) return undefined;
  const spanContext: SpanContext = {
    traceId,
    spanId,
    traceFlags: parseInt(flags, 16) & TraceFlags.SAMPLED,
    isRemote: true,
  };
  if (!isSpanContextValid(spanContext)) return undefined; // all-zero ids
  // createTraceState validates the members and drops what the spec does not allow.
  if (typeof tracestate === "string" && tracestate.length > 0) spanContext.traceState = createTraceState(tracestate);
  return spanContext;
}

/** The trace-context properties for the span active in `ctx` (empty when none is valid). */
export function traceContextProperties(ctx: Context = context.active()): TraceContextProperties {
  const spanContext = trace.getSpanContext(ctx);
  if (!spanContext || !isSpanContextValid(spanContext)) return {};
  const properties: TraceContextProperties = { traceparent: formatTraceparent(spanContext) };
  const tracestate = spanContext.traceState?.serialize();
  if (tracestate) properties.tracestate = tracestate;
  return properties;
}

/**
 * A copy of a message's application properties with the active trace context added, so the
 * consumer's spans join the producer's trace. Existing keys other than the two trace keys are kept.
 */
export function injectTraceContext<P extends Record<string, unknown>>(
  properties: P,
  ctx: Context = context.active(),
): P & TraceContextProperties {
  const { [TRACEPARENT_PROPERTY]: _parent, [TRACESTATE_PROPERTY]: _state, ...rest } = properties;
  return { ...(rest as P), ...traceContextProperties(ctx) };
}

/**
 * The context to parent a consumer's span on: `base` with the remote span from the message's
 * application properties, or `base` unchanged when they carry no valid trace context.
 */
export function extractTraceContext(properties: Readonly<Record<string, unknown>> | undefined, base: Context = ROOT_CONTEXT): Context {
  const spanContext = parseTraceparent(properties?.[TRACEPARENT_PROPERTY], properties?.[TRACESTATE_PROPERTY]);
  return spanContext ? trace.setSpanContext(base, spanContext) : base;
}

const TRACER_NAME = "azure-serverless-platform";

export interface SpanOptions {
  kind?: SpanKind;
  attributes?: Attributes;
  /** The parent context; the active context when omitted. */
  parent?: Context;
}

/**
 * Runs `work` inside a new active span: its exceptions are recorded and rethrown, the status is
 * set, and the span always ends. Child spans and {@link traceContextProperties} inside `work` see it.
 */
export async function withSpan<T>(name: string, options: SpanOptions, work: (span: Span) => Promise<T>): Promise<T> {
  const tracer = trace.getTracer(TRACER_NAME);
  const parent = options.parent ?? context.active();
  return tracer.startActiveSpan(name, { kind: options.kind ?? SpanKind.INTERNAL, attributes: options.attributes }, parent, async (span) => {
    try {
      const result = await work(span);
      span.setStatus({ code: SpanStatusCode.OK });
      return result;
    } catch (error) {
      const exception = error instanceof Error ? error : new Error(String(error));
      span.recordException(exception);
      span.setStatus({ code: SpanStatusCode.ERROR, message: exception.message });
      throw error;
    } finally {
      span.end();
    }
  });
}

export { SpanKind };
