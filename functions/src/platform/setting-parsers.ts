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
