/**
 * `npm run emulator:webpubsub -- --port 7071 --hub jobs [--event-handler <url>] [--access-key K]`
 *
 * Prints exactly one line on stdout when ready, `WEBPUBSUB_CONNECTION_STRING=<...>`, and logs to
 * stderr. SIGINT/SIGTERM close every client with a close frame and exit 0. Bad arguments: a
 * message on stderr and exit code 2.
 */
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { startWebPubSubEmulator, type WebPubSubEmulatorOptions } from "./index.js";
import { hubNamePattern } from "./rest-api.js";
import { systemEvents } from "./upstream.js";

export const usage = `Usage: emulator:webpubsub [options]
  --port <n>             port to listen on (default: a free port)
  --host <address>       interface to listen on (default: 127.0.0.1)
  --hub <name>           a hub that exists; repeat for more (default: any hub)
  --event-handler <url>  upstream handler for every --hub: all user events and connect,
                         connected, disconnected; {hub} and {event} in the URL are replaced
  --access-key <key>     access key tokens are signed with (default: random)
  --tls-cert <file>      PEM certificate: serve https/wss (with --tls-key)
  --tls-key <file>       PEM private key for --tls-cert
  --help                 show this help`;

export class CliUsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "CliUsageError";
  }
}

/** Turns command-line arguments into emulator options; throws {@link CliUsageError} when they are wrong. */
export function parseCliArguments(argv: string[]): WebPubSubEmulatorOptions | "help" {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        port: { type: "string" },
        host: { type: "string" },
        hub: { type: "string", multiple: true },
        "event-handler": { type: "string", multiple: true },
        "access-key": { type: "string" },
        "tls-cert": { type: "string" },
        "tls-key": { type: "string" },
        help: { type: "boolean" },
      },
    }));
  } catch (error) {
    throw new CliUsageError(error instanceof Error ? error.message : String(error));
  }
  if (values.help) return "help";

  const options: WebPubSubEmulatorOptions = {};
  if (values.port !== undefined) {
    const port = Number(values.port);
    if (!/^\d+$/.test(values.port) || port > 65535) throw new CliUsageError(`--port must be an integer from 0 to 65535, got ${JSON.stringify(values.port)}`);
    options.port = port;
  }
  if (values.host !== undefined) options.host = values.host;
  const hubs = values.hub ?? [];
  for (const hub of hubs) {
    if (!hubNamePattern.test(hub)) {
      throw new CliUsageError(`--hub ${JSON.stringify(hub)} is not a valid hub name (a letter, then letters, digits, _ \` , . [ ])`);
    }
  }
  if (hubs.length > 0) options.hubs = hubs;
  const handlerUrls = values["event-handler"] ?? [];
  if (handlerUrls.length > 0 && hubs.length === 0) throw new CliUsageError("--event-handler needs at least one --hub to send that hub's events");
  for (const url of handlerUrls) {
    let parsed: URL;
    try {
      parsed = new URL(url.replaceAll("{hub}", "hub").replaceAll("{event}", "event"));
    } catch {
      throw new CliUsageError(`--event-handler ${JSON.stringify(url)} is not an absolute URL`);
    }
    if (parsed.protocol !== "http:" && parsed.protocol !== "https:") throw new CliUsageError(`--event-handler must be an http(s) URL, got ${url}`);
  }
  if (handlerUrls.length > 0) {
    options.eventHandlers = hubs.flatMap((hub) =>
      handlerUrls.map((urlTemplate) => ({ hub, urlTemplate, userEventPattern: "*", systemEvents: [...systemEvents] })),
    );
  }
  if (values["access-key"] !== undefined) {
    if (values["access-key"] === "" || values["access-key"].includes(";")) throw new CliUsageError("--access-key must be non-empty and contain no ';'");
    options.accessKey = values["access-key"];
  }
  const cert = values["tls-cert"];
  const key = values["tls-key"];
  if ((cert === undefined) !== (key === undefined)) throw new CliUsageError("--tls-cert and --tls-key go together");
  if (cert !== undefined && key !== undefined) {
    try {
      options.tls = { cert: readFileSync(cert, "utf8"), key: readFileSync(key, "utf8") };
    } catch (error) {
      throw new CliUsageError(`cannot read the TLS files: ${error instanceof Error ? error.message : String(error)}`);
    }
  }
  return options;
}

async function main(): Promise<void> {
  let parsed: WebPubSubEmulatorOptions | "help";
  try {
    parsed = parseCliArguments(process.argv.slice(2));
  } catch (error) {
    if (!(error instanceof CliUsageError)) throw error;
    process.stderr.write(`emulator:webpubsub: ${error.message}\n${usage}\n`);
    process.exit(2);
  }
  if (parsed === "help") {
    process.stdout.write(`${usage}\n`);
    return;
  }
  const log = (message: string) => process.stderr.write(`[webpubsub] ${message}\n`);
  const emulator = await startWebPubSubEmulator({ ...parsed, log });
  log(`listening on ${emulator.endpoint} (hubs: ${parsed.hubs?.join(", ") ?? "any"})`);
  process.stdout.write(`WEBPUBSUB_CONNECTION_STRING=${emulator.connectionString}\n`);

  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log(`${signal}: closing clients`);
    emulator.stop().then(
      () => process.exit(0),
      (error: unknown) => {
        log(`stop failed: ${error instanceof Error ? error.message : String(error)}`);
        process.exit(1);
      },
    );
  };
  process.on("SIGINT", () => shutdown("SIGINT"));
  process.on("SIGTERM", () => shutdown("SIGTERM"));
}

if (require.main === module) {
  main().catch((error: unknown) => {
    process.stderr.write(`emulator:webpubsub: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(1);
  });
}
