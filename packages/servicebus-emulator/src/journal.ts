/**
 * Durability for the emulator: an append-only journal with group commit, compacted at start.
 *
 * Every change to a stored message is a record. Records appended while a write is in flight are
 * written together by the next write, followed by one fdatasync; callers learn through sync()
 * when their records are on disk and only then acknowledge the client. So a sender never sees
 * "accepted" for a message a kill -9 can lose, and a completion, once confirmed, stays done.
 * At start the journal is replayed, rewritten with only the live messages, and reopened.
 */
import { closeSync, existsSync, fdatasync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, write, writeSync } from "node:fs";
import { dirname, join } from "node:path";
import { decodeAnnotations, encodeAnnotations, type Annotations, type HeaderFields } from "./message-codec.js";

export type MessageState = "active" | "deferred" | "scheduled";

export interface PersistedMessage {
  seq: number;
  header: HeaderFields;
  annotations: Annotations;
  bare: Buffer;
  enqueuedAt: number;
  deliveryCount: number;
  state: MessageState;
  scheduledAt?: number;
  expiresAt?: number;
  messageId?: string;
  deadLetterSource?: string;
  sessionId?: string;
  /** It was scheduled: receivers see state "scheduled" even once it is active, as in Service Bus. */
  wasScheduled?: boolean;
}

/** What an update record changes besides the delivery count and the state. */
export interface MessageChanges {
  /** A scheduled message became active at this time... */
  enqueuedAt?: number;
  /** ...and its time to live counts from then. */
  expiresAt?: number;
  /** Application properties were modified (abandon or defer with properties to modify). */
  bare?: Buffer;
}

export type JournalRecord =
  | { kind: "enqueue"; store: string; message: PersistedMessage }
  | ({ kind: "update"; store: string; seq: number; deliveryCount: number; state: MessageState } & MessageChanges)
  | { kind: "remove"; store: string; seq: number }
  | { kind: "sequence"; store: string; next: number }
  /** A session's state (setSessionState); absent clears it. */
  | { kind: "session"; store: string; sessionId: string; state?: Buffer };

export interface Journal {
  /**
   * Where the live state comes from when the journal rewrites itself while running (the records
   * that would rebuild every store as it is now).
   */
  setSnapshotSource(source: () => Iterable<JournalRecord>): void;
  append(record: JournalRecord): void;
  /** Calls back once every record appended so far is durable (at once for the in-memory journal). */
  sync(done: (error?: Error) => void): void;
  close(): Promise<void>;
}

export interface RecoveredStore {
  /** Live messages in sequence order. */
  messages: PersistedMessage[];
  nextSeq: number;
  /** Session states by session id. */
  sessionStates: Map<string, Buffer>;
}

/** The journal used without a data directory: nothing to write, everything durable at once. */
export const memoryJournal: Journal = {
  setSnapshotSource() {},
  append() {},
  sync(done) {
    done();
  },
  async close() {},
};

interface Meta {
  k: "e" | "u" | "r" | "s" | "t";
  s: string;
  q: number;
  h?: HeaderFields;
  at?: number;
  dc?: number;
  st?: MessageState;
  sch?: number;
  exp?: number;
  mid?: string;
  dls?: string;
  sid?: string;
  ws?: boolean;
  /** Update: the bare message follows (modified application properties). */
  b?: boolean;
}

function encodeRecord(record: JournalRecord): Buffer {
  let meta: Meta;
  let annotations: Buffer = Buffer.alloc(0);
  let bare: Buffer = Buffer.alloc(0);
  switch (record.kind) {
    case "enqueue": {
      const m = record.message;
      meta = { k: "e", s: record.store, q: m.seq, h: m.header, at: m.enqueuedAt, dc: m.deliveryCount, st: m.state };
      if (m.scheduledAt !== undefined) meta.sch = m.scheduledAt;
      if (m.expiresAt !== undefined) meta.exp = m.expiresAt;
      if (m.messageId !== undefined) meta.mid = m.messageId;
      if (m.deadLetterSource !== undefined) meta.dls = m.deadLetterSource;
      if (m.sessionId !== undefined) meta.sid = m.sessionId;
      if (m.wasScheduled) meta.ws = true;
      annotations = encodeAnnotations(m.annotations);
      bare = m.bare;
      break;
    }
    case "update":
      meta = { k: "u", s: record.store, q: record.seq, dc: record.deliveryCount, st: record.state };
      if (record.enqueuedAt !== undefined) meta.at = record.enqueuedAt;
      if (record.expiresAt !== undefined) meta.exp = record.expiresAt;
      if (record.bare) {
        meta.b = true;
        bare = record.bare;
      }
      break;
    case "session":
      meta = { k: "t", s: record.store, q: 0, sid: record.sessionId };
      if (record.state) bare = record.state;
      break;
    case "remove":
      meta = { k: "r", s: record.store, q: record.seq };
      break;
    case "sequence":
      meta = { k: "s", s: record.store, q: record.next };
      break;
  }
  const metaBytes = Buffer.from(JSON.stringify(meta), "utf8");
  const head = Buffer.alloc(12);
  head.writeUInt32BE(8 + metaBytes.length + annotations.length + bare.length, 0);
  head.writeUInt32BE(metaBytes.length, 4);
  const annLength = Buffer.alloc(4);
  annLength.writeUInt32BE(annotations.length, 0);
  return Buffer.concat([head.subarray(0, 8), metaBytes, annLength, annotations, bare]);
}

/** Replays a journal file. A torn last record (killed mid-write) ends the replay. */
interface Replayed {
  stores: Map<string, Map<number, PersistedMessage>>;
  nextSeq: Map<string, number>;
  sessionStates: Map<string, Map<string, Buffer>>;
}

function replay(data: Buffer): Replayed {
  const stores = new Map<string, Map<number, PersistedMessage>>();
  const nextSeq = new Map<string, number>();
  const sessionStates = new Map<string, Map<string, Buffer>>();
  const storeOf = (name: string) => {
    let store = stores.get(name);
    if (!store) stores.set(name, (store = new Map()));
    return store;
  };
  let offset = 0;
  while (offset + 8 <= data.length) {
    const length = data.readUInt32BE(offset);
    const end = offset + 4 + length;
    if (end > data.length || length < 8) break;
    const metaLength = data.readUInt32BE(offset + 4);
    const metaEnd = offset + 8 + metaLength;
    if (metaEnd + 4 > end) break;
    let meta: Meta;
    try {
      meta = JSON.parse(data.toString("utf8", offset + 8, metaEnd)) as Meta;
    } catch {
      break;
    }
    const annLength = data.readUInt32BE(metaEnd);
    const annotations = data.subarray(metaEnd + 4, metaEnd + 4 + annLength);
    const bare = data.subarray(metaEnd + 4 + annLength, end);
    offset = end;
    const store = storeOf(meta.s);
    if (meta.k === "e") {
      const m: PersistedMessage = {
        seq: meta.q,
        header: meta.h ?? {},
        annotations: decodeAnnotations(Buffer.from(annotations)),
        bare: Buffer.from(bare),
        enqueuedAt: meta.at ?? 0,
        deliveryCount: meta.dc ?? 0,
        state: meta.st ?? "active",
      };
      if (meta.sch !== undefined) m.scheduledAt = meta.sch;
      if (meta.exp !== undefined) m.expiresAt = meta.exp;
      if (meta.mid !== undefined) m.messageId = meta.mid;
      if (meta.dls !== undefined) m.deadLetterSource = meta.dls;
      if (meta.sid !== undefined) m.sessionId = meta.sid;
      if (meta.ws) m.wasScheduled = true;
      store.set(m.seq, m);
      nextSeq.set(meta.s, Math.max(nextSeq.get(meta.s) ?? 1, m.seq + 1));
    } else if (meta.k === "u") {
      const m = store.get(meta.q);
      if (m) {
        m.deliveryCount = meta.dc ?? m.deliveryCount;
        m.state = meta.st ?? m.state;
        if (meta.at !== undefined) m.enqueuedAt = meta.at;
        if (meta.exp !== undefined) m.expiresAt = meta.exp;
        if (meta.b) m.bare = Buffer.from(bare);
      }
    } else if (meta.k === "r") {
      store.delete(meta.q);
    } else if (meta.k === "s") {
      nextSeq.set(meta.s, Math.max(nextSeq.get(meta.s) ?? 1, meta.q));
    } else if (meta.k === "t" && meta.sid !== undefined) {
      let states = sessionStates.get(meta.s);
      if (!states) sessionStates.set(meta.s, (states = new Map()));
      if (bare.length > 0) states.set(meta.sid, Buffer.from(bare));
      else states.delete(meta.sid);
    }
  }
  return { stores, nextSeq, sessionStates };
}

/** Rewrites `file` with `records` through a temporary file, durably; returns an append descriptor. */
function rewrite(file: string, records: Iterable<JournalRecord>): { fd: number; size: number } {
  const encoded: Buffer[] = [];
  for (const record of records) encoded.push(encodeRecord(record));
  const data = Buffer.concat(encoded);
  const temporary = `${file}.compacting`;
  const tmpFd = openSync(temporary, "w");
  try {
    writeSync(tmpFd, data);
    fsyncSync(tmpFd);
  } finally {
    closeSync(tmpFd);
  }
  renameSync(temporary, file);
  const dirFd = openSync(dirname(file), "r");
  try {
    fsyncSync(dirFd);
  } finally {
    closeSync(dirFd);
  }
  return { fd: openSync(file, "a"), size: data.length };
}

/** Journal size that makes a running emulator rewrite it with the live messages only. */
export const DEFAULT_COMPACTION_BYTES = 64 * 1024 * 1024;

class FileJournal implements Journal {
  private pending: Buffer[] = [];
  private waiting: Array<(error?: Error) => void> = [];
  private flushing = false;
  private closed = false;
  private snapshot: (() => Iterable<JournalRecord>) | undefined;
  /** Twice the live state at least, so a large live set does not rewrite the file on every write. */
  private nextCompactionAt: number;

  constructor(
    private fd: number,
    private readonly file: string,
    /** Bytes in the file; past compactAfterBytes the next flush rewrites it instead of appending. */
    private size: number,
    private readonly compactAfterBytes: number,
  ) {
    this.nextCompactionAt = Math.max(compactAfterBytes, size * 2);
  }

  setSnapshotSource(source: () => Iterable<JournalRecord>): void {
    this.snapshot = source;
  }

  append(record: JournalRecord): void {
    if (this.closed) return;
    this.pending.push(encodeRecord(record));
  }

  sync(done: (error?: Error) => void): void {
    if (this.closed) {
      done(new Error("the emulator is stopping"));
      return;
    }
    this.waiting.push(done);
    if (!this.flushing) this.flush();
  }

  private flush(): void {
    if (this.snapshot && this.size > this.nextCompactionAt) {
      this.compact();
      return;
    }
    const data = Buffer.concat(this.pending);
    const waiting = this.waiting;
    this.pending = [];
    this.waiting = [];
    this.size += data.length;
    this.flushing = true;
    const finish = (error?: Error | null) => {
      this.flushing = false;
      if (error) process.stderr.write(`servicebus emulator: journal write failed: ${error.message}\n`);
      for (const done of waiting) done(error ?? undefined);
      if (this.waiting.length > 0) this.flush();
    };
    const writeAll = (from: number) => {
      if (from >= data.length) {
        fdatasync(this.fd, finish);
        return;
      }
      write(this.fd, data, from, data.length - from, null, (error, written) => {
        if (error) finish(error);
        else writeAll(from + written);
      });
    };
    writeAll(0);
  }

  /**
   * Replaces the file with the live state. The state already includes every pending record, so
   * once the new file is on disk those records are durable too. Synchronous: the live set of a
   * local emulator is small, and nothing else may touch the stores meanwhile.
   */
  private compact(): void {
    const waiting = this.waiting;
    this.pending = [];
    this.waiting = [];
    let error: Error | undefined;
    try {
      const { fd, size } = rewrite(this.file, (this.snapshot as () => Iterable<JournalRecord>)());
      closeSync(this.fd);
      this.fd = fd;
      this.size = size;
      this.nextCompactionAt = Math.max(this.compactAfterBytes, size * 2);
    } catch (caught) {
      error = caught as Error;
      process.stderr.write(`servicebus emulator: journal compaction failed: ${error.message}\n`);
    }
    for (const done of waiting) done(error);
  }

  async close(): Promise<void> {
    // Flush whatever is still pending (a signal handler stops us while records wait).
    if (this.pending.length > 0 || this.flushing) {
      await new Promise<void>((resolve) => this.sync(() => resolve()));
    }
    this.closed = true;
    closeSync(this.fd);
  }
}

/**
 * Opens the journal in `dataDir`, returning what it held. The file is rewritten with the live
 * messages only (compaction), so it never grows past one run's worth of churn.
 */
export function openJournal(
  dataDir: string,
  compactAfterBytes = DEFAULT_COMPACTION_BYTES,
): { journal: Journal; recovered: Map<string, RecoveredStore> } {
  mkdirSync(dataDir, { recursive: true });
  const file = join(dataDir, "servicebus.journal");
  const { stores, nextSeq, sessionStates }: Replayed = existsSync(file)
    ? replay(readFileSync(file))
    : { stores: new Map(), nextSeq: new Map(), sessionStates: new Map() };
  const recovered = new Map<string, RecoveredStore>();
  for (const name of new Set([...stores.keys(), ...nextSeq.keys(), ...sessionStates.keys()])) {
    const messages = [...(stores.get(name)?.values() ?? [])].sort((a, b) => a.seq - b.seq);
    recovered.set(name, { messages, nextSeq: nextSeq.get(name) ?? 1, sessionStates: sessionStates.get(name) ?? new Map() });
  }
  const { fd, size } = rewrite(file, snapshotRecords(recovered));
  return { journal: new FileJournal(fd, file, size, compactAfterBytes), recovered };
}

/** The records that rebuild `stores` exactly (sequence counters first, then live messages). */
export function* snapshotRecords(stores: Map<string, RecoveredStore>): Iterable<JournalRecord> {
  for (const [store, state] of stores) {
    yield { kind: "sequence", store, next: state.nextSeq };
    for (const message of state.messages) yield { kind: "enqueue", store, message };
    for (const [sessionId, sessionState] of state.sessionStates) yield { kind: "session", store, sessionId, state: sessionState };
  }
}
