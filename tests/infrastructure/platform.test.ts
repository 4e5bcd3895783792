/**
 * The whole platform built once under mocks, with a non-default configuration so that every value
 * can be traced from config to resource. Asserts resources and their properties, the security
 * rules, each principal's exact grants, the app settings, and naming hygiene.
 */
import { beforeAll, describe, expect, it } from "vitest";
import * as pulumi from "@pulumi/pulumi";
import { getClientConfigOutput } from "@pulumi/azure-native/authorization";
import { connectionFamilies, type AnyLinkDeclaration } from "../../functions/src/platform/links";
import { resources } from "../../functions/src/resources";
import { declarationOf, serviceNames, type ServiceName } from "../../functions/src/services";
import { linkedFamilies } from "../../functions/src/settings";
import { SWAGGER_UI_ASSET_FILES } from "../../functions/src/api/docs-assets";
import { parseConfig, projectName } from "../../infrastructure/config";
import { anonymousPaths, createPlatform, type Platform } from "../../infrastructure/platform";
import { builtInRoles, cosmosDataRoleIds, deterministicGuid } from "../../infrastructure/roles";
import { resourceNames, type ResourceNames } from "../../infrastructure/naming";
import { CREDENTIAL_INVOKE, installMocks, named, ofType, valueOf, deployerObjectId, subscriptionId, tenantId, type MockedStack, type RecordedResource } from "./support/mocks";
import { descendants, childrenOf, logicalName, registered } from "./support/tree";
import { secretShapes, findSecrets } from "./support/secrets";

const stackName = "prod";
const config = parseConfig({
  namePrefix: "acme",
  serviceBusSku: "Standard",
  apiAlwaysReadyInstances: "2",
  functionMemoryMb: "4096",
  functionMaximumInstances: "200",
  logRetentionDays: "60",
  cosmosConsistency: "Strong",
  webPubSubSku: "Standard_S1",
  webPubSubUnits: "2",
  blobSoftDeleteDays: "14",
  uploadMaxBytes: "1048576",
  uploadUrlTtlSeconds: "120",
  uploadsDeleteAfterDays: "3",
  storageSku: "Standard_ZRS",
  authEntraClientId: "0f0f0f0f-1111-2222-3333-444444444444",
  authSpaClientId: "5a5a5a5a-1111-2222-3333-444444444444",
  authAllowedClientIds: "7b7b7b7b-1111-2222-3333-444444444444, 8c8c8c8c-1111-2222-3333-444444444444",
});
const names: ResourceNames = resourceNames({ prefix: "acme", project: projectName, stack: stackName, subscriptionId });

let stack: MockedStack;
let platform: Platform;
let urns: string[];
let outputs: Record<string, unknown>;

const components = () => [
  platform.storage,
  platform.database,
  platform.messaging,
  platform.realtime,
  platform.monitoring,
  ...serviceNames.map((service) => platform.apps[service]),
];
/** Services whose Function App gets App Service Authentication in this stack (Entra configured): the browser-facing ones. */
const browserFacing = serviceNames.filter((service) => declarationOf(service).http?.browserFacing);

beforeAll(async () => {
  stack = await installMocks(stackName);
  platform = createPlatform(config, { project: projectName, stack: stackName, client: getClientConfigOutput() });
  urns = await registered([platform.resourceGroup, ...components()]);
  outputs = (await valueOf(pulumi.output(platform.outputs))) as Record<string, unknown>;
});

type Settings = { name: string; value: string }[];
/** One value per service of the registry, written out here rather than taken from the code under test. */
const perServiceName = <T>(value: (service: ServiceName) => T): Record<string, T> => Object.fromEntries(serviceNames.map((service) => [service, value(service)]));
const appSettings = (app: RecordedResource): Map<string, string> =>
  new Map(((app.inputs["siteConfig"] as { appSettings: Settings }).appSettings).map((s) => [s.name, s.value]));

describe("resources", () => {
  it("creates each resource family once, each declared resource once, and one of each per-app resource per service", () => {
    const counts: Record<string, number> = {};
    for (const r of stack.resources) counts[r.type] = (counts[r.type] ?? 0) + 1;
    const apps = serviceNames.length;
    expect(serviceNames).toEqual(expect.arrayContaining(["api", "agent"]));
    expect(browserFacing).toEqual(["api"]);
    expect(counts).toMatchObject({
      "azure-native:resources:ResourceGroup": 1,
      "azure-native:storage:StorageAccount": 2,
      "azure-native:storage:BlobServiceProperties": 2,
      // The declared containers (uploads) and a deployment container per app.
      "azure-native:storage:BlobContainer": Object.keys(resources.blobContainers).length + apps,
      "azure-native:storage:StorageAccountStaticWebsite": 1,
      "azure-native:storage:ManagementPolicy": 1,
      "azure-native:cosmosdb:DatabaseAccount": 1,
      "azure-native:cosmosdb:SqlResourceSqlDatabase": 1,
      "azure-native:cosmosdb:SqlResourceSqlContainer": Object.keys(resources.cosmos.containers).length,
      "azure-native:servicebus:Namespace": 1,
      "azure-native:servicebus:Queue": Object.keys(resources.queues).length,
      "azure-native:webpubsub:WebPubSub": 1,
      "azure-native:webpubsub:WebPubSubHub": Object.keys(resources.hubs).length,
      "azure-native:operationalinsights:Workspace": 1,
      "azure-native:applicationinsights:Component": 1,
      "azure-native:managedidentity:UserAssignedIdentity": apps,
      "azure-native:web:AppServicePlan": apps,
      "azure-native:web:WebApp": apps,
      "azure-native:web:WebAppScmAllowed": apps,
      "azure-native:web:WebAppAuthSettingsV2": browserFacing.length,
    });
  });

  it("puts everything in the stack's resource group and region", () => {
    expect(named(stack, "resource-group").inputs).toMatchObject({ resourceGroupName: names.resourceGroup, location: "eastus" });
    for (const r of stack.resources) {
      if (r.type === "azure-native:resources:ResourceGroup" || r.type.startsWith("platform:") || r.type.startsWith("pulumi-nodejs:dynamic")) continue;
      if (r.type === "azure-native:authorization:RoleAssignment") {
        expect(String(r.inputs["scope"]).startsWith(`/subscriptions/${subscriptionId}/resourceGroups/${names.resourceGroup}/`), r.name).toBe(true);
        continue;
      }
      expect(r.inputs["resourceGroupName"], r.name).toBe(names.resourceGroup);
      if ("location" in r.inputs) expect(r.inputs["location"], r.name).toBe("eastus");
    }
  });

  it("storage: uploads container with CORS PUT from the web origin, deployment containers in the host account, static website", () => {
    const data = named(stack, "storage-data");
    const host = named(stack, "storage-host");
    expect(data.inputs).toMatchObject({ accountName: names.dataStorageAccount, sku: { name: "Standard_ZRS" }, kind: "StorageV2" });
    expect(host.inputs).toMatchObject({ accountName: names.hostStorageAccount, sku: { name: "Standard_ZRS" } });
    const webOrigin = `https://${names.dataStorageAccount}.z13.web.core.windows.net`;
    expect(named(stack, "storage-data-blobs").inputs).toMatchObject({
      accountName: names.dataStorageAccount,
      cors: { corsRules: [{ allowedOrigins: [webOrigin], allowedMethods: ["PUT"] }] },
    });
    expect(named(stack, "storage-host-blobs").inputs["cors"]).toBeUndefined();
    expect(named(stack, "storage-uploads").inputs).toMatchObject({ containerName: "uploads", accountName: names.dataStorageAccount });
    for (const service of serviceNames) {
      expect(named(stack, `storage-${service}-package`).inputs).toMatchObject({
        containerName: names.apps[service].deploymentContainer,
        accountName: names.hostStorageAccount,
      });
    }
    expect(named(stack, "storage-website").inputs).toMatchObject({ accountName: names.dataStorageAccount, indexDocument: "index.html" });
  });

  it("storage: uploads deleted by a lifecycle rule uploadsDeleteAfterDays after creation, snapshots too; nothing else", () => {
    const lifecycle = named(stack, "storage-data-lifecycle");
    expect(lifecycle.inputs).toEqual({
      accountName: names.dataStorageAccount,
      resourceGroupName: names.resourceGroup,
      managementPolicyName: "default",
      policy: {
        rules: [
          {
            name: "deleteuploadsafterdays",
            enabled: true,
            type: "Lifecycle",
            definition: {
              filters: { blobTypes: ["blockBlob", "appendBlob"], prefixMatch: ["uploads/"] },
              actions: {
                baseBlob: { delete: { daysAfterCreationGreaterThan: 3 } },
                snapshot: { delete: { daysAfterCreationGreaterThan: 3 } },
                version: { delete: { daysAfterCreationGreaterThan: 3 } },
              },
            },
          },
        ],
      },
    });
    // The rule names the container by prefix: it is created after it.
    expect(stack.dependencies.get("storage-data-lifecycle")).toContain(urns.find((urn) => urn.endsWith("::storage-uploads")));
  });

  it("database: serverless account with the configured consistency, jobs container partitioned by /userId", () => {
    expect(named(stack, "database-account").inputs).toMatchObject({
      accountName: names.cosmosAccount,
      capabilities: [{ name: "EnableServerless" }],
      consistencyPolicy: { defaultConsistencyLevel: "Strong" },
      locations: [{ locationName: "eastus", failoverPriority: 0 }],
    });
    expect(named(stack, "database-jobs").inputs).toMatchObject({
      containerName: "jobs",
      databaseName: "platform",
      resource: { id: "jobs", partitionKey: { paths: ["/userId"], kind: "Hash" } },
    });
  });

  it("messaging: the declared jobs queue with its delivery count, lock, TTL, dead-lettering and duplicate detection (Standard)", () => {
    expect(named(stack, "messaging-namespace").inputs).toMatchObject({ namespaceName: names.serviceBusNamespace, sku: { name: "Standard", tier: "Standard" } });
    expect(ofType(stack, "azure-native:servicebus:Queue").map((q) => q.inputs["queueName"])).toEqual(Object.keys(resources.queues));
    expect(named(stack, "messaging-jobs").inputs).toMatchObject({
      queueName: "jobs",
      maxDeliveryCount: 5,
      lockDuration: "PT60S",
      defaultMessageTimeToLive: "PT24H",
      deadLetteringOnMessageExpiration: true,
      requiresDuplicateDetection: true,
      duplicateDetectionHistoryTimeWindow: "PT10M",
    });
  });

  it("realtime: Web PubSub with the configured SKU and a hub that denies anonymous connects and has no event handler", () => {
    expect(named(stack, "realtime-service").inputs).toMatchObject({ resourceName: names.webPubSub, sku: { name: "Standard_S1", capacity: 2 } });
    const hub = named(stack, "realtime-jobs-hub").inputs as { hubName: string; properties: { anonymousConnectPolicy: string; eventHandlers?: unknown[] } };
    expect(hub.hubName).toBe("jobs");
    expect(hub.properties.anonymousConnectPolicy).toBe("Deny");
    expect(hub.properties.eventHandlers ?? []).toEqual([]);
  });

  it("monitoring: workspace-based App Insights with the configured retention", () => {
    expect(named(stack, "monitoring-logs").inputs).toMatchObject({ workspaceName: names.logAnalyticsWorkspace, retentionInDays: 60, sku: { name: "PerGB2018" } });
    expect(named(stack, "monitoring-insights").inputs).toMatchObject({ resourceName: names.applicationInsights, ingestionMode: "LogAnalytics" });
  });

  for (const service of serviceNames) {
    it(`${service}: Flex Consumption app on Node 22 with its own plan, identity and deployment container`, () => {
      const identityId = named(stack, `${service}-identity`).id;
      expect(named(stack, `${service}-plan`).inputs).toMatchObject({ name: names.apps[service].plan, sku: { name: "FC1", tier: "FlexConsumption" }, reserved: true });
      expect(named(stack, `${service}-site`).inputs).toMatchObject({
        name: names.apps[service].site,
        kind: "functionapp,linux",
        serverFarmId: named(stack, `${service}-plan`).id,
        identity: { type: "UserAssigned", userAssignedIdentities: [identityId] },
        functionAppConfig: {
          runtime: { name: "node", version: "22" },
          deployment: {
            storage: {
              type: "blobContainer",
              value: `https://${names.hostStorageAccount}.blob.core.windows.net/${names.apps[service].deploymentContainer}`,
              authentication: { type: "UserAssignedIdentity", userAssignedIdentityResourceId: identityId },
            },
          },
          scaleAndConcurrency: { instanceMemoryMB: 4096, maximumInstanceCount: 200 },
        },
      });
    });
  }

  it("api: always-ready HTTP instances from config and CORS for the web origin; agent: neither", () => {
    const api = named(stack, "api-site").inputs as { functionAppConfig: { scaleAndConcurrency: { alwaysReady: unknown[] } }; siteConfig: { cors: unknown } };
    const agent = named(stack, "agent-site").inputs as typeof api;
    expect(api.functionAppConfig.scaleAndConcurrency.alwaysReady).toEqual([{ name: "http", instanceCount: 2 }]);
    expect(agent.functionAppConfig.scaleAndConcurrency.alwaysReady).toEqual([]);
    expect(api.siteConfig.cors).toEqual({ allowedOrigins: [`https://${names.dataStorageAccount}.z13.web.core.windows.net`], supportCredentials: false });
    expect(agent.siteConfig.cors).toEqual({ allowedOrigins: [], supportCredentials: false });
  });

  it("api: App Service Authentication with Entra returns 401 without a token; the agent has none", () => {
    expect(named(stack, "api-auth").inputs).toMatchObject({
      name: names.apps.api.site,
      platform: { enabled: true },
      globalValidation: { requireAuthentication: true, unauthenticatedClientAction: "Return401", excludedPaths: ["/api/health", "/api/openapi.json", "/api/docs", "/api/docs/*"] },
      identityProviders: {
        azureActiveDirectory: {
          enabled: true,
          registration: { clientId: config.authEntraClientId, openIdIssuer: `https://login.microsoftonline.com/${tenantId}/v2.0` },
          // Only the web app's tokens and the named others (CI's smoke check): other clients get 403.
          validation: {
            defaultAuthorizationPolicy: {
              allowedApplications: [config.authSpaClientId, "7b7b7b7b-1111-2222-3333-444444444444", "8c8c8c8c-1111-2222-3333-444444444444"],
            },
          },
        },
      },
    });
    for (const service of serviceNames.filter((s) => !browserFacing.includes(s))) expect(stack.resources.some((r) => r.name === `${service}-auth`), service).toBe(false);
    // Existing registrations were named: the program creates none.
    expect(stack.resources.filter((r) => r.type.startsWith("azuread:"))).toEqual([]);
  });

  it("without the gateway (the default): no API Management, the web app's (and the named clients') tokens admitted, the app answers browsers itself", () => {
    expect(stack.resources.filter((r) => r.type.startsWith("azure-native:apimanagement:") || r.name.startsWith("gateway-"))).toEqual([]);
    expect(platform.gateway).toBeUndefined();
    const validation = (named(stack, "api-auth").inputs["identityProviders"] as { azureActiveDirectory: { validation: { defaultAuthorizationPolicy?: Record<string, unknown> } } }).azureActiveDirectory.validation;
    // No principal restriction: that is the gateway's (only its identity may call the api then).
    expect(validation.defaultAuthorizationPolicy).not.toHaveProperty("allowedPrincipals");
    expect(appSettings(named(stack, "api-site")).get("API_GATEWAY")).toBe("false");
    expect(outputs).not.toHaveProperty("gatewayUrl");
  });

  it("api: Easy Auth lets the docs page and every Swagger UI asset through (excluded paths match exactly, or by /*)", () => {
    const excluded = (path: string) => anonymousPaths("api").some((p) => p === path || (p.endsWith("/*") && path.startsWith(p.slice(0, -1))));
    for (const path of ["/api/health", "/api/openapi.json", "/api/docs", ...SWAGGER_UI_ASSET_FILES.map((file) => `/api/docs/${file}`)]) {
      expect(excluded(path), path).toBe(true);
    }
    expect(excluded("/api/jobs")).toBe(false);
  });

  it("turns off publishing-profile (basic auth) deployment on every app; Flex has no FTP to turn off", () => {
    const sorted = (pairs: unknown[][]) => pairs.map((pair) => JSON.stringify(pair)).sort();
    expect(sorted(ofType(stack, "azure-native:web:WebAppScmAllowed").map((r) => [r.inputs["name"], r.inputs["allow"]]))).toEqual(
      sorted(serviceNames.map((service) => [names.apps[service].site, false])),
    );
    expect(ofType(stack, "azure-native:web:WebAppFtpAllowed")).toEqual([]);
  });

  it("writes one site's configuration one resource at a time (App Service locks the site per write)", () => {
    const urnByName = new Map(urns.map((urn) => [urn.split("::").pop()!, urn]));
    expect(stack.dependencies.get("api-auth")).toContain(urnByName.get("api-scm-basic-auth"));
  });
});

describe("security rules (Checkov's Azure checks, as the policy pack states them in policy/policies.ts)", () => {
  const rules: { type: string; rule: string; holds: (inputs: Record<string, unknown>) => boolean }[] = [
    { type: "azure-native:storage:StorageAccount", rule: "HTTPS only (CKV_AZURE_3)", holds: (i) => i["enableHttpsTrafficOnly"] === true },
    { type: "azure-native:storage:StorageAccount", rule: "TLS 1.2 (CKV_AZURE_44)", holds: (i) => i["minimumTlsVersion"] === "TLS1_2" },
    { type: "azure-native:storage:StorageAccount", rule: "no public blob access (CKV_AZURE_190)", holds: (i) => i["allowBlobPublicAccess"] === false },
    { type: "azure-native:storage:StorageAccount", rule: "no shared-key access (CKV2_AZURE_40)", holds: (i) => i["allowSharedKeyAccess"] === false },
    {
      type: "azure-native:storage:BlobServiceProperties",
      rule: "blob soft delete (CKV2_AZURE_38)",
      holds: (i) => (i["deleteRetentionPolicy"] as { enabled?: boolean; days?: number } | undefined)?.enabled === true && (i["deleteRetentionPolicy"] as { days: number }).days === 14,
    },
    { type: "azure-native:storage:BlobContainer", rule: "container not public (CKV2_AZURE_47)", holds: (i) => i["publicAccess"] === "None" },
    { type: "azure-native:cosmosdb:DatabaseAccount", rule: "local auth off (CKV_AZURE_140)", holds: (i) => i["disableLocalAuth"] === true },
    { type: "azure-native:cosmosdb:DatabaseAccount", rule: "no key-based metadata writes (CKV_AZURE_132)", holds: (i) => i["disableKeyBasedMetadataWriteAccess"] === true },
    { type: "azure-native:cosmosdb:DatabaseAccount", rule: "continuous backup", holds: (i) => (i["backupPolicy"] as { type?: string })?.type === "Continuous" },
    { type: "azure-native:servicebus:Namespace", rule: "local auth off (CKV_AZURE_203)", holds: (i) => i["disableLocalAuth"] === true },
    { type: "azure-native:servicebus:Namespace", rule: "TLS 1.2 (CKV_AZURE_205)", holds: (i) => i["minimumTlsVersion"] === "1.2" },
    { type: "azure-native:webpubsub:WebPubSub", rule: "local auth off, Entra on", holds: (i) => i["disableLocalAuth"] === true && i["disableAadAuth"] === false },
    // A Web PubSub SKU with an SLA (CKV_AZURE_175) is not checked here: this stack's SKU is the value
    // the test sets. What decides it is tested where it is decided: a stack that sets nothing gets
    // Standard_S1 (config.test.ts), the SKU follows the configuration (below, and Free_F1 for the
    // dev stack in program.test.ts), and the policy pack warns on Free_F1 (tests/policy/policies.test.ts).
    { type: "azure-native:applicationinsights:Component", rule: "Entra-only ingestion", holds: (i) => i["disableLocalAuth"] === true },
    { type: "azure-native:operationalinsights:Workspace", rule: "Entra-only queries", holds: (i) => (i["features"] as { disableLocalAuth?: boolean })?.disableLocalAuth === true },
    { type: "azure-native:web:WebApp", rule: "HTTPS only (CKV_AZURE_70)", holds: (i) => i["httpsOnly"] === true },
    { type: "azure-native:web:WebApp", rule: "TLS 1.2 (CKV_AZURE_145)", holds: (i) => (i["siteConfig"] as { minTlsVersion?: string }).minTlsVersion === "1.2" },
    // The recorded inputs are what the provider receives: azure-native's injected siteConfig
    // defaults and our transformation have both run. FTPS (CKV_AZURE_78), remote debugging
    // (CKV_AZURE_72) and HTTP/2 (CKV_AZURE_67) are App Service settings Flex either refuses
    // (ftpsState: ARM error 51021) or does not offer; Microsoft's Flex references send none of them.
    {
      type: "azure-native:web:WebApp",
      rule: "site config holds only what Flex references send (no ftpsState, netFrameworkVersion, ...)",
      holds: (i) => Object.keys(i["siteConfig"] as object).every((key) => ["alwaysOn", "minTlsVersion", "cors", "appSettings"].includes(key)),
    },
    {
      type: "azure-native:web:WebApp",
      rule: "managed identity (CKV_AZURE_71)",
      holds: (i) => ((i["identity"] as { userAssignedIdentities?: string[] })?.userAssignedIdentities ?? []).length === 1,
    },
    {
      type: "azure-native:web:WebApp",
      rule: "no setting Flex rejects",
      holds: (i) => {
        const site = i["siteConfig"] as { appSettings: Settings; linuxFxVersion?: string; functionAppScaleLimit?: number };
        const rejected = ["FUNCTIONS_WORKER_RUNTIME", "WEBSITE_RUN_FROM_PACKAGE", "AzureWebJobsStorage"];
        return site.linuxFxVersion === undefined && site.functionAppScaleLimit === undefined && !site.appSettings.some((s) => rejected.includes(s.name));
      },
    },
  ];
  for (const { type, rule, holds } of rules) {
    it(`${type.split(":").pop()}: ${rule}`, () => {
      const targets = ofType(stack, type);
      expect(targets.length, `no ${type} to check`).toBeGreaterThan(0);
      for (const target of targets) expect(holds(target.inputs), `${target.name}: ${rule}`).toBe(true);
    });
  }

  it("holds no secret-shaped value in any resource input or stack output", () => {
    for (const r of stack.resources) expect(findSecrets(r.inputs), r.name).toEqual([]);
    expect(findSecrets(outputs)).toEqual([]);
  });

  it("recognises each secret shape it guards against", () => {
    for (const sample of secretShapes.samples) expect(findSecrets({ nested: [{ value: sample }] }), sample).not.toEqual([]);
  });

  it("fetches no credential from Azure: the only invoke is getClientConfig (the mocks would answer a list*Keys with secrets the scan above catches)", () => {
    const tokens = [...new Set(stack.calls.map((call) => call.token))];
    expect(tokens.filter((token) => CREDENTIAL_INVOKE.test(token))).toEqual([]);
    expect(tokens).toEqual(["azure-native:authorization:getClientConfig"]);
    // The guard is real: the mocks answer a credential invoke with values the scan flags.
    expect(CREDENTIAL_INVOKE.test("azure-native:webpubsub:listWebPubSubKeys")).toBe(true);
    expect(CREDENTIAL_INVOKE.test("azure-native:storage:listStorageAccountKeys")).toBe(true);
    expect(CREDENTIAL_INVOKE.test("azure-native:cosmosdb:listDatabaseAccountConnectionStrings")).toBe(true);
  });
});

describe("grants", () => {
  const roleByGuid = new Map<string, string>([
    ...Object.entries(builtInRoles).map(([role, guid]) => [guid, role] as [string, string]),
  ]);
  const scopeLabel = (scope: string): string => {
    const byId = new Map(stack.resources.map((r) => [r.id, r.name]));
    const direct = byId.get(scope);
    if (direct) return direct;
    const web = /^(.*)\/blobServices\/default\/containers\/\$web$/.exec(scope);
    if (web?.[1] && byId.has(web[1])) return `${byId.get(web[1])}/$web`;
    const cosmos = /^(.*)\/dbs\/([^/]+)$/.exec(scope);
    if (cosmos?.[1] && byId.has(cosmos[1])) return `${byId.get(cosmos[1])}/dbs/${cosmos[2]}`;
    throw new Error(`scope ${scope} is no resource of the stack`);
  };
  const grantsOf = (principalId: string): string[] => {
    const rbac = ofType(stack, "azure-native:authorization:RoleAssignment")
      .filter((r) => r.inputs["principalId"] === principalId)
      .map((r) => {
        const definition = String(r.inputs["roleDefinitionId"]);
        expect(definition.startsWith(`/subscriptions/${subscriptionId}/providers/Microsoft.Authorization/roleDefinitions/`)).toBe(true);
        return `${roleByGuid.get(definition.split("/").pop()!) ?? definition} @ ${scopeLabel(String(r.inputs["scope"]))}`;
      });
    const cosmos = ofType(stack, "azure-native:cosmosdb:SqlResourceSqlRoleAssignment")
      .filter((r) => r.inputs["principalId"] === principalId)
      .map((r) => {
        const definition = String(r.inputs["roleDefinitionId"]);
        const role = Object.entries(cosmosDataRoleIds).find(([, id]) => definition === `${named(stack, "database-account").id}/sqlRoleDefinitions/${id}`)?.[0];
        expect(role, definition).toBeDefined();
        return `${role === "read" ? "cosmosDataReader" : "cosmosDataContributor"} @ ${scopeLabel(String(r.inputs["scope"]))}`;
      });
    return [...rbac, ...cosmos].sort();
  };
  const principalOf = (service: ServiceName) => String(named(stack, `${service}-identity`).state["principalId"]);

  /** What each link stands for, written out independently of the components that implement it. */
  const grantsForLink = (link: AnyLinkDeclaration): string[] => {
    switch (link.kind) {
      case "queue":
        return [`${link.access === "send" ? "serviceBusDataSender" : "serviceBusDataReceiver"} @ messaging-${link.name}`];
      case "cosmosContainer":
        return [`${link.access === "read" ? "cosmosDataReader" : "cosmosDataContributor"} @ database-account/dbs/${resources.cosmos.database}`];
      case "blobContainer":
        return link.access === "read"
          ? [`storageBlobDataReader @ storage-${link.name}`]
          : link.access === "readWrite"
            ? [`storageBlobDataContributor @ storage-${link.name}`]
            : ["storageBlobDelegator @ storage-data", `storageBlobDataContributor @ storage-${link.name}`];
      case "hub":
        return ["webPubSubServiceOwner @ realtime-service"];
    }
  };

  it.each(serviceNames)("%s holds exactly the grants its links stand for, plus the Functions host's own", (service) => {
    const fromLinks = declarationOf(service).links.flatMap(grantsForLink);
    const host = ["storageBlobDataOwner @ storage-host", "monitoringMetricsPublisher @ monitoring-insights"];
    expect(grantsOf(principalOf(service))).toEqual([...new Set([...host, ...fromLinks])].sort());
  });

  it("api gets exactly what its code uses", () => {
    expect(grantsOf(principalOf("api"))).toEqual(
      [
        "storageBlobDataOwner @ storage-host",
        "monitoringMetricsPublisher @ monitoring-insights",
        "serviceBusDataSender @ messaging-jobs",
        "cosmosDataContributor @ database-account/dbs/platform",
        "storageBlobDelegator @ storage-data",
        "storageBlobDataContributor @ storage-uploads",
        "webPubSubServiceOwner @ realtime-service",
      ].sort(),
    );
  });

  it("agent gets exactly what its code uses", () => {
    expect(grantsOf(principalOf("agent"))).toEqual(
      [
        "storageBlobDataOwner @ storage-host",
        "monitoringMetricsPublisher @ monitoring-insights",
        "serviceBusDataReceiver @ messaging-jobs",
        "cosmosDataContributor @ database-account/dbs/platform",
        "storageBlobDataReader @ storage-uploads",
        "webPubSubServiceOwner @ realtime-service",
      ].sort(),
    );
  });

  it("the deploying principal may write $web, nothing else (OneDeploy needs no storage grant: the site uploads its package itself)", () => {
    expect(grantsOf(deployerObjectId)).toEqual(["storageBlobDataContributor @ storage-data/$web"]);
  });

  it("grants nobody else anything", () => {
    const principals = new Set([...serviceNames.map(principalOf), deployerObjectId]);
    for (const r of [...ofType(stack, "azure-native:authorization:RoleAssignment"), ...ofType(stack, "azure-native:cosmosdb:SqlResourceSqlRoleAssignment")]) {
      expect(principals.has(String(r.inputs["principalId"])), r.name).toBe(true);
    }
  });

  it("states the principal type: ServicePrincipal for the apps, the configured type for the deployer", () => {
    for (const r of ofType(stack, "azure-native:authorization:RoleAssignment")) {
      expect(r.inputs["principalType"], r.name).toBe(r.inputs["principalId"] === deployerObjectId ? "User" : "ServicePrincipal");
    }
  });

  it("names every assignment deterministically from scope, role and principal", () => {
    const assignmentNames = new Set<string>();
    for (const r of ofType(stack, "azure-native:authorization:RoleAssignment")) {
      const roleGuid = String(r.inputs["roleDefinitionId"]).split("/").pop()!;
      expect(r.inputs["roleAssignmentName"], r.name).toBe(deterministicGuid(String(r.inputs["scope"]), roleGuid, String(r.inputs["principalId"])));
      assignmentNames.add(String(r.inputs["roleAssignmentName"]));
    }
    for (const r of ofType(stack, "azure-native:cosmosdb:SqlResourceSqlRoleAssignment")) {
      const roleId = String(r.inputs["roleDefinitionId"]).split("/").pop()!;
      expect(r.inputs["roleAssignmentId"], r.name).toBe(deterministicGuid(String(r.inputs["scope"]), roleId, String(r.inputs["principalId"])));
      assignmentNames.add(String(r.inputs["roleAssignmentId"]));
    }
    expect(assignmentNames.size).toBe(ofType(stack, "azure-native:authorization:RoleAssignment").length + 2);
  });

  it("each app's grants are the ones made for its identity, and the app is created only after them", async () => {
    for (const service of serviceNames) {
      const principal = principalOf(service);
      const expected = stack.resources
        .filter((r) => r.type.endsWith("RoleAssignment") && r.inputs["principalId"] === principal)
        .map((r) => r.name)
        .sort();
      expect(platform.apps[service].grants.map(logicalName).sort()).toEqual(expected);
      const siteDependencies = stack.dependencies.get(`${service}-site`) ?? [];
      for (const grant of platform.apps[service].grants) {
        expect(siteDependencies, `${service}-site waits for ${logicalName(grant)}`).toContain(await valueOf(grant.urn));
      }
      // Dependencies are specific, not "everything": the other apps' grants are not among them.
      for (const other of serviceNames.filter((s) => s !== service)) {
        for (const grant of platform.apps[other].grants) expect(siteDependencies).not.toContain(await valueOf(grant.urn));
      }
    }
  });
});

describe("ordering on a fresh stack", () => {
  const urnOf = (name: string) => {
    const urn = urns.find((u) => u.endsWith(`::${name}`));
    if (!urn) throw new Error(`no resource named ${name}`);
    return urn;
  };
  const dependsOn = (name: string, on: string) => expect(stack.dependencies.get(name) ?? [], `${name} waits for ${on}`).toContain(urnOf(on));

  it("writes to the Cosmos account one at a time: database, containers, then each SQL role assignment in turn", () => {
    dependsOn("database-jobs", "database-db");
    dependsOn("database-quotas", "database-jobs");
    const grants = ofType(stack, "azure-native:cosmosdb:SqlResourceSqlRoleAssignment").map((r) => r.name);
    // Database-scoped: the api's links to jobs and to quotas share one assignment.
    expect(grants).toEqual(["database-api-readwrite", "database-agent-readwrite"]);
    dependsOn("database-api-readwrite", "database-quotas");
    dependsOn("database-agent-readwrite", "database-api-readwrite");
  });

  it("assigns a Cosmos role only after the new identity had time to replicate through Entra", () => {
    for (const service of ["api", "agent"] as const) {
      const wait = named(stack, `${service}-entra-replication-wait`);
      expect(wait.inputs).toMatchObject({ principalId: `principal-id-of-${names.apps[service].identity}`, seconds: 60 });
      dependsOn(`database-${service}-readwrite`, `${service}-entra-replication-wait`);
    }
  });

  it("creates each app only after its deployment container exists (OneDeploy into a missing container fails)", () => {
    for (const service of serviceNames) dependsOn(`${service}-site`, `storage-${service}-package`);
  });
});

describe("app settings", () => {
  const clientIdOf = (service: ServiceName) => String(named(stack, `${service}-identity`).state["clientId"]);
  /** Each Azure service's endpoint as the stack's names give it, written out independently of the components. */
  const endpoints = {
    cosmos: `https://${names.cosmosAccount}.documents.azure.com:443/`,
    blob: `https://${names.dataStorageAccount}.blob.core.windows.net/`,
    webPubSub: `https://${names.webPubSub}.webpubsub.azure.com`,
    serviceBus: `${names.serviceBusNamespace}.servicebus.windows.net`,
  };

  it("the api and the agent each connect to Cosmos, Blob Storage, Web PubSub and Service Bus", () => {
    for (const service of ["api", "agent"] as const) expect(linkedFamilies(service).sort(), service).toEqual(["blob", "cosmos", "serviceBus", "webPubSub"]);
  });

  for (const service of serviceNames) {
    it(`${service}: identity-based host storage, Entra App Insights, and the service's connections through its own identity`, () => {
      const settings = appSettings(named(stack, `${service}-site`));
      const clientId = clientIdOf(service);
      const connections = Object.fromEntries(
        linkedFamilies(service).flatMap((family) => {
          const { setting, suffix } = connectionFamilies[family];
          return [
            [`${setting}__${suffix}`, endpoints[family]],
            [`${setting}__credential`, "managedidentity"],
            [`${setting}__clientId`, clientId],
          ];
        }),
      );
      expect(Object.fromEntries(settings)).toMatchObject({
        AzureWebJobsStorage__blobServiceUri: `https://${names.hostStorageAccount}.blob.core.windows.net/`,
        AzureWebJobsStorage__credential: "managedidentity",
        AzureWebJobsStorage__clientId: clientId,
        APPLICATIONINSIGHTS_AUTHENTICATION_STRING: `Authorization=AAD;ClientId=${clientId}`,
        APPLICATIONINSIGHTS_CONNECTION_STRING: expect.stringContaining("IngestionEndpoint=") as unknown as string,
        ...connections,
      });
    });

    it(`${service}: a connection in its Azure shape for each linked service and every required declared setting, no connection string`, () => {
      const settings = appSettings(named(stack, `${service}-site`));
      for (const family of linkedFamilies(service)) {
        const { setting, suffix } = connectionFamilies[family];
        expect(settings.has(`${setting}__${suffix}`), `${setting}__${suffix} missing`).toBe(true);
        expect(settings.has(setting), `${setting} as a connection string`).toBe(false);
      }
      for (const [name, declaration] of Object.entries(declarationOf(service).settings)) {
        if ("scope" in declaration) expect(settings.has(name), `${name} is local-only`).toBe(false);
        else if (!declaration.optional) expect(settings.has(name), `${name} missing`).toBe(true);
      }
    });
  }

  it("api gets its upload limits from config, and the agent the same size cap", () => {
    const settings = appSettings(named(stack, "api-site"));
    expect(settings.get("UPLOAD_MAX_BYTES")).toBe("1048576");
    expect(settings.get("UPLOAD_URL_TTL_SECONDS")).toBe("120");
    // Easy Auth is configured in this stack: only then may the api trust x-ms-client-principal.
    expect(settings.get("APP_SERVICE_AUTHENTICATION")).toBe("true");
    expect(appSettings(named(stack, "agent-site")).get("UPLOAD_MAX_BYTES")).toBe("1048576");
  });

  it("the agent gets no external processor unless one is configured", () => {
    expect(appSettings(named(stack, "agent-site")).has("EXTERNAL_PROCESSOR_URL")).toBe(false);
  });
});

describe("naming hygiene", () => {
  it("prefixes every component child with the component's name", () => {
    for (const component of components()) {
      const prefix = `${logicalName(component)}-`;
      const children = childrenOf(component);
      expect(children.length).toBeGreaterThan(0);
      for (const child of children) expect(logicalName(child).startsWith(prefix), `${logicalName(child)} under ${prefix}`).toBe(true);
    }
  });

  it("creates nothing outside a component except the resource group", () => {
    const inTree = new Set(descendants(components()).map(logicalName));
    const outside = stack.resources.map((r) => r.name).filter((n) => !inTree.has(n));
    expect(outside).toEqual(["resource-group"]);
  });

  it("has no duplicate logical names, URNs or Azure names", () => {
    const logical = stack.resources.map((r) => r.name);
    expect(new Set(logical).size).toBe(logical.length);
    expect(new Set(urns).size).toBe(urns.length);
    const global = stack.resources
      .filter((r) => /StorageAccount$|DatabaseAccount$|servicebus:Namespace$|webpubsub:WebPubSub$|web:WebApp$/.test(r.type))
      .map((r) => String(r.state["name"]));
    expect(new Set(global).size).toBe(global.length);
  });

  it("uses the names of the naming function", () => {
    expect(outputs).toMatchObject({
      resourceGroupName: names.resourceGroup,
      appNames: perServiceName((service) => names.apps[service].site),
      dataStorageAccountName: names.dataStorageAccount,
      hostStorageAccountName: names.hostStorageAccount,
    });
  });
});

describe("stack outputs", () => {
  it("give the URLs and names the deployment step and people need", () => {
    expect(outputs).toEqual({
      resourceGroupName: names.resourceGroup,
      // No gateway in this stack: the web app calls the api's Function App.
      apiBaseUrl: `https://${names.apps.api.site}.azurewebsites.net`,
      webUrl: `https://${names.dataStorageAccount}.z13.web.core.windows.net/`,
      webPubSubEndpoint: `https://${names.webPubSub}.webpubsub.azure.com`,
      appNames: perServiceName((service) => names.apps[service].site),
      appUrls: perServiceName((service) => `https://${names.apps[service].site}.azurewebsites.net`),
      dataStorageAccountName: names.dataStorageAccount,
      webContainerName: "$web",
      hostStorageAccountName: names.hostStorageAccount,
      deploymentContainerUrls: perServiceName((service) => `https://${names.hostStorageAccount}.blob.core.windows.net/${service}-package`),
      signInApiClientId: config.authEntraClientId,
    });
    expect(outputs["appNames"]).toMatchObject({ api: names.apps.api.site, agent: names.apps.agent.site });
  });

  it("the FunctionApp exposes what code deployment needs", async () => {
    const api = platform.apps.api;
    expect(await valueOf(api.scmHostName)).toBe(`${names.apps.api.site}.scm.azurewebsites.net`);
    expect(await valueOf(api.defaultHostName)).toBe(`${names.apps.api.site}.azurewebsites.net`);
    expect(await valueOf(api.planId)).toBe(named(stack, "api-plan").id);
    expect(await valueOf(api.identityId)).toBe(named(stack, "api-identity").id);
    expect(await valueOf(api.identityClientId)).toBe(named(stack, "api-identity").state["clientId"]);
  });
});
