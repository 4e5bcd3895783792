/**
 * startTelemetry with a connection string: the OpenTelemetry SDK and the real Azure Monitor
 * exporter, exporting to a local HTTPS ingestion endpoint (the connection string's
 * IngestionEndpoint). Asserts what Application Insights would show: the agent's span under the
 * operation id (trace id) that came with the message, and the publish span as its child.
 *
 * Nothing may leave the machine: a guard refuses every socket to a non-loopback address, and the
 * exporter's statsbeat reporting is switched off.
 */
import net from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SpanKind } from "@opentelemetry/api";
import { extractTraceContext, withSpan } from "../../functions/src/shared/telemetry.js";
import { flushTelemetry, startTelemetry, stopTelemetry } from "../../functions/src/shared/telemetry-export.js";
import { startIngestionEndpoint, type IngestionEndpoint } from "../../scripts/bench/ingestion-endpoint.js";
import { TEST_CERTIFICATE_DIRECTORY } from "../support/certificate-directory.js";

const refusedHosts: string[] = [];
const originalConnect = net.Socket.prototype.connect;
function isLoopback(host: string | undefined) {
  return host === undefined || host === "127.0.0.1" || host === "::1" || host === "localhost";
}
beforeAll(() => {
  net.Socket.prototype.connect = function guardedConnect(this: net.Socket, ...args: unknown[]) {
    const first = args[0];
    const options = (Array.isArray(first) ? first[0] : typeof first === "object" && first !== null ? first : { host: args[1] }) as { host?: string; path?: string };
    if (!options.path && !isLoopback(options.host)) {
      refusedHosts.push(String(options.host));
      process.nextTick(() => this.destroy(new Error(`test guard: no network beyond loopback (${options.host})`)));
      return this;
    }
    return (originalConnect as (...a: unknown[]) => net.Socket).apply(this, args);
  } as typeof net.Socket.prototype.connect;
});

let ingestion: IngestionEndpoint;

beforeAll(async () => {
  // The exporter speaks https only; the global test setup trusts this loopback certificate.
  ingestion = await startIngestionEndpoint(TEST_CERTIFICATE_DIRECTORY);
});

afterAll(async () => {
  await stopTelemetry().catch(() => undefined);
  await ingestion.close();
  net.Socket.prototype.connect = originalConnect;
});

describe("startTelemetry with Application Insights configured", () => {
  it("exports the agent's spans under the trace id the message carried", async () => {
    process.env.APPLICATIONINSIGHTS_STATSBEAT_DISABLED = "true";
    process.env.APPLICATION_INSIGHTS_NO_STATSBEAT = "true";
    process.env.APPLICATIONINSIGHTS_SDKSTATS_DISABLED = "true";
    const started = await startTelemetry({
      connectionString: ingestion.connectionString,
      serviceName: "agent",
    });
    expect(started).toBe(true);
    await expect(startTelemetry({ connectionString: "ignored", serviceName: "agent" })).resolves.toBe(true); // once per process

    const traceId = "4bf92f3577b34da6a3ce929d0e0e4736";
    const producerSpanId = "00f067aa0ba902b7";
    await withSpan("process job", { kind: SpanKind.CONSUMER, parent: extractTraceContext({ traceparent: `00-${traceId}-${producerSpanId}-01` }) }, async () =>
      withSpan("publish job.succeeded", { kind: SpanKind.PRODUCER }, async () => undefined),
    );
    await flushTelemetry(); // what the app's terminate hook does

    // The consumer span is a Request in Application Insights, the publish a RemoteDependency.
    const agent = ingestion.envelopes.find((envelope) => envelope.data?.baseType === "RequestData");
    const publish = ingestion.envelopes.find((envelope) => envelope.data?.baseType === "RemoteDependencyData" && envelope.data.baseData?.name === "publish job.succeeded");
    expect(agent?.tags?.["ai.operation.id"]).toBe(traceId);
    expect(agent?.tags?.["ai.operation.parentId"]).toBe(producerSpanId);
    expect(agent?.tags?.["ai.cloud.role"]).toBe("agent");
    expect(publish?.tags?.["ai.operation.id"]).toBe(traceId);
    expect(publish?.tags?.["ai.operation.parentId"]).toBe(agent?.data?.baseData?.id);
    // Nothing but the ingestion endpoint was called (no metadata probes, no statsbeat).
    expect(refusedHosts).toEqual([]);
  });
});
