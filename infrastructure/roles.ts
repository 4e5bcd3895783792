/**
 * Built-in role definitions the platform grants, and the deterministic names of role assignments.
 * GUIDs from Microsoft's "Azure built-in roles" list.
 */
import { createHash } from "node:crypto";

export const builtInRoles = {
  storageBlobDataOwner: "b7e6dc6d-f1e8-4753-8033-0f276bb0955b",
  storageBlobDataContributor: "ba92f5b4-2d11-453d-a403-e96b0029c9fe",
  storageBlobDataReader: "2a2b9908-6ea1-4ae2-8e65-a410df84e7d1",
  storageBlobDelegator: "db58b8e5-c6ad-4a2a-8342-4190687cbf4a",
  monitoringMetricsPublisher: "3913510d-42f4-4e42-8a64-420c390055eb",
  serviceBusDataSender: "69a216fc-b8fb-44d8-bc22-1f3c2cd27a39",
  serviceBusDataReceiver: "4f6d3b9b-027b-4f4c-9142-0e5a2a2247e0",
  webPubSubServiceOwner: "12cf5a90-567b-43ae-8102-96cf46c7d9b4",
  /** Read-only; what a log alert rule's identity needs on the workspace it queries (alerts only). */
  reader: "acdd72a7-3385-48ef-bd42-f606fba81ae7",
} as const;
export type BuiltInRole = keyof typeof builtInRoles;

/**
 * Cosmos DB's data-plane built-in roles, by link access level: "Built-in Data Reader" and
 * "Built-in Data Contributor" (Cosmos SQL role definitions, not Azure RBAC roles).
 */
export const cosmosDataRoleIds = {
  read: "00000000-0000-0000-0000-000000000001",
  readWrite: "00000000-0000-0000-0000-000000000002",
} as const;

/**
 * A GUID derived from scope, role and principal (UUID v5 layout over SHA-256), so the same grant
 * always gets the same assignment name: re-running is idempotent, and a replaced principal or scope
 * yields a new name (create-before-delete never collides with the old assignment).
 */
export function deterministicGuid(...parts: string[]): string {
  const hex = createHash("sha256").update(parts.map((p) => p.toLowerCase()).join("|")).digest("hex");
  const variant = ((parseInt(hex.charAt(16), 16) & 0x3) | 0x8).toString(16);
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-5${hex.slice(13, 16)}-${variant}${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
}

/** The subscription an ARM resource ID belongs to. */
export function subscriptionOf(resourceId: string): string {
  const match = /^\/subscriptions\/([^/]+)\//i.exec(resourceId);
  if (!match?.[1]) throw new Error(`not an ARM resource ID: ${resourceId}`);
  return match[1];
}

/** The subscription-level ID of a built-in role, in the subscription that holds the scope. */
export function roleDefinitionId(scope: string, role: BuiltInRole): string {
  return `/subscriptions/${subscriptionOf(scope)}/providers/Microsoft.Authorization/roleDefinitions/${builtInRoles[role]}`;
}
