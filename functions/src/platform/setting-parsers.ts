/** Parsers for setting declarations: each throws an Error whose message says what is allowed. */

export const integer = (min: number, max: number) => (raw: string) => {
  const n = Number(raw);
  if (!/^\d+$/.test(raw.trim()) || !Number.isSafeInteger(n) || n < min || n > max) {
    throw new Error(`must be an integer from ${min} to ${max}`);
  }
  return n;
};

export const httpUrl = (raw: string) => {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new Error("must be an absolute http(s) URL");
  }
  if (url.protocol !== "https:" && url.protocol !== "http:") throw new Error("must be an absolute http(s) URL");
  return url.toString();
};

export const flag = (raw: string) => {
  if (raw !== "true" && raw !== "false") throw new Error('must be "true" or "false"');
  return raw === "true";
};

/** One NCRONTAB field: `*`, a value or a range, an optional `/step`, comma-separated lists; names for months and days. */
const NCRONTAB_FIELD = /^(?:\*|[0-9A-Za-z]+(?:-[0-9A-Za-z]+)?)(?:\/\d+)?(?:,(?:\*|[0-9A-Za-z]+(?:-[0-9A-Za-z]+)?)(?:\/\d+)?)*$/;

/**
 * A timer trigger's schedule as the Functions host reads it: NCRONTAB with six fields,
 * `{second} {minute} {hour} {day} {month} {day-of-week}`. The shape is checked here; the host (and
 * the local host, which evaluates it) check the values.
 */
export const ncrontab = (raw: string) => {
  const fields = raw.trim().split(/\s+/);
  if (fields.length !== 6 || !fields.every((field) => NCRONTAB_FIELD.test(field))) {
    throw new Error('must be an NCRONTAB expression with six fields, "{second} {minute} {hour} {day} {month} {day-of-week}", e.g. "0 */5 * * * *"');
  }
  return fields.join(" ");
};
