/**
 * Every rule of the policy pack against a resource that passes and one that violates it, plus the
 * pack's shape (names, levels, reasons). Resources start from compliant shapes taken from what the
 * program registers; each failing case changes one property.
 */
import { createRequire } from "node:module";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { unknownCheckingProxy } from "@pulumi/policy";
import { policies, privilegedRoles } from "../../policy/policies";
import { apimLegacyProtocolProperties, findCredentials, roleGuid, scopeLevel, tlsAtLeast } from "../../policy/inspect";
import { evaluateResource, evaluateStack, isResourcePolicy, isStackPolicy, type Outcome, type ResourceUnderTest } from "./support/evaluate";

const sub = "/subscriptions/11111111-2222-3333-4444-555555555555";
const rg = `${sub}/resourceGroups/rg-plat-dev`;
const role = (guid: string) => `${sub}/providers/Microsoft.Authorization/roleDefinitions/${guid}`;

/** Compliant properties of each resource type, shaped like the program's. */
const compliant = {
  storageAccount: {
    type: "azure-native:storage:StorageAccount",
    props: {
      accountName: "platdevdata",
      enableHttpsTrafficOnly: true,
      minimumTlsVersion: "TLS1_2",
      allowBlobPublicAccess: false,
      allowSharedKeyAccess: false,
      defaultToOAuthAuthentication: true,
      allowCrossTenantReplication: false,
    },
  },
  blobContainer: { type: "azure-native:storage:BlobContainer", props: { containerName: "uploads", publicAccess: "None" } },
  blobService: {
    type: "azure-native:storage:BlobServiceProperties",
    props: {
      deleteRetentionPolicy: { enabled: true, days: 7 },
      containerDeleteRetentionPolicy: { enabled: true, days: 7 },
      cors: { corsRules: [{ allowedOrigins: ["https://platdevdata.z13.web.core.windows.net"], allowedMethods: ["PUT"], allowedHeaders: [], exposedHeaders: [], maxAgeInSeconds: 60 }] },
    },
  },
  cosmosAccount: {
    type: "azure-native:cosmosdb:DatabaseAccount",
    props: { disableLocalAuth: true, disableKeyBasedMetadataWriteAccess: true, minimalTlsVersion: "Tls12", backupPolicy: { type: "Continuous" } },
  },
  cosmosRoleAssignment: {
    type: "azure-native:cosmosdb:SqlResourceSqlRoleAssignment",
    props: { scope: `${rg}/providers/Microsoft.DocumentDB/databaseAccounts/acct/dbs/platform`, principalId: "p", roleDefinitionId: "r" },
  },
  serviceBusNamespace: { type: "azure-native:servicebus:Namespace", props: { disableLocalAuth: true, minimumTlsVersion: "1.2", sku: { name: "Basic" } } },
  queue: { type: "azure-native:servicebus:Queue", props: { queueName: "jobs", deadLetteringOnMessageExpiration: true } },
  webPubSub: { type: "azure-native:webpubsub:WebPubSub", props: { disableLocalAuth: true, disableAadAuth: false, sku: { name: "Standard_S1" } } },
  webPubSubHub: { type: "azure-native:webpubsub:WebPubSubHub", props: { hubName: "jobs", properties: { anonymousConnectPolicy: "Deny" } } },
  site: {
    type: "azure-native:web:WebApp",
    props: {
      kind: "functionapp,linux",
      httpsOnly: true,
      identity: { type: "UserAssigned", userAssignedIdentities: [`${rg}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/api`] },
      functionAppConfig: {
        deployment: { storage: { type: "blobContainer", value: "https://host.blob.core.windows.net/api-package", authentication: { type: "UserAssignedIdentity" } } },
        runtime: { name: "node", version: "22" },
      },
      siteConfig: {
        minTlsVersion: "1.2",
        http20Enabled: true,
        cors: { allowedOrigins: ["https://platdevdata.z13.web.core.windows.net"] },
        appSettings: [
          { name: "AzureWebJobsStorage__blobServiceUri", value: "https://host.blob.core.windows.net/" },
          { name: "AzureWebJobsStorage__credential", value: "managedidentity" },
          { name: "APPLICATIONINSIGHTS_CONNECTION_STRING", value: "InstrumentationKey=00000000-0000-0000-0000-000000000000;IngestionEndpoint=https://eastus-8.in.applicationinsights.azure.com/" },
        ],
      },
    },
  },
  scmAllowed: { type: "azure-native:web:WebAppScmAllowed", props: { allow: false } },
  ftpAllowed: { type: "azure-native:web:WebAppFtpAllowed", props: { allow: false } },
  appInsights: { type: "azure-native:applicationinsights:Component", props: { disableLocalAuth: true, workspaceResourceId: `${rg}/providers/Microsoft.OperationalInsights/workspaces/logs` } },
  workspace: { type: "azure-native:operationalinsights:Workspace", props: { features: { disableLocalAuth: true } } },
  roleAssignment: {
    type: "azure-native:authorization:RoleAssignment",
    props: {
      scope: `${rg}/providers/Microsoft.ServiceBus/namespaces/ns/queues/jobs`,
      roleDefinitionId: role("69a216fc-b8fb-44d8-bc22-1f3c2cd27a39"),
      principalId: "p",
      principalType: "ServicePrincipal",
    },
  },
  apimService: {
    type: "azure-native:apimanagement:ApiManagementService",
    props: {
      serviceName: "plat-dev-abc123-gw-x7k2q9",
      sku: { name: "BasicV2", capacity: 1 },
      identity: { type: "UserAssigned", userAssignedIdentities: { [`${rg}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/gw`]: {} } },
      apiVersionConstraint: { minApiVersion: "2021-08-01" },
      publisherEmail: "ops@example.com",
      publisherName: "platform",
    },
  },
  apimApi: {
    type: "azure-native:apimanagement:Api",
    props: { apiId: "api", path: "api", protocols: ["https"], serviceUrl: "https://api-plat-dev.azurewebsites.net/api", format: "openapi+json", value: "{}" },
  },
  apimPolicy: {
    type: "azure-native:apimanagement:ApiPolicy",
    props: { apiId: "api", format: "xml", value: "<policies><inbound><cors><allowed-origins><origin>https://platdevdata.z13.web.core.windows.net</origin></allowed-origins></cors></inbound></policies>" },
  },
  apimLogger: {
    type: "azure-native:apimanagement:Logger",
    props: {
      loggerType: "applicationInsights",
      credentials: { connectionString: "InstrumentationKey=00000000-0000-0000-0000-000000000000;IngestionEndpoint=https://eastus-8.in.applicationinsights.azure.com/", identityClientId: "c" },
    },
  },
  apimDiagnostic: {
    type: "azure-native:apimanagement:Diagnostic",
    props: { loggerId: "l", httpCorrelationProtocol: "W3C", frontend: { request: { headers: ["x-request-id"] } }, backend: { response: { headers: [] } } },
  },
  vault: {
    type: "azure-native:keyvault:Vault",
    props: { properties: { tenantId: "t", sku: { family: "A", name: "standard" }, enableRbacAuthorization: true, enablePurgeProtection: true, enableSoftDelete: true } },
  },
} satisfies Record<string, { type: string; props: Record<string, unknown> }>;

type Shape = keyof typeof compliant;

/** `compliant[shape]` with `change` applied to a copy of its props. */
function resource(shape: Shape, change: (props: Record<string, any>) => void = () => {}, name: string = shape): ResourceUnderTest {
  const props = structuredClone(compliant[shape].props) as Record<string, any>;
  change(props);
  return { type: compliant[shape].type, name, props };
}

interface ResourceCase {
  readonly pass: ResourceUnderTest[];
  /** For rules that forbid a resource type: compliant resources are of other types. */
  readonly passOutcome?: "not applicable";
  readonly fail: { resource: ResourceUnderTest; message: RegExp }[];
}

const resourceCases: Record<string, ResourceCase> = {
  "storage-https-only": {
    pass: [resource("storageAccount")],
    fail: [
      { resource: resource("storageAccount", (p) => (p["enableHttpsTrafficOnly"] = false)), message: /enableHttpsTrafficOnly must be true/ },
      { resource: resource("storageAccount", (p) => delete p["enableHttpsTrafficOnly"]), message: /enableHttpsTrafficOnly/ },
    ],
  },
  "storage-tls-1-2": {
    pass: [resource("storageAccount")],
    fail: [
      { resource: resource("storageAccount", (p) => (p["minimumTlsVersion"] = "TLS1_0")), message: /TLS1_0; set TLS1_2/ },
      { resource: resource("storageAccount", (p) => delete p["minimumTlsVersion"]), message: /unset \(TLS 1\.0\)/ },
    ],
  },
  "storage-no-public-blob-access": {
    pass: [resource("storageAccount")],
    fail: [{ resource: resource("storageAccount", (p) => (p["allowBlobPublicAccess"] = true)), message: /allowBlobPublicAccess must be false/ }],
  },
  "storage-no-shared-key": {
    pass: [resource("storageAccount")],
    fail: [{ resource: resource("storageAccount", (p) => delete p["allowSharedKeyAccess"]), message: /allowSharedKeyAccess must be false/ }],
  },
  "storage-oauth-by-default": {
    pass: [resource("storageAccount")],
    fail: [{ resource: resource("storageAccount", (p) => (p["defaultToOAuthAuthentication"] = false)), message: /defaultToOAuthAuthentication/ }],
  },
  "storage-no-cross-tenant-replication": {
    pass: [resource("storageAccount")],
    fail: [{ resource: resource("storageAccount", (p) => delete p["allowCrossTenantReplication"]), message: /allowCrossTenantReplication/ }],
  },
  "storage-container-private": {
    pass: [resource("blobContainer"), resource("blobContainer", (p) => delete p["publicAccess"])],
    fail: [{ resource: resource("blobContainer", (p) => (p["publicAccess"] = "Blob")), message: /publicAccess is Blob/ }],
  },
  "storage-blob-soft-delete": {
    pass: [resource("blobService")],
    fail: [
      { resource: resource("blobService", (p) => delete p["deleteRetentionPolicy"]), message: /deleteRetentionPolicy must be enabled/ },
      { resource: resource("blobService", (p) => (p["deleteRetentionPolicy"] = { enabled: true, days: 0 })), message: /days >= 1/ },
    ],
  },
  "storage-container-soft-delete": {
    pass: [resource("blobService")],
    fail: [{ resource: resource("blobService", (p) => (p["containerDeleteRetentionPolicy"] = { enabled: false, days: 7 })), message: /containerDeleteRetentionPolicy/ }],
  },
  "storage-cors-named-origins": {
    pass: [resource("blobService"), resource("blobService", (p) => delete p["cors"])],
    fail: [{ resource: resource("blobService", (p) => (p["cors"].corsRules[0].allowedOrigins = ["*"])), message: /every origin/ }],
  },
  "cosmos-no-local-auth": {
    pass: [resource("cosmosAccount")],
    fail: [{ resource: resource("cosmosAccount", (p) => (p["disableLocalAuth"] = false)), message: /disableLocalAuth must be true/ }],
  },
  "cosmos-no-key-metadata-writes": {
    pass: [resource("cosmosAccount")],
    fail: [{ resource: resource("cosmosAccount", (p) => delete p["disableKeyBasedMetadataWriteAccess"]), message: /disableKeyBasedMetadataWriteAccess/ }],
  },
  "cosmos-tls-1-2": {
    pass: [resource("cosmosAccount"), resource("cosmosAccount", (p) => delete p["minimalTlsVersion"])],
    fail: [
      { resource: resource("cosmosAccount", (p) => (p["minimalTlsVersion"] = "Tls11")), message: /Tls11; set Tls12/ },
      { resource: resource("cosmosAccount", (p) => (p["minimalTlsVersion"] = "Tls")), message: /Tls; set Tls12/ },
    ],
  },
  "cosmos-continuous-backup": {
    pass: [resource("cosmosAccount")],
    fail: [{ resource: resource("cosmosAccount", (p) => (p["backupPolicy"] = { type: "Periodic" })), message: /Continuous/ }],
  },
  "cosmos-data-role-scoped-to-database": {
    pass: [resource("cosmosRoleAssignment")],
    fail: [{ resource: resource("cosmosRoleAssignment", (p) => (p["scope"] = `${rg}/providers/Microsoft.DocumentDB/databaseAccounts/acct`)), message: /whole account/ }],
  },
  "servicebus-no-local-auth": {
    pass: [resource("serviceBusNamespace")],
    fail: [{ resource: resource("serviceBusNamespace", (p) => delete p["disableLocalAuth"]), message: /disableLocalAuth must be true/ }],
  },
  "servicebus-tls-1-2": {
    pass: [resource("serviceBusNamespace")],
    fail: [{ resource: resource("serviceBusNamespace", (p) => (p["minimumTlsVersion"] = "1.0")), message: /1\.0; set "1\.2"/ }],
  },
  "servicebus-no-sas-rules": {
    pass: [resource("serviceBusNamespace"), resource("queue")],
    passOutcome: "not applicable",
    fail: [
      { resource: { type: "azure-native:servicebus:NamespaceAuthorizationRule", name: "root", props: { rights: ["Send"] } }, message: /creates a SAS key/ },
      { resource: { type: "azure-native:servicebus:QueueAuthorizationRule", name: "send", props: { rights: ["Send"] } }, message: /QueueAuthorizationRule creates a SAS key/ },
      { resource: { type: "azure-native:servicebus:TopicAuthorizationRule", name: "listen", props: { rights: ["Listen"] } }, message: /TopicAuthorizationRule/ },
    ],
  },
  "servicebus-dead-letter-expired": {
    pass: [resource("queue")],
    fail: [{ resource: resource("queue", (p) => (p["deadLetteringOnMessageExpiration"] = false)), message: /deadLetteringOnMessageExpiration/ }],
  },
  "webpubsub-entra-only": {
    pass: [resource("webPubSub"), resource("webPubSub", (p) => delete p["disableAadAuth"])],
    fail: [
      { resource: resource("webPubSub", (p) => (p["disableLocalAuth"] = false)), message: /disableLocalAuth must be true/ },
      { resource: resource("webPubSub", (p) => (p["disableAadAuth"] = true)), message: /disableAadAuth must not be true/ },
    ],
  },
  "webpubsub-hub-no-anonymous": {
    pass: [resource("webPubSubHub"), resource("webPubSubHub", (p) => (p["properties"] = {}))],
    fail: [{ resource: resource("webPubSubHub", (p) => (p["properties"].anonymousConnectPolicy = "Allow")), message: /Allow; it must be Deny/ }],
  },
  "webpubsub-sku-with-sla": {
    pass: [resource("webPubSub")],
    fail: [{ resource: resource("webPubSub", (p) => (p["sku"] = { name: "Free_F1" })), message: /no SLA/ }],
  },
  "app-https-only": {
    pass: [resource("site")],
    fail: [{ resource: resource("site", (p) => (p["httpsOnly"] = false)), message: /httpsOnly must be true/ }],
  },
  "app-tls-1-2": {
    pass: [resource("site"), resource("site", (p) => delete p["siteConfig"].minTlsVersion)],
    fail: [
      { resource: resource("site", (p) => (p["siteConfig"].minTlsVersion = "1.0")), message: /minTlsVersion is 1\.0/ },
      { resource: resource("site", (p) => (p["siteConfig"].scmMinTlsVersion = "1.1")), message: /scmMinTlsVersion is 1\.1/ },
    ],
  },
  "app-no-remote-debugging": {
    pass: [resource("site"), resource("site", (p) => (p["siteConfig"].remoteDebuggingEnabled = false))],
    fail: [{ resource: resource("site", (p) => (p["siteConfig"].remoteDebuggingEnabled = true)), message: /remoteDebuggingEnabled/ }],
  },
  "app-managed-identity": {
    pass: [resource("site"), resource("site", (p) => (p["identity"] = { type: "SystemAssigned" }))],
    fail: [
      { resource: resource("site", (p) => delete p["identity"]), message: /identity\.type is None/ },
      { resource: resource("site", (p) => (p["identity"] = { type: "None" })), message: /identity\.type is None/ },
    ],
  },
  "app-cors-named-origins": {
    pass: [resource("site")],
    fail: [{ resource: resource("site", (p) => p["siteConfig"].cors.allowedOrigins.push("*")), message: /contains "\*"/ }],
  },
  "app-http2": {
    pass: [resource("site")],
    fail: [{ resource: resource("site", (p) => (p["siteConfig"].http20Enabled = false)), message: /http20Enabled/ }],
  },
  "app-settings-without-credentials": {
    pass: [resource("site")],
    fail: [
      {
        resource: resource("site", (p) =>
          p["siteConfig"].appSettings.push({ name: "AzureWebJobsStorage", value: "DefaultEndpointsProtocol=https;AccountName=a;AccountKey=abc==" }),
        ),
        message: /app setting AzureWebJobsStorage holds a credential/,
      },
      {
        resource: resource("site", (p) => p["siteConfig"].appSettings.push({ name: "UPLOADS_SAS", value: "https://a.blob.core.windows.net/u?sv=2024&sig=abc" })),
        message: /UPLOADS_SAS/,
      },
    ],
  },
  "flex-site-config-supported": {
    pass: [
      resource("site"),
      // Not a Flex site (no functionAppConfig): ftpsState is the right setting there.
      resource("site", (p) => {
        delete p["functionAppConfig"];
        p["siteConfig"].ftpsState = "Disabled";
      }),
    ],
    fail: [
      { resource: resource("site", (p) => (p["siteConfig"].ftpsState = "Disabled")), message: /sets ftpsState, which Flex Consumption rejects/ },
      {
        resource: resource("site", (p) => Object.assign(p["siteConfig"], { netFrameworkVersion: "v4.6", use32BitWorkerProcess: false })),
        message: /netFrameworkVersion, use32BitWorkerProcess/,
      },
    ],
  },
  "flex-app-settings-supported": {
    pass: [resource("site"), resource("site", (p) => { delete p["functionAppConfig"]; p["siteConfig"].appSettings.push({ name: "FUNCTIONS_WORKER_RUNTIME", value: "node" }); })],
    fail: [
      { resource: resource("site", (p) => p["siteConfig"].appSettings.push({ name: "FUNCTIONS_WORKER_RUNTIME", value: "node" })), message: /FUNCTIONS_WORKER_RUNTIME are not for Flex/ },
      { resource: resource("site", (p) => p["siteConfig"].appSettings.push({ name: "WEBSITE_RUN_FROM_PACKAGE", value: "1" })), message: /WEBSITE_RUN_FROM_PACKAGE/ },
    ],
  },
  "flex-deployment-storage-identity": {
    pass: [resource("site"), resource("site", (p) => (p["functionAppConfig"].deployment.storage.authentication.type = "SystemAssignedIdentity"))],
    fail: [
      {
        resource: resource("site", (p) => (p["functionAppConfig"].deployment.storage.authentication = { type: "StorageAccountConnectionString", storageAccountConnectionStringName: "DEPLOY" })),
        message: /StorageAccountConnectionString/,
      },
    ],
  },
  "flex-runtime-supported": {
    pass: [resource("site"), resource("site", (p) => (p["functionAppConfig"].runtime = { name: "node", version: "24" })), resource("site", (p) => (p["functionAppConfig"].runtime = { name: "python", version: "3.12" }))],
    fail: [{ resource: resource("site", (p) => (p["functionAppConfig"].runtime.version = "20")), message: /node 20 is out of support/ }],
  },
  "app-basic-publishing-off": {
    pass: [resource("scmAllowed"), resource("ftpAllowed")],
    fail: [
      { resource: resource("scmAllowed", (p) => (p["allow"] = true)), message: /WebAppScmAllowed must set allow: false/ },
      { resource: resource("ftpAllowed", (p) => delete p["allow"]), message: /WebAppFtpAllowed must set allow: false/ },
    ],
  },
  "appinsights-entra-ingestion": {
    pass: [resource("appInsights")],
    fail: [{ resource: resource("appInsights", (p) => delete p["disableLocalAuth"]), message: /disableLocalAuth must be true/ }],
  },
  "appinsights-workspace-based": {
    pass: [resource("appInsights")],
    fail: [{ resource: resource("appInsights", (p) => delete p["workspaceResourceId"]), message: /workspaceResourceId/ }],
  },
  "loganalytics-entra-only": {
    pass: [resource("workspace")],
    fail: [{ resource: resource("workspace", (p) => (p["features"] = {})), message: /disableLocalAuth/ }],
  },
  "rbac-no-privileged-roles": {
    pass: [resource("roleAssignment")],
    fail: Object.entries(privilegedRoles).map(([guid, name]) => ({
      resource: resource("roleAssignment", (p) => (p["roleDefinitionId"] = role(guid.toUpperCase()))),
      message: new RegExp(`grants ${name.replace(/[()]/g, "\\$&")}`),
    })),
  },
  "rbac-resource-scope": {
    pass: [resource("roleAssignment")],
    fail: [
      { resource: resource("roleAssignment", (p) => (p["scope"] = rg)), message: /scope is a resourceGroup/ },
      { resource: resource("roleAssignment", (p) => (p["scope"] = sub)), message: /scope is a subscription/ },
    ],
  },
  "rbac-principal-type": {
    pass: [resource("roleAssignment")],
    fail: [{ resource: resource("roleAssignment", (p) => delete p["principalType"]), message: /principalType should be set/ }],
  },
  "apim-tier-with-caller-limits": {
    pass: [resource("apimService"), resource("apimService", (p) => (p["sku"] = { name: "StandardV2", capacity: 2 }))],
    fail: [{ resource: resource("apimService", (p) => (p["sku"] = { name: "Consumption", capacity: 0 })), message: /Consumption; use BasicV2 or StandardV2/ }],
  },
  "apim-managed-identity": {
    pass: [resource("apimService"), resource("apimService", (p) => (p["identity"] = { type: "SystemAssigned" }))],
    fail: [
      { resource: resource("apimService", (p) => delete p["identity"]), message: /identity\.type is None/ },
      { resource: resource("apimService", (p) => (p["identity"] = { type: "None" })), message: /identity\.type is None/ },
    ],
  },
  "apim-classic-tls-1-2": {
    pass: [
      resource("apimService"),
      resource("apimService", (p) => {
        p["sku"] = { name: "Developer", capacity: 1 };
        p["customProperties"] = Object.fromEntries(apimLegacyProtocolProperties.map((key) => [key, "False"]));
      }),
    ],
    fail: [
      { resource: resource("apimService", (p) => (p["sku"] = { name: "Premium", capacity: 1 })), message: /Protocols\.Tls10.*Backend\.Protocols\.Tls11 on/ },
      {
        resource: resource("apimService", (p) => {
          p["sku"] = { name: "Standard", capacity: 1 };
          p["customProperties"] = { ...Object.fromEntries(apimLegacyProtocolProperties.map((key) => [key, "False"])), [apimLegacyProtocolProperties[1]]: "True" };
        }),
        message: /leave Microsoft\.WindowsAzure\.ApiManagement\.Gateway\.Security\.Protocols\.Tls11 on/,
      },
    ],
  },
  "apim-min-api-version": {
    pass: [resource("apimService")],
    fail: [
      { resource: resource("apimService", (p) => delete p["apiVersionConstraint"]), message: /unset; set 2019-12-01/ },
      { resource: resource("apimService", (p) => (p["apiVersionConstraint"] = { minApiVersion: "2018-01-01" })), message: /2018-01-01/ },
    ],
  },
  "apim-api-https-only": {
    pass: [resource("apimApi")],
    fail: [
      { resource: resource("apimApi", (p) => (p["protocols"] = ["http", "https"])), message: /allow only "https"/ },
      { resource: resource("apimApi", (p) => delete p["protocols"]), message: /protocols are \[\]/ },
      { resource: resource("apimApi", (p) => (p["serviceUrl"] = "http://api.example.com")), message: /is not https/ },
    ],
  },
  "apim-cors-named-origins": {
    pass: [resource("apimPolicy"), { ...resource("apimPolicy"), type: "azure-native:apimanagement:Policy" }],
    fail: [
      { resource: resource("apimPolicy", (p) => (p["value"] = "<policies><inbound><cors><allowed-origins><origin>*</origin></allowed-origins></cors></inbound></policies>")), message: /every origin/ },
      { resource: { ...resource("apimPolicy", (p) => (p["value"] = "<origin> * </origin>")), type: "azure-native:apimanagement:Policy" }, message: /every origin/ },
    ],
  },
  "apim-logger-keyless": {
    pass: [resource("apimLogger"), resource("apimLogger", (p) => ((p["loggerType"] = "azureMonitor"), delete p["credentials"]))],
    fail: [
      { resource: resource("apimLogger", (p) => (p["credentials"] = { instrumentationKey: "00000000-0000-0000-0000-000000000000" })), message: /need connectionString and identityClientId[\s\S]*instrumentationKey is set/ },
      { resource: resource("apimLogger", (p) => delete p["credentials"].identityClientId), message: /identityClientId/ },
    ],
  },
  "apim-diagnostic-no-credential-headers": {
    pass: [resource("apimDiagnostic"), resource("apimDiagnostic", (p) => delete p["frontend"])],
    fail: [
      { resource: resource("apimDiagnostic", (p) => (p["frontend"].request.headers = ["Authorization"])), message: /frontend\.request\.headers logs authorization/ },
      { resource: resource("apimDiagnostic", (p) => (p["backend"].response.headers = ["x-ms-client-principal-id", "Set-Cookie"])), message: /backend\.response\.headers logs x-ms-client-principal-id, set-cookie/ },
    ],
  },
  "apim-diagnostic-w3c": {
    pass: [resource("apimDiagnostic")],
    fail: [{ resource: resource("apimDiagnostic", (p) => (p["httpCorrelationProtocol"] = "Legacy")), message: /Legacy; set W3C/ }],
  },
  "keyvault-purge-protection": {
    pass: [resource("vault")],
    fail: [
      { resource: resource("vault", (p) => delete p["properties"].enablePurgeProtection), message: /enablePurgeProtection must be true/ },
      { resource: resource("vault", (p) => (p["properties"].enableSoftDelete = false)), message: /enableSoftDelete must not be false/ },
    ],
  },
  "keyvault-rbac-authorization": {
    pass: [resource("vault")],
    fail: [{ resource: resource("vault", (p) => (p["properties"].enableRbacAuthorization = false)), message: /enableRbacAuthorization/ }],
  },
  "no-credentials-in-inputs": {
    pass: Object.keys(compliant).map((shape) => resource(shape as Shape)),
    fail: [
      {
        resource: { type: "azure-native:web:WebAppApplicationSettings", name: "settings", props: { properties: { Storage: "Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=x;SharedAccessKey=abc=" } } },
        message: /\$\.properties\.Storage/,
      },
      {
        resource: { type: "pulumi-nodejs:dynamic:Resource", name: "upload", props: { urls: ["https://a.blob.core.windows.net/c/b?sv=1&sig=abc"] } },
        message: /\$\.urls\[0\]/,
      },
    ],
  },
};

/** A small stack: one Flex app on its own plan, basic publishing off. */
function appStack(): ResourceUnderTest[] {
  return [
    { type: "azure-native:web:AppServicePlan", name: "api-plan", props: { sku: { name: "FC1", tier: "FlexConsumption" } } },
    { ...resource("site", () => {}, "api-site"), dependsOn: ["api-plan"] },
    { ...resource("scmAllowed", () => {}, "api-scm-basic-auth"), dependsOn: ["api-site"] },
  ];
}

/** A classic (non-Flex) site: it has FTP, so it needs the FTP policy too. */
function classicSiteStack(withFtpPolicy: boolean): ResourceUnderTest[] {
  const site = resource("site", () => {}, "web-site");
  const { functionAppConfig: _flex, ...classic } = site.props as Record<string, unknown>;
  return [
    { ...site, props: classic },
    { ...resource("scmAllowed", () => {}, "web-scm-basic-auth"), dependsOn: ["web-site"] },
    ...(withFtpPolicy ? [{ ...resource("ftpAllowed", () => {}, "web-ftp-basic-auth"), dependsOn: ["web-site"] }] : []),
  ];
}

interface StackCase {
  readonly pass: ResourceUnderTest[][];
  readonly fail: { resources: ResourceUnderTest[]; message: RegExp }[];
}

const stackCases: Record<string, StackCase> = {
  "stack-outputs-without-credentials": {
    pass: [[{ type: "pulumi:pulumi:Stack", name: "dev", props: { apiUrl: "https://api.azurewebsites.net", webUrl: "https://web.z13.web.core.windows.net/" } }]],
    fail: [
      {
        resources: [{ type: "pulumi:pulumi:Stack", name: "dev", props: { uploadUrl: "https://a.blob.core.windows.net/u/x?sv=2024&sig=abc" } }],
        message: /stack outputs hold credential-shaped values at \$\.uploadUrl/,
      },
    ],
  },
  "app-basic-publishing-disabled-for-every-site": {
    // A Flex site has no FTP: its SCM policy is enough.
    pass: [appStack(), classicSiteStack(true)],
    fail: [
      { resources: classicSiteStack(false), message: /web-site has no WebAppFtpAllowed/ },
      // Present but for another site: it does not count.
      { resources: [...appStack().filter((r) => r.name !== "api-scm-basic-auth"), { ...resource("scmAllowed", () => {}, "other-scm"), dependsOn: ["other-site"] }], message: /api-site has no WebAppScmAllowed/ },
    ],
  },
  "flex-one-app-per-plan": {
    pass: [appStack(), [...appStack(), { type: "azure-native:web:AppServicePlan", name: "agent-plan", props: { sku: { name: "FC1" } } }, { ...resource("site", () => {}, "agent-site"), dependsOn: ["agent-plan"] }]],
    fail: [{ resources: [...appStack(), { ...resource("site", () => {}, "agent-site"), dependsOn: ["api-plan"] }], message: /api-plan hosts api-site, agent-site/ }],
  },
};

const violated = (outcome: Outcome) => (outcome.kind === "violated" ? outcome.messages.join("\n") : `(${outcome.kind})`);

describe("the policy pack", () => {
  it("has at least 20 rules, uniquely named, each mandatory or advisory with a reason", () => {
    const names = policies.map((p) => p.name);
    expect(new Set(names).size).toBe(names.length);
    expect(policies.length).toBeGreaterThanOrEqual(20);
    for (const policy of policies) {
      expect(["mandatory", "advisory"], policy.name).toContain(policy.enforcementLevel);
      expect(policy.name).toMatch(/^[a-z0-9-]+$/);
      // A sentence saying what, and at least one more clause saying why.
      expect(policy.description.length, policy.name).toBeGreaterThan(40);
    }
  });

  it("has a passing and a failing case in this file for every rule", () => {
    const tested = [...Object.keys(resourceCases), ...Object.keys(stackCases)].sort();
    expect(tested).toEqual(policies.map((p) => p.name).sort());
  });
});

describe.each(policies.filter(isResourcePolicy).map((p) => [p.name, p] as const))("%s", (name, policy) => {
  const cases = resourceCases[name]!;

  it("passes the compliant resources", async () => {
    const expected = { kind: cases.passOutcome ?? "passed" };
    for (const r of cases.pass) expect(await evaluateResource(policy, r), `${r.type} ${JSON.stringify(r.props)}`).toEqual(expected);
  });

  it("reports each violating resource with a message that says what to change", async () => {
    for (const { resource: r, message } of cases.fail) {
      const outcome = await evaluateResource(policy, r);
      expect(violated(outcome), JSON.stringify(r.props)).toMatch(message);
    }
  });

  it("leaves other resource types alone", async () => {
    const other = { type: "azure-native:resources:ResourceGroup", name: "rg", props: { location: "eastus" } };
    expect((await evaluateResource(policy, other)).kind).toBe(name === "no-credentials-in-inputs" ? "passed" : "not applicable");
  });
});

describe.each(policies.filter(isStackPolicy).map((p) => [p.name, p] as const))("%s", (name, policy) => {
  const cases = stackCases[name]!;

  it("passes the compliant stacks", async () => {
    for (const resources of cases.pass) expect(await evaluateStack(policy, resources)).toEqual({ kind: "passed" });
  });

  it("reports each violating stack", async () => {
    for (const { resources, message } of cases.fail) expect(violated(await evaluateStack(policy, resources))).toMatch(message);
  });
});

describe("preview semantics", () => {
  // What @pulumi/policy's deserializer puts where the engine sends an unknown value.
  const unknownString = (createRequire(join(process.cwd(), "package.json"))("@pulumi/policy/proxy") as { unknownStringValue: unknown }).unknownStringValue;

  it("a rule that reads a value unknown during preview reports it cannot run yet, rather than passing or failing", async () => {
    const assignment = resource("roleAssignment", (p) => (p["roleDefinitionId"] = unknownString));
    const rule = policies.find((p) => p.name === "rbac-no-privileged-roles");
    expect(rule && isResourcePolicy(rule) ? (await evaluateResource(rule, assignment)).kind : "missing").toBe("unknown during preview");
  });

  it("the credential scan skips unknown values and still finds known credentials beside them", () => {
    const props = unknownCheckingProxy({ endpoint: unknownString, settings: [{ value: "AccountKey=abc" }] });
    expect(findCredentials(props)).toEqual(["$.settings[0].value"]);
  });
});

describe("helpers", () => {
  it("compare TLS versions across Azure's spellings", () => {
    for (const ok of ["1.2", "1.3", "TLS1_2", "Tls12"]) expect(tlsAtLeast(ok, "1.2"), ok).toBe(true);
    for (const low of ["1.0", "1.1", "TLS1_0", "TLS1_1", "Tls", "Tls11", "banana"]) expect(tlsAtLeast(low, "1.2"), low).toBe(false);
  });

  it("classify RBAC scopes and read role GUIDs", () => {
    expect(scopeLevel("/")).toBe("root");
    expect(scopeLevel(sub)).toBe("subscription");
    expect(scopeLevel(`${rg}/`)).toBe("resourceGroup");
    expect(scopeLevel(`${rg}/providers/Microsoft.Storage/storageAccounts/a`)).toBe("resource");
    expect(scopeLevel("/providers/Microsoft.Management/managementGroups/mg")).toBe("managementGroup");
    expect(roleGuid(role("B24988AC-6180-42A0-AB88-20F7382DD24C"))).toBe("b24988ac-6180-42a0-ab88-20f7382dd24c");
  });
});
