/**
 * HS256 JSON Web Tokens, the only kind the Web PubSub SDKs sign with an access key
 * (server REST calls and client access tokens alike). Small enough to own: node:crypto gives
 * HMAC and a constant-time compare, and owning it keeps the checks explicit.
 */
import { createHmac, timingSafeEqual } from "node:crypto";

export type JwtClaims = Record<string, unknown> & {
  aud?: string | string[];
  sub?: string;
  exp?: number;
  nbf?: number;
  iat?: number;
};

/** Why a token was refused; `reason` is safe to show to the caller. */
export class JwtError extends Error {
  constructor(readonly reason: string) {
    super(reason);
    this.name = "JwtError";
  }
}

const base64UrlJson = (value: unknown) => Buffer.from(JSON.stringify(value)).toString("base64url");

function hmac(key: string, signingInput: string): Buffer {
  return createHmac("sha256", key).update(signingInput).digest();
}

/** Signs `claims` with HS256. `iat` is added when absent; `exp` is the caller's choice. */
export function signHs256(claims: JwtClaims, key: string, now: number = Date.now()): string {
  const body: JwtClaims = { iat: Math.floor(now / 1000), ...claims };
  const signingInput = `${base64UrlJson({ alg: "HS256", typ: "JWT" })}.${base64UrlJson(body)}`;
  return `${signingInput}.${hmac(key, signingInput).toString("base64url")}`;
}

export interface VerifyOptions {
  key: string;
  /** Accepted audiences; the token must name at least one (compared by {@link sameAudience}). */
  audiences: readonly string[];
  /** Current time in ms (tests pass a fixed clock). */
  now?: number;
}

/**
 * Verifies signature, algorithm, expiry, not-before and audience, in that order, and returns
 * the claims. Throws {@link JwtError} naming the first check that failed.
 */
export function verifyHs256(token: string, options: VerifyOptions): JwtClaims {
  const parts = token.split(".");
  if (parts.length !== 3) throw new JwtError("token is not a JWS compact serialization");
  const [encodedHeader, encodedBody, encodedSignature] = parts as [string, string, string];

  const header = parseJsonPart(encodedHeader, "header");
  if (header["alg"] !== "HS256") throw new JwtError(`token algorithm must be HS256, got ${String(header["alg"])}`);

  const expected = hmac(options.key, `${encodedHeader}.${encodedBody}`);
  const actual = Buffer.from(encodedSignature, "base64url");
  if (actual.length !== expected.length || !timingSafeEqual(actual, expected)) {
    throw new JwtError("token signature is invalid (signed with another access key?)");
  }

  const claims = parseJsonPart(encodedBody, "payload") as JwtClaims;
  const nowSeconds = Math.floor((options.now ?? Date.now()) / 1000);
  if (claims.exp !== undefined) {
    if (typeof claims.exp !== "number") throw new JwtError("token exp must be a number");
    if (claims.exp <= nowSeconds) throw new JwtError(`token expired at ${new Date(claims.exp * 1000).toISOString()}`);
  }
  if (claims.nbf !== undefined) {
    if (typeof claims.nbf !== "number") throw new JwtError("token nbf must be a number");
    if (claims.nbf > nowSeconds) throw new JwtError(`token is not valid before ${new Date(claims.nbf * 1000).toISOString()}`);
  }

  const tokenAudiences = claims.aud === undefined ? [] : Array.isArray(claims.aud) ? claims.aud : [claims.aud];
  const matches = tokenAudiences.some(
    (aud) => typeof aud === "string" && options.audiences.some((accepted) => sameAudience(aud, accepted)),
  );
  if (!matches) {
    throw new JwtError(`token audience ${JSON.stringify(claims.aud ?? null)} does not match ${options.audiences[0] ?? "(none)"}`);
  }
  return claims;
}

/**
 * Audiences are URLs; scheme and host compare case-insensitively and a trailing slash on the
 * path does not matter, the way the service treats `https://x/client/hubs/h` and `.../h/`.
 */
export function sameAudience(a: string, b: string): boolean {
  const normalise = (s: string) => {
    try {
      const url = new URL(s);
      const path = url.pathname.replace(/\/+$/, "");
      return `${url.protocol}//${url.host}${path}${url.search}`.toLowerCase();
    } catch {
      return s.replace(/\/+$/, "").toLowerCase();
    }
  };
  return normalise(a) === normalise(b);
}

function parseJsonPart(encoded: string, what: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(encoded, "base64url").toString("utf8"));
  } catch {
    throw new JwtError(`token ${what} is not base64url JSON`);
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new JwtError(`token ${what} is not a JSON object`);
  }
  return value as Record<string, unknown>;
}
