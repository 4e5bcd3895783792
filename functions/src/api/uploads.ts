/**
 * Direct uploads: the api hands the browser a short-lived, write-only SAS URL for one new blob
 * under the caller's own prefix, and later checks that blob before accepting a job for it.
 *
 * Which SAS is signed follows the shape of the UploadsStorage setting:
 * - identity (Azure): a user-delegation SAS, signed with a key the api's managed identity obtains
 *   from Entra ID. No account key exists anywhere (the account has shared-key access disabled).
 * - connection string (local platform only): Azurite cannot issue user-delegation keys without a
 *   bearer token, so the SAS is a service SAS signed with the connection string's account key.
 *
 * A SAS cannot limit the size of what is written. The limit is enforced where it matters: the
 * upload request declares its size (checked against UPLOAD_MAX_BYTES), POST /api/jobs checks the
 * stored blob's real size, and the agent stops reading past the limit.
 */
import { randomUUID } from "node:crypto";
import type { BlobServiceClient, ContainerClient, UserDelegationKey } from "@azure/storage-blob";
import { isUploadOf, uploadBlobName } from "../shared/upload-names.js";

export interface IssuedUpload {
  readonly blobName: string;
  readonly uploadUrl: string;
  readonly expiresAt: Date;
}

export type UploadCheck = { ok: true; size: number } | { ok: false; reason: "missing" | "notOwned" };

export interface Uploads {
  /** A write-only URL for a new blob under the caller's prefix, valid for `ttlSeconds`. */
  issueUploadUrl(userId: string, ttlSeconds: number, now?: Date): Promise<IssuedUpload>;
  /** Whether `blobName` is an existing upload of this caller, and its size. */
  check(userId: string, blobName: string): Promise<UploadCheck>;
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

  async issueUploadUrl(userId: string, ttlSeconds: number, now: Date = new Date()): Promise<IssuedUpload> {
    const { BlobSASPermissions, SASProtocol, generateBlobSASQueryParameters } = require("@azure/storage-blob") as typeof import("@azure/storage-blob");
    const blobName = uploadBlobName(userId, randomUUID());
    const blob = this.container.getBlockBlobClient(blobName);
    const startsOn = new Date(now.getTime() - START_SKEW_MS);
    const expiresOn = new Date(now.getTime() + ttlSeconds * 1000);
    // Create + write only: the URL can neither read, list, nor delete, and names exactly one blob.
    const permissions = BlobSASPermissions.parse("cw");
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
      return { ok: true, size: properties.contentLength ?? 0 };
    } catch (error) {
      if ((error as { statusCode?: unknown }).statusCode === 404) return { ok: false, reason: "missing" };
      throw error;
    }
  }

  async ping(): Promise<void> {
    // Reachability, authorisation and the container's existence in one read.
    await this.container.getProperties();
  }
}
