/**
 * What the local platform declares so that it mirrors a deployed stack with default configuration:
 * the resource names the infrastructure's components give (queue, hub, database, containers) and
 * the stack's config defaults from Pulumi.yaml (delivery count, lock duration, TTL, upload limits).
 *
 * Read from Pulumi.yaml rather than imported from infrastructure/config.ts: that module loads
 * @pulumi/pulumi, seconds of start-up for four numbers. The component defaults are not exported by
 * the infrastructure, so they are written once here and tests/local/platform-defaults.test.ts builds
 * the real program under Pulumi mocks and fails when the two disagree.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { parse } from "yaml";

export const repositoryRoot = join(__dirname, "..");

/** Resource names a default stack gets (infrastructure/components: Database, Storage, Messaging, Realtime). */
export const platformNames = {
  cosmosDatabase: "platform",
  jobsContainer: "jobs",
  uploadsContainer: "uploads",
  jobsQueue: "jobs",
  webPubSubHub: "jobs",
} as const;

/** Pulumi.yaml config keys the local platform mirrors. */
const mirroredKeys = [
  "jobsQueueMaxDeliveryCount",
  "jobsQueueLockDurationSeconds",
  "jobsQueueMessageTtlHours",
  "uploadMaxBytes",
  "uploadUrlTtlSeconds",
] as const;
export type StackDefaults = Record<(typeof mirroredKeys)[number], number>;

/** The integer defaults of Pulumi.yaml's `config:` section that the local platform mirrors. */
export function stackDefaults(pulumiYaml: string = join(repositoryRoot, "Pulumi.yaml")): StackDefaults {
  const project = parse(readFileSync(pulumiYaml, "utf8")) as { config?: Record<string, { default?: unknown }> };
  const result = {} as StackDefaults;
  for (const key of mirroredKeys) {
    const value = project.config?.[key]?.default;
    if (typeof value !== "number" || !Number.isSafeInteger(value)) throw new Error(`${pulumiYaml}: config.${key}.default must be an integer, got ${JSON.stringify(value)}`);
    result[key] = value;
  }
  return result;
}

/**
 * The Messaging component's duplicate-detection window on the Standard tier (the default), in
 * minutes: the api relies on it (messageId = job id) to make a retried send harmless.
 */
export const DUPLICATE_DETECTION_MINUTES = 10;
