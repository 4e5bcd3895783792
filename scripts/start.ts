/**
 * `npm start`: the whole platform on this machine (local/platform.ts), a table of its URLs and the
 * start-up time, then the services' logs until Ctrl-C, which stops everything and leaves no process
 * behind. While it runs, edits under web/ rebuild the app and reload open pages, and edits under
 * functions/src restart the service they belong to (local/dev-loop.ts), each with a log line.
 *
 *   npm start                         sources through tsx, default ports
 *   npm start -- --bundle             the bundles from `npm run bundle` (what Azure runs)
 *   npm start -- --api-port 7171      any of --web-port --<service>-port (each service with HTTP
 *                                     functions) --blob-port --cosmos-port --servicebus-port
 *                                     --webpubsub-port (0: a free port)
 */
import { join } from "node:path";
import { parseArgs } from "node:util";
import { declarationOf, serviceNames } from "../functions/src/services.js";
import { watchServiceSources, type SourceWatcher } from "../local/dev-loop.js";
import { repoRoot } from "./bundle/services.js";
import { DEFAULT_PORTS, PortInUseError, startLocalPlatform, type LocalPlatform, type PlatformPort } from "../local/platform.js";

/** `--<role>-port` for the site, each emulator, and each service with HTTP functions. */
const portFlags: Record<string, PlatformPort> = {
  "web-port": "web",
  ...Object.fromEntries(serviceNames.filter((service) => declarationOf(service).http).map((service) => [`${service}-port`, service])),
  "blob-port": "blob",
  "cosmos-port": "cosmos",
  "servicebus-port": "serviceBus",
  "webpubsub-port": "webPubSub",
};

function usageError(message: string): never {
  process.stderr.write(`${message}\nOptions: --bundle ${Object.keys(portFlags).map((f) => `--${f} <port>`).join(" ")}\n`);
  process.exit(2);
}

function parseOptions() {
  let parsed;
  try {
    parsed = parseArgs({
      options: { bundle: { type: "boolean", default: false }, ...Object.fromEntries(Object.keys(portFlags).map((flag) => [flag, { type: "string" as const }])) },
    });
  } catch (error) {
    usageError((error as Error).message);
  }
  const ports: Partial<Record<PlatformPort, number>> = {};
  for (const [flag, role] of Object.entries(portFlags)) {
    const raw = (parsed.values as Record<string, string | boolean | undefined>)[flag];
    if (typeof raw !== "string") continue;
    const port = Number(raw);
    if (!/^\d+$/.test(raw) || port > 65535) usageError(`--${flag} must be a port number from 0 to 65535, got ${JSON.stringify(raw)}`);
    ports[role] = port;
  }
  return { ports, code: parsed.values.bundle ? ("bundle" as const) : ("source" as const) };
}

function table(platform: LocalPlatform): string {
  const rows: [string, string][] = [
    ["web", `${platform.urls.web}/`],
    ...Object.entries(platform.urls.services).map(([service, url]): [string, string] => [service, url]),
    ["api docs", platform.urls.docs],
    ["Blob (Azurite)", platform.urls.blob],
    ["Cosmos DB (cosmosdb-server)", platform.urls.cosmos],
    ["Service Bus (emulator)", platform.urls.serviceBus],
    ["Web PubSub (emulator)", platform.urls.webPubSub],
  ];
  const width = Math.max(...rows.map(([name]) => name.length));
  return rows.map(([name, url]) => `  ${name.padEnd(width)}  ${url}`).join("\n");
}

async function main(): Promise<void> {
  const { ports, code } = parseOptions();
  // The development loop: edits under web/ rebuild the app and reload open pages.
  const starting = startLocalPlatform({ ports, code, web: { watch: true } });
  let sources: SourceWatcher | undefined;
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) {
      // A second Ctrl-C: the user wants out now; children still get their signal from the terminal.
      process.exit(130);
    }
    stopping = true;
    process.stdout.write(`\n${signal}: stopping the local platform…\n`);
    const started = performance.now();
    // Interrupted while starting: let the start finish (or fail and clean up), then stop what runs.
    const platform = await starting.catch(() => undefined);
    sources?.close();
    await platform?.stop();
    process.stdout.write(`Stopped in ${Math.round(performance.now() - started)} ms.\n`);
    process.exit(0);
  };
  process.on("SIGINT", () => void stop("SIGINT"));
  process.on("SIGTERM", () => void stop("SIGTERM"));

  let platform: LocalPlatform;
  try {
    platform = await starting;
  } catch (error) {
    if (stopping) return;
    if (error instanceof PortInUseError) {
      process.stderr.write(`\nCannot start: ${error.message}\n(defaults: ${Object.entries(DEFAULT_PORTS).map(([role, port]) => `${role} ${port}`).join(", ")})\n`);
    } else {
      process.stderr.write(`\nCannot start the local platform: ${error instanceof Error ? error.message : String(error)}\n`);
    }
    process.exit(1);
  }
  if (stopping) return;
  // ...and edits under functions/src restart the service they belong to (sources only: a bundle is what it was built as).
  if (code === "source") {
    sources = watchServiceSources({ services: platform.services, sourceRoot: join(repoRoot, "functions", "src"), log: (line) => process.stdout.write(`[dev] ${line}\n`) });
  }
  process.stdout.write(
    `\nThe local platform is running (started in ${(platform.startupMs / 1000).toFixed(1)} s):\n${table(platform)}\n\n` +
      `Try it: curl -X POST ${platform.urls.api}/jobs -H 'x-dev-user: alice' -H 'content-type: application/json' -d '{"kind":"text","text":"hello local platform"}'\n` +
      `Open ${platform.urls.web}/ in a browser. Edits under web/ reload the page${code === "source" ? "; edits under functions/src restart the service they belong to" : ""}.\n` +
      "Ctrl-C stops everything.\n\n",
  );
}

void main();
