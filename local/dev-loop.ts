/**
 * The services' processes on the local platform: supervised (a process that dies is started again,
 * as the Functions host restarts its worker) and, in the development loop of `npm start`,
 * restarted on edits under functions/src (a file in src/<service>/ restarts that service; a shared
 * file restarts all), on the same port, with a line in the log. The web app's side of the loop
 * (rebuild and reload) is in platform-web.ts.
 */
import { watch, type FSWatcher } from "node:fs";
import path from "node:path";
import { startHostProcess, type HostExit, type HostProcess, type HostProcessOptions } from "@platform-tools/functions-host";

/** What the supervisor of a service's process did. */
export type SupervisorEvent =
  | { type: "exited"; exit: HostExit; pid: number }
  | { type: "restarted"; ms: number; pid: number }
  | { type: "restart-failed"; error: Error; retryInMs: number };

/** A service's host process that can be started again with the same settings and port. */
export interface RestartableHost extends HostProcess {
  /** Stops the running process and starts a new one from the current sources; resolves with the time it took. */
  restart(): Promise<number>;
  /** Times the process died on its own (a crash, a kill) and the supervisor started it again. */
  readonly recoveries: number;
  /** Calls `listener` with each supervisor event; returns a function that stops the calls. */
  onSupervisorEvent(listener: (event: SupervisorEvent) => void): () => void;
}

export interface SupervisionOptions {
  /** One line per event, for the console. @default none */
  log?: (line: string) => void;
  /**
   * Waits before each restart after an unexpected exit: the first restart is immediate, as the
   * Functions host restarts a worker that died; a process that keeps dying waits 1 s, 2 s, 4 s ...
   * up to the last value. @default [0, 1000, 2000, 4000, 8000, 16000, 30000]
   */
  backoffMs?: readonly number[];
  /** A process that ran this long counts as healthy: the next exit starts the backoff again. @default 60000 */
  healthyAfterMs?: number;
}

const DEFAULT_BACKOFF_MS = [0, 1_000, 2_000, 4_000, 8_000, 16_000, 30_000] as const;

function describeExit(exit: HostExit): string {
  return exit.signal ? `killed by ${exit.signal}` : `exit code ${exit.code}`;
}

/**
 * Starts a host like {@link startHostProcess} and keeps its options, so a restart runs the same
 * service with the same settings; the port is pinned to the one the first start got, so the URLs
 * the platform printed (and the site's config.json) stay right.
 *
 * It is supervised as the Functions host supervises its language worker: when the process dies on
 * its own (a crash, an out-of-memory kill, a SIGKILL), it is started again on the same port and
 * the log says so; one that keeps dying is restarted after a growing wait. Messages it held are
 * not lost: their locks expire and Service Bus redelivers them.
 */
export async function startRestartableHost(options: HostProcessOptions, supervision: SupervisionOptions = {}): Promise<RestartableHost> {
  const log = supervision.log ?? (() => {});
  const backoff = supervision.backoffMs ?? DEFAULT_BACKOFF_MS;
  const healthyAfterMs = supervision.healthyAfterMs ?? 60_000;
  const listeners = new Set<(event: SupervisorEvent) => void>();
  const emit = (event: SupervisorEvent) => {
    for (const listener of [...listeners]) listener(event);
  };
  let current = await startHostProcess(options);
  const port = current.url ? Number(new URL(current.url).port) : (options.port ?? 0);
  let stopped = false;
  /** A restart under way: stop() waits for it, so the process it starts is not left running. */
  let restarting: Promise<void> | undefined;
  /** Processes this object stopped on purpose: their exit is no crash. */
  const deliberate = new WeakSet<HostProcess>();
  /** Bumped by every deliberate restart: a recovery started before it gives way. */
  let generation = 0;
  let startedAt = performance.now();
  let crashesInARow = 0;
  let recoveries = 0;
  let wakeRecovery: (() => void) | undefined;

  const stopDeliberately = (process: HostProcess) => {
    deliberate.add(process);
    return process.stop();
  };

  const recover = async (crashed: HostProcess, exit: HostExit) => {
    const mine = generation;
    if (performance.now() - startedAt >= healthyAfterMs) crashesInARow = 0;
    for (;;) {
      const waitMs = backoff[Math.min(crashesInARow, backoff.length - 1)] ?? 0;
      crashesInARow += 1;
      if (waitMs > 0) await new Promise<void>((resolve) => ((wakeRecovery = resolve), setTimeout(resolve, waitMs)));
      if (stopped || generation !== mine || current !== crashed) return;
      const began = performance.now();
      try {
        restarting = (async () => {
          const next = await startHostProcess({ ...options, port });
          if (stopped || generation !== mine) {
            await stopDeliberately(next);
            return;
          }
          current = next;
          startedAt = performance.now();
          watch(next);
        })();
        await restarting;
      } catch (error) {
        const retryInMs = backoff[Math.min(crashesInARow, backoff.length - 1)] ?? 0;
        const failure = error instanceof Error ? error : new Error(String(error));
        log(`${options.name} did not start again (${failure.message.split("\n")[0]}); trying again in ${retryInMs} ms`);
        emit({ type: "restart-failed", error: failure, retryInMs });
        continue;
      } finally {
        restarting = undefined;
      }
      if (current === crashed) return; // stopped meanwhile
      recoveries += 1;
      const ms = Math.round(performance.now() - began);
      log(`${options.name} restarted in ${ms} ms after it ${describeExit(exit)}`);
      emit({ type: "restarted", ms, pid: current.pid });
      return;
    }
  };

  const watch = (process: HostProcess) => {
    void process.exited.then((exit) => {
      if (stopped || deliberate.has(process) || process !== current) return;
      log(`${options.name} ${describeExit(exit)} (pid ${process.pid}); starting it again, as the Functions host would`);
      emit({ type: "exited", exit, pid: process.pid });
      void recover(process, exit);
    });
  };
  watch(current);

  return {
    get name() {
      return current.name;
    },
    get url() {
      return current.url;
    },
    get functions() {
      return current.functions;
    },
    get pid() {
      return current.pid;
    },
    get exited() {
      return current.exited;
    },
    get recoveries() {
      return recoveries;
    },
    onSupervisorEvent(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    async restart() {
      if (stopped) throw new Error(`${options.name} is stopped`);
      if (restarting) throw new Error(`${options.name} is already restarting`);
      generation += 1;
      wakeRecovery?.();
      const started = performance.now();
      restarting = (async () => {
        await stopDeliberately(current);
        current = await startHostProcess({ ...options, port });
        startedAt = performance.now();
        crashesInARow = 0;
        watch(current);
      })();
      try {
        await restarting;
      } finally {
        restarting = undefined;
      }
      return Math.round(performance.now() - started);
    },
    async stop() {
      stopped = true;
      wakeRecovery?.();
      await restarting?.catch(() => {});
      await stopDeliberately(current);
    },
  };
}

export interface SourceWatchOptions<S extends string> {
  /** The services' hosts, by name. */
  readonly services: Readonly<Record<S, RestartableHost>>;
  /** Where the function code lives: `<sourceRoot>/<service>/...` belongs to one service, anything else to all. */
  readonly sourceRoot: string;
  /** One line per restart (or failed restart). */
  readonly log: (line: string) => void;
  /**
   * Edits arrive as bursts of file events (an editor's save writes, renames, touches); a restart
   * waits until a burst is this quiet. @default 100
   */
  readonly settleMs?: number;
}

export interface SourceWatcher {
  close(): void;
}

/** The services an edited file belongs to: its own service's folder, or every service for shared code. */
export function servicesAffectedBy<S extends string>(relativeFile: string, services: readonly S[]): S[] {
  const [top] = relativeFile.split(/[\\/]/);
  const own = services.find((service) => service === top);
  return own ? [own] : [...services];
}

/** Restarts a service whenever its sources change; one restart at a time per service, bursts coalesced. */
export function watchServiceSources<S extends string>(options: SourceWatchOptions<S>): SourceWatcher {
  const names = Object.keys(options.services) as S[];
  const settleMs = options.settleMs ?? 100;
  const pending = new Map<S, Set<string>>();
  const running = new Map<S, Promise<void>>();
  let timer: NodeJS.Timeout | undefined;
  let closed = false;

  const restart = (service: S, files: readonly string[]): Promise<void> => {
    const what = files.length === 1 ? `${files[0]} changed` : `${files.length} files changed`;
    return options.services[service].restart().then(
      (ms) => options.log(`${service} restarted in ${ms} ms (${what})`),
      (error: unknown) => options.log(`${service} did not restart (${what}): ${error instanceof Error ? error.message.split("\n")[0] : String(error)}; fix the code and save again`),
    );
  };
  const flush = () => {
    timer = undefined;
    for (const [service, files] of pending) {
      if (running.has(service)) continue; // picked up when the running restart ends
      pending.delete(service);
      const run = restart(service, [...files]).finally(() => {
        running.delete(service);
        if (!closed && pending.has(service)) flush();
      });
      running.set(service, run);
    }
  };

  const watcher: FSWatcher = watch(options.sourceRoot, { recursive: true }, (_event, file) => {
    if (closed || !file || !/\.(ts|mts|cts|js|mjs|cjs|json)$/.test(file)) return;
    const relative = file.split(path.sep).join("/");
    for (const service of servicesAffectedBy(relative, names)) {
      const files = pending.get(service) ?? new Set<string>();
      files.add(path.relative(process.cwd(), path.join(options.sourceRoot, file)).split(path.sep).join("/"));
      pending.set(service, files);
    }
    clearTimeout(timer);
    timer = setTimeout(flush, settleMs);
  });
  return {
    close() {
      closed = true;
      clearTimeout(timer);
      watcher.close();
    },
  };
}
