/**
 * One trace from the HTTP request to the Service Bus message: the api's server span continues the
 * host's trace context, the producer span is its child, and the message carries the producer
 * span's W3C traceparent for the agent to continue.
 */
import { ServiceBusClient } from "@azure/service-bus";
import { afterAll, beforeAll, expect, it } from "vitest";
import { InvocationContext } from "@azure/functions";
import { createApiDependencies } from "../../functions/src/api/clients.js";
import type { ApiDependencies } from "../../functions/src/api/dependencies.js";
import { createApiHandlers } from "../../functions/src/api/handlers.js";
import { parseTraceparent } from "../../functions/src/shared/telemetry.js";
import { startTestPlatform, TEST_QUEUE_NAME, type TestPlatform } from "../support/emulators.js";
import { decode, httpRequest } from "../support/http.js";
import { recordSpans, type SpanRecorder } from "./telemetry-recorder.js";

let platform: TestPlatform;
let deps: ApiDependencies;
let recorder: SpanRecorder;

beforeAll(async () => {
  recorder = recordSpans();
  platform = await startTestPlatform({ serviceBus: true });
  deps = await createApiDependencies(platform.settings);
});

afterAll(async () => {
  await deps?.queue.close();
  await platform?.stop();
  await recorder?.stop();
});

it("carries the request's trace through the server span and the producer span into the message", async () => {
  const hostTraceId = "4bf92f3577b34da6a3ce929d0e0e4736";
  const hostSpanId = "00f067aa0ba902b7";
  const context = new InvocationContext({
    invocationId: "trace-test",
    functionName: "jobs",
    traceContext: { traceParent: `00-${hostTraceId}-${hostSpanId}-01`, traceState: "", attributes: {} },
  });
  const handlers = createApiHandlers(async () => deps);
  const response = decode(
    await handlers.jobs(httpRequest({ method: "POST", path: "/api/jobs", headers: { "x-dev-user": "tracer" }, json: { kind: "text", text: "trace me" } }), context),
  );
  expect(response.status).toBe(202);

  const spans = recorder.spans();
  const server = spans.find((span) => span.name === "POST /api/jobs");
  const producer = spans.find((span) => span.name === `${TEST_QUEUE_NAME} send`);
  expect(server?.spanContext().traceId).toBe(hostTraceId);
  expect(server?.parentSpanContext?.spanId).toBe(hostSpanId);
  expect(server?.attributes["http.response.status_code"]).toBe(202);
  expect(producer?.spanContext().traceId).toBe(hostTraceId);
  expect(producer?.parentSpanContext?.spanId).toBe(server?.spanContext().spanId);

  const client = new ServiceBusClient(platform.settings.ServiceBus!);
  try {
    const [message] = await client.createReceiver(TEST_QUEUE_NAME, { receiveMode: "receiveAndDelete" }).receiveMessages(1, { maxWaitTimeInMs: 2_000 });
    const carried = parseTraceparent(message?.applicationProperties?.traceparent);
    expect(carried?.traceId).toBe(hostTraceId);
    expect(carried?.spanId).toBe(producer?.spanContext().spanId);
  } finally {
    await client.close();
  }
});

it("behind the API gateway: continues the gateway's W3C trace into the message and queues the job for the user the gateway names", async () => {
  // What API Management sends with W3C correlation on: its own traceparent, Easy Auth's principal
  // headers for the gateway's identity, and the user it validated in x-gateway-user-id.
  const gatewayTraceId = "0af7651916cd43dd8448eb211c80319c";
  const gatewaySpanId = "b7ad6b7169203331";
  const context = new InvocationContext({ invocationId: "gateway-trace-test", functionName: "jobs" });
  const handlers = createApiHandlers(async () => ({ ...deps, identity: { trustAppServiceAuthentication: true, behindGateway: true, allowDevelopmentIdentity: false } }));
  const response = decode(
    await handlers.jobs(
      httpRequest({
        method: "POST",
        path: "/api/jobs",
        headers: {
          traceparent: `00-${gatewayTraceId}-${gatewaySpanId}-01`,
          "x-ms-client-principal-id": "gateway-principal",
          "x-gateway-user-id": "user-behind-gateway",
        },
        json: { kind: "text", text: "through the gateway" },
      }),
      context,
    ),
  );
  expect(response.status).toBe(202);

  const client = new ServiceBusClient(platform.settings.ServiceBus!);
  try {
    const [message] = await client.createReceiver(TEST_QUEUE_NAME, { receiveMode: "receiveAndDelete" }).receiveMessages(1, { maxWaitTimeInMs: 2_000 });
    expect(parseTraceparent(message?.applicationProperties?.traceparent)?.traceId).toBe(gatewayTraceId);
    expect(message?.body).toMatchObject({ userId: "user-behind-gateway" });
  } finally {
    await client.close();
  }
});
