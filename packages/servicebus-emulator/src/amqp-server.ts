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
import { parseAddress, type Namespace, type ResolvedEntity, type SendTarget } from "./namespace.js";
import { batchFrameWrites, message as amqpMessage, outcomes, rhea, type RheaConnection, type RheaLink } from "./rhea-internals.js";
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
}

const connectionStates = new WeakMap<object, ConnectionState>();

function connectionState(connection: RheaConnection): ConnectionState {
  let state = connectionStates.get(connection);
  if (!state) connectionStates.set(connection, (state = { authorized: new Set(), replyLinks: new Map() }));
  return state;
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
