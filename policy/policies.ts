/**
 * The policy pack's rules, one per resource type and property, for any number of apps, accounts,
 * queues and containers. Nothing is constructed here: `index.ts` builds the PolicyPack (whose
 * constructor starts a gRPC server), so tests import this module alone.
 *
 * Each rule is `mandatory` (a violation stops `pulumi preview`/`up`) or `advisory` (reported, not
 * blocking), and its description says what it checks and why. Tags carry the scanner IDs (Checkov,
 * Trivy) where a scanner has the same rule.
 */
import {
  validateResourceOfType,
  type EnforcementLevel,
  type PolicyResource,
  type ReportViolation,
  type ResourceValidationPolicy,
  type Severity,
  type StackValidationPolicy,
} from "@pulumi/policy";
import * as pulumi from "@pulumi/pulumi";
import * as apimanagement from "@pulumi/azure-native/apimanagement";
import * as applicationinsights from "@pulumi/azure-native/applicationinsights";
import * as authorization from "@pulumi/azure-native/authorization";
import * as cosmosdb from "@pulumi/azure-native/cosmosdb";
import * as keyvault from "@pulumi/azure-native/keyvault";
import * as operationalinsights from "@pulumi/azure-native/operationalinsights";
import * as servicebus from "@pulumi/azure-native/servicebus";
import * as storage from "@pulumi/azure-native/storage";
import * as web from "@pulumi/azure-native/web";
import * as webpubsub from "@pulumi/azure-native/webpubsub";
import {
  apimFixedTlsTiers,
  apimLegacyProtocolProperties,
  corsOrigins,
  credentialHeaders,
  findCredentials,
  flexRejectedAppSettings,
  flexRejectedSiteConfig,
  isFlexSite,
  roleGuid,
  scopeLevel,
  tlsAtLeast,
} from "./inspect";

interface RuleSpec {
  readonly name: string;
  /** What the rule checks, then why. */
  readonly description: string;
  readonly enforcementLevel: Extract<EnforcementLevel, "mandatory" | "advisory">;
  readonly severity: Severity;
  /** Scanner rule IDs with the same intent. */
  readonly tags?: string[];
}

/** A rule over every resource of one type. */
function ruleFor<TResource extends pulumi.Resource, TArgs>(
  spec: RuleSpec,
  // The constructor shape @pulumi/policy declares for validateResourceOfType.
  resourceClass: { new (name: string, args: TArgs, ...rest: any[]): TResource },
  validate: (props: pulumi.Unwrap<NonNullable<TArgs>>, report: ReportViolation) => void,
): ResourceValidationPolicy {
  return { ...spec, validateResource: validateResourceOfType(resourceClass, (props, _args, report) => validate(props, report)) };
}

// Roles that manage access or hand out keys: never for a workload identity.
export const privilegedRoles: Readonly<Record<string, string>> = {
  "8e3af657-a8ff-443c-a75c-2fe8c4bcb635": "Owner",
  "b24988ac-6180-42a0-ab88-20f7382dd24c": "Contributor",
  "18d7d88d-d35e-4fb5-a5c3-7773c20a72d9": "User Access Administrator",
  "f58310d9-a9f6-439a-9e8d-f62e7b41a168": "Role Based Access Control Administrator",
  "17d1049b-9a84-46fb-8f53-869881c3d3ab": "Storage Account Contributor (lists account keys)",
  "81a9662b-bebf-436f-a333-f67b29880f12": "Storage Account Key Operator Service Role",
  "5bd9cd88-fe45-4216-938b-f97437e15450": "DocumentDB Account Contributor (lists account keys)",
};

const storagePolicies: ResourceValidationPolicy[] = [
  ruleFor(
    {
      name: "storage-https-only",
      description: "Storage accounts accept HTTPS only (enableHttpsTrafficOnly: true). Plain HTTP exposes data and SAS tokens in transit.",
      enforcementLevel: "mandatory",
      severity: "high",
      tags: ["CKV_AZURE_3", "AVD-AZU-0008"],
    },
    storage.StorageAccount,
    (account, report) => {
      if (account.enableHttpsTrafficOnly !== true) report("enableHttpsTrafficOnly must be true.");
    },
  ),
  ruleFor(
    {
      name: "storage-tls-1-2",
      description: "Storage accounts refuse TLS below 1.2 (minimumTlsVersion: TLS1_2). Azure's default for the property is TLS 1.0.",
      enforcementLevel: "mandatory",
      severity: "high",
      tags: ["CKV_AZURE_44", "AVD-AZU-0011"],
    },
    storage.StorageAccount,
    (account, report) => {
      if (!account.minimumTlsVersion || !tlsAtLeast(account.minimumTlsVersion, "1.2"))
        report(`minimumTlsVersion is ${account.minimumTlsVersion ?? "unset (TLS 1.0)"}; set TLS1_2.`);
    },
  ),
  ruleFor(
    {
      name: "storage-no-public-blob-access",
      description: "Storage accounts forbid anonymous blob access (allowBlobPublicAccess: false). Browsers get user-delegation SAS URLs instead.",
      enforcementLevel: "mandatory",
      severity: "critical",
      tags: ["CKV_AZURE_190", "AVD-AZU-0007"],
    },
    storage.StorageAccount,
    (account, report) => {
      if (account.allowBlobPublicAccess !== false) report("allowBlobPublicAccess must be false.");
    },
  ),
  ruleFor(
    {
      name: "storage-no-shared-key",
      description:
        "Storage accounts refuse account keys (allowSharedKeyAccess: false), so every caller authenticates with Entra ID and RBAC decides. Keys are full-access, long-lived and unaudited per caller.",
      enforcementLevel: "mandatory",
      severity: "critical",
      tags: ["CKV2_AZURE_40"],
    },
    storage.StorageAccount,
    (account, report) => {
      if (account.allowSharedKeyAccess !== false) report("allowSharedKeyAccess must be false.");
    },
  ),
  ruleFor(
    {
      name: "storage-oauth-by-default",
      description: "The portal and tools use Entra ID for storage by default (defaultToOAuthAuthentication: true); with shared keys off, the key-based default only produces errors.",
      enforcementLevel: "advisory",
      severity: "low",
    },
    storage.StorageAccount,
    (account, report) => {
      if (account.defaultToOAuthAuthentication !== true) report("defaultToOAuthAuthentication should be true.");
    },
  ),
  ruleFor(
    {
      name: "storage-no-cross-tenant-replication",
      description: "Object replication to other tenants is off (allowCrossTenantReplication: false): data leaves the tenant only on purpose.",
      enforcementLevel: "advisory",
      severity: "medium",
    },
    storage.StorageAccount,
    (account, report) => {
      if (account.allowCrossTenantReplication !== false) report("allowCrossTenantReplication should be false.");
    },
  ),
  ruleFor(
    {
      name: "storage-container-private",
      description: "Blob containers are private (publicAccess None or unset). Anonymous containers publish every blob in them.",
      enforcementLevel: "mandatory",
      severity: "critical",
      tags: ["CKV2_AZURE_47"],
    },
    storage.BlobContainer,
    (container, report) => {
      if (container.publicAccess !== undefined && container.publicAccess !== storage.PublicAccess.None)
        report(`publicAccess is ${container.publicAccess}; it must be None.`);
    },
  ),
  ruleFor(
    {
      name: "storage-blob-soft-delete",
      description: "Blob soft delete is on (deleteRetentionPolicy enabled, at least 1 day): a deleted or overwritten upload can be recovered.",
      enforcementLevel: "mandatory",
      severity: "medium",
      tags: ["CKV2_AZURE_38", "AVD-AZU-0056"],
    },
    storage.BlobServiceProperties,
    (service, report) => {
      const policy = service.deleteRetentionPolicy;
      if (policy?.enabled !== true || (policy.days ?? 0) < 1) report("deleteRetentionPolicy must be enabled with days >= 1.");
    },
  ),
  ruleFor(
    {
      name: "storage-container-soft-delete",
      description: "Container soft delete is on (containerDeleteRetentionPolicy enabled, at least 1 day): deleting a whole container is recoverable.",
      enforcementLevel: "mandatory",
      severity: "medium",
    },
    storage.BlobServiceProperties,
    (service, report) => {
      const policy = service.containerDeleteRetentionPolicy;
      if (policy?.enabled !== true || (policy.days ?? 0) < 1) report("containerDeleteRetentionPolicy must be enabled with days >= 1.");
    },
  ),
  ruleFor(
    {
      name: "storage-cors-named-origins",
      description: "Blob CORS rules name their origins (no \"*\"): any website could otherwise drive a browser's SAS uploads.",
      enforcementLevel: "mandatory",
      severity: "high",
    },
    storage.BlobServiceProperties,
    (service, report) => {
      for (const rule of service.cors?.corsRules ?? []) {
        if (rule.allowedOrigins.includes("*")) report("a CORS rule allows every origin (\"*\"); list the web origin instead.");
      }
    },
  ),
];

const cosmosPolicies: ResourceValidationPolicy[] = [
  ruleFor(
    {
      name: "cosmos-no-local-auth",
      description: "Cosmos DB accounts refuse account keys (disableLocalAuth: true); data access is granted by Cosmos SQL role assignments to identities.",
      enforcementLevel: "mandatory",
      severity: "critical",
      tags: ["CKV_AZURE_140"],
    },
    cosmosdb.DatabaseAccount,
    (account, report) => {
      if (account.disableLocalAuth !== true) report("disableLocalAuth must be true.");
    },
  ),
  ruleFor(
    {
      name: "cosmos-no-key-metadata-writes",
      description: "Keys cannot change Cosmos DB databases and containers (disableKeyBasedMetadataWriteAccess: true); schema changes go through ARM.",
      enforcementLevel: "mandatory",
      severity: "high",
      tags: ["CKV_AZURE_132"],
    },
    cosmosdb.DatabaseAccount,
    (account, report) => {
      if (account.disableKeyBasedMetadataWriteAccess !== true) report("disableKeyBasedMetadataWriteAccess must be true.");
    },
  ),
  ruleFor(
    {
      name: "cosmos-tls-1-2",
      description: "Cosmos DB accounts refuse TLS below 1.2 (minimalTlsVersion: Tls12).",
      enforcementLevel: "mandatory",
      severity: "high",
    },
    cosmosdb.DatabaseAccount,
    (account, report) => {
      if (account.minimalTlsVersion !== undefined && !tlsAtLeast(account.minimalTlsVersion, "1.2"))
        report(`minimalTlsVersion is ${account.minimalTlsVersion}; set Tls12.`);
    },
  ),
  ruleFor(
    {
      name: "cosmos-continuous-backup",
      description: "Cosmos DB uses continuous backup (point-in-time restore); periodic backups restore only through a support ticket.",
      enforcementLevel: "advisory",
      severity: "medium",
    },
    cosmosdb.DatabaseAccount,
    (account, report) => {
      if (account.backupPolicy?.type !== "Continuous") report("backupPolicy.type should be Continuous.");
    },
  ),
  ruleFor(
    {
      name: "cosmos-data-role-scoped-to-database",
      description: "Cosmos SQL role assignments are scoped to a database or container, not the whole account: an app reaches only its own data.",
      enforcementLevel: "advisory",
      severity: "medium",
    },
    cosmosdb.SqlResourceSqlRoleAssignment,
    (assignment, report) => {
      if (!/\/dbs\/[^/]+/.test(assignment.scope ?? "")) report(`scope ${assignment.scope ?? "(unset)"} is the whole account; scope it to /dbs/<database>.`);
    },
  ),
];

function reportSasRule(type: string, report: ReportViolation): void {
  report(`${type} creates a SAS key; grant an identity a Service Bus data role instead.`);
}

const serviceBusPolicies: ResourceValidationPolicy[] = [
  ruleFor(
    {
      name: "servicebus-no-local-auth",
      description: "Service Bus namespaces refuse SAS keys (disableLocalAuth: true); senders and receivers are identities with per-queue roles.",
      enforcementLevel: "mandatory",
      severity: "critical",
      tags: ["CKV_AZURE_203"],
    },
    servicebus.Namespace,
    (namespace, report) => {
      if (namespace.disableLocalAuth !== true) report("disableLocalAuth must be true.");
    },
  ),
  ruleFor(
    {
      name: "servicebus-tls-1-2",
      description: "Service Bus namespaces refuse TLS below 1.2 (minimumTlsVersion: \"1.2\").",
      enforcementLevel: "mandatory",
      severity: "high",
      tags: ["CKV_AZURE_205"],
    },
    servicebus.Namespace,
    (namespace, report) => {
      if (!namespace.minimumTlsVersion || !tlsAtLeast(namespace.minimumTlsVersion, "1.2"))
        report(`minimumTlsVersion is ${namespace.minimumTlsVersion ?? "unset"}; set "1.2".`);
    },
  ),
  {
    name: "servicebus-no-sas-rules",
    description: "No Service Bus authorization rules (SAS key holders) exist: with local auth off they are dead keys, and turning it on would hand them out.",
    enforcementLevel: "mandatory",
    severity: "high",
    validateResource: [
      validateResourceOfType(servicebus.NamespaceAuthorizationRule, (_rule, args, report) => reportSasRule(args.type, report)),
      validateResourceOfType(servicebus.QueueAuthorizationRule, (_rule, args, report) => reportSasRule(args.type, report)),
      validateResourceOfType(servicebus.TopicAuthorizationRule, (_rule, args, report) => reportSasRule(args.type, report)),
    ],
  },
  ruleFor(
    {
      name: "servicebus-dead-letter-expired",
      description: "Queues dead-letter expired messages (deadLetteringOnMessageExpiration: true): an expired job is failed visibly, never dropped.",
      enforcementLevel: "advisory",
      severity: "medium",
    },
    servicebus.Queue,
    (queue, report) => {
      if (queue.deadLetteringOnMessageExpiration !== true) report("deadLetteringOnMessageExpiration should be true.");
    },
  ),
];

const webPubSubPolicies: ResourceValidationPolicy[] = [
  ruleFor(
    {
      name: "webpubsub-entra-only",
      description: "Web PubSub refuses access keys and keeps Entra ID on (disableLocalAuth: true, disableAadAuth not true): client tokens come from an identity's REST call.",
      enforcementLevel: "mandatory",
      severity: "critical",
      tags: ["azure-policy:b66ab71c"],
    },
    webpubsub.WebPubSub,
    (service, report) => {
      if (service.disableLocalAuth !== true) report("disableLocalAuth must be true.");
      if (service.disableAadAuth === true) report("disableAadAuth must not be true: Entra ID is the only way in.");
    },
  ),
  ruleFor(
    {
      name: "webpubsub-hub-no-anonymous",
      description: "Web PubSub hubs deny anonymous connections (anonymousConnectPolicy Deny or unset): a browser needs a client token from the api.",
      enforcementLevel: "mandatory",
      severity: "high",
    },
    webpubsub.WebPubSubHub,
    (hub, report) => {
      const policy = hub.properties?.anonymousConnectPolicy;
      if (policy !== undefined && policy.toLowerCase() !== "deny") report(`anonymousConnectPolicy is ${policy}; it must be Deny.`);
    },
  ),
  ruleFor(
    {
      name: "webpubsub-sku-with-sla",
      description: "Web PubSub uses a SKU with an SLA (not Free_F1: 20 connections, no SLA). Fine for dev and pull-request stacks, not for production.",
      enforcementLevel: "advisory",
      severity: "low",
      tags: ["CKV_AZURE_175"],
    },
    webpubsub.WebPubSub,
    (service, report) => {
      if (service.sku?.name === "Free_F1") report("Free_F1 has no SLA; use Standard_S1 in production.");
    },
  ),
];

type SiteProps = pulumi.Unwrap<web.WebAppArgs>;

function appSettingsOf(site: SiteProps): { name?: string; value?: string }[] {
  return site.siteConfig?.appSettings ?? [];
}

const functionAppPolicies: ResourceValidationPolicy[] = [
  ruleFor(
    {
      name: "app-https-only",
      description: "Web and Function Apps redirect HTTP to HTTPS (httpsOnly: true).",
      enforcementLevel: "mandatory",
      severity: "high",
      tags: ["CKV_AZURE_70", "AVD-AZU-0004"],
    },
    web.WebApp,
    (site, report) => {
      if (site.httpsOnly !== true) report("httpsOnly must be true.");
    },
  ),
  ruleFor(
    {
      name: "app-tls-1-2",
      description: "Apps and their SCM sites refuse TLS below 1.2 (siteConfig.minTlsVersion / scmMinTlsVersion; unset means Azure's default, 1.2).",
      enforcementLevel: "mandatory",
      severity: "high",
      tags: ["CKV_AZURE_145", "AVD-AZU-0006"],
    },
    web.WebApp,
    (site, report) => {
      for (const key of ["minTlsVersion", "scmMinTlsVersion"] as const) {
        const version = site.siteConfig?.[key];
        if (version !== undefined && !tlsAtLeast(version, "1.2")) report(`siteConfig.${key} is ${version}; set "1.2".`);
      }
    },
  ),
  ruleFor(
    {
      name: "app-no-remote-debugging",
      description: "Remote debugging is off (siteConfig.remoteDebuggingEnabled not true): it opens a debugger port into the app.",
      enforcementLevel: "mandatory",
      severity: "high",
      tags: ["CKV_AZURE_72"],
    },
    web.WebApp,
    (site, report) => {
      if (site.siteConfig?.remoteDebuggingEnabled === true) report("siteConfig.remoteDebuggingEnabled must not be true.");
    },
  ),
  ruleFor(
    {
      name: "app-managed-identity",
      description: "Apps run with a managed identity (identity.type UserAssigned or SystemAssigned): it is how they reach every other service without keys.",
      enforcementLevel: "mandatory",
      severity: "high",
      tags: ["CKV_AZURE_71", "AVD-AZU-0002"],
    },
    web.WebApp,
    (site, report) => {
      const type = site.identity?.type ?? "None";
      if (!/assigned/i.test(type)) report(`identity.type is ${type}; give the app a managed identity.`);
    },
  ),
  ruleFor(
    {
      name: "app-cors-named-origins",
      description: "App CORS names its origins (no \"*\" in siteConfig.cors.allowedOrigins): any website could otherwise call the api from a signed-in browser.",
      enforcementLevel: "mandatory",
      severity: "high",
    },
    web.WebApp,
    (site, report) => {
      if ((site.siteConfig?.cors?.allowedOrigins ?? []).includes("*")) report("siteConfig.cors.allowedOrigins contains \"*\".");
    },
  ),
  ruleFor(
    {
      name: "app-http2",
      description: "HTTP/2 is on (siteConfig.http20Enabled: true).",
      enforcementLevel: "advisory",
      severity: "low",
      tags: ["CKV_AZURE_67"],
    },
    web.WebApp,
    (site, report) => {
      if (site.siteConfig !== undefined && site.siteConfig.http20Enabled !== true) report("siteConfig.http20Enabled should be true.");
    },
  ),
  ruleFor(
    {
      name: "app-settings-without-credentials",
      description:
        "No app setting holds a credential (account key, SAS signature, shared access key, password, client secret): connections are identity-based (`<Name>__fullyQualifiedNamespace`, `__blobServiceUri`, `__credential`).",
      enforcementLevel: "mandatory",
      severity: "critical",
    },
    web.WebApp,
    (site, report) => {
      appSettingsOf(site).forEach((setting, index) => {
        if (findCredentials(setting.value ?? "").length > 0) report(`app setting ${setting.name ?? `#${index}`} holds a credential.`);
      });
    },
  ),
  ruleFor(
    {
      name: "flex-site-config-supported",
      description:
        "Flex Consumption sites carry no site config Flex rejects (ftpsState, netFrameworkVersion, use32BitWorkerProcess, functionsRuntimeScaleMonitoringEnabled, linuxFxVersion, functionAppScaleLimit): ARM refuses the whole site with error 51021.",
      enforcementLevel: "mandatory",
      severity: "high",
    },
    web.WebApp,
    (site, report) => {
      if (!isFlexSite(site) || !site.siteConfig) return;
      const present = flexRejectedSiteConfig.filter((key) => site.siteConfig?.[key] !== undefined);
      if (present.length > 0) report(`siteConfig sets ${present.join(", ")}, which Flex Consumption rejects; remove them.`);
    },
  ),
  ruleFor(
    {
      name: "flex-app-settings-supported",
      description:
        "Flex Consumption sites carry no app settings Flex rejects or ignores (FUNCTIONS_WORKER_RUNTIME, FUNCTIONS_EXTENSION_VERSION, WEBSITE_RUN_FROM_PACKAGE, WEBSITE_CONTENT*, a plain AzureWebJobsStorage connection string, ...): runtime and code come from functionAppConfig.",
      enforcementLevel: "mandatory",
      severity: "high",
    },
    web.WebApp,
    (site, report) => {
      if (!isFlexSite(site)) return;
      const rejected = new Set<string>(flexRejectedAppSettings);
      const present = appSettingsOf(site)
        .map((s) => s.name ?? "")
        .filter((name) => rejected.has(name));
      if (present.length > 0) report(`app settings ${present.join(", ")} are not for Flex Consumption; remove them.`);
    },
  ),
  ruleFor(
    {
      name: "flex-deployment-storage-identity",
      description: "Flex Consumption apps read their package with a managed identity, not a storage connection string (functionAppConfig.deployment.storage.authentication).",
      enforcementLevel: "mandatory",
      severity: "critical",
    },
    web.WebApp,
    (site, report) => {
      if (!isFlexSite(site)) return;
      const type = site.functionAppConfig?.deployment?.storage?.authentication?.type;
      if (type !== "UserAssignedIdentity" && type !== "SystemAssignedIdentity")
        report(`deployment storage authentication is ${type ?? "unset"}; use UserAssignedIdentity or SystemAssignedIdentity.`);
    },
  ),
  ruleFor(
    {
      name: "flex-runtime-supported",
      description: "Flex Consumption Node apps run Node 22 or newer (functionAppConfig.runtime): Node 20 reached end of life in April 2026.",
      enforcementLevel: "mandatory",
      severity: "medium",
    },
    web.WebApp,
    (site, report) => {
      const runtime = site.functionAppConfig?.runtime;
      if (runtime?.name !== "node") return;
      const major = Number((runtime.version ?? "").split(".")[0]);
      if (!(major >= 22)) report(`runtime node ${runtime.version ?? "(unset)"} is out of support; use 22 or newer.`);
    },
  ),
  {
    name: "app-basic-publishing-off",
    description: "Basic-auth publishing (SCM and FTP publishing credentials) is off: deployments use Entra tokens, so a leaked publishing profile deploys nothing.",
    enforcementLevel: "mandatory",
    severity: "high",
    validateResource: [web.WebAppScmAllowed, web.WebAppFtpAllowed].map((type) =>
      validateResourceOfType(type, (policy, args, report) => {
        if (policy.allow !== false) report(`${args.type} must set allow: false.`);
      }),
    ),
  },
];

type DiagnosticProps = pulumi.Unwrap<apimanagement.DiagnosticArgs>;

const gatewayPolicies: ResourceValidationPolicy[] = [
  ruleFor(
    {
      name: "apim-tier-with-caller-limits",
      description:
        "The API gateway is not on the Consumption tier: Consumption has no rate-limit-by-key, and browsers carry no subscription keys, so it could limit no caller (api-management-gateways-overview).",
      enforcementLevel: "mandatory",
      severity: "medium",
    },
    apimanagement.ApiManagementService,
    (service, report) => {
      if (service.sku.name === "Consumption") report("sku.name is Consumption; use BasicV2 or StandardV2 for per-caller rate limits.");
    },
  ),
  ruleFor(
    {
      name: "apim-managed-identity",
      description: "API Management runs with a managed identity (identity.type not None): it calls backends and sends logs with it instead of keys.",
      enforcementLevel: "mandatory",
      severity: "high",
    },
    apimanagement.ApiManagementService,
    (service, report) => {
      const type = service.identity?.type ?? "None";
      if (!/assigned/i.test(type)) report(`identity.type is ${type}; give the gateway a managed identity.`);
    },
  ),
  ruleFor(
    {
      name: "apim-classic-tls-1-2",
      description:
        "Classic API Management tiers turn off TLS 1.0 and 1.1 to clients and backends (customProperties ...Protocols.Tls10/Tls11 = \"False\"); the v2 and Consumption tiers speak TLS 1.2 and take no such setting.",
      enforcementLevel: "mandatory",
      severity: "high",
      tags: ["CKV_AZURE_173"],
    },
    apimanagement.ApiManagementService,
    (service, report) => {
      if ((apimFixedTlsTiers as readonly string[]).includes(service.sku.name)) return;
      const enabled = apimLegacyProtocolProperties.filter((key) => String(service.customProperties?.[key] ?? "True").toLowerCase() !== "false");
      if (enabled.length > 0) report(`customProperties leave ${enabled.join(", ")} on; set each to "False".`);
    },
  ),
  ruleFor(
    {
      name: "apim-min-api-version",
      description:
        "API Management refuses management calls from API versions before 2019-12-01 (apiVersionConstraint.minApiVersion), which lack today's secret handling (Azure Policy \"API Management minimum API version should be set to 2019-12-01 or higher\").",
      enforcementLevel: "advisory",
      severity: "medium",
    },
    apimanagement.ApiManagementService,
    (service, report) => {
      const version = service.apiVersionConstraint?.minApiVersion;
      if (!version || version < "2019-12-01") report(`apiVersionConstraint.minApiVersion is ${version ?? "unset"}; set 2019-12-01 or later.`);
    },
  ),
  ruleFor(
    {
      name: "apim-api-https-only",
      description: "Gateway APIs accept HTTPS only (protocols [\"https\"]) and call their backend over HTTPS (serviceUrl https://): tokens never cross the network in clear.",
      enforcementLevel: "mandatory",
      severity: "high",
      tags: ["CKV_AZURE_215"],
    },
    apimanagement.Api,
    (api, report) => {
      const protocols = api.protocols ?? [];
      if (protocols.length === 0 || protocols.some((protocol) => protocol.toLowerCase() !== "https")) report(`protocols are ${JSON.stringify(protocols)}; allow only "https".`);
      if (api.serviceUrl !== undefined && !api.serviceUrl.toLowerCase().startsWith("https://")) report(`serviceUrl ${api.serviceUrl} is not https://.`);
    },
  ),
  {
    name: "apim-cors-named-origins",
    description: "Gateway CORS policies name their origins (no <origin>*</origin>): any website could otherwise drive a signed-in browser's calls.",
    enforcementLevel: "mandatory",
    severity: "high",
    validateResource: [apimanagement.Policy, apimanagement.ApiPolicy].map((type) =>
      validateResourceOfType(type, (policy, _args, report) => {
        if (corsOrigins(policy.value).includes("*")) report("a cors policy allows every origin (<origin>*</origin>); list the web origin instead.");
      }),
    ),
  },
  ruleFor(
    {
      name: "apim-logger-keyless",
      description:
        "Application Insights loggers send with a managed identity (credentials.connectionString + identityClientId), never an instrumentation key alone: with local auth off a key logs nothing, and it is a credential in the state.",
      enforcementLevel: "mandatory",
      severity: "high",
    },
    apimanagement.Logger,
    (logger, report) => {
      if (logger.loggerType !== "applicationInsights") return;
      const credentials = logger.credentials ?? {};
      if (!credentials["connectionString"] || !credentials["identityClientId"]) report("credentials need connectionString and identityClientId (the gateway's managed identity).");
      if (credentials["instrumentationKey"] !== undefined) report("credentials.instrumentationKey is set; use the connection string with a managed identity.");
    },
  ),
  ruleFor(
    {
      name: "apim-diagnostic-no-credential-headers",
      description: "Gateway request logs never record headers that carry credentials (Authorization, Cookie, subscription keys, Easy Auth principals).",
      enforcementLevel: "mandatory",
      severity: "high",
    },
    apimanagement.Diagnostic,
    (diagnostic, report) => {
      for (const side of ["frontend", "backend"] as const) {
        for (const direction of ["request", "response"] as const) {
          const logged = (diagnostic[side]?.[direction]?.headers ?? []).map((h) => h.toLowerCase());
          const credentials = logged.filter((header) => (credentialHeaders as readonly string[]).some((c) => header === c || header.startsWith(`${c}-`)));
          if (credentials.length > 0) report(`${side}.${direction}.headers logs ${credentials.join(", ")}.`);
        }
      }
    },
  ),
  ruleFor(
    {
      name: "apim-diagnostic-w3c",
      description: "Gateway diagnostics use W3C trace context (httpCorrelationProtocol W3C): the backend continues the gateway's trace, so one trace spans the request end to end.",
      enforcementLevel: "advisory",
      severity: "low",
    },
    apimanagement.Diagnostic,
    (diagnostic: DiagnosticProps, report) => {
      if (diagnostic.httpCorrelationProtocol !== "W3C") report(`httpCorrelationProtocol is ${diagnostic.httpCorrelationProtocol ?? "unset (Legacy)"}; set W3C.`);
    },
  ),
];

const monitoringPolicies: ResourceValidationPolicy[] = [
  ruleFor(
    {
      name: "appinsights-entra-ingestion",
      description: "Application Insights accepts telemetry only with an Entra token (disableLocalAuth: true), so its connection string is an address, not a credential.",
      enforcementLevel: "mandatory",
      severity: "high",
    },
    applicationinsights.Component,
    (component, report) => {
      if (component.disableLocalAuth !== true) report("disableLocalAuth must be true.");
    },
  ),
  ruleFor(
    {
      name: "appinsights-workspace-based",
      description: "Application Insights is workspace-based (workspaceResourceId set): classic components are retired.",
      enforcementLevel: "advisory",
      severity: "low",
    },
    applicationinsights.Component,
    (component, report) => {
      if (!component.workspaceResourceId) report("workspaceResourceId should name a Log Analytics workspace.");
    },
  ),
  ruleFor(
    {
      name: "loganalytics-entra-only",
      description: "Log Analytics workspaces refuse shared-key ingestion and queries (features.disableLocalAuth: true).",
      enforcementLevel: "advisory",
      severity: "medium",
    },
    operationalinsights.Workspace,
    (workspace, report) => {
      if (workspace.features?.disableLocalAuth !== true) report("features.disableLocalAuth should be true.");
    },
  ),
];

const accessPolicies: ResourceValidationPolicy[] = [
  ruleFor(
    {
      name: "rbac-no-privileged-roles",
      description:
        "Role assignments never grant Owner, Contributor, User Access Administrator, RBAC Administrator or a key-listing role: workloads get data-plane roles at the narrowest scope, and nothing in the program can grant further access.",
      enforcementLevel: "mandatory",
      severity: "critical",
    },
    authorization.RoleAssignment,
    (assignment, report) => {
      const role = privilegedRoles[roleGuid(assignment.roleDefinitionId)];
      if (role) report(`grants ${role}; grant the data role the code needs instead.`);
    },
  ),
  ruleFor(
    {
      name: "rbac-resource-scope",
      description: "Role assignments are scoped to a resource (an account, queue, container, component), never to a resource group or wider: a grant reaches only what it names.",
      enforcementLevel: "mandatory",
      severity: "high",
    },
    authorization.RoleAssignment,
    (assignment, report) => {
      const level = scopeLevel(assignment.scope);
      if (level !== "resource") report(`scope is a ${level} (${assignment.scope}); scope the grant to the resource.`);
    },
  ),
  ruleFor(
    {
      name: "rbac-principal-type",
      description: "Role assignments state the principal type: a fresh managed identity is then granted without waiting for Entra replication (no PrincipalNotFound).",
      enforcementLevel: "advisory",
      severity: "low",
    },
    authorization.RoleAssignment,
    (assignment, report) => {
      if (!assignment.principalType) report("principalType should be set (ServicePrincipal for managed identities).");
    },
  ),
  ruleFor(
    {
      name: "keyvault-purge-protection",
      description: "Key Vaults keep soft delete and purge protection on: a deleted key (and every secret it protects) stays recoverable.",
      enforcementLevel: "mandatory",
      severity: "high",
      tags: ["CKV_AZURE_110", "CKV_AZURE_42"],
    },
    keyvault.Vault,
    (vault, report) => {
      if (vault.properties.enablePurgeProtection !== true) report("properties.enablePurgeProtection must be true.");
      if (vault.properties.enableSoftDelete === false) report("properties.enableSoftDelete must not be false.");
    },
  ),
  ruleFor(
    {
      name: "keyvault-rbac-authorization",
      description: "Key Vaults authorize with Azure RBAC (enableRbacAuthorization: true), not access policies, so one model grants everything.",
      enforcementLevel: "mandatory",
      severity: "medium",
    },
    keyvault.Vault,
    (vault, report) => {
      if (vault.properties.enableRbacAuthorization !== true) report("properties.enableRbacAuthorization must be true.");
    },
  ),
  {
    name: "no-credentials-in-inputs",
    description:
      "No resource input holds a credential (account key, SAS signature, shared access key, password, client secret) anywhere in its properties: such a value lands in the state and the preview output.",
    enforcementLevel: "mandatory",
    severity: "critical",
    validateResource: (args, report) => {
      const paths = findCredentials(args.props);
      if (paths.length > 0) report(`credential-shaped values at ${paths.join(", ")}.`);
    },
  },
];

/** Whether `resource` depends on `other` (through an input or dependsOn). */
function dependsOn(resource: PolicyResource, other: PolicyResource): boolean {
  return resource.dependencies.some((d) => d.urn === other.urn);
}

const stackPolicies: StackValidationPolicy[] = [
  {
    name: "stack-outputs-without-credentials",
    description: "No stack output holds a credential: outputs are printed by every `pulumi up` and read by CI into logs and comments.",
    enforcementLevel: "mandatory",
    severity: "critical",
    validateStack: (args, report) => {
      for (const resource of args.resources.filter((r) => r.type === "pulumi:pulumi:Stack")) {
        const paths = findCredentials(resource.props);
        if (paths.length > 0) report(`stack outputs hold credential-shaped values at ${paths.join(", ")}.`, resource.urn);
      }
    },
  },
  {
    name: "app-basic-publishing-disabled-for-every-site",
    description:
      "Every Web or Function App has its basic-auth publishing policies set to allow: false (SCM, and FTP where the plan has FTP: Flex Consumption has none); Azure enables them when nothing says otherwise.",
    enforcementLevel: "mandatory",
    severity: "high",
    validateStack: (args, report) => {
      for (const site of args.resources.filter((r) => r.isType(web.WebApp))) {
        const disabledBy = (type: typeof web.WebAppScmAllowed | typeof web.WebAppFtpAllowed) =>
          args.resources.some((r) => r.isType(type) && r.props["allow"] === false && dependsOn(r, site));
        if (!disabledBy(web.WebAppScmAllowed)) report(`${site.name} has no WebAppScmAllowed with allow: false.`, site.urn);
        if (!isFlexSite(site.props) && !disabledBy(web.WebAppFtpAllowed)) report(`${site.name} has no WebAppFtpAllowed with allow: false.`, site.urn);
      }
    },
  },
  {
    name: "flex-one-app-per-plan",
    description: "Each Flex Consumption (FC1) plan hosts exactly one app: Flex refuses a second app on a plan, and separate plans let apps scale independently.",
    enforcementLevel: "mandatory",
    severity: "high",
    validateStack: (args, report) => {
      const plans = args.resources.filter((r) => r.isType(web.AppServicePlan) && r.props["sku"]?.["name"] === "FC1");
      const sites = args.resources.filter((r) => r.isType(web.WebApp));
      for (const plan of plans) {
        const hosted = sites.filter((site) => dependsOn(site, plan));
        if (hosted.length > 1) report(`${plan.name} hosts ${hosted.map((s) => s.name).join(", ")}; give each app its own FC1 plan.`, plan.urn);
      }
    },
  },
];

/** Every rule of the pack. */
export const policies: (ResourceValidationPolicy | StackValidationPolicy)[] = [
  ...storagePolicies,
  ...cosmosPolicies,
  ...serviceBusPolicies,
  ...webPubSubPolicies,
  ...functionAppPolicies,
  ...gatewayPolicies,
  ...monitoringPolicies,
  ...accessPolicies,
  ...stackPolicies,
];
