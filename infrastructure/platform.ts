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
import { declarationOf, perService, serviceNames, type ServiceName } from "../functions/src/services";
import type { PlatformConfig } from "./config";
import { alertRuleName, deploymentContainerName, privateEndpointName, resourceNames, type ResourceNames } from "./naming";
import { jobPipelineWorkbook, logAlertRules, metricAlertRules } from "./alert-rules";
import { Storage, websiteContainerName } from "./components/storage";
import { Database } from "./components/database";
import { Messaging } from "./components/messaging";
import { Realtime } from "./components/realtime";
import { Monitoring } from "./components/monitoring";
import { FunctionApp, type AlwaysReady, type AppNetwork, type EntraAuthentication, type HostNeeds } from "./components/function-app";
import { Network, type PrivateEndpointTarget } from "./components/network";
import { Alerts, type LogAlert } from "./components/alerts";
import { ApiGateway } from "./components/gateway";
import type { OpenApiDocument } from "./components/gateway-routes";
import { buildOpenApiDocument } from "../functions/src/api/openapi";
import { DEFAULT_API_SCOPE } from "../web/src/runtime-config";
import type { Grantee } from "./components/grant";
import type { Link } from "./components/link";
import { AppRegistrations } from "./components/app-registrations";
import type { SiteEnvironmentValues } from "./deploy/site-files";

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

/**
 * The OpenAPI document of each browser-facing service: the gateway imports the service's routes
 * from it (the same document its /api/openapi.json serves).
 */
export const openApiDocuments: Partial<Record<ServiceName, () => OpenApiDocument>> = { api: buildOpenApiDocument };

/** The Functions host's route prefix: every HTTP route of a service is below it. */
export const FUNCTIONS_ROUTE_PREFIX = "/api";

/** The app's blob containers with the stack configuration applied (e.g. how long uploads are kept). */
export function resolvedBlobContainers(config: PlatformConfig): Record<string, ResolvedBlobContainer> {
  return Object.fromEntries(Object.entries(appResources.blobContainers).map(([name, options]) => [name, resolveBlobContainer(options, config)]));
}

/** The stack outputs: URLs and names for people and for the code-deployment step. No secrets. */
export interface StackOutputs {
  readonly resourceGroupName: pulumi.Output<string>;
  /**
   * Where browsers call the api (`<origin>`; the web app adds `/api/...`): the gateway when it is
   * on, else the api's Function App. The web app's config.json takes its apiBaseUrl from here.
   */
  readonly apiBaseUrl: pulumi.Output<string>;
  /** The API gateway's URL; only when the gateway is on. */
  readonly gatewayUrl?: pulumi.Output<string>;
  readonly webUrl: pulumi.Output<string>;
  readonly webPubSubEndpoint: pulumi.Output<string>;
  /** Every Function App's name and URL, by service. */
  readonly appNames: Readonly<Record<ServiceName, pulumi.Output<string>>>;
  readonly appUrls: Readonly<Record<ServiceName, pulumi.Output<string>>>;
  readonly dataStorageAccountName: pulumi.Output<string>;
  readonly webContainerName: string;
  readonly hostStorageAccountName: pulumi.Output<string>;
  readonly deploymentContainerUrls: Readonly<Record<ServiceName, pulumi.Output<string>>>;
  /** The api registration's client ID when sign-in is on (tokens are for `api://<it>`), else "". */
  readonly signInApiClientId: pulumi.Output<string>;
}

/**
 * The origin the local platform serves the web app from (`npm start`, local/platform.ts
 * DEFAULT_PORTS.web): created app registrations also accept sign-ins from it.
 */
export const LOCAL_WEB_ORIGIN = "http://localhost:4280";

/** Entra sign-in in front of the browser-facing api, when configured. */
export interface SignIn {
  /** The api's registration: the audience of the tokens Easy Auth accepts. */
  readonly apiClientId: pulumi.Input<string>;
  /** The web app's registration: the client whose tokens are accepted, when known. */
  readonly webClientId?: pulumi.Input<string>;
  /** Further clients whose tokens are accepted (config authAllowedClientIds, e.g. CI's smoke check). */
  readonly otherClientIds: readonly string[];
  readonly tenantId: pulumi.Input<string>;
}

export interface Platform {
  readonly resourceGroup: resources.ResourceGroup;
  readonly storage: Storage;
  readonly database: Database;
  readonly messaging: Messaging;
  readonly realtime: Realtime;
  readonly monitoring: Monitoring;
  /** Private networking (config `privateNetworking`); absent otherwise. */
  readonly network?: Network;
  /** Alerts and the job-pipeline workbook (config `alertEmail` / `alertActionGroupId`); absent otherwise. */
  readonly alerts?: Alerts;
  readonly apps: Readonly<Record<ServiceName, FunctionApp<ServiceName>>>;
  /** The API gateway in front of the browser-facing services (config gatewayEnabled). */
  readonly gateway?: ApiGateway;
  /** The principal running `pulumi up`: it uploads code and the website keylessly. */
  readonly deployer: Grantee;
  /** The deployer's write grant on `$web`; the site upload must wait for it. */
  readonly deployerGrants: pulumi.Resource[];
  /** Present when the program created the Entra app registrations (authCreateAppRegistrations). */
  readonly appRegistrations?: AppRegistrations;
  /** What makes the web app build this stack's site: where its api, uploads and live updates are, how users sign in. */
  readonly site: pulumi.Output<SiteEnvironmentValues>;
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
    privateHostAccount: config.privateNetworking,
    containers: resolvedBlobContainers(config),
    deploymentContainers: perService(deploymentContainerName),
  });
  const database = new Database("database", {
    ...placement,
    accountName: name((n) => n.cosmosAccount),
    consistency: config.cosmosConsistency,
    publicNetworkAccess: !config.privateNetworking,
    zoneRedundant: config.zoneRedundant,
    databaseName: appResources.cosmos.database,
    containers: appResources.cosmos.containers,
  });
  const messaging = new Messaging("messaging", {
    ...placement,
    namespaceName: name((n) => n.serviceBusNamespace),
    tier: config.serviceBusSku,
    messagingUnits: config.serviceBusMessagingUnits,
    publicNetworkAccess: !config.privateNetworking,
    queues: appResources.queues,
  });
  const realtime = new Realtime("realtime", {
    ...placement,
    serviceName: name((n) => n.webPubSub),
    sku: config.webPubSubSku,
    units: config.webPubSubUnits,
    privateServerAccess: config.privateNetworking,
    hubs: appResources.hubs,
  });

  // Sign-in: with registrations the program creates, or existing ones named in config.
  const appRegistrations = config.authCreateAppRegistrations
    ? new AppRegistrations("sign-in", {
        displayNamePrefix: name((n) => n.base),
        webOrigin: storage.webOrigin,
        extraWebOrigins: [LOCAL_WEB_ORIGIN],
        owners: [client.objectId],
      })
    : undefined;
  const otherClientIds = (config.authAllowedClientIds ?? "").split(",").map((id) => id.trim()).filter(Boolean);
  const signIn: SignIn | undefined = appRegistrations
    ? { apiClientId: appRegistrations.apiClientId, webClientId: appRegistrations.webClientId, otherClientIds, tenantId: client.tenantId }
    : config.authEntraClientId
      ? { apiClientId: config.authEntraClientId, ...(config.authSpaClientId ? { webClientId: config.authSpaClientId } : {}), otherClientIds, tenantId: client.tenantId }
      : undefined;
  // Easy Auth accepts tokens from exactly these clients; with none named, from any client of the tenant.
  const allowedApplications = signIn ? [...(signIn.webClientId ? [signIn.webClientId] : []), ...signIn.otherClientIds] : [];

  // Private networking: a subnet per service of the registry, and an endpoint for each service the
  // apps reach (the data account stays public: browsers load the site from it and upload into it).
  const network = config.privateNetworking
    ? new Network("network", {
        ...placement,
        virtualNetworkName: name((n) => n.virtualNetwork),
        addressSpace: config.virtualNetworkAddressSpace,
        apps: serviceNames,
        privateEndpoints: privateEndpointTargets(
          { hostStorage: storage.hostAccount.id, cosmos: database.account.id, serviceBus: messaging.namespace.id, webPubSub: realtime.service.id },
          (target) => name((n) => privateEndpointName(n.base, target)),
        ),
      })
    : undefined;

  // The API gateway, when on, exists before the apps: the browser-facing ones admit only its identity.
  const gateway = config.gatewayEnabled
    ? new ApiGateway("gateway", {
        ...placement,
        servicePrefix: name((n) => n.gateway.servicePrefix),
        identityName: name((n) => n.gateway.identity),
        sku: config.gatewaySku,
        units: config.gatewayUnits,
        publisherEmail: config.gatewayPublisherEmail ?? missingSetting("gatewayPublisherEmail"),
        publisherName: context.project,
        allowedOrigins: [storage.webOrigin],
        telemetry: {
          applicationInsightsId: monitoring.applicationInsights.id,
          connectionString: monitoring.connectionString,
          grant: (grantee) => [monitoring.grantPublish(grantee)],
        },
      })
    : undefined;

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
    // Behind the gateway, the gateway's identity is the only caller admitted (403 for any other token).
    const entraAuthentication: EntraAuthentication | undefined =
      browserFacing && signIn
        ? {
            clientId: signIn.apiClientId,
            tenantId: signIn.tenantId,
            excludedPaths: anonymousPaths(service),
            // Behind the gateway the api admits only the gateway's identity; otherwise the named clients.
            ...(gateway
              ? { allowedCallers: { applications: [gateway.identityClientId], principals: [gateway.principalId] } }
              : allowedApplications.length > 0
                ? { allowedCallers: { applications: allowedApplications } }
                : {}),
          }
        : undefined;
    const alwaysReady: AlwaysReady[] = http?.alwaysReadyConfig ? [{ name: "http", instanceCount: config[http.alwaysReadyConfig] }] : [];
    const appNetwork: AppNetwork | undefined = network ? { subnetId: network.appSubnetId(service), dependsOn: network.ready } : undefined;
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
      // Browsers call the gateway, not the app, when it is on: no CORS on the app then.
      ...(browserFacing && !gateway ? { corsAllowedOrigins: [storage.webOrigin] } : {}),
      ...(entraAuthentication ? { entraAuthentication } : {}),
      ...(appNetwork ? { network: appNetwork } : {}),
      ...(config.zoneRedundant ? { zoneRedundant: true } : {}),
    });
  });

  const alerts = createAlerts(config, { placement, name, monitoring, messaging, database });

  // Each browser-facing service behind the gateway, at the path that is its name.
  for (const service of browserFacingServices) {
    if (!gateway) break;
    const http = declarationOf(service).http;
    const document = openApiDocuments[service] ?? missingDocument(service);
    gateway.serve(service, {
      path: service,
      displayName: declarationOf(service).description,
      document: document(),
      routePrefix: FUNCTIONS_ROUTE_PREFIX,
      anonymousRoutes: http?.anonymousRoutes ?? [],
      backendUrl: apps[service].url,
      entra: { tenantId: client.tenantId, clientId: (signIn ?? missingSetting("authEntraClientId or authCreateAppRegistrations")).apiClientId, requiredScope: DEFAULT_API_SCOPE },
      rateLimits: { perUser: config.gatewayUserRateLimit, perIp: config.gatewayAnonymousRateLimit, periodSeconds: config.gatewayRateLimitPeriodSeconds },
    });
  }

  const deployer: Grantee = { granteeName: "deployer", principalId: client.objectId, principalType: config.deployerPrincipalType };
  // Code needs no storage grant for the deployer: OneDeploy is authorised on the site (ARM RBAC), and
  // the site itself writes the package into its deployment container with its own identity.
  const deployerGrants = [storage.grantWebsiteWrite(deployer)];

  // The web app calls its api (through the gateway when it is on); it signs in only when the web
  // app's own registration is known (otherwise it could not ask for tokens, and says sign-in is not configured).
  const apiBaseUrl = gateway ? gateway.url : apps[theWebAppsApi()].url;
  const site = pulumi
    .all([apiBaseUrl, storage.dataBlobEndpoint, realtime.serviceUri, signIn?.apiClientId, signIn?.webClientId, signIn?.tenantId])
    .apply(([apiUrl, blobEndpoint, webPubSubEndpoint, apiClientId, webClientId, tenantId]): SiteEnvironmentValues => ({
      apiUrl,
      blobEndpoint,
      webPubSubEndpoint,
      auth: apiClientId && webClientId && tenantId ? { mode: "entra", tenantId, spaClientId: webClientId, apiClientId } : { mode: "none" },
    }));

  const outputs: StackOutputs = {
    resourceGroupName,
    apiBaseUrl,
    ...(gateway ? { gatewayUrl: gateway.url } : {}),
    webUrl: storage.websiteUrl,
    webPubSubEndpoint: realtime.serviceUri,
    appNames: perService((service) => apps[service].appName),
    appUrls: perService((service) => apps[service].url),
    dataStorageAccountName: storage.dataAccount.name,
    webContainerName: websiteContainerName,
    hostStorageAccountName: storage.hostAccount.name,
    deploymentContainerUrls: perService((service) => apps[service].deploymentContainerUrl),
    signInApiClientId: pulumi.output(signIn?.apiClientId ?? ""),
  };
  return {
    resourceGroup,
    storage,
    database,
    messaging,
    realtime,
    monitoring,
    ...(network ? { network } : {}),
    ...(alerts ? { alerts } : {}),
    apps,
    deployer,
    deployerGrants,
    ...(appRegistrations ? { appRegistrations } : {}),
    ...(gateway ? { gateway } : {}),
    site,
    outputs,
  };
}

/**
 * The private endpoints private networking creates: the Functions host storage's blob service
 * (AzureWebJobsStorage and the deployment packages; no queue or table endpoint, since HTTP and
 * Service Bus triggers use neither), Cosmos DB, Service Bus and Web PubSub.
 */
export function privateEndpointTargets(
  ids: { hostStorage: pulumi.Input<string>; cosmos: pulumi.Input<string>; serviceBus: pulumi.Input<string>; webPubSub: pulumi.Input<string> },
  endpointName: (target: string) => pulumi.Input<string>,
): PrivateEndpointTarget[] {
  const target = (key: string, resourceId: pulumi.Input<string>, service: PrivateEndpointTarget["service"]): PrivateEndpointTarget => ({
    key,
    endpointName: endpointName(key),
    resourceId,
    service,
  });
  return [
    target("host-blob", ids.hostStorage, "blob"),
    target("cosmos", ids.cosmos, "cosmosSql"),
    target("servicebus", ids.serviceBus, "serviceBus"),
    target("webpubsub", ids.webPubSub, "webPubSub"),
  ];
}

/** Alerts and the workbook when an e-mail address or an action group is configured: the queues of resources.ts and the apps of services.ts watched. */
function createAlerts(
  config: PlatformConfig,
  parts: {
    placement: { resourceGroupName: pulumi.Input<string>; location: string };
    name: (pick: (n: ResourceNames) => string) => pulumi.Output<string>;
    monitoring: Monitoring;
    messaging: Messaging;
    database: Database;
  },
): Alerts | undefined {
  if (!config.alertEmail && !config.alertActionGroupId) return undefined;
  const { placement, name, monitoring, messaging, database } = parts;
  const queues = Object.keys(appResources.queues);
  // Rules per app of the registry. Their queries name the apps' sites, whose names carry the hash
  // of the deploying subscription (an output): the rules are made once for their shape and again,
  // with the real names, for their queries.
  const rulesFor = (sites: Readonly<Record<string, string>>) =>
    logAlertRules(
      serviceNames.map((service) => {
        const siteName = sites[service];
        if (siteName === undefined) throw new Error(`no site name for service "${service}"`);
        return { service, siteName, http: declarationOf(service).http !== undefined };
      }),
    );
  const shape = rulesFor(perService(() => ""));
  // The names from naming.ts rather than the sites' outputs: known during preview, no wait for the apps.
  const resolved = pulumi.all(perService((service) => name((n) => n.apps[service].site))).apply(rulesFor);
  const logAlerts: LogAlert[] = shape.map((rule, index) => ({ ...rule, query: resolved.apply((rules) => rules[index]!.query) }));
  const workbook = pulumi
    .all([messaging.namespace.id, database.account.id, monitoring.workspace.id])
    .apply(([serviceBusNamespaceId, cosmosAccountId, workspaceId]) => JSON.stringify(jobPipelineWorkbook({ queues, serviceBusNamespaceId, cosmosAccountId, workspaceId })));
  return new Alerts("alerts", {
    ...placement,
    ...(config.alertEmail ? { email: { name: name((n) => n.actionGroup), shortName: name((n) => n.actionGroupShortName), address: config.alertEmail } } : {}),
    existingActionGroupIds: config.alertActionGroupId ? [config.alertActionGroupId] : [],
    workspaceId: monitoring.workspace.id,
    identityName: name((n) => n.alertsIdentity),
    metricTargets: { serviceBusNamespace: messaging.namespace.id, cosmosAccount: database.account.id },
    metricAlerts: metricAlertRules(queues),
    logAlerts,
    workbook: { displayName: "Job pipeline", serializedData: workbook },
    ruleName: (key) => name((n) => alertRuleName(n.base, key)),
  });
}

/** The services browsers call (CORS, Entra sign-in, the gateway). */
const browserFacingServices = serviceNames.filter((service) => declarationOf(service).http?.browserFacing === true);

/** The service the web app calls: its api base URL points there (or at the gateway in front of it). */
function theWebAppsApi(): ServiceName {
  const [service, ...others] = browserFacingServices;
  if (!service || others.length > 0) {
    throw new Error(`the web app calls exactly one browser-facing service; the registry has ${browserFacingServices.length ? browserFacingServices.join(", ") : "none"}`);
  }
  return service;
}

function missingDocument(service: string): never {
  throw new Error(`service "${service}" is browser-facing but has no OpenAPI document in openApiDocuments: the gateway imports its routes from it`);
}

/** parseConfig already refuses a gateway without these; this keeps a hand-built config honest. */
function missingSetting(key: string): never {
  throw new Error(`gatewayEnabled needs ${key}`);
}

function missing(service: string): never {
  throw new Error(`no deployment container for service "${service}"`);
}
