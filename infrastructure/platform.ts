/**
 * The platform: every component, wired from the app's declarations. `createPlatform` is the whole
 * program apart from reading configuration, so tests build it under mocks with any configuration
 * they like.
 *
 * Nothing here names the app's services or resources: the components get the resources declared
 * in functions/src/resources.ts, and one Function App is made per service of
 * functions/src/services.ts, with the settings and role assignments its links stand for.
 */
import * as pulumi from "@pulumi/pulumi";
import * as resources from "@pulumi/azure-native/resources";
import type { AnyLinkDeclaration } from "../functions/src/platform/links";
import { resolveBlobContainer, type ResolvedBlobContainer } from "../functions/src/platform/resource-kinds";
import { resources as appResources } from "../functions/src/resources";
import { declarationOf, perService, type ServiceName } from "../functions/src/services";
import type { PlatformConfig } from "./config";
import { deploymentContainerName, resourceNames, type ResourceNames } from "./naming";
import { Storage, websiteContainerName } from "./components/storage";
import { Database } from "./components/database";
import { Messaging } from "./components/messaging";
import { Realtime } from "./components/realtime";
import { Monitoring } from "./components/monitoring";
import { FunctionApp, type AlwaysReady, type EntraAuthentication, type HostNeeds } from "./components/function-app";
import type { Grantee } from "./components/grant";
import type { Link } from "./components/link";

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

/**
 * Paths of a service that answer without a token when App Service Authentication is on: its
 * anonymous routes under /api/. Excluded paths match exactly; `/*` covers what is below.
 */
export function anonymousPaths(service: ServiceName): string[] {
  return (declarationOf(service).http?.anonymousRoutes ?? []).map((route) => `/api/${route}`);
}

/** The app's blob containers with the stack configuration applied (e.g. how long uploads are kept). */
export function resolvedBlobContainers(config: PlatformConfig): Record<string, ResolvedBlobContainer> {
  return Object.fromEntries(Object.entries(appResources.blobContainers).map(([name, options]) => [name, resolveBlobContainer(options, config)]));
}

/** The stack outputs: URLs and names for people and for the code-deployment step. No secrets. */
export interface StackOutputs {
  readonly resourceGroupName: pulumi.Output<string>;
  readonly webUrl: pulumi.Output<string>;
  readonly webPubSubEndpoint: pulumi.Output<string>;
  /** Every Function App's name and URL, by service. */
  readonly appNames: Readonly<Record<ServiceName, pulumi.Output<string>>>;
  readonly appUrls: Readonly<Record<ServiceName, pulumi.Output<string>>>;
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
  readonly apps: Readonly<Record<ServiceName, FunctionApp<ServiceName>>>;
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
    containers: resolvedBlobContainers(config),
    deploymentContainers: perService(deploymentContainerName),
  });
  const database = new Database("database", {
    ...placement,
    accountName: name((n) => n.cosmosAccount),
    consistency: config.cosmosConsistency,
    databaseName: appResources.cosmos.database,
    containers: appResources.cosmos.containers,
  });
  const messaging = new Messaging("messaging", {
    ...placement,
    namespaceName: name((n) => n.serviceBusNamespace),
    tier: config.serviceBusSku,
    queues: appResources.queues,
  });
  const realtime = new Realtime("realtime", {
    ...placement,
    serviceName: name((n) => n.webPubSub),
    sku: config.webPubSubSku,
    units: config.webPubSubUnits,
    hubs: appResources.hubs,
  });

  /** The component that owns a link's resource, resolving it. */
  const linkTo = (declaration: AnyLinkDeclaration): Link => {
    switch (declaration.kind) {
      case "queue":
        return messaging.link(declaration);
      case "cosmosContainer":
        return database.link(declaration);
      case "blobContainer":
        return storage.link(declaration);
      case "hub":
        return realtime.link(declaration);
    }
  };

  const apps = perService((service) => {
    const http = declarationOf(service).http;
    const host: HostNeeds = {
      storageBlobEndpoint: storage.hostBlobEndpoint,
      deploymentContainerUrl: storage.deploymentContainerUrls[service] ?? missing(service),
      telemetryConnectionString: monitoring.connectionString,
      grant: (grantee) => [storage.grantFunctionsHost(grantee), monitoring.grantPublish(grantee)],
    };
    // Browser-facing HTTP services: CORS for the web origin, and Entra sign-in in front when configured.
    const browserFacing = http?.browserFacing === true;
    const entraAuthentication: EntraAuthentication | undefined =
      browserFacing && config.authEntraClientId
        ? { clientId: config.authEntraClientId, tenantId: client.tenantId, excludedPaths: anonymousPaths(service) }
        : undefined;
    const alwaysReady: AlwaysReady[] = http?.alwaysReadyConfig ? [{ name: "http", instanceCount: config[http.alwaysReadyConfig] }] : [];
    return new FunctionApp(service, {
      service,
      ...placement,
      siteName: name((n) => n.apps[service].site),
      planName: name((n) => n.apps[service].plan),
      identityName: name((n) => n.apps[service].identity),
      host,
      links: declarationOf(service).links.map(linkTo),
      config,
      instanceMemoryMb: config.functionMemoryMb,
      maximumInstanceCount: config.functionMaximumInstances,
      alwaysReady,
      ...(browserFacing ? { corsAllowedOrigins: [storage.webOrigin] } : {}),
      ...(entraAuthentication ? { entraAuthentication } : {}),
    });
  });

  const deployer: Grantee = { granteeName: "deployer", principalId: client.objectId, principalType: config.deployerPrincipalType };
  // Code needs no storage grant for the deployer: OneDeploy is authorised on the site (ARM RBAC), and
  // the site itself writes the package into its deployment container with its own identity.
  const deployerGrants = [storage.grantWebsiteWrite(deployer)];

  const outputs: StackOutputs = {
    resourceGroupName,
    webUrl: storage.websiteUrl,
    webPubSubEndpoint: realtime.serviceUri,
    appNames: perService((service) => apps[service].appName),
    appUrls: perService((service) => apps[service].url),
    dataStorageAccountName: storage.dataAccount.name,
    webContainerName: websiteContainerName,
    hostStorageAccountName: storage.hostAccount.name,
    deploymentContainerUrls: perService((service) => apps[service].deploymentContainerUrl),
  };
  return { resourceGroup, storage, database, messaging, realtime, monitoring, apps, deployer, deployerGrants, outputs };
}

function missing(service: string): never {
  throw new Error(`no deployment container for service "${service}"`);
}
