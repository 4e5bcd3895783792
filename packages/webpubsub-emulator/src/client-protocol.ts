/**
 * The WebSocket wire format between the service and its clients: the JSON subprotocols
 * (`json.webpubsub.azure.v1`, `json.reliable.webpubsub.azure.v1`) and plain WebSocket clients
 * that negotiate none (raw frames both ways). Frames are built as strings once per send and
 * shared by every recipient; reliable recipients only get their sequenceId spliced in.
 */

export const jsonSubprotocol = "json.webpubsub.azure.v1";
export const reliableJsonSubprotocol = "json.reliable.webpubsub.azure.v1";

/** How a connection speaks: one of the JSON subprotocols, or raw frames ("simple"). */
export type ClientProtocol = "json" | "reliable" | "simple";

export function protocolOf(subprotocol: string | undefined): ClientProtocol {
  if (subprotocol === reliableJsonSubprotocol) return "reliable";
  if (subprotocol === jsonSubprotocol) return "json";
  return "simple";
}

/**
 * A message payload. JSON is kept as its serialised text, checked once, so it is spliced into
 * frames without being parsed and re-serialised for each recipient.
 */
export type Payload =
  | { dataType: "json"; json: string }
  | { dataType: "text"; text: string }
  | { dataType: "binary"; bytes: Buffer };

export type DataType = Payload["dataType"];

/** Where a data message comes from, as the client sees it. */
export type MessageSource = { from: "server" } | { from: "group"; group: string; fromUserId?: string | undefined };

/** One message to many connections; each representation is built at most once. */
export class OutboundMessage {
  private jsonFrame: string | undefined;
  constructor(
    readonly source: MessageSource,
    readonly payload: Payload,
  ) {}

  /** The JSON subprotocol frame, without a sequenceId. */
  json(): string {
    this.jsonFrame ??= encodeDataMessage(this.source, this.payload);
    return this.jsonFrame;
  }

  /** The frame for plain WebSocket clients: text for json/text, binary for binary. */
  raw(): string | Buffer {
    const p = this.payload;
    return p.dataType === "json" ? p.json : p.dataType === "text" ? p.text : p.bytes;
  }
}

function encodeData(payload: Payload): string {
  switch (payload.dataType) {
    case "json":
      return payload.json;
    case "text":
      return JSON.stringify(payload.text);
    case "binary":
      return JSON.stringify(payload.bytes.toString("base64"));
  }
}

export function encodeDataMessage(source: MessageSource, payload: Payload): string {
  let head = `{"type":"message","from":"${source.from}"`;
  if (source.from === "group") {
    if (source.fromUserId !== undefined) head += `,"fromUserId":${JSON.stringify(source.fromUserId)}`;
    head += `,"group":${JSON.stringify(source.group)}`;
  }
  return `${head},"dataType":"${payload.dataType}","data":${encodeData(payload)}}`;
}

/** Adds the reliable protocol's sequenceId to a frame built by {@link encodeDataMessage}. */
export function withSequenceId(frame: string, sequenceId: number): string {
  return `${frame.slice(0, -1)},"sequenceId":${sequenceId}}`;
}

export function connectedMessage(connectionId: string, userId: string | undefined, reconnectionToken?: string): string {
  return JSON.stringify({ type: "system", event: "connected", userId: userId ?? null, connectionId, reconnectionToken });
}

export function disconnectedMessage(reason: string): string {
  return JSON.stringify({ type: "system", event: "disconnected", message: reason });
}

/** Error names the service uses in failed acks. */
export type AckErrorName = "Forbidden" | "Duplicate" | "BadRequest" | "InternalServerError";

export function ackMessage(ackId: number, error?: { name: AckErrorName; message: string }): string {
  return JSON.stringify(error ? { type: "ack", ackId, success: false, error } : { type: "ack", ackId, success: true });
}

export function invokeResponseMessage(
  invocationId: string,
  result: { payload?: Payload | undefined } | { error: { name: string; message: string } },
): string {
  if ("error" in result) {
    return JSON.stringify({ type: "invokeResponse", invocationId, success: false, error: result.error });
  }
  const head = `{"type":"invokeResponse","invocationId":${JSON.stringify(invocationId)},"success":true`;
  if (!result.payload) return `${head}}`;
  return `${head},"dataType":"${result.payload.dataType}","data":${encodeData(result.payload)}}`;
}

export const pongMessage = '{"type":"pong"}';

/** A client-to-service message of the JSON subprotocols, validated. */
export type ClientMessage =
  | { type: "joinGroup" | "leaveGroup"; group: string; ackId?: number | undefined }
  | { type: "sendToGroup"; group: string; payload: Payload; noEcho: boolean; ackId?: number | undefined }
  | { type: "event"; event: string; payload: Payload; ackId?: number | undefined }
  | { type: "invoke"; invocationId: string; event: string; payload?: Payload | undefined }
  | { type: "sequenceAck"; sequenceId: number }
  | { type: "ping" }
  | { type: "cancelInvocation"; invocationId: string };

/** A message that could not be understood; `ackId` lets the service answer with a failed ack. */
export class ClientMessageError extends Error {
  constructor(
    message: string,
    readonly ackId?: number,
    readonly invocationId?: string,
  ) {
    super(message);
    this.name = "ClientMessageError";
  }
}

export function parseClientMessage(text: string): ClientMessage {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new ClientMessageError("message is not valid JSON");
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new ClientMessageError("message must be a JSON object");
  }
  const m = value as Record<string, unknown>;
  const ackId = m["ackId"];
  if (ackId !== undefined && ackId !== null && !(typeof ackId === "number" && Number.isSafeInteger(ackId) && ackId >= 0)) {
    throw new ClientMessageError("ackId must be a non-negative integer");
  }
  const validAckId = typeof ackId === "number" ? ackId : undefined;
  const fail = (message: string): never => {
    throw new ClientMessageError(message, validAckId);
  };
  const str = (key: string): string => {
    const v = m[key];
    if (typeof v !== "string" || v.length === 0) fail(`'${key}' must be a non-empty string`);
    return v as string;
  };

  switch (m["type"]) {
    case "joinGroup":
    case "leaveGroup":
      return { type: m["type"], group: str("group"), ackId: validAckId };
    case "sendToGroup":
      return {
        type: "sendToGroup",
        group: str("group"),
        payload: parsePayload(m["dataType"], m["data"], fail),
        noEcho: m["noEcho"] === true,
        ackId: validAckId,
      };
    case "event":
      return { type: "event", event: str("event"), payload: parsePayload(m["dataType"], m["data"], fail), ackId: validAckId };
    case "invoke": {
      const invocationId = m["invocationId"];
      if (typeof invocationId !== "string" || invocationId.length === 0) throw new ClientMessageError("'invocationId' must be a non-empty string");
      const failInvoke = (message: string): never => {
        throw new ClientMessageError(message, undefined, invocationId);
      };
      if (m["target"] !== "event") failInvoke(`invoke target ${JSON.stringify(m["target"])} is not supported (only "event")`);
      const event = m["event"];
      if (typeof event !== "string" || event.length === 0) failInvoke("'event' must be a non-empty string");
      const payload = m["dataType"] === undefined ? undefined : parsePayload(m["dataType"], m["data"], failInvoke);
      return { type: "invoke", invocationId, event: event as string, payload };
    }
    case "sequenceAck": {
      const sequenceId = m["sequenceId"];
      if (typeof sequenceId !== "number" || !Number.isSafeInteger(sequenceId) || sequenceId < 0) {
        throw new ClientMessageError("'sequenceId' must be a non-negative integer");
      }
      return { type: "sequenceAck", sequenceId };
    }
    case "ping":
      return { type: "ping" };
    case "cancelInvocation":
      return { type: "cancelInvocation", invocationId: str("invocationId") };
    default:
      return fail(`message type ${JSON.stringify(m["type"])} is not supported by this emulator`);
  }
}

function parsePayload(dataType: unknown, data: unknown, fail: (message: string) => never): Payload {
  switch (dataType) {
    case "json":
      if (data === undefined) return fail("'data' is required");
      return { dataType: "json", json: JSON.stringify(data) };
    case "text":
      if (typeof data !== "string") return fail("'data' must be a string when dataType is text");
      return { dataType: "text", text: data };
    case "binary":
      if (typeof data !== "string" || !/^[A-Za-z0-9+/]*={0,2}$/.test(data)) {
        return fail("'data' must be base64 when dataType is binary");
      }
      return { dataType: "binary", bytes: Buffer.from(data, "base64") };
    default:
      return fail(`dataType ${JSON.stringify(dataType)} is not supported (json, text, binary)`);
  }
}
