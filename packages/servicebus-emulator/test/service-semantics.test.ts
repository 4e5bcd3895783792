/**
 * What the @azure/service-bus SDK's own live tests (Azure/azure-sdk-for-js,
 * sdk/servicebus/service-bus/test) expect of Service Bus, stated here as our own tests through the
 * real SDK: delivery counts around deferral and the dead-letter queue, the state and enqueued time a
 * receiver sees, where properties to modify land, unknown entities, SAS scope, and AMQP messages
 * that round-trip. README.md lists, per SDK test file, what was checked.
 */
import { ServiceBusClient, type ProcessErrorArgs, type ServiceBusReceivedMessage } from "@azure/service-bus";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startServiceBusEmulator, type QueueOptions, type ServiceBusEmulator } from "../src/index.js";
import { signSasToken } from "../src/sas.js";
import { errorOf, receiveAll } from "./sdk-helpers.js";

/** The AMQP view of a message (core-amqp's AmqpAnnotatedMessage, as the SDK exposes it). */
type AmqpAnnotatedMessage = ServiceBusReceivedMessage["_rawAmqpMessage"];

const KEY = "semantics-key-0123456789";
const KEY_NAME = "RootManageSharedAccessKey";
const queue = (name: string, extra: Partial<QueueOptions> = {}): QueueOptions => ({ name, lockDurationMs: 60_000, ...extra });

let emulator: ServiceBusEmulator;
let client: ServiceBusClient;

beforeAll(async () => {
  emulator = await startServiceBusEmulator({
    key: KEY,
    keyName: KEY_NAME,
    queues: [
      queue("deferral"),
      queue("defer-limit", { maxDeliveryCount: 1 }),
      queue("modify"),
      queue("scheduled"),
      queue("dead-letters", { lockDurationMs: 300 }),
      queue("scoped"),
      queue("other"),
      queue("amqp"),
    ],
    topics: [{ name: "news", subscriptions: [{ name: "reader" }] }],
  });
  client = new ServiceBusClient(emulator.connectionString, { retryOptions: { maxRetries: 0, timeoutInMs: 5_000 } });
});

afterAll(async () => {
  await client?.close();
  await emulator?.stop();
});

describe("delivery counts and states (deferredMessage, batchReceiver, receiveAndDeleteMode)", () => {
  it("counts a defer as a delivery: a deferred message comes back one higher, in state deferred, each abandon or defer counting again", async () => {
    const sender = client.createSender("deferral");
    await sender.sendMessages([{ body: "first", messageId: "d-1" }, { body: "second", messageId: "d-2" }]);
    const receiver = client.createReceiver("deferral");
    const [first, second] = await receiveAll(receiver, 2);
    expect([first?.deliveryCount, second?.deliveryCount]).toEqual([0, 0]);
    await receiver.deferMessage(first as ServiceBusReceivedMessage);
    await receiver.deferMessage(second as ServiceBusReceivedMessage);

    const [deferred] = await receiver.receiveDeferredMessages(first?.sequenceNumber as NonNullable<ServiceBusReceivedMessage["sequenceNumber"]>);
    expect(deferred).toMatchObject({ messageId: "d-1", state: "deferred", deliveryCount: 1 });
    // Its lock renews over $management, as the message was not received on a link.
    const renewed = await receiver.renewMessageLock(deferred as ServiceBusReceivedMessage);
    expect(renewed.getTime()).toBeGreaterThanOrEqual(deferred?.lockedUntilUtc?.getTime() ?? Infinity);
    await receiver.abandonMessage(deferred as ServiceBusReceivedMessage); // back to the deferred set, not to receivers
    // A message sent after it is the next a receiver gets: the abandoned one stayed deferred.
    await sender.sendMessages({ body: "marker", messageId: "d-marker" });
    const [next] = await receiveAll(receiver, 1);
    expect(next?.messageId).toBe("d-marker");
    await receiver.completeMessage(next as ServiceBusReceivedMessage);
    const [again] = await receiver.receiveDeferredMessages(first?.sequenceNumber as NonNullable<ServiceBusReceivedMessage["sequenceNumber"]>);
    expect(again).toMatchObject({ state: "deferred", deliveryCount: 2 });
    await receiver.deferMessage(again as ServiceBusReceivedMessage);
    const [third] = await receiver.receiveDeferredMessages(first?.sequenceNumber as NonNullable<ServiceBusReceivedMessage["sequenceNumber"]>);
    expect(third?.deliveryCount).toBe(3);
    await receiver.completeMessage(third as ServiceBusReceivedMessage);

    // Received by sequence number in receive-and-delete mode: the defer counted, and the message is gone.
    const deleting = client.createReceiver("deferral", { receiveMode: "receiveAndDelete" });
    const [taken] = await deleting.receiveDeferredMessages(second?.sequenceNumber as NonNullable<ServiceBusReceivedMessage["sequenceNumber"]>);
    expect(taken).toMatchObject({ messageId: "d-2", deliveryCount: 1, state: "deferred" });
    expect(await receiver.peekMessages(10)).toHaveLength(0);
    await deleting.close();
    await receiver.close();
    await sender.close();
  });

  it("dead-letters a message whose defer reaches maxDeliveryCount (azure-service-bus#375)", async () => {
    const sender = client.createSender("defer-limit");
    await sender.sendMessages({ body: "once", messageId: "dl-1" });
    const receiver = client.createReceiver("defer-limit");
    const [message] = await receiveAll(receiver, 1);
    await receiver.deferMessage(message as ServiceBusReceivedMessage);
    expect(await receiver.peekMessages(5)).toHaveLength(0);
    const dlq = client.createReceiver("defer-limit", { subQueueType: "deadLetter", receiveMode: "receiveAndDelete" });
    const [dead] = await receiveAll(dlq, 1);
    expect(dead).toMatchObject({ messageId: "dl-1", deadLetterReason: "MaxDeliveryCountExceeded", deliveryCount: 1 });
    await dlq.close();
    await receiver.close();
    await sender.close();
  });

  it("counts nothing in the dead-letter queue: abandon, a refused dead-letter and an expired lock leave the count as it came", async () => {
    const sender = client.createSender("dead-letters");
    await sender.sendMessages({ body: "poison", messageId: "p-1" });
    const receiver = client.createReceiver("dead-letters", { maxAutoLockRenewalDurationInMs: 0 });
    const [message] = await receiveAll(receiver, 1);
    expect(message?.deliveryCount).toBe(0);
    await receiver.deadLetterMessage(message as ServiceBusReceivedMessage, { deadLetterReason: "Bad", deadLetterErrorDescription: "bad input" });

    const dlq = client.createReceiver("dead-letters", { subQueueType: "deadLetter", maxAutoLockRenewalDurationInMs: 0 });
    const [dead] = await receiveAll(dlq, 1);
    expect(dead?.deliveryCount).toBe(0);
    await dlq.abandonMessage(dead as ServiceBusReceivedMessage);
    const [abandoned] = await receiveAll(dlq, 1);
    expect(abandoned?.deliveryCount).toBe(0);
    const refused = await errorOf(dlq.deadLetterMessage(abandoned as ServiceBusReceivedMessage));
    expect(refused.code).toBe("GeneralError");
    // The refused message stays locked until its lock (300 ms here) expires, then comes back uncounted.
    const [expired] = await receiveAll(dlq, 1);
    expect(expired).toMatchObject({ messageId: "p-1", deliveryCount: 0 });
    await dlq.completeMessage(expired as ServiceBusReceivedMessage);
    expect(await dlq.peekMessages(5)).toHaveLength(0);
    await dlq.close();
    await receiver.close();
    await sender.close();
  });
});

describe("properties to modify (propsToModify)", () => {
  it("lands in the application properties on abandon and defer, over the link and over $management", async () => {
    const sender = client.createSender("modify");
    await sender.sendMessages([
      { body: "abandoned", messageId: "m-1", applicationProperties: { kept: "yes" } },
      { body: "deferred", messageId: "m-2" },
    ]);
    const receiver = client.createReceiver("modify");
    const [toAbandon, toDefer] = await receiveAll(receiver, 2);
    await receiver.abandonMessage(toAbandon as ServiceBusReceivedMessage, { customProperty: "set on abandon", attempt: 1 });
    await receiver.deferMessage(toDefer as ServiceBusReceivedMessage, { customProperty: "set on defer" });

    const [abandoned] = await receiveAll(receiver, 1);
    expect(abandoned?.applicationProperties).toEqual({ kept: "yes", customProperty: "set on abandon", attempt: 1 });
    expect(abandoned?._rawAmqpMessage.messageAnnotations?.customProperty).toBeUndefined();
    expect(abandoned?.body).toBe("abandoned");
    await receiver.completeMessage(abandoned as ServiceBusReceivedMessage);

    const seq = toDefer?.sequenceNumber as NonNullable<ServiceBusReceivedMessage["sequenceNumber"]>;
    const [deferred] = await receiver.receiveDeferredMessages(seq);
    expect(deferred?.applicationProperties?.customProperty).toBe("set on defer");
    // A message received by sequence number settles over $management: the same rule holds there.
    await receiver.abandonMessage(deferred as ServiceBusReceivedMessage, { customProperty: "set over management" });
    const [again] = await receiver.receiveDeferredMessages(seq);
    expect(again?.applicationProperties?.customProperty).toBe("set over management");
    await receiver.deferMessage(again as ServiceBusReceivedMessage, { second: true });
    const [last] = await receiver.receiveDeferredMessages(seq);
    expect(last?.applicationProperties).toEqual({ customProperty: "set over management", second: true });
    await receiver.completeMessage(last as ServiceBusReceivedMessage);
    await receiver.close();
    await sender.close();
  });
});

describe("scheduled messages (sendAndSchedule)", () => {
  it("are enqueued when they become active, and received in state scheduled; sent ones are active", async () => {
    const sender = client.createSender("scheduled");
    const scheduleTime = new Date(Date.now() + 300);
    await sender.scheduleMessages([{ body: "later", messageId: "s-1" }], scheduleTime);
    await sender.sendMessages({ body: "now", messageId: "s-2" });
    const receiver = client.createReceiver("scheduled");
    const [now] = await receiveAll(receiver, 1);
    expect(now).toMatchObject({ messageId: "s-2", state: "active" });
    const [later] = await receiveAll(receiver, 1);
    expect(later).toMatchObject({ messageId: "s-1", state: "scheduled" });
    expect(later?.enqueuedTimeUtc?.getTime()).toBeGreaterThanOrEqual(scheduleTime.getTime());
    for (const message of [now, later]) await receiver.completeMessage(message as ServiceBusReceivedMessage);
    await receiver.close();
    await sender.close();
  });
});

describe("unknown entities and credentials (serviceBusClient, auth)", () => {
  it("names a missing queue or topic by its sb:// address and a missing subscription by its topic, batch and streaming", async () => {
    const missingQueue = await errorOf(client.createReceiver("some-name").receiveMessages(1));
    expect(missingQueue).toMatchObject({ code: "MessagingEntityNotFound" });
    expect(missingQueue.message).toContain(`The messaging entity 'sb://${client.fullyQualifiedNamespace}/some-name' could not be found.`);
    const missingTopic = await errorOf(client.createReceiver("some-topic-name", "some-subscription-name").receiveMessages(1));
    expect(missingTopic.message).toContain(
      `The messaging entity 'sb://${client.fullyQualifiedNamespace}/some-topic-name/Subscriptions/some-subscription-name' could not be found.`,
    );
    const missingSubscription = await errorOf(client.createReceiver("news", "some-subscription-name").receiveMessages(1));
    expect(missingSubscription.code).toBe("MessagingEntityNotFound");
    expect(missingSubscription.message).toContain(`'${client.fullyQualifiedNamespace.split(".")[0]}:topic:news|some-subscription-name'`);

    const streaming = client.createReceiver("some-name");
    const reported = await new Promise<ProcessErrorArgs>((resolve) => {
      streaming.subscribe({ processMessage: async () => {}, processError: async (args) => resolve(args) });
    });
    await streaming.close();
    expect(reported).toMatchObject({ errorSource: "receive", entityPath: "some-name", fullyQualifiedNamespace: client.fullyQualifiedNamespace });
    expect((reported.error as { code?: string }).code).toBe("MessagingEntityNotFound");
  });

  it("accepts a shared access signature for its entity (and what is under it) and refuses it for any other", async () => {
    const endpoint = `sb://127.0.0.1:${emulator.port}`;
    const sasFor = (path: string) => signSasToken(`${endpoint}/${path}`, KEY_NAME, KEY, Math.floor(Date.now() / 1000) + 600);
    const scoped = new ServiceBusClient(`Endpoint=${endpoint};SharedAccessSignature=${sasFor("scoped")};UseDevelopmentEmulator=true;`, {
      retryOptions: { maxRetries: 0, timeoutInMs: 5_000 },
    });
    await scoped.createSender("scoped").sendMessages({ body: "allowed" });
    expect((await errorOf(scoped.createSender("other").sendMessages({ body: "refused" }))).code).toBe("UnauthorizedAccess");
    const [received] = await receiveAll(scoped.createReceiver("scoped", { receiveMode: "receiveAndDelete" }), 1);
    expect(received?.body).toBe("allowed");
    await scoped.close();

    // A token for a topic also covers its subscriptions.
    const topicScoped = new ServiceBusClient(`Endpoint=${endpoint};SharedAccessSignature=${sasFor("news")};UseDevelopmentEmulator=true;`);
    await topicScoped.createSender("news").sendMessages({ body: "headline" });
    const [headline] = await receiveAll(topicScoped.createReceiver("news", "reader", { receiveMode: "receiveAndDelete" }), 1);
    expect(headline?.body).toBe("headline");
    await topicScoped.close();
  });
});

describe("AMQP messages (amqpAnnotatedMessage)", () => {
  it("round-trips header, properties, annotations, footer and every body type, and a received message resent is a new message", async () => {
    const sender = client.createSender("amqp");
    const receiver = client.createReceiver("amqp", { receiveMode: "receiveAndDelete" });
    const annotated: AmqpAnnotatedMessage = {
      body: "annotated body",
      bodyType: "data",
      header: { durable: false, firstAcquirer: false, priority: 20, timeToLive: 100_000 },
      applicationProperties: { propOne: 1, propTwo: "two", propThree: true },
      footer: { propFooter: "foot" },
      messageAnnotations: { propMsgAnnotate: "annotation" },
      properties: { contentEncoding: "application/json; charset=utf-8", correlationId: "c-1", messageId: "a-1" },
    };
    await sender.sendMessages(annotated);
    const [got] = await receiveAll(receiver, 1);
    expect(got?.body).toBe("annotated body");
    const raw = got?._rawAmqpMessage;
    expect(raw).toMatchObject({
      bodyType: "data",
      header: { durable: false, firstAcquirer: false, priority: 20, timeToLive: 100_000 },
      applicationProperties: annotated.applicationProperties,
      footer: annotated.footer,
      properties: { contentEncoding: "application/json; charset=utf-8", correlationId: "c-1", messageId: "a-1" },
    });
    expect(raw?.messageAnnotations?.propMsgAnnotate).toBe("annotation");

    const bodies: Array<[AmqpAnnotatedMessage["bodyType"], unknown]> = [
      ["value", { hello: "world" }],
      ["value", 1.5],
      ["sequence", [[1], [2], [3]]],
      ["data", Buffer.from("hello")],
    ];
    for (const [bodyType, body] of bodies) await sender.sendMessages({ body, bodyType });
    const typed = await receiveAll(receiver, bodies.length);
    expect(typed.map((m) => [m._rawAmqpMessage.bodyType, m.body])).toEqual(bodies);

    // Resent as received, with the annotations the broker added, it is numbered and stated afresh.
    expect(raw?.messageAnnotations?.["x-opt-sequence-number"]).toBeDefined();
    await sender.sendMessages({ ...(raw as AmqpAnnotatedMessage), body: got?.body, messageAnnotations: { ...raw?.messageAnnotations, "x-opt-message-state": 1 } });
    const [resent] = await receiveAll(receiver, 1);
    expect(resent?.sequenceNumber?.toNumber()).toBeGreaterThan(got?.sequenceNumber?.toNumber() ?? Infinity);
    expect(resent?.state).toBe("active");
    await receiver.close();
    await sender.close();
  });
});
