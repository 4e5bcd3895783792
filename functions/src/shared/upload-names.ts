/**
 * Where a user's uploads live in the uploads container: one prefix per user. The api issues upload
 * URLs only under the caller's prefix and accepts a blob job only for a blob under it, so no caller
 * can read or write another's uploads. The prefix is a hash of the user id: any id maps to a short,
 * safe blob-name segment, and a blob name does not reveal whose it is.
 */
import { createHash } from "node:crypto";

export function uploadPrefix(userId: string): string {
  return `users/${createHash("sha256").update(userId).digest("hex").slice(0, 40)}/`;
}

/** The blob name for a new upload of this user (`id` is random, minted by the api). */
export function uploadBlobName(userId: string, id: string): string {
  return `${uploadPrefix(userId)}${id}.txt`;
}

/** True when `blobName` is one of this user's uploads (exactly one segment below the prefix). */
export function isUploadOf(userId: string, blobName: string): boolean {
  const prefix = uploadPrefix(userId);
  if (!blobName.startsWith(prefix)) return false;
  const rest = blobName.slice(prefix.length);
  return /^[A-Za-z0-9-]{1,64}\.txt$/.test(rest);
}
