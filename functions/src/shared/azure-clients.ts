/**
 * SDK clients from a settings {@link Connection}: identity-based in Azure (managed identity, no
 * keys), a connection string on the local platform. Each factory loads its SDK on first call
 * (through ./sdk/, see its README), so a service pays only for the SDKs it actually uses, and only
 * when it first needs them (cold start).
 *
 * The SDKs are loaded with a deferred `require`, not `import()`: this package is CommonJS, and
 * `import()` would load the SDKs' ESM builds beside the CommonJS builds other modules use (two
 * copies, `instanceof` across them fails). esbuild bundles a literal `require` lazily as well.
 */
import type { TokenCredential } from "@azure/identity";
import type { Container, Database } from "@azure/cosmos";
import type { ServiceBusClient } from "@azure/service-bus";
import type { BlobServiceClient } from "@azure/storage-blob";
import type { WebPubSubServiceClient } from "@azure/web-pubsub";
import type { Connection } from "../settings.js";

const credentials = new Map<string, Promise<TokenCredential>>();

/**
 * The credential for identity connections: the user-assigned managed identity when a clientId is
 * configured (what the Functions host does for `__clientId`), otherwise DefaultAzureCredential
 * (system-assigned identity in Azure, developer sign-in elsewhere). One instance per identity, so
 * tokens are cached across clients.
 */
export function credentialFor(clientId: string | undefined): Promise<TokenCredential> {
  const key = clientId ?? "";
  let credential = credentials.get(key);
  if (!credential) {
    const { DefaultAzureCredential, ManagedIdentityCredential } = require("./sdk/identity.js") as typeof import("./sdk/identity.js");
    credential = Promise.resolve(clientId ? new ManagedIdentityCredential({ clientId }) : new DefaultAzureCredential());
    credentials.set(key, credential);
  }
  return credential;
}

/** A value created on first use: call it for the value; `created()` tells whether it exists yet, without creating it. */
export interface CreatedOnFirstUse<T> {
  (): Promise<T>;
  /** The value if a creation has started (and not failed), else undefined. */
  created(): Promise<T> | undefined;
}

/**
 * A service's dependencies (or one of them), created once per process on first use and shared by
 * every invocation. A failed creation is not cached, so a later invocation retries it.
 */
export function createdOnFirstUse<T>(create: () => Promise<T>): CreatedOnFirstUse<T> {
  let created: Promise<T> | undefined;
  const get = () => {
    created ??= create().catch((error: unknown) => {
      created = undefined;
      throw error;
    });
    return created;
  };
  return Object.assign(get, { created: () => created });
}

/** True for http:// endpoints on a loopback address: the only place plain HTTP is acceptable. */
export function isLoopbackHttp(endpoint: string): boolean {
  let url: URL;
  try {
    url = new URL(endpoint);
  } catch {
    return false;
  }
  if (url.protocol !== "http:") return false;
  const host = url.hostname.replace(/^\[|\]$/g, "");
  return host === "localhost" || host === "::1" || /^127(\.\d{1,3}){3}$/.test(host);
}

/** Reads one `Key=value` part of an Azure connection string (keys are case-insensitive). */
export function connectionStringPart(connectionString: string, key: string): string | undefined {
  for (const part of connectionString.split(";")) {
    const index = part.indexOf("=");
    if (index > 0 && part.slice(0, index).trim().toLowerCase() === key.toLowerCase()) return part.slice(index + 1).trim();
  }
  return undefined;
}

/** A database handle on one Cosmos client: its containers share the client's connections. */
export async function createCosmosDatabase(connection: Connection, databaseName: string): Promise<Database> {
  const { CosmosClient } = require("./sdk/cosmos.js") as typeof import("./sdk/cosmos.js");
  const client =
    connection.mode === "identity"
      ? new CosmosClient({ endpoint: connection.endpoint, aadCredentials: await credentialFor(connection.clientId) })
      : new CosmosClient(connection.connectionString);
  return client.database(databaseName);
}

export async function createCosmosContainer(connection: Connection, databaseName: string, containerName: string): Promise<Container> {
  return (await createCosmosDatabase(connection, databaseName)).container(containerName);
}

/**
 * Retries for Blob Storage calls: three tries, 0.5 s then 1 s apart (at most 4 s). The SDK's own
 * default (four tries from 4 s apart) keeps a request waiting about half a minute before it may
 * answer 503 while storage is unreachable; this gives up within seconds, and the caller (a browser
 * told Retry-After, or Service Bus redelivering the agent's message) tries again later.
 */
export const BLOB_RETRY_OPTIONS = { maxTries: 3, retryDelayInMs: 500, maxRetryDelayInMs: 4_000 } as const;

export async function createBlobServiceClient(connection: Connection): Promise<BlobServiceClient> {
  const { BlobServiceClient, StorageRetryPolicyType } = require("./sdk/storage-blob.js") as typeof import("./sdk/storage-blob.js");
  const retryOptions = { ...BLOB_RETRY_OPTIONS, retryPolicyType: StorageRetryPolicyType.EXPONENTIAL };
  return connection.mode === "identity"
    ? new BlobServiceClient(connection.endpoint, await credentialFor(connection.clientId), { retryOptions })
    : BlobServiceClient.fromConnectionString(connection.connectionString, { retryOptions });
}

export async function createServiceBusClient(connection: Connection): Promise<ServiceBusClient> {
  const { ServiceBusClient } = require("./sdk/service-bus.js") as typeof import("./sdk/service-bus.js");
  return connection.mode === "identity"
    ? new ServiceBusClient(connection.endpoint, await credentialFor(connection.clientId))
    : new ServiceBusClient(connection.connectionString);
}

export async function createWebPubSubClient(connection: Connection, hub: string): Promise<WebPubSubServiceClient> {
  const { WebPubSubServiceClient } = require("./sdk/web-pubsub.js") as typeof import("./sdk/web-pubsub.js");
  if (connection.mode === "identity") {
    const allowInsecureConnection = isLoopbackHttp(connection.endpoint);
    return new WebPubSubServiceClient(connection.endpoint, await credentialFor(connection.clientId), hub, { allowInsecureConnection });
  }
  const endpoint = connectionStringPart(connection.connectionString, "Endpoint") ?? "";
  // The SDK refuses http:// unless told; a local emulator on loopback is the only such case.
  return new WebPubSubServiceClient(connection.connectionString, hub, { allowInsecureConnection: isLoopbackHttp(endpoint) });
}
