/**
 * The api's continuation tokens: the database's own token inside an envelope that names the caller
 * it was issued to, base64url-encoded. A token the api did not issue to this caller (altered,
 * truncated, hand-made from a guessed database token, or another user's) fails to open and is a
 * 400, deterministically, before the database is asked.
 *
 * Not a MAC: a caller who rebuilds the envelope around a database token of their own making gets it
 * passed to the database, which answers with a page of that caller's jobs or refuses it (400). The
 * query is parameterised and reads the caller's partition only, so no token reaches another
 * user's jobs; a MAC would need a key shared by every api instance, which this keyless design
 * does not keep.
 */
import { createHash } from "node:crypto";
import { InvalidContinuationToken } from "../shared/job-store.js";

interface Envelope {
  /** Format version. */
  v: 1;
  /** Who it was issued to: a digest of the user id (a token does not reveal the id itself). */
  u: string;
  /** The database's continuation token. */
  c: string;
}

function callerTag(userId: string): string {
  return createHash("sha256").update(`continuation\u0000${userId}`).digest("base64url").slice(0, 22);
}

export function sealContinuationToken(userId: string, databaseToken: string): string {
  const envelope: Envelope = { v: 1, u: callerTag(userId), c: databaseToken };
  return Buffer.from(JSON.stringify(envelope), "utf8").toString("base64url");
}

/** The database's token inside `token`; throws {@link InvalidContinuationToken} for anything else. */
export function openContinuationToken(userId: string, token: string): string {
  const text = Buffer.from(token, "base64url").toString("utf8");
  // base64url decoding never fails; a token that does not re-encode identically was not ours.
  if (Buffer.from(text, "utf8").toString("base64url") !== token) throw new InvalidContinuationToken();
  let envelope: unknown;
  try {
    envelope = JSON.parse(text);
  } catch {
    throw new InvalidContinuationToken();
  }
  if (typeof envelope !== "object" || envelope === null || Array.isArray(envelope)) throw new InvalidContinuationToken();
  const { v, u, c, ...rest } = envelope as Record<string, unknown>;
  if (v !== 1 || u !== callerTag(userId) || typeof c !== "string" || c === "" || Object.keys(rest).length > 0) throw new InvalidContinuationToken();
  return c;
}
