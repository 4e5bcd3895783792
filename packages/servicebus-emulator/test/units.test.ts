/**
 * The Service Bus emulator's parts that need no socket: entity declarations and their file, CLI
 * arguments, SAS token checks, and session locks in a message store (on fake timers).
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, describe, expect, it, vi } from "vitest";
import { parseCli, parseDuration, UsageError } from "../src/cli.js";
import { loadEntitiesFile, validateEntities } from "../src/index.js";
import { memoryJournal } from "../src/journal.js";
import { parseMessage } from "../src/message-codec.js";
import { MessageStore, SessionCannotBeLockedError, SessionLockLostError, type SessionLock } from "../src/message-store.js";
import { rhea } from "../src/rhea-internals.js";
import { audiencePath, signSasToken, verifySasToken } from "../src/sas.js";

const dir = mkdtempSync(join(tmpdir(), "sb-units-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function file(name: string, content: string): string {
  const path = join(dir, name);
  writeFileSync(path, content);
  return path;
}

describe("entity declarations", () => {
  it("loads queues and topics from a JSON file", () => {
    const path = file(
      "entities.json",
      JSON.stringify({
        queues: [{ name: "jobs", maxDeliveryCount: 5, lockDurationMs: 30_000 }],
        topics: [{ name: "events", subscriptions: [{ name: "audit" }] }],
      }),
    );
    expect(loadEntitiesFile(path)).toEqual({
      queues: [{ name: "jobs", maxDeliveryCount: 5, lockDurationMs: 30_000 }],
      topics: [{ name: "events", subscriptions: [{ name: "audit" }] }],
    });
  });

  it("names the file and the problem when the file is wrong", () => {
    expect(() => loadEntitiesFile(join(dir, "missing.json"))).toThrow(/cannot read the entities file .*missing\.json/);
    expect(() => loadEntitiesFile(file("array.json", "[]"))).toThrow(/must hold an object/);
    expect(() => loadEntitiesFile(file("bad.json", '{"queues":[{"name":"jobs","maxDeliveryCount":0}]}'))).toThrow(
      /bad\.json: queue "jobs": maxDeliveryCount must be a positive integer, got 0/,
    );
  });

  it("rejects invalid names and names used twice, case-insensitively", () => {
    expect(() => validateEntities({ queues: [{ name: "jobs" }, { name: "JOBS" }] })).toThrow(/"JOBS" is declared twice/);
    expect(() => validateEntities({ queues: [{ name: "jobs" }], topics: [{ name: "jobs", subscriptions: [] }] })).toThrow(
      /declared twice/,
    );
    expect(() => validateEntities({ queues: [{ name: "bad name" }] })).toThrow(/Service Bus entity name/);
    expect(() => validateEntities({ topics: [{ name: "t", subscriptions: [{ name: "s" }, { name: "S" }] }] })).toThrow(
      /subscription "S" is declared twice/,
    );
    expect(() => validateEntities({ queues: [{ name: "q", requiresDuplicateDetection: "yes" as unknown as boolean }] })).toThrow(
      /requiresDuplicateDetection must be true or false/,
    );
    expect(() => validateEntities({ topics: [{ name: "t", subscriptions: [{ name: "s", requiresSession: 1 as unknown as boolean }] }] })).toThrow(
      /subscription "t\/s": requiresSession must be true or false/,
    );
  });
});

describe("CLI arguments", () => {
  it("builds queues from --queue with the shared options, plus the entities file", () => {
    const entities = file("cli.json", JSON.stringify({ topics: [{ name: "events", subscriptions: [{ name: "audit" }] }] }));
    const config = parseCli([
      "--queue", "jobs", "--queue", "mail", "--session-queue", "orders", "--max-delivery-count", "5", "--lock-duration", "30s",
      "--entities", entities, "--port", "5672", "--data-dir", "data", "--key", "k",
    ]);
    expect(config).toMatchObject({
      port: 5672,
      host: "127.0.0.1",
      queues: [
        { name: "jobs", maxDeliveryCount: 5, lockDurationMs: 30_000 },
        { name: "mail", maxDeliveryCount: 5, lockDurationMs: 30_000 },
        { name: "orders", requiresSession: true, maxDeliveryCount: 5, lockDurationMs: 30_000 },
      ],
      topics: [{ name: "events" }],
      dataDir: "data",
      key: "k",
    });
  });

  it("refuses bad input with a usage error that says what is wrong", () => {
    expect(() => parseCli([])).toThrow(UsageError);
    expect(() => parseCli([])).toThrow(/at least one entity/);
    expect(() => parseCli(["--queue", "jobs", "--port", "70000"])).toThrow(/--port must be from 0 to 65535/);
    expect(() => parseCli(["--queue", "jobs", "--max-delivery-count", "x"])).toThrow(/--max-delivery-count must be an integer/);
    expect(() => parseCli(["--queue", "jobs", "--nope"])).toThrow(UsageError);
    expect(() => parseCli(["--queue", "jobs", "extra"])).toThrow(UsageError);
  });

  it("reads durations in ms, s and m", () => {
    expect(parseDuration("500ms", "--d")).toBe(500);
    expect(parseDuration("30s", "--d")).toBe(30_000);
    expect(parseDuration("2m", "--d")).toBe(120_000);
    expect(parseDuration("750", "--d")).toBe(750);
    expect(() => parseDuration("0s", "--d")).toThrow(/positive/);
    expect(() => parseDuration("1h", "--d")).toThrow(/duration like/);
  });
});

describe("SAS tokens", () => {
  const audience = "sb://127.0.0.1:5672/jobs";
  const inAnHour = Math.floor(Date.now() / 1000) + 3600;

  it("accepts a token signed with the key and reports its audience", () => {
    expect(verifySasToken(signSasToken(audience, "Root", "secret", inAnHour), "Root", "secret", Date.now())).toEqual({
      valid: true,
      audience,
    });
  });

  it("refuses a wrong key, another key name, an expired token and garbage", () => {
    const now = Date.now();
    expect(verifySasToken(signSasToken(audience, "Root", "other", inAnHour), "Root", "secret", now)).toMatchObject({ valid: false });
    expect(verifySasToken(signSasToken(audience, "Other", "secret", inAnHour), "Root", "secret", now)).toMatchObject({ valid: false });
    const expired = signSasToken(audience, "Root", "secret", Math.floor(now / 1000) - 1);
    expect(verifySasToken(expired, "Root", "secret", now)).toEqual({ valid: false, reason: "The token has expired." });
    expect(verifySasToken("Bearer abc", "Root", "secret", now)).toMatchObject({ valid: false });
    expect(verifySasToken(undefined, "Root", "secret", now)).toMatchObject({ valid: false });
  });

  it("maps audiences to lower-case entity paths", () => {
    expect(audiencePath("sb://127.0.0.1:5672/Jobs/$management")).toBe("jobs/$management");
    expect(audiencePath("sb://127.0.0.1:5672/")).toBe("");
  });
});

describe("session locks in a message store", () => {
  const settings = { maxDeliveryCount: 10, lockDurationMs: 500, defaultMessageTtlMs: undefined, deadLetteringOnMessageExpiration: false, requiresSession: true };
  const message = (sessionId: string, body: string) => parseMessage(Buffer.from(rhea.message.encode({ body, group_id: sessionId })));

  afterEach(() => {
    vi.useRealTimers();
  });

  it("holds a lock for the lock duration from its last renewal, then loses it and counts the unsettled message", () => {
    vi.useFakeTimers({ now: 0 });
    const store = new MessageStore("orders", settings, memoryJournal, new MessageStore("orders/$deadletterqueue", { ...settings, requiresSession: false }, memoryJournal));
    store.enqueue(message("a", "a1"), 0);
    let lost = 0;
    const lock = store.lockSession("a", 0, () => lost++);
    const acquired = store.acquire(true, 0, lock);
    expect(acquired?.message.deliveryCount).toBe(0);
    vi.advanceTimersByTime(300);
    expect(store.renewSessionLock("a", Date.now())).toBe(800);
    vi.advanceTimersByTime(450); // past the first expiry (500), within the renewed one (800)
    expect(lost).toBe(0);
    expect(store.isLocked(acquired?.lockToken as string)).toBe(true);
    vi.advanceTimersByTime(100);
    expect(lost).toBe(1);
    expect(store.isLocked(acquired?.lockToken as string)).toBe(false);
    expect(() => store.renewSessionLock("a", Date.now())).toThrow(SessionLockLostError);
    const next = store.lockNextSession(Date.now(), () => {});
    expect(next?.sessionId).toBe("a");
    expect(store.acquire(true, Date.now(), next)?.message.deliveryCount).toBe(1);
    store.close();
  });

  it("offers the first unlocked session with an available message as the next session", () => {
    const store = new MessageStore("orders", settings, memoryJournal);
    expect(store.lockNextSession(0, () => {})).toBeUndefined();
    store.enqueue(message("a", "a1"), 0);
    store.enqueue(message("b", "b1"), 0);
    const a = store.lockNextSession(0, () => {});
    expect(a?.sessionId).toBe("a");
    const deferred = store.acquire(true, 0, a);
    store.defer(deferred?.lockToken as string, 0); // a's only message is deferred now: a offers nothing
    store.releaseSession(a as SessionLock, 0);
    expect(store.lockNextSession(0, () => {})?.sessionId).toBe("b");
    expect(store.lockNextSession(0, () => {})).toBeUndefined();
    expect(() => store.lockSession("b", 0, () => {})).toThrow(SessionCannotBeLockedError);
    store.close();
  });
});
