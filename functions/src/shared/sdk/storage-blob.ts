/** What the services use of @azure/storage-blob, loaded on first use (README.md beside this file). */
export { BlobSASPermissions, BlobServiceClient, generateBlobSASQueryParameters, SASProtocol, StorageRetryPolicyType } from "@azure/storage-blob";
