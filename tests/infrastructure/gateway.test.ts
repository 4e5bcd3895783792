/**
 * The platform with the API gateway on, under mocks (the gateway-off platform is
 * platform.test.ts's, and the dev stack program.test.ts's): the service on a v2 tier with its own
 * identity and a name that a destroy/up cycle does not reuse, the api's API imported from the api's
 * own OpenAPI document, the policies, the keyless logger and its diagnostic, and the api's App
 * Service Authentication admitting only the gateway's identity.
 */
import { beforeAll, describe, expect, it } from "vitest";
import * as pulumi from "@pulumi/pulumi";
import { getClientConfigOutput } from "@pulumi/azure-native/authorization";
import { buildOpenApiDocument } from "../../functions/src/api/openapi";
import { parseConfig, projectName } from "../../infrastructure/config";
import { anonymousPaths, createPlatform, type Platform } from "../../infrastructure/platform";
import { builtInRoles } from "../../infrastructure/roles";
import { gatewayServiceName, nameRules, resourceNames } from "../../infrastructure/naming";
import { installMocks, named, ofType, valueOf, subscriptionId, tenantId, type MockedStack } from "./support/mocks";
import { childrenOf, logicalName, registered } from "./support/tree";
import { findSecrets } from "./support/secrets";
import { policies } from "../../policy/policies";
import { evaluateResource, evaluateStack, isResourcePolicy, isStackPolicy, type ResourceUnderTest } from "../policy/support/evaluate";

const stackName = "prod";
const clientId = "0f0f0f0f-1111-2222-3333-444444444444";
const config = parseConfig({
  namePrefix: "acme",
  authEntraClientId: clientId,
  gatewayEnabled: "true",
  gatewaySku: "StandardV2",
  gatewayUnits: "2",
  gatewayPublisherEmail: "ops@example.com",
  gatewayUserRateLimit: "90",
  gatewayAnonymousRateLimit: "20",
  gatewayRateLimitPeriodSeconds: "30",
});
const names = resourceNames({ prefix: "acme", project: projectName, stack: stackName, subscriptionId });
const gatewayIdentity = names.gateway.identity;

let stack: MockedStack;
let platform: Platform;
let outputs: Record<string, unknown>;

beforeAll(async () => {
  stack = await installMocks(stackName);
  platform = createPlatform(config, { project: projectName, stack: stackName, client: getClientConfigOutput() });
  await registered([platform.resourceGroup, platform.gateway!, ...Object.values(platform.apps), platform.monitoring]);
  outputs = (await valueOf(pulumi.output(platform.outputs))) as Record<string, unknown>;
});

const gatewayResource = (suffix: string) => named(stack, `gateway-${suffix}`);

describe("the API Management service", () => {
  it("runs on the configured v2 tier with the gateway's user-assigned identity, public, recent management API only", () => {
    const service = gatewayResource("service").inputs;
    expect(service).toMatchObject({
      sku: { name: "StandardV2", capacity: 2 },
      publisherEmail: "ops@example.com",
      publicNetworkAccess: "Enabled",
      apiVersionConstraint: { minApiVersion: "2021-08-01" },
      identity: { type: "UserAssigned", userAssignedIdentities: { [gatewayResource("identity").id]: {} } },
    });
    expect(gatewayResource("identity").inputs["resourceName"]).toBe(gatewayIdentity);
  });

  it("is named from the stack's prefix and a random suffix kept in state, renewed with the region or group", () => {
    const suffix = gatewayResource("name-suffix");
    expect(suffix.type).toBe("pulumi-nodejs:dynamic/platform:UniqueSuffix");
    expect(suffix.inputs).toMatchObject({ length: 6, keepers: { resourceGroupName: names.resourceGroup, location: "eastus" } });
    const serviceName = String(gatewayResource("service").inputs["serviceName"]);
    expect(serviceName).toBe(gatewayServiceName(names.gateway.servicePrefix, "mock01"));
    expect(serviceName).toMatch(nameRules.apiManagement.pattern);
  });

  it("gives the web app the gateway as its api, with nothing secret in the outputs", () => {
    const url = `https://${gatewayServiceName(names.gateway.servicePrefix, "mock01")}.azure-api.net`;
    expect(outputs).toMatchObject({ apiBaseUrl: url, gatewayUrl: url });
    expect(findSecrets(outputs)).toEqual([]);
  });

  it("keeps every child under the component, named after it", () => {
    const children = childrenOf(platform.gateway!).map(logicalName);
    expect(children.length).toBeGreaterThan(5);
    for (const child of children) expect(child.startsWith("gateway-"), child).toBe(true);
  });
});

describe("routing", () => {
  it("imports the api's own OpenAPI document at /api, to the api's Function App, HTTPS only and without subscription keys", () => {
    const api = gatewayResource("api-api").inputs;
    expect(api).toMatchObject({
      apiId: "api",
      path: "api",
      apiType: "http",
      protocols: ["https"],
      subscriptionRequired: false,
      format: "openapi+json",
      serviceUrl: `https://${names.apps.api.site}.azurewebsites.net/api`,
    });
    const imported = JSON.parse(String(api["value"])) as { paths: Record<string, Record<string, unknown>> };
    const own = buildOpenApiDocument();
    for (const [path, item] of Object.entries(own.paths ?? {})) {
      expect(Object.keys(imported.paths[path.slice("/api".length)] ?? {}), path).toEqual(expect.arrayContaining(Object.keys(item as object)));
    }
  });

  it("attaches the api policy to that API, built from the configuration", () => {
    const policy = gatewayResource("api-api-policy").inputs;
    expect(policy).toMatchObject({ apiId: "api", policyId: "policy", format: "xml" });
    const xml = String(policy["value"]);
    expect(xml).toContain('<rate-limit-by-key calls="90" renewal-period="30"');
    expect(xml).toContain('<rate-limit-by-key calls="20" renewal-period="30"');
    expect(xml).toContain(`<audience>${clientId}</audience>`);
    expect(xml).toContain(`/${tenantId}/v2.0/.well-known/openid-configuration`);
    expect(xml).toContain(`<authentication-managed-identity resource="${clientId}" client-id="client-id-of-${gatewayIdentity}" />`);
    expect(xml).toContain(`<origin>https://${names.dataStorageAccount}.z13.web.core.windows.net</origin>`);
  });

  it("sets the service-wide policy (responses and errors) on the service", () => {
    const policy = gatewayResource("service-policy");
    expect(policy.type).toBe("azure-native:apimanagement:Policy");
    expect(policy.inputs).toMatchObject({ policyId: "policy", format: "xml", serviceName: gatewayResource("service").inputs["serviceName"] });
    expect(String(policy.inputs["value"])).toContain("<on-error>");
  });
});

describe("logging", () => {
  it("sends to Application Insights with the gateway's identity: a connection string, no instrumentation key", () => {
    const logger = gatewayResource("logger").inputs;
    expect(logger).toMatchObject({
      loggerType: "applicationInsights",
      resourceId: named(stack, "monitoring-insights").id,
      credentials: { identityClientId: `client-id-of-${gatewayIdentity}`, connectionString: expect.stringContaining("IngestionEndpoint=") },
    });
    expect(Object.keys(logger["credentials"] as object).sort()).toEqual(["connectionString", "identityClientId"]);
  });

  it("grants that identity Monitoring Metrics Publisher on the component, before the logger exists", () => {
    const grant = named(stack, "monitoring-gateway-publish");
    expect(grant.inputs).toMatchObject({
      scope: named(stack, "monitoring-insights").id,
      principalId: `principal-id-of-${gatewayIdentity}`,
      principalType: "ServicePrincipal",
    });
    expect(String(grant.inputs["roleDefinitionId"]).endsWith(builtInRoles.monitoringMetricsPublisher)).toBe(true);
    expect(stack.dependencies.get("gateway-logger")?.some((urn) => urn.endsWith("::monitoring-gateway-publish"))).toBe(true);
  });

  it("logs every API with W3C trace context, errors always, no headers or bodies", () => {
    const diagnostic = gatewayResource("diagnostic").inputs;
    expect(diagnostic).toMatchObject({
      diagnosticId: "applicationinsights",
      loggerId: gatewayResource("logger").id,
      httpCorrelationProtocol: "W3C",
      alwaysLog: "allErrors",
      sampling: { samplingType: "fixed", percentage: 100 },
      logClientIp: false,
    });
    for (const side of ["frontend", "backend"]) {
      expect(diagnostic[side]).toEqual({ request: { headers: [], body: { bytes: 0 } }, response: { headers: [], body: { bytes: 0 } } });
    }
  });
});

describe("the api trusts only the gateway", () => {
  it("admits only the gateway's identity through App Service Authentication, anonymous routes excepted", () => {
    const auth = named(stack, "api-auth").inputs as Record<string, any>;
    expect(auth["globalValidation"]).toMatchObject({ requireAuthentication: true, unauthenticatedClientAction: "Return401", excludedPaths: anonymousPaths("api") });
    expect(auth["identityProviders"].azureActiveDirectory.validation).toEqual({
      allowedAudiences: [clientId, `api://${clientId}`],
      defaultAuthorizationPolicy: {
        allowedApplications: [`client-id-of-${gatewayIdentity}`],
        allowedPrincipals: { identities: [`principal-id-of-${gatewayIdentity}`] },
      },
    });
  });

  it("tells the api to take the user from the gateway, and drops the api's CORS (browsers call the gateway)", () => {
    const site = named(stack, "api-site").inputs["siteConfig"] as { appSettings: { name: string; value: string }[]; cors: { allowedOrigins: string[] } };
    expect(site.appSettings).toContainEqual({ name: "API_GATEWAY", value: "true" });
    expect(site.appSettings).toContainEqual({ name: "APP_SERVICE_AUTHENTICATION", value: "true" });
    expect(site.cors.allowedOrigins).toEqual([]);
    expect(ofType(stack, "azure-native:web:WebAppAuthSettingsV2")).toHaveLength(1);
  });
});

describe("the policy pack", () => {
  it("passes every mandatory rule with the gateway on (its rules judge each API Management resource)", async () => {
    const nameOf = (urn: string) => urn.slice(urn.lastIndexOf("::") + 2);
    const resources: ResourceUnderTest[] = [
      ...stack.resources.map((r) => ({ type: r.type, name: r.name, props: r.inputs, dependsOn: (stack.dependencies.get(r.name) ?? []).map(nameOf) })),
      { type: "pulumi:pulumi:Stack", name: `${projectName}-${stackName}`, props: outputs },
    ];
    const violations: string[] = [];
    const judged = new Set<string>();
    for (const policy of policies.filter((p) => p.enforcementLevel === "mandatory")) {
      if (isResourcePolicy(policy)) {
        for (const resource of resources) {
          const outcome = await evaluateResource(policy, resource);
          if (outcome.kind !== "not applicable") judged.add(`${policy.name} ${resource.type}`);
          if (outcome.kind === "violated") violations.push(`${policy.name} on ${resource.name}: ${outcome.messages.join(" ")}`);
        }
      } else if (isStackPolicy(policy)) {
        const outcome = await evaluateStack(policy, resources);
        if (outcome.kind === "violated") violations.push(`${policy.name}: ${outcome.messages.join(" ")}`);
      }
    }
    expect(violations).toEqual([]);
    for (const type of ["ApiManagementService", "Api", "ApiPolicy", "Policy", "Logger", "Diagnostic"]) {
      expect([...judged].some((entry) => entry.startsWith("apim-") && entry.endsWith(`azure-native:apimanagement:${type}`)), type).toBe(true);
    }
  });
});
