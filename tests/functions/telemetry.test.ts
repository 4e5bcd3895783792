import { afterAll, beforeEach, describe, expect, it } from "vitest";
import { context, ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, TraceFlags } from "@opentelemetry/api";
import {
  extractTraceContext,
  formatTraceparent,
  injectTraceContext,
  parseTraceparent,
  traceContextProperties,
  withSpan,
} from "../../functions/src/shared/telemetry.js";
import { ingestionIdentity, startTelemetry } from "../../functions/src/shared/telemetry-export.js";
import { recordSpans } from "./telemetry-recorder.js";

const recorder = recordSpans();
afterAll(() => recorder.stop());
beforeEach(() => recorder.reset());

const traceId = "4bf92f3577b34da6a3ce929d0e0e4736";
const spanId = "00f067aa0ba902b7";

describe("traceparent format", () => {
  it("round-trips a sampled and an unsampled span context", () => {
    for (const traceFlags of [TraceFlags.SAMPLED, TraceFlags.NONE]) {
      const header = formatTraceparent({ traceId, spanId, traceFlags });
      expect(header).toBe(`00-${traceId}-${spanId}-0${traceFlags}`);
      expect(parseTraceparent(header)).toEqual({ traceId, spanId, traceFlags, isRemote: true });
    }
  });

  it.each([
    ["not a string", 42],
    ["empty", ""],
    ["upper-case hex", `00-${traceId.toUpperCase()}-${spanId}-01`],
    ["all-zero trace id", `00-${"0".repeat(32)}-${spanId}-01`],
    ["all-zero span id", `00-${traceId}-${"0".repeat(16)}-01`],
    ["short trace id", `00-${traceId.slice(2)}-${spanId}-01`],
    ["forbidden version ff", `ff-${traceId}-${spanId}-01`],
    ["version 00 with a fifth field", `00-${traceId}-${spanId}-01-extra`],
  ])("rejects %s", (_label, header) => {
    expect(parseTraceparent(header)).toBeUndefined();
  });

  it("accepts a later version's extra fields, keeping only the four it knows", () => {
    expect(parseTraceparent(`01-${traceId}-${spanId}-01-future`)).toMatchObject({ traceId, spanId, traceFlags: 1 });
  });

  it("keeps tracestate and drops unknown trace-flag bits", () => {
    const parsed = parseTraceparent(`00-${traceId}-${spanId}-ff`, "vendor=abc,other=1");
    expect(parsed?.traceFlags).toBe(TraceFlags.SAMPLED);
    expect(parsed?.traceState?.get("vendor")).toBe("abc");
    expect(parsed?.traceState?.serialize()).toBe("vendor=abc,other=1");
  });
});

describe("message application properties", () => {
  it("carry the producer's trace: extract(inject()) keeps the trace id and the producing span as parent", async () => {
    const properties = await withSpan("POST /api/jobs", { kind: SpanKind.SERVER }, async (span) => {
      const injected = injectTraceContext({ jobId: "job-1" });
      expect(injected.traceparent).toBe(formatTraceparent(span.spanContext()));
      return injected;
    });
    expect(properties.jobId).toBe("job-1");
    const extracted = trace.getSpanContext(extractTraceContext(properties));
    const [producer] = recorder.spans();
    expect(extracted?.traceId).toBe(producer?.spanContext().traceId);
    expect(extracted?.spanId).toBe(producer?.spanContext().spanId);
    expect(extracted?.isRemote).toBe(true);
  });

  it("inject without an active span adds nothing and removes a stale trace context", () => {
    expect(traceContextProperties(ROOT_CONTEXT)).toEqual({});
    expect(injectTraceContext({ a: 1, traceparent: `00-${traceId}-${spanId}-01`, tracestate: "x=1" }, ROOT_CONTEXT)).toEqual({ a: 1 });
  });

  it("extract falls back to the base context on missing or malformed properties", () => {
    expect(extractTraceContext(undefined)).toBe(ROOT_CONTEXT);
    expect(extractTraceContext({ traceparent: "garbage" })).toBe(ROOT_CONTEXT);
    const base = context.active();
    expect(extractTraceContext({}, base)).toBe(base);
  });
});

describe("spans across the message boundary", () => {
  it("the agent's span is a child of the api's span, and its publish span a child of the agent's", async () => {
    const applicationProperties = await withSpan("POST /api/jobs", { kind: SpanKind.SERVER }, async () =>
      withSpan("send jobs", { kind: SpanKind.PRODUCER }, async () => injectTraceContext({})),
    );
    // The agent runs later, in another process: nothing is active except what the message carries.
    await context.with(ROOT_CONTEXT, () =>
      withSpan("process job", { kind: SpanKind.CONSUMER, parent: extractTraceContext(applicationProperties) }, async () =>
        withSpan("publish job.succeeded", { kind: SpanKind.PRODUCER }, async () => undefined),
      ),
    );
    const byName = new Map(recorder.spans().map((span) => [span.name, span]));
    const request = byName.get("POST /api/jobs")!;
    const send = byName.get("send jobs")!;
    const agent = byName.get("process job")!;
    const publish = byName.get("publish job.succeeded")!;
    const requestTrace = request.spanContext().traceId;
    for (const span of [send, agent, publish]) expect(span.spanContext().traceId).toBe(requestTrace);
    expect(send.parentSpanContext?.spanId).toBe(request.spanContext().spanId);
    expect(agent.parentSpanContext?.spanId).toBe(send.spanContext().spanId);
    expect(agent.kind).toBe(SpanKind.CONSUMER);
    expect(publish.parentSpanContext?.spanId).toBe(agent.spanContext().spanId);
  });

  it("a message without trace context starts a new trace", async () => {
    await context.with(ROOT_CONTEXT, () => withSpan("process job", { parent: extractTraceContext({}) }, async () => undefined));
    const [span] = recorder.spans();
    expect(span?.parentSpanContext).toBeUndefined();
  });

  it("records the exception, marks the span failed and rethrows", async () => {
    await expect(
      withSpan("process job", {}, async () => {
        throw new Error("blob is gone");
      }),
    ).rejects.toThrow("blob is gone");
    const [span] = recorder.spans();
    expect(span?.status).toEqual({ code: SpanStatusCode.ERROR, message: "blob is gone" });
    expect(span?.events.map((event) => event.name)).toContain("exception");
  });
});

describe("startTelemetry", () => {
  it("stays off without a connection string", async () => {
    await expect(startTelemetry({ connectionString: undefined, serviceName: "agent" })).resolves.toBe(false);
  });
});

describe("ingestionIdentity", () => {
  it("takes the app's identity from the authentication string every app gets in Azure, whatever its links", () => {
    expect(ingestionIdentity({ APPLICATIONINSIGHTS_AUTHENTICATION_STRING: "Authorization=AAD;ClientId=11111111-2222-3333-4444-555555555555" })).toEqual({
      clientId: "11111111-2222-3333-4444-555555555555",
    });
    expect(ingestionIdentity({ APPLICATIONINSIGHTS_AUTHENTICATION_STRING: "authorization=aad" })).toEqual({});
  });

  it("is undefined without Entra ingestion configured (the local platform)", () => {
    expect(ingestionIdentity({})).toBeUndefined();
    expect(ingestionIdentity({ APPLICATIONINSIGHTS_AUTHENTICATION_STRING: "Authorization=Key" })).toBeUndefined();
  });
});
