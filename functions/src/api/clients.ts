/**
 * The api's SDK clients and dependencies, created once per process on the first request (not at
 * import: registration must not need settings, and cold start must not pay for the SDKs). A failed
 * creation is not cached, so a later request retries it.
 */
import { loadSettings } from "../settings.js";
import {
  createBlobServiceClient,
  createCosmosContainer,
  createdOnFirstUse,
  createServiceBusClient,
  createWebPubSubClient,
  managedIdentityOf,
} from "../shared/azure-clients.js";
import { ServiceBusJobQueue } from "../shared/job-queue.js";
import { jobResources } from "../shared/job-resources.js";
import { CosmosJobStore } from "../shared/job-store.js";
import { startTelemetry } from "../shared/telemetry.js";
import type { ApiDependencies } from "./dependencies.js";
import { WebPubSubRealtime } from "./realtime.js";
import { BlobUploads } from "./uploads.js";

export const apiDependencies: () => Promise<ApiDependencies> = createdOnFirstUse(() => createApiDependencies(process.env));

export async function createApiDependencies(env: NodeJS.ProcessEnv): Promise<ApiDependencies> {
  const settings = loadSettings("api", env);
  const managedIdentity = managedIdentityOf([settings.Cosmos, settings.DataStorage, settings.ServiceBus, settings.WebPubSub]);
  await startTelemetry({
    connectionString: settings.APPLICATIONINSIGHTS_CONNECTION_STRING,
    serviceName: "api",
    ...(managedIdentity ? { managedIdentity } : {}),
  });
  const [container, blobService, serviceBus, webPubSub] = await Promise.all([
    createCosmosContainer(settings.Cosmos, jobResources.database, jobResources.container),
    createBlobServiceClient(settings.DataStorage),
    createServiceBusClient(settings.ServiceBus),
    createWebPubSubClient(settings.WebPubSub, jobResources.hub),
  ]);
  return {
    jobs: new CosmosJobStore(container),
    queue: new ServiceBusJobQueue(serviceBus, jobResources.queue),
    // The setting's shape decides the SAS: identity -> user delegation; connection string (local
    // platform only, Azurite) -> service SAS signed with the connection string's account key.
    uploads: new BlobUploads(blobService, jobResources.uploads, settings.DataStorage.mode === "identity" ? "userDelegation" : "accountKey"),
    realtime: new WebPubSubRealtime(webPubSub),
    identity: {
      trustAppServiceAuthentication: settings.APP_SERVICE_AUTHENTICATION,
      allowDevelopmentIdentity: settings.ALLOW_DEVELOPMENT_IDENTITY === true,
    },
    uploadMaxBytes: settings.UPLOAD_MAX_BYTES,
    uploadUrlTtlSeconds: settings.UPLOAD_URL_TTL_SECONDS,
    requeueAfterMs: settings.JOB_REQUEUE_AFTER_SECONDS * 1000,
    maxConcurrentRequests: settings.MAX_CONCURRENT_REQUESTS,
  };
}
