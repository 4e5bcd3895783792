/**
 * The resources of resources.ts the job pipeline uses, by name. Typed against the declarations, so
 * renaming or removing one there fails to compile here.
 */
import { resources } from "../resources.js";

export const jobResources = {
  database: resources.cosmos.database,
  container: "jobs",
  quotas: "quotas",
  queue: "jobs",
  uploads: "uploads",
  hub: "jobs",
} as const satisfies {
  database: string;
  container: keyof typeof resources.cosmos.containers;
  quotas: keyof typeof resources.cosmos.containers;
  queue: keyof typeof resources.queues;
  uploads: keyof typeof resources.blobContainers;
  hub: keyof typeof resources.hubs;
};
