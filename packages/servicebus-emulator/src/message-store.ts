/**
 * One message store: a queue, a topic subscription or a dead-letter sub-queue.
 *
 * It owns Service Bus semantics independent of AMQP: sequence numbers, peek-lock locks and their
 * expiry, delivery counts and MaxDeliveryCountExceeded dead-lettering, deferral, scheduling, and
 * time-to-live expiry. Every change is appended to the journal; the AMQP layer decides when to
 * wait for it to be durable before answering a client.
 */
import { randomUUID } from "node:crypto";
import type { StoreSettings } from "./entities.js";
import type { Journal, MessageState, PersistedMessage, RecoveredStore } from "./journal.js";
import {
  encodeForDelivery,
  scheduledEnqueueTime,
  withApplicationProperties,
  type Annotations,
  type ParsedMessage,
} from "./message-codec.js";

/** The lock token is unknown, expired or already settled (MessageLockLost for the client). */
export class LockLostError extends Error {
  constructor() {
    super("The lock supplied is invalid. Either the lock expired, or the message has already been removed from the queue.");
  }
}

/** The operation makes no sense for this store (amqp:not-allowed for the client). */
export class NotAllowedError extends Error {}

/** A requested sequence number names no deferred message (MessageNotFound for the client). */
export class MessageNotFoundError extends Error {}

export interface StoredMessage extends PersistedMessage {
  lockToken?: string;
  lockedUntil?: number;
  lockTimer?: NodeJS.Timeout;
}

/** A receiving link that wants to hear when messages become available. */
export interface Consumer {
  pump(): void;
}

export interface Acquired {
  message: StoredMessage;
  /** Absent in receive-and-delete mode, where the message left the store already. */
  lockToken?: string;
}

const MAX_TIMER_MS = 2 ** 31 - 1;
const noop = () => {};

export class MessageStore {
  readonly messages = new Map<number, StoredMessage>();
  /** Sequence numbers of active messages in arrival order, consumed from readyHead. */
  private ready: number[] = [];
  private readyHead = 0;
  /** Messages back from a lock or a schedule, sorted: they go out before newer arrivals. */
  private returned: number[] = [];
  private readonly locks = new Map<string, StoredMessage>();
  private readonly consumers = new Set<Consumer>();
  private readonly scheduleTimers = new Map<number, NodeJS.Timeout>();
  private expiryTimer: NodeJS.Timeout | undefined;
  private nextExpiryCheck = Number.POSITIVE_INFINITY;
  private notifyQueued = false;
  private nextSeq = 1;
  private closed = false;

  constructor(
    /** Entity path as clients address it (`jobs`, `jobs/$deadletterqueue`, `t/Subscriptions/s`). */
    readonly path: string,
    readonly settings: StoreSettings,
    private readonly journal: Journal,
    /** Where dead-lettered messages go; absent for a dead-letter queue itself. */
    readonly deadLetterStore?: MessageStore,
  ) {}

  get nextSequenceNumber(): number {
    return this.nextSeq;
  }

  /** Reloads what the journal held; locks are not durable, so every message is available again. */
  restore(recovered: RecoveredStore, now: number): void {
    this.nextSeq = Math.max(this.nextSeq, recovered.nextSeq);
    for (const persisted of recovered.messages) {
      const message: StoredMessage = { ...persisted };
      this.messages.set(message.seq, message);
      if (message.state === "active") this.ready.push(message.seq);
      else if (message.state === "scheduled") this.armSchedule(message, now);
      if (message.expiresAt !== undefined) this.armExpiry(message.expiresAt, now);
    }
  }

  /** Adds a message; `seq` is given when a topic numbers the copies for all its subscriptions. */
  enqueue(parsed: ParsedMessage, now: number, seq?: number): number {
    const scheduledAt = scheduledEnqueueTime(parsed.annotations);
    const message = this.newMessage(parsed, now, seq);
    if (scheduledAt !== undefined && scheduledAt > now) {
      message.state = "scheduled";
      message.scheduledAt = scheduledAt;
    }
    this.insert(message, now);
    return message.seq;
  }

  /** Adds a message due at `at` (ServiceBusSender.scheduleMessages). */
  schedule(parsed: ParsedMessage, at: number, now: number, seq?: number): number {
    const message = this.newMessage(parsed, now, seq);
    if (at > now) {
      message.state = "scheduled";
      message.scheduledAt = at;
    }
    this.insert(message, now);
    return message.seq;
  }

  /** Removes scheduled messages; unknown or already enqueued ones are ignored, as Service Bus does. */
  cancelScheduled(seq: number): void {
    const message = this.messages.get(seq);
    if (!message || message.state !== "scheduled") return;
    clearTimeout(this.scheduleTimers.get(seq));
    this.scheduleTimers.delete(seq);
    this.remove(message);
  }

  /** Takes the next available message: locked (peek-lock) or removed (receive-and-delete). */
  acquire(peekLock: boolean, now: number): Acquired | undefined {
    for (;;) {
      const seq = this.nextAvailable();
      if (seq === undefined) return undefined;
      const message = this.messages.get(seq);
      if (!message || message.state !== "active" || message.lockToken !== undefined) continue;
      if (message.expiresAt !== undefined && message.expiresAt <= now) {
        this.expire(message, now);
        continue;
      }
      if (!peekLock) {
        this.remove(message);
        return { message };
      }
      return { message, lockToken: this.lock(message, now) };
    }
  }

  /** Locks deferred messages by sequence number (receiveDeferredMessages). */
  receiveDeferred(seqs: number[], peekLock: boolean, now: number): Acquired[] {
    const found = seqs.map((seq) => {
      const message = this.messages.get(seq);
      if (!message || message.state !== "deferred" || message.lockToken !== undefined) {
        throw new MessageNotFoundError(`Failed to retrieve the deferred message with sequence number ${seq}.`);
      }
      return message;
    });
    return found.map((message) => {
      if (!peekLock) {
        this.remove(message);
        return { message };
      }
      return { message, lockToken: this.lock(message, now) };
    });
  }

  complete(lockToken: string): void {
    this.remove(this.unlock(lockToken));
  }

  abandon(lockToken: string, now: number, annotations?: Annotations): void {
    const message = this.unlock(lockToken);
    if (annotations) message.annotations = { ...message.annotations, ...annotations };
    this.failedDelivery(message, now, annotations !== undefined);
  }

  defer(lockToken: string, annotations?: Annotations): void {
    const message = this.unlock(lockToken);
    if (annotations) message.annotations = { ...message.annotations, ...annotations };
    message.state = "deferred";
    this.recordUpdate(message, annotations !== undefined);
  }

  deadLetter(lockToken: string, now: number, reason?: string, description?: string, properties?: Record<string, unknown>): void {
    if (!this.deadLetterStore) {
      if (!this.locks.has(lockToken)) throw new LockLostError();
      throw new NotAllowedError("A message in a dead-letter queue cannot be dead-lettered again: complete it instead.");
    }
    const message = this.unlock(lockToken);
    const extra: Record<string, unknown> = { ...properties };
    if (reason !== undefined) extra.DeadLetterReason = reason;
    if (description !== undefined) extra.DeadLetterErrorDescription = description;
    this.moveToDeadLetter(message, now, extra);
  }

  /** Extends a lock by the lock duration; returns the new expiry. */
  renewLock(lockToken: string, now: number): number {
    const message = this.locks.get(lockToken);
    if (!message) throw new LockLostError();
    clearTimeout(message.lockTimer);
    message.lockedUntil = now + this.settings.lockDurationMs;
    message.lockTimer = setTimeout(() => this.lockExpired(message, lockToken), this.settings.lockDurationMs);
    return message.lockedUntil;
  }

  isLocked(lockToken: string): boolean {
    return this.locks.has(lockToken);
  }

  /** Messages in sequence order from `fromSeq`, whatever their state (peekMessages). */
  peek(fromSeq: number, count: number): StoredMessage[] {
    const result: StoredMessage[] = [];
    for (const message of this.messages.values()) {
      if (result.length >= count) break;
      if (message.seq >= fromSeq) result.push(message);
    }
    return result;
  }

  /** The message as a receiver gets it. */
  encode(message: StoredMessage, forPeek = false): Buffer {
    const state = forPeek ? ({ active: undefined, deferred: 1, scheduled: 2 } as const)[message.state] : undefined;
    return encodeForDelivery(message, {
      sequenceNumber: message.seq,
      enqueuedAt: message.enqueuedAt,
      deliveryCount: message.deliveryCount,
      ...(message.lockedUntil !== undefined && !forPeek ? { lockedUntil: message.lockedUntil } : {}),
      ...(state !== undefined ? { messageState: state } : {}),
      ...(message.deadLetterSource !== undefined ? { deadLetterSource: message.deadLetterSource } : {}),
    });
  }

  addConsumer(consumer: Consumer): void {
    this.consumers.add(consumer);
  }

  removeConsumer(consumer: Consumer): void {
    this.consumers.delete(consumer);
  }

  /** Active messages not locked (for tests and figures). */
  get activeCount(): number {
    let count = 0;
    for (const message of this.messages.values()) if (message.state === "active" && !message.lockToken) count++;
    return count;
  }

  close(): void {
    this.closed = true;
    for (const message of this.locks.values()) clearTimeout(message.lockTimer);
    for (const timer of this.scheduleTimers.values()) clearTimeout(timer);
    clearTimeout(this.expiryTimer);
    this.consumers.clear();
  }

  private newMessage(parsed: ParsedMessage, now: number, seq?: number): StoredMessage {
    const ttl = minDefined(parsed.header.ttl, this.settings.defaultMessageTtlMs);
    const message: StoredMessage = {
      seq: seq ?? this.nextSeq,
      header: parsed.header,
      annotations: parsed.annotations,
      bare: parsed.bare,
      enqueuedAt: now,
      deliveryCount: 0,
      state: "active",
    };
    this.nextSeq = Math.max(this.nextSeq, message.seq + 1);
    if (ttl !== undefined && this.deadLetterStore !== undefined) message.expiresAt = now + ttl;
    if (parsed.messageId !== undefined) message.messageId = parsed.messageId;
    return message;
  }

  private insert(message: StoredMessage, now: number): void {
    this.messages.set(message.seq, message);
    this.journal.append({ kind: "enqueue", store: this.path, message });
    if (message.expiresAt !== undefined) this.armExpiry(message.expiresAt, now);
    if (message.state === "scheduled") this.armSchedule(message, now);
    else if (message.state === "active") {
      this.ready.push(message.seq);
      this.notify();
    }
  }

  private remove(message: StoredMessage): void {
    if (!this.messages.delete(message.seq)) return;
    this.journal.append({ kind: "remove", store: this.path, seq: message.seq });
  }

  private lock(message: StoredMessage, now: number): string {
    const token = randomUUID();
    message.lockToken = token;
    message.lockedUntil = now + this.settings.lockDurationMs;
    message.lockTimer = setTimeout(() => this.lockExpired(message, token), this.settings.lockDurationMs);
    this.locks.set(token, message);
    return token;
  }

  private unlock(lockToken: string): StoredMessage {
    const message = this.locks.get(lockToken);
    if (!message || !this.messages.has(message.seq)) throw new LockLostError();
    this.locks.delete(lockToken);
    clearTimeout(message.lockTimer);
    delete message.lockToken;
    delete message.lockedUntil;
    delete message.lockTimer;
    return message;
  }

  private lockExpired(message: StoredMessage, lockToken: string): void {
    if (this.closed || this.locks.get(lockToken) !== message) return;
    this.unlock(lockToken);
    this.failedDelivery(message, Date.now(), false);
    // Timer-driven changes have no client waiting on them; still get them to disk.
    this.journal.sync(noop);
  }

  /** An abandon or an expired lock: count the attempt, dead-letter after maxDeliveryCount. */
  private failedDelivery(message: StoredMessage, now: number, annotationsChanged: boolean): void {
    message.deliveryCount++;
    if (this.deadLetterStore && message.deliveryCount >= this.settings.maxDeliveryCount) {
      this.moveToDeadLetter(message, now, {
        DeadLetterReason: "MaxDeliveryCountExceeded",
        DeadLetterErrorDescription: `Message could not be consumed after ${this.settings.maxDeliveryCount} delivery attempts.`,
      });
      return;
    }
    this.recordUpdate(message, annotationsChanged);
    if (message.state === "active") this.makeAvailable(message);
  }

  private recordUpdate(message: StoredMessage, annotationsChanged: boolean): void {
    this.journal.append({
      kind: "update",
      store: this.path,
      seq: message.seq,
      deliveryCount: message.deliveryCount,
      state: message.state,
      ...(annotationsChanged ? { annotations: message.annotations } : {}),
    });
  }

  private moveToDeadLetter(message: StoredMessage, now: number, properties: Record<string, unknown>): void {
    this.remove(message);
    const target = this.deadLetterStore;
    if (!target) return;
    const copy: StoredMessage = {
      seq: target.nextSeq,
      header: message.header,
      annotations: message.annotations,
      bare: Object.keys(properties).length > 0 ? withApplicationProperties(message.bare, properties) : message.bare,
      enqueuedAt: now,
      deliveryCount: message.deliveryCount,
      state: "active",
      deadLetterSource: this.path,
    };
    if (message.messageId !== undefined) copy.messageId = message.messageId;
    target.nextSeq++;
    target.insert(copy, now);
  }

  private expire(message: StoredMessage, now: number): void {
    if (this.settings.deadLetteringOnMessageExpiration) {
      this.moveToDeadLetter(message, now, {
        DeadLetterReason: "TTLExpiredException",
        DeadLetterErrorDescription: "The message expired and was dead lettered.",
      });
    } else {
      this.remove(message);
    }
  }

  private makeAvailable(message: StoredMessage): void {
    const at = sortedIndex(this.returned, message.seq);
    this.returned.splice(at, 0, message.seq);
    this.notify();
  }

  private nextAvailable(): number | undefined {
    const fromReady = this.readyHead < this.ready.length ? this.ready[this.readyHead] : undefined;
    const fromReturned = this.returned[0];
    if (fromReturned !== undefined && (fromReady === undefined || fromReturned < fromReady)) {
      this.returned.shift();
      return fromReturned;
    }
    if (fromReady === undefined) return undefined;
    this.readyHead++;
    if (this.readyHead > 4096 && this.readyHead * 2 > this.ready.length) {
      this.ready = this.ready.slice(this.readyHead);
      this.readyHead = 0;
    }
    return fromReady;
  }

  /** Wakes consumers once per turn of the event loop, however many messages arrived. */
  private notify(): void {
    if (this.notifyQueued || this.consumers.size === 0) return;
    this.notifyQueued = true;
    queueMicrotask(() => {
      this.notifyQueued = false;
      for (const consumer of [...this.consumers]) consumer.pump();
    });
  }

  private armSchedule(message: StoredMessage, now: number): void {
    const due = message.scheduledAt ?? now;
    const timer = setTimeout(
      () => {
        this.scheduleTimers.delete(message.seq);
        if (this.closed || this.messages.get(message.seq) !== message || message.state !== "scheduled") return;
        if (Date.now() < due) {
          this.armSchedule(message, Date.now());
          return;
        }
        message.state = "active";
        this.recordUpdate(message, false);
        this.journal.sync(noop);
        this.makeAvailable(message);
      },
      Math.min(Math.max(due - now, 0), MAX_TIMER_MS),
    );
    this.scheduleTimers.set(message.seq, timer);
  }

  private armExpiry(expiresAt: number, now: number): void {
    if (expiresAt >= this.nextExpiryCheck) return;
    clearTimeout(this.expiryTimer);
    this.nextExpiryCheck = expiresAt;
    this.expiryTimer = setTimeout(() => this.sweepExpired(), Math.min(Math.max(expiresAt - now, 0) + 5, MAX_TIMER_MS));
  }

  /** Moves expired messages out even when nobody receives (so they reach the dead-letter queue). */
  private sweepExpired(): void {
    if (this.closed) return;
    const now = Date.now();
    this.nextExpiryCheck = Number.POSITIVE_INFINITY;
    let next = Number.POSITIVE_INFINITY;
    for (const message of [...this.messages.values()]) {
      if (message.expiresAt === undefined) continue;
      if (message.expiresAt <= now && message.lockToken === undefined && message.state !== "scheduled") {
        this.expire(message, now);
      } else {
        next = Math.min(next, Math.max(message.expiresAt, now + 50));
      }
    }
    this.journal.sync(noop);
    if (next !== Number.POSITIVE_INFINITY) this.armExpiry(next, now);
  }
}

function minDefined(a: number | undefined, b: number | undefined): number | undefined {
  if (a === undefined) return b;
  if (b === undefined) return a;
  return Math.min(a, b);
}

function sortedIndex(values: number[], value: number): number {
  let low = 0;
  let high = values.length;
  while (low < high) {
    const mid = (low + high) >>> 1;
    if ((values[mid] ?? 0) < value) low = mid + 1;
    else high = mid;
  }
  return low;
}

export type { MessageState };
