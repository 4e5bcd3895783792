/**
 * What the CI identity may do, as data: the actions of its custom role and the condition on its
 * right to assign roles. Pure, so tests read them directly.
 *
 * azd's `pipeline config` grants Contributor + User Access Administrator on the subscription: the
 * pipeline could then create anything and grant anyone anything, Owner included. This is narrower:
 * - a custom role with only the resource providers the platform program manages (and Reader's
 *   `* /read`), without listing storage keys or SAS and without touching federated credentials
 *   (which would let CI trust new subjects);
 * - Role Based Access Control Administrator, conditioned so it can create and delete only
 *   assignments of the built-in roles the platform grants, and only to service principals
 *   (managed identities and the CI identity itself), never to users or groups.
 */
import { builtInRoles } from "../infrastructure/roles";

/** Built-in role GUIDs the bootstrap grants. */
export const bootstrapRoles = {
  /** Create and delete role assignments (conditioned below); nothing else. */
  roleBasedAccessControlAdministrator: "f58310d9-a9f6-439a-9e8d-f62e7b41a168",
  /** Read and write the state blobs. */
  storageBlobDataContributor: "ba92f5b4-2d11-453d-a403-e96b0029c9fe",
  /** Encrypt and decrypt with the secrets key (the azurekeyvault:// secrets provider). */
  keyVaultCryptoUser: "12338af0-0e69-4776-bea7-57ae8d297424",
} as const;

/** One grant of the custom role: the ARM actions, and why the platform needs them. */
export interface ActionGroup {
  readonly actions: readonly string[];
  readonly why: string;
}

/**
 * The custom role's actions, per resource provider the platform program uses. A new resource
 * type in the program needs its provider here (a test compares them with what the program creates).
 */
export const platformActionGroups: readonly ActionGroup[] = [
  { actions: ["*/read"], why: "read state and poll long-running operations of every resource (what Reader allows)" },
  {
    actions: ["Microsoft.Resources/subscriptions/resourceGroups/write", "Microsoft.Resources/subscriptions/resourceGroups/delete"],
    why: "each stack creates and removes its own resource group",
  },
  { actions: ["Microsoft.Storage/storageAccounts/*"], why: "data and Functions host storage accounts, containers, static website" },
  { actions: ["Microsoft.DocumentDB/databaseAccounts/*"], why: "Cosmos DB account, database, containers, data-plane role assignments" },
  { actions: ["Microsoft.ServiceBus/namespaces/*"], why: "Service Bus namespace and queues" },
  { actions: ["Microsoft.SignalRService/webPubSub/*"], why: "Web PubSub service and hubs" },
  { actions: ["Microsoft.Web/serverfarms/*", "Microsoft.Web/sites/*"], why: "Flex Consumption plans, Function Apps, their settings and OneDeploy publishing" },
  {
    actions: [
      "Microsoft.ManagedIdentity/userAssignedIdentities/write",
      "Microsoft.ManagedIdentity/userAssignedIdentities/delete",
      "Microsoft.ManagedIdentity/userAssignedIdentities/assign/action",
    ],
    why: "the apps' user-assigned identities, attached to their sites",
  },
  { actions: ["Microsoft.OperationalInsights/workspaces/*"], why: "Log Analytics workspace" },
  { actions: ["Microsoft.Insights/components/*"], why: "Application Insights" },
  {
    actions: ["Microsoft.Network/virtualNetworks/*", "Microsoft.Network/privateEndpoints/*", "Microsoft.Network/privateDnsZones/*"],
    why: "private networking (config privateNetworking): the network and its subnets (joining an app or an endpoint to a subnet), private endpoints with their DNS zone groups, private DNS zones and their links",
  },
  {
    actions: ["Microsoft.Insights/actionGroups/*", "Microsoft.Insights/metricAlerts/*", "Microsoft.Insights/scheduledQueryRules/*", "Microsoft.Insights/workbooks/*"],
    why: "alerts (config alertEmail or alertActionGroupId): the action group, metric and log alert rules, the job-pipeline workbook",
  },
  { actions: ["Microsoft.ApiManagement/service/*"], why: "the optional API gateway: API Management service, its API, policies, logger and diagnostic" },
];

/**
 * Left out even where a wildcard above would include them: listing keys or SAS would hand CI a
 * credential to any storage account in the subscription that still accepts keys.
 */
export const platformNotActions: readonly string[] = [
  "Microsoft.Storage/storageAccounts/listKeys/action",
  "Microsoft.Storage/storageAccounts/regeneratekey/action",
  "Microsoft.Storage/storageAccounts/ListAccountSas/action",
  "Microsoft.Storage/storageAccounts/listServiceSas/action",
  "Microsoft.DocumentDB/databaseAccounts/listKeys/action",
  "Microsoft.DocumentDB/databaseAccounts/listConnectionStrings/action",
  "Microsoft.DocumentDB/databaseAccounts/regenerateKey/action",
  "Microsoft.ServiceBus/namespaces/authorizationRules/listKeys/action",
  "Microsoft.ServiceBus/namespaces/queues/authorizationRules/listKeys/action",
  "Microsoft.SignalRService/webPubSub/listKeys/action",
  "Microsoft.SignalRService/webPubSub/regenerateKey/action",
  // API Management: subscription keys, the management (tenant) key, secret named values and the
  // secrets of identity providers, authorization servers, portal and backends.
  "Microsoft.ApiManagement/service/subscriptions/listSecrets/action",
  "Microsoft.ApiManagement/service/tenant/listSecrets/action",
  "Microsoft.ApiManagement/service/namedValues/listValue/action",
  "Microsoft.ApiManagement/service/gateways/listKeys/action",
  "Microsoft.ApiManagement/service/gateways/generateToken/action",
  "Microsoft.ApiManagement/service/identityProviders/listSecrets/action",
  "Microsoft.ApiManagement/service/authorizationServers/listSecrets/action",
  "Microsoft.ApiManagement/service/openidConnectProviders/listSecrets/action",
  "Microsoft.ApiManagement/service/portalSettings/listSecrets/action",
  "Microsoft.ApiManagement/service/backends/listSecrets/action",
];

export function platformActions(): string[] {
  return platformActionGroups.flatMap((group) => [...group.actions]);
}

/** The role GUIDs the platform program assigns (infrastructure/roles.ts), sorted: what CI may assign. */
export function assignableRoleIds(): string[] {
  return Object.values(builtInRoles)
    .map((id) => id.toLowerCase())
    .sort();
}

/**
 * The ABAC condition (version 2.0) on the CI identity's RBAC Administrator assignment: role
 * assignments may be written or deleted only for `roleIds`, and only for principals of
 * `principalTypes`. Two clauses, because a write is judged on the request and a delete on the
 * existing assignment (Microsoft's "Constrain roles and principal types" example).
 */
export function roleAssignmentCondition(roleIds: readonly string[], principalTypes: readonly string[] = ["ServicePrincipal"]): string {
  if (roleIds.length === 0) throw new Error("a role assignment condition needs at least one role");
  const guid = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
  for (const id of roleIds) if (!guid.test(id)) throw new Error(`not a role definition GUID: ${id}`);
  const roles = `{${roleIds.join(", ")}}`;
  const types = `{${principalTypes.map((t) => `'${t}'`).join(", ")}}`;
  const clause = (action: "write" | "delete", source: "Request" | "Resource") =>
    [
      "(",
      ` (!(ActionMatches{'Microsoft.Authorization/roleAssignments/${action}'}))`,
      " OR",
      ` (@${source}[Microsoft.Authorization/roleAssignments:RoleDefinitionId] ForAnyOfAnyValues:GuidEquals ${roles}`,
      `  AND @${source}[Microsoft.Authorization/roleAssignments:PrincipalType] ForAnyOfAnyValues:StringEqualsIgnoreCase ${types})`,
      ")",
    ].join("\n");
  return `${clause("write", "Request")}\nAND\n${clause("delete", "Resource")}`;
}
