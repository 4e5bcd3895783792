/**
 * The operation meter (startServiceBusEmulator's onOperation): each message sent or received, each
 * settlement and each $management request is reported once, as Service Bus counts billable
 * operations; the cost estimate (npm run bench:ops) is built on these counts.
 */
import { ServiceBusClient } from "@azure/service-bus";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startServiceBusEmulator, type ServiceBusEmulator, type ServiceBusOperation } from "../src/index.js";

describe("onOperation", () => {
  const operations: ServiceBusOperation[] = [];
  let emulator: ServiceBusEmulator;
  let client: ServiceBusClient;
  beforeAll(async () => {
    emulator = await startServiceBusEmulator({ queues: [{ name: "q", lockDurationMs: 30_000 }], onOperation: (operation) => operations.push(operation) });
    client = new ServiceBusClient(emulator.connectionString);
  });
  afterAll(async () => {
    await client.close();
    await emulator.stop();
  });

  it("reports sends (a batch per message, with its size), receives, settlements by outcome and lock renewals", async () => {
    const sender = client.createSender("q");
    const batch = await sender.createMessageBatch();
    expect(batch.tryAddMessage({ body: "one" })).toBe(true);
    expect(batch.tryAddMessage({ body: "two".repeat(100) })).toBe(true);
    await sender.sendMessages(batch);
    const receiver = client.createReceiver("q");
    const received = await receiver.receiveMessages(2, { maxWaitTimeInMs: 5_000 });
    expect(received).toHaveLength(2);
    await receiver.renewMessageLock(received[0]!);
    await receiver.completeMessage(received[0]!);
    await receiver.abandonMessage(received[1]!);

    const sends = operations.filter((o) => o.kind === "send");
    expect(sends).toHaveLength(2);
    const [small, large] = sends.map((o) => (o.kind === "send" ? o.bytes : 0));
    expect(large! - small!).toBeGreaterThanOrEqual(297);
    expect(operations.filter((o) => o.kind === "receive").length).toBeGreaterThanOrEqual(2);
    expect(operations.filter((o) => o.kind === "settle")).toEqual([
      { kind: "settle", outcome: "complete" },
      { kind: "settle", outcome: "abandon" },
    ]);
    expect(operations.filter((o) => o.kind === "management")).toEqual([{ kind: "management", operation: "renew-lock" }]);
    expect(operations.some((o) => o.kind === "token")).toBe(true);
    await receiver.close();
    await sender.close();
  });
});
