/**
 * Shared Access Signature tokens, as the SDK builds them from a connection string and puts them
 * on the $cbs link: `SharedAccessSignature sr=<url-encoded audience>&sig=<base64 HMAC-SHA256>&se=<expiry>&skn=<key name>`,
 * signed over `<sr as sent>\n<se>` with the key's UTF-8 bytes.
 */
import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";

export type TokenCheck = { valid: true; audience: string } | { valid: false; reason: string };

export function signSasToken(audience: string, keyName: string, key: string, expiresAtSeconds: number): string {
  const sr = encodeURIComponent(audience);
  const sig = createHmac("sha256", key).update(`${sr}\n${expiresAtSeconds}`).digest("base64");
  return `SharedAccessSignature sr=${sr}&sig=${encodeURIComponent(sig)}&se=${expiresAtSeconds}&skn=${encodeURIComponent(keyName)}`;
}

export function verifySasToken(token: unknown, keyName: string, key: string, nowMs: number): TokenCheck {
  if (typeof token !== "string" || !token.startsWith("SharedAccessSignature ")) {
    return { valid: false, reason: "The token is not a SharedAccessSignature." };
  }
  const fields = new Map<string, string>();
  for (const part of token.slice("SharedAccessSignature ".length).split("&")) {
    const eq = part.indexOf("=");
    if (eq > 0) fields.set(part.slice(0, eq), part.slice(eq + 1));
  }
  const sr = fields.get("sr");
  const sig = fields.get("sig");
  const se = fields.get("se");
  const skn = fields.get("skn");
  if (!sr || !sig || !se || !skn) return { valid: false, reason: "The token lacks sr, sig, se or skn." };
  if (decodeURIComponent(skn) !== keyName) return { valid: false, reason: `Unknown key name "${decodeURIComponent(skn)}".` };
  const expiry = Number(se);
  if (!Number.isFinite(expiry) || expiry * 1000 <= nowMs) return { valid: false, reason: "The token has expired." };
  const expected = createHmac("sha256", key).update(`${sr}\n${se}`).digest();
  const given = Buffer.from(decodeURIComponent(sig), "base64");
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
    return { valid: false, reason: "The token signature does not match the key." };
  }
  return { valid: true, audience: decodeURIComponent(sr) };
}

/** The entity path an audience names: `sb://host:port/jobs/$management` -> `jobs/$management`. */
export function audiencePath(audience: string): string {
  return audience
    .replace(/^[a-z][a-z0-9+.-]*:\/\/[^/]*/i, "")
    .replace(/^\/+|\/+$/g, "")
    .toLowerCase();
}

export function randomKey(): string {
  return randomBytes(32).toString("base64");
}
