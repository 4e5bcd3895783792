/**
 * The emulated namespace: its entities, how client addresses map to message stores, and the
 * sending rules that sit above a single store (duplicate detection, topic fan-out).
 */
import {
  duplicateDetection,
  storeSettings,
  type DuplicateDetection,
  type QueueOptions,
  type StoreSettings,
  type TopicOptions,
} from "./entities.js";
import type { Journal, RecoveredStore } from "./journal.js";
import type { ParsedMessage } from "./message-codec.js";
import { MessageStore, NotAllowedError } from "./message-store.js";

/** Remembers message ids for the detection window (Service Bus drops a repeat silently). */
class DuplicateDetector {
  private readonly seen = new Map<string, number>();
  constructor(private readonly settings: DuplicateDetection) {}

  isDuplicate(messageId: string | undefined, now: number): boolean {
    if (messageId === undefined) return false;
    // Insertion order is arrival order: prune from the oldest end.
    for (const [id, expiresAt] of this.seen) {
      if (expiresAt > now) break;
      this.seen.delete(id);
    }
    if (this.seen.has(messageId)) return true;
    this.seen.set(messageId, now + this.settings.windowMs);
    return false;
  }
}

/** Something a sender can address: a queue or a topic. */
export interface SendTarget {
  readonly kind: "queue" | "topic";
  readonly name: string;
  readonly stores: MessageStore[];
  readonly duplicates: DuplicateDetector | undefined;
}

export type ResolvedEntity =
  | { kind: "queue"; target: SendTarget; store: MessageStore }
  | { kind: "topic"; target: SendTarget }
  | { kind: "subscription"; store: MessageStore }
  | { kind: "deadletter"; store: MessageStore };

export interface Address {
  /** Lower-cased entity path without the $management suffix. */
  entityPath: string;
  management: boolean;
}

export function parseAddress(address: string): Address {
  const path = address.replace(/^[a-z][a-z0-9+.-]*:\/\/[^/]*/i, "").replace(/^\/+|\/+$/g, "").toLowerCase();
  if (path.endsWith("/$management")) return { entityPath: path.slice(0, -"/$management".length), management: true };
  return { entityPath: path, management: false };
}

/** A dead-letter queue is never session-enabled: any receiver reads it, whatever its entity requires. */
function deadLetterSettings(settings: StoreSettings): StoreSettings {
  return { ...settings, requiresSession: false };
}

/**
 * A session-enabled queue, or a topic with a session-enabled subscription, takes only messages
 * that name a session; a transfer with one that does not is refused whole.
 */
function requireSessionIds(target: SendTarget, messages: ParsedMessage[]): void {
  const sessionful = target.stores.filter((store) => store.requiresSession);
  if (sessionful.length === 0 || messages.every((message) => message.sessionId !== undefined)) return;
  const where = target.kind === "queue" ? "" : ` (session-enabled subscriptions: ${sessionful.map((store) => store.path).join(", ")})`;
  throw new NotAllowedError(
    `The SessionId was not set on a message, and it cannot be sent to the entity '${target.name}'${where}. Entities that have session support enabled can only receive messages that have the SessionId set to a valid value.`,
  );
}

export class Namespace {
  private readonly entities = new Map<string, ResolvedEntity>();
  private readonly allStores: MessageStore[] = [];

  constructor(queues: QueueOptions[], topics: TopicOptions[], journal: Journal) {
    for (const queue of queues) {
      const what = `queue "${queue.name}"`;
      const settings = storeSettings(queue, what);
      const deadLetter = new MessageStore(`${queue.name}/$deadletterqueue`, deadLetterSettings(settings), journal);
      const store = new MessageStore(queue.name, settings, journal, deadLetter);
      const dedup = duplicateDetection(queue, what);
      const target: SendTarget = {
        kind: "queue",
        name: queue.name,
        stores: [store],
        duplicates: dedup ? new DuplicateDetector(dedup) : undefined,
      };
      this.add(queue.name, { kind: "queue", target, store });
      this.add(deadLetter.path, { kind: "deadletter", store: deadLetter });
      this.allStores.push(store, deadLetter);
    }
    for (const topic of topics) {
      const dedup = duplicateDetection(topic, `topic "${topic.name}"`);
      const stores: MessageStore[] = [];
      for (const subscription of topic.subscriptions) {
        const path = `${topic.name}/Subscriptions/${subscription.name}`;
        const settings = storeSettings(subscription, `subscription "${path}"`);
        const deadLetter = new MessageStore(`${path}/$deadletterqueue`, deadLetterSettings(settings), journal);
        const store = new MessageStore(path, settings, journal, deadLetter);
        this.add(path, { kind: "subscription", store });
        this.add(deadLetter.path, { kind: "deadletter", store: deadLetter });
        stores.push(store);
        this.allStores.push(store, deadLetter);
      }
      const target: SendTarget = {
        kind: "topic",
        name: topic.name,
        stores,
        duplicates: dedup ? new DuplicateDetector(dedup) : undefined,
      };
      this.add(topic.name, { kind: "topic", target });
    }
  }

  private add(path: string, entity: ResolvedEntity): void {
    this.entities.set(path.toLowerCase(), entity);
  }

  resolve(entityPath: string): ResolvedEntity | undefined {
    return this.entities.get(entityPath.toLowerCase());
  }

  get stores(): readonly MessageStore[] {
    return this.allStores;
  }

  /** Loads journaled messages into their stores; entities no longer declared are reported. */
  restore(recovered: Map<string, RecoveredStore>, now: number): string[] {
    const orphans: string[] = [];
    for (const [path, state] of recovered) {
      const store = this.allStores.find((s) => s.path.toLowerCase() === path.toLowerCase());
      if (store) store.restore(state, now);
      else if (state.messages.length > 0) orphans.push(path);
    }
    return orphans;
  }

  /** Accepts messages for a queue or a topic; duplicates within the window are dropped. */
  send(target: SendTarget, messages: ParsedMessage[], now: number): void {
    requireSessionIds(target, messages);
    for (const message of messages) {
      if (target.duplicates?.isDuplicate(message.messageId, now)) continue;
      this.enqueue(target, (store, seq) => store.enqueue(message, now, seq));
    }
  }

  /** Schedules messages; returns their sequence numbers (the topic's, shared by its subscriptions). */
  schedule(target: SendTarget, messages: Array<{ message: ParsedMessage; at: number }>, now: number): number[] {
    requireSessionIds(
      target,
      messages.map(({ message }) => message),
    );
    return messages.map(({ message, at }) => this.enqueue(target, (store, seq) => store.schedule(message, at, now, seq)));
  }

  cancelScheduled(target: SendTarget, seqs: number[]): void {
    for (const seq of seqs) for (const store of target.stores) store.cancelScheduled(seq);
  }

  private enqueue(target: SendTarget, add: (store: MessageStore, seq: number | undefined) => number): number {
    if (target.kind === "queue") return add(target.stores[0] as MessageStore, undefined);
    // A topic numbers a message once; every subscription keeps that number.
    const seq = Math.max(1, ...target.stores.map((s) => s.nextSequenceNumber));
    for (const store of target.stores) add(store, seq);
    return seq;
  }

  /** Every store's live state, for the journal to rewrite itself with. */
  snapshot(): Map<string, RecoveredStore> {
    const state = new Map<string, RecoveredStore>();
    for (const store of this.allStores) {
      state.set(store.path, { messages: [...store.messages.values()], nextSeq: store.nextSequenceNumber, sessionStates: store.sessionStates() });
    }
    return state;
  }

  close(): void {
    for (const store of this.allStores) store.close();
  }
}
