/**
 * The parts of rhea's internals the emulator relies on, typed in one place.
 *
 * rhea is a good AMQP 1.0 framer (SASL, open/begin/attach/detach, session flow) but a poor broker:
 * its sender does not track credit the way a broker must, echoes drain only while credit is left,
 * and frees deliveries strictly in order once both sides settled, which never happens under
 * rcv-settle-mode=second. So the emulator writes transfer, flow and disposition frames itself and
 * takes over the per-session transfer and disposition handlers. Everything it touches is listed
 * here, so a rhea upgrade that changes one of them fails in one obvious place (the contract tests
 * run the real SDK through all of it).
 */
import * as rhea from "rhea";
import type { Reader, Writer } from "rhea/typings/types";

/** rhea's frame constructors (not exported from the package root). */
interface FramesModule {
  transfer(fields: {
    handle: number;
    delivery_id: number;
    delivery_tag: Buffer;
    message_format: number;
    settled: boolean;
    more: boolean;
  }): unknown;
  flow(fields: Record<string, unknown>): unknown;
  disposition(fields: { role: boolean; first: number; last: number; settled: boolean; state: unknown }): unknown;
  amqp_frame(channel: number | undefined, performative: unknown, payload: Buffer | undefined): unknown;
  write_frame(frame: unknown): Buffer;
}
// eslint-disable-next-line @typescript-eslint/no-require-imports -- rhea ships no typings for this module
export const frames = require("rhea/lib/frames.js") as FramesModule;

export interface Performative {
  [field: string]: unknown;
}
export interface Frame {
  performative: Performative;
  payload?: Buffer;
}

/** The session fields the emulator reads or advances to keep rhea's session flow control right. */
export interface RheaSession {
  connection: RheaConnection;
  outgoing: {
    next_delivery_id: number;
    next_pending_delivery: number;
    next_transfer_id: number;
    remote_next_transfer_id: number | undefined;
    remote_window: number | undefined;
    window: number;
  };
  incoming: { next_transfer_id: number; readonly window: number };
  on_transfer(frame: Frame): void;
  on_disposition(frame: Frame): void;
  on_flow(frame: Frame): void;
  output(frame: unknown, payload?: Buffer): void;
  _get_link(frame: Frame): RheaLink;
  is_open(): boolean;
}

export interface RheaLink {
  name: string;
  session: RheaSession;
  connection: RheaConnection;
  credit: number;
  delivery_count: number;
  local: { handle: number; attach: Performative };
  remote: { attach?: Performative };
  is_open(): boolean;
  is_closed(): boolean;
  is_sender(): boolean;
  /** Sends the local attach (once; rhea marks a link opened when the peer's attach arrives). */
  open(): void;
  close(error?: { condition: string; description: string }): void;
  set_source(fields: Record<string, unknown>): void;
  set_target(fields: Record<string, unknown>): void;
  /** Receivers only: grant credit (rhea writes the flow frame). */
  flow?(credit: number): void;
}

export interface RheaConnection {
  readonly max_frame_size: number | undefined;
  /** The client's open frame: its hostname is the namespace name the client addresses. */
  remote: { open?: { hostname?: unknown } };
  close(error?: { condition: string; description: string }): void;
  is_open(): boolean;
  socket?: { destroy(): void };
}

/**
 * Makes a connection write its frames once per turn of the event loop, in one socket write,
 * instead of one socket write (and one heartbeat timer reset) per frame as rhea does: a completion
 * per message otherwise costs a system call and two timer operations each.
 *
 * Each frame is encoded when it is written, not when the batch goes out: rhea reuses and changes
 * some performatives right after writing them (it clears the connection's close error once the
 * close frame is written), so encoding later would send what they became, e.g. a close without its
 * `amqp:connection:forced` error, which a client takes for a clean close and never reconnects from.
 */
export function batchFrameWrites(connection: RheaConnection): void {
  const c = connection as unknown as {
    _write_frame(channel?: number, frame?: unknown, payload?: Buffer): void;
    amqp_transport?: { encode(frame: unknown): void; write(socket: unknown): void; pending: unknown[]; header_sent?: unknown };
    output(): void;
  };
  const transport = c.amqp_transport;
  if (!transport) return;
  const writeWithHeader = transport.write.bind(transport);
  transport.write = (socket: { write(data: Buffer): void }) => {
    if (!transport.header_sent) {
      // rhea's own write sends the protocol header; the frames follow in one write of ours.
      const queued = transport.pending;
      transport.pending = [];
      writeWithHeader(socket);
      transport.pending = queued;
    }
    const encoded = transport.pending.map((frame) => (Buffer.isBuffer(frame) ? frame : frames.write_frame(frame)));
    transport.pending = [];
    if (encoded.length > 0) socket.write(encoded.length === 1 ? (encoded[0] as Buffer) : Buffer.concat(encoded));
  };
  let scheduled = false;
  const flush = () => {
    scheduled = false;
    c.output();
  };
  c._write_frame = (channel, frame, payload) => {
    transport.encode(frames.write_frame(frames.amqp_frame(channel, frame, payload)));
    if (!scheduled) {
      scheduled = true;
      setImmediate(flush);
    }
  };
}

/**
 * Keeps rhea from answering a client's attach until `link.open()` is called: rhea marks a link
 * opened as the attach arrives, before the emulator's handler runs, and would send its own attach
 * at the next write. A request for the next available session waits this way for a session.
 */
export function holdAttach(link: RheaLink): void {
  const state = (link as unknown as { state: { local_open: boolean; open_requests: number } }).state;
  state.local_open = false;
  state.open_requests = 0;
}

export const types = rhea.types;
/** rhea's AMQP type codec classes (present at run time, missing from its `types` declaration). */
export const { Reader: AmqpReader, Writer: AmqpWriter } = rhea.types as unknown as {
  Reader: typeof Reader;
  Writer: typeof Writer;
};
export const message = rhea.message;
export const { string_to_uuid, uuid_to_string, generate_uuid } = rhea;
export { rhea };

interface OutcomeValue {
  described(): unknown;
}
/** Delivery-state constructors rhea defines at run time but does not declare. */
export const outcomes = rhea.message as unknown as {
  accepted(): OutcomeValue;
  rejected(fields: { error?: { condition: string; description?: string } }): OutcomeValue;
  modified(fields: Record<string, unknown>): OutcomeValue;
  released(): OutcomeValue;
  unwrap_outcome(state: unknown): object;
};

/** The name of the outcome a client sent in a disposition (accepted, rejected, modified, released). */
export function outcomeName(state: unknown): { name: string; fields: Record<string, unknown> } | undefined {
  if (!state) return undefined;
  const unwrapped = outcomes.unwrap_outcome(state);
  const ctor = unwrapped.constructor as { composite_type?: string };
  if (!ctor.composite_type) return undefined;
  return { name: ctor.composite_type, fields: unwrapped as Record<string, unknown> };
}
