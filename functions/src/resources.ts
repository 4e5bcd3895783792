/**
 * The app's resources: every queue, Cosmos container, blob container and Web PubSub hub, declared
 * once. The infrastructure creates exactly these (with the components' defaults for what is left
 * out, functions/src/platform/resource-kinds.ts), the local platform creates the same on its
 * emulators, and the services link to them by name (functions/src/services.ts). Names are used as
 * they are, in Azure and locally.
 *
 * To add a queue: add it under `queues`, link a service to it for `send` and another for `receive`.
 */
import { defineResources } from "./platform/resource-kinds";

export const resources = defineResources({
  cosmos: {
    database: "platform",
    containers: {
      // Each user's jobs live together: listing them is a single-partition query.
      jobs: { partitionKey: "/userId" },
      // One quota record per user (api/quota-store.ts): every api instance counts in the same place.
      quotas: { partitionKey: "/userId" },
    },
  },
  queues: {
    // From the api to the agent. After 5 deliveries a job message is dead-lettered and the job failed.
    jobs: { maxDeliveryCount: 5, lockDurationSeconds: 60, messageTtlHours: 24, duplicateDetectionMinutes: 10 },
  },
  blobContainers: {
    // Browsers upload files here with the create-only URLs the api hands out; nothing stays for long.
    uploads: { browserUploads: true, deleteAfterDays: { config: "uploadsDeleteAfterDays" } },
  },
  hubs: {
    // Job events, pushed to each job's owner.
    jobs: {},
  },
});
