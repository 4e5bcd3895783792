import * as pulumi from "@pulumi/pulumi";
import * as web from "@pulumi/azure-native/web";
import * as managedidentity from "@pulumi/azure-native/managedidentity";
import type { PlatformConfig } from "../config";
import { describeLink, type ConnectionFamily } from "../../functions/src/platform/links";
import { declarationOf, type ServiceName } from "../../functions/src/services";
import { azureAppSettings, TELEMETRY_SETTING } from "../../functions/src/settings";
import type { Grantee } from "./grant";
import type { Link } from "./link";
import { ReplicationWait } from "./replication-wait";
import { transformed, type Transform } from "./transform";

/** Flex Consumption instance memory sizes (MB). */
export type FlexInstanceMemory = 2048 | 4096;

export interface AlwaysReady {
  /** A per-function scale group (`http`) or one function (`function:<name>`). */
  readonly name: string;
  readonly instanceCount: number;
}

export interface EntraAuthentication {
  /** Application (client) ID of the Entra app registration that callers get tokens for. */
  readonly clientId: pulumi.Input<string>;
  /** Tenant of that registration. */
  readonly tenantId: pulumi.Input<string>;
  /**
   * Paths that answer without a token.
   * @default []
   */
  readonly excludedPaths?: string[];
  /**
   * Admit only these callers (App Service Authentication's built-in authorization policy, 403 for
   * anyone else): the tokens' `azp`/`appid` must be one of `applications` and their `oid` one of
   * `principals`. Everyone with a valid token for the registration by default.
   * @default undefined
   */
  readonly allowedCallers?: AllowedCallers;
}

/** The callers App Service Authentication admits, e.g. only the API gateway's managed identity. */
export interface AllowedCallers {
  /** Client IDs (`azp` in v2 tokens, `appid` in v1). */
  readonly applications: pulumi.Input<string>[];
  /**
   * Object IDs (`oid`).
   * @default any principal of an admitted application
   */
  readonly principals?: pulumi.Input<string>[];
}

/** Outbound virtual-network integration of a Flex Consumption app. */
export interface AppNetwork {
  /** Resource ID of the app's integration subnet, delegated to `Microsoft.App/environments`. */
  readonly subnetId: pulumi.Input<string>;
  /**
   * What must exist before the app's first start: the private endpoints and DNS records of the
   * services it reaches privately (its own storage first of all).
   * @default []
   */
  readonly dependsOn?: pulumi.Resource[];
}

/**
 * What the Functions host itself needs, whatever the service: its storage (AzureWebJobsStorage, and
 * the deployment container it reads its package from) and telemetry ingestion.
 */
export interface HostNeeds {
  /** Blob endpoint of the Functions host storage account, e.g. `https://<acct>.blob.core.windows.net/`. */
  readonly storageBlobEndpoint: pulumi.Input<string>;
  /** `<host blob endpoint><container>`: where Flex reads the app's deployment package. */
  readonly deploymentContainerUrl: pulumi.Input<string>;
  /** Application Insights connection string (an endpoint; ingestion needs an Entra token). */
  readonly telemetryConnectionString: pulumi.Input<string>;
  /** The host's role assignments: Blob Data Owner on its storage, Monitoring Metrics Publisher on App Insights. */
  grant(grantee: Grantee): pulumi.Resource[];
}

export interface FunctionAppArgs<S extends ServiceName> {
  /** Which service of the settings contract this app runs; decides the settings it must be given. */
  readonly service: S;
  /** Resource group that holds the plan, the app and its identity. */
  readonly resourceGroupName: pulumi.Input<string>;
  /** Azure region, e.g. `eastus`. */
  readonly location: pulumi.Input<string>;
  /** Site name: 2-60 characters; `<name>.azurewebsites.net` must be globally unique. */
  readonly siteName: pulumi.Input<string>;
  /** Flex Consumption plan name (one plan per app, as Flex requires). */
  readonly planName: pulumi.Input<string>;
  /** User-assigned identity name. */
  readonly identityName: pulumi.Input<string>;
  /** The Functions host's own storage and telemetry. */
  readonly host: HostNeeds;
  /**
   * The service's links, resolved by the components (Messaging, Database, Storage, Realtime): exactly
   * the links the service registry declares. Each gives the app a connection setting and its role
   * assignments, created from the app's identity before the app exists, so its first start already
   * has its access.
   */
  readonly links: readonly Link[];
  /** The stack configuration: the values of the service's declared settings come from it. */
  readonly config: PlatformConfig;
  /**
   * Memory per instance, in MB.
   * @default 2048
   */
  readonly instanceMemoryMb?: FlexInstanceMemory;
  /**
   * Upper bound of the scale-out (Flex allows 40-1000).
   * @default 100
   */
  readonly maximumInstanceCount?: number;
  /**
   * Instances kept warm (billed while idle); none by default, so an idle app costs nothing.
   * @default []
   */
  readonly alwaysReady?: readonly AlwaysReady[];
  /**
   * Origins allowed to call the app from a browser (CORS). None by default.
   * @default []
   */
  readonly corsAllowedOrigins?: pulumi.Input<pulumi.Input<string>[]>;
  /**
   * Require an Entra token on every request (App Service Authentication; 401 without one). Off by default.
   * @default undefined
   */
  readonly entraAuthentication?: EntraAuthentication;
  /**
   * Send the app's outbound traffic through a subnet of a virtual network (the site's
   * `virtualNetworkSubnetId`), so it reaches services through their private endpoints. None by
   * default: the app reaches every service over its public endpoint.
   * @default undefined
   */
  readonly network?: AppNetwork;
  /**
   * Spread the plan's instances over availability zones (Flex Consumption). Azure then keeps at
   * least two always-ready instances per scale group, billed as always ready, and the host storage
   * must be zone-redundant (ZRS) too.
   * @default false
   */
  readonly zoneRedundant?: boolean;
  /**
   * Changes to the arguments of the identity, the plan and the site (see transform.ts).
   * @default no changes
   */
  readonly transform?: {
    /** Changes to the user-assigned identity. @default unchanged */
    readonly identity?: Transform<managedidentity.UserAssignedIdentityArgs>;
    /** Changes to the Flex Consumption plan. @default unchanged */
    readonly plan?: Transform<web.AppServicePlanArgs>;
    /** Changes to the site (the Flex site-config rules still apply after it). @default unchanged */
    readonly site?: Transform<web.WebAppArgs>;
  };
}

/**
 * One Function App on its own Flex Consumption plan, running Node 22, with a user-assigned managed
 * identity and no secrets: host storage, App Insights and every service connection are
 * identity-based.
 *
 * Why a user-assigned identity (the pattern of Microsoft's azd Flex samples): it exists before the
 * app, so its role assignments are created first and the app's very first start (which reads the
 * deployment package and host storage with that identity) already has access. A system-assigned
 * identity only exists once the app does, leaving a window in which the app starts without access.
 * It also survives replacing the app, keeping the grants.
 */
export class FunctionApp<S extends ServiceName> extends pulumi.ComponentResource implements Grantee {
  readonly service: S;
  readonly identity: managedidentity.UserAssignedIdentity;
  readonly plan: web.AppServicePlan;
  readonly site: web.WebApp;
  /** The role assignments made through `access`; the app depends on them. */
  readonly grants: pulumi.Resource[];
  readonly appName: pulumi.Output<string>;
  readonly defaultHostName: pulumi.Output<string>;
  /** Host of the Kudu/SCM site that takes OneDeploy packages: `<app>.scm.azurewebsites.net`. */
  readonly scmHostName: pulumi.Output<string>;
  /** `https://<default host name>`. */
  readonly url: pulumi.Output<string>;
  readonly deploymentContainerUrl: pulumi.Output<string>;
  readonly planId: pulumi.Output<string>;
  readonly identityId: pulumi.Output<string>;
  readonly identityClientId: pulumi.Output<string>;
  readonly granteeName: string;
  readonly principalId: pulumi.Output<string>;
  readonly principalType = "ServicePrincipal" as const;
  readonly replicated: ReplicationWait;

  constructor(name: string, args: FunctionAppArgs<S>, opts?: pulumi.ComponentResourceOptions) {
    super("platform:azure:FunctionApp", name, {}, opts);
    this.service = args.service;
    this.granteeName = name;
    assertLinksAsDeclared(args.service, args.links);
    this.identity = new managedidentity.UserAssignedIdentity(
      ...transformed(
        args.transform?.identity,
        `${name}-identity`,
        { resourceName: args.identityName, resourceGroupName: args.resourceGroupName, location: args.location },
        { parent: this },
      ),
    );
    this.identityId = this.identity.id;
    this.identityClientId = this.identity.clientId;
    this.principalId = this.identity.principalId;
    this.replicated = new ReplicationWait(`${name}-entra-replication-wait`, { principalId: this.identity.principalId }, { parent: this });
    const grantee: Grantee = { granteeName: name, principalId: this.identity.principalId, principalType: "ServicePrincipal", replicated: this.replicated };
    // Once each: links that share a grant (two containers of one Cosmos database) return the same one.
    this.grants = [...new Set([...args.host.grant(grantee), ...args.links.flatMap((link) => link.grant(grantee))])];

    this.plan = new web.AppServicePlan(
      ...transformed(
        args.transform?.plan,
        `${name}-plan`,
        {
          name: args.planName,
          resourceGroupName: args.resourceGroupName,
          location: args.location,
          kind: "functionapp",
          reserved: true,
          sku: { name: "FC1", tier: "FlexConsumption" },
          ...(args.zoneRedundant ? { zoneRedundant: true } : {}),
        },
        { parent: this },
      ),
    );
    this.planId = this.plan.id;

    const clientId = this.identity.clientId;
    const [siteName, siteArgs, siteOptions] = transformed(
      args.transform?.site,
      `${name}-site`,
      {
        name: args.siteName,
        resourceGroupName: args.resourceGroupName,
        location: args.location,
        kind: "functionapp,linux",
        serverFarmId: this.plan.id,
        httpsOnly: true,
        clientCertEnabled: false,
        identity: { type: web.ManagedServiceIdentityType.UserAssigned, userAssignedIdentities: [this.identity.id] },
        // Flex sends all outbound traffic through the subnet: no vnetRouteAllEnabled (Microsoft's Flex
        // networking docs; the VNET_ENABLED quickstart sets only this property).
        ...(args.network ? { virtualNetworkSubnetId: args.network.subnetId } : {}),
        functionAppConfig: {
          deployment: {
            storage: {
              type: "blobContainer",
              value: args.host.deploymentContainerUrl,
              authentication: { type: "UserAssignedIdentity", userAssignedIdentityResourceId: this.identity.id },
            },
          },
          runtime: { name: "node", version: "22" },
          scaleAndConcurrency: {
            instanceMemoryMB: args.instanceMemoryMb ?? 2048,
            maximumInstanceCount: args.maximumInstanceCount ?? 100,
            alwaysReady: (args.alwaysReady ?? []).filter((a) => a.instanceCount > 0).map((a) => ({ ...a })),
          },
        },
        // Only what Microsoft's Flex Consumption references send (see flexSiteConfig).
        siteConfig: {
          minTlsVersion: "1.2",
          cors: { allowedOrigins: args.corsAllowedOrigins ?? [], supportCredentials: false },
          appSettings: functionAppSettings(args, clientId),
        },
      },
      // The grants (and with private networking its storage's endpoint) first: the app starts, and
      // reads its package with its identity, as soon as it exists.
      { parent: this, dependsOn: [...this.grants, ...(args.network?.dependsOn ?? [])] },
    );
    // After any user transform: whatever it added, Flex must accept the result.
    this.site = new web.WebApp(siteName, siteArgs, { ...siteOptions, transformations: [...(siteOptions.transformations ?? []), withFlexSiteConfig] });

    // Deployment is Entra-only (OneDeploy with a bearer token): publishing-profile basic auth stays off.
    // Flex has no FTP at all (the portal hides the setting), so only the SCM policy is written.
    const scmBasicAuth = new web.WebAppScmAllowed(
      `${name}-scm-basic-auth`,
      { name: this.site.name, resourceGroupName: args.resourceGroupName, allow: false },
      { parent: this },
    );

    if (args.entraAuthentication) {
      const auth = args.entraAuthentication;
      new web.WebAppAuthSettingsV2(
        `${name}-auth`,
        {
          name: this.site.name,
          resourceGroupName: args.resourceGroupName,
          platform: { enabled: true },
          globalValidation: {
            requireAuthentication: true,
            unauthenticatedClientAction: web.UnauthenticatedClientActionV2.Return401,
            excludedPaths: auth.excludedPaths ?? [],
          },
          httpSettings: { requireHttps: true },
          identityProviders: {
            azureActiveDirectory: {
              enabled: true,
              // Validating bearer tokens needs no client secret: only the issuer and the audience.
              registration: { clientId: auth.clientId, openIdIssuer: pulumi.interpolate`https://login.microsoftonline.com/${auth.tenantId}/v2.0` },
              validation: {
                allowedAudiences: [auth.clientId, pulumi.interpolate`api://${auth.clientId}`],
                ...(auth.allowedCallers
                  ? {
                      defaultAuthorizationPolicy: {
                        allowedApplications: auth.allowedCallers.applications,
                        ...(auth.allowedCallers.principals ? { allowedPrincipals: { identities: auth.allowedCallers.principals } } : {}),
                      },
                    }
                  : {}),
              },
            },
          },
        },
        // One write at a time to the site's configuration: App Service answers concurrent ones with
        // "cannot acquire exclusive lock" (pulumi-azure-native 4461).
        { parent: this, dependsOn: [scmBasicAuth] },
      );
    }

    this.appName = this.site.name;
    this.defaultHostName = this.site.defaultHostName;
    this.scmHostName = pulumi.interpolate`${this.site.name}.scm.azurewebsites.net`;
    this.url = pulumi.interpolate`https://${this.site.defaultHostName}`;
    this.deploymentContainerUrl = pulumi.output(args.host.deploymentContainerUrl);
    this.registerOutputs({
      appName: this.appName,
      url: this.url,
      scmHostName: this.scmHostName,
      identityClientId: this.identityClientId,
      planId: this.planId,
    });
  }
}

/**
 * Site-config properties Flex Consumption refuses with ARM error 51021 ("... for Flex Consumption
 * sites is invalid": FtpsState, Use32BitWorkerProcess, NetFrameworkVersion,
 * FunctionsRuntimeScaleMonitoringEnabled; microsoft/azure-pipelines-tasks 21032,
 * pulumi-azure-native 4168) or that belong to the classic plans (linuxFxVersion, functionAppScaleLimit:
 * Flex takes runtime and scale from functionAppConfig).
 */
export const flexRejectedSiteConfig = [
  "ftpsState",
  "use32BitWorkerProcess",
  "netFrameworkVersion",
  "functionsRuntimeScaleMonitoringEnabled",
  "linuxFxVersion",
  "functionAppScaleLimit",
] as const;

/**
 * The only site-config properties this component sends: the set Microsoft's Flex Consumption
 * references send (Azure-Samples functions-quickstart-typescript-azd via the AVM site module:
 * alwaysOn, minTlsVersion and app settings; CORS as `az functionapp cors` writes it).
 */
export const flexSiteConfigProperties = ["alwaysOn", "minTlsVersion", "cors", "appSettings"] as const;

/**
 * The site config as Flex accepts it. azure-native 3.28 adds `netFrameworkVersion: "v4.6"`,
 * `localMySqlEnabled: false` and `http20Enabled: true` to every siteConfig it is given
 * (siteConfigArgsProvideDefaults), and Flex refuses the first: those defaults are dropped. A
 * property outside {@link flexSiteConfigProperties} that someone set on purpose (through a
 * transform) fails here, naming it, instead of failing in Azure after minutes.
 */
export function flexSiteConfig(siteConfig: Record<string, unknown>): Record<string, unknown> {
  const injectedDefaults: Record<string, unknown> = { netFrameworkVersion: "v4.6", localMySqlEnabled: false, http20Enabled: true };
  const allowed = new Set<string>(flexSiteConfigProperties);
  const result: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(siteConfig)) {
    if (value === undefined) continue;
    if (allowed.has(key)) {
      result[key] = value;
      continue;
    }
    if (key in injectedDefaults && injectedDefaults[key] === value) continue;
    const why = (flexRejectedSiteConfig as readonly string[]).includes(key) ? "Flex Consumption rejects it (ARM error 51021)" : "Microsoft's Flex references never send it";
    throw new Error(`siteConfig.${key} cannot be set on a Flex Consumption app: ${why}; allowed: ${flexSiteConfigProperties.join(", ")}`);
  }
  return result;
}

/**
 * Applies {@link flexSiteConfig} to a WebApp's final inputs, after azure-native added its defaults.
 * A `transformations` option: it runs in the program itself (any Pulumi CLI, and under test mocks),
 * where the newer `transforms` option needs engine support.
 */
export const withFlexSiteConfig: pulumi.ResourceTransformation = ({ props, opts }) => {
  if (props["siteConfig"] === undefined) return undefined;
  return { props: { ...props, siteConfig: pulumi.output(props["siteConfig"] as pulumi.Input<Record<string, unknown>>).apply(flexSiteConfig) }, opts };
};

/**
 * A FunctionApp must get exactly the links its service declares (functions/src/services.ts): the
 * platform resolves them from the registry, and this guard keeps a hand-built app from drifting.
 */
export function assertLinksAsDeclared(service: ServiceName, links: readonly Link[]): void {
  const declared = declarationOf(service).links.map(describeLink).sort();
  const given = links.map((link) => describeLink(link.declaration)).sort();
  if (JSON.stringify(declared) !== JSON.stringify(given)) {
    throw new Error(`${service}: links given (${given.join(", ") || "none"}) differ from the registry's (${declared.join(", ") || "none"})`);
  }
}

/**
 * The app's settings: what the Functions host itself reads (AzureWebJobsStorage through the
 * identity, Entra-authenticated App Insights ingestion), then the service's contract: an
 * identity-based connection per linked Azure service and its declared settings from the stack
 * configuration. Throws on a name clash.
 */
export function functionAppSettings(
  args: Pick<FunctionAppArgs<ServiceName>, "service" | "host" | "links" | "config">,
  identityClientId: pulumi.Input<string>,
): { name: string; value: pulumi.Input<string> }[] {
  const platform: { name: string; value: pulumi.Input<string> }[] = [
    { name: "AzureWebJobsStorage__blobServiceUri", value: args.host.storageBlobEndpoint },
    { name: "AzureWebJobsStorage__credential", value: "managedidentity" },
    { name: "AzureWebJobsStorage__clientId", value: identityClientId },
    { name: TELEMETRY_SETTING, value: args.host.telemetryConnectionString },
    { name: "APPLICATIONINSIGHTS_AUTHENTICATION_STRING", value: pulumi.interpolate`Authorization=AAD;ClientId=${identityClientId}` },
  ];
  const endpoints: Partial<Record<ConnectionFamily, pulumi.Input<string>>> = {};
  for (const link of args.links) endpoints[link.family] ??= link.endpoint;
  const contract = azureAppSettings(args.service, { endpoints, config: args.config, identityClientId });
  const seen = new Set<string>();
  for (const { name } of [...platform, ...contract]) {
    if (seen.has(name)) throw new Error(`${args.service}: app setting ${name} is set twice`);
    seen.add(name);
  }
  return [...platform, ...contract];
}
