/**
 * Pieces the SDK-driven test files share: receive until a count arrives, look at what an entity
 * still holds, and capture an operation's error.
 */
import { isServiceBusError, type ServiceBusClient, type ServiceBusReceivedMessage, type ServiceBusReceiver, type ServiceBusReceiverOptions } from "@azure/service-bus";

/** Receives until `count` messages arrived or twice `maxWaitTimeInMs` passed (each call waits for messages). */
export async function receiveAll(receiver: ServiceBusReceiver, count: number, maxWaitTimeInMs = 2_000): Promise<ServiceBusReceivedMessage[]> {
  const received: ServiceBusReceivedMessage[] = [];
  const deadline = Date.now() + maxWaitTimeInMs * 2;
  while (received.length < count && Date.now() < deadline) {
    received.push(...(await receiver.receiveMessages(count - received.length, { maxWaitTimeInMs })));
  }
  return received;
}

/** The error an operation fails with (its ServiceBusError code when it is one); fails when it succeeds. */
export async function errorOf(promise: Promise<unknown>): Promise<{ code?: string; message: string }> {
  try {
    await promise;
  } catch (error) {
    return { code: isServiceBusError(error) ? error.code : (error as { code?: string }).code, message: (error as Error).message };
  }
  throw new Error("expected the operation to fail");
}

/**
 * Every message an entity (or its dead-letter queue) holds now, locked, deferred and scheduled
 * ones included: a peek answers at once with the state, so "nothing arrived" needs no waiting. A
 * fresh receiver each time: a receiver's peeks go on from where its last one stopped.
 */
export async function remaining(client: ServiceBusClient, entity: string, options: Pick<ServiceBusReceiverOptions, "subQueueType"> = {}): Promise<ServiceBusReceivedMessage[]> {
  const receiver = client.createReceiver(entity, options);
  try {
    return await receiver.peekMessages(100);
  } finally {
    await receiver.close();
  }
}
