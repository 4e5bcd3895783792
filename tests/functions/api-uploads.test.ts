/**
 * The Azure-side upload signing (user-delegation SAS), which no local emulator can exercise: the
 * delegation key request is stubbed on a real BlobServiceClient; the SAS itself is built by the SDK.
 */
import { BlobServiceClient, type UserDelegationKey } from "@azure/storage-blob";
import { describe, expect, it } from "vitest";
import { BlobUploads } from "../../functions/src/api/uploads.js";
import { declaredSizeOf, uploadPrefix } from "../../functions/src/shared/upload-names.js";

function serviceWithDelegationKeys() {
  const credential = { getToken: async () => ({ token: "t", expiresOnTimestamp: Date.now() + 3_600_000 }) };
  const service = new BlobServiceClient("https://acct.blob.core.windows.net", credential);
  const requests: { startsOn: Date; expiresOn: Date }[] = [];
  const key = (startsOn: Date, expiresOn: Date): UserDelegationKey => ({
    signedObjectId: "11111111-1111-1111-1111-111111111111",
    signedTenantId: "22222222-2222-2222-2222-222222222222",
    signedStartsOn: startsOn,
    signedExpiresOn: expiresOn,
    signedService: "b",
    signedVersion: "2025-01-05",
    value: Buffer.alloc(32, 7).toString("base64"),
  });
  // Stands in for the Entra-authorised call Azure would answer.
  service.getUserDelegationKey = (async (startsOn: Date, expiresOn: Date) => {
    requests.push({ startsOn, expiresOn });
    return key(startsOn, expiresOn);
  }) as unknown as BlobServiceClient["getUserDelegationKey"];
  return { service, requests };
}

describe("user-delegation upload URLs", () => {
  it("signs a create-only, https-only SAS for one blob under the caller's prefix, named with the declared size", async () => {
    const { service } = serviceWithDelegationKeys();
    const uploads = new BlobUploads(service, "uploads", "userDelegation");
    const now = new Date("2026-05-01T12:00:00Z");
    const issued = await uploads.issueUploadUrl("alice", 1234, 600, now);
    const url = new URL(issued.uploadUrl);
    expect(url.origin).toBe("https://acct.blob.core.windows.net");
    expect(url.pathname).toBe(`/uploads/${issued.blobName}`);
    expect(issued.blobName.startsWith(uploadPrefix("alice"))).toBe(true);
    expect(declaredSizeOf(issued.blobName)).toBe(1234);
    const sas = url.searchParams;
    // Create only: the URL cannot overwrite, read, list or delete (Write would allow overwriting).
    expect(sas.get("sp")).toBe("c");
    expect(sas.get("sr")).toBe("b");
    expect(sas.get("spr")).toBe("https");
    expect(sas.get("skoid")).toBe("11111111-1111-1111-1111-111111111111");
    expect(sas.get("sig")).toMatch(/\S/);
    expect(new Date(sas.get("se")!).getTime()).toBe(now.getTime() + 600_000);
    expect(issued.expiresAt.getTime()).toBe(now.getTime() + 600_000);
  });

  it("reuses the delegation key while it outlives the SAS, and fetches a new one when it would not", async () => {
    const { service, requests } = serviceWithDelegationKeys();
    const uploads = new BlobUploads(service, "uploads", "userDelegation");
    const now = new Date("2026-05-01T12:00:00Z");
    await uploads.issueUploadUrl("alice", 10, 600, now);
    await uploads.issueUploadUrl("bob", 10, 3600, new Date(now.getTime() + 60_000));
    expect(requests).toHaveLength(1);
    expect(requests[0]!.expiresOn.getTime()).toBeGreaterThan(now.getTime() + 3_600_000);
    // Six hours on, the cached key would expire before the new SAS does.
    await uploads.issueUploadUrl("alice", 10, 3600, new Date(now.getTime() + 6 * 3_600_000));
    expect(requests).toHaveLength(2);
  });

  it("never issues two URLs for the same blob", async () => {
    const { service } = serviceWithDelegationKeys();
    const uploads = new BlobUploads(service, "uploads", "userDelegation");
    const names = await Promise.all([1, 2, 3].map(() => uploads.issueUploadUrl("alice", 10, 600).then((u) => u.blobName)));
    expect(new Set(names).size).toBe(3);
  });
});
