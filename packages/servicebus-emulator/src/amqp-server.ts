/**
 * The AMQP 1.0 face of the emulator, as @azure/service-bus expects Service Bus to behave.
 *
 * rhea handles sockets, SASL, framing and the open/begin/attach/detach handshakes; links.ts owns
 * credit, transfers and settlement. This module routes links to message stores, runs the $cbs
 * token exchange and dispatches $management requests.
 */
import type { AddressInfo, Server, Socket } from "node:net";
import type { MessageUtil } from "rhea";
import type { Journal } from "./journal.js";
import {
  EntityReceiverLink,
  InboundLink,
  ReplyLink,
  errors,
  inboundLinks,
  outboundLinks,
  settleThrough,
  takeOverSession,
  type AmqpError,
  type InboundDelivery,
} from "./links.js";
import { handleManagementRequest, type ManagementReply } from "./management.js";
import { BATCH_MESSAGE_FORMAT, MalformedMessageError, parseMessage, splitBatch } from "./message-codec.js";
import { NotAllowedError, SessionCannotBeLockedError, type MessageStore, type SessionLock } from "./message-store.js";
import { parseAddress, type Namespace, type ResolvedEntity, type SendTarget } from "./namespace.js";
import { batchFrameWrites, holdAttach, message as amqpMessage, outcomes, rhea, types, type RheaConnection, type RheaLink } from "./rhea-internals.js";
import { audiencePath, verifySasToken } from "./sas.js";

type Message = ReturnType<MessageUtil["decode"]>;

export interface AmqpServerOptions {
  namespace: Namespace;
  journal: Journal;
  keyName: string;
  key: string;
  maxMessageSizeBytes: number;
  log: (line: string) => void;
}

interface ConnectionState {
  /** Entity paths (lower case) this connection holds a valid token for; "" = the namespace. */
  authorized: Set<string>;
  /** The links replies go out on, by the client receiver's link name and target address. */
  replyLinks: Map<string, ReplyLink>;
  /** Session receivers and session requests, which give their sessions up when the connection goes. */
  sessionLinks: Set<{ detached(): void }>;
}

const connectionStates = new WeakMap<object, ConnectionState>();

function connectionState(connection: RheaConnection): ConnectionState {
  let state = connectionStates.get(connection);
  if (!state) connectionStates.set(connection, (state = { authorized: new Set(), replyLinks: new Map(), sessionLinks: new Set() }));
  return state;
}

/** The source filter key of a session receiver: a session id, or null for the next available session. */
const SESSION_FILTER = "com.microsoft:session-filter";
/** How long a request for the next available session waits at most (Service Bus caps it at 65 s). */
const MAX_SESSION_WAIT_MS = 65_000;
const DEFAULT_SESSION_WAIT_MS = 60_000;

/** What a receiver's source asks for: no session, a named session, or the next available one (null). */
function requestedSession(source: unknown): { sessionId: string | null } | undefined {
  const filter = (source as { filter?: Record<string, unknown> } | undefined)?.filter;
  if (!filter || typeof filter !== "object" || !(SESSION_FILTER in filter)) return undefined;
  const value = filter[SESSION_FILTER];
  if (typeof value === "string") return { sessionId: value };
  return { sessionId: null };
}

/** A time as .NET ticks in 8 big-endian bytes: how Service Bus sends a session's locked-until time on attach. */
function ticks(ms: number): Buffer {
  const buffer = Buffer.alloc(8);
  buffer.writeBigInt64BE(BigInt(ms) * 10_000n + 621_355_968_000_000_000n);
  return buffer;
}

/** A request for the next available session, held until one has a message or the wait runs out. */
class PendingSessionAccept {
  private readonly timer: NodeJS.Timeout;
  private done = false;

  constructor(
    private readonly store: MessageStore,
    waitMs: number,
    private readonly grant: (lock: SessionLock) => void,
    private readonly giveUp: () => void,
    private readonly lost: () => void,
  ) {
    this.timer = setTimeout(() => {
      if (this.finish()) this.giveUp();
    }, waitMs);
    store.addConsumer(this);
  }

  pump(): void {
    if (this.done) return;
    const lock = this.store.lockNextSession(Date.now(), this.lost);
    if (lock && this.finish()) this.grant(lock);
  }

  /** Credit the client grants before the attach is answered stays on the link for its receiver. */
  onFlow(): void {}

  /** The client gave up first (detached) or its connection went. */
  detached(): void {
    this.finish();
  }

  private finish(): boolean {
    if (this.done) return false;
    this.done = true;
    clearTimeout(this.timer);
    this.store.removeConsumer(this);
    return true;
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
      settleThrough(connection, options.journal);
    });
    const onGone = (connection: RheaConnection) => {
      this.connections.delete(connection);
      const sessionLinks = connectionState(connection).sessionLinks;
      for (const link of [...sessionLinks]) link.detached();
      sessionLinks.clear();
    };
    c.on("disconnected", (context) => onGone(context.connection as RheaConnection));
    c.on("connection_close", (context) => onGone(context.connection as RheaConnection));
    c.on("receiver_open", (context) => this.onClientSender(context.receiver as RheaLink));
    c.on("sender_open", (context) => this.onClientReceiver(context.sender as RheaLink));
    const onDetach = (link: RheaLink) => {
      const outbound = outboundLinks.get(link);
      outbound?.detached();
      if (outbound) connectionState(link.connection).sessionLinks.delete(outbound);
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
    // Stop listening first: a client reconnecting at once (they do, on amqp:connection:forced) must
    // be refused, not accepted by an emulator that is going away and then left hanging on it.
    const closed = new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
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
    await closed;
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
      this.refuse(link, errors.notFound(this.missingEntityName(link.connection, address)));
      return undefined;
    }
    if (!this.isAuthorized(link.connection, management ? `${entityPath}/$management` : entityPath)) {
      this.refuse(link, errors.unauthorized(entityPath));
      return undefined;
    }
    return { entity, management };
  }

  /**
   * How Service Bus names an entity that does not exist: `sb://<namespace>/<path>` as the client
   * wrote it, or, for a subscription of a topic that exists, `<namespace>:topic:<topic>|<subscription>`.
   */
  private missingEntityName(connection: RheaConnection, address: string): string {
    const hostname = connection.remote.open?.hostname;
    const host = typeof hostname === "string" && hostname ? hostname : "localhost";
    const path = address.replace(/^[a-z][a-z0-9+.-]*:\/\/[^/]*/i, "").replace(/^\/+|\/+$/g, "").replace(/\/\$management$/i, "");
    const subscription = /^(.+)\/subscriptions\/([^/]+)$/i.exec(path);
    if (subscription?.[1] && subscription[2] && this.options.namespace.resolve(subscription[1])?.kind === "topic") {
      return `${host.split(".")[0]}:topic:${subscription[1]}|${subscription[2]}`;
    }
    return `sb://${host}/${path}`;
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
    if (!resolved || !address) return;
    const { entity } = resolved;
    if (entity.kind === "topic") {
      this.refuse(link, errors.notAllowed(`Cannot receive from topic '${address}': receive from one of its subscriptions.`));
      return;
    }
    link.set_source({ address });
    if (replyTo) link.set_target({ address: replyTo });
    // snd-settle-mode settled (1) is receive-and-delete; anything else is peek-lock.
    const peekLock = link.remote.attach?.snd_settle_mode !== 1;
    const session = requestedSession(link.remote.attach?.source);
    if (!session) {
      if (entity.store.requiresSession) {
        this.refuse(link, errors.notAllowed(`It is not possible for an entity that requires sessions to create a non-sessionful message receiver ('${address}').`));
        return;
      }
      outboundLinks.set(link, new EntityReceiverLink(link, entity.store, peekLock));
      return;
    }
    if (!entity.store.requiresSession) {
      this.refuse(link, errors.notAllowed(`It is not possible for an entity that does not require sessions to create a sessionful message receiver ('${address}').`));
      return;
    }
    this.acceptSession(link, entity.store, address, peekLock, session.sessionId);
  }

  /**
   * A session receiver: the named session, or the next one with a message available (the attach
   * is answered once one is, or with com.microsoft:timeout when the client's wait runs out). The
   * answer names the session in the source filter and its lock expiry in the link properties.
   */
  private acceptSession(link: RheaLink, store: MessageStore, address: string, peekLock: boolean, sessionId: string | null): void {
    const sessionLinks = connectionState(link.connection).sessionLinks;
    let receiver: EntityReceiverLink | undefined;
    const lost = () => receiver?.sessionLost();
    const grant = (lock: SessionLock) => {
      link.set_source({ address, filter: { [SESSION_FILTER]: lock.sessionId } });
      link.local.attach.properties = { "com.microsoft:locked-until-utc": types.wrap_long(ticks(lock.lockedUntil)) };
      receiver = new EntityReceiverLink(link, store, peekLock, lock);
      outboundLinks.set(link, receiver);
      sessionLinks.add(receiver);
    };
    const now = Date.now();
    if (sessionId !== null) {
      try {
        grant(store.lockSession(sessionId, now, lost));
      } catch (error) {
        if (!(error instanceof SessionCannotBeLockedError)) throw error;
        this.refuse(link, errors.sessionCannotBeLocked(error.message));
      }
      return;
    }
    const available = store.lockNextSession(now, lost);
    if (available) {
      grant(available);
      return;
    }
    holdAttach(link);
    const requested = Number((link.remote.attach?.properties as Record<string, unknown> | undefined)?.["com.microsoft:timeout"]);
    const waitMs = Number.isFinite(requested) && requested > 0 ? Math.min(requested, MAX_SESSION_WAIT_MS) : DEFAULT_SESSION_WAIT_MS;
    const pending = new PendingSessionAccept(
      store,
      waitMs,
      (lock) => {
        sessionLinks.delete(pending);
        grant(lock);
        link.open();
        // The receiver may have credit already (the client flows as soon as it attached).
        receiver?.pump();
      },
      () => {
        sessionLinks.delete(pending);
        link.open();
        link.close(errors.timeout(`No session with an available message in '${address}' within ${waitMs} ms.`));
      },
      lost,
    );
    outboundLinks.set(link, pending);
    sessionLinks.add(pending);
    this.options.log(`next-session request on '${address}' waits up to ${waitMs} ms for a session with a message`);
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
    try {
      this.options.namespace.send(target, messages, Date.now());
    } catch (error) {
      if (!(error instanceof NotAllowedError)) throw error;
      settle(outcomes.rejected({ error: errors.notAllowed(error.message) }).described());
      return;
    }
    this.options.journal.sync((error) => {
      if (error) settle(outcomes.rejected({ error: { condition: "amqp:internal-error", description: error.message } }).described());
      else settle(outcomes.accepted().described());
    });
  }
}
