/**
 * Contract tests for the local Service Bus emulator: every behaviour is driven through the real
 * @azure/service-bus SDK, as the platform's code uses it. One emulator serves the file; each test
 * has its own queue so tests cannot see each other's messages.
 */
import { ServiceBusClient, type ServiceBusReceivedMessage } from "@azure/service-bus";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startServiceBusEmulator, type QueueOptions, type ServiceBusEmulator } from "../src/index.js";
import { rhea } from "../src/rhea-internals.js";
import { signSasToken } from "../src/sas.js";
import { errorOf, receiveAll, remaining } from "./sdk-helpers.js";

const LOCK_MS = 500;
const queue = (name: string, extra: Partial<QueueOptions> = {}): QueueOptions => ({ name, lockDurationMs: LOCK_MS, ...extra });

let emulator: ServiceBusEmulator;
let client: ServiceBusClient;
const KEY = "test-key-0123456789";

beforeAll(async () => {
  emulator = await startServiceBusEmulator({
    key: KEY,
    keyName: "RootManageSharedAccessKey",
    maxMessageSizeBytes: 64 * 1024,
    queues: [
      queue("props"),
      queue("batches"),
      queue("rnd"),
      queue("abandon"),
      queue("defer"),
      queue("deadletter"),
      queue("maxdelivery", { maxDeliveryCount: 3 }),
      queue("lockexpiry"),
      queue("renew"),
      queue("autorenew"),
      queue("peek"),
      queue("schedule"),
      queue("size"),
      queue("dedup", { requiresDuplicateDetection: true, duplicateDetectionWindowMs: 60_000 }),
      queue("ttl", { deadLetteringOnMessageExpiration: true }),
      queue("ttldrop", { defaultMessageTtlMs: 200 }),
    ],
    topics: [{ name: "events", subscriptions: [{ name: "audit" }, { name: "mailer", lockDurationMs: LOCK_MS }] }],
  });
  client = new ServiceBusClient(emulator.connectionString, { retryOptions: { maxRetries: 1, timeoutInMs: 5_000 } });
});

afterAll(async () => {
  await client?.close();
  await emulator?.stop();
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe("Service Bus emulator through @azure/service-bus", () => {
  it("keeps message properties and bodies byte for byte (Buffer, JSON, string)", async () => {
    const sender = client.createSender("props");
    const binary = Buffer.from([0, 1, 2, 253, 254, 255]);
    await sender.sendMessages({
      body: binary,
      messageId: "id-binary",
      correlationId: "corr-1",
      subject: "upload",
      contentType: "application/octet-stream",
      applicationProperties: { jobId: "j-1", attempt: 3, urgent: true },
      sessionId: "session-a",
      timeToLive: 3_600_000,
    });
    await sender.sendMessages({ body: { job: "j-2", nested: { list: [1, "two", null] } }, messageId: "id-json", contentType: "application/json" });
    await sender.sendMessages({ body: "plain text ✓", messageId: "id-string" });
    const receiver = client.createReceiver("props");
    const [first, second, third] = await receiveAll(receiver, 3);
    expect(Buffer.isBuffer(first?.body) && first.body.equals(binary)).toBe(true);
    expect(first).toMatchObject({
      messageId: "id-binary",
      correlationId: "corr-1",
      subject: "upload",
      contentType: "application/octet-stream",
      applicationProperties: { jobId: "j-1", attempt: 3, urgent: true },
      sessionId: "session-a",
      timeToLive: 3_600_000,
      deliveryCount: 0,
    });
    expect(second).toMatchObject({ messageId: "id-json", body: { job: "j-2", nested: { list: [1, "two", null] } } });
    expect(third).toMatchObject({ messageId: "id-string", body: "plain text ✓" });
    expect(first?.sequenceNumber?.toNumber()).toBeLessThan(second?.sequenceNumber?.toNumber() ?? 0);
    expect(first?.enqueuedTimeUtc?.getTime()).toBeGreaterThan(Date.now() - 60_000);
    expect(first?.lockedUntilUtc?.getTime()).toBeGreaterThan(Date.now());
    for (const message of [first, second, third]) await receiver.completeMessage(message as ServiceBusReceivedMessage);
    expect(await remaining(client, "props")).toEqual([]);
    await receiver.close();
    await sender.close();
  });

  it("accepts arrays and batches (one transfer each) in order, and gives messages without an id one", async () => {
    const sender = client.createSender("batches");
    await sender.sendMessages([{ body: "a1" }, { body: "a2" }, { body: "a3" }]);
    const batch = await sender.createMessageBatch();
    expect(batch.maxSizeInBytes).toBe(64 * 1024);
    for (let i = 0; i < 50; i++) expect(batch.tryAddMessage({ body: `b${i}`, messageId: `b${i}` })).toBe(true);
    await sender.sendMessages(batch);
    const receiver = client.createReceiver("batches", { receiveMode: "receiveAndDelete" });
    const received = await receiveAll(receiver, 53);
    expect(received.map((m) => m.body)).toEqual(["a1", "a2", "a3", ...Array.from({ length: 50 }, (_, i) => `b${i}`)]);
    expect(received[0]?.messageId).toMatch(/^[0-9a-f]{32}$/);
    expect(new Set(received.map((m) => m.messageId)).size).toBe(53);
    await receiver.close();
    await sender.close();
  });

  it("receive-and-delete removes messages on delivery", async () => {
    const sender = client.createSender("rnd");
    await sender.sendMessages([{ body: 1 }, { body: 2 }]);
    const receiver = client.createReceiver("rnd", { receiveMode: "receiveAndDelete" });
    const received = await receiveAll(receiver, 2);
    expect(received.map((m) => m.body)).toEqual([1, 2]);
    expect(received[0]?.lockToken).toBeUndefined();
    await receiver.close();
    expect(await remaining(client, "rnd")).toEqual([]);
    await sender.close();
  });

  it("abandon makes a message available again with its delivery count raised and properties modified", async () => {
    const sender = client.createSender("abandon");
    await sender.sendMessages({ body: "retry me", messageId: "ab-1" });
    const receiver = client.createReceiver("abandon");
    const [first] = await receiveAll(receiver, 1);
    expect(first?.deliveryCount).toBe(0);
    await receiver.abandonMessage(first as ServiceBusReceivedMessage, { lastError: "boom" });
    const [second] = await receiveAll(receiver, 1);
    expect(second).toMatchObject({ messageId: "ab-1", body: "retry me", deliveryCount: 1 });
    expect(second?.sequenceNumber?.toNumber()).toBe(first?.sequenceNumber?.toNumber());
    // Service Bus applies properties to modify to the application properties, not the annotations.
    expect(second?.applicationProperties?.lastError).toBe("boom");
    expect(second?._rawAmqpMessage.messageAnnotations?.lastError).toBeUndefined();
    expect(second?.lockToken).not.toBe(first?.lockToken);
    await receiver.completeMessage(second as ServiceBusReceivedMessage);
    await receiver.close();
    await sender.close();
  });

  it("defers a message, hides it from receivers, and hands it out by sequence number", async () => {
    const sender = client.createSender("defer");
    await sender.sendMessages({ body: "later", messageId: "d-1" });
    const receiver = client.createReceiver("defer");
    const [message] = await receiveAll(receiver, 1);
    const seq = message?.sequenceNumber;
    await receiver.deferMessage(message as ServiceBusReceivedMessage);
    // Hidden from receivers: a message sent after it is the next one they get.
    await sender.sendMessages({ body: "after", messageId: "d-2" });
    const [next] = await receiveAll(receiver, 1);
    expect(next?.messageId).toBe("d-2");
    await receiver.completeMessage(next as ServiceBusReceivedMessage);
    const [peeked] = await receiver.peekMessages(1, { fromSequenceNumber: seq });
    expect(peeked?.state).toBe("deferred");
    const [deferred] = await receiver.receiveDeferredMessages(seq ? [seq] : []);
    expect(deferred).toMatchObject({ messageId: "d-1", body: "later" });
    expect(deferred?.lockToken).toMatch(/^[0-9a-f-]{36}$/);
    await receiver.completeMessage(deferred as ServiceBusReceivedMessage);
    const missing = await errorOf(receiver.receiveDeferredMessages(seq ? [seq] : []));
    expect(missing.code).toBe("MessageNotFound");
    await receiver.close();
    await sender.close();
  });

  it("dead-letters with the reason and description preserved", async () => {
    const sender = client.createSender("deadletter");
    await sender.sendMessages({ body: { bad: true }, messageId: "dl-1", applicationProperties: { kept: "yes" } });
    const receiver = client.createReceiver("deadletter");
    const [message] = await receiveAll(receiver, 1);
    await receiver.deadLetterMessage(message as ServiceBusReceivedMessage, {
      deadLetterReason: "ValidationFailed",
      deadLetterErrorDescription: "field x is missing",
    });
    expect(await remaining(client, "deadletter")).toEqual([]);
    const dlq = client.createReceiver("deadletter", { subQueueType: "deadLetter" });
    const [dead] = await receiveAll(dlq, 1);
    expect(dead).toMatchObject({
      messageId: "dl-1",
      body: { bad: true },
      deadLetterReason: "ValidationFailed",
      deadLetterErrorDescription: "field x is missing",
      deadLetterSource: "deadletter",
      applicationProperties: { kept: "yes", DeadLetterReason: "ValidationFailed" },
    });
    const again = await errorOf(dlq.deadLetterMessage(dead as ServiceBusReceivedMessage));
    // amqp:not-allowed, which the SDK reports as a GeneralError carrying the server's reason.
    expect(again).toMatchObject({ code: "GeneralError", message: expect.stringContaining("cannot be dead-lettered again") });
    // The refused message stays in the dead-letter queue and comes back when its lock ends.
    const [back] = await receiveAll(dlq, 1);
    expect(back?.messageId).toBe("dl-1");
    await dlq.completeMessage(back as ServiceBusReceivedMessage);
    expect(await remaining(client, "deadletter", { subQueueType: "deadLetter" })).toEqual([]);
    await dlq.close();
    await receiver.close();
    await sender.close();
  });

  it("moves a message to the dead-letter queue after maxDeliveryCount failed deliveries", async () => {
    const sender = client.createSender("maxdelivery");
    await sender.sendMessages({ body: "poison", messageId: "p-1" });
    const receiver = client.createReceiver("maxdelivery");
    for (let attempt = 0; attempt < 3; attempt++) {
      const [message] = await receiveAll(receiver, 1);
      expect(message?.deliveryCount).toBe(attempt);
      await receiver.abandonMessage(message as ServiceBusReceivedMessage);
    }
    expect(await remaining(client, "maxdelivery")).toEqual([]);
    const dlq = client.createReceiver("maxdelivery", { subQueueType: "deadLetter", receiveMode: "receiveAndDelete" });
    const [dead] = await receiveAll(dlq, 1);
    expect(dead).toMatchObject({ messageId: "p-1", deadLetterReason: "MaxDeliveryCountExceeded", deliveryCount: 3 });
    await dlq.close();
    await receiver.close();
    await sender.close();
  });

  it("redelivers when a lock expires, and settling with the stale lock fails with MessageLockLost", async () => {
    const sender = client.createSender("lockexpiry");
    await sender.sendMessages({ body: "slow", messageId: "le-1" });
    // The SDK renews locks by itself unless told not to.
    const receiver = client.createReceiver("lockexpiry", { maxAutoLockRenewalDurationInMs: 0 });
    const [first] = await receiveAll(receiver, 1);
    // The next receive waits until the lock has expired and the message is handed out again.
    const [second] = await receiveAll(receiver, 1);
    expect(second).toMatchObject({ messageId: "le-1", deliveryCount: 1 });
    expect(Date.now()).toBeGreaterThanOrEqual(first?.lockedUntilUtc?.getTime() ?? Number.POSITIVE_INFINITY);
    const lost = await errorOf(receiver.completeMessage(first as ServiceBusReceivedMessage));
    expect(lost.code).toBe("MessageLockLost");
    await receiver.completeMessage(second as ServiceBusReceivedMessage);
    await receiver.close();
    await sender.close();
  });

  it("renews a lock on request, and subscribe() keeps renewing it while a handler runs long", async () => {
    const sender = client.createSender("renew");
    await sender.sendMessages({ body: "hold", messageId: "r-1" });
    const receiver = client.createReceiver("renew", { maxAutoLockRenewalDurationInMs: 0 });
    const [message] = await receiveAll(receiver, 1);
    const before = message?.lockedUntilUtc?.getTime() ?? 0;
    await sleep(LOCK_MS / 2); // time passes, so the renewed lock ends later
    const renewed = await receiver.renewMessageLock(message as ServiceBusReceivedMessage);
    expect(renewed.getTime()).toBeGreaterThan(before);
    // The message comes back only once the renewed lock has ended (never at the first one's end).
    const [back] = await receiveAll(receiver, 1);
    expect(back).toMatchObject({ messageId: "r-1", deliveryCount: 1 });
    expect(Date.now()).toBeGreaterThanOrEqual(renewed.getTime());
    await receiver.completeMessage(back as ServiceBusReceivedMessage);
    await receiver.close();

    const auto = client.createSender("autorenew");
    await auto.sendMessages({ body: "long job", messageId: "ar-1" });
    const subscriber = client.createReceiver("autorenew", { maxAutoLockRenewalDurationInMs: 10_000 });
    const handled: Array<{ messageId: unknown; deliveryCount: number | undefined }> = [];
    const done = new Promise<void>((resolve, reject) => {
      subscriber.subscribe(
        {
          async processMessage(m) {
            handled.push({ messageId: m.messageId, deliveryCount: m.deliveryCount });
            await sleep(LOCK_MS * 3); // three lock durations of work: only auto-renewal keeps the lock
            // Completing with a lost lock would throw MessageLockLost here.
            await subscriber.completeMessage(m);
            resolve();
          },
          async processError(args) {
            reject(args.error);
          },
        },
        { autoCompleteMessages: false },
      );
    });
    await done;
    await subscriber.close();
    expect(handled).toEqual([{ messageId: "ar-1", deliveryCount: 0 }]);
    expect(await remaining(client, "autorenew")).toEqual([]);
    await auto.close();
    await sender.close();
  });

  it("peeks without locking, from a sequence number", async () => {
    const sender = client.createSender("peek");
    await sender.sendMessages([{ body: "p1" }, { body: "p2" }, { body: "p3" }]);
    const receiver = client.createReceiver("peek");
    const peeked = await receiver.peekMessages(10);
    expect(peeked.map((m) => m.body)).toEqual(["p1", "p2", "p3"]);
    expect(peeked[0]?.lockToken).toBeUndefined();
    const fromSecond = await receiver.peekMessages(10, { fromSequenceNumber: peeked[1]?.sequenceNumber });
    expect(fromSecond.map((m) => m.body)).toEqual(["p2", "p3"]);
    const received = await receiveAll(receiver, 3);
    expect(received.map((m) => m.body)).toEqual(["p1", "p2", "p3"]);
    for (const m of received) await receiver.completeMessage(m);
    await receiver.close();
    await sender.close();
  });

  it("schedules messages for later and cancels scheduled ones", async () => {
    const sender = client.createSender("schedule");
    const at = new Date(Date.now() + 600);
    const [keep, cancel] = await sender.scheduleMessages([{ body: "due" }, { body: "cancelled" }], at);
    expect(keep?.toNumber()).toBeGreaterThan(0);
    await sender.cancelScheduledMessages(cancel ? [cancel] : []);
    const receiver = client.createReceiver("schedule");
    const [peeked] = await receiver.peekMessages(5);
    expect(peeked).toMatchObject({ body: "due", state: "scheduled" });
    // Not handed out before its time: the receive waits until then.
    const [due] = await receiveAll(receiver, 1, 1_500);
    expect(due?.body).toBe("due");
    expect(Date.now()).toBeGreaterThanOrEqual(at.getTime());
    await receiver.completeMessage(due as ServiceBusReceivedMessage);
    expect(await remaining(client, "schedule")).toEqual([]);
    await receiver.close();
    await sender.close();
  });

  it("refuses a wrong key with UnauthorizedAccess", async () => {
    const wrong = emulator.connectionString.replace(`SharedAccessKey=${KEY}`, "SharedAccessKey=not-the-key");
    const intruder = new ServiceBusClient(wrong, { retryOptions: { maxRetries: 0, timeoutInMs: 5_000 } });
    const sender = intruder.createSender("props");
    const refused = await errorOf(sender.sendMessages({ body: "x" }));
    expect(refused.code).toBe("UnauthorizedAccess");
    await intruder.close();
  });

  it("refuses a link whose connection put no token on $cbs", async () => {
    const condition = await new Promise<string | undefined>((resolve) => {
      const connection = rhea.create_container().connect({ host: "127.0.0.1", port: emulator.port, reconnect: false });
      const sender = connection.open_sender({ target: { address: "props" } });
      sender.on("sender_error", (context) => {
        resolve(context.sender?.error && (context.sender.error as { condition?: string }).condition);
        connection.close();
      });
    });
    expect(condition).toBe("amqp:unauthorized-access");
  });

  it("refuses unknown entities with MessagingEntityNotFound", async () => {
    const sender = client.createSender("no-such-queue");
    expect((await errorOf(sender.sendMessages({ body: "x" }))).code).toBe("MessagingEntityNotFound");
    const receiver = client.createReceiver("no-such-queue");
    expect((await errorOf(receiver.receiveMessages(1, { maxWaitTimeInMs: 500 }))).code).toBe("MessagingEntityNotFound");
    await sender.close();
    await receiver.close();
  });

  it("enforces the maximum message size in the SDK and on the wire", async () => {
    const sender = client.createSender("size");
    const tooBig = await errorOf(sender.sendMessages({ body: Buffer.alloc(70 * 1024) }));
    expect(tooBig.code).toBe("MessageSizeExceeded");
    await sender.sendMessages({ body: Buffer.alloc(60 * 1024, 7), messageId: "fits" });
    await sender.close();

    // A client that skips the SDK's pre-check still gets refused by the server.
    const outcome = await new Promise<{ condition?: string }>((resolve, reject) => {
      const connection = rhea.create_container().connect({ host: "127.0.0.1", port: emulator.port, reconnect: false });
      const audience = `sb://127.0.0.1:${emulator.port}/size`;
      const cbsSender = connection.open_sender("$cbs");
      const cbsReceiver = connection.open_receiver({ source: { address: "$cbs" }, name: "cbs-reply" });
      cbsReceiver.on("message", () => {
        const sender = connection.open_sender({ target: { address: "size" } });
        sender.once("sendable", () => sender.send({ body: Buffer.alloc(80 * 1024) }));
        sender.on("rejected", (context) => {
          resolve({ condition: context.delivery?.remote_state?.error?.condition });
          connection.close();
        });
        sender.on("accepted", () => reject(new Error("the server accepted an oversize message")));
      });
      cbsSender.once("sendable", () =>
        cbsSender.send({
          reply_to: "cbs-reply",
          message_id: "put-1",
          application_properties: { operation: "put-token", type: "servicebus.windows.net:sastoken", name: audience },
          body: signSasToken(audience, "RootManageSharedAccessKey", KEY, Math.floor(Date.now() / 1000) + 600),
        }),
      );
    });
    expect(outcome.condition).toBe("amqp:link:message-size-exceeded");
    // The refusal came back before this: the queue holds the one that fit, nothing else.
    expect((await remaining(client, "size")).map((m) => m.messageId)).toEqual(["fits"]);
  });

  it("drops a repeated messageId when the queue requires duplicate detection", async () => {
    const sender = client.createSender("dedup");
    await sender.sendMessages({ body: "first", messageId: "same" });
    await sender.sendMessages({ body: "second", messageId: "same" });
    await sender.sendMessages([{ body: "other", messageId: "other" }, { body: "third", messageId: "same" }]);
    await sender.sendMessages({ body: "last", messageId: "last" });
    // First in, first out: once the last one sent is here, any copy let through came before it.
    const receiver = client.createReceiver("dedup", { receiveMode: "receiveAndDelete" });
    const received: ServiceBusReceivedMessage[] = [];
    while (received.at(-1)?.body !== "last") received.push(...(await receiver.receiveMessages(5, { maxWaitTimeInMs: 2_000 })));
    expect(received.map((m) => m.body)).toEqual(["first", "other", "last"]);
    await receiver.close();
    await sender.close();
  });

  it("expires messages by time to live: to the dead-letter queue when configured, dropped otherwise", async () => {
    const sender = client.createSender("ttl");
    await sender.sendMessages({ body: "short-lived", messageId: "ttl-1", timeToLive: 200 });
    await sender.sendMessages({ body: "long-lived", messageId: "ttl-2", timeToLive: 60_000 });
    const dropper = client.createSender("ttldrop");
    await dropper.sendMessages({ body: "gone", messageId: "ttl-3" });
    const droppedAfter = Date.now() + 200; // enqueued before the send returned: expired by then
    // The receive waits until the expired message reaches the dead-letter queue.
    const dlq = client.createReceiver("ttl", { subQueueType: "deadLetter", receiveMode: "receiveAndDelete" });
    const [expired] = await receiveAll(dlq, 1);
    expect(expired).toMatchObject({ messageId: "ttl-1", deadLetterReason: "TTLExpiredException" });
    const live = client.createReceiver("ttl", { receiveMode: "receiveAndDelete" });
    expect((await receiveAll(live, 1)).map((m) => m.messageId)).toEqual(["ttl-2"]);
    // Past its time to live, no receive gets it (the store drops it when asked), and then nothing holds it.
    await sleep(Math.max(0, droppedAfter - Date.now()) + 1);
    const dropped = client.createReceiver("ttldrop", { receiveMode: "receiveAndDelete" });
    expect(await dropped.receiveMessages(1, { maxWaitTimeInMs: 100 })).toEqual([]);
    expect(await dropped.peekMessages(5)).toHaveLength(0);
    const droppedDlq = client.createReceiver("ttldrop", { subQueueType: "deadLetter" });
    expect(await droppedDlq.peekMessages(5)).toHaveLength(0);
    for (const r of [dlq, live, dropped, droppedDlq]) await r.close();
    await dropper.close();
    await sender.close();
  });

  it("copies topic messages to every subscription, each with its own locks and dead-letter queue", async () => {
    const sender = client.createSender("events");
    await sender.sendMessages([{ body: "e1", messageId: "e1" }, { body: "e2", messageId: "e2" }]);
    const audit = client.createReceiver("events", "audit", { receiveMode: "receiveAndDelete" });
    const mailer = client.createReceiver("events", "mailer");
    expect((await receiveAll(audit, 2)).map((m) => m.body)).toEqual(["e1", "e2"]);
    const mails = await receiveAll(mailer, 2);
    expect(mails.map((m) => m.body)).toEqual(["e1", "e2"]);
    expect(mails[0]?.sequenceNumber?.toNumber()).toBeLessThan(mails[1]?.sequenceNumber?.toNumber() ?? 0);
    await mailer.completeMessage(mails[0] as ServiceBusReceivedMessage);
    await mailer.deadLetterMessage(mails[1] as ServiceBusReceivedMessage, { deadLetterReason: "NoAddress", deadLetterErrorDescription: "no mail address" });
    const mailerDlq = client.createReceiver("events", "mailer", { subQueueType: "deadLetter" });
    const [dead] = await receiveAll(mailerDlq, 1);
    expect(dead).toMatchObject({ body: "e2", deadLetterReason: "NoAddress" });
    await mailerDlq.completeMessage(dead as ServiceBusReceivedMessage);
    const topicReceiver = client.createReceiver("events", "nobody");
    expect((await errorOf(topicReceiver.receiveMessages(1, { maxWaitTimeInMs: 300 }))).code).toBe("MessagingEntityNotFound");
    for (const r of [audit, mailer, mailerDlq, topicReceiver]) await r.close();
    await sender.close();
  });
});
