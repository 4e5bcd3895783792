/**
 * The kinds of resource an app declares (functions/src/resources.ts), their options and defaults.
 *
 * Pulumi-free on purpose: the function code, the infrastructure's components and the local platform
 * all read the same declarations and the same defaults, so a queue on the local platform behaves as
 * the queue of a deployed stack does.
 */
import type { PlatformConfig } from "../../../infrastructure/config";
import type { IntegerConfigKey } from "./service-kinds";

/** A Service Bus queue. */
export interface QueueOptions {
  /**
   * Deliveries of a message before it is moved to the dead-letter sub-queue.
   * @default 5
   */
  readonly maxDeliveryCount?: number;
  /**
   * How long a receiver holds a message before Service Bus hands it to someone else, in seconds (5-300).
   * @default 60
   */
  readonly lockDurationSeconds?: number;
  /**
   * How long a message may wait, in hours; an expired message is dead-lettered, not dropped.
   * @default 24
   */
  readonly messageTtlHours?: number;
  /**
   * Window in which a second message with the same messageId is dropped, in minutes. Service Bus
   * offers it on the Standard and Premium tiers only; on Basic the queue has none.
   * @default 10
   */
  readonly duplicateDetectionMinutes?: number;
  /**
   * Session-enabled (`requiresSession`): every message carries a session id, and a receiver holds
   * one session at a time, so messages of a session are handled in order by one consumer. Service
   * Bus offers sessions on the Standard and Premium tiers only, and fixes the choice when the queue
   * is created (Azure refuses to change it on an existing queue: declare a new queue instead).
   *
   * A Functions trigger reads such a queue only with `isSessionsEnabled: true`, and the local
   * Functions host (@platform-tools/functions-host) does not run session triggers: a service that
   * registers one fails at start on the local platform. The Service Bus emulator does hold session
   * queues, so code that uses the SDK's session receivers runs locally.
   * @default false
   */
  readonly sessions?: boolean;
}

/** A queue's options with every default applied. */
export type ResolvedQueue = Required<QueueOptions>;

export const queueDefaults: ResolvedQueue = {
  maxDeliveryCount: 5,
  lockDurationSeconds: 60,
  messageTtlHours: 24,
  duplicateDetectionMinutes: 10,
  sessions: false,
};

/** A Service Bus namespace's tier (the stack's `serviceBusSku`). */
export type ServiceBusTier = "Basic" | "Standard" | "Premium";

/**
 * What a namespace's tier makes of a queue, for the deployed namespace (the Messaging component)
 * and the local emulator alike: duplicate detection from Standard up (Basic has none), and no
 * session queue on Basic, refused here, naming the queue, rather than by Azure.
 */
export function queueOnTier(queueName: string, queue: ResolvedQueue, tier: ServiceBusTier): { duplicateDetection: boolean } {
  if (queue.sessions && tier === "Basic") {
    throw new Error(`${queueName}: sessions need the Standard or Premium tier of Service Bus; the namespace is Basic (serviceBusSku)`);
  }
  return { duplicateDetection: tier !== "Basic" };
}

export function resolveQueue(options: QueueOptions): ResolvedQueue {
  const queue = { ...queueDefaults, ...definedOnly(options) };
  const problems = [
    outOfRange("maxDeliveryCount", queue.maxDeliveryCount, 1, 2000),
    outOfRange("lockDurationSeconds", queue.lockDurationSeconds, 5, 300),
    outOfRange("messageTtlHours", queue.messageTtlHours, 1, 336),
    outOfRange("duplicateDetectionMinutes", queue.duplicateDetectionMinutes, 1, 10_080),
  ].filter((p): p is string => p !== undefined);
  if (problems.length > 0) throw new Error(`queue options are invalid: ${problems.join("; ")}`);
  return queue;
}

/** A Cosmos DB (NoSQL) container. */
export interface CosmosContainerOptions {
  /** The partition key path, e.g. `/userId`: every query that names it stays in one partition. */
  readonly partitionKey: `/${string}`;
}

/** A blob container in the data storage account (the account that also serves the static website). */
export interface BlobContainerOptions {
  /**
   * Browsers PUT files into it directly, with SAS URLs a service hands out: the account's CORS rule
   * then allows PUT from the web origin.
   * @default false
   */
  readonly browserUploads?: boolean;
  /**
   * Delete its blobs (and their snapshots and versions) this many days after they were created: a
   * number, or the stack config key that holds it. In Azure a lifecycle-management rule of the
   * account does it (once a day, so a blob may outlive the limit by up to a day; soft delete then
   * keeps it recoverable for blobSoftDeleteDays). Lifecycle rules cover block and append blobs
   * only; page blobs stay. The local platform sweeps the container the same way.
   * @default never
   * @example { config: "uploadsDeleteAfterDays" }
   */
  readonly deleteAfterDays?: number | { readonly config: IntegerConfigKey };
}

/** A blob container's options with the stack configuration applied. */
export interface ResolvedBlobContainer {
  readonly browserUploads: boolean;
  /** Undefined: its blobs are never deleted for their age. */
  readonly deleteAfterDays: number | undefined;
}

/** A container's options resolved against the stack configuration (the key deleteAfterDays may name). */
export function resolveBlobContainer(options: BlobContainerOptions, config: Pick<PlatformConfig, IntegerConfigKey>): ResolvedBlobContainer {
  const days = typeof options.deleteAfterDays === "object" ? config[options.deleteAfterDays.config] : options.deleteAfterDays;
  if (days !== undefined && (!Number.isInteger(days) || days < 1)) throw new Error(`deleteAfterDays must be a whole number of days, at least 1 (got ${days})`);
  return { browserUploads: options.browserUploads ?? false, deleteAfterDays: days };
}

/** A Web PubSub hub. Browsers connect with a client token a service generates; anonymous connects are denied. */
export interface HubOptions {}

/** Everything an app declares: the containers, queues and hubs its services link to. */
export interface AppResources {
  readonly cosmos: {
    /** The SQL database that holds every container. */
    readonly database: string;
    readonly containers: Readonly<Record<string, CosmosContainerOptions>>;
  };
  readonly queues: Readonly<Record<string, QueueOptions>>;
  readonly blobContainers: Readonly<Record<string, BlobContainerOptions>>;
  readonly hubs: Readonly<Record<string, HubOptions>>;
}

/**
 * The rules Azure gives the names (they are used as-is in Azure and on the local platform):
 * Cosmos ids, Service Bus queue names, blob container names and Web PubSub hub names.
 */
export const resourceNamePatterns = {
  cosmosDatabase: /^[A-Za-z0-9][A-Za-z0-9_-]{0,254}$/,
  cosmosContainer: /^[A-Za-z0-9][A-Za-z0-9_-]{0,254}$/,
  queue: /^[A-Za-z0-9][A-Za-z0-9._-]{0,258}[A-Za-z0-9]$|^[A-Za-z0-9]$/,
  blobContainer: /^[a-z0-9](?:[a-z0-9]|-(?=[a-z0-9])){2,62}$/,
  hub: /^[A-Za-z][A-Za-z0-9_]{0,127}$/,
} as const;

/**
 * Checks the names and options of an app's resources and returns them unchanged, typed as
 * declared (so links can name only what exists). Throws naming every problem.
 */
export function defineResources<const R extends AppResources>(resources: R): R {
  const problems: string[] = [];
  const check = (what: string, name: string, pattern: RegExp) => {
    if (!pattern.test(name)) problems.push(`${what} name "${name}" breaks Azure's rule ${pattern}`);
  };
  check("Cosmos database", resources.cosmos.database, resourceNamePatterns.cosmosDatabase);
  for (const name of Object.keys(resources.cosmos.containers)) check("Cosmos container", name, resourceNamePatterns.cosmosContainer);
  for (const [name, options] of Object.entries(resources.queues)) {
    check("queue", name, resourceNamePatterns.queue);
    try {
      resolveQueue(options);
    } catch (error) {
      problems.push(`queue "${name}": ${(error as Error).message}`);
    }
  }
  for (const name of Object.keys(resources.blobContainers)) check("blob container", name, resourceNamePatterns.blobContainer);
  for (const name of Object.keys(resources.hubs)) check("Web PubSub hub", name, resourceNamePatterns.hub);
  if (problems.length > 0) throw new Error(`invalid resources:\n  - ${problems.join("\n  - ")}`);
  return resources;
}

function outOfRange(name: string, value: number, min: number, max: number): string | undefined {
  return Number.isInteger(value) && value >= min && value <= max ? undefined : `${name} must be an integer from ${min} to ${max} (got ${value})`;
}

function definedOnly<T extends object>(options: T): Partial<T> {
  return Object.fromEntries(Object.entries(options).filter(([, value]) => value !== undefined)) as Partial<T>;
}
