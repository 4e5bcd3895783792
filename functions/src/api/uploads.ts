/**
 * Direct uploads: the api hands the browser a short-lived, create-only SAS URL for one new blob
 * under the caller's own prefix, and later checks that blob before accepting a job for it.
 *
 * The SAS grants Create (`c`) only: the holder can create that one blob once (Put Blob; with this
 * service version also Put Block and Put Block List into the new blob), but cannot overwrite it,
 * read it, list, delete, lease, set its metadata, or write pages or append blocks. Copying into
 * the blob cannot be refused by a permission (Create covers "copy a blob to a new blob"), so the
 * check refuses a blob whose properties show a copy. In Azure, Copy Blob also needs the source's
 * own authorisation (public, or a SAS for it): the uploads container is private and no read SAS
 * is ever issued, so a copy can bring only bytes the caller could have uploaded anyway.
 * Azurite differs here: it copies from any blob of the account without authorising the source,
 * which is how the abuse review read another user's upload locally; the check closes that too.
 *
 * Which SAS is signed follows the shape of the UploadsStorage setting:
 * - identity (Azure): a user-delegation SAS, signed with a key the api's managed identity obtains
 *   from Entra ID. No account key exists anywhere (the account has shared-key access disabled).
 * - connection string (local platform only): Azurite cannot issue user-delegation keys without a
 *   bearer token, so the SAS is a service SAS signed with the connection string's account key.
 *
 * A SAS cannot limit the size of what is written. The limit is enforced where it matters: the
 * upload request declares its size (checked against UPLOAD_MAX_BYTES and recorded in the blob's
 * name), POST /api/jobs checks the stored blob against the declared size, and the agent stops
 * reading past the limit. A refused blob is deleted; an unused one is deleted by the container's
 * lifecycle rule (resources.ts, deleteAfterDays).
 */
import { randomUUID } from "node:crypto";
import type { BlobServiceClient, ContainerClient, UserDelegationKey } from "@azure/storage-blob";
import { declaredSizeOf, isUploadOf, uploadBlobName } from "../shared/upload-names.js";

export interface IssuedUpload {
  readonly blobName: string;
  readonly uploadUrl: string;
  readonly expiresAt: Date;
}

/** What the stored blob's properties say, for the api to decide whether to accept it. */
export interface StoredUpload {
  readonly size: number;
  /** The size the caller declared when asking for the URL (from the name); undefined for older names. */
  readonly declaredSize: number | undefined;
  /** The version that was checked: a job pins it, and the agent reads exactly this version. */
  readonly etag: string;
  /** BlockBlob for a browser upload; a Create SAS can also make an empty page or append blob. */
  readonly blobType: string | undefined;
  /** Its content came from Copy Blob (x-ms-copy-*), not from an upload through the SAS. */
  readonly copied: boolean;
}

export type UploadCheck = { ok: true; upload: StoredUpload } | { ok: false; reason: "missing" | "notOwned" };

export interface Uploads {
  /** A create-only URL for a new blob of at most `declaredBytes` under the caller's prefix, valid for `ttlSeconds`. */
  issueUploadUrl(userId: string, declaredBytes: number, ttlSeconds: number, now?: Date): Promise<IssuedUpload>;
  /** Whether `blobName` is an existing upload of this caller, and what its properties say. */
  check(userId: string, blobName: string): Promise<UploadCheck>;
  /** Deletes a refused upload, if it is still the version that was checked. Missing is not an error. */
  discard(blobName: string, etag: string): Promise<void>;
  ping(): Promise<void>;
}

/** Clock skew allowance: the SAS starts a little in the past. */
const START_SKEW_MS = 5 * 60 * 1000;
/** User-delegation keys are cached this long (Azure allows up to 7 days). */
const DELEGATION_KEY_LIFETIME_MS = 6 * 60 * 60 * 1000;

export class BlobUploads implements Uploads {
  private delegationKey: { key: UserDelegationKey; expiresOn: Date } | undefined;

  /** `signing`: how the setting's shape says SAS URLs are signed (see the module comment). */
  constructor(
    private readonly service: BlobServiceClient,
    private readonly containerName: string,
    readonly signing: "userDelegation" | "accountKey",
  ) {}

  private get container(): ContainerClient {
    return this.service.getContainerClient(this.containerName);
  }

  async issueUploadUrl(userId: string, declaredBytes: number, ttlSeconds: number, now: Date = new Date()): Promise<IssuedUpload> {
    const { BlobSASPermissions, SASProtocol, generateBlobSASQueryParameters } = require("../shared/sdk/storage-blob.js") as typeof import("../shared/sdk/storage-blob.js");
    const blobName = uploadBlobName(userId, randomUUID(), declaredBytes);
    const blob = this.container.getBlockBlobClient(blobName);
    const startsOn = new Date(now.getTime() - START_SKEW_MS);
    const expiresOn = new Date(now.getTime() + ttlSeconds * 1000);
    // Create only, for exactly one blob (see the module comment for what that allows).
    const permissions = BlobSASPermissions.parse("c");
    if (this.signing === "accountKey") {
      const uploadUrl = await blob.generateSasUrl({ permissions, startsOn, expiresOn, protocol: SASProtocol.HttpsAndHttp });
      return { blobName, uploadUrl, expiresAt: expiresOn };
    }
    const key = await this.userDelegationKey(now, expiresOn);
    const sas = generateBlobSASQueryParameters(
      { containerName: this.containerName, blobName, permissions, startsOn, expiresOn, protocol: SASProtocol.Https },
      key,
      this.service.accountName,
    ).toString();
    return { blobName, uploadUrl: `${blob.url}?${sas}`, expiresAt: expiresOn };
  }

  /** A cached delegation key that outlives the SAS (a SAS stops working when its key expires). */
  private async userDelegationKey(now: Date, sasExpiresOn: Date): Promise<UserDelegationKey> {
    if (this.delegationKey && this.delegationKey.expiresOn > sasExpiresOn) return this.delegationKey.key;
    const startsOn = new Date(now.getTime() - START_SKEW_MS);
    const expiresOn = new Date(Math.max(now.getTime() + DELEGATION_KEY_LIFETIME_MS, sasExpiresOn.getTime() + 60_000));
    const key = await this.service.getUserDelegationKey(startsOn, expiresOn);
    this.delegationKey = { key, expiresOn };
    return key;
  }

  async check(userId: string, blobName: string): Promise<UploadCheck> {
    if (!isUploadOf(userId, blobName)) return { ok: false, reason: "notOwned" };
    try {
      const properties = await this.container.getBlobClient(blobName).getProperties();
      if (!properties.etag) throw new Error(`blob ${blobName}: the service returned no ETag`);
      return {
        ok: true,
        upload: {
          size: properties.contentLength ?? 0,
          declaredSize: declaredSizeOf(blobName),
          etag: properties.etag,
          blobType: properties.blobType,
          copied: properties.copyId !== undefined || properties.copySource !== undefined || properties.copyStatus !== undefined,
        },
      };
    } catch (error) {
      if ((error as { statusCode?: unknown }).statusCode === 404) return { ok: false, reason: "missing" };
      throw error;
    }
  }

  async discard(blobName: string, etag: string): Promise<void> {
    await this.container.getBlobClient(blobName).deleteIfExists({ deleteSnapshots: "include", conditions: { ifMatch: etag } }).catch((error: unknown) => {
      // Changed since the check (412): whatever it is now, a job for it will be checked again.
      if ((error as { statusCode?: unknown }).statusCode !== 412) throw error;
    });
  }

  async ping(): Promise<void> {
    // Reachability, authorisation and the container's existence in one read.
    await this.container.getProperties();
  }
}
