/**
 * AMQP message encoding for the emulator.
 *
 * A message is kept as the sender encoded it: the bare message (properties, application
 * properties, body, footer) is stored as raw bytes and sent back unchanged, so ids and bodies come
 * back byte for byte. Only the header and the message annotations, which the broker owns
 * (delivery count, sequence number, lock expiry), are decoded and re-encoded.
 */
import { randomUUID } from "node:crypto";
import type { Typed } from "rhea";
import { AmqpReader, AmqpWriter, message, types } from "./rhea-internals.js";

const SECTION = {
  header: 0x70,
  deliveryAnnotations: 0x71,
  messageAnnotations: 0x72,
  properties: 0x73,
  applicationProperties: 0x74,
  data: 0x75,
  footer: 0x78,
} as const;

/** Symbolic section descriptors, which a peer may use instead of the numeric codes. */
const symbolicSections: Record<string, number> = {
  "amqp:header:list": 0x70,
  "amqp:delivery-annotations:map": 0x71,
  "amqp:message-annotations:map": 0x72,
  "amqp:properties:list": 0x73,
  "amqp:application-properties:map": 0x74,
  "amqp:data:binary": 0x75,
  "amqp:amqp-sequence:list": 0x76,
  "amqp:value:*": 0x77,
  "amqp:footer:map": 0x78,
};

/** The format of a transfer carrying several messages (ServiceBusSender.sendMessages). */
export const BATCH_MESSAGE_FORMAT = 0x80013700;

export interface HeaderFields {
  durable?: boolean;
  priority?: number;
  ttl?: number;
  firstAcquirer?: boolean;
}

export type Annotations = Record<string, unknown>;

/** A message as the broker keeps it. */
export interface ParsedMessage {
  header: HeaderFields;
  /** Message annotations the sender set (partition key, scheduled enqueue time, ...). */
  annotations: Annotations;
  /** Properties, application properties, body and footer, exactly as the sender encoded them. */
  bare: Buffer;
  /** The message id as a string key (for duplicate detection), if the sender set one. */
  messageId?: string;
  /** The session the message belongs to (its group-id property), if any. */
  sessionId?: string;
}

export class MalformedMessageError extends Error {}

interface Section {
  code: number;
  start: number;
  end: number;
  value: unknown;
}

function readSections(raw: Buffer): Section[] {
  const reader = new AmqpReader(raw);
  const sections: Section[] = [];
  try {
    while (reader.remaining()) {
      const start = reader.position;
      const section = reader.read() as unknown as { descriptor?: { value: unknown } };
      const end = reader.position;
      const descriptor = section.descriptor?.value;
      const code = typeof descriptor === "number" ? descriptor : symbolicSections[String(descriptor)];
      if (code === undefined) throw new MalformedMessageError(`unknown message section ${String(descriptor)}`);
      sections.push({ code, start, end, value: section });
    }
  } catch (error) {
    if (error instanceof MalformedMessageError) throw error;
    throw new MalformedMessageError(`undecodable AMQP message: ${(error as Error).message}`);
  }
  return sections;
}

function messageIdKey(id: unknown): string | undefined {
  if (id === undefined || id === null) return undefined;
  if (Buffer.isBuffer(id)) return `b:${id.toString("hex")}`;
  return `${typeof id}:${String(id)}`;
}

/** Annotations the broker sets on delivery; a resent received message must not carry them in. */
const BROKER_ANNOTATIONS = [
  "x-opt-sequence-number",
  "x-opt-enqueue-sequence-number",
  "x-opt-enqueued-time",
  "x-opt-locked-until",
  "x-opt-message-state",
  "x-opt-deadletter-source",
];

function senderAnnotations(annotations: Annotations | undefined): Annotations {
  if (!annotations) return {};
  for (const key of BROKER_ANNOTATIONS) if (key in annotations) delete annotations[key];
  return annotations;
}

/** Splits one encoded message into what the broker reads and the bare message it keeps. */
export function parseMessage(raw: Buffer): ParsedMessage {
  const sections = readSections(raw);
  const bareStart = sections.find((s) => s.code >= SECTION.properties)?.start ?? raw.length;
  const properties = sections.find((s) => s.code === SECTION.properties);
  // Decoding only the head (header, annotations, properties) keeps the body untouched.
  const headEnd = properties ? properties.end : bareStart;
  const decoded = message.decode(raw.subarray(0, headEnd));
  const header: HeaderFields = {};
  if (typeof decoded.durable === "boolean") header.durable = decoded.durable;
  if (typeof decoded.priority === "number") header.priority = decoded.priority;
  if (typeof decoded.ttl === "number") header.ttl = decoded.ttl;
  if (typeof decoded.first_acquirer === "boolean") header.firstAcquirer = decoded.first_acquirer;
  const parsed: ParsedMessage = {
    header,
    annotations: senderAnnotations(decoded.message_annotations as Annotations | undefined),
    bare: Buffer.from(raw.subarray(bareStart)),
  };
  let id = messageIdKey(decoded.message_id);
  if (id === undefined) {
    // Service Bus gives every message an id; clients (the SDK's lock renewer) rely on one.
    const generated = randomUUID().replace(/-/g, "");
    parsed.bare = withMessageId(raw, bareStart, properties, generated);
    id = messageIdKey(generated);
  }
  parsed.messageId = id;
  if (typeof decoded.group_id === "string") parsed.sessionId = decoded.group_id;
  return parsed;
}

/** The bare message with a message id set in its properties; the other fields stay as encoded. */
function withMessageId(raw: Buffer, bareStart: number, properties: Section | undefined, messageId: string): Buffer {
  const fields = properties ? [...((properties.value as { value: Typed[] }).value ?? [])] : [];
  fields[0] = types.wrap_string(messageId);
  const writer = new AmqpWriter();
  writer.write(types.described(types.wrap_ulong(SECTION.properties), types.wrap_list(fields)));
  // The properties section, when present, is the first of the bare message.
  return Buffer.concat([writer.toBuffer(), raw.subarray(properties ? properties.end : bareStart)]);
}

/** The encoded messages inside a batch transfer: one data section each. */
export function splitBatch(raw: Buffer): Buffer[] {
  return readSections(raw)
    .filter((s) => s.code === SECTION.data)
    .map((s) => types.unwrap(s.value) as Buffer);
}

/** What the broker adds to a message each time it hands it out. */
export interface DeliveryAnnotations {
  sequenceNumber: number;
  enqueuedAt: number;
  deliveryCount: number;
  lockedUntil?: number;
  /** 1 = deferred, 2 = scheduled (what peekMessages reports). */
  messageState?: number;
  deadLetterSource?: string;
}

function encodeHeader(header: HeaderFields, deliveryCount: number): Typed {
  const orNull = <T>(v: T | undefined, wrap: (v: T) => Typed) => (v === undefined ? types.wrap(null) : wrap(v));
  return types.described(
    types.wrap_ulong(SECTION.header),
    types.wrap_list([
      orNull(header.durable, types.wrap_boolean),
      orNull(header.priority, types.wrap_ubyte),
      orNull(header.ttl, types.wrap_uint),
      orNull(header.firstAcquirer, types.wrap_boolean),
      types.wrap_uint(deliveryCount),
    ]),
  );
}

/** The full message as a receiver gets it: broker header and annotations, then the bare message. */
export function encodeForDelivery(
  stored: { header: HeaderFields; annotations: Annotations; bare: Buffer },
  delivery: DeliveryAnnotations,
): Buffer {
  const annotations: Record<string, unknown> = { ...stored.annotations };
  annotations["x-opt-sequence-number"] = types.wrap_long(delivery.sequenceNumber);
  annotations["x-opt-enqueued-time"] = types.wrap_timestamp(delivery.enqueuedAt);
  if (delivery.lockedUntil !== undefined) annotations["x-opt-locked-until"] = types.wrap_timestamp(delivery.lockedUntil);
  if (delivery.messageState !== undefined) annotations["x-opt-message-state"] = types.wrap_int(delivery.messageState);
  if (delivery.deadLetterSource !== undefined) annotations["x-opt-deadletter-source"] = delivery.deadLetterSource;
  const writer = new AmqpWriter();
  writer.write(encodeHeader(stored.header, delivery.deliveryCount));
  writer.write(types.described(types.wrap_ulong(SECTION.messageAnnotations), types.wrap_symbolic_map(annotations)));
  return Buffer.concat([writer.toBuffer(), stored.bare]);
}

/** Encodes an annotation map on its own (the journal keeps it next to the bare message). */
export function encodeAnnotations(annotations: Annotations): Buffer {
  if (Object.keys(annotations).length === 0) return Buffer.alloc(0);
  const writer = new AmqpWriter();
  writer.write(types.described(types.wrap_ulong(SECTION.messageAnnotations), types.wrap_symbolic_map(annotations)));
  return writer.toBuffer();
}

export function decodeAnnotations(encoded: Buffer): Annotations {
  if (encoded.length === 0) return {};
  return (message.decode(encoded).message_annotations as Annotations | undefined) ?? {};
}

/**
 * The bare message with application properties added or replaced (dead-lettering records its
 * reason there). Properties and body stay byte for byte.
 */
export function withApplicationProperties(bare: Buffer, extra: Record<string, unknown>): Buffer {
  const sections = readSections(bare);
  const existing = sections.find((s) => s.code === SECTION.applicationProperties);
  const current = existing
    ? ((message.decode(bare.subarray(existing.start, existing.end)).application_properties as Record<string, unknown>) ?? {})
    : {};
  const writer = new AmqpWriter();
  writer.write(types.described(types.wrap_ulong(SECTION.applicationProperties), types.wrap_map({ ...current, ...extra })));
  const encoded = writer.toBuffer();
  if (existing) return Buffer.concat([bare.subarray(0, existing.start), encoded, bare.subarray(existing.end)]);
  const properties = sections.find((s) => s.code === SECTION.properties);
  const at = properties ? properties.end : 0;
  return Buffer.concat([bare.subarray(0, at), encoded, bare.subarray(at)]);
}

/** The scheduled enqueue time a sender put in the annotations, if any (milliseconds since epoch). */
export function scheduledEnqueueTime(annotations: Annotations): number | undefined {
  const value = annotations["x-opt-scheduled-enqueue-time"];
  if (value instanceof Date) return value.getTime();
  if (typeof value === "number") return value;
  return undefined;
}
