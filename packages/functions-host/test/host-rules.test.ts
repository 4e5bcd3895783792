/**
 * The local host's pure decisions: route templates and precedence, host.json reading, app-setting
 * expressions, cookies, and how a Service Bus message becomes the function's input and metadata.
 */
import type { ServiceBusReceivedMessage } from "@azure/service-bus";
import { describe, expect, it } from "vitest";
import { hostConfigFrom, parseTimeSpan, resolveAppSettingExpressions } from "../src/host-config.js";
import { compileRoute, RouteTable } from "../src/http-routes.js";
import { isServedHost, setCookieHeader } from "../src/http-trigger.js";
import { triggerInputOf, triggerMetadataOf } from "../src/servicebus-trigger.js";

function table(...routes: [string, string[]][]) {
  const t = new RouteTable<string>();
  for (const [route, methods] of routes) t.add(compileRoute("api", route, methods, route));
  return t;
}

describe("routes", () => {
  const routes = table(
    ["jobs", ["GET", "POST"]],
    ["jobs/{id}", ["GET"]],
    ["jobs/latest", ["GET"]],
    ["items/{n:int}", []],
    ["items/{name}", []],
    ["docs/{*asset}", ["GET"]],
    ["files/{a}/{b?}", ["GET"]],
  );

  it("matches literals case-insensitively and returns decoded parameters", () => {
    expect(routes.match("GET", "/API/Jobs")).toMatchObject({ kind: "matched", route: { target: "jobs" } });
    expect(routes.match("GET", "/api/jobs/a%20b")).toMatchObject({ kind: "matched", route: { target: "jobs/{id}" }, params: { id: "a b" } });
  });

  it("prefers a literal over a parameter and a constrained parameter over a free one", () => {
    expect(routes.match("GET", "/api/jobs/latest")).toMatchObject({ route: { target: "jobs/latest" } });
    expect(routes.match("GET", "/api/items/12")).toMatchObject({ route: { target: "items/{n:int}" }, params: { n: "12" } });
    expect(routes.match("GET", "/api/items/twelve")).toMatchObject({ route: { target: "items/{name}" } });
  });

  it("serves catch-all and optional parameters", () => {
    expect(routes.match("GET", "/api/docs/swagger/index.html")).toMatchObject({ params: { asset: "swagger/index.html" } });
    expect(routes.match("GET", "/api/docs")).toMatchObject({ kind: "matched", params: {} });
    expect(routes.match("GET", "/api/files/x")).toMatchObject({ kind: "matched", params: { a: "x" } });
    expect(routes.match("GET", "/api/files/x/y")).toMatchObject({ params: { a: "x", b: "y" } });
    expect(routes.match("GET", "/api/files/x/y/z")).toEqual({ kind: "notFound" });
  });

  it("tells a wrong method (405 with the allowed ones) from an unknown path (404)", () => {
    expect(routes.match("DELETE", "/api/jobs")).toEqual({ kind: "methodNotAllowed", allow: ["GET", "POST"] });
    expect(routes.match("GET", "/api/nothing")).toEqual({ kind: "notFound" });
    expect(routes.match("GET", "/jobs")).toEqual({ kind: "notFound" });
  });

  it("refuses templates it cannot serve faithfully, and clashing routes", () => {
    expect(() => compileRoute("api", "a/{x:regex(^a$)}", [], 0)).toThrow(/not supported/);
    expect(() => compileRoute("api", "a/{*rest}/b", [], 0)).toThrow(/last segment/);
    expect(() => compileRoute("api", "a/{x?}/b", [], 0)).toThrow(/optional/);
    expect(() => table(["jobs/{id}", ["GET"]], ["jobs/{other}", ["GET", "PUT"]])).toThrow(/already served/);
    expect(() => table(["jobs/{id}", ["GET"]], ["jobs/{other}", ["PUT"]])).not.toThrow();
  });

  it("honours an empty route prefix", () => {
    const t = new RouteTable<string>();
    t.add(compileRoute("", "health", [], "h"));
    expect(t.match("GET", "/health")).toMatchObject({ kind: "matched" });
  });
});

describe("host.json", () => {
  it("applies the host's defaults and reads the Service Bus extension settings", () => {
    const config = hostConfigFrom({ extensions: { serviceBus: { maxConcurrentCalls: 4, maxAutoLockRenewalDuration: "00:02:30", autoCompleteMessages: true } } });
    expect(config.routePrefix).toBe("api");
    expect(config.serviceBus).toEqual({
      maxConcurrentCalls: 4,
      maxAutoLockRenewalDurationMs: 150_000,
      autoCompleteMessages: true,
      // The extension's retries (the .NET ServiceBusRetryOptions defaults), not the JS SDK's fixed 30 s.
      clientRetry: { mode: "exponential", delayMs: 800, maxDelayMs: 60_000, maxRetries: 3, tryTimeoutMs: 60_000 },
    });
    expect(hostConfigFrom({ extensions: { http: { routePrefix: "/v1/" } } }).routePrefix).toBe("v1");
    expect(
      hostConfigFrom({ extensions: { serviceBus: { clientRetryOptions: { mode: "fixed", delay: "00:00:02", maxDelay: "00:00:10", maxRetries: 5, tryTimeout: "00:00:30" } } } }).serviceBus.clientRetry,
    ).toEqual({ mode: "fixed", delayMs: 2_000, maxDelayMs: 10_000, maxRetries: 5, tryTimeoutMs: 30_000 });
  });

  it("rejects malformed values, naming them", () => {
    expect(() => hostConfigFrom({ extensions: { serviceBus: { maxConcurrentCalls: 0 } } })).toThrow(/maxConcurrentCalls/);
    expect(() => hostConfigFrom({ extensions: { serviceBus: { maxAutoLockRenewalDuration: "5 minutes" } } })).toThrow(/TimeSpan/);
    expect(() => hostConfigFrom({ extensions: { serviceBus: { clientRetryOptions: { mode: "linear" } } } })).toThrow(/clientRetryOptions.mode/);
    expect(parseTimeSpan("1.00:00:01.5", "x")).toBe(86_401_500);
  });

  it("lets AzureFunctionsJobHost__ app settings override host.json, as in Azure, and reads the request body limit", () => {
    const hostJson = { extensions: { serviceBus: { maxConcurrentCalls: 16, autoCompleteMessages: true } } };
    const config = hostConfigFrom(hostJson, {
      AzureFunctionsJobHost__extensions__serviceBus__maxConcurrentCalls: "3",
      AzureFunctionsJobHost__Extensions__Http__RoutePrefix: "v2",
      FUNCTIONS_REQUEST_BODY_SIZE_LIMIT: "1048576",
    });
    expect(config.serviceBus.maxConcurrentCalls).toBe(3);
    expect(config.routePrefix).toBe("v2");
    expect(config.maxRequestBytes).toBe(1_048_576);
    // host.json itself is untouched; without the settings the host's defaults apply.
    expect(hostJson.extensions.serviceBus.maxConcurrentCalls).toBe(16);
    expect(hostConfigFrom(hostJson).maxRequestBytes).toBe(104_857_600);
    expect(() => hostConfigFrom(hostJson, { FUNCTIONS_REQUEST_BODY_SIZE_LIMIT: "1 MB" })).toThrow(/FUNCTIONS_REQUEST_BODY_SIZE_LIMIT/);
  });

  it("resolves %SETTING% expressions and names a missing setting", () => {
    expect(resolveAppSettingExpressions("%Q%/$deadletterqueue", { Q: "jobs" }, "f")).toBe("jobs/$deadletterqueue");
    expect(() => resolveAppSettingExpressions("%MISSING%", {}, 'function "f"')).toThrow(/MISSING/);
  });
});

describe("Host names on a loopback interface (DNS rebinding)", () => {
  it("serves loopback names only when it listens on loopback", () => {
    for (const host of ["127.0.0.1:7071", "localhost:7071", "LOCALHOST", "[::1]:7071"]) expect(isServedHost(host, "127.0.0.1"), host).toBe(true);
    for (const host of ["evil.example:7071", "127.0.0.1.evil.example", undefined]) expect(isServedHost(host, "127.0.0.1"), String(host)).toBe(false);
    expect(isServedHost("anything.example", "0.0.0.0")).toBe(true);
  });
});

describe("responses", () => {
  it("writes Set-Cookie from the library's RPC cookie", () => {
    expect(
      setCookieHeader({ name: "s", value: "v", path: { value: "/" }, maxAge: { value: 60 }, httpOnly: { value: true }, secure: { value: true }, sameSite: "explicitNone", expires: { value: { seconds: 0 } } }),
    ).toBe("s=v; Path=/; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=60; Secure; HttpOnly; SameSite=None");
  });
});

describe("Service Bus message to invocation", () => {
  const message = (fields: Partial<ServiceBusReceivedMessage>) => fields as ServiceBusReceivedMessage;

  it("passes UTF-8 bytes as a string (JSON parsed by the library), other bytes as bytes", () => {
    expect(triggerInputOf(message({ body: Buffer.from('{"jobId":"1"}') }))).toEqual({ string: '{"jobId":"1"}' });
    expect(triggerInputOf(message({ body: Buffer.from([0xff, 0xfe]) }))).toEqual({ bytes: Buffer.from([0xff, 0xfe]) });
    expect(triggerInputOf(message({ body: { a: 1 } }))).toEqual({ json: '{"a":1}' });
  });

  it("carries the host's binding data: 1-based DeliveryCount, times, application properties", () => {
    const metadata = triggerMetadataOf(
      message({
        messageId: "m1",
        deliveryCount: 0,
        enqueuedTimeUtc: new Date("2026-01-01T00:00:00Z"),
        expiresAtUtc: new Date(8.64e15),
        applicationProperties: { DeadLetterReason: "MaxDeliveryCountExceeded" },
        contentType: "application/json",
        correlationId: "c1",
      }),
    );
    expect(metadata).toMatchObject({
      MessageId: { string: "m1" },
      DeliveryCount: { int: 1 },
      EnqueuedTimeUtc: { string: "2026-01-01T00:00:00.000Z" },
      ExpiresAtUtc: { string: "9999-12-31T23:59:59.999Z" },
      ContentType: { string: "application/json" },
      CorrelationId: { string: "c1" },
      ApplicationProperties: { json: '{"DeadLetterReason":"MaxDeliveryCountExceeded"}' },
    });
    expect(metadata).not.toHaveProperty("SessionId");
  });
});
