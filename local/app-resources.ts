/**
 * The app's resources (functions/src/resources.ts) on the emulators, with the same defaults a
 * deployed stack's components apply: the queues the Service Bus emulator declares, the hubs of the
 * Web PubSub emulator, the Cosmos database and containers, the blob containers and their CORS rule,
 * and the sweep that stands in for a container's lifecycle rule (Azurite has no lifecycle management).
 */
import type { CosmosClient } from "@azure/cosmos";
import type { BlobServiceClient, ContainerClient } from "@azure/storage-blob";
import { queueOnTier, resolveQueue, type AppResources, type QueueOptions, type ServiceBusTier } from "../functions/src/platform/resource-kinds.js";
import type { QueueOptions as EmulatorQueue } from "@platform-tools/servicebus-emulator";

/**
 * The emulator's queue declarations, as the stack's tier makes them: duplicate detection on a
 * Standard namespace, none on Basic (Service Bus offers it from Standard up), so the local platform
 * shows what the code does without it. `overrides` change a queue's options locally only.
 */
export function emulatorQueues(
  resources: Pick<AppResources, "queues">,
  tier: ServiceBusTier,
  overrides: Readonly<Record<string, QueueOptions>> = {},
): EmulatorQueue[] {
  for (const name of Object.keys(overrides)) {
    if (!(name in resources.queues)) throw new Error(`queue options given for "${name}", which resources.ts does not declare`);
  }
  return Object.entries(resources.queues).map(([name, options]) => {
    const queue = resolveQueue({ ...options, ...overrides[name] });
    const { duplicateDetection } = queueOnTier(name, queue, tier);
    return {
      name,
      maxDeliveryCount: queue.maxDeliveryCount,
      lockDurationMs: queue.lockDurationSeconds * 1000,
      defaultMessageTtlMs: queue.messageTtlHours * 3_600_000,
      deadLetteringOnMessageExpiration: true,
      ...(duplicateDetection ? { requiresDuplicateDetection: true, duplicateDetectionWindowMs: queue.duplicateDetectionMinutes * 60_000 } : {}),
      requiresSession: queue.sessions,
    };
  });
}

export function hubNames(resources: Pick<AppResources, "hubs">): string[] {
  return Object.keys(resources.hubs);
}

/** Creates the database and every container when missing. */
export async function ensureCosmosResources(client: CosmosClient, cosmos: AppResources["cosmos"]): Promise<void> {
  const { database } = await client.databases.createIfNotExists({ id: cosmos.database });
  for (const [id, options] of Object.entries(cosmos.containers)) {
    await database.containers.createIfNotExists({ id, partitionKey: { paths: [options.partitionKey] } });
  }
}

/**
 * Creates every blob container when missing and, when one takes browser uploads, the CORS rule the
 * Storage component sets in Azure (PUT from the web origins).
 */
export async function ensureBlobResources(
  blobService: BlobServiceClient,
  containers: AppResources["blobContainers"],
  webOrigins: readonly string[],
): Promise<void> {
  const work: Promise<unknown>[] = Object.keys(containers).map((name) => blobService.getContainerClient(name).createIfNotExists());
  if (Object.values(containers).some((c) => c.browserUploads) && webOrigins.length > 0) {
    work.push(
      blobService.setProperties({
        cors: [{ allowedOrigins: webOrigins.join(","), allowedMethods: "PUT", allowedHeaders: "content-type,x-ms-*", exposedHeaders: "etag,x-ms-request-id", maxAgeInSeconds: 3600 }],
      }),
    );
  }
  await Promise.all(work);
}

/**
 * Deletes the blobs (with their snapshots) created more than `days` days before `now`: what the
 * lifecycle rule of a container with `deleteAfterDays` does in Azure, which Azurite does not
 * implement. Returns the names it deleted.
 */
export async function sweepExpiredBlobs(container: ContainerClient, days: number, now: Date = new Date()): Promise<string[]> {
  const cutoff = now.getTime() - days * 24 * 60 * 60 * 1000;
  const deleted: string[] = [];
  for await (const blob of container.listBlobsFlat()) {
    const created = blob.properties.createdOn ?? blob.properties.lastModified;
    if (created.getTime() >= cutoff) continue;
    await container.getBlobClient(blob.name).deleteIfExists({ deleteSnapshots: "include" });
    deleted.push(blob.name);
  }
  return deleted;
}
