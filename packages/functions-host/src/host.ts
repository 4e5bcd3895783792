/**
 * The local Functions host, in-process: provides `@azure/functions-core`, loads one service's entry
 * (TypeScript source under tsx, or the esbuild bundle from dist/), runs appStart hooks, serves its
 * HTTP triggers and plays its Service Bus and timer triggers; stop() runs appTerminate hooks. A process holds
 * one app at a time (module state is per process, as in Azure): host-process.ts runs each service
 * in its own child process.
 */
import { dirname, resolve } from "node:path";
import type { RpcLogLevel } from "./core-types.js";
import { FunctionsApp, installCoreApi, type HostLogRecord, type HostLogSink } from "./functions-app.js";
import { readHostConfig } from "./host-config.js";
import { httpRoutesOf, startHttpTrigger, type HttpTriggerServer } from "./http-trigger.js";
import { serviceBusTriggersOf, startServiceBusTriggers, type ServiceBusTriggers } from "./servicebus-trigger.js";
import { startTimerTriggers, timerTriggersOf, type TimerTriggers } from "./timer-trigger.js";

export interface FunctionsHostOptions {
  /** The service's entry module: a .js bundle, or .ts source when tsx is registered in the process. */
  entry: string;
  /** The host.json the service ships with. */
  hostJson: string;
  /** Port of the HTTP triggers' server. @default 0 (a free port) */
  port?: number;
  /** @default "127.0.0.1" */
  host?: string;
  /** Browser origins allowed to call the HTTP triggers (CORS). @default none */
  corsAllowedOrigins?: readonly string[];
  /** App settings. @default process.env */
  env?: NodeJS.ProcessEnv;
  /** @default lines on stdout/stderr (formatLogRecord) */
  log?: HostLogSink;
}

/** A registered function as the host indexed it (what `func start` lists). */
export interface IndexedFunction {
  name: string;
  trigger: string;
  /** HTTP: the methods (empty: all) and the full route. */
  methods?: string[];
  route?: string;
  /** Service Bus: the entity the trigger receives from. */
  source?: string;
  /** Timer: the NCRONTAB schedule, `%SETTING%` resolved. */
  schedule?: string;
}

export interface FunctionsHost {
  /** Base URL of the HTTP triggers (`http://127.0.0.1:PORT`), absent when the app has none. */
  readonly url: string | undefined;
  readonly functions: readonly IndexedFunction[];
  stop(): Promise<void>;
}

const LEVEL_LABELS: Record<RpcLogLevel, string> = {
  trace: "trace",
  debug: "debug",
  information: "info ",
  warning: "warn ",
  error: "error",
  critical: "crit ",
  none: "     ",
};

/** `12:00:01.123 info  processJob 1a2b3c4d message`: the function name and invocation id on every line. */
export function formatLogRecord(record: HostLogRecord, now: Date = new Date()): string {
  const where = record.functionName ? `${record.functionName}${record.invocationId ? ` ${record.invocationId.slice(0, 8)}` : ""}` : "host";
  return `${now.toISOString().slice(11, 23)} ${LEVEL_LABELS[record.level]} ${where} ${record.message}`;
}

/** host.json's default level is Information: trace and debug lines stay out, as in the host's console. */
function consoleLog(record: HostLogRecord): void {
  if (record.level === "trace" || record.level === "debug" || record.level === "none") return;
  const line = `${formatLogRecord(record)}\n`;
  if (record.level === "warning" || record.level === "error" || record.level === "critical") process.stderr.write(line);
  else process.stdout.write(line);
}

export async function startFunctionsHost(options: FunctionsHostOptions): Promise<FunctionsHost> {
  const log = options.log ?? consoleLog;
  const env = options.env ?? process.env;
  // App settings override host.json (AzureFunctionsJobHost__*) and set the request limit, as in Azure.
  const config = readHostConfig(options.hostJson, env);
  const app = new FunctionsApp(log);
  const uninstall = installCoreApi(app);
  const entry = resolve(options.entry);
  let http: HttpTriggerServer | undefined;
  let serviceBus: ServiceBusTriggers | undefined;
  let timers: TimerTriggers | undefined;
  let started = false;
  const stop = async () => {
    await timers?.close();
    await serviceBus?.close();
    await http?.close();
    if (started) await app.runAppHooks("appTerminate", dirname(entry));
    uninstall();
  };
  try {
    try {
      require(entry);
    } catch (error) {
      throw new Error(`loading the entry ${entry} failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
    }
    const model = app.programmingModel;
    if (!model || app.functions.size === 0) {
      throw new Error(`the entry ${entry} registered no functions (it must call app.http, app.serviceBusQueue, ... from @azure/functions)`);
    }
    // The worker asks for capabilities before the first invocation; that also locks app.setup().
    const capabilities = await model.getCapabilities({});
    if (capabilities.HttpUri) throw new Error("HTTP streaming (app.setup({ enableHttpStream: true })) is not supported by the local host");
    const routes = httpRoutesOf(app, config);
    const triggers = serviceBusTriggersOf(app, env);
    const timerTriggers = timerTriggersOf(app, env);
    started = true;
    await app.runAppHooks("appStart", dirname(entry));
    if (routes.routes.length > 0) {
      http = await startHttpTrigger({
        app,
        routes,
        port: options.port ?? 0,
        maxRequestBytes: config.maxRequestBytes,
        ...(options.host ? { host: options.host } : {}),
        ...(options.corsAllowedOrigins ? { corsAllowedOrigins: options.corsAllowedOrigins } : {}),
        log,
      });
    }
    serviceBus = await startServiceBusTriggers({ app, triggers, config, log });
    timers = startTimerTriggers({ app, triggers: timerTriggers, log });

    const functions: IndexedFunction[] = [];
    for (const route of routes.routes) {
      functions.push({ name: route.target.functionName, trigger: "httpTrigger", methods: [...route.methods], route: `/${route.template}` });
    }
    for (const trigger of triggers) {
      const subscription = trigger.subscriptionName ? `/subscriptions/${trigger.subscriptionName}` : "";
      functions.push({ name: trigger.functionName, trigger: "serviceBusTrigger", source: `${trigger.entityName}${subscription}${trigger.deadLetter ? "/$deadletterqueue" : ""}` });
    }
    for (const trigger of timerTriggers) functions.push({ name: trigger.functionName, trigger: "timerTrigger", schedule: trigger.schedule.expression });
    const indexed = new Set(functions.map((f) => f.name.toLowerCase()));
    for (const { metadata } of app.functions.values()) {
      if (!indexed.has(metadata.name.toLowerCase())) {
        const trigger = Object.values(metadata.bindings).find((b) => /trigger$/i.test(b.type ?? ""))?.type ?? "unknown";
        log({ level: "warning", category: "system", functionName: metadata.name, message: `${trigger} functions are not run by the local host; this one stays idle` });
      }
    }
    return { url: http?.url, functions, stop };
  } catch (error) {
    await stop().catch(() => {});
    throw error;
  }
}
