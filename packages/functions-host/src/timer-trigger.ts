/**
 * The timer trigger as the Functions host plays it (its TimerListener): the `schedule` (NCRONTAB,
 * `%SETTING%` resolved) decides when the function runs, `runOnStartup` runs it once as the host
 * starts, runs never overlap, a run that throws is logged and the schedule goes on. The input is
 * the host's timer info (`Schedule`, `ScheduleStatus`, `IsPastDue`), which @azure/functions
 * camelCases.
 *
 * In Azure one schedule runs per app however many instances it has (a blob lease in
 * AzureWebJobsStorage); a local host is one instance, so nothing is needed for that here.
 */
import type { FunctionsApp, HostLogSink } from "./functions-app.js";
import { resolveAppSettingExpressions } from "./host-config.js";
import { parseNcrontab, type Schedule } from "./ncrontab.js";

export interface TimerFunction {
  functionName: string;
  triggerName: string;
  schedule: Schedule;
  runOnStartup: boolean;
}

/**
 * The timerTrigger registrations of an app, with their schedules resolved from `env` and parsed.
 * Throws, naming the function, where the host would refuse to index it.
 */
export function timerTriggersOf(app: FunctionsApp, env: NodeJS.ProcessEnv): TimerFunction[] {
  const triggers: TimerFunction[] = [];
  for (const { metadata } of app.functions.values()) {
    for (const [triggerName, binding] of Object.entries(metadata.bindings)) {
      if (binding.type?.toLowerCase() !== "timertrigger") continue;
      const what = `function "${metadata.name}"`;
      const raw = typeof binding.schedule === "string" ? binding.schedule : "";
      if (!raw) throw new Error(`${what}: the timer trigger has no schedule`);
      const expression = resolveAppSettingExpressions(raw, env, what);
      if (/^\s*\d+(\.\d+)?:\d{1,2}:\d{1,2}\s*$/.test(expression)) {
        throw new Error(`${what}: the schedule ${JSON.stringify(expression)} is a TimeSpan, which only App Service plans run; use an NCRONTAB expression`);
      }
      let schedule: Schedule;
      try {
        schedule = parseNcrontab(expression);
      } catch (error) {
        throw new Error(`${what}: ${(error as Error).message}`);
      }
      triggers.push({ functionName: metadata.name, triggerName, schedule, runOnStartup: binding.runOnStartup === true });
    }
  }
  return triggers;
}

/** What the host tells the function about the schedule (its ScheduleStatus). */
export interface ScheduleStatus {
  /** When the previous run started (at its occurrence, if it started early); year 1 before the first. */
  readonly last: Date;
  /** The occurrence this run is for: the next after `last`. */
  readonly next: Date;
  readonly lastUpdated: Date;
}

/** .NET's default DateTime, which the host reports for "never". */
const NEVER = new Date("0001-01-01T00:00:00.000Z");

/** The timer info the host passes, in its own (PascalCase) names. */
export function timerInputOf(status: ScheduleStatus, isPastDue: boolean): { json: string } {
  return {
    json: JSON.stringify({
      Schedule: { AdjustForDST: true },
      ScheduleStatus: { Last: status.last.toISOString(), Next: status.next.toISOString(), LastUpdated: status.lastUpdated.toISOString() },
      IsPastDue: isPastDue,
    }),
  };
}

export interface TimerTriggers {
  /** Stops scheduling and waits for a run in progress. */
  close(): Promise<void>;
}

/** setTimeout's longest delay; a later occurrence is waited for in steps. */
const MAX_TIMEOUT_MS = 2 ** 31 - 1;

/**
 * Runs each timer function as the host's TimerListener does: after each run the status becomes
 * {last: the run's start (or its occurrence, if it started early), next: the occurrence after
 * that}, and the next run waits for `next`, at once if it already passed (so a run longer than the
 * period skips the occurrences it overlapped and the next starts right after it). `isPastDue` is
 * false: the host sets it for an occurrence missed while the app was down, which a local host,
 * keeping no schedule status across restarts, cannot know about.
 */
export function startTimerTriggers(options: { app: Pick<FunctionsApp, "invoke">; triggers: TimerFunction[]; log: HostLogSink; now?: () => Date }): TimerTriggers {
  const { app, triggers, log } = options;
  const now = options.now ?? (() => new Date());
  let closed = false;
  const timers = new Set<NodeJS.Timeout>();
  const running = new Set<Promise<void>>();

  for (const trigger of triggers) {
    let status: ScheduleStatus = { last: NEVER, next: trigger.schedule.next(now()), lastUpdated: NEVER };
    const run = async (onStartup: boolean): Promise<void> => {
      const invokedAt = now();
      const started = performance.now();
      try {
        await app.invoke(trigger.functionName, { inputData: [{ name: trigger.triggerName, data: timerInputOf(status, false) }], triggerMetadata: {} });
        log({ level: "information", category: "system", functionName: trigger.functionName, message: `timer run completed in ${Math.round(performance.now() - started)} ms` });
      } catch (error) {
        log({ level: "error", category: "system", functionName: trigger.functionName, message: `timer run failed: ${error instanceof Error ? error.message : String(error)}` });
      }
      const at = !onStartup && status.next.getTime() > invokedAt.getTime() ? status.next : invokedAt;
      status = { last: at, next: trigger.schedule.next(at), lastUpdated: at };
    };
    const schedule = (onStartup: boolean) => {
      if (closed) return;
      const delay = onStartup ? 0 : Math.min(Math.max(0, status.next.getTime() - now().getTime()), MAX_TIMEOUT_MS);
      const timer = setTimeout(() => {
        timers.delete(timer);
        if (closed) return;
        if (!onStartup && status.next.getTime() > now().getTime()) return schedule(false); // a wait longer than setTimeout's
        const work = run(onStartup);
        running.add(work);
        void work.finally(() => {
          running.delete(work);
          schedule(false);
        });
      }, delay);
      timers.add(timer);
    };
    log({ level: "information", category: "system", functionName: trigger.functionName, message: `timer schedule ${trigger.schedule.expression} (UTC); next run ${status.next.toISOString()}` });
    schedule(trigger.runOnStartup);
  }

  return {
    async close() {
      closed = true;
      for (const timer of timers) clearTimeout(timer);
      timers.clear();
      await Promise.allSettled([...running]);
    },
  };
}
