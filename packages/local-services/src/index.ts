/**
 * Launchers for the third-party emulators the local platform runs next to our own: Azurite (Blob
 * Storage, a child process) and @vercel/cosmosdb-server (Cosmos DB, in-process over HTTPS), and the
 * loopback certificate the Cosmos emulator serves. README.md next to this folder says what each does.
 */
export { allowBrowserUploads, AZURITE_ACCOUNT_KEY, AZURITE_ACCOUNT_NAME, startAzurite } from "./azurite.js";
export type { AzuriteBlobEmulator, AzuriteOptions } from "./azurite.js";
export { createLoopbackCertificate, isCertificateUsable, loopbackCertificateIn } from "./certificates.js";
export type { LoopbackCertificate, StoredLoopbackCertificate } from "./certificates.js";
export { COSMOS_EMULATOR_KEY, startCosmosEmulator } from "./cosmos.js";
export type { CosmosEmulator } from "./cosmos.js";
