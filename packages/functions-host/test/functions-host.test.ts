/**
 * The local Functions host running a fixture service in its own child process (as npm start runs
 * the api and the agent): HTTP routes, parameters, methods and status codes over real HTTP, hooks,
 * and Service Bus triggers through the real SDK and our Service Bus emulator: completed on success,
 * abandoned on a throw until maxDeliveryCount dead-letters the message, then delivered to the
 * dead-letter function.
 */
import { join } from "node:path";
import { ServiceBusClient } from "@azure/service-bus";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startHostProcess, type HostProcess } from "../src/host-process.js";
import { startServiceBusEmulator, type ServiceBusEmulator } from "@platform-tools/servicebus-emulator";

const QUEUE = "fixture-work";
const MAX_DELIVERY_COUNT = 2;

interface Observed {
  hooks: string[];
  messages: { functionName: string; invocationId: string; body: unknown; triggerMetadata: Record<string, unknown> }[];
  ticks: { timer: { isPastDue: boolean; schedule: { adjustForDST: boolean }; scheduleStatus: { last: string; next: string; lastUpdated: string } }; at: string }[];
}

let bus: ServiceBusEmulator;
let host: HostProcess;
let client: ServiceBusClient;
const output: string[] = [];

beforeAll(async () => {
  bus = await startServiceBusEmulator({ queues: [{ name: QUEUE, maxDeliveryCount: MAX_DELIVERY_COUNT, lockDurationMs: 5_000 }] });
  host = await startHostProcess({
    name: "fixture",
    entry: join(__dirname, "fixtures", "fixture-service.ts"),
    hostJson: join(__dirname, "fixtures", "host.json"),
    settings: { FixtureServiceBus: bus.connectionString, FIXTURE_QUEUE: QUEUE, FIXTURE_SCHEDULE: "*/1 * * * * *" },
    output: (line) => output.push(line),
  });
  client = new ServiceBusClient(bus.connectionString);
});

afterAll(async () => {
  await client?.close();
  await host?.stop();
  await bus?.stop();
});

const url = (path: string) => `${host.url}${path}`;
const observed = async (): Promise<Observed> => (await (await fetch(url("/api/observed"))).json()) as Observed;

async function eventually<T>(probe: () => Promise<T | undefined>, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`not observed within ${timeoutMs} ms; host output:\n${output.slice(-30).join("\n")}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

describe("indexing", () => {
  it("lists every function with its trigger, the HTTP routes under the api prefix and the resolved queues", () => {
    const byName = Object.fromEntries(host.functions.map((f) => [f.name, f]));
    expect(byName.greet).toEqual({ name: "greet", trigger: "httpTrigger", methods: ["GET"], route: "/api/greet/{name}" });
    expect(byName.work).toEqual({ name: "work", trigger: "serviceBusTrigger", source: QUEUE });
    expect(byName.deadLetters).toEqual({ name: "deadLetters", trigger: "serviceBusTrigger", source: `${QUEUE}/$deadletterqueue` });
    expect(byName.tick).toEqual({ name: "tick", trigger: "timerTrigger", schedule: "*/1 * * * * *" });
  });
});

describe("timer triggers", () => {
  it("runs on start-up, then on the schedule, handing the function the host's timer info (camelCased by the library)", async () => {
    const ticks = await eventually(async () => {
      const seen = (await observed()).ticks;
      return seen.length >= 3 ? seen : undefined;
    });
    const [first, second, third] = ticks;
    expect(first!.timer).toMatchObject({ isPastDue: false, schedule: { adjustForDST: true }, scheduleStatus: { last: "0001-01-01T00:00:00.000Z" } });
    // Each scheduled run is for a whole-second occurrence after the previous run, and starts no earlier.
    for (const [previous, tick] of [[first!, second!], [second!, third!]] as const) {
      const occurrence = Date.parse(tick.timer.scheduleStatus.next);
      expect(occurrence % 1000).toBe(0);
      expect(occurrence).toBeGreaterThan(Date.parse(tick.timer.scheduleStatus.last));
      expect(Date.parse(tick.at)).toBeGreaterThanOrEqual(occurrence);
      expect(Date.parse(tick.timer.scheduleStatus.last)).toBeGreaterThanOrEqual(Date.parse(previous.timer.scheduleStatus.last));
    }
    expect(output.some((line) => /tick .*timer schedule \*\/1 \* \* \* \* \* \(UTC\)/.test(line))).toBe(true);
  });
});

describe("HTTP triggers", () => {
  it("passes route parameters, query (repeated keys too), headers and the full URL", async () => {
    const response = await fetch(url("/api/greet/ada%20l?lang=en&tag=a&tag=b"), { headers: { "x-test": "yes" } });
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toBe("application/json");
    const body = (await response.json()) as Record<string, unknown>;
    expect(body).toMatchObject({ name: "ada l", lang: "en", tags: ["a", "b"], header: "yes", url: url("/api/greet/ada%20l?lang=en&tag=a&tag=b") });
    // context.log lines reach the host's output with the function name and invocation id.
    const invocationId = String(body.invocationId);
    await eventually(async () => output.find((line) => line.includes(`greet ${invocationId.slice(0, 8)} greeting ada l`)));
  });

  it("returns the function's status, headers, cookies and bytes", async () => {
    const payload = Buffer.from([0, 1, 2, 250, 251, 252]);
    const response = await fetch(url("/api/echo"), { method: "PUT", body: payload, headers: { "content-type": "application/x-test" } });
    expect(response.status).toBe(201);
    expect(response.headers.get("content-type")).toBe("application/x-test");
    expect(response.headers.get("x-echo-length")).toBe("6");
    expect(response.headers.get("set-cookie")).toBe("session=abc; Path=/; Max-Age=60; HttpOnly; SameSite=Lax");
    expect(Buffer.from(await response.arrayBuffer())).toEqual(payload);
  });

  it("streams a body the function returns as a stream", async () => {
    const response = await fetch(url("/api/stream"));
    expect(await response.text()).toBe("chunk-1,chunk-2");
  });

  it("applies route constraints and catch-alls, and answers 204 without a body", async () => {
    expect(await (await fetch(url("/api/items/12"))).json()).toEqual({ id: 12 });
    expect((await fetch(url("/api/items/twelve"))).status).toBe(404);
    expect((await fetch(url("/api/items/12"), { method: "DELETE" })).status).toBe(204);
    expect(await (await fetch(url("/api/files/a/b/c.txt"))).text()).toBe("path=a/b/c.txt");
  });

  it("answers an unknown route 404 and a known route with another method 405, as problem+json", async () => {
    const missing = await fetch(url("/api/nowhere"));
    expect(missing.status).toBe(404);
    expect(missing.headers.get("content-type")).toBe("application/problem+json");
    expect(await missing.json()).toMatchObject({ status: 404, title: "Not Found" });
    const wrongMethod = await fetch(url("/api/echo"));
    expect(wrongMethod.status).toBe(405);
    expect(wrongMethod.headers.get("allow")).toBe("POST, PUT");
    expect(await wrongMethod.json()).toMatchObject({ status: 405, detail: expect.stringContaining("POST, PUT") });
  });

  it("answers 500 when the function throws, and keeps serving", async () => {
    expect((await fetch(url("/api/fail"))).status).toBe(500);
    expect((await fetch(url("/api/items/1"))).status).toBe(200);
  });

  it("runs hooks: appStart once, preInvocation may replace the handler, postInvocation sees errors", async () => {
    expect((await (await fetch(url("/api/swapped"))).json()) as unknown).toEqual({ swappedBy: "preInvocation" });
    const { hooks } = await observed();
    expect(hooks.filter((h) => h === "appStart")).toHaveLength(1);
    expect(hooks).toContain("postInvocation:fail:error");
    expect(hooks).toContain("postInvocation:greet:ok");
  });
});

describe("Service Bus triggers", () => {
  it("hands the function the parsed body and the host's metadata, and completes the message", async () => {
    const sender = client.createSender(QUEUE);
    await sender.sendMessages({ messageId: "ok-1", body: { jobId: "j-1" }, contentType: "application/json", correlationId: "corr", applicationProperties: { traceparent: "00-abc" } });
    await sender.sendMessages({ messageId: "text-1", body: "just text" });
    await sender.close();
    const [json, text] = await eventually(async () => {
      const { messages } = await observed();
      const found = ["ok-1", "text-1"].map((id) => messages.find((m) => m.triggerMetadata.messageId === id));
      return found.every(Boolean) ? found : undefined;
    });
    expect(json!.body).toEqual({ jobId: "j-1" });
    expect(json!.triggerMetadata).toMatchObject({ deliveryCount: 1, contentType: "application/json", correlationId: "corr", applicationProperties: { traceparent: "00-abc" } });
    expect(typeof json!.triggerMetadata.enqueuedTimeUtc).toBe("string");
    expect(text!.body).toBe("just text");
    // Completed: nothing is left to receive.
    const receiver = client.createReceiver(QUEUE);
    expect(await receiver.peekMessages(10)).toHaveLength(0);
    await receiver.close();
  });

  it("abandons on a throw, redelivers up to maxDeliveryCount, then the dead-letter function gets it", async () => {
    const sender = client.createSender(QUEUE);
    await sender.sendMessages({ messageId: "bad-1", body: { fail: true } });
    await sender.close();
    const deadLettered = await eventually(async () => (await observed()).messages.find((m) => m.functionName === "deadLetters" && m.triggerMetadata.messageId === "bad-1"));
    const attempts = (await observed()).messages.filter((m) => m.functionName === "work" && m.triggerMetadata.messageId === "bad-1");
    expect(attempts.map((m) => m.triggerMetadata.deliveryCount)).toEqual([1, 2]);
    expect(deadLettered.body).toEqual({ fail: true });
    // @azure/functions camelCases the keys inside applicationProperties too, as it does in Azure.
    expect(deadLettered.triggerMetadata.applicationProperties).toMatchObject({ deadLetterReason: "MaxDeliveryCountExceeded" });
    // The dead-letter function succeeded, so the sub-queue is empty again.
    const receiver = client.createReceiver(QUEUE, { subQueueType: "deadLetter" });
    await eventually(async () => ((await receiver.peekMessages(10)).length === 0 ? true : undefined));
    await receiver.close();
  });
});

describe("stopping", () => {
  it("ends the child process with appTerminate and frees the port", async () => {
    const port = new URL(host.url!).port;
    await host.stop();
    await expect(fetch(`http://127.0.0.1:${port}/api/items/1`)).rejects.toMatchObject({ cause: { code: "ECONNREFUSED" } });
    expect(() => process.kill(host.pid, 0)).toThrow(/ESRCH/);
  });
});
