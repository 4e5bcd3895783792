/**
 * Throughput of the local Service Bus emulator through the real SDK: batched sends, then
 * receiveMessages in batches of 100 with a completion per message (the completions of one batch in
 * flight while the next is received, as a handler loop does).
 *
 * Three set-ups: the emulator in the client's process (library use, as in tests), in its own
 * process (the CLI, as the local platform runs it), and in its own process with a data directory
 * (journal with group commit and fdatasync). Each runs a warm-up round (JIT) and then measured
 * rounds; the median round is reported.
 *
 * `npm run bench:emulators` (from the repository root) or `npx tsx bench/throughput.ts [messagesPerRound]` (here) prints the figures; benchServiceBus() returns them.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { cpus, loadavg, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { ServiceBusClient, type ServiceBusMessage } from "@azure/service-bus";
import { startServiceBusEmulator } from "../src/index.js";

export interface ServiceBusRun {
  setup: "in-process" | "own process" | "own process, durable";
  messages: number;
  bodyBytes: number;
  sendPerSecond: number;
  receiveCompletePerSecond: number;
  /** Messages sent, received and completed per second of the whole round. */
  endToEndPerSecond: number;
  /** The client process's CPU time per message, in microseconds (includes the emulator when in-process). */
  clientCpuMicrosPerMessage: number;
  /** The emulator process's CPU time per message, in microseconds (own-process set-ups, Linux only). */
  emulatorCpuMicrosPerMessage?: number;
}

export interface ServiceBusFigures {
  goalPerSecond: number;
  cores: number;
  loadAverage: number;
  runs: ServiceBusRun[];
}

const GOAL_PER_SECOND = 5_000;
const MEASURED_ROUNDS = 3;
const packageDir = resolve(__dirname, "..");

/** User + system CPU time of another process in microseconds, from /proc (Linux). */
function processCpuMicros(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined;
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]?.split(" ") ?? [];
    const ticks = Number(fields[11]) + Number(fields[12]);
    return Number.isFinite(ticks) ? (ticks * 1_000_000) / CLOCK_TICKS_PER_SECOND : undefined;
  } catch {
    return undefined;
  }
}
const CLOCK_TICKS_PER_SECOND = 100;

async function round(connectionString: string, messages: number, bodyBytes: number, emulatorPid?: number) {
  const client = new ServiceBusClient(connectionString);
  try {
    const sender = client.createSender("bench");
    const receiver = client.createReceiver("bench", { maxAutoLockRenewalDurationInMs: 0 });
    const body = { payload: "x".repeat(bodyBytes) };
    await sender.sendMessages({ body }); // links and tokens out of the measurement
    for (const m of await receiver.receiveMessages(1, { maxWaitTimeInMs: 2_000 })) await receiver.completeMessage(m);

    const started = performance.now();
    const cpuAtStart = process.cpuUsage();
    const emulatorCpuAtStart = processCpuMicros(emulatorPid);
    const sends: Array<Promise<void>> = [];
    let batch = await sender.createMessageBatch();
    for (let i = 0; i < messages; i++) {
      const message: ServiceBusMessage = { body, messageId: `m-${i}` };
      if (!batch.tryAddMessage(message)) {
        sends.push(sender.sendMessages(batch));
        batch = await sender.createMessageBatch();
        batch.tryAddMessage(message);
      }
    }
    sends.push(sender.sendMessages(batch));
    await Promise.all(sends);
    const sent = performance.now();

    let received = 0;
    let completing: Promise<unknown> = Promise.resolve();
    while (received < messages) {
      const got = await receiver.receiveMessages(Math.min(100, messages - received), { maxWaitTimeInMs: 5_000 });
      if (got.length === 0) throw new Error(`receive stalled after ${received} of ${messages} messages`);
      await completing;
      completing = Promise.all(got.map((m) => receiver.completeMessage(m)));
      received += got.length;
    }
    await completing;
    const done = performance.now();
    const cpu = process.cpuUsage(cpuAtStart);
    const emulatorCpuAtEnd = processCpuMicros(emulatorPid);
    const perSecond = (count: number, ms: number) => Math.round((count * 1000) / ms);
    return {
      sendPerSecond: perSecond(messages, sent - started),
      receiveCompletePerSecond: perSecond(messages, done - sent),
      endToEndPerSecond: perSecond(messages, done - started),
      clientCpuMicrosPerMessage: Math.round((cpu.user + cpu.system) / messages),
      ...(emulatorCpuAtStart !== undefined && emulatorCpuAtEnd !== undefined
        ? { emulatorCpuMicrosPerMessage: Math.round((emulatorCpuAtEnd - emulatorCpuAtStart) / messages) }
        : {}),
    };
  } finally {
    await client.close();
  }
}

/** Starts the CLI in its own process and resolves with its connection string. */
function startChild(dataDir: string | undefined): Promise<{ child: ChildProcess; connectionString: string }> {
  const args = ["--import", "tsx", "src/cli.ts", "--queue", "bench", ...(dataDir ? ["--data-dir", dataDir] : [])];
  const child = spawn(process.execPath, args, { cwd: packageDir, stdio: ["ignore", "pipe", "pipe"] });
  return new Promise((resolvePromise, reject) => {
    let out = "";
    let err = "";
    child.stderr?.on("data", (d: Buffer) => (err += d.toString()));
    child.stdout?.on("data", (d: Buffer) => {
      out += d.toString();
      const match = /^SERVICEBUS_CONNECTION_STRING=(.+)$/m.exec(out);
      if (match?.[1]) resolvePromise({ child, connectionString: match[1] });
    });
    child.once("exit", (code) => reject(new Error(`the emulator exited (${code}): ${err}`)));
  });
}

async function measure(setup: ServiceBusRun["setup"], messages: number, bodyBytes: number): Promise<ServiceBusRun> {
  const dataDir = setup === "own process, durable" ? mkdtempSync(join(tmpdir(), "sb-bench-")) : undefined;
  let stop: () => Promise<void>;
  let connectionString: string;
  let emulatorPid: number | undefined;
  if (setup === "in-process") {
    const emulator = await startServiceBusEmulator({ queues: [{ name: "bench" }] });
    connectionString = emulator.connectionString;
    stop = () => emulator.stop();
  } else {
    const started = await startChild(dataDir);
    connectionString = started.connectionString;
    emulatorPid = started.child.pid;
    stop = () =>
      new Promise<void>((done) => {
        started.child.removeAllListeners("exit");
        started.child.once("exit", () => done());
        started.child.kill("SIGTERM");
      });
  }
  try {
    await round(connectionString, messages, bodyBytes, emulatorPid); // warm-up: JIT on both sides
    const rounds = [];
    for (let i = 0; i < MEASURED_ROUNDS; i++) rounds.push(await round(connectionString, messages, bodyBytes, emulatorPid));
    rounds.sort((a, b) => a.endToEndPerSecond - b.endToEndPerSecond);
    const median = rounds[Math.floor(rounds.length / 2)] as (typeof rounds)[number];
    return { setup, messages, bodyBytes, ...median };
  } finally {
    await stop();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  }
}

export async function benchServiceBus(messages = 5_000, bodyBytes = 256): Promise<ServiceBusFigures> {
  const runs: ServiceBusRun[] = [];
  for (const setup of ["in-process", "own process", "own process, durable"] as const) {
    runs.push(await measure(setup, messages, bodyBytes));
  }
  return { goalPerSecond: GOAL_PER_SECOND, cores: cpus().length, loadAverage: Number(loadavg()[0]?.toFixed(1)), runs };
}

export function printServiceBusFigures(figures: ServiceBusFigures): void {
  console.log(
    `Service Bus emulator through @azure/service-bus: goal ${figures.goalPerSecond} messages/s end to end ` +
      `(${figures.cores} cores, load average ${figures.loadAverage}: other work shares the machine)`,
  );
  for (const r of figures.runs) {
    const verdict = r.endToEndPerSecond >= figures.goalPerSecond ? "meets goal" : "below goal";
    console.log(
      `  ${r.setup.padEnd(21)} ${r.messages} x ${r.bodyBytes} B, median of ${MEASURED_ROUNDS}: ` +
        `send ${r.sendPerSecond}/s, receive+complete ${r.receiveCompletePerSecond}/s, ` +
        `end to end ${r.endToEndPerSecond}/s (${verdict}); CPU per message: client ${r.clientCpuMicrosPerMessage} µs` +
        (r.emulatorCpuMicrosPerMessage !== undefined ? `, emulator ${r.emulatorCpuMicrosPerMessage} µs` : " (with the emulator)"),
    );
  }
}

if (require.main === module) {
  const count = Number(process.argv[2] ?? 5_000);
  benchServiceBus(count).then(printServiceBusFigures, (error: unknown) => {
    console.error(error);
    process.exit(1);
  });
}
