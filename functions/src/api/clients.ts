/**
 * The api's SDK clients and dependencies, created once per process (not at import: registration
 * must not need settings, and registration must not pay for the SDKs). Cosmos DB and Service Bus in
 * the warm-up the worker's start begins (warmUpApiDependencies) or on the first request that needs
 * them, whichever comes first; Blob Storage and Web PubSub each when a request first uses it (a text
 * job's POST never loads them). A failed creation is not cached, so a later request retries it.
 */
import { loadSettings, type Connection } from "../settings.js";
import {
  createBlobServiceClient,
  createCosmosDatabase,
  createdOnFirstUse,
  createServiceBusClient,
  createWebPubSubClient,
} from "../shared/azure-clients.js";
import { ServiceBusJobQueue, type JobQueue } from "../shared/job-queue.js";
import { jobResources } from "../shared/job-resources.js";
import { CosmosJobStore } from "../shared/job-store.js";
import { ingestionIdentity, startTelemetry } from "../shared/telemetry-export.js";
import type { ApiDependencies } from "./dependencies.js";
import { CosmosQuotas } from "./quota-store.js";
import { WebPubSubRealtime, type Realtime } from "./realtime.js";
import { BlobUploads, type Uploads } from "./uploads.js";

/**
 * The setting's shape decides how upload URLs are signed: identity -> user delegation; connection
 * string (local platform only, Azurite) -> service SAS signed with the connection string's account key.
 */
export function uploadSigningFor(connection: Connection): BlobUploads["signing"] {
  return connection.mode === "identity" ? "userDelegation" : "accountKey";
}

export const apiDependencies: () => Promise<ApiDependencies> = createdOnFirstUse(() => createApiDependencies(process.env));

/**
 * The warm-up's part (shared/warm-up.ts): what a job's POST uses, created and connected ahead of
 * the first request: Cosmos DB (token, account and container metadata) and the Service Bus sender
 * link. Blob Storage and Web PubSub stay on first use, as their routes are rarer.
 */
export async function warmUpApiDependencies(): Promise<void> {
  const dependencies = await apiDependencies();
  await Promise.all([dependencies.jobs.ping(), dependencies.queue.ping()]);
}

export async function createApiDependencies(env: NodeJS.ProcessEnv): Promise<ApiDependencies> {
  const settings = loadSettings("api", env);
  const managedIdentity = ingestionIdentity(env);
  await startTelemetry({
    connectionString: settings.APPLICATIONINSIGHTS_CONNECTION_STRING,
    serviceName: "api",
    ...(managedIdentity ? { managedIdentity } : {}),
  });
  const database = await createCosmosDatabase(settings.Cosmos, jobResources.database);
  const jobs = new CosmosJobStore(database.container(jobResources.container));
  const queue = createdOnFirstUse(async () => new ServiceBusJobQueue(await createServiceBusClient(settings.ServiceBus), jobResources.queue));
  const uploads = createdOnFirstUse(
    async () => new BlobUploads(await createBlobServiceClient(settings.DataStorage), jobResources.uploads, uploadSigningFor(settings.DataStorage)),
  );
  const realtime = createdOnFirstUse(async () => new WebPubSubRealtime(await createWebPubSubClient(settings.WebPubSub, jobResources.hub)));
  return {
    jobs,
    queue: {
      send: async (message) => (await queue()).send(message),
      ping: async () => (await queue()).ping(),
      // Nothing to close when nothing was sent.
      close: async () => (await queue.created())?.close(),
    } satisfies JobQueue,
    uploads: {
      issueUploadUrl: async (...args) => (await uploads()).issueUploadUrl(...args),
      check: async (...args) => (await uploads()).check(...args),
      discard: async (...args) => (await uploads()).discard(...args),
      ping: async () => (await uploads()).ping(),
    } satisfies Uploads,
    realtime: {
      clientAccess: async (...args) => (await realtime()).clientAccess(...args),
      ping: async () => (await realtime()).ping(),
    } satisfies Realtime,
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
