/**
 * Entity declarations for the emulator: queues, topics and subscriptions, their defaults and a
 * loader for the JSON entities file the local platform shares with the infrastructure's names.
 */
import { readFileSync } from "node:fs";

export interface QueueOptions {
  name: string;
  /** Deliveries before a message goes to the dead-letter queue. @default 10 */
  maxDeliveryCount?: number;
  /** Peek-lock duration. @default 60000 */
  lockDurationMs?: number;
  /** Time to live applied when a message sets none (or a longer one). @default unlimited */
  defaultMessageTtlMs?: number;
  /** Expired messages go to the dead-letter queue instead of being dropped. @default false */
  deadLetteringOnMessageExpiration?: boolean;
  /** Drop a message whose messageId was seen within the window. @default false */
  requiresDuplicateDetection?: boolean;
  /** @default 600000 (10 minutes, the Service Bus default) */
  duplicateDetectionWindowMs?: number;
  /**
   * Session-enabled: every message must carry a sessionId, and receivers accept a session
   * (acceptSession / acceptNextSession) instead of receiving from the whole queue.
   * @default false
   */
  requiresSession?: boolean;
}

export interface SubscriptionOptions {
  name: string;
  /** @default 10 */
  maxDeliveryCount?: number;
  /** @default 60000 */
  lockDurationMs?: number;
  defaultMessageTtlMs?: number;
  deadLetteringOnMessageExpiration?: boolean;
  /** Session-enabled subscription (see QueueOptions.requiresSession). @default false */
  requiresSession?: boolean;
}

export interface TopicOptions {
  name: string;
  /** Every subscription gets a copy of every message (no filters). */
  subscriptions: SubscriptionOptions[];
  requiresDuplicateDetection?: boolean;
  duplicateDetectionWindowMs?: number;
}

export interface EntitiesFile {
  queues?: QueueOptions[];
  topics?: TopicOptions[];
}

/** The settings one message store runs with, defaults applied. */
export interface StoreSettings {
  maxDeliveryCount: number;
  lockDurationMs: number;
  defaultMessageTtlMs: number | undefined;
  deadLetteringOnMessageExpiration: boolean;
  /** Receivers must lock a session; messages must carry a sessionId. */
  requiresSession: boolean;
}

export interface DuplicateDetection {
  windowMs: number;
}

export const DEFAULT_MAX_DELIVERY_COUNT = 10;
export const DEFAULT_LOCK_DURATION_MS = 60_000;
export const DEFAULT_DUPLICATE_WINDOW_MS = 600_000;

/** Service Bus entity names: letters, digits, periods, hyphens, underscores (and slashes between). */
const ENTITY_NAME = /^[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9_])?$/;

function positiveInteger(value: unknown, what: string): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < 1) {
    throw new Error(`${what} must be a positive integer, got ${JSON.stringify(value)}`);
  }
  return value;
}

function optionalBoolean(value: unknown, what: string): boolean | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== "boolean") throw new Error(`${what} must be true or false, got ${JSON.stringify(value)}`);
  return value;
}

function entityName(value: unknown, what: string): string {
  if (typeof value !== "string" || value.length > 260 || !ENTITY_NAME.test(value)) {
    throw new Error(
      `${what} must be a Service Bus entity name (letters, digits, '.', '-', '_'), got ${JSON.stringify(value)}`,
    );
  }
  return value;
}

export function storeSettings(options: Omit<SubscriptionOptions, "name">, what: string): StoreSettings {
  return {
    maxDeliveryCount: positiveInteger(options.maxDeliveryCount, `${what}: maxDeliveryCount`) ?? DEFAULT_MAX_DELIVERY_COUNT,
    lockDurationMs: positiveInteger(options.lockDurationMs, `${what}: lockDurationMs`) ?? DEFAULT_LOCK_DURATION_MS,
    defaultMessageTtlMs: positiveInteger(options.defaultMessageTtlMs, `${what}: defaultMessageTtlMs`),
    deadLetteringOnMessageExpiration:
      optionalBoolean(options.deadLetteringOnMessageExpiration, `${what}: deadLetteringOnMessageExpiration`) ?? false,
    requiresSession: optionalBoolean(options.requiresSession, `${what}: requiresSession`) ?? false,
  };
}

export function duplicateDetection(
  options: { requiresDuplicateDetection?: boolean; duplicateDetectionWindowMs?: number },
  what: string,
): DuplicateDetection | undefined {
  const window = positiveInteger(options.duplicateDetectionWindowMs, `${what}: duplicateDetectionWindowMs`);
  if (!optionalBoolean(options.requiresDuplicateDetection, `${what}: requiresDuplicateDetection`)) return undefined;
  return { windowMs: window ?? DEFAULT_DUPLICATE_WINDOW_MS };
}

/** Validates declarations and rejects names used twice (Service Bus names are case-insensitive). */
export function validateEntities(entities: EntitiesFile): Required<EntitiesFile> {
  const queues = entities.queues ?? [];
  const topics = entities.topics ?? [];
  if (!Array.isArray(queues)) throw new Error("queues must be an array");
  if (!Array.isArray(topics)) throw new Error("topics must be an array");
  const seen = new Set<string>();
  const claim = (name: string) => {
    const key = name.toLowerCase();
    if (seen.has(key)) throw new Error(`entity "${name}" is declared twice`);
    seen.add(key);
  };
  for (const queue of queues) {
    claim(entityName(queue?.name, "queue name"));
    storeSettings(queue, `queue "${queue.name}"`);
    duplicateDetection(queue, `queue "${queue.name}"`);
  }
  for (const topic of topics) {
    claim(entityName(topic?.name, "topic name"));
    duplicateDetection(topic, `topic "${topic.name}"`);
    if (!Array.isArray(topic.subscriptions)) throw new Error(`topic "${topic.name}": subscriptions must be an array`);
    const subs = new Set<string>();
    for (const sub of topic.subscriptions) {
      const name = entityName(sub?.name, `topic "${topic.name}": subscription name`).toLowerCase();
      if (subs.has(name)) throw new Error(`topic "${topic.name}": subscription "${sub.name}" is declared twice`);
      subs.add(name);
      storeSettings(sub, `subscription "${topic.name}/${sub.name}"`);
    }
  }
  return { queues, topics };
}

/** Reads a JSON entities file (`{"queues": [...], "topics": [...]}`), validated. */
export function loadEntitiesFile(file: string): Required<EntitiesFile> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(file, "utf8"));
  } catch (error) {
    throw new Error(`cannot read the entities file ${file}: ${(error as Error).message}`);
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    throw new Error(`the entities file ${file} must hold an object {"queues": [...], "topics": [...]}`);
  }
  try {
    return validateEntities(parsed as EntitiesFile);
  } catch (error) {
    throw new Error(`the entities file ${file}: ${(error as Error).message}`);
  }
}
