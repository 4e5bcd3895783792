/**
 * Session-enabled queues and subscriptions through the unchanged @azure/service-bus session API:
 * acceptSession and acceptNextSession, one receiver per session, session state, lock renewal and
 * expiry, and what a session-enabled entity refuses. Expectations follow the SDK's own live tests
 * (sessionsTests, renewLockSessions, sendBatch, batchReceiver with sessions); short locks keep the
 * expiry tests fast, and every wait is for an event.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ServiceBusClient, type ProcessErrorArgs, type ServiceBusReceivedMessage, type ServiceBusSessionReceiver } from "@azure/service-bus";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startServiceBusEmulator, type QueueOptions, type ServiceBusEmulator } from "../src/index.js";
import { errorOf, receiveAll } from "./sdk-helpers.js";

const SHORT_LOCK_MS = 400;
const sessionQueue = (name: string, extra: Partial<QueueOptions> = {}): QueueOptions => ({ name, requiresSession: true, lockDurationMs: 60_000, ...extra });

let emulator: ServiceBusEmulator;
/** Tests waiting for a diagnostics line of the emulator. */
const logWaiters: Array<{ pattern: RegExp; resolve: () => void }> = [];
function onLog(line: string): void {
  for (const waiter of [...logWaiters]) {
    if (waiter.pattern.test(line)) {
      logWaiters.splice(logWaiters.indexOf(waiter), 1);
      waiter.resolve();
    }
  }
}
const logLine = (pattern: RegExp) => new Promise<void>((resolve) => logWaiters.push({ pattern, resolve }));
let client: ServiceBusClient;
/** Gives up on acceptNextSession after about a second (the emulator waits as long as the client says). */
let impatient: ServiceBusClient;
const dataDir = mkdtempSync(join(tmpdir(), "sb-sessions-"));

beforeAll(async () => {
  emulator = await startServiceBusEmulator({
    queues: [
      sessionQueue("orders"),
      sessionQueue("waiting"),
      sessionQueue("stateful"),
      sessionQueue("expiring", { lockDurationMs: SHORT_LOCK_MS }),
      sessionQueue("released"),
      sessionQueue("deferring"),
      sessionQueue("batches"),
      { name: "plain" },
    ],
    topics: [{ name: "tracking", subscriptions: [{ name: "per-parcel", requiresSession: true }, { name: "audit" }] }],
    log: onLog,
  });
  client = new ServiceBusClient(emulator.connectionString, { retryOptions: { maxRetries: 0, timeoutInMs: 5_000 } });
  impatient = new ServiceBusClient(emulator.connectionString, { retryOptions: { maxRetries: 0, timeoutInMs: 1_000 } });
});

afterAll(async () => {
  await impatient?.close();
  await client?.close();
  await emulator?.stop();
  rmSync(dataDir, { recursive: true, force: true });
});

const bodies = (messages: ServiceBusReceivedMessage[]) => messages.map((m) => m.body);

describe("session receivers", () => {
  it("give a session's messages, in order, only to the receiver that holds it", async () => {
    const sender = client.createSender("orders");
    await sender.sendMessages([
      { body: "a1", sessionId: "a" },
      { body: "b1", sessionId: "b" },
      { body: "a2", sessionId: "a" },
    ]);
    const a = await client.acceptSession("orders", "a");
    expect(a.sessionId).toBe("a");
    const fromA = await receiveAll(a, 2);
    expect(bodies(fromA)).toEqual(["a1", "a2"]);
    expect(fromA.map((m) => m.sessionId)).toEqual(["a", "a"]);
    expect(fromA[0]?.lockedUntilUtc?.getTime()).toBe(a.sessionLockedUntilUtc?.getTime());
    // The next message a's receiver gets is a later one of session a, never b's waiting one.
    await sender.sendMessages({ body: "a3", sessionId: "a" });
    const a3 = await receiveAll(a, 1);
    expect(bodies(a3)).toEqual(["a3"]);
    fromA.push(...a3);

    const taken = await errorOf(client.acceptSession("orders", "a"));
    expect(taken.code).toBe("SessionCannotBeLocked");
    const next = await client.acceptNextSession("orders");
    expect(next.sessionId).toBe("b");
    const [b1] = await receiveAll(next, 1);
    expect(b1?.body).toBe("b1");

    for (const message of fromA) await a.completeMessage(message);
    await next.completeMessage(b1 as ServiceBusReceivedMessage);
    expect(await a.peekMessages(10)).toHaveLength(0);
    await a.close();
    await next.close();
    await sender.close();
  });

  it("wait in acceptNextSession for a session with a message, and time out with ServiceTimeout when none comes", async () => {
    const timedOut = await errorOf(impatient.acceptNextSession("waiting"));
    expect(timedOut.code).toMatch(/^(ServiceTimeout|SessionCannotBeLocked)$/);

    const waiting = logLine(/next-session request on 'waiting' waits/);
    const accepting = client.acceptNextSession("waiting");
    await waiting; // the request is held: only a message can answer it now
    const sender = client.createSender("waiting");
    await sender.sendMessages({ body: "late", sessionId: "late-session" });
    const receiver = await accepting;
    expect(receiver.sessionId).toBe("late-session");
    const [late] = await receiveAll(receiver, 1);
    expect(late?.body).toBe("late");
    await receiver.completeMessage(late as ServiceBusReceivedMessage);
    await receiver.close();
    await sender.close();
  });

  it("keep a session's state across receivers until it is cleared, and only for the holder", async () => {
    const sender = client.createSender("stateful");
    await sender.sendMessages({ body: "step 1", sessionId: "cart-7" });
    const first = await client.acceptSession("stateful", "cart-7");
    expect(await first.getSessionState()).toBeFalsy();
    await first.setSessionState("new_state");
    expect(await first.getSessionState()).toBe("new_state");
    await first.setSessionState({ step: 2 });
    await first.close();

    const second = await client.acceptNextSession("stateful");
    expect(second.sessionId).toBe("cart-7");
    expect(await second.getSessionState()).toEqual({ step: 2 });
    await second.setSessionState("");
    expect(await second.getSessionState()).toBeFalsy();
    const [message] = await receiveAll(second, 1);
    await second.completeMessage(message as ServiceBusReceivedMessage);
    await second.close();
    await sender.close();
  });

  it("renew the session lock on request", async () => {
    const receiver = await client.acceptSession("orders", "renewed", { maxAutoLockRenewalDurationInMs: 0 });
    const initial = receiver.sessionLockedUntilUtc?.getTime() ?? 0;
    expect(initial).toBeGreaterThan(Date.now() + 50_000);
    const renewed = await receiver.renewSessionLock();
    expect(renewed.getTime()).toBeGreaterThanOrEqual(initial);
    expect(receiver.sessionLockedUntilUtc?.getTime()).toBe(renewed.getTime());
    await receiver.close();
  });

  it("end with SessionLockLost when the session lock expires, and the session's messages come back counted", async () => {
    const sender = client.createSender("expiring");
    await sender.sendMessages({ body: "slow", sessionId: "e1" });
    const receiver = await client.acceptSession("expiring", "e1", { maxAutoLockRenewalDurationInMs: 0 });
    const received: ServiceBusReceivedMessage[] = [];
    const lost = new Promise<ProcessErrorArgs>((resolve) => {
      receiver.subscribe(
        {
          async processMessage(message) {
            received.push(message);
          },
          async processError(args) {
            resolve(args);
          },
        },
        { autoCompleteMessages: false },
      );
    });
    const error = await lost;
    expect((error.error as { code?: string }).code).toBe("SessionLockLost");
    expect(received.map((m) => [m.body, m.deliveryCount])).toEqual([["slow", 0]]);
    expect((await errorOf(receiver.completeMessage(received[0] as ServiceBusReceivedMessage))).code).toBe("SessionLockLost");
    await receiver.close();

    const again = await client.acceptSession("expiring", "e1", { maxAutoLockRenewalDurationInMs: 0 });
    const [redelivered] = await receiveAll(again, 1);
    expect(redelivered).toMatchObject({ body: "slow", deliveryCount: 1 });
    await again.completeMessage(redelivered as ServiceBusReceivedMessage);
    await again.close();
    await sender.close();
  });

  it("give the session up when their receiver closes: another receiver takes it at once, the unsettled message counted", async () => {
    const sender = client.createSender("released");
    await sender.sendMessages({ body: "unsettled", sessionId: "r1" });
    const first = await client.acceptSession("released", "r1");
    const [message] = await receiveAll(first, 1);
    expect(message?.deliveryCount).toBe(0);
    await first.close();
    const second = await client.acceptSession("released", "r1");
    const [again] = await receiveAll(second, 1);
    expect(again).toMatchObject({ body: "unsettled", deliveryCount: 1 });
    await second.completeMessage(again as ServiceBusReceivedMessage);
    await second.close();
    await sender.close();
  });

  it("defer, peek and receive by sequence number within their session only", async () => {
    const sender = client.createSender("deferring");
    await sender.sendMessages([
      { body: "mine", sessionId: "s1" },
      { body: "theirs", sessionId: "s2" },
    ]);
    const receiver = await client.acceptSession("deferring", "s1");
    const [mine] = await receiveAll(receiver, 1);
    await receiver.deferMessage(mine as ServiceBusReceivedMessage);
    const peeked = await receiver.peekMessages(10);
    expect(peeked.map((m) => [m.body, m.state])).toEqual([["mine", "deferred"]]);
    const seq = mine?.sequenceNumber as NonNullable<ServiceBusReceivedMessage["sequenceNumber"]>;
    const [deferred] = await receiver.receiveDeferredMessages(seq);
    expect(deferred).toMatchObject({ body: "mine", state: "deferred", deliveryCount: 1, sessionId: "s1" });
    await receiver.completeMessage(deferred as ServiceBusReceivedMessage);

    const other = await client.acceptSession("deferring", "s2");
    const [theirs] = await receiveAll(other, 1);
    await other.deferMessage(theirs as ServiceBusReceivedMessage);
    const elsewhere = await errorOf(receiver.receiveDeferredMessages(theirs?.sequenceNumber as NonNullable<ServiceBusReceivedMessage["sequenceNumber"]>));
    expect(elsewhere.code).toBe("MessageNotFound");
    const [back] = await other.receiveDeferredMessages(theirs?.sequenceNumber as NonNullable<ServiceBusReceivedMessage["sequenceNumber"]>);
    await other.completeMessage(back as ServiceBusReceivedMessage);
    for (const r of [receiver, other]) await r.close();
    await sender.close();
  });

  it("take a batch spanning sessions, each session's messages to its own receiver (receive-and-delete too)", async () => {
    const sender = client.createSender("batches");
    const batch = await sender.createMessageBatch();
    for (let i = 0; i < 6; i++) expect(batch.tryAddMessage({ body: `m${i}`, sessionId: `session ${i % 3}` })).toBe(true);
    await sender.sendMessages(batch);
    const seen = new Map<string, unknown[]>();
    for (let i = 0; i < 3; i++) {
      const receiver: ServiceBusSessionReceiver = await client.acceptNextSession("batches", { receiveMode: "receiveAndDelete" });
      seen.set(receiver.sessionId, bodies(await receiveAll(receiver, 2)));
      await receiver.close();
    }
    expect(Object.fromEntries(seen)).toEqual({ "session 0": ["m0", "m3"], "session 1": ["m1", "m4"], "session 2": ["m2", "m5"] });
    await sender.close();
  });
});

describe("session-enabled entities", () => {
  it("refuse plain receivers, messages without a session id, and session receivers on plain entities", async () => {
    const plainReceiver = await errorOf(client.createReceiver("orders").receiveMessages(1, { maxWaitTimeInMs: 500 }));
    expect(plainReceiver.message).toMatch(/requires sessions to create a non-sessionful message receiver/);
    const noSession = await errorOf(client.createSender("orders").sendMessages({ body: "lost" }));
    expect(noSession.message).toMatch(/SessionId was not set on a message/);
    const scheduled = await errorOf(client.createSender("orders").scheduleMessages({ body: "lost" }, new Date(Date.now() + 60_000)));
    expect(scheduled.message).toMatch(/SessionId was not set on a message/);
    // The emulator refuses the link; the SDK, seeing no session granted, reports it in its own words.
    const sessionOnPlain = await errorOf(client.acceptSession("plain", "x"));
    expect(sessionOnPlain).toMatchObject({ code: "SessionCannotBeLocked", message: expect.stringContaining("'x'") });
    expect(await client.createReceiver("plain").peekMessages(1)).toHaveLength(0);
  });

  it("work on topic subscriptions: the session subscription by session, the plain one as usual", async () => {
    const sender = client.createSender("tracking");
    expect((await errorOf(sender.sendMessages({ body: "no parcel" }))).message).toMatch(/per-parcel/);
    await sender.sendMessages([
      { body: "picked", sessionId: "parcel-1" },
      { body: "shipped", sessionId: "parcel-1" },
    ]);
    const parcel = await client.acceptSession("tracking", "per-parcel", "parcel-1", { receiveMode: "receiveAndDelete" });
    expect(bodies(await receiveAll(parcel, 2))).toEqual(["picked", "shipped"]);
    const audit = client.createReceiver("tracking", "audit", { receiveMode: "receiveAndDelete" });
    expect(bodies(await receiveAll(audit, 2))).toEqual(["picked", "shipped"]);
    await parcel.close();
    await audit.close();
    await sender.close();
  });

  it("keep session state across a restart with a data directory", async () => {
    const durable = await startServiceBusEmulator({ dataDir, queues: [sessionQueue("kept")] });
    const first = new ServiceBusClient(durable.connectionString);
    const receiver = await first.acceptSession("kept", "s");
    await receiver.setSessionState("remembered");
    await first.close();
    await durable.stop();

    const restarted = await startServiceBusEmulator({ dataDir, queues: [sessionQueue("kept")] });
    const second = new ServiceBusClient(restarted.connectionString);
    const again = await second.acceptSession("kept", "s");
    expect(await again.getSessionState()).toBe("remembered");
    await second.close();
    await restarted.stop();
  });
});
