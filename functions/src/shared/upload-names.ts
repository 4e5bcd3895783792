/**
 * Where a user's uploads live in the uploads container: one prefix per user. The api issues upload
 * URLs only under the caller's prefix and accepts a blob job only for a blob under it, so no caller
 * can read or write another's uploads. The prefix is a hash of the user id: any id maps to a short,
 * safe blob-name segment, and a blob name does not reveal whose it is.
 *
 * The name also carries the size the caller declared when asking for the upload URL
 * (`<id>.<size>.txt`). A SAS cannot limit what is written, but it names exactly one blob, so the
 * caller cannot choose another name: the declared size in the name is the api's own record of it,
 * with no state kept anywhere, and the api accepts a job only for a blob no larger.
 */
import { createHash } from "node:crypto";

export function uploadPrefix(userId: string): string {
  return `users/${createHash("sha256").update(userId).digest("hex").slice(0, 40)}/`;
}

/** The blob name for a new upload of this user (`id` is random, minted by the api) of at most `declaredBytes`. */
export function uploadBlobName(userId: string, id: string, declaredBytes: number): string {
  return `${uploadPrefix(userId)}${id}.${declaredBytes}.txt`;
}

/**
 * The part below the prefix: a random id, then the declared size. Names without a size are those
 * issued before sizes were recorded; they are still the user's (jobs queued then must not fail).
 */
const UPLOAD_NAME = /^[A-Za-z0-9-]{1,64}(?:\.(\d{1,15}))?\.txt$/;

/** True when `blobName` is one of this user's uploads (exactly one segment below the prefix). */
export function isUploadOf(userId: string, blobName: string): boolean {
  const prefix = uploadPrefix(userId);
  if (!blobName.startsWith(prefix)) return false;
  return UPLOAD_NAME.test(blobName.slice(prefix.length));
}

/** The size declared for this upload, or undefined for a name issued before sizes were recorded. */
export function declaredSizeOf(blobName: string): number | undefined {
  const size = UPLOAD_NAME.exec(blobName.slice(blobName.lastIndexOf("/") + 1))?.[1];
  return size === undefined ? undefined : Number(size);
}
