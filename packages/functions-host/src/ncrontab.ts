/**
 * NCRONTAB, the schedule language of the Functions timer trigger, as the host evaluates it (it uses
 * the NCrontab library): six fields `{second} {minute} {hour} {day} {month} {day-of-week}`, each
 * `*`, a value, a range `a-b`, a step `/n` on either, or a comma-separated list of those; months
 * and days of the week also by name (`Jan`, `January`, `Sun`, `Sunday`; Sunday is 0). A time
 * matches when every field does (the day of the month AND the day of the week, not either, as
 * NCrontab reads them). Times are UTC, as the host's are unless WEBSITE_TIME_ZONE says otherwise.
 */

interface FieldSpec {
  readonly name: string;
  readonly min: number;
  readonly max: number;
  readonly names?: readonly string[];
}

const FIELDS: readonly FieldSpec[] = [
  { name: "second", min: 0, max: 59 },
  { name: "minute", min: 0, max: 59 },
  { name: "hour", min: 0, max: 23 },
  { name: "day", min: 1, max: 31 },
  { name: "month", min: 1, max: 12, names: ["january", "february", "march", "april", "may", "june", "july", "august", "september", "october", "november", "december"] },
  { name: "day-of-week", min: 0, max: 6, names: ["sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday"] },
];

export class NcrontabError extends Error {
  constructor(expression: string, problem: string) {
    super(`the schedule ${JSON.stringify(expression)} is not a valid NCRONTAB expression: ${problem}`);
    this.name = "NcrontabError";
  }
}

function valueOf(token: string, spec: FieldSpec, fail: (problem: string) => never): number {
  if (/^\d+$/.test(token)) {
    const value = Number(token);
    if (value < spec.min || value > spec.max) fail(`${spec.name} ${value} is outside ${spec.min}-${spec.max}`);
    return value;
  }
  const lower = token.toLowerCase();
  const index = spec.names?.findIndex((name) => name === lower || (lower.length === 3 && name.startsWith(lower))) ?? -1;
  if (index < 0) fail(`${spec.name} "${token}" is neither a number nor a name`);
  return spec.min + index;
}

function parseField(text: string, spec: FieldSpec, fail: (problem: string) => never): Set<number> {
  const values = new Set<number>();
  for (const part of text.split(",")) {
    const match = /^(\*|[0-9A-Za-z]+(?:-[0-9A-Za-z]+)?)(?:\/(\d+))?$/.exec(part);
    if (!match) fail(`${spec.name} "${part}" is not *, a value, a range or a step`);
    const [, range = "", stepText] = match;
    const step = stepText === undefined ? 1 : Number(stepText);
    if (step < 1) fail(`${spec.name} step must be at least 1`);
    let from: number;
    let to: number;
    if (range === "*") {
      [from, to] = [spec.min, spec.max];
    } else if (range.includes("-")) {
      const [a = "", b = ""] = range.split("-");
      [from, to] = [valueOf(a, spec, fail), valueOf(b, spec, fail)];
      if (from > to) fail(`${spec.name} range ${range} runs backwards`);
    } else {
      from = valueOf(range, spec, fail);
      // `5/15` means from 5 to the end in steps of 15, as in NCrontab.
      to = stepText === undefined ? from : spec.max;
    }
    for (let value = from; value <= to; value += step) values.add(value);
  }
  return values;
}

export interface Schedule {
  readonly expression: string;
  /** The first matching time strictly after `after` (whole seconds, UTC). */
  next(after: Date): Date;
}

/** Parses an expression; throws {@link NcrontabError} naming the field at fault. */
export function parseNcrontab(expression: string): Schedule {
  const fail = (problem: string): never => {
    throw new NcrontabError(expression, problem);
  };
  const texts = expression.trim().split(/\s+/);
  if (texts.length !== 6) fail(`it has ${texts.length} fields; the timer trigger takes six, {second} {minute} {hour} {day} {month} {day-of-week}`);
  const [seconds, minutes, hours, days, months, weekdays] = FIELDS.map((spec, index) => parseField(texts[index] ?? "", spec, fail)) as [
    Set<number>,
    Set<number>,
    Set<number>,
    Set<number>,
    Set<number>,
    Set<number>,
  ];
  if (![...days].some((day) => [...months].some((month) => day <= daysIn(month, 2000)))) fail("no month in it has such a day");
  return {
    expression,
    next(after) {
      const t = new Date(Math.floor(after.getTime() / 1000) * 1000 + 1000);
      // Each step moves to the start of the next unit that could match; a few thousand steps at most
      // (the widest gap, a 29th of February on a given weekday, is within 28 years).
      for (let guard = 0; guard < 1_000_000; guard += 1) {
        if (!months.has(t.getUTCMonth() + 1)) {
          t.setUTCMonth(t.getUTCMonth() + 1, 1);
          t.setUTCHours(0, 0, 0, 0);
        } else if (!days.has(t.getUTCDate()) || !weekdays.has(t.getUTCDay())) {
          t.setUTCDate(t.getUTCDate() + 1);
          t.setUTCHours(0, 0, 0, 0);
        } else if (!hours.has(t.getUTCHours())) {
          t.setUTCHours(t.getUTCHours() + 1, 0, 0, 0);
        } else if (!minutes.has(t.getUTCMinutes())) {
          t.setUTCMinutes(t.getUTCMinutes() + 1, 0, 0);
        } else if (!seconds.has(t.getUTCSeconds())) {
          t.setUTCSeconds(t.getUTCSeconds() + 1, 0);
        } else {
          return new Date(t.getTime());
        }
      }
      throw new NcrontabError(expression, `no matching time found after ${after.toISOString()}`);
    },
  };
}

function daysIn(month: number, leapYear: number): number {
  return new Date(Date.UTC(leapYear, month, 0)).getUTCDate();
}
