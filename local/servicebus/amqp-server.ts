/**
 * The AMQP 1.0 face of the emulator, as @azure/service-bus expects Service Bus to behave.
 *
 * rhea handles sockets, SASL, framing and the open/begin/attach/detach handshakes. This module
 * owns what a broker must own: link credit both ways, drain echoes, transfers and their
 * dispositions (see rhea-internals.ts for why), the $cbs token exchange, and routing links to
 * message stores and the $management operations.
 */
import type { AddressInfo, Server, Socket } from "node:net";
import type { MessageUtil } from "rhea";

type Message = ReturnType<MessageUtil["decode"]>;
import type { Journal } from "./journal.js";
import { handleManagementRequest, type ManagementReply } from "./management.js";
import { BATCH_MESSAGE_FORMAT, MalformedMessageError, parseMessage, splitBatch, type Annotations } from "./message-codec.js";
import { LockLostError, NotAllowedError, type Consumer, type MessageStore } from "./message-store.js";
import { parseAddress, type Namespace, type ResolvedEntity, type SendTarget } from "./namespace.js";
import {
  batchFrameWrites,
  frames,
  message as amqpMessage,
  outcomeName,
  outcomes,
  rhea,
  string_to_uuid,
  type Frame,
  type Performative,
  type RheaConnection,
  type RheaLink,
  type RheaSession,
} from "./rhea-internals.js";
import { audiencePath, verifySasToken } from "./sas.js";

export interface AmqpServerOptions {
  namespace: Namespace;
  journal: Journal;
  keyName: string;
  key: string;
  maxMessageSizeBytes: number;
  log: (line: string) => void;
}

/** Credit the emulator grants a client sender, topped up when half is used. */
const SENDER_CREDIT = 1000;

interface AmqpError {
  condition: string;
  description: string;
}

const errors = {
  notFound: (what: string): AmqpError => ({
    condition: "amqp:not-found",
    description: `The messaging entity '${what}' could not be found.`,
  }),
  unauthorized: (what: string): AmqpError => ({
    condition: "amqp:unauthorized-access",
    description: `Unauthorized access to '${what}': put a valid token on $cbs first.`,
  }),
  notAllowed: (description: string): AmqpError => ({ condition: "amqp:not-allowed", description }),
  lockLost: (): AmqpError => ({ condition: "com.microsoft:message-lock-lost", description: new LockLostError().message }),
};

interface ConnectionState {
  /** Entity paths (lower case) this connection holds a valid token for; "" = the namespace. */
  authorized: Set<string>;
  /** The links replies go out on, by the client receiver's link name and target address. */
  replyLinks: Map<string, ReplyLink>;
}

interface SessionState {
  /** Peek-lock deliveries awaiting the client's disposition, by delivery id. */
  locked: Map<number, { store: MessageStore; lockToken: string }>;
  /** Links that stopped sending because the session window was full. */
  blocked: Set<OutboundLink>;
}

interface OutboundLink {
  onFlow(performative: Performative): void;
  pump(): void;
  detached(): void;
}

interface InboundDelivery {
  id: number;
  format: number;
  settled: boolean;
  chunks: Buffer[];
  size: number;
}

const connectionStates = new WeakMap<object, ConnectionState>();
const sessionStates = new WeakMap<object, SessionState>();
const inboundLinks = new WeakMap<object, InboundLink>();
const outboundLinks = new WeakMap<object, OutboundLink>();

function connectionState(connection: RheaConnection): ConnectionState {
  let state = connectionStates.get(connection);
  if (!state) connectionStates.set(connection, (state = { authorized: new Set(), replyLinks: new Map() }));
  return state;
}

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
function takeOverSession(session: RheaSession): void {
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
        const annotations = outcome.fields.message_annotations as Annotations | undefined;
        if (outcome.fields.undeliverable_here === true) store.defer(lockToken, annotations);
        else store.abandon(lockToken, now, annotations);
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
    else throw error;
  }
  const journal = serverJournal.get(session.connection);
  if (!journal) writeDisposition(session, false, id, reply);
  else journal.sync(() => writeDisposition(session, false, id, reply));
}

/** Which journal a connection's settlements wait for (set when the connection opens). */
const serverJournal = new WeakMap<object, Journal>();

/** A link the client sends on: entity sends, $cbs and $management requests. */
class InboundLink {
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

/** A link the client receives messages on (peek-lock or receive-and-delete). */
class EntityReceiverLink implements OutboundLink, Consumer {
  private open = true;

  constructor(
    private readonly link: RheaLink,
    private readonly store: MessageStore,
    private readonly peekLock: boolean,
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
      const acquired = this.store.acquire(this.peekLock, now);
      if (!acquired) return;
      const payload = this.store.encode(acquired.message);
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
    // Locks outlive the link, as in Service Bus: the client may still settle through $management.
    this.open = false;
    this.store.removeConsumer(this);
  }
}

/** A link replies go out on ($cbs and $management); replies wait for credit if there is none. */
class ReplyLink implements OutboundLink {
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

function terminusAddress(terminus: unknown): string | undefined {
  const address = (terminus as { address?: unknown } | undefined)?.address;
  return typeof address === "string" ? address : undefined;
}

export class AmqpServer {
  private readonly container = rhea.create_container({ id: "servicebus-emulator" });
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();
  private readonly connections = new Set<RheaConnection>();

  constructor(private readonly options: AmqpServerOptions) {
    const c = this.container as unknown as { on(event: string, listener: (context: Record<string, unknown>) => void): void };
    c.on("connection_open", (context) => {
      const connection = context.connection as RheaConnection;
      this.connections.add(connection);
      batchFrameWrites(connection);
      serverJournal.set(connection, options.journal);
    });
    c.on("disconnected", (context) => this.connections.delete(context.connection as RheaConnection));
    c.on("connection_close", (context) => this.connections.delete(context.connection as RheaConnection));
    c.on("receiver_open", (context) => this.onClientSender(context.receiver as RheaLink));
    c.on("sender_open", (context) => this.onClientReceiver(context.sender as RheaLink));
    const onDetach = (link: RheaLink) => {
      outboundLinks.get(link)?.detached();
      for (const [address, reply] of connectionState(link.connection).replyLinks) {
        if (outboundLinks.get(link) === reply) connectionState(link.connection).replyLinks.delete(address);
      }
    };
    c.on("sender_close", (context) => onDetach(context.sender as RheaLink));
    c.on("sender_error", () => {});
    c.on("receiver_error", () => {});
    c.on("session_error", () => {});
    c.on("connection_error", () => {});
    c.on("error", (context) => options.log(`amqp error: ${String((context as { error?: unknown }).error ?? context)}`));
    c.on("protocol_error", (context) => options.log(`amqp protocol error: ${String(context)}`));
  }

  async listen(port: number, host: string): Promise<number> {
    const server = (this.container as unknown as { listen(o: Record<string, unknown>): Server }).listen({
      port,
      host,
      // The emulator grants credit itself; rhea's automatic window would fight it.
      receiver_options: { credit_window: 0, autoaccept: false },
      sender_options: { autosettle: false },
    });
    this.server = server;
    server.on("connection", (socket: Socket) => {
      this.sockets.add(socket);
      socket.setNoDelay(true);
      socket.on("close", () => this.sockets.delete(socket));
    });
    await new Promise<void>((resolve, reject) => {
      server.once("listening", resolve);
      server.once("error", reject);
    });
    return (server.address() as AddressInfo).port;
  }

  async close(): Promise<void> {
    for (const connection of this.connections) {
      try {
        connection.close({ condition: "amqp:connection:forced", description: "The emulator is stopping." });
      } catch {
        // already closing
      }
    }
    // Give close frames a moment to leave, then cut what remains.
    await new Promise((resolve) => setTimeout(resolve, 50));
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }

  private refuse(link: RheaLink, error: AmqpError): void {
    this.options.log(`refused link ${link.name}: ${error.description}`);
    link.close(error);
  }

  private isAuthorized(connection: RheaConnection, path: string): boolean {
    const authorized = connectionState(connection).authorized;
    if (authorized.has("")) return true;
    for (const granted of authorized) if (path === granted || path.startsWith(`${granted}/`)) return true;
    return false;
  }

  /** Resolves an attach address to an entity, refusing the link when it cannot be used. */
  private entityFor(link: RheaLink, address: string | undefined): { entity: ResolvedEntity; management: boolean } | undefined {
    if (!address) {
      this.refuse(link, errors.notAllowed("The link has no address."));
      return undefined;
    }
    const { entityPath, management } = parseAddress(address);
    const entity = this.options.namespace.resolve(entityPath);
    if (!entity) {
      this.refuse(link, errors.notFound(entityPath));
      return undefined;
    }
    if (!this.isAuthorized(link.connection, management ? `${entityPath}/$management` : entityPath)) {
      this.refuse(link, errors.unauthorized(entityPath));
      return undefined;
    }
    return { entity, management };
  }

  /** The client attached a sender: $cbs requests, management requests or messages. */
  private onClientSender(link: RheaLink): void {
    takeOverSession(link.session);
    const address = terminusAddress(link.remote.attach?.target);
    link.local.attach.max_message_size = this.options.maxMessageSizeBytes;
    link.local.attach.snd_settle_mode = link.remote.attach?.snd_settle_mode;
    link.local.attach.rcv_settle_mode = 0;
    if (address === "$cbs") {
      link.set_target({ address });
      inboundLinks.set(link, new InboundLink(link, this.options.maxMessageSizeBytes, (d, settle) => this.onCbsRequest(link, d, settle)));
      return;
    }
    const resolved = this.entityFor(link, address);
    if (!resolved) return;
    const { entity, management } = resolved;
    if (management) {
      link.set_target({ address });
      inboundLinks.set(
        link,
        new InboundLink(link, this.options.maxMessageSizeBytes, (d, settle) => this.onManagementRequest(link, entity, d, settle)),
      );
      return;
    }
    if (entity.kind !== "queue" && entity.kind !== "topic") {
      this.refuse(link, errors.notAllowed(`Cannot send to '${address}': send to its queue or topic.`));
      return;
    }
    link.set_target({ address });
    const target = entity.target;
    inboundLinks.set(link, new InboundLink(link, this.options.maxMessageSizeBytes, (d, settle) => this.onMessage(target, d, settle)));
  }

  /** The client attached a receiver: replies ($cbs, $management) or messages from an entity. */
  private onClientReceiver(link: RheaLink): void {
    takeOverSession(link.session);
    const address = terminusAddress(link.remote.attach?.source);
    const replyTo = terminusAddress(link.remote.attach?.target);
    link.local.attach.snd_settle_mode = link.remote.attach?.snd_settle_mode;
    link.local.attach.rcv_settle_mode = link.remote.attach?.rcv_settle_mode;
    if (address === "$cbs" || (address !== undefined && parseAddress(address).management)) {
      if (address !== "$cbs" && !this.entityFor(link, address)) return;
      link.set_source({ address });
      if (replyTo) link.set_target({ address: replyTo });
      const reply = new ReplyLink(link);
      outboundLinks.set(link, reply);
      // Clients name the reply link or its target after the reply-to address; accept both.
      const replyLinks = connectionState(link.connection).replyLinks;
      replyLinks.set(link.name, reply);
      if (replyTo) replyLinks.set(replyTo, reply);
      return;
    }
    const resolved = this.entityFor(link, address);
    if (!resolved) return;
    const { entity } = resolved;
    if (entity.kind === "topic") {
      this.refuse(link, errors.notAllowed(`Cannot receive from topic '${address}': receive from one of its subscriptions.`));
      return;
    }
    link.set_source({ address });
    if (replyTo) link.set_target({ address: replyTo });
    // snd-settle-mode settled (1) is receive-and-delete; anything else is peek-lock.
    const peekLock = link.remote.attach?.snd_settle_mode !== 1;
    outboundLinks.set(link, new EntityReceiverLink(link, entity.store, peekLock));
  }

  private decodeRequest(delivery: InboundDelivery): Message | undefined {
    try {
      return amqpMessage.decode(Buffer.concat(delivery.chunks));
    } catch {
      return undefined;
    }
  }

  private reply(link: RheaLink, request: Message, applicationProperties: Record<string, unknown>, body?: unknown): void {
    const replyTo = typeof request.reply_to === "string" ? request.reply_to : undefined;
    const replyLink = replyTo ? connectionState(link.connection).replyLinks.get(replyTo) : undefined;
    if (!replyLink) {
      this.options.log(`no reply link for ${String(replyTo)}; dropping the reply`);
      return;
    }
    const reply: Record<string, unknown> = { application_properties: applicationProperties };
    if (request.message_id !== undefined) reply.correlation_id = request.message_id;
    if (replyTo) reply.to = replyTo;
    if (body !== undefined) reply.body = body;
    replyLink.send(amqpMessage.encode(reply));
  }

  private onCbsRequest(link: RheaLink, delivery: InboundDelivery, settle: (state: unknown) => void): void {
    settle(outcomes.accepted().described());
    const request = this.decodeRequest(delivery);
    if (!request) return;
    const props = (request.application_properties ?? {}) as Record<string, unknown>;
    if (props.operation !== "put-token") {
      this.reply(link, request, { "status-code": 400, "status-description": `Unknown operation ${String(props.operation)}.` });
      return;
    }
    const check = verifySasToken(request.body, this.options.keyName, this.options.key, Date.now());
    const name = typeof props.name === "string" ? audiencePath(props.name) : undefined;
    if (!check.valid || name === undefined) {
      this.reply(link, request, { "status-code": 401, "status-description": check.valid ? "The token has no name." : check.reason });
      return;
    }
    const granted = audiencePath(check.audience);
    if (!(name === granted || granted === "" || name.startsWith(`${granted}/`))) {
      this.reply(link, request, { "status-code": 401, "status-description": `The token is for '${granted}', not '${name}'.` });
      return;
    }
    connectionState(link.connection).authorized.add(name);
    this.reply(link, request, { "status-code": 202, "status-description": "Accepted" });
  }

  private onManagementRequest(link: RheaLink, entity: ResolvedEntity, delivery: InboundDelivery, settle: (state: unknown) => void): void {
    settle(outcomes.accepted().described());
    const request = this.decodeRequest(delivery);
    if (!request) return;
    const result: ManagementReply = handleManagementRequest(entity, request, {
      namespace: this.options.namespace,
      now: Date.now(),
      maxMessageSizeBytes: this.options.maxMessageSizeBytes,
    });
    const props: Record<string, unknown> = { statusCode: result.statusCode, statusDescription: result.statusDescription };
    if (result.errorCondition) props.errorCondition = result.errorCondition;
    // Whatever the operation changed is on disk before the client hears it succeeded.
    this.options.journal.sync(() => this.reply(link, request, props, result.body));
  }

  private onMessage(target: SendTarget, delivery: InboundDelivery, settle: (state: unknown) => void): void {
    let messages;
    try {
      const raw = delivery.chunks.length === 1 ? (delivery.chunks[0] as Buffer) : Buffer.concat(delivery.chunks);
      if (delivery.format === 0) messages = [parseMessage(raw)];
      else if (delivery.format === BATCH_MESSAGE_FORMAT) messages = splitBatch(raw).map(parseMessage);
      else throw new MalformedMessageError(`unsupported message format ${delivery.format}`);
    } catch (error) {
      const description = error instanceof MalformedMessageError ? error.message : String(error);
      settle(outcomes.rejected({ error: { condition: "amqp:decode-error", description } }).described());
      return;
    }
    this.options.namespace.send(target, messages, Date.now());
    this.options.journal.sync((error) => {
      if (error) settle(outcomes.rejected({ error: { condition: "amqp:internal-error", description: error.message } }).described());
      else settle(outcomes.accepted().described());
    });
  }
}
