import * as pulumi from "@pulumi/pulumi";
import * as apimanagement from "@pulumi/azure-native/apimanagement";
import * as managedidentity from "@pulumi/azure-native/managedidentity";
import { GATEWAY_SUFFIX_LENGTH, gatewayServiceName } from "../naming";
import { apiPolicy, servicePolicy, type RateLimits } from "./gateway-policies";
import { gatewayRoutes, type OpenApiDocument } from "./gateway-routes";
import type { Grantee } from "./grant";
import { transformed, type Transform } from "./transform";
import { UniqueSuffix } from "./unique-suffix";

/** API Management tiers with per-caller rate limits (rate-limit-by-key) that provision in minutes. */
export type GatewaySku = "BasicV2" | "StandardV2";

/** Where the gateway sends its request logs: Application Insights, keyless. */
export interface GatewayTelemetry {
  /** Resource ID of the Application Insights component. */
  readonly applicationInsightsId: pulumi.Input<string>;
  /** Its connection string (an address: with local auth off, ingestion needs an Entra token). */
  readonly connectionString: pulumi.Input<string>;
  /** Grants the gateway's identity Monitoring Metrics Publisher on the component. */
  grant(grantee: Grantee): pulumi.Resource[];
}

export interface ApiGatewayArgs {
  /** Resource group that holds the service and its identity. */
  readonly resourceGroupName: pulumi.Input<string>;
  /** Azure region, e.g. `eastus`. */
  readonly location: pulumi.Input<string>;
  /**
   * Start of the API Management service name; a random suffix kept in the stack's state completes
   * it, so a destroy and up never meets the previous service's soft-deleted (48-hour) name.
   */
  readonly servicePrefix: pulumi.Input<string>;
  /** Name of the gateway's user-assigned identity. */
  readonly identityName: pulumi.Input<string>;
  /**
   * API Management tier. Both v2 tiers have rate-limit-by-key; StandardV2 adds outbound VNet integration.
   * @default "BasicV2"
   */
  readonly sku?: GatewaySku;
  /**
   * Scale units (each billed).
   * @default 1
   */
  readonly units?: number;
  /** Email address API Management sends its service notices to (required by Azure). */
  readonly publisherEmail: pulumi.Input<string>;
  /**
   * Organization name shown in API Management's notices.
   * @default "API gateway"
   */
  readonly publisherName?: pulumi.Input<string>;
  /** Origins whose pages may call through the gateway (CORS), e.g. the web app's. */
  readonly allowedOrigins: pulumi.Input<pulumi.Input<string>[]>;
  /** Application Insights, for the request logs. */
  readonly telemetry: GatewayTelemetry;
  /**
   * Share of requests logged to Application Insights, in percent (errors are always logged).
   * @default 100
   */
  readonly samplingPercentage?: number;
  /**
   * Changes to the arguments of each child (see transform.ts).
   * @default no changes
   */
  readonly transform?: {
    /** The user-assigned identity. @default unchanged */
    readonly identity?: Transform<managedidentity.UserAssignedIdentityArgs>;
    /** The API Management service. @default unchanged */
    readonly service?: Transform<apimanagement.ApiManagementServiceArgs>;
    /** The service-wide policy. @default unchanged */
    readonly servicePolicy?: Transform<apimanagement.PolicyArgs>;
    /** The Application Insights logger. @default unchanged */
    readonly logger?: Transform<apimanagement.LoggerArgs>;
    /** The service-wide diagnostic (what is logged). @default unchanged */
    readonly diagnostic?: Transform<apimanagement.DiagnosticArgs>;
    /** Each API made by {@link ApiGateway.serve}. @default unchanged */
    readonly api?: Transform<apimanagement.ApiArgs>;
    /** Each API's policy. @default unchanged */
    readonly apiPolicy?: Transform<apimanagement.ApiPolicyArgs>;
  };
}

/** Who may call an API through the gateway: a user's Entra token for the api's registration. */
export interface GatewayEntra {
  /** Directory (tenant) ID. */
  readonly tenantId: pulumi.Input<string>;
  /** The api's app registration (authEntraClientId): audience of the users' tokens and of the gateway's own. */
  readonly clientId: pulumi.Input<string>;
  /** Delegated scope the users' tokens must carry. */
  readonly requiredScope: string;
}

export interface GatewayApiArgs {
  /** Path of the API on the gateway (`https://<gateway>/<path>/...`). */
  readonly path: string;
  /** Name shown in the portal. */
  readonly displayName: string;
  /** The service's own OpenAPI document: its operations are the API's operations. */
  readonly document: OpenApiDocument;
  /** The Functions route prefix every document path starts with (`/api`); the backend URL ends with it. */
  readonly routePrefix: string;
  /** The service's anonymous routes (service registry): no token, rate-limited per client IP. */
  readonly anonymousRoutes: readonly string[];
  /** The service's origin, `https://<app>.azurewebsites.net`. */
  readonly backendUrl: pulumi.Input<string>;
  readonly entra: GatewayEntra;
  readonly rateLimits: RateLimits;
}

/**
 * An API gateway on Azure API Management (a v2 tier, which has per-caller rate limits and
 * provisions in minutes) with a user-assigned identity and no keys:
 * - routing: each service's API imported from the service's own OpenAPI document ({@link serve});
 * - authentication, rate limits, response transformation: policies built in gateway-policies.ts;
 * - logging: an Application Insights logger that authenticates with the gateway's identity
 *   (Monitoring Metrics Publisher; the component refuses keys), and a service-wide diagnostic with
 *   W3C trace context, so the api continues the gateway's trace (and the queue message the api's).
 *
 * The api trusts only the gateway: the gateway calls it with its own identity's token, and the
 * api's App Service Authentication admits only that identity ({@link identityClientId},
 * {@link principalId}).
 */
export class ApiGateway extends pulumi.ComponentResource implements Grantee {
  readonly identity: managedidentity.UserAssignedIdentity;
  readonly service: apimanagement.ApiManagementService;
  readonly logger: apimanagement.Logger;
  readonly diagnostic: apimanagement.Diagnostic;
  readonly servicePolicy: apimanagement.Policy;
  /** `https://<service>.azure-api.net`: where browsers call. */
  readonly url: pulumi.Output<string>;
  readonly serviceName: pulumi.Output<string>;
  /** Client ID of the gateway's identity: the `azp`/`appid` of the tokens it sends the api. */
  readonly identityClientId: pulumi.Output<string>;
  readonly granteeName: string;
  /** Object ID of the gateway's identity: the `oid` of the tokens it sends the api. */
  readonly principalId: pulumi.Output<string>;
  readonly principalType = "ServicePrincipal" as const;
  private readonly name: string;
  private readonly args: ApiGatewayArgs;

  constructor(name: string, args: ApiGatewayArgs, opts?: pulumi.ComponentResourceOptions) {
    super("platform:azure:ApiGateway", name, {}, opts);
    this.name = name;
    this.args = args;
    this.granteeName = name;
    const placement = { resourceGroupName: args.resourceGroupName, location: args.location };

    this.identity = new managedidentity.UserAssignedIdentity(
      ...transformed(args.transform?.identity, `${name}-identity`, { resourceName: args.identityName, ...placement }, { parent: this }),
    );
    this.identityClientId = this.identity.clientId;
    this.principalId = this.identity.principalId;

    // A new suffix (and so a free name) whenever the service would be created anew.
    const suffix = new UniqueSuffix(
      `${name}-name-suffix`,
      { length: GATEWAY_SUFFIX_LENGTH, keepers: pulumi.output(placement).apply((p) => ({ resourceGroupName: p.resourceGroupName, location: p.location })) },
      { parent: this },
    );
    const serviceName = pulumi.all([args.servicePrefix, suffix.suffix]).apply(([prefix, random]) => gatewayServiceName(prefix, random));

    this.service = new apimanagement.ApiManagementService(
      ...transformed(
        args.transform?.service,
        `${name}-service`,
        {
          serviceName,
          ...placement,
          sku: { name: args.sku ?? "BasicV2", capacity: args.units ?? 1 },
          publisherEmail: args.publisherEmail,
          publisherName: args.publisherName ?? "API gateway",
          identity: this.identity.id.apply((id) => ({ type: apimanagement.ApimIdentityType.UserAssigned, userAssignedIdentities: { [id]: {} } })),
          publicNetworkAccess: "Enabled",
          // Refuse management calls from API versions older than the ones with today's checks
          // (Azure Policy "API Management minimum API version should be set to 2019-12-01 or
          // higher"; the AVM module's default).
          apiVersionConstraint: { minApiVersion: "2021-08-01" },
        },
        { parent: this },
      ),
    );
    this.serviceName = this.service.name;
    this.url = this.service.gatewayUrl;
    const inService = { serviceName: this.service.name, resourceGroupName: args.resourceGroupName };

    this.servicePolicy = new apimanagement.Policy(
      ...transformed(
        args.transform?.servicePolicy,
        `${name}-service-policy`,
        {
          ...inService,
          policyId: "policy",
          format: apimanagement.PolicyContentFormat.Xml,
          value: pulumi.output(args.allowedOrigins).apply((origins) => servicePolicy({ allowedOrigins: origins })),
        },
        { parent: this },
      ),
    );

    // Keyless logging: the logger sends with the gateway's identity, which may publish (and only that).
    const publishGrants = args.telemetry.grant(this);
    this.logger = new apimanagement.Logger(
      ...transformed(
        args.transform?.logger,
        `${name}-logger`,
        {
          ...inService,
          loggerId: "application-insights",
          loggerType: apimanagement.LoggerType.ApplicationInsights,
          resourceId: args.telemetry.applicationInsightsId,
          credentials: { connectionString: args.telemetry.connectionString, identityClientId: this.identity.clientId },
          isBuffered: true,
          description: "Request logs, sent with the gateway's managed identity",
        },
        { parent: this, dependsOn: publishGrants },
      ),
    );
    this.diagnostic = new apimanagement.Diagnostic(
      ...transformed(
        args.transform?.diagnostic,
        `${name}-diagnostic`,
        {
          ...inService,
          diagnosticId: "applicationinsights",
          loggerId: this.logger.id,
          alwaysLog: apimanagement.AlwaysLog.AllErrors,
          // traceparent to the api: the api's span, the queue message and the agent continue this trace.
          httpCorrelationProtocol: apimanagement.HttpCorrelationProtocol.W3C,
          sampling: { samplingType: apimanagement.SamplingType.Fixed, percentage: args.samplingPercentage ?? 100 },
          verbosity: apimanagement.Verbosity.Information,
          // Client IPs are personal data; the per-IP limits do not need them in the logs.
          logClientIp: false,
          metrics: true,
          // No headers or bodies: tokens and user content stay out of the logs.
          frontend: { request: { headers: [], body: { bytes: 0 } }, response: { headers: [], body: { bytes: 0 } } },
          backend: { request: { headers: [], body: { bytes: 0 } }, response: { headers: [], body: { bytes: 0 } } },
        },
        { parent: this },
      ),
    );

    this.registerOutputs({ url: this.url, serviceName: this.serviceName, identityClientId: this.identityClientId, principalId: this.principalId });
  }

  /**
   * Serves one service through the gateway: an API at `args.path` whose operations are the
   * service's OpenAPI document (re-imported whenever the document changes), backed by the service
   * at `<backendUrl><routePrefix>`, with the api policy. Returns the API.
   */
  serve(service: string, args: GatewayApiArgs): apimanagement.Api {
    const routes = gatewayRoutes(args.document, { pathPrefix: args.routePrefix, anonymousRoutes: args.anonymousRoutes });
    const inService = { serviceName: this.service.name, resourceGroupName: this.args.resourceGroupName };
    const api = new apimanagement.Api(
      ...transformed(
        this.args.transform?.api,
        `${this.name}-${service}-api`,
        {
          ...inService,
          apiId: service,
          path: args.path,
          displayName: args.displayName,
          apiType: apimanagement.ApiType.Http,
          protocols: [apimanagement.Protocol.Https],
          // Browsers carry Entra tokens, not subscription keys.
          subscriptionRequired: false,
          format: apimanagement.ContentFormat.Openapi_json,
          value: JSON.stringify(routes.document),
          serviceUrl: pulumi.interpolate`${args.backendUrl}${args.routePrefix}`,
        },
        { parent: this },
      ),
    );
    new apimanagement.ApiPolicy(
      ...transformed(
        this.args.transform?.apiPolicy,
        `${this.name}-${service}-api-policy`,
        {
          ...inService,
          apiId: api.name,
          policyId: "policy",
          format: apimanagement.PolicyContentFormat.Xml,
          value: pulumi
            .all([this.args.allowedOrigins, args.entra.tenantId, args.entra.clientId, this.identity.clientId])
            .apply(([origins, tenantId, clientId, gatewayIdentityClientId]) =>
              apiPolicy({
                allowedOrigins: origins,
                methods: routes.methods,
                anonymousOperationIds: routes.anonymousOperationIds,
                entra: { tenantId, clientId, requiredScope: args.entra.requiredScope },
                rateLimits: args.rateLimits,
                gatewayIdentityClientId,
              }),
            ),
        },
        { parent: this },
      ),
    );
    return api;
  }
}
