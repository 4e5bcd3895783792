/**
 * The api's SDK clients and dependencies, created once per process on the first request (not at
 * import: registration must not need settings, and cold start must not pay for the SDKs). A failed
 * creation is not cached, so a later request retries it.
 */
import { loadSettings } from "../settings.js";
import {
  createBlobServiceClient,
  createCosmosDatabase,
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
import { CosmosQuotas } from "./quota-store.js";
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
  const [database, blobService, serviceBus, webPubSub] = await Promise.all([
    createCosmosDatabase(settings.Cosmos, jobResources.database),
    createBlobServiceClient(settings.DataStorage),
    createServiceBusClient(settings.ServiceBus),
    createWebPubSubClient(settings.WebPubSub, jobResources.hub),
  ]);
  const jobs = new CosmosJobStore(database.container(jobResources.container));
  return {
    jobs,
    queue: new ServiceBusJobQueue(serviceBus, jobResources.queue),
    // The setting's shape decides the SAS: identity -> user delegation; connection string (local
    // platform only, Azurite) -> service SAS signed with the connection string's account key.
    uploads: new BlobUploads(blobService, jobResources.uploads, settings.DataStorage.mode === "identity" ? "userDelegation" : "accountKey"),
    realtime: new WebPubSubRealtime(webPubSub),
    quotas: new CosmosQuotas(database.container(jobResources.quotas), jobs, {
      uploadUrlsPerHour: settings.QUOTA_UPLOAD_URLS_PER_HOUR,
      jobsPerHour: settings.QUOTA_JOBS_PER_HOUR,
      jobsInFlight: settings.QUOTA_JOBS_IN_FLIGHT,
    }),
    identity: {
      trustAppServiceAuthentication: settings.APP_SERVICE_AUTHENTICATION,
      behindGateway: settings.API_GATEWAY,
      allowDevelopmentIdentity: settings.ALLOW_DEVELOPMENT_IDENTITY === true,
    },
    uploadMaxBytes: settings.UPLOAD_MAX_BYTES,
    uploadUrlTtlSeconds: settings.UPLOAD_URL_TTL_SECONDS,
    requeueAfterMs: settings.JOB_REQUEUE_AFTER_SECONDS * 1000,
    maxConcurrentRequests: settings.MAX_CONCURRENT_REQUESTS,
  };
}
