/**
 * The timer trigger's pure parts and its scheduling, on a fake clock: NCRONTAB as the host's
 * NCrontab evaluates it, the timer info passed to the function, and runs that never overlap (as the
 * host's TimerListener: the status after a run names the next occurrence, which runs at once if it
 * passed during the run).
 */
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { NcrontabError, parseNcrontab } from "../src/ncrontab.js";
import { startTimerTriggers, timerInputOf, type TimerFunction } from "../src/timer-trigger.js";
import type { InvocationInput } from "../src/functions-app.js";

const iso = (text: string) => new Date(text);
const nextAfter = (expression: string, after: string, count = 1) => {
  const schedule = parseNcrontab(expression);
  const found: string[] = [];
  let at = iso(after);
  for (let i = 0; i < count; i += 1) {
    at = schedule.next(at);
    found.push(at.toISOString());
  }
  return found;
};

describe("NCRONTAB", () => {
  it("finds the next matching second strictly after a time, in UTC", () => {
    expect(nextAfter("0 * * * * *", "2026-01-01T00:00:00.000Z", 2)).toEqual(["2026-01-01T00:01:00.000Z", "2026-01-01T00:02:00.000Z"]);
    expect(nextAfter("*/15 * * * * *", "2026-01-01T00:00:14.999Z", 2)).toEqual(["2026-01-01T00:00:15.000Z", "2026-01-01T00:00:30.000Z"]);
    expect(nextAfter("0 30 9 * * Mon-Fri", "2026-01-02T10:00:00Z", 2)).toEqual(["2026-01-05T09:30:00.000Z", "2026-01-06T09:30:00.000Z"]);
    expect(nextAfter("0 0 0 1 Jan,July *", "2026-02-01T00:00:00Z", 2)).toEqual(["2026-07-01T00:00:00.000Z", "2027-01-01T00:00:00.000Z"]);
    expect(nextAfter("5/20 0 12 * * *", "2026-01-01T12:00:00Z", 3)).toEqual(["2026-01-01T12:00:05.000Z", "2026-01-01T12:00:25.000Z", "2026-01-01T12:00:45.000Z"]);
  });

  it("needs both the day of the month and the day of the week, as NCrontab (not either, as Vixie cron)", () => {
    // 13th of the month that is a Friday: 2026-02-13, then 2026-03-13.
    expect(nextAfter("0 0 0 13 * 5", "2026-01-01T00:00:00Z", 2)).toEqual(["2026-02-13T00:00:00.000Z", "2026-03-13T00:00:00.000Z"]);
    // The 31st skips months without one; the 29th of February waits for a leap year.
    expect(nextAfter("0 0 0 31 * *", "2026-01-31T00:00:00Z")).toEqual(["2026-03-31T00:00:00.000Z"]);
    expect(nextAfter("0 0 0 29 Feb *", "2026-01-01T00:00:00Z")).toEqual(["2028-02-29T00:00:00.000Z"]);
  });

  it.each([
    ["* * * * *", /five fields|has 5 fields/],
    ["60 * * * * *", /second 60 is outside 0-59/],
    ["0 0 24 * * *", /hour 24 is outside 0-23/],
    ["0 0 0 0 * *", /day 0 is outside 1-31/],
    ["0 0 0 * Foo *", /month "Foo" is neither a number nor a name/],
    ["0 0 0 * * 7", /day-of-week 7 is outside 0-6/],
    ["0 0 0 5-1 * *", /range 5-1 runs backwards/],
    ["*/0 * * * * *", /step must be at least 1/],
    ["0 0 0 31 Feb *", /no month in it has such a day/],
  ])("refuses %s, naming the field", (expression, problem) => {
    expect(() => parseNcrontab(expression)).toThrow(NcrontabError);
    expect(() => parseNcrontab(expression)).toThrow(problem);
  });

  it("passes the host's timer info in the host's names", () => {
    const input = timerInputOf({ last: iso("2026-01-01T00:00:00Z"), next: iso("2026-01-01T00:01:00Z"), lastUpdated: iso("2026-01-01T00:00:00Z") }, false);
    expect(JSON.parse(input.json)).toEqual({
      Schedule: { AdjustForDST: true },
      ScheduleStatus: { Last: "2026-01-01T00:00:00.000Z", Next: "2026-01-01T00:01:00.000Z", LastUpdated: "2026-01-01T00:00:00.000Z" },
      IsPastDue: false,
    });
  });
});

describe("scheduling", () => {
  beforeEach(() => {
    vi.useFakeTimers({ now: iso("2026-01-01T00:00:00.500Z") });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  function recordingApp(runFor: (call: number) => number) {
    const calls: { at: string; last: string; next: string }[] = [];
    return {
      calls,
      app: {
        async invoke(_name: string, input: InvocationInput) {
          const info = JSON.parse((input.inputData?.[0]?.data as { json: string }).json) as { ScheduleStatus: { Last: string; Next: string } };
          calls.push({ at: new Date().toISOString(), last: info.ScheduleStatus.Last, next: info.ScheduleStatus.Next });
          await new Promise((resolve) => setTimeout(resolve, runFor(calls.length)));
          return {};
        },
      },
    };
  }
  const trigger = (expression: string, runOnStartup = false): TimerFunction => ({ functionName: "tick", triggerName: "timer", schedule: parseNcrontab(expression), runOnStartup });

  it("runs at each occurrence, never two at once: the occurrence after a long run's start runs right after it, the others it overlapped are skipped", async () => {
    // Runs take 100 ms, except the second, which takes 2.5 s and so spans two occurrences.
    const { app, calls } = recordingApp((n) => (n === 2 ? 2_500 : 100));
    const timers = startTimerTriggers({ app, triggers: [trigger("* * * * * *")], log: () => {} });
    await vi.advanceTimersByTimeAsync(5_000);
    await timers.close();
    expect(calls.slice(0, 4)).toEqual([
      { at: "2026-01-01T00:00:01.000Z", last: "0001-01-01T00:00:00.000Z", next: "2026-01-01T00:00:01.000Z" },
      { at: "2026-01-01T00:00:02.000Z", last: "2026-01-01T00:00:01.000Z", next: "2026-01-01T00:00:02.000Z" },
      // The 3 s occurrence passed while the second run went on: it runs as soon as that run ends (a
      // timer of the shortest delay, 1 ms), and 4 s is skipped.
      { at: "2026-01-01T00:00:04.501Z", last: "2026-01-01T00:00:02.000Z", next: "2026-01-01T00:00:03.000Z" },
      { at: "2026-01-01T00:00:05.000Z", last: "2026-01-01T00:00:04.501Z", next: "2026-01-01T00:00:05.000Z" },
    ]);
  });

  it("runs once at start with runOnStartup, stops on close and waits for the run in progress", async () => {
    const { app, calls } = recordingApp(() => 300);
    const timers = startTimerTriggers({ app, triggers: [trigger("0 0 * * * *", true)], log: () => {} });
    await vi.advanceTimersByTimeAsync(100);
    expect(calls).toEqual([{ at: "2026-01-01T00:00:00.500Z", last: "0001-01-01T00:00:00.000Z", next: "2026-01-01T01:00:00.000Z" }]);
    let closed = false;
    const closing = timers.close().then(() => (closed = true));
    await vi.advanceTimersByTimeAsync(100);
    expect(closed).toBe(false);
    await vi.advanceTimersByTimeAsync(200);
    await closing;
    await vi.advanceTimersByTimeAsync(3_600_000);
    expect(calls).toHaveLength(1);
  });
});
