/**
 * The Service Bus trigger as the Functions host plays it (in Azure it runs in the .NET host, not in
 * Node): a peek-lock receiver per serviceBusTrigger registration, the message body and the host's
 * binding data handed to the function, complete on success, abandon on a throw (so the queue's
 * maxDeliveryCount dead-letters a message that keeps failing), concurrency, lock renewal and the
 * client's retries from host.json.
 */
import { isUtf8 } from "node:buffer";
import type { ServiceBusClient, ServiceBusReceivedMessage, ServiceBusReceiver } from "@azure/service-bus";
import type { RpcTypedData } from "./core-types.js";
import type { FunctionsApp, HostLogSink } from "./functions-app.js";
import { resolveAppSettingExpressions, type HostConfig } from "./host-config.js";

export interface ServiceBusFunction {
  functionName: string;
  triggerName: string;
  /** Queue or topic, `%SETTING%` resolved. */
  entityName: string;
  /** Set for a topic subscription. */
  subscriptionName?: string;
  /** The dead-letter sub-queue (`<queue>/$deadletterqueue`) rather than the entity itself. */
  deadLetter: boolean;
  /** The app setting that holds the connection string. */
  connectionSetting: string;
  connectionString: string;
}

const DEAD_LETTER_SUFFIX = "/$deadletterqueue";

function bindingString(binding: Record<string, unknown>, key: string): string | undefined {
  const value = binding[key];
  return typeof value === "string" && value !== "" ? value : undefined;
}

/**
 * The serviceBusTrigger registrations of an app, with their `%SETTING%` expressions and connections
 * resolved from `env`. Throws, naming the function and the setting, where the host would refuse to
 * start the function.
 */
export function serviceBusTriggersOf(app: FunctionsApp, env: NodeJS.ProcessEnv): ServiceBusFunction[] {
  const triggers: ServiceBusFunction[] = [];
  for (const { metadata } of app.functions.values()) {
    for (const [triggerName, binding] of Object.entries(metadata.bindings)) {
      if (binding.type?.toLowerCase() !== "servicebustrigger") continue;
      const what = `function "${metadata.name}"`;
      if (binding.isSessionsEnabled === true) throw new Error(`${what}: session-enabled Service Bus triggers are not supported by the local host`);
      if (binding.cardinality === "many") throw new Error(`${what}: batched (cardinality "many") Service Bus triggers are not supported by the local host`);
      const connectionSetting = bindingString(binding, "connection");
      if (!connectionSetting) throw new Error(`${what}: the Service Bus trigger names no connection setting`);
      const connectionString = env[connectionSetting];
      if (!connectionString) {
        const identity = Object.keys(env).find((name) => name.startsWith(`${connectionSetting}__`));
        throw new Error(
          identity
            ? `${what}: ${identity} is an identity-based connection; the local host needs a connection string in ${connectionSetting}`
            : `${what}: the app setting ${connectionSetting} (a Service Bus connection string) is not set`,
        );
      }
      const queueName = bindingString(binding, "queueName");
      const topicName = bindingString(binding, "topicName");
      const subscription = bindingString(binding, "subscriptionName");
      let entity = resolveAppSettingExpressions(queueName ?? topicName ?? "", env, what);
      if (!entity) throw new Error(`${what}: the Service Bus trigger names no queue or topic`);
      if (topicName && !subscription) throw new Error(`${what}: a topic trigger needs a subscriptionName`);
      const subscriptionName = subscription ? resolveAppSettingExpressions(subscription, env, what) : undefined;
      let deadLetter = false;
      const path = subscriptionName ?? entity;
      if (path.toLowerCase().endsWith(DEAD_LETTER_SUFFIX)) {
        deadLetter = true;
        if (!subscriptionName) entity = entity.slice(0, -DEAD_LETTER_SUFFIX.length);
      }
      triggers.push({
        functionName: metadata.name,
        triggerName,
        entityName: entity,
        ...(subscriptionName ? { subscriptionName: deadLetter ? subscriptionName.slice(0, -DEAD_LETTER_SUFFIX.length) : subscriptionName } : {}),
        deadLetter,
        connectionSetting,
        connectionString,
      });
    }
  }
  return triggers;
}

/**
 * The message body as the host passes it to a Node function: UTF-8 text as a string (which
 * @azure/functions parses when it is JSON), other bytes as bytes, an AMQP value as JSON.
 */
export function triggerInputOf(message: ServiceBusReceivedMessage): RpcTypedData {
  const body: unknown = message.body;
  if (Buffer.isBuffer(body) || body instanceof Uint8Array) {
    const bytes = Buffer.from(body);
    return isUtf8(bytes) ? { string: bytes.toString("utf8") } : { bytes };
  }
  if (typeof body === "string") return { string: body };
  if (body === undefined || body === null) return { string: "" };
  return { json: JSON.stringify(body) };
}

const text = (value: string | number | undefined | null): RpcTypedData | undefined =>
  value === undefined || value === null || value === "" ? undefined : { string: String(value) };
/** .NET's DateTime.MaxValue: what the host shows for a message that never expires. */
const MAX_DATE_MS = Date.UTC(9999, 11, 31, 23, 59, 59, 999);
const time = (value: Date | undefined): RpcTypedData | undefined =>
  value && !Number.isNaN(value.getTime()) ? { string: new Date(Math.min(value.getTime(), MAX_DATE_MS)).toISOString() } : undefined;

/**
 * The Service Bus extension's binding data, under its names (@azure/functions camelCases them):
 * DeliveryCount is 1-based there, unlike the SDK's count of earlier deliveries.
 */
export function triggerMetadataOf(message: ServiceBusReceivedMessage): Record<string, RpcTypedData> {
  const sequenceNumber = message.sequenceNumber?.toNumber();
  const applicationProperties = { json: JSON.stringify(message.applicationProperties ?? {}) };
  const entries: [string, RpcTypedData | undefined][] = [
    ["MessageId", text(message.messageId as string | number | undefined)],
    ["DeliveryCount", { int: (message.deliveryCount ?? 0) + 1 }],
    ["EnqueuedTimeUtc", time(message.enqueuedTimeUtc)],
    ["ExpiresAtUtc", time(message.expiresAtUtc)],
    ["LockedUntilUtc", time(message.lockedUntilUtc)],
    ["SequenceNumber", sequenceNumber === undefined ? undefined : { int: sequenceNumber }],
    ["LockToken", text(message.lockToken)],
    ["ContentType", text(message.contentType)],
    ["CorrelationId", text(message.correlationId as string | number | undefined)],
    ["Subject", text(message.subject)],
    ["Label", text(message.subject)],
    ["To", text(message.to)],
    ["ReplyTo", text(message.replyTo)],
    ["ReplyToSessionId", text(message.replyToSessionId)],
    ["SessionId", text(message.sessionId)],
    ["PartitionKey", text(message.partitionKey)],
    ["DeadLetterSource", text(message.deadLetterSource)],
    ["ApplicationProperties", applicationProperties],
    ["UserProperties", applicationProperties],
  ];
  return Object.fromEntries(entries.filter((entry): entry is [string, RpcTypedData] => entry[1] !== undefined));
}

export interface ServiceBusTriggers {
  /** Stops receiving, lets running invocations finish (and settle), then closes the connections. */
  close(): Promise<void>;
}

export interface ServiceBusTriggerOptions {
  app: FunctionsApp;
  triggers: ServiceBusFunction[];
  config: HostConfig;
  log: HostLogSink;
  /** How long close() waits for running invocations. @default 30000 */
  drainTimeoutMs?: number;
}

export async function startServiceBusTriggers(options: ServiceBusTriggerOptions): Promise<ServiceBusTriggers> {
  const { app, triggers, config, log } = options;
  if (triggers.length === 0) return { close: async () => {} };
  const { RetryMode, ServiceBusClient } = require("@azure/service-bus") as typeof import("@azure/service-bus");
  const clients = new Map<string, ServiceBusClient>();
  const receivers: ServiceBusReceiver[] = [];
  const subscriptions: { close(): Promise<void> }[] = [];
  const running = new Set<Promise<void>>();

  for (const trigger of triggers) {
    let client = clients.get(trigger.connectionString);
    if (!client) {
      // The extension's retry policy, not the SDK's default (a fixed 30 s between attempts): after
      // the namespace was unreachable, receiving resumes within seconds, as in the Functions host.
      const retry = config.serviceBus.clientRetry;
      client = new ServiceBusClient(trigger.connectionString, {
        retryOptions: {
          mode: retry.mode === "exponential" ? RetryMode.Exponential : RetryMode.Fixed,
          retryDelayInMs: retry.delayMs,
          maxRetryDelayInMs: retry.maxDelayMs,
          maxRetries: retry.maxRetries,
          timeoutInMs: retry.tryTimeoutMs,
        },
      });
      clients.set(trigger.connectionString, client);
    }
    const receiverOptions = {
      receiveMode: "peekLock" as const,
      // Raw bytes, as the host gets them: the body conversion is the host's, not the SDK's.
      skipParsingBodyAsJson: true,
      maxAutoLockRenewalDurationInMs: config.serviceBus.maxAutoLockRenewalDurationMs,
      ...(trigger.deadLetter ? { subQueueType: "deadLetter" as const } : {}),
    };
    const receiver = trigger.subscriptionName
      ? client.createReceiver(trigger.entityName, trigger.subscriptionName, receiverOptions)
      : client.createReceiver(trigger.entityName, receiverOptions);
    receivers.push(receiver);
    const source = `${trigger.entityName}${trigger.subscriptionName ? `/subscriptions/${trigger.subscriptionName}` : ""}${trigger.deadLetter ? DEAD_LETTER_SUFFIX : ""}`;

    const processMessage = async (message: ServiceBusReceivedMessage): Promise<void> => {
      const started = performance.now();
      try {
        await app.invoke(trigger.functionName, {
          inputData: [{ name: trigger.triggerName, data: triggerInputOf(message) }],
          triggerMetadata: triggerMetadataOf(message),
        });
      } catch (error) {
        log({
          level: "error",
          category: "system",
          functionName: trigger.functionName,
          message: `message ${String(message.messageId)} (delivery ${(message.deliveryCount ?? 0) + 1}) failed, abandoned for redelivery: ${error instanceof Error ? error.message : String(error)}`,
        });
        await receiver.abandonMessage(message);
        return;
      }
      if (config.serviceBus.autoCompleteMessages) await receiver.completeMessage(message);
      log({
        level: "information",
        category: "system",
        functionName: trigger.functionName,
        message: `message ${String(message.messageId)} from ${source} completed in ${Math.round(performance.now() - started)} ms`,
      });
    };

    subscriptions.push(
      receiver.subscribe(
        {
          processMessage: (message) => {
            const invocation = processMessage(message);
            running.add(invocation);
            return invocation.finally(() => running.delete(invocation));
          },
          processError: async ({ error, errorSource }) => {
            log({ level: "warning", category: "system", functionName: trigger.functionName, message: `receiving from ${source} (${errorSource}): ${error.message}` });
          },
        },
        { autoCompleteMessages: false, maxConcurrentCalls: config.serviceBus.maxConcurrentCalls },
      ),
    );
    log({ level: "information", category: "system", functionName: trigger.functionName, message: `listening on ${source} (max ${config.serviceBus.maxConcurrentCalls} concurrent calls)` });
  }

  return {
    async close() {
      await Promise.allSettled(subscriptions.map((s) => s.close()));
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        Promise.allSettled([...running]),
        new Promise<void>((resolve) => {
          timer = setTimeout(resolve, options.drainTimeoutMs ?? 30_000);
        }),
      ]);
      clearTimeout(timer);
      await Promise.allSettled(receivers.map((r) => r.close()));
      await Promise.allSettled([...clients.values()].map((c) => c.close()));
    },
  };
}
