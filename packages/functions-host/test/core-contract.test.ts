/**
 * The `@azure/functions-core` contract the local host relies on. @azure/functions talks to the
 * Functions worker through this internal module; nothing public documents it, so this file pins what
 * the installed library does with it: what it registers (function metadata, hooks, the programming
 * model), what it expects an invocation to carry (RPC-shaped inputs, trigger metadata) and what it
 * hands back (RPC http data, outputs). When an upgrade of @azure/functions changes any of it, this
 * fails first, naming the part that moved.
 *
 * Runs in-process: the core module is provided before the library is first required in this worker.
 */
import { createRequire } from "node:module";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { FunctionMetadata, RpcHttpData } from "../src/core-types.js";
import { FunctionsApp, installCoreApi, type HostLogRecord } from "../src/functions-app.js";
import { hostConfigFrom } from "../src/host-config.js";
import { httpRoutesOf, startHttpTrigger, type HttpTriggerServer } from "../src/http-trigger.js";

/** The version this contract was read from; an upgrade must re-read the library and update both. */
const PINNED_VERSION = "4.16.5";

const nativeRequire = createRequire(__filename);
const logs: HostLogRecord[] = [];
const app = new FunctionsApp((record) => logs.push(record));
let uninstall: () => void;
const hooksRan: string[] = [];
type Functions = typeof import("@azure/functions");
let functions: Functions;

beforeAll(() => {
  uninstall = installCoreApi(app);
  functions = nativeRequire("@azure/functions") as Functions;
  const { app: azureApp, HttpResponse } = functions;
  azureApp.hook.appStart((context) => void hooksRan.push(`appStart:${typeof context.hookData}`));
  azureApp.hook.appTerminate(() => void hooksRan.push("appTerminate"));
  azureApp.hook.preInvocation((context) => {
    hooksRan.push(`pre:${context.invocationContext.functionName}:${context.inputs.length}`);
    context.hookData.startedBy = "pre";
  });
  azureApp.hook.postInvocation((context) => {
    hooksRan.push(`post:${context.invocationContext.functionName}:${String(context.hookData.startedBy)}:${context.error ? "error" : "ok"}`);
  });
  azureApp.http("getThing", {
    route: "things/{id}",
    methods: ["GET", "PATCH"],
    authLevel: "anonymous",
    handler: async (request, context) => {
      context.log("handling", request.params.id);
      return new HttpResponse({
        status: 203,
        jsonBody: { id: request.params.id, q: request.query.get("q"), h: request.headers.get("x-h"), body: request.method === "PATCH" ? await request.text() : null },
        headers: { "x-custom": "1" },
        cookies: [{ name: "c", value: "v", sameSite: "Strict", secure: true }],
      });
    },
  });
  azureApp.http("failing", { route: "failing", handler: () => Promise.reject(new Error("boom")) });
  azureApp.serviceBusQueue("onMessage", {
    connection: "Bus",
    queueName: "%QUEUE%",
    handler: (message, context) => {
      if ((message as { fail?: boolean }).fail) throw new Error("message failed");
      context.extraOutputs.set("unused", null);
      return { seen: message, metadata: context.triggerMetadata };
    },
  });
});

afterAll(() => uninstall?.());

const metadataOf = (name: string): FunctionMetadata => {
  const registered = app.functions.get(name.toLowerCase());
  if (!registered) throw new Error(`${name} was not registered through @azure/functions-core`);
  return registered.metadata;
};

describe("@azure/functions-core contract", () => {
  it(`is read from @azure/functions ${PINNED_VERSION}`, () => {
    const installed = (nativeRequire("@azure/functions/package.json") as { version: string }).version;
    expect(installed, "re-read the library's ProgrammingModel/InvocationModel/converters and update the local host and this test").toBe(PINNED_VERSION);
  });

  it("registers a programming model and every function, not test mode", async () => {
    expect(app.programmingModel?.name).toBe("@azure/functions");
    expect(app.programmingModel?.version).toBe(PINNED_VERSION);
    expect([...app.functions.values()].map((f) => f.metadata.name).sort()).toEqual(["failing", "getThing", "onMessage"]);
    // The worker asks for capabilities before invoking anything; no HttpUri means no streaming proxy.
    expect(await app.programmingModel!.getCapabilities({})).not.toHaveProperty("HttpUri");
  });

  it("describes an HTTP function as an httpTrigger binding plus an http $return output", () => {
    const { bindings } = metadataOf("getThing");
    const entries = Object.entries(bindings);
    const trigger = entries.find(([, b]) => b.type === "httpTrigger");
    expect(trigger?.[1]).toMatchObject({ direction: "in", route: "things/{id}", methods: ["GET", "PATCH"], authLevel: "anonymous" });
    expect(bindings.$return).toMatchObject({ type: "http", direction: "out" });
  });

  it("describes a Service Bus function with queueName (an unresolved %expression%) and connection", () => {
    const trigger = Object.values(metadataOf("onMessage").bindings).find((b) => b.type === "serviceBusTrigger");
    expect(trigger).toMatchObject({ direction: "in", queueName: "%QUEUE%", connection: "Bus" });
  });

  it("runs appStart and appTerminate hooks with hook data", async () => {
    await app.runAppHooks("appStart", process.cwd());
    expect(hooksRan).toContain("appStart:object");
  });

  it("takes an HTTP request as RPC http data and answers with RPC http data", async () => {
    const triggerName = Object.entries(metadataOf("getThing").bindings).find(([, b]) => b.type === "httpTrigger")![0];
    const http: RpcHttpData = {
      method: "PATCH",
      url: "http://127.0.0.1:1/api/things/42?q=search",
      headers: { "x-h": "header-value", "content-type": "text/plain" },
      params: { id: "42" },
      body: { bytes: Buffer.from("patched") },
    };
    const response = await app.invoke("getThing", { inputData: [{ name: triggerName, data: { http } }], triggerMetadata: {} });
    const answer = response.returnValue?.http;
    expect(answer?.statusCode).toBe("203");
    expect(answer?.headers).toMatchObject({ "x-custom": "1", "content-type": "application/json" });
    expect(JSON.parse(Buffer.from(answer!.body!.bytes!).toString("utf8"))).toEqual({ id: "42", q: "search", h: "header-value", body: "patched" });
    expect(answer?.cookies?.[0]).toMatchObject({ name: "c", value: "v", sameSite: "strict", secure: { value: true } });
    expect(hooksRan).toContain("pre:getThing:1");
    expect(hooksRan).toContain("post:getThing:pre:ok");
    expect(logs.some((l) => l.category === "user" && l.functionName === "getThing" && l.message === "handling 42" && l.invocationId)).toBe(true);
  });

  it("parses a string trigger input as JSON and camelCases the host's trigger metadata", async () => {
    const response = await app.invoke("onMessage", {
      inputData: [{ name: Object.keys(metadataOf("onMessage").bindings)[0]!, data: { string: '{"jobId":"j1"}' } }],
      triggerMetadata: { MessageId: { string: "m-1" }, DeliveryCount: { int: 2 }, ApplicationProperties: { json: '{"traceparent":"00-x"}' } },
    });
    const result = JSON.parse(response.returnValue!.json!) as { seen: unknown; metadata: Record<string, unknown> };
    expect(result.seen).toEqual({ jobId: "j1" });
    expect(result.metadata).toMatchObject({ messageId: "m-1", deliveryCount: 2, applicationProperties: { traceparent: "00-x" } });
  });

  it("rejects the invocation with the handler's error after postInvocation hooks saw it", async () => {
    await expect(
      app.invoke("onMessage", { inputData: [{ name: Object.keys(metadataOf("onMessage").bindings)[0]!, data: { json: '{"fail":true}' } }], triggerMetadata: {} }),
    ).rejects.toThrow("message failed");
    expect(hooksRan).toContain("post:onMessage:pre:error");
  });
});

describe("HTTP trigger server (in-process)", () => {
  let server: HttpTriggerServer;
  beforeAll(async () => {
    const routes = httpRoutesOf(app, hostConfigFrom({}));
    server = await startHttpTrigger({ app, routes, port: 0, maxRequestBytes: 1024, corsAllowedOrigins: ["http://127.0.0.1:4280"], log: () => {} });
  });
  afterAll(() => server?.close());

  it("refuses a body over the limit with 413 problem+json, before the function runs", async () => {
    const before = hooksRan.length;
    const response = await fetch(`${server.url}/api/things/1`, { method: "PATCH", body: "x".repeat(2048) });
    expect(response.status).toBe(413);
    expect(response.headers.get("content-type")).toBe("application/problem+json");
    expect(hooksRan.length).toBe(before);
  });

  it("answers a failing function with a bare 500", async () => {
    const response = await fetch(`${server.url}/api/failing`);
    expect(response.status).toBe(500);
    expect(await response.text()).toBe("");
  });

  it("answers CORS preflights for the allowed origin itself and tags answers to it", async () => {
    const preflight = await fetch(`${server.url}/api/things/1`, {
      method: "OPTIONS",
      headers: { origin: "http://127.0.0.1:4280", "access-control-request-method": "PATCH", "access-control-request-headers": "x-dev-user,content-type" },
    });
    expect(preflight.status).toBe(204);
    expect(preflight.headers.get("access-control-allow-origin")).toBe("http://127.0.0.1:4280");
    expect(preflight.headers.get("access-control-allow-headers")).toBe("x-dev-user,content-type");
    const answer = await fetch(`${server.url}/api/things/1`, { headers: { origin: "http://127.0.0.1:4280" } });
    expect(answer.headers.get("access-control-allow-origin")).toBe("http://127.0.0.1:4280");
    const stranger = await fetch(`${server.url}/api/things/1`, { headers: { origin: "http://evil.example" } });
    expect(stranger.headers.get("access-control-allow-origin")).toBeNull();
  });
});

it("appTerminate hooks run on stop", async () => {
  await app.runAppHooks("appTerminate", process.cwd());
  expect(hooksRan).toContain("appTerminate");
});
