/**
 * Runs one service under the local Functions host in a child process (child.ts): its environment is
 * exactly the service's app settings (plus what Node itself needs), its output goes to this
 * process's console line by line under the service's name, and stop() ends it cleanly (SIGTERM,
 * SIGKILL after a grace period), so Ctrl-C leaves no orphans.
 */
import { fork, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { join } from "node:path";
import { createInterface } from "node:readline";
import type { IndexedFunction } from "./host.js";

export type HostChildMessage = { type: "ready"; url: string | undefined; functions: IndexedFunction[] } | { type: "failed"; message: string };

export interface HostProcessOptions {
  /** Name used in errors and as the prefix of every output line. */
  name: string;
  entry: string;
  hostJson: string;
  /** @default 0 (a free port) */
  port?: number;
  /** Browser origins allowed to call the HTTP triggers (CORS). @default none */
  corsAllowedOrigins?: readonly string[];
  /** App settings of the service: the child's environment. */
  settings: Record<string, string>;
  /** Extra environment for Node itself (NODE_EXTRA_CA_CERTS, ...), kept apart from app settings. */
  nodeEnv?: Record<string, string>;
  /** Where output lines go. @default stdout/stderr with a `[name]` prefix */
  output?: (line: string, stream: "stdout" | "stderr") => void;
  /** @default 60000 */
  startTimeoutMs?: number;
  /** Grace period before SIGKILL on stop. @default 10000 */
  stopTimeoutMs?: number;
  /**
   * The host's child module ({@link hostChildSource}) compiled to JavaScript, run with plain
   * `node` as Azure runs the worker (no tsx, no --enable-source-maps): a benchmark's cold start
   * then holds what Azure's would, not tsx compiling the host or Node reading source maps. The
   * entry must be JavaScript too.
   * @default child.ts under tsx, with source maps
   */
  compiledChild?: string;
}

/** How a host process ended: its exit code, or the signal that killed it. */
export interface HostExit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

export interface HostProcess {
  readonly name: string;
  readonly url: string | undefined;
  readonly functions: readonly IndexedFunction[];
  readonly pid: number;
  /** Settles when the process ends, whether stop() ended it or it died (a crash, a kill). */
  readonly exited: Promise<HostExit>;
  stop(): Promise<void>;
}

/** What a child needs from the parent's environment to run at all (not app settings). */
const INHERITED = ["PATH", "HOME", "TMPDIR", "TEMP", "TMP", "SystemRoot", "NODE_EXTRA_CA_CERTS", "NODE_OPTIONS", "TZ", "LANG"];

/** The child process's module: what {@link HostProcessOptions.compiledChild} is compiled from. */
export const hostChildSource = join(__dirname, "child.ts");

function defaultOutput(name: string) {
  return (line: string, stream: "stdout" | "stderr") => (stream === "stderr" ? process.stderr : process.stdout).write(`[${name}] ${line}\n`);
}

function stopChild(child: ChildProcess, timeoutMs: number): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.once("exit", () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill("SIGTERM");
  });
}

export async function startHostProcess(options: HostProcessOptions): Promise<HostProcess> {
  const output = options.output ?? defaultOutput(options.name);
  const inherited = Object.fromEntries(INHERITED.flatMap((key) => (process.env[key] === undefined ? [] : [[key, process.env[key] as string]])));
  const child = fork(options.compiledChild ?? hostChildSource, [
    "--entry",
    options.entry,
    "--host-json",
    options.hostJson,
    "--port",
    String(options.port ?? 0),
    "--cors",
    (options.corsAllowedOrigins ?? []).join(","),
  ], {
    // tsx compiles the host and, for source entries, the service itself; a bundle needs no compiling.
    // `--import tsx` registers both loaders: TypeScript keeps a service's import() in CommonJS
    // output, and only the ESM loader maps import("./x.js") to x.ts (the api loads its docs so).
    execArgv: options.compiledChild ? [] : ["--import", "tsx", "--enable-source-maps"],
    env: { ...inherited, ...options.nodeEnv, ...options.settings },
    stdio: ["ignore", "pipe", "pipe", "ipc"],
  });
  const exited = new Promise<HostExit>((resolve) => child.once("exit", (code, signal) => resolve({ code, signal })));
  const recent: string[] = [];
  for (const stream of ["stdout", "stderr"] as const) {
    createInterface({ input: child[stream]! }).on("line", (line) => {
      recent.push(line);
      if (recent.length > 40) recent.shift();
      output(line, stream);
    });
  }

  const timeoutMs = options.startTimeoutMs ?? 60_000;
  const ready = await new Promise<Extract<HostChildMessage, { type: "ready" }>>((resolve, reject) => {
    const timer = setTimeout(() => fail(new Error(`${options.name}: the Functions host did not start within ${timeoutMs} ms`)), timeoutMs);
    const onMessage = (message: HostChildMessage) => {
      if (message.type === "ready") {
        cleanup();
        resolve(message);
      } else if (message.type === "failed") {
        fail(new Error(`${options.name}: ${message.message}`));
      }
    };
    const onExit = (code: number | null, signal: NodeJS.Signals | null) =>
      fail(new Error(`${options.name}: the Functions host exited (${signal ?? `code ${code}`}) before it was ready:\n${recent.join("\n")}`));
    function cleanup() {
      clearTimeout(timer);
      child.off("message", onMessage);
      child.off("exit", onExit);
    }
    function fail(error: Error) {
      cleanup();
      void stopChild(child, 2_000).then(() => reject(error));
    }
    child.on("message", onMessage);
    child.once("exit", onExit);
  });

  let stopping: Promise<void> | undefined;
  return {
    name: options.name,
    url: ready.url,
    functions: ready.functions,
    pid: child.pid ?? -1,
    exited,
    stop() {
      stopping ??= (async () => {
        await stopChild(child, options.stopTimeoutMs ?? 10_000);
        // Let the last output lines drain before the caller moves on.
        if (child.stdout && !child.stdout.readableEnded) await Promise.race([once(child.stdout, "end"), new Promise((r) => setTimeout(r, 500))]);
      })();
      return stopping;
    },
  };
}
