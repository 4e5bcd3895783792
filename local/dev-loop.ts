/**
 * The development loop of `npm start`, for the services: an edit under functions/src restarts the
 * service it belongs to (a file in src/<service>/ restarts that one; a shared file restarts all),
 * on the same port, with a line in the log. The web app's side of the loop (rebuild and reload)
 * is in platform-web.ts.
 */
import { watch, type FSWatcher } from "node:fs";
import path from "node:path";
import { startHostProcess, type HostProcess, type HostProcessOptions } from "@platform-tools/functions-host";

/** A service's host process that can be started again with the same settings and port. */
export interface RestartableHost extends HostProcess {
  /** Stops the running process and starts a new one from the current sources; resolves with the time it took. */
  restart(): Promise<number>;
}

/**
 * Starts a host like {@link startHostProcess} and keeps its options, so a restart runs the same
 * service with the same settings; the port is pinned to the one the first start got, so the URLs
 * the platform printed (and the site's config.json) stay right.
 */
export async function startRestartableHost(options: HostProcessOptions): Promise<RestartableHost> {
  let current = await startHostProcess(options);
  const port = current.url ? Number(new URL(current.url).port) : (options.port ?? 0);
  let stopped = false;
  /** A restart under way: stop() waits for it, so the process it starts is not left running. */
  let restarting: Promise<void> | undefined;
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
    async restart() {
      if (stopped) throw new Error(`${options.name} is stopped`);
      if (restarting) throw new Error(`${options.name} is already restarting`);
      const started = performance.now();
      restarting = (async () => {
        await current.stop();
        current = await startHostProcess({ ...options, port });
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
      await restarting?.catch(() => {});
      await current.stop();
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
