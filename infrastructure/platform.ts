/**
 * The platform: every component, wired. `createPlatform` is the whole program apart from reading
 * configuration, so tests build it under mocks with any configuration they like.
 */
import * as pulumi from "@pulumi/pulumi";
import * as resources from "@pulumi/azure-native/resources";
import { serviceNames, type ServiceName } from "../functions/src/settings";
import type { PlatformConfig } from "./config";
import { deploymentContainerName, resourceNames, type ResourceNames } from "./naming";
import { Storage, websiteContainerName } from "./components/storage";
import { Database } from "./components/database";
import { Messaging } from "./components/messaging";
import { Realtime } from "./components/realtime";
import { Monitoring } from "./components/monitoring";
import { FunctionApp } from "./components/function-app";
import type { Grantee } from "./components/grant";

/** Who runs the deployment, from `authorization.getClientConfig`. */
export interface ClientConfig {
  readonly subscriptionId: string;
  readonly tenantId: string;
  readonly objectId: string;
}

export interface PlatformContext {
  readonly project: string;
  readonly stack: string;
  readonly client: pulumi.Input<ClientConfig>;
}

/** Paths of the api that answer without a token when App Service Authentication is on. */
/**
 * Paths of the api that answer without a token when App Service Authentication is on. Excluded
 * paths match exactly; `/*` covers what is below (the Swagger UI's assets under /api/docs/).
 */
export const publicApiPaths = ["/api/health", "/api/openapi.json", "/api/docs", "/api/docs/*"];

/** The stack outputs: URLs and names for people and for the code-deployment step. No secrets. */
export interface StackOutputs {
  readonly resourceGroupName: pulumi.Output<string>;
  readonly apiUrl: pulumi.Output<string>;
  readonly webUrl: pulumi.Output<string>;
  readonly webPubSubEndpoint: pulumi.Output<string>;
  readonly webPubSubHub: string;
  readonly apiAppName: pulumi.Output<string>;
  readonly agentAppName: pulumi.Output<string>;
  readonly dataStorageAccountName: pulumi.Output<string>;
  readonly webContainerName: string;
  readonly hostStorageAccountName: pulumi.Output<string>;
  readonly deploymentContainerUrls: Readonly<Record<ServiceName, pulumi.Output<string>>>;
}

export interface Platform {
  readonly resourceGroup: resources.ResourceGroup;
  readonly storage: Storage;
  readonly database: Database;
  readonly messaging: Messaging;
  readonly realtime: Realtime;
  readonly monitoring: Monitoring;
  readonly apps: { readonly api: FunctionApp<"api">; readonly agent: FunctionApp<"agent"> };
  /** The principal running `pulumi up`: it uploads code and the website keylessly. */
  readonly deployer: Grantee;
  /** The deployer's write grant on `$web`; the site upload must wait for it. */
  readonly deployerGrants: pulumi.Resource[];
  readonly outputs: StackOutputs;
}

export function createPlatform(config: PlatformConfig, context: PlatformContext): Platform {
  const client = pulumi.output(context.client);
  const names = client.apply((c) =>
    resourceNames({ prefix: config.namePrefix, project: context.project, stack: context.stack, subscriptionId: c.subscriptionId }),
  );
  const name = (pick: (n: ResourceNames) => string) => names.apply(pick);
  const location = config.location;

  const resourceGroup = new resources.ResourceGroup("resource-group", { resourceGroupName: name((n) => n.resourceGroup), location });
  const resourceGroupName = resourceGroup.name;
  const placement = { resourceGroupName, location };

  const monitoring = new Monitoring("monitoring", {
    ...placement,
    workspaceName: name((n) => n.logAnalyticsWorkspace),
    applicationInsightsName: name((n) => n.applicationInsights),
    retentionInDays: config.logRetentionDays,
  });
  const storage = new Storage("storage", {
    ...placement,
    dataAccountName: name((n) => n.dataStorageAccount),
    hostAccountName: name((n) => n.hostStorageAccount),
    sku: config.storageSku,
    softDeleteDays: config.blobSoftDeleteDays,
    deploymentContainers: Object.fromEntries(serviceNames.map((s) => [s, deploymentContainerName(s)])),
  });
  const database = new Database("database", {
    ...placement,
    accountName: name((n) => n.cosmosAccount),
    consistency: config.cosmosConsistency,
  });
  const messaging = new Messaging("messaging", {
    ...placement,
    namespaceName: name((n) => n.serviceBusNamespace),
    tier: config.serviceBusSku,
    maxDeliveryCount: config.jobsQueueMaxDeliveryCount,
    lockDurationSeconds: config.jobsQueueLockDurationSeconds,
    messageTtlHours: config.jobsQueueMessageTtlHours,
  });
  const realtime = new Realtime("realtime", {
    ...placement,
    serviceName: name((n) => n.webPubSub),
    sku: config.webPubSubSku,
    units: config.webPubSubUnits,
  });

  const shared = {
    Cosmos: database.endpoint,
    COSMOS_DATABASE_NAME: database.databaseName,
    COSMOS_JOBS_CONTAINER_NAME: database.jobsContainerName,
    UploadsStorage: storage.dataBlobEndpoint,
    UPLOADS_CONTAINER_NAME: storage.uploadsContainerName,
    WebPubSub: realtime.serviceUri,
    WEBPUBSUB_HUB: realtime.hubName,
    APPLICATIONINSIGHTS_CONNECTION_STRING: monitoring.connectionString,
    ServiceBus: messaging.fullyQualifiedNamespace,
    JOBS_QUEUE_NAME: messaging.jobsQueueName,
  };
  const appPlacement = (service: ServiceName) => ({
    ...placement,
    siteName: name((n) => n.apps[service].site),
    planName: name((n) => n.apps[service].plan),
    identityName: name((n) => n.apps[service].identity),
    hostBlobEndpoint: storage.hostBlobEndpoint,
    deploymentContainerUrl: storage.deploymentContainerUrls[service] ?? missing(service),
    instanceMemoryMb: config.functionMemoryMb,
    maximumInstanceCount: config.functionMaximumInstances,
  });

  const api = new FunctionApp("api", {
    service: "api",
    ...appPlacement("api"),
    settings: {
      ...shared,
      UPLOAD_MAX_BYTES: String(config.uploadMaxBytes),
      UPLOAD_URL_TTL_SECONDS: String(config.uploadUrlTtlSeconds),
      // The api trusts the x-ms-client-principal headers only when Easy Auth is in front of it.
      APP_SERVICE_AUTHENTICATION: config.authEntraClientId ? "true" : "false",
    },
    access: (identity) => [
      storage.grantFunctionsHost(identity),
      monitoring.grantPublish(identity),
      messaging.grantSend(identity),
      database.grantReadWrite(identity),
      storage.grantUploadDelegation(identity),
      realtime.grantPublish(identity),
    ],
    alwaysReady: [{ name: "http", instanceCount: config.apiAlwaysReadyInstances }],
    corsAllowedOrigins: [storage.webOrigin],
    ...(config.authEntraClientId
      ? { entraAuthentication: { clientId: config.authEntraClientId, tenantId: client.tenantId, excludedPaths: publicApiPaths } }
      : {}),
  });
  // The agent has only a Service Bus trigger and its dead-letter handler: cold starts delay a job by
  // a second or two, so it gets no always-ready instances (they would bill around the clock).
  const agent = new FunctionApp("agent", {
    service: "agent",
    ...appPlacement("agent"),
    settings: { ...shared, UPLOAD_MAX_BYTES: String(config.uploadMaxBytes), EXTERNAL_PROCESSOR_URL: config.externalProcessorUrl },
    access: (identity) => [
      storage.grantFunctionsHost(identity),
      monitoring.grantPublish(identity),
      messaging.grantReceive(identity),
      database.grantReadWrite(identity),
      storage.grantUploadsRead(identity),
      realtime.grantPublish(identity),
    ],
  });

  const deployer: Grantee = { granteeName: "deployer", principalId: client.objectId, principalType: config.deployerPrincipalType };
  // Code needs no storage grant for the deployer: OneDeploy is authorised on the site (ARM RBAC), and
  // the site itself writes the package into its deployment container with its own identity.
  const deployerGrants = [storage.grantWebsiteWrite(deployer)];

  const outputs: StackOutputs = {
    resourceGroupName,
    apiUrl: api.url,
    webUrl: storage.websiteUrl,
    webPubSubEndpoint: realtime.serviceUri,
    webPubSubHub: realtime.hubName,
    apiAppName: api.appName,
    agentAppName: agent.appName,
    dataStorageAccountName: storage.dataAccount.name,
    webContainerName: websiteContainerName,
    hostStorageAccountName: storage.hostAccount.name,
    deploymentContainerUrls: { api: api.deploymentContainerUrl, agent: agent.deploymentContainerUrl },
  };
  return { resourceGroup, storage, database, messaging, realtime, monitoring, apps: { api, agent }, deployer, deployerGrants, outputs };
}

function missing(service: string): never {
  throw new Error(`no deployment container for service "${service}"`);
}
