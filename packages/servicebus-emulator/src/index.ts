/**
 * A local Service Bus namespace that the real @azure/service-bus SDK talks to over AMQP 1.0.
 *
 * Microsoft's emulator needs Docker and SQL Edge; this one is an in-process library (and a CLI,
 * cli.ts) for the local platform and the tests. README.md next to this file lists what it
 * supports and what it does not.
 */
import { AmqpServer } from "./amqp-server.js";
import { validateEntities, type QueueOptions, type TopicOptions } from "./entities.js";
import { memoryJournal, openJournal, snapshotRecords, type Journal } from "./journal.js";
import type { ServiceBusOperation } from "./links.js";
import { Namespace } from "./namespace.js";
import { randomKey } from "./sas.js";

export { loadEntitiesFile, validateEntities } from "./entities.js";
export type { EntitiesFile, QueueOptions, SubscriptionOptions, TopicOptions } from "./entities.js";
export type { ServiceBusOperation } from "./links.js";

export interface ServiceBusEmulatorOptions {
  /** 0 or absent: a free port. */
  port?: number;
  /** @default "127.0.0.1" */
  host?: string;
  queues?: QueueOptions[];
  topics?: TopicOptions[];
  /** @default "RootManageSharedAccessKey" */
  keyName?: string;
  /** The SAS key clients must sign with. @default a random key */
  key?: string;
  /** Accepted messages survive a crash and restart with the same directory. @default in memory only */
  dataDir?: string;
  /** Journal size at which a running emulator rewrites it with the live messages only. @default 64 MiB */
  journalCompactionBytes?: number;
  /** Largest message (or batch) accepted, in bytes. @default 262144 (Standard tier) */
  maxMessageSizeBytes?: number;
  /** Where diagnostics go. @default nowhere */
  log?: (line: string) => void;
  /**
   * Hears of every operation clients ask for: each message sent or received, each settlement,
   * $management request and $cbs token (a meter of what Service Bus bills). @default none
   */
  onOperation?: (operation: ServiceBusOperation) => void;
}

export interface ServiceBusEmulator {
  /** `Endpoint=sb://HOST:PORT;SharedAccessKeyName=...;SharedAccessKey=...;UseDevelopmentEmulator=true;` */
  connectionString: string;
  port: number;
  /** Closes client connections, flushes the data directory and releases the port. */
  stop(): Promise<void>;
}

export const DEFAULT_MAX_MESSAGE_SIZE_BYTES = 256 * 1024;

export async function startServiceBusEmulator(options: ServiceBusEmulatorOptions = {}): Promise<ServiceBusEmulator> {
  const host = options.host ?? "127.0.0.1";
  const keyName = options.keyName ?? "RootManageSharedAccessKey";
  const key = options.key ?? randomKey();
  const maxMessageSizeBytes = options.maxMessageSizeBytes ?? DEFAULT_MAX_MESSAGE_SIZE_BYTES;
  const log = options.log ?? (() => {});
  if (!Number.isSafeInteger(maxMessageSizeBytes) || maxMessageSizeBytes < 1024) {
    throw new Error(`maxMessageSizeBytes must be an integer of at least 1024, got ${maxMessageSizeBytes}`);
  }
  if (options.port !== undefined && (!Number.isInteger(options.port) || options.port < 0 || options.port > 65535)) {
    throw new Error(`port must be an integer from 0 to 65535, got ${options.port}`);
  }
  if (!keyName || /[;=]/.test(keyName)) throw new Error("keyName must be non-empty and hold no ';' or '='");
  if (!key || key.includes(";")) throw new Error("key must be non-empty and hold no ';'");
  const { queues, topics } = validateEntities({ queues: options.queues ?? [], topics: options.topics ?? [] });

  let journal: Journal = memoryJournal;
  let namespace: Namespace;
  if (options.dataDir) {
    const opened = openJournal(options.dataDir, options.journalCompactionBytes);
    journal = opened.journal;
    namespace = new Namespace(queues, topics, journal);
    const orphans = namespace.restore(opened.recovered, Date.now());
    const live = namespace;
    journal.setSnapshotSource(() => snapshotRecords(live.snapshot()));
    for (const path of orphans) log(`messages kept for '${path}', which is no longer declared, are ignored`);
  } else {
    namespace = new Namespace(queues, topics, journal);
  }

  const server = new AmqpServer({ namespace, journal, keyName, key, maxMessageSizeBytes, log, ...(options.onOperation ? { onOperation: options.onOperation } : {}) });
  let port: number;
  try {
    port = await server.listen(options.port ?? 0, host);
  } catch (error) {
    namespace.close();
    await journal.close();
    throw error;
  }
  const hostInUrl = host.includes(":") ? `[${host}]` : host;
  let stopping: Promise<void> | undefined;
  return {
    connectionString: `Endpoint=sb://${hostInUrl}:${port};SharedAccessKeyName=${keyName};SharedAccessKey=${key};UseDevelopmentEmulator=true;`,
    port,
    stop() {
      stopping ??= (async () => {
        await server.close();
        namespace.close();
        await journal.close();
      })();
      return stopping;
    },
  };
}
