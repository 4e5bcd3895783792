/**
 * The agent's SDK clients and dependencies, created once per process (not at import: registration
 * must not need settings, and registration must not pay for SDKs): Cosmos DB and Web PubSub, which
 * every job needs, in the warm-up the worker's start begins (warmUpAgentDependencies) or on the
 * first invocation, whichever comes first; Blob Storage when a blob job first reads its upload. A
 * failed creation is not cached, so a later invocation retries it.
 */
import { loadSettings } from "../settings.js";
import {
  createBlobServiceClient,
  createCosmosContainer,
  createdOnFirstUse,
  createWebPubSubClient,
} from "../shared/azure-clients.js";
import { ExternalProcessor } from "../shared/external-processor.js";
import { WebPubSubJobEvents } from "../shared/job-events.js";
import { jobResources } from "../shared/job-resources.js";
import { CosmosJobStore } from "../shared/job-store.js";
import { ingestionIdentity, startTelemetry } from "../shared/telemetry-export.js";
import { DEFAULT_MAX_BLOB_BYTES, type AgentDependencies } from "./process-job.js";
import { BlobUploadsReader, type UploadsReader } from "./uploads.js";

export const agentDependencies: () => Promise<AgentDependencies> = createdOnFirstUse(() => createAgentDependencies(process.env));

/**
 * The warm-up's part (shared/warm-up.ts): what every job uses, created and connected ahead of the
 * first message: Cosmos DB (token, account and container metadata) and Web PubSub. Blob Storage
 * stays on first use (upload jobs only).
 */
export async function warmUpAgentDependencies(): Promise<void> {
  const dependencies = await agentDependencies();
  await Promise.all([dependencies.store.ping(), dependencies.events.ping()]);
}

export async function createAgentDependencies(env: NodeJS.ProcessEnv): Promise<AgentDependencies> {
  const settings = loadSettings("agent", env);
  const managedIdentity = ingestionIdentity(env);
  await startTelemetry({
    connectionString: settings.APPLICATIONINSIGHTS_CONNECTION_STRING,
    serviceName: "agent",
    ...(managedIdentity ? { managedIdentity } : {}),
  });
  const [container, webPubSub] = await Promise.all([
    createCosmosContainer(settings.Cosmos, jobResources.database, jobResources.container),
    createWebPubSubClient(settings.WebPubSub, jobResources.hub),
  ]);
  const uploads = createdOnFirstUse(async () => new BlobUploadsReader((await createBlobServiceClient(settings.DataStorage)).getContainerClient(jobResources.uploads)));
  const maxBlobBytes = settings.UPLOAD_MAX_BYTES ?? DEFAULT_MAX_BLOB_BYTES;
  const base = {
    store: new CosmosJobStore(container),
    events: new WebPubSubJobEvents(webPubSub),
    uploads: { open: async (...args) => (await uploads()).open(...args) } satisfies UploadsReader,
    maxBlobBytes,
  };
  return settings.EXTERNAL_PROCESSOR_URL
    ? { ...base, externalProcessor: new ExternalProcessor({ url: settings.EXTERNAL_PROCESSOR_URL, maxBytes: maxBlobBytes }) }
    : base;
}
