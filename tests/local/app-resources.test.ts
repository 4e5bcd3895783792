/**
 * The app's queue declarations as the Service Bus emulator receives them (local/app-resources.ts):
 * a queue declared with `sessions: true` is session-enabled on the emulator, so a session receiver
 * reads it and a plain receiver is refused, as on a Standard namespace in Azure.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ServiceBusClient } from "@azure/service-bus";
import { startServiceBusEmulator, type ServiceBusEmulator } from "@platform-tools/servicebus-emulator";
import { emulatorQueues } from "../../local/app-resources.js";

const declared = { queues: { ordered: { sessions: true }, plain: {} } };
let emulator: ServiceBusEmulator;
let client: ServiceBusClient;

beforeAll(async () => {
  emulator = await startServiceBusEmulator({ queues: emulatorQueues(declared, "Standard") });
  client = new ServiceBusClient(emulator.connectionString);
});

afterAll(async () => {
  await client?.close();
  await emulator?.stop();
});

describe("emulatorQueues", () => {
  it("declares a session queue as session-enabled and every other queue without sessions", () => {
    expect(emulatorQueues(declared, "Standard").map((q) => [q.name, q.requiresSession])).toEqual([
      ["ordered", true],
      ["plain", false],
    ]);
  });

  it("follows the stack's tier: duplicate detection only from Standard, and no session queue on Basic (as the Messaging component refuses it)", () => {
    expect(emulatorQueues({ queues: { plain: {} } }, "Standard")[0]).toMatchObject({ requiresDuplicateDetection: true });
    expect(emulatorQueues({ queues: { plain: {} } }, "Basic")[0]?.requiresDuplicateDetection).toBeUndefined();
    expect(() => emulatorQueues(declared, "Basic")).toThrow(/ordered: sessions need the Standard or Premium tier/);
  });

  it("gives the emulator a session queue that a session receiver reads and a plain receiver cannot", async () => {
    await client.createSender("ordered").sendMessages({ body: "first", sessionId: "customer-1" });
    const session = await client.acceptNextSession("ordered", { receiveMode: "receiveAndDelete" });
    expect(session.sessionId).toBe("customer-1");
    expect((await session.receiveMessages(1, { maxWaitTimeInMs: 5_000 })).map((m) => m.body)).toEqual(["first"]);
    await session.close();

    const plain = client.createReceiver("ordered");
    await expect(plain.receiveMessages(1, { maxWaitTimeInMs: 1_000 })).rejects.toThrow(/requires sessions/);
    await plain.close();
  });
});
