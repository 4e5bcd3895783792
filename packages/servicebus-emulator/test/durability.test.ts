/**
 * Durability and process behaviour of the Service Bus emulator CLI: accepted messages survive
 * kill -9 and a restart on the same port and data directory, the SDK reconnects by itself,
 * completed messages stay gone; signals stop it cleanly; bad arguments exit 2.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { appendFileSync, mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { ServiceBusClient, type ServiceBusReceivedMessage, type ServiceBusReceiver } from "@azure/service-bus";
import { afterAll, describe, expect, it } from "vitest";
import { startServiceBusEmulator } from "../src/index.js";
import { openJournal } from "../src/journal.js";

const packageDir = resolve(__dirname, "..");
const children = new Set<ChildProcess>();
const dirs: string[] = [];

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "sb-durability-"));
  dirs.push(dir);
  return dir;
}

interface Running {
  child: ChildProcess;
  connectionString: string;
  port: number;
  /** The exit code, or the signal that ended the process and what it wrote to stderr. */
  exited: Promise<number | string>;
}

/** Starts the CLI in its own process (node --import tsx, so a kill reaches the emulator itself). */
function startCli(args: string[]): Promise<Running> {
  const child = spawn(process.execPath, ["--import", "tsx", "src/cli.ts", ...args], {
    cwd: packageDir,
    stdio: ["ignore", "pipe", "pipe"],
  });
  children.add(child);
  let stderr = "";
  child.stderr?.on("data", (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | string>((done) =>
    child.once("exit", (code, signal) => {
      children.delete(child);
      done(code ?? `${signal}: ${stderr}`);
    }),
  );
  return new Promise((resolvePromise, reject) => {
    let out = "";
    child.stdout?.on("data", (d: Buffer) => {
      out += d.toString();
      const match = /^SERVICEBUS_CONNECTION_STRING=(.+)\n/m.exec(out);
      if (match?.[1]) {
        const port = Number(/sb:\/\/[^:]+:(\d+)/.exec(match[1])?.[1]);
        resolvePromise({ child, connectionString: match[1], port, exited });
      }
    });
    void exited.then((code) => reject(new Error(`the emulator exited before it was ready: ${code}`)));
  });
}

afterAll(() => {
  for (const child of children) child.kill("SIGKILL");
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

async function drain(receiver: ServiceBusReceiver, atLeast: number): Promise<ServiceBusReceivedMessage[]> {
  const received: ServiceBusReceivedMessage[] = [];
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline) {
    const got = await receiver.receiveMessages(100, { maxWaitTimeInMs: received.length >= atLeast ? 300 : 1_000 });
    received.push(...got);
    if (got.length === 0 && received.length >= atLeast) break;
  }
  return received;
}

describe("Service Bus emulator durability (--data-dir)", () => {
  it("loses nothing acknowledged across kill -9 and restart, and completed messages stay gone", async () => {
    const dataDir = tempDir();
    const base = ["--queue", "jobs", "--lock-duration", "30s", "--max-delivery-count", "5", "--data-dir", dataDir, "--key", "durable-key"];
    let running = await startCli(base);
    const port = running.port;
    const client = new ServiceBusClient(running.connectionString, {
      retryOptions: { maxRetries: 10, retryDelayInMs: 200, maxRetryDelayInMs: 1_000, timeoutInMs: 5_000 },
    });
    const sender = client.createSender("jobs");
    const ids = Array.from({ length: 120 }, (_, i) => `job-${i}`);
    await sender.sendMessages(ids.slice(0, 100).map((id) => ({ body: { id }, messageId: id })));
    for (const id of ids.slice(100)) await sender.sendMessages({ body: { id }, messageId: id });

    const receiver = client.createReceiver("jobs", { maxAutoLockRenewalDurationInMs: 0 });
    const firstPass = await receiver.receiveMessages(40, { maxWaitTimeInMs: 2_000 });
    expect(firstPass).toHaveLength(40);
    const completed = firstPass.slice(0, 30);
    for (const m of completed) await receiver.completeMessage(m);
    const deferred = firstPass[30] as ServiceBusReceivedMessage;
    await receiver.deferMessage(deferred);
    const deadLettered = firstPass[31] as ServiceBusReceivedMessage;
    await receiver.deadLetterMessage(deadLettered, { deadLetterReason: "Bad", deadLetterErrorDescription: "kept on disk" });
    // firstPass[32..39] stay locked: locks are not durable, so they come back after the crash.

    running.child.kill("SIGKILL");
    expect(await running.exited).toMatch(/^SIGKILL/);
    running = await startCli([...base, "--port", String(port)]);
    expect(running.port).toBe(port);

    // The same client reconnects by itself.
    const afterCrash = await drain(receiver, 88);
    const gone = new Set([...completed, deferred, deadLettered].map((m) => m.messageId));
    const expected = ids.filter((id) => !gone.has(id));
    expect(afterCrash.map((m) => m.messageId).sort()).toEqual([...expected].sort());
    expect(afterCrash.every((m) => m.body.id === m.messageId)).toBe(true);
    const [again] = await receiver.receiveDeferredMessages(deferred.sequenceNumber ? [deferred.sequenceNumber] : []);
    expect(again?.messageId).toBe(deferred.messageId);
    await receiver.completeMessage(again as ServiceBusReceivedMessage);
    const dlq = client.createReceiver("jobs", { subQueueType: "deadLetter", receiveMode: "receiveAndDelete" });
    const [dead] = await drain(dlq, 1);
    expect(dead).toMatchObject({ messageId: deadLettered.messageId, deadLetterReason: "Bad", deadLetterErrorDescription: "kept on disk" });

    for (const m of afterCrash.slice(0, 50)) await receiver.completeMessage(m);
    await sender.sendMessages({ body: { id: "after-restart" }, messageId: "after-restart" });
    running.child.kill("SIGKILL");
    await running.exited;
    running = await startCli([...base, "--port", String(port)]);

    const survivors = await drain(receiver, afterCrash.length - 50 + 1);
    expect(survivors.map((m) => m.messageId).sort()).toEqual(
      [...afterCrash.slice(50).map((m) => m.messageId), "after-restart"].sort(),
    );
    const sequenceNumbers = survivors.map((m) => m.sequenceNumber?.toNumber() ?? 0);
    expect(new Set(sequenceNumbers).size).toBe(sequenceNumbers.length);
    for (const m of survivors) await receiver.completeMessage(m);
    await client.close();

    running.child.kill("SIGTERM");
    expect(await running.exited).toBe(0);
    // Compaction at start keeps the journal to the live messages: it stays small.
    running = await startCli([...base, "--port", String(port)]);
    expect(statSync(join(dataDir, "servicebus.journal")).size).toBeLessThan(1_000);
    running.child.kill("SIGINT");
    expect(await running.exited).toBe(0);
  }, 60_000);

  it("rewrites its journal while running once it grows past the compaction size, and restarts from it", async () => {
    const dataDir = tempDir();
    const journalFile = join(dataDir, "servicebus.journal");
    const options = { queues: [{ name: "jobs" }], dataDir, journalCompactionBytes: 20_000 };
    let emulator = await startServiceBusEmulator(options);
    let client = new ServiceBusClient(emulator.connectionString);
    const sender = client.createSender("jobs");
    const receiver = client.createReceiver("jobs", { receiveMode: "receiveAndDelete" });
    let sizeAfterSends = 0;
    for (let round = 0; round < 5; round++) {
      await sender.sendMessages(Array.from({ length: 40 }, (_, i) => ({ body: "x".repeat(200), messageId: `r${round}-${i}` })));
      sizeAfterSends = Math.max(sizeAfterSends, statSync(journalFile).size);
      let received = 0;
      while (received < 40) received += (await receiver.receiveMessages(40 - received, { maxWaitTimeInMs: 2_000 })).length;
    }
    // 200 messages of about 450 journal bytes each went through; the file never held them all.
    expect(sizeAfterSends).toBeLessThan(40_000);
    await sender.sendMessages([{ body: "kept-1", messageId: "kept-1" }, { body: "kept-2", messageId: "kept-2" }]);
    await client.close();
    await emulator.stop();

    emulator = await startServiceBusEmulator(options);
    client = new ServiceBusClient(emulator.connectionString);
    const after = await client.createReceiver("jobs", { receiveMode: "receiveAndDelete" }).receiveMessages(3, { maxWaitTimeInMs: 1_000 });
    expect(after.map((m) => m.body)).toEqual(["kept-1", "kept-2"]);
    expect(after[0]?.sequenceNumber?.toNumber()).toBe(201);
    await client.close();
    await emulator.stop();
  });

  it("replays a journal whose last record was torn by a crash", () => {
    const dataDir = tempDir();
    const { journal } = openJournal(dataDir);
    const bare = Buffer.from("bare message bytes");
    journal.append({
      kind: "enqueue",
      store: "jobs",
      message: { seq: 1, header: {}, annotations: {}, bare, enqueuedAt: 1, deliveryCount: 0, state: "active", messageId: "a" },
    });
    return new Promise<void>((done, fail) =>
      journal.sync((error) => {
        if (error) return fail(error);
        void journal.close().then(() => {
          appendFileSync(join(dataDir, "servicebus.journal"), Buffer.from([0, 0, 1, 0, 0, 0, 0, 9, 123]));
          const reopened = openJournal(dataDir);
          const jobs = reopened.recovered.get("jobs");
          expect(jobs?.messages.map((m) => [m.seq, m.messageId, m.bare.toString()])).toEqual([[1, "a", "bare message bytes"]]);
          expect(jobs?.nextSeq).toBe(2);
          void reopened.journal.close().then(done, fail);
        });
      }),
    );
  });

  it("exits 2 with a message on bad arguments", async () => {
    const child = spawn(process.execPath, ["--import", "tsx", "src/cli.ts", "--queue", "jobs", "--lock-duration", "soon"], {
      cwd: packageDir,
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stderr = "";
    let stdout = "";
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    const code = await new Promise<number | null>((done) => child.once("exit", done));
    expect(code).toBe(2);
    expect(stderr).toContain("--lock-duration must be a duration like 500ms, 30s or 1m");
    expect(stdout).toBe("");
  });
});
