/**
 * The emulator's side of AMQP links, where rhea's broker-side bookkeeping does not fit (see
 * rhea-internals.ts): credit both ways, drain echoes, transfer and disposition frames, and the
 * settlement of peek-lock deliveries against their message store.
 */
import type { Journal } from "./journal.js";
import { LockLostError, NotAllowedError, SessionLockLostError, type Consumer, type MessageStore, type SessionLock } from "./message-store.js";
import {
  frames,
  outcomeName,
  outcomes,
  string_to_uuid,
  type Frame,
  type Performative,
  type RheaConnection,
  type RheaLink,
  type RheaSession,
} from "./rhea-internals.js";

/** Credit the emulator grants a client sender, topped up when half is used. */
const SENDER_CREDIT = 1000;

export interface AmqpError {
  condition: string;
  description: string;
}

export const errors = {
  notFound: (what: string): AmqpError => ({
    condition: "amqp:not-found",
    description: `The messaging entity '${what}' could not be found.`,
  }),
  sessionLockLost: (error: SessionLockLostError): AmqpError => ({ condition: "com.microsoft:session-lock-lost", description: error.message }),
  sessionCannotBeLocked: (description: string): AmqpError => ({ condition: "com.microsoft:session-cannot-be-locked", description }),
  timeout: (description: string): AmqpError => ({ condition: "com.microsoft:timeout", description }),
  unauthorized: (what: string): AmqpError => ({
    condition: "amqp:unauthorized-access",
    description: `Unauthorized access to '${what}': put a valid token on $cbs first.`,
  }),
  notAllowed: (description: string): AmqpError => ({ condition: "amqp:not-allowed", description }),
  lockLost: (): AmqpError => ({ condition: "com.microsoft:message-lock-lost", description: new LockLostError().message }),
};

interface SessionState {
  /** Peek-lock deliveries awaiting the client's disposition, by delivery id. */
  locked: Map<number, { store: MessageStore; lockToken: string }>;
  /** Links that stopped sending because the session window was full. */
  blocked: Set<OutboundLink>;
}

export interface OutboundLink {
  onFlow(performative: Performative): void;
  pump(): void;
  detached(): void;
}

export interface InboundDelivery {
  id: number;
  format: number;
  settled: boolean;
  chunks: Buffer[];
  size: number;
}

const sessionStates = new WeakMap<object, SessionState>();
export const inboundLinks = new WeakMap<object, InboundLink>();
export const outboundLinks = new WeakMap<object, OutboundLink>();

function sessionState(session: RheaSession): SessionState {
  let state = sessionStates.get(session);
  if (!state) sessionStates.set(session, (state = { locked: new Map(), blocked: new Set() }));
  return state;
}

/** Transfer frames the peer's session window still admits. */
function sessionWindow(session: RheaSession): number {
  const out = session.outgoing;
  if (out.remote_window === undefined) return 0;
  return out.remote_window - (out.next_transfer_id - (out.remote_next_transfer_id ?? 0));
}

/** Writes one delivery as transfer frames (split to the peer's max frame size) and spends a credit. */
function writeTransfer(link: RheaLink, tag: Buffer, payload: Buffer, settled: boolean): number {
  const session = link.session;
  const out = session.outgoing;
  const id = out.next_delivery_id++;
  // Keep rhea's own outgoing loop idle: it has no deliveries of ours to process.
  out.next_pending_delivery = out.next_delivery_id;
  const maxFrame = session.connection.max_frame_size;
  const maxPayload = maxFrame ? maxFrame - (64 + tag.length) : payload.length;
  let offset = 0;
  do {
    const end = Math.min(offset + maxPayload, payload.length);
    out.next_transfer_id++;
    session.output(
      frames.transfer({
        handle: link.local.handle,
        delivery_id: id,
        delivery_tag: tag,
        message_format: 0,
        settled,
        more: end < payload.length,
      }),
      payload.subarray(offset, end),
    );
    offset = end;
  } while (offset < payload.length);
  link.credit--;
  link.delivery_count++;
  return id;
}

/** Answers a drain request: the unused credit is spent and the client is told so. */
function echoDrain(link: RheaLink): void {
  const session = link.session;
  link.delivery_count += Math.max(link.credit, 0);
  link.credit = 0;
  session.output(
    frames.flow({
      next_incoming_id: session.incoming.next_transfer_id >>> 0,
      incoming_window: session.incoming.window,
      next_outgoing_id: session.outgoing.next_transfer_id >>> 0,
      outgoing_window: session.outgoing.window,
      handle: link.local.handle,
      delivery_count: link.delivery_count,
      link_credit: 0,
      drain: true,
    }),
  );
}

function writeDisposition(session: RheaSession, role: boolean, id: number, state: unknown): void {
  // A settlement that waited for the journal may outlive its session.
  if (!session.is_open()) return;
  session.output(frames.disposition({ role, first: id, last: id, settled: true, state }));
}

/** A lock token as a delivery tag: the GUID's bytes in .NET order, as Service Bus sends them. */
function lockTokenTag(lockToken: string): Buffer {
  const b = string_to_uuid(lockToken) as Buffer;
  return Buffer.from([b[3], b[2], b[1], b[0], b[5], b[4], b[7], b[6], ...b.subarray(8)] as number[]);
}

/** Routes the frames rhea would mishandle for a broker to the emulator's own link objects. */
export function takeOverSession(session: RheaSession): void {
  if (sessionStates.has(session)) return;
  const state = sessionState(session);
  const rheaFlow = session.on_flow.bind(session);
  session.on_transfer = (frame: Frame) => {
    // rhea's session flow control counts transfers here; keep it counting.
    session.incoming.next_transfer_id++;
    const link = session._get_link(frame);
    inboundLinks.get(link)?.onTransfer(frame);
  };
  session.on_disposition = (frame: Frame) => {
    const p = frame.performative;
    if (p.role !== true) return; // the client settling its own sends: nothing for us
    const first = p.first as number;
    const last = (p.last as number | undefined) ?? first;
    for (let id = first; id <= last; id++) settleOutgoing(session, state, id, p.state);
  };
  session.on_flow = (frame: Frame) => {
    rheaFlow(frame);
    const p = frame.performative;
    if (p.handle !== undefined && p.handle !== null) {
      outboundLinks.get(session._get_link(frame))?.onFlow(p);
    }
    if (state.blocked.size > 0 && sessionWindow(session) > 0) {
      const blocked = [...state.blocked];
      state.blocked.clear();
      for (const link of blocked) link.pump();
    }
  };
}

/** The client settled a peek-lock delivery: apply it to the store and answer settled. */
function settleOutgoing(session: RheaSession, state: SessionState, id: number, deliveryState: unknown): void {
  const pending = state.locked.get(id);
  state.locked.delete(id);
  const outcome = outcomeName(deliveryState);
  if (!pending) {
    if (outcome) writeDisposition(session, false, id, outcomes.rejected({ error: errors.lockLost() }).described());
    return;
  }
  if (!outcome) return;
  reportOperation(session.connection, { kind: "settle", outcome: settleOutcomeName(outcome) });
  const { store, lockToken } = pending;
  const now = Date.now();
  let reply: unknown;
  try {
    switch (outcome.name) {
      case "accepted":
        store.complete(lockToken);
        reply = outcomes.accepted().described();
        break;
      case "modified": {
        // The SDK sends properties to modify as the outcome's message annotations; Service Bus
        // applies them to the message's application properties.
        const properties = outcome.fields.message_annotations as Record<string, unknown> | undefined;
        if (outcome.fields.undeliverable_here === true) store.defer(lockToken, now, properties);
        else store.abandon(lockToken, now, properties);
        reply = outcomes.modified({ undeliverable_here: outcome.fields.undeliverable_here === true }).described();
        break;
      }
      case "rejected": {
        const error = outcome.fields.error as { condition?: string; info?: Record<string, unknown> } | undefined;
        const { DeadLetterReason, DeadLetterErrorDescription, ...properties } = error?.info ?? {};
        store.deadLetter(
          lockToken,
          now,
          DeadLetterReason === undefined || DeadLetterReason === null ? undefined : String(DeadLetterReason),
          DeadLetterErrorDescription === undefined || DeadLetterErrorDescription === null ? undefined : String(DeadLetterErrorDescription),
          properties,
        );
        // Settled without an error: echoing the dead-letter error makes the SDK report a failure.
        reply = outcomes.rejected({}).described();
        break;
      }
      default: // released: the client gives the message back without counting an attempt
        store.abandon(lockToken, now);
        reply = outcomes.released().described();
    }
  } catch (error) {
    if (error instanceof LockLostError) reply = outcomes.rejected({ error: errors.lockLost() }).described();
    else if (error instanceof NotAllowedError) reply = outcomes.rejected({ error: errors.notAllowed(error.message) }).described();
    else if (error instanceof SessionLockLostError) reply = outcomes.rejected({ error: errors.sessionLockLost(error) }).described();
    else throw error;
  }
  const journal = settlementJournals.get(session.connection);
  if (!journal) writeDisposition(session, false, id, reply);
  else journal.sync(() => writeDisposition(session, false, id, reply));
}

/** A disposition's outcome by its Service Bus name. */
function settleOutcomeName(outcome: { name: string; fields: Record<string, unknown> }): "complete" | "abandon" | "defer" | "deadLetter" | "release" {
  if (outcome.name === "accepted") return "complete";
  if (outcome.name === "modified") return outcome.fields.undeliverable_here === true ? "defer" : "abandon";
  if (outcome.name === "rejected") return "deadLetter";
  return "release";
}

/** Which journal a connection's settlements wait for. */
const settlementJournals = new WeakMap<object, Journal>();

/** Settlements on this connection are answered once `journal` has them on disk. */
export function settleThrough(connection: RheaConnection, journal: Journal): void {
  settlementJournals.set(connection, journal);
}

/**
 * One operation a client asked of the namespace, as Service Bus would bill it: a message sent or
 * received, a settlement, a $management request, a $cbs token. `bytes` is the message's encoded size.
 */
export type ServiceBusOperation =
  | { kind: "send"; bytes: number }
  | { kind: "receive"; bytes: number }
  | { kind: "settle"; outcome: "complete" | "abandon" | "defer" | "deadLetter" | "release" }
  | { kind: "management"; operation: string }
  | { kind: "token" };

/** Who hears of each operation on a connection (startServiceBusEmulator's onOperation). */
const operationObservers = new WeakMap<object, (operation: ServiceBusOperation) => void>();

/** Reports this connection's operations to `observer`. */
export function observeOperations(connection: RheaConnection, observer: (operation: ServiceBusOperation) => void): void {
  operationObservers.set(connection, observer);
}

/** Tells the connection's observer, if any, of an operation. */
export function reportOperation(connection: RheaConnection, operation: ServiceBusOperation): void {
  operationObservers.get(connection)?.(operation);
}

/** A link the client sends on: entity sends, $cbs and $management requests. */
export class InboundLink {
  private current: InboundDelivery | undefined;

  constructor(
    private readonly link: RheaLink,
    private readonly maxSize: number,
    private readonly onDelivery: (delivery: InboundDelivery, settle: (state: unknown) => void) => void,
  ) {
    link.flow?.(SENDER_CREDIT);
  }

  onTransfer(frame: Frame): void {
    const p = frame.performative;
    if (!this.current) {
      this.current = {
        id: p.delivery_id as number,
        format: (p.message_format as number | undefined) ?? 0,
        settled: p.settled === true,
        chunks: [],
        size: 0,
      };
    }
    const delivery = this.current;
    if (frame.payload && frame.payload.length > 0) {
      delivery.size += frame.payload.length;
      // Past the limit the bytes are not kept: the delivery is refused once complete.
      if (delivery.size <= this.maxSize) delivery.chunks.push(frame.payload);
    }
    if (p.aborted === true) {
      this.current = undefined;
      return;
    }
    if (p.more === true) return;
    this.current = undefined;
    this.link.credit--;
    this.link.delivery_count++;
    if (this.link.credit < SENDER_CREDIT / 2) this.link.flow?.(SENDER_CREDIT - this.link.credit);
    const session = this.link.session;
    const settle = (state: unknown) => {
      if (!delivery.settled) writeDisposition(session, true, delivery.id, state);
    };
    if (delivery.size > this.maxSize) {
      settle(
        outcomes
          .rejected({
            error: {
              condition: "amqp:link:message-size-exceeded",
              description: `The received message (delivery-id:${delivery.id}, size:${delivery.size} bytes) exceeds the limit (${this.maxSize} bytes) currently allowed on the link.`,
            },
          })
          .described(),
      );
      return;
    }
    this.onDelivery(delivery, settle);
  }
}

/**
 * A link the client receives messages on (peek-lock or receive-and-delete); on a session-enabled
 * entity, the messages of the one session the link holds the lock of.
 */
export class EntityReceiverLink implements OutboundLink, Consumer {
  private open = true;

  constructor(
    private readonly link: RheaLink,
    private readonly store: MessageStore,
    private readonly peekLock: boolean,
    private readonly session?: SessionLock,
  ) {
    store.addConsumer(this);
  }

  onFlow(performative: Performative): void {
    this.pump();
    if (performative.drain === true) echoDrain(this.link);
  }

  pump(): void {
    if (!this.open) return;
    if (!this.link.is_open()) {
      this.detached();
      return;
    }
    const session = this.link.session;
    const state = sessionState(session);
    const now = Date.now();
    while (this.link.credit > 0) {
      if (sessionWindow(session) <= 0) {
        state.blocked.add(this);
        return;
      }
      const acquired = this.store.acquire(this.peekLock, now, this.session);
      if (!acquired) return;
      const payload = this.store.encode(acquired.message);
      reportOperation(this.link.connection, { kind: "receive", bytes: payload.length });
      if (acquired.lockToken) {
        const id = writeTransfer(this.link, lockTokenTag(acquired.lockToken), payload, false);
        state.locked.set(id, { store: this.store, lockToken: acquired.lockToken });
      } else {
        const tag = Buffer.alloc(8);
        tag.writeBigUInt64BE(BigInt(acquired.message.seq));
        writeTransfer(this.link, tag, payload, true);
      }
    }
  }

  detached(): void {
    if (!this.open) return;
    // Message locks outlive the link, as in Service Bus: the client may still settle through
    // $management. A session's lock does not: closing its receiver gives the session up.
    this.open = false;
    this.store.removeConsumer(this);
    if (this.session) this.store.releaseSession(this.session, Date.now());
  }

  /** The session lock expired: the service detaches the link, and the client reports SessionLockLost. */
  sessionLost(): void {
    if (!this.open || !this.session) return;
    this.open = false;
    this.store.removeConsumer(this);
    if (this.link.is_open()) this.link.close(errors.sessionLockLost(new SessionLockLostError(this.session.sessionId)));
  }
}

/** A link replies go out on ($cbs and $management); replies wait for credit if there is none. */
export class ReplyLink implements OutboundLink {
  private readonly queue: Buffer[] = [];
  private tag = 0;

  constructor(private readonly link: RheaLink) {}

  send(payload: Buffer): void {
    this.queue.push(payload);
    this.pump();
  }

  onFlow(performative: Performative): void {
    this.pump();
    if (performative.drain === true) echoDrain(this.link);
  }

  pump(): void {
    while (this.queue.length > 0 && this.link.credit > 0 && this.link.is_open()) {
      if (sessionWindow(this.link.session) <= 0) {
        sessionState(this.link.session).blocked.add(this);
        return;
      }
      const tag = Buffer.alloc(4);
      tag.writeUInt32BE(this.tag++ >>> 0);
      writeTransfer(this.link, tag, this.queue.shift() as Buffer, true);
    }
  }

  detached(): void {
    this.queue.length = 0;
  }
}
