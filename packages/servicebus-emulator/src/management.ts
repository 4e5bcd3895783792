/**
 * The $management request/response operations the SDK uses: lock renewal, peek, scheduling,
 * deferred receive, settlement by lock token, and the session operations (renew a session's lock,
 * get and set its state). Replies carry camelCase `statusCode` / `statusDescription` (and
 * `errorCondition` on failure), which the SDK turns into its error codes.
 */
import type { MessageUtil } from "rhea";
import { MalformedMessageError, parseMessage, scheduledEnqueueTime } from "./message-codec.js";
import {
  LockLostError,
  MessageNotFoundError,
  NotAllowedError,
  SessionCannotBeLockedError,
  SessionLockLostError,
  type MessageStore,
} from "./message-store.js";
import type { Namespace, ResolvedEntity } from "./namespace.js";
import { string_to_uuid, types, uuid_to_string } from "./rhea-internals.js";

export interface ManagementReply {
  statusCode: number;
  statusDescription: string;
  errorCondition?: string;
  /** An AMQP-typed map (rhea Typed) or undefined. */
  body?: unknown;
}

type Message = ReturnType<MessageUtil["decode"]>;

class ManagementError extends Error {
  constructor(
    readonly statusCode: number,
    readonly condition: string,
    message: string,
  ) {
    super(message);
  }
}

const ok = (body?: unknown): ManagementReply => ({ statusCode: 200, statusDescription: "OK", ...(body ? { body } : {}) });

function bodyMap(request: Message): Record<string, unknown> {
  const body = request.body as unknown;
  if (typeof body !== "object" || body === null || Array.isArray(body) || Buffer.isBuffer(body)) {
    throw new ManagementError(400, "amqp:invalid-field", "The request body must be an AMQP map.");
  }
  return body as Record<string, unknown>;
}

/** A long as rhea decodes it: a number, or 8 big-endian bytes when it does not fit a double. */
function toLong(value: unknown, what: string): number {
  if (typeof value === "number") return value;
  if (Buffer.isBuffer(value) && value.length === 8) return Number(value.readBigInt64BE(0));
  throw new ManagementError(400, "amqp:invalid-field", `${what} must be a long.`);
}

function list(value: unknown, what: string): unknown[] {
  if (Array.isArray(value)) return value;
  throw new ManagementError(400, "amqp:invalid-field", `${what} must be an array.`);
}

function lockTokens(body: Record<string, unknown>): string[] {
  return list(body["lock-tokens"], "lock-tokens").map((token) => {
    if (Buffer.isBuffer(token) && token.length === 16) return uuid_to_string(token);
    if (typeof token === "string") return token.toLowerCase();
    throw new ManagementError(400, "amqp:invalid-field", "lock-tokens must be UUIDs.");
  });
}

function receivingStore(entity: ResolvedEntity): MessageStore {
  if (entity.kind === "topic") throw new ManagementError(400, "amqp:not-allowed", "Messages cannot be received from a topic.");
  return entity.store;
}

/** The request's session id; required for the session operations, optional elsewhere. */
function sessionIdOf(body: Record<string, unknown>, required: true): string;
function sessionIdOf(body: Record<string, unknown>, required: false): string | undefined;
function sessionIdOf(body: Record<string, unknown>, required: boolean): string | undefined {
  const value = body["session-id"];
  if (typeof value === "string") return value;
  if (value === undefined || value === null) {
    if (required) throw new ManagementError(400, "amqp:invalid-field", "session-id is required.");
    return undefined;
  }
  throw new ManagementError(400, "amqp:invalid-field", "session-id must be a string.");
}

function sessionStore(entity: ResolvedEntity): MessageStore {
  const store = receivingStore(entity);
  if (!store.requiresSession) throw new ManagementError(400, "amqp:not-allowed", `'${store.path}' is not session-enabled.`);
  return store;
}

function encodedMessages(entries: Array<{ encoded: Buffer; lockToken?: string }>): unknown {
  return types.wrap_map({
    messages: types.wrap_list(
      entries.map(({ encoded, lockToken }) =>
        types.wrap_map({
          ...(lockToken ? { "lock-token": types.wrap_uuid(string_to_uuid(lockToken)) } : {}),
          message: types.wrap_binary(encoded),
        }),
      ),
    ),
  });
}

export interface ManagementContext {
  namespace: Namespace;
  now: number;
  maxMessageSizeBytes: number;
}

/** Runs one management request against `entity`; never throws (errors become replies). */
export function handleManagementRequest(entity: ResolvedEntity, request: Message, context: ManagementContext): ManagementReply {
  const operation = (request.application_properties as Record<string, unknown> | undefined)?.operation;
  try {
    switch (operation) {
      case "com.microsoft:renew-lock": {
        const store = receivingStore(entity);
        const expirations = lockTokens(bodyMap(request)).map((token) => store.renewLock(token, context.now));
        return ok(types.wrap_map({ expirations: types.wrap_array(expirations, 0x83, undefined) }));
      }
      case "com.microsoft:peek-message": {
        const body = bodyMap(request);
        const store = receivingStore(entity);
        const from = toLong(body["from-sequence-number"] ?? 0, "from-sequence-number");
        const count = toLong(body["message-count"] ?? 1, "message-count");
        const found = store.peek(from, count, sessionIdOf(body, false));
        if (found.length === 0) return { statusCode: 204, statusDescription: "No messages" };
        return ok(encodedMessages(found.map((message) => ({ encoded: store.encode(message, true) }))));
      }
      case "com.microsoft:schedule-message": {
        if (entity.kind !== "queue" && entity.kind !== "topic") {
          throw new ManagementError(400, "amqp:not-allowed", "Messages can be scheduled on queues and topics only.");
        }
        const entries = list(bodyMap(request).messages, "messages").map((entry) => {
          const raw = (entry as Record<string, unknown> | null)?.message;
          if (!Buffer.isBuffer(raw)) throw new ManagementError(400, "amqp:invalid-field", "messages[].message must be binary.");
          if (raw.length > context.maxMessageSizeBytes) {
            throw new ManagementError(413, "amqp:link:message-size-exceeded", `The message is larger than ${context.maxMessageSizeBytes} bytes.`);
          }
          const message = parseMessage(raw);
          return { message, at: scheduledEnqueueTime(message.annotations) ?? context.now };
        });
        const seqs = context.namespace.schedule(entity.target, entries, context.now);
        return ok(types.wrap_map({ "sequence-numbers": types.wrap_array(seqs, 0x81, undefined) }));
      }
      case "com.microsoft:cancel-scheduled-message": {
        if (entity.kind !== "queue" && entity.kind !== "topic") {
          throw new ManagementError(400, "amqp:not-allowed", "Scheduled messages live on queues and topics only.");
        }
        const seqs = list(bodyMap(request)["sequence-numbers"], "sequence-numbers").map((s) => toLong(s, "sequence-numbers"));
        context.namespace.cancelScheduled(entity.target, seqs);
        return ok();
      }
      case "com.microsoft:receive-by-sequence-number": {
        const body = bodyMap(request);
        const store = receivingStore(entity);
        const seqs = list(body["sequence-numbers"], "sequence-numbers").map((s) => toLong(s, "sequence-numbers"));
        const peekLock = body["receiver-settle-mode"] !== 0;
        const acquired = store.receiveDeferred(seqs, peekLock, context.now, sessionIdOf(body, false));
        return ok(
          encodedMessages(
            acquired.map(({ message, lockToken }) => ({
              encoded: store.encode(message),
              ...(lockToken ? { lockToken } : {}),
            })),
          ),
        );
      }
      case "com.microsoft:update-disposition": {
        const body = bodyMap(request);
        const store = receivingStore(entity);
        const status = body["disposition-status"];
        const modify = body["properties-to-modify"] as Record<string, unknown> | undefined;
        for (const token of lockTokens(body)) {
          if (status === "completed") store.complete(token);
          else if (status === "abandoned") store.abandon(token, context.now, modify);
          else if (status === "defered") store.defer(token, context.now, modify);
          else if (status === "suspended") {
            store.deadLetter(
              token,
              context.now,
              body["deadletter-reason"] as string | undefined,
              body["deadletter-description"] as string | undefined,
              modify,
            );
          } else throw new ManagementError(400, "amqp:invalid-field", `Unknown disposition-status ${String(status)}.`);
        }
        return ok();
      }
      case "com.microsoft:renew-session-lock": {
        const expiration = sessionStore(entity).renewSessionLock(sessionIdOf(bodyMap(request), true), context.now);
        return ok(types.wrap_map({ expiration: types.wrap_timestamp(expiration) }));
      }
      case "com.microsoft:get-session-state": {
        const state = sessionStore(entity).sessionState(sessionIdOf(bodyMap(request), true));
        return ok(types.wrap_map(state ? { "session-state": types.wrap_binary(state) } : {}));
      }
      case "com.microsoft:set-session-state": {
        const body = bodyMap(request);
        const state = body["session-state"];
        if (state !== undefined && state !== null && !Buffer.isBuffer(state)) {
          throw new ManagementError(400, "amqp:invalid-field", "session-state must be binary.");
        }
        sessionStore(entity).setSessionState(sessionIdOf(body, true), state ?? undefined);
        return ok();
      }
      default:
        throw new ManagementError(501, "amqp:not-implemented", `The emulator does not implement ${String(operation)}.`);
    }
  } catch (error) {
    if (error instanceof ManagementError) {
      return { statusCode: error.statusCode, statusDescription: error.message, errorCondition: error.condition };
    }
    if (error instanceof LockLostError) {
      return { statusCode: 410, statusDescription: error.message, errorCondition: "com.microsoft:message-lock-lost" };
    }
    if (error instanceof NotAllowedError) {
      return { statusCode: 400, statusDescription: error.message, errorCondition: "amqp:not-allowed" };
    }
    if (error instanceof SessionLockLostError) {
      return { statusCode: 410, statusDescription: error.message, errorCondition: "com.microsoft:session-lock-lost" };
    }
    if (error instanceof SessionCannotBeLockedError) {
      return { statusCode: 410, statusDescription: error.message, errorCondition: "com.microsoft:session-cannot-be-locked" };
    }
    if (error instanceof MessageNotFoundError) {
      return { statusCode: 404, statusDescription: error.message, errorCondition: "com.microsoft:message-not-found" };
    }
    if (error instanceof MalformedMessageError) {
      return { statusCode: 400, statusDescription: error.message, errorCondition: "amqp:decode-error" };
    }
    return { statusCode: 500, statusDescription: (error as Error).message, errorCondition: "amqp:internal-error" };
  }
}
