/**
 * Stopping the emulator as Service Bus closes connections it shuts down (a close frame carrying
 * amqp:connection:forced, the condition clients treat as "reconnect"), and starting it again on the
 * same port and data directory: a receiver that kept subscribing gets what is sent afterwards.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { RetryMode, ServiceBusClient } from "@azure/service-bus";
import { afterAll, describe, expect, it } from "vitest";
import { rhea } from "../src/rhea-internals.js";
import { startServiceBusEmulator } from "../src/index.js";

const dirs: string[] = [];
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

describe("stop and start", () => {
  it("closes each client connection with amqp:connection:forced", async () => {
    const emulator = await startServiceBusEmulator({ queues: [{ name: "q" }] });
    const container = rhea.create_container({ id: "probe" });
    const connection = container.connect({ host: "127.0.0.1", port: emulator.port, reconnect: false });
    await new Promise<void>((resolve) => connection.once("connection_open", () => resolve()));
    const closedWith = new Promise<unknown>((resolve) => connection.once("connection_error", (context: { connection: { error?: unknown } }) => resolve(context.connection.error)));
    const disconnected = new Promise<void>((resolve) => connection.once("disconnected", () => resolve()));
    await emulator.stop();
    expect(await closedWith).toMatchObject({ condition: "amqp:connection:forced" });
    await disconnected;
  });

  it("a subscribed receiver gets the messages sent after a stop and start with the same data directory", async () => {
    const dataDir = mkdtempSync(join(tmpdir(), "sb-stop-start-"));
    dirs.push(dataDir);
    const options = { queues: [{ name: "q", lockDurationMs: 5_000 }], dataDir, key: "c3RvcC1zdGFydC1rZXk=" };
    let emulator = await startServiceBusEmulator(options);
    // The Functions extension's retry policy (the local host uses it): reconnects within seconds.
    const retryOptions = { mode: RetryMode.Exponential, retryDelayInMs: 200, maxRetryDelayInMs: 2_000, maxRetries: 3 };
    const client = new ServiceBusClient(emulator.connectionString, { retryOptions });
    const producer = new ServiceBusClient(emulator.connectionString, { retryOptions });
    const received: string[] = [];
    const waiters: (() => void)[] = [];
    const subscription = client.createReceiver("q").subscribe(
      {
        processMessage: async (message) => {
          received.push(String(message.body));
          for (const wake of waiters.splice(0)) wake();
        },
        processError: async () => {},
      },
      { autoCompleteMessages: true },
    );
    const receivedAll = async (bodies: string[]) => {
      while (!bodies.every((body) => received.includes(body))) await new Promise<void>((resolve) => waiters.push(resolve));
    };
    const sender = producer.createSender("q");
    try {
      await sender.sendMessages({ body: "before" });
      await receivedAll(["before"]);
      await sender.sendMessages({ body: "kept while stopped" });
      await emulator.stop();
      emulator = await startServiceBusEmulator({ ...options, port: emulator.port });
      await sender.sendMessages({ body: "after" });
      await receivedAll(["kept while stopped", "after"]);
    } finally {
      await subscription.close();
      await client.close();
      await producer.close();
      await emulator.stop();
    }
  }, 30_000);
});
