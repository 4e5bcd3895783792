/**
 * `npm run emulator:servicebus -- --queue jobs [--session-queue orders] [--port 5672]
 *  [--max-delivery-count 5] [--lock-duration 30s] [--entities entities.json] [--data-dir dir]
 *  [--key K] [--key-name N]`
 *
 * Prints one line, `SERVICEBUS_CONNECTION_STRING=<connection string>`, on stdout once it accepts
 * connections; diagnostics go to stderr. SIGINT/SIGTERM stop it cleanly (exit 0). Bad arguments
 * exit 2 with a message that says what is wrong.
 */
import { parseArgs } from "node:util";
import { loadEntitiesFile, startServiceBusEmulator, type QueueOptions, type TopicOptions } from "./index.js";

const USAGE = `usage: emulator:servicebus [--port N] [--host H] [--queue NAME]... [--session-queue NAME]...
       [--max-delivery-count N] [--lock-duration 30s|500ms|1m] [--entities FILE.json] [--data-dir DIR]
       [--key KEY] [--key-name NAME] [--max-message-size BYTES]
--session-queue declares a session-enabled queue. --max-delivery-count and --lock-duration apply
to the queues named with --queue and --session-queue.`;

export class UsageError extends Error {}

/** "500ms", "30s", "2m" or a bare number of milliseconds. */
export function parseDuration(raw: string, flag: string): number {
  const match = /^(\d+)(ms|s|m)?$/.exec(raw.trim());
  if (!match) throw new UsageError(`${flag} must be a duration like 500ms, 30s or 1m, got "${raw}"`);
  const value = Number(match[1]) * ({ ms: 1, s: 1000, m: 60_000 } as const)[(match[2] ?? "ms") as "ms" | "s" | "m"];
  if (value < 1 || !Number.isSafeInteger(value)) throw new UsageError(`${flag} must be positive, got "${raw}"`);
  return value;
}

function parseInteger(raw: string, flag: string, min: number, max: number): number {
  if (!/^\d+$/.test(raw)) throw new UsageError(`${flag} must be an integer, got "${raw}"`);
  const value = Number(raw);
  if (value < min || value > max) throw new UsageError(`${flag} must be from ${min} to ${max}, got ${raw}`);
  return value;
}

export interface CliConfig {
  port: number;
  host: string;
  queues: QueueOptions[];
  topics: TopicOptions[];
  dataDir?: string;
  key?: string;
  keyName?: string;
  maxMessageSizeBytes?: number;
}

export function parseCli(argv: string[]): CliConfig {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        port: { type: "string" },
        host: { type: "string" },
        queue: { type: "string", multiple: true },
        "session-queue": { type: "string", multiple: true },
        "max-delivery-count": { type: "string" },
        "lock-duration": { type: "string" },
        entities: { type: "string" },
        "data-dir": { type: "string" },
        key: { type: "string" },
        "key-name": { type: "string" },
        "max-message-size": { type: "string" },
        help: { type: "boolean" },
      },
    });
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  const v = parsed.values;
  if (v.help) throw new UsageError("");
  const named = [...(v.queue ?? []).map((name) => ({ name })), ...(v["session-queue"] ?? []).map((name) => ({ name, requiresSession: true }))];
  const fromFlags: QueueOptions[] = named.map((queue) => ({
    ...queue,
    ...(v["max-delivery-count"] !== undefined
      ? { maxDeliveryCount: parseInteger(v["max-delivery-count"], "--max-delivery-count", 1, 2000) }
      : {}),
    ...(v["lock-duration"] !== undefined ? { lockDurationMs: parseDuration(v["lock-duration"], "--lock-duration") } : {}),
  }));
  let fromFile: { queues: QueueOptions[]; topics: TopicOptions[] } = { queues: [], topics: [] };
  if (v.entities !== undefined) {
    try {
      fromFile = loadEntitiesFile(v.entities);
    } catch (error) {
      throw new UsageError((error as Error).message);
    }
  }
  const config: CliConfig = {
    port: v.port === undefined ? 0 : parseInteger(v.port, "--port", 0, 65535),
    host: v.host ?? "127.0.0.1",
    queues: [...fromFile.queues, ...fromFlags],
    topics: fromFile.topics,
  };
  if (config.queues.length === 0 && config.topics.length === 0) {
    throw new UsageError("declare at least one entity with --queue NAME, --session-queue NAME or --entities FILE");
  }
  if (v["data-dir"] !== undefined) config.dataDir = v["data-dir"];
  if (v.key !== undefined) config.key = v.key;
  if (v["key-name"] !== undefined) config.keyName = v["key-name"];
  if (v["max-message-size"] !== undefined) {
    config.maxMessageSizeBytes = parseInteger(v["max-message-size"], "--max-message-size", 1024, 100 * 1024 * 1024);
  }
  return config;
}

async function main(): Promise<void> {
  let config: CliConfig;
  try {
    config = parseCli(process.argv.slice(2));
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    if (error.message) process.stderr.write(`emulator:servicebus: ${error.message}\n`);
    process.stderr.write(`${USAGE}\n`);
    process.exit(2);
  }
  const log = (line: string) => process.stderr.write(`servicebus emulator: ${line}\n`);
  let emulator;
  try {
    emulator = await startServiceBusEmulator({ ...config, log });
  } catch (error) {
    // Entity validation errors are bad input too; a port in use is not.
    const message = (error as Error).message;
    process.stderr.write(`emulator:servicebus: ${message}\n`);
    process.exit((error as NodeJS.ErrnoException).code === undefined ? 2 : 1);
  }
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log(`${signal}: stopping`);
    emulator.stop().then(
      () => process.exit(0),
      (error: unknown) => {
        log(`stop failed: ${(error as Error).message}`);
        process.exit(1);
      },
    );
  };
  process.on("SIGINT", () => stop("SIGINT"));
  process.on("SIGTERM", () => stop("SIGTERM"));
  // Announce readiness only once a signal can stop the emulator cleanly.
  const names = [...config.queues.map((q) => q.name), ...config.topics.map((t) => t.name)].join(", ");
  log(`listening on ${config.host}:${emulator.port} (${names})${config.dataDir ? `, data in ${config.dataDir}` : ", in memory"}`);
  process.stdout.write(`SERVICEBUS_CONNECTION_STRING=${emulator.connectionString}\n`);
}

if (require.main === module) {
  void main();
}
