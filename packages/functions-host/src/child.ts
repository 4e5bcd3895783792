/**
 * Entry of a local Functions host child process (started by host-process.ts, one per service, so
 * each service has its own module state and settings, as in Azure). Its environment is the
 * service's app settings; it reports readiness or failure over the IPC channel and stops cleanly
 * (appTerminate hooks, settled messages) on SIGINT, SIGTERM, a "stop" message or a lost parent.
 */
import { parseArgs } from "node:util";
import { startFunctionsHost, type FunctionsHost } from "./host.js";
import type { HostChildMessage } from "./host-process.js";

function report(message: HostChildMessage): void {
  process.send?.(message);
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { entry: { type: "string" }, "host-json": { type: "string" }, port: { type: "string", default: "0" }, cors: { type: "string", default: "" } },
  });
  if (!values.entry || !values["host-json"]) throw new Error("usage: child.ts --entry <module> --host-json <host.json> [--port <port>]");
  const port = Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`--port must be an integer from 0 to 65535, got ${values.port}`);

  let host: FunctionsHost | undefined;
  let stopping: Promise<void> | undefined;
  const stop = () => {
    stopping ??= (async () => {
      try {
        await host?.stop();
      } finally {
        process.disconnect?.();
        process.exit(0);
      }
    })();
    return stopping;
  };
  process.on("SIGINT", stop);
  process.on("SIGTERM", stop);
  process.on("disconnect", stop);
  process.on("message", (message: unknown) => {
    if ((message as { type?: string } | null)?.type === "stop") void stop();
  });

  const corsAllowedOrigins = (values.cors ?? "").split(",").filter(Boolean);
  host = await startFunctionsHost({ entry: values.entry, hostJson: values["host-json"], port, corsAllowedOrigins });
  report({ type: "ready", url: host.url, functions: [...host.functions] });
}

main().catch((error: unknown) => {
  const message = error instanceof Error ? error.message : String(error);
  report({ type: "failed", message });
  process.stderr.write(`${message}\n`);
  process.disconnect?.();
  // Whatever half-started resource still holds the event loop must not keep a failed host alive.
  setTimeout(() => process.exit(1), 200);
});
