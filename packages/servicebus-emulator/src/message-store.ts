/**
 * One message store: a queue, a topic subscription or a dead-letter sub-queue.
 *
 * It owns Service Bus semantics independent of AMQP: sequence numbers, peek-lock locks and their
 * expiry, delivery counts and MaxDeliveryCountExceeded dead-lettering, deferral, scheduling,
 * time-to-live expiry, and sessions (a session-enabled store hands out a session's messages only to
 * the receiver that holds the session's lock, and keeps each session's state). Every change is
 * appended to the journal; the AMQP layer decides when to wait for it to be durable before
 * answering a client.
 */
import { randomUUID } from "node:crypto";
import type { StoreSettings } from "./entities.js";
import type { Journal, MessageChanges, MessageState, PersistedMessage, RecoveredStore } from "./journal.js";
import { encodeForDelivery, scheduledEnqueueTime, withApplicationProperties, type ParsedMessage } from "./message-codec.js";
import { ReadyQueue } from "./ready-queue.js";

/** The lock token is unknown, expired or already settled (MessageLockLost for the client). */
export class LockLostError extends Error {
  constructor() {
    super("The lock supplied is invalid. Either the lock expired, or the message has already been removed from the queue.");
  }
}

/** The session is not locked by the caller, or its lock expired (SessionLockLost for the client). */
export class SessionLockLostError extends Error {
  constructor(sessionId: string) {
    super(`The session lock has expired on the session with id ${sessionId}. Accept the session again.`);
  }
}

/** Another receiver holds the session (SessionCannotBeLocked for the client). */
export class SessionCannotBeLockedError extends Error {
  constructor(sessionId: string) {
    super(`The requested session '${sessionId}' cannot be accepted. It may be locked by another receiver.`);
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
  /** The session lock this message was handed out under (its lock is the session's). */
  heldBy?: SessionLock;
}

/** A receiving link (or a waiting session request) that wants to hear when messages become available. */
export interface Consumer {
  pump(): void;
}

export interface Acquired {
  message: StoredMessage;
  /** Absent in receive-and-delete mode, where the message left the store already. */
  lockToken?: string;
}

/** A receiver's exclusive hold on one session of a session-enabled store. */
export class SessionLock {
  /** Messages handed out under this lock and not settled yet. */
  readonly messages = new Set<StoredMessage>();
  timer: NodeJS.Timeout | undefined;
  released = false;

  constructor(
    readonly sessionId: string,
    public lockedUntil: number,
    /** Called when the lock expires (not when its holder releases it). */
    readonly onLost: () => void,
  ) {}
}

interface SessionEntry {
  readonly ready: ReadyQueue;
  lock?: SessionLock;
  state?: Buffer;
}

const MAX_TIMER_MS = 2 ** 31 - 1;
const noop = () => {};

export class MessageStore {
  readonly messages = new Map<number, StoredMessage>();
  /** Available messages of a store without sessions. */
  private readonly ready = new ReadyQueue();
  /** A session-enabled store's sessions, in the order they first had messages. */
  private readonly sessions = new Map<string, SessionEntry>();
  private readonly locks = new Map<string, StoredMessage>();
  private readonly consumers = new Set<Consumer>();
  private readonly scheduleTimers = new Map<number, NodeJS.Timeout>();
  private expiryTimer: NodeJS.Timeout | undefined;
  private nextExpiryCheck = Number.POSITIVE_INFINITY;
  private notifyQueued = false;
  private nextSeq = 1;
  private closed = false;
  private readonly isAvailable = (seq: number): boolean => {
    const message = this.messages.get(seq);
    return message !== undefined && message.state === "active" && message.lockToken === undefined;
  };

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

  get requiresSession(): boolean {
    return this.settings.requiresSession;
  }

  /** Reloads what the journal held; locks are not durable, so every message is available again. */
  restore(recovered: RecoveredStore, now: number): void {
    this.nextSeq = Math.max(this.nextSeq, recovered.nextSeq);
    for (const persisted of recovered.messages) {
      const message: StoredMessage = { ...persisted };
      this.messages.set(message.seq, message);
      if (message.state === "active") this.queueFor(message).push(message.seq);
      else if (message.state === "scheduled") this.armSchedule(message, now);
      if (message.expiresAt !== undefined) this.armExpiry(message.expiresAt, now);
    }
    for (const [sessionId, state] of recovered.sessionStates) this.sessionEntry(sessionId).state = state;
  }

  /** Adds a message; `seq` is given when a topic numbers the copies for all its subscriptions. */
  enqueue(parsed: ParsedMessage, now: number, seq?: number): number {
    const scheduledAt = scheduledEnqueueTime(parsed.annotations);
    const message = this.newMessage(parsed, now, seq);
    if (scheduledAt !== undefined && scheduledAt > now) this.markScheduled(message, scheduledAt);
    this.insert(message, now);
    return message.seq;
  }

  /** Adds a message due at `at` (ServiceBusSender.scheduleMessages). */
  schedule(parsed: ParsedMessage, at: number, now: number, seq?: number): number {
    const message = this.newMessage(parsed, now, seq);
    if (at > now) this.markScheduled(message, at);
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

  /**
   * Takes the next available message: locked (peek-lock) or removed (receive-and-delete). A
   * session-enabled store hands out only the messages of the session `session` holds.
   */
  acquire(peekLock: boolean, now: number, session?: SessionLock): Acquired | undefined {
    if (this.settings.requiresSession !== (session !== undefined)) return undefined;
    if (session?.released) return undefined;
    const queue = session ? this.sessionEntry(session.sessionId).ready : this.ready;
    for (;;) {
      const seq = queue.take();
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
      return { message, lockToken: session ? this.lockUnder(session, message) : this.lock(message, now) };
    }
  }

  /** Locks deferred messages by sequence number (receiveDeferredMessages); a session's only from that session. */
  receiveDeferred(seqs: number[], peekLock: boolean, now: number, sessionId?: string): Acquired[] {
    const found = seqs.map((seq) => {
      const message = this.messages.get(seq);
      const inSession = sessionId === undefined || message?.sessionId === sessionId;
      if (!message || message.state !== "deferred" || message.lockToken !== undefined || !inSession) {
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

  /** Gives the message back; the attempt counts. `properties` are merged into its application properties. */
  abandon(lockToken: string, now: number, properties?: Record<string, unknown>): void {
    const message = this.unlock(lockToken);
    this.failedDelivery(message, now, this.modify(message, properties));
  }

  /**
   * Sets the message aside until it is received by sequence number. The attempt counts, as in
   * Service Bus: a deferred message comes back with one more delivery, and a defer can reach
   * maxDeliveryCount and dead-letter it.
   */
  defer(lockToken: string, now: number, properties?: Record<string, unknown>): void {
    const message = this.unlock(lockToken);
    const changes = this.modify(message, properties);
    message.state = "deferred";
    this.failedDelivery(message, now, changes);
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
    if (message.heldBy) throw new NotAllowedError("A message received from a session is locked by its session: renew the session lock.");
    clearTimeout(message.lockTimer);
    message.lockedUntil = now + this.settings.lockDurationMs;
    message.lockTimer = setTimeout(() => this.lockExpired(message, lockToken), this.settings.lockDurationMs);
    return message.lockedUntil;
  }

  isLocked(lockToken: string): boolean {
    return this.locks.has(lockToken);
  }

  /** Messages in sequence order from `fromSeq`, whatever their state (peekMessages); one session's when given. */
  peek(fromSeq: number, count: number, sessionId?: string): StoredMessage[] {
    const result: StoredMessage[] = [];
    for (const message of this.messages.values()) {
      if (result.length >= count) break;
      if (message.seq >= fromSeq && (sessionId === undefined || message.sessionId === sessionId)) result.push(message);
    }
    return result;
  }

  /** The message as a receiver (or a peek) gets it. */
  encode(message: StoredMessage, forPeek = false): Buffer {
    // Service Bus reports a message that was scheduled as "scheduled" even once it is active.
    const state = message.state === "deferred" ? 1 : message.state === "scheduled" || message.wasScheduled ? 2 : undefined;
    return encodeForDelivery(message, {
      sequenceNumber: message.seq,
      enqueuedAt: message.enqueuedAt,
      deliveryCount: message.deliveryCount,
      ...(message.lockedUntil !== undefined && !forPeek ? { lockedUntil: message.lockedUntil } : {}),
      ...(state !== undefined ? { messageState: state } : {}),
      ...(message.deadLetterSource !== undefined ? { deadLetterSource: message.deadLetterSource } : {}),
    });
  }

  // ---- Sessions ----

  /** Locks a named session (it need not have messages yet). */
  lockSession(sessionId: string, now: number, onLost: () => void): SessionLock {
    const entry = this.sessionEntry(sessionId);
    if (entry.lock) throw new SessionCannotBeLockedError(sessionId);
    return this.grantSession(entry, sessionId, now, onLost);
  }

  /** Locks the first session that has an available message and no holder; undefined when none has. */
  lockNextSession(now: number, onLost: () => void): SessionLock | undefined {
    for (const [sessionId, entry] of this.sessions) {
      if (!entry.lock && entry.ready.hasAvailable(this.isAvailable)) return this.grantSession(entry, sessionId, now, onLost);
    }
    return undefined;
  }

  /** Extends a session's lock by the lock duration; returns the new expiry. */
  renewSessionLock(sessionId: string, now: number): number {
    const lock = this.heldLock(sessionId);
    clearTimeout(lock.timer);
    this.armSessionLock(lock, now);
    for (const message of lock.messages) message.lockedUntil = lock.lockedUntil;
    return lock.lockedUntil;
  }

  /** The holder gives the session up (its receiver closed): unsettled messages count a delivery and come back. */
  releaseSession(lock: SessionLock, now: number): void {
    this.endSessionLock(lock, now);
  }

  /** A locked session's state (undefined when it has none). */
  sessionState(sessionId: string): Buffer | undefined {
    this.heldLock(sessionId);
    return this.sessions.get(sessionId)?.state;
  }

  /** Sets or (with undefined or an empty buffer) clears a locked session's state. */
  setSessionState(sessionId: string, state: Buffer | undefined): void {
    this.heldLock(sessionId);
    const entry = this.sessionEntry(sessionId);
    const kept = state && state.length > 0 ? Buffer.from(state) : undefined;
    if (kept) entry.state = kept;
    else delete entry.state;
    this.journal.append({ kind: "session", store: this.path, sessionId, ...(kept ? { state: kept } : {}) });
  }

  /** Session states, for the journal to rewrite itself with. */
  sessionStates(): Map<string, Buffer> {
    const states = new Map<string, Buffer>();
    for (const [sessionId, entry] of this.sessions) if (entry.state) states.set(sessionId, entry.state);
    return states;
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
    for (const entry of this.sessions.values()) clearTimeout(entry.lock?.timer);
    clearTimeout(this.expiryTimer);
    this.consumers.clear();
  }

  private newMessage(parsed: ParsedMessage, now: number, seq?: number): StoredMessage {
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
    const expiresAt = this.expiryFrom(message, now);
    if (expiresAt !== undefined) message.expiresAt = expiresAt;
    if (parsed.messageId !== undefined) message.messageId = parsed.messageId;
    if (parsed.sessionId !== undefined) message.sessionId = parsed.sessionId;
    return message;
  }

  /** When a message enqueued at `from` expires; dead-letter queues keep messages until received. */
  private expiryFrom(message: StoredMessage, from: number): number | undefined {
    const ttl = minDefined(message.header.ttl, this.settings.defaultMessageTtlMs);
    return ttl !== undefined && this.deadLetterStore !== undefined ? from + ttl : undefined;
  }

  private markScheduled(message: StoredMessage, at: number): void {
    message.state = "scheduled";
    message.scheduledAt = at;
    message.wasScheduled = true;
    // Until it is due its enqueued time is the time it is due; it becomes the real one then.
    message.enqueuedAt = at;
  }

  private insert(message: StoredMessage, now: number): void {
    this.messages.set(message.seq, message);
    this.journal.append({ kind: "enqueue", store: this.path, message });
    if (message.expiresAt !== undefined) this.armExpiry(message.expiresAt, now);
    if (message.state === "scheduled") this.armSchedule(message, now);
    else if (message.state === "active") {
      this.queueFor(message).push(message.seq);
      this.notify();
    }
  }

  private remove(message: StoredMessage): void {
    if (!this.messages.delete(message.seq)) return;
    this.journal.append({ kind: "remove", store: this.path, seq: message.seq });
  }

  /** The ready queue a message waits in: its session's, in a session-enabled store. */
  private queueFor(message: StoredMessage): ReadyQueue {
    if (!this.settings.requiresSession || message.sessionId === undefined) return this.ready;
    return this.sessionEntry(message.sessionId).ready;
  }

  private sessionEntry(sessionId: string): SessionEntry {
    let entry = this.sessions.get(sessionId);
    if (!entry) this.sessions.set(sessionId, (entry = { ready: new ReadyQueue() }));
    return entry;
  }

  private lock(message: StoredMessage, now: number): string {
    const token = randomUUID();
    message.lockToken = token;
    message.lockedUntil = now + this.settings.lockDurationMs;
    message.lockTimer = setTimeout(() => this.lockExpired(message, token), this.settings.lockDurationMs);
    this.locks.set(token, message);
    return token;
  }

  /** Locks a message under a session lock: it is the session's lock that expires, not the message's. */
  private lockUnder(session: SessionLock, message: StoredMessage): string {
    const token = randomUUID();
    message.lockToken = token;
    message.lockedUntil = session.lockedUntil;
    message.heldBy = session;
    session.messages.add(message);
    this.locks.set(token, message);
    return token;
  }

  private unlock(lockToken: string): StoredMessage {
    const message = this.locks.get(lockToken);
    if (!message || !this.messages.has(message.seq)) throw new LockLostError();
    this.locks.delete(lockToken);
    clearTimeout(message.lockTimer);
    message.heldBy?.messages.delete(message);
    delete message.lockToken;
    delete message.lockedUntil;
    delete message.lockTimer;
    delete message.heldBy;
    return message;
  }

  private lockExpired(message: StoredMessage, lockToken: string): void {
    if (this.closed || this.locks.get(lockToken) !== message) return;
    this.unlock(lockToken);
    this.failedDelivery(message, Date.now(), {});
    // Timer-driven changes have no client waiting on them; still get them to disk.
    this.journal.sync(noop);
  }

  /** Merges properties to modify into the application properties, as Service Bus does for abandon and defer. */
  private modify(message: StoredMessage, properties: Record<string, unknown> | undefined): MessageChanges {
    if (!properties || Object.keys(properties).length === 0) return {};
    message.bare = withApplicationProperties(message.bare, properties);
    return { bare: message.bare };
  }

  /**
   * A delivery that did not settle the message (abandon, defer, an expired lock): count it and
   * dead-letter after maxDeliveryCount. A dead-letter queue counts nothing (it has no maximum).
   */
  private failedDelivery(message: StoredMessage, now: number, changes: MessageChanges): void {
    if (this.deadLetterStore) {
      message.deliveryCount++;
      if (message.deliveryCount >= this.settings.maxDeliveryCount) {
        this.moveToDeadLetter(message, now, {
          DeadLetterReason: "MaxDeliveryCountExceeded",
          DeadLetterErrorDescription: `Message could not be consumed after ${this.settings.maxDeliveryCount} delivery attempts.`,
        });
        return;
      }
    }
    this.recordUpdate(message, changes);
    if (message.state === "active") this.makeAvailable(message);
  }

  private recordUpdate(message: StoredMessage, changes: MessageChanges): void {
    this.journal.append({
      kind: "update",
      store: this.path,
      seq: message.seq,
      deliveryCount: message.deliveryCount,
      state: message.state,
      ...changes,
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
    if (message.sessionId !== undefined) copy.sessionId = message.sessionId;
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
    this.queueFor(message).giveBack(message.seq);
    this.notify();
  }

  private grantSession(entry: SessionEntry, sessionId: string, now: number, onLost: () => void): SessionLock {
    const lock = new SessionLock(sessionId, now, onLost);
    entry.lock = lock;
    this.armSessionLock(lock, now);
    return lock;
  }

  private armSessionLock(lock: SessionLock, now: number): void {
    lock.lockedUntil = now + this.settings.lockDurationMs;
    lock.timer = setTimeout(() => {
      if (this.closed || lock.released) return;
      this.endSessionLock(lock, Date.now());
      this.journal.sync(noop);
      lock.onLost();
    }, this.settings.lockDurationMs);
  }

  private heldLock(sessionId: string): SessionLock {
    const lock = this.sessions.get(sessionId)?.lock;
    if (!lock) throw new SessionLockLostError(sessionId);
    return lock;
  }

  /** Ends a session lock: its unsettled messages count a delivery and become available again. */
  private endSessionLock(lock: SessionLock, now: number): void {
    if (lock.released) return;
    lock.released = true;
    clearTimeout(lock.timer);
    const entry = this.sessions.get(lock.sessionId);
    if (entry?.lock === lock) delete entry.lock;
    for (const message of [...lock.messages]) {
      if (message.lockToken === undefined) continue;
      this.unlock(message.lockToken);
      this.failedDelivery(message, now, {});
    }
    if (entry && !entry.lock && !entry.state && !entry.ready.hasAvailable(this.isAvailable)) this.sessions.delete(lock.sessionId);
    else this.notify();
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
        const activatedAt = Date.now();
        if (activatedAt < due) {
          this.armSchedule(message, activatedAt);
          return;
        }
        message.state = "active";
        // Service Bus stamps a scheduled message with the time it became active.
        message.enqueuedAt = activatedAt;
        const changes: MessageChanges = { enqueuedAt: activatedAt };
        const expiresAt = this.expiryFrom(message, activatedAt);
        if (expiresAt !== undefined) {
          message.expiresAt = expiresAt;
          changes.expiresAt = expiresAt;
          this.armExpiry(expiresAt, activatedAt);
        }
        this.recordUpdate(message, changes);
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

export type { MessageState };
