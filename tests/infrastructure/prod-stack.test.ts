/**
 * The platform built under mocks with the checked-in production stack (Pulumi.prod.yaml): the
 * private topology (network, a subnet per service, private endpoints with their DNS zone groups and
 * linked zones), public access off on every data service but the documented ones, zone redundancy,
 * and alerts wired to the action group with a keyless identity. Built with createPlatform (the
 * program minus code deployment), so it stays quick; tests/policy/program.test.ts runs the whole
 * program with this stack file against the policy pack.
 */
import { readFileSync } from "node:fs";
import { beforeAll, describe, expect, it } from "vitest";
import * as pulumi from "@pulumi/pulumi";
import { getClientConfigOutput } from "@pulumi/azure-native/authorization";
import { parse } from "yaml";
import { resources } from "../../functions/src/resources";
import { declarationOf, serviceNames } from "../../functions/src/services";
import { parseConfig, projectName, type PlatformConfig } from "../../infrastructure/config";
import { createPlatform, type Platform } from "../../infrastructure/platform";
import { alertRuleName, privateEndpointName, resourceNames, type ResourceNames } from "../../infrastructure/naming";
import { planSubnets, privateLinkServices, publicWithPrivateNetworking } from "../../infrastructure/private-networking";
import { privateServerAccessAcls } from "../../infrastructure/components/realtime";
import { Alerts } from "../../infrastructure/components/alerts";
import { builtInRoles } from "../../infrastructure/roles";
import { installMocks, named, ofType, settled, subscriptionId, type MockedStack, type RecordedResource } from "./support/mocks";
import { registered } from "./support/tree";

const stackName = "prod";
const raw = Object.fromEntries(
  Object.entries((parse(readFileSync("Pulumi.prod.yaml", "utf8")) as { config: Record<string, unknown> }).config).map(([k, v]) => [k.slice(projectName.length + 1), String(v)]),
);
const config: PlatformConfig = parseConfig(raw);
const names: ResourceNames = resourceNames({ prefix: config.namePrefix, project: projectName, stack: stackName, subscriptionId });
const queues = Object.keys(resources.queues);
const existingActionGroup = `/subscriptions/${subscriptionId}/resourceGroups/ops/providers/Microsoft.Insights/actionGroups/on-call`;

let stack: MockedStack;
let platform: Platform;
/** URN by logical name, to read recorded dependencies. */
let urnOf: (name: string) => string;

beforeAll(async () => {
  stack = await installMocks(stackName, raw);
  platform = createPlatform(config, { project: projectName, stack: stackName, client: getClientConfigOutput() });
  // The same component with an existing action group only (alertActionGroupId without alertEmail).
  const existingOnly = new Alerts("alerts-existing", {
    resourceGroupName: "rg",
    location: config.location,
    existingActionGroupIds: [existingActionGroup],
    workspaceId: platform.monitoring.workspace.id,
    identityName: "alerts-existing-id",
    metricTargets: { serviceBusNamespace: platform.messaging.namespace.id, cosmosAccount: platform.database.account.id },
    metricAlerts: [],
    logAlerts: [{ key: "probe", description: "d", severity: 3, query: "AppRequests", timeAggregation: "Count", operator: "GreaterThan", threshold: 0, windowSize: "PT15M", evaluationFrequency: "PT15M" }],
    ruleName: (key) => `existing-${key}`,
  });
  const urns = await registered([platform.resourceGroup, platform.storage, platform.database, platform.messaging, platform.realtime, platform.monitoring, platform.network!, platform.alerts!, ...Object.values(platform.apps), existingOnly]);
  await settled(stack);
  const byName = new Map(urns.map((urn) => [urn.split("::").pop()!, urn]));
  urnOf = (name) => byName.get(name) ?? `(no ${name})`;
});

const dependsOn = (dependent: string, dependency: string) => (stack.dependencies.get(dependent) ?? []).includes(urnOf(dependency));
const inputs = <T = Record<string, unknown>>(name: string) => named(stack, name).inputs as T;

describe("the production stack's resources", () => {
  it("has, by kind, what the registry and resources.ts call for", () => {
    const counts: Record<string, number> = {};
    for (const r of stack.resources.filter((r) => !r.name.startsWith("alerts-existing"))) counts[r.type] = (counts[r.type] ?? 0) + 1;
    const httpServices = serviceNames.filter((s) => declarationOf(s).http !== undefined).length;
    expect(counts).toMatchObject({
      "azure-native:network:VirtualNetwork": 1,
      "azure-native:network:Subnet": 1 + serviceNames.length,
      "azure-native:network:PrivateEndpoint": 4,
      "azure-native:network:PrivateDnsZoneGroup": 4,
      "azure-native:privatedns:PrivateZone": 4,
      "azure-native:privatedns:VirtualNetworkLink": 4,
      "azure-native:monitor:ActionGroup": 1,
      "azure-native:monitor:MetricAlert": 2 * queues.length + 1,
      "azure-native:monitor:ScheduledQueryRule": httpServices + serviceNames.length + 1,
      "azure-native:applicationinsights:Workbook": 1,
      // One per app, the alert rules' and the API gateway's.
      "azure-native:managedidentity:UserAssignedIdentity": serviceNames.length + 2,
      "azure-native:web:WebApp": serviceNames.length,
    });
  });
});

describe("private networking", () => {
  const plan = planSubnets(config.virtualNetworkAddressSpace, serviceNames);

  it("a network with the configured address space, a private-endpoint subnet and one delegated /27 per service, created one after another", () => {
    expect(inputs("network-vnet")).toMatchObject({ virtualNetworkName: names.virtualNetwork, addressSpace: { addressPrefixes: [config.virtualNetworkAddressSpace] } });
    expect(inputs("network-private-endpoints-subnet")).toMatchObject({ subnetName: plan.privateEndpoints.name, addressPrefix: plan.privateEndpoints.addressPrefix, privateEndpointNetworkPolicies: "Disabled" });
    expect(inputs("network-private-endpoints-subnet")["delegations"]).toBeUndefined();
    let previous = "network-private-endpoints-subnet";
    for (const service of serviceNames) {
      const subnet = `network-app-${service}-subnet`;
      expect(inputs(subnet)).toMatchObject({
        subnetName: plan.apps[service]!.name,
        addressPrefix: plan.apps[service]!.addressPrefix,
        delegations: [{ serviceName: "Microsoft.App/environments" }],
      });
      expect(plan.apps[service]!.addressPrefix.endsWith("/27")).toBe(true);
      expect(dependsOn(subnet, previous), `${subnet} waits for ${previous}`).toBe(true);
      previous = subnet;
    }
  });

  it("each app sends its traffic through its own subnet and starts only once the endpoints and DNS are in place", () => {
    const subnetIds = new Set<string>();
    for (const service of serviceNames) {
      const site = `${service}-site`;
      const subnetId = inputs(site)["virtualNetworkSubnetId"];
      expect(subnetId).toBe(named(stack, `network-app-${service}-subnet`).id);
      subnetIds.add(String(subnetId));
      expect(inputs(site)["vnetRouteAllEnabled"]).toBeUndefined();
      for (const dependency of [...ofType(stack, "azure-native:network:PrivateEndpoint"), ...ofType(stack, "azure-native:network:PrivateDnsZoneGroup"), ...ofType(stack, "azure-native:privatedns:VirtualNetworkLink")]) {
        expect(dependsOn(site, dependency.name), `${site} waits for ${dependency.name}`).toBe(true);
      }
    }
    expect(subnetIds.size).toBe(serviceNames.length);
  });

  const expectedEndpoints: [string, string, keyof typeof privateLinkServices][] = [
    ["host-blob", "storage-host", "blob"],
    ["cosmos", "database-account", "cosmosSql"],
    ["servicebus", "messaging-namespace", "serviceBus"],
    ["webpubsub", "realtime-service", "webPubSub"],
  ];
  for (const [key, target, service] of expectedEndpoints) {
    it(`${key}: a private endpoint in the endpoint subnet to ${target} (group ${privateLinkServices[service].groupId}), with a DNS zone group on ${privateLinkServices[service].dnsZone}, linked to the network`, () => {
      const endpoint = named(stack, `network-${key}-endpoint`);
      expect(endpoint.inputs).toMatchObject({
        privateEndpointName: privateEndpointName(names.base, key),
        location: config.location,
        subnet: { id: named(stack, "network-private-endpoints-subnet").id },
        privateLinkServiceConnections: [{ privateLinkServiceId: named(stack, target).id, groupIds: [privateLinkServices[service].groupId] }],
      });
      const zone = ofType(stack, "azure-native:privatedns:PrivateZone").find((z) => z.inputs["privateZoneName"] === privateLinkServices[service].dnsZone);
      expect(zone, privateLinkServices[service].dnsZone).toBeDefined();
      expect(zone!.inputs["location"]).toBe("global");
      expect(inputs(`network-${key}-dns`)).toMatchObject({
        privateEndpointName: privateEndpointName(names.base, key),
        privateDnsZoneConfigs: [{ privateDnsZoneId: zone!.id }],
      });
      const link = ofType(stack, "azure-native:privatedns:VirtualNetworkLink").find((l) => l.inputs["privateZoneName"] === privateLinkServices[service].dnsZone);
      expect(link?.inputs).toMatchObject({ virtualNetwork: { id: named(stack, "network-vnet").id }, registrationEnabled: false, location: "global" });
    });
  }

  it("no endpoint for the data account, and no queue or table endpoint for the host account (HTTP and Service Bus triggers use neither)", () => {
    const groups = ofType(stack, "azure-native:network:PrivateEndpoint").flatMap((e) => (e.inputs["privateLinkServiceConnections"] as { groupIds: string[]; privateLinkServiceId: string }[]));
    expect(groups.some((g) => g.privateLinkServiceId === named(stack, "storage-data").id)).toBe(false);
    expect(groups.flatMap((g) => g.groupIds).filter((g) => g === "queue" || g === "table")).toEqual([]);
  });
});

describe("what stays public", () => {
  const dataServices = ["azure-native:storage:StorageAccount", "azure-native:cosmosdb:DatabaseAccount", "azure-native:servicebus:Namespace", "azure-native:webpubsub:WebPubSub"];

  it("no data service accepts public traffic apart from the documented data account and Web PubSub's client connections", () => {
    const open = dataServices.flatMap((type) => ofType(stack, type)).filter((r) => r.inputs["publicNetworkAccess"] !== "Disabled");
    expect(open.map((r) => r.name).sort()).toEqual(["realtime-service", "storage-data"]);
    const documented = publicWithPrivateNetworking.map((entry) => entry.what).join("\n");
    expect(documented).toMatch(/data storage account/);
    expect(documented).toMatch(/Web PubSub's client endpoint/);
  });

  it("the host account also denies by firewall with no trusted-service bypass; Cosmos and Service Bus refuse public networks", () => {
    expect(inputs("storage-host")).toMatchObject({ publicNetworkAccess: "Disabled", networkRuleSet: { defaultAction: "Deny", bypass: "None" }, allowSharedKeyAccess: false });
    expect(inputs("database-account")).toMatchObject({ publicNetworkAccess: "Disabled", disableLocalAuth: true });
    expect(inputs("messaging-namespace")).toMatchObject({ publicNetworkAccess: "Disabled", sku: { name: "Premium", tier: "Premium", capacity: config.serviceBusMessagingUnits } });
  });

  it("Web PubSub takes only client connections from the internet; REST, server connections and live trace go private", () => {
    const acls = inputs<{ networkACLs: { defaultAction: string; publicNetwork: { allow: string[]; deny: string[] } } }>("realtime-service").networkACLs;
    expect(acls).toEqual({ defaultAction: privateServerAccessAcls.defaultAction, publicNetwork: { allow: ["ClientConnection"], deny: ["RESTAPI", "ServerConnection", "Trace"] } });
    expect(inputs("realtime-service")).toMatchObject({ publicNetworkAccess: "Enabled", disableLocalAuth: true });
  });

  it("the Function Apps keep their public endpoints (the api for browsers, scm for deployment)", () => {
    for (const site of ofType(stack, "azure-native:web:WebApp")) expect(site.inputs["publicNetworkAccess"], site.name).toBeUndefined();
  });
});

describe("zone redundancy", () => {
  it("zone-redundant Flex plans, Cosmos DB region, Web PubSub Premium and ZRS storage", () => {
    for (const plan of ofType(stack, "azure-native:web:AppServicePlan")) expect(plan.inputs["zoneRedundant"], plan.name).toBe(true);
    expect(inputs("database-account")).toMatchObject({ locations: [{ locationName: config.location, isZoneRedundant: true }] });
    expect(inputs("realtime-service")).toMatchObject({ sku: { name: "Premium_P1", tier: "Premium" } });
    for (const account of ofType(stack, "azure-native:storage:StorageAccount")) expect(account.inputs["sku"], account.name).toEqual({ name: "Standard_ZRS" });
  });

  it("warm api instances; nothing warm by configuration on services without HTTP", () => {
    expect(inputs("api-site")).toMatchObject({ functionAppConfig: { scaleAndConcurrency: { alwaysReady: [{ name: "http", instanceCount: config.apiAlwaysReadyInstances }] } } });
    expect(inputs("agent-site")).toMatchObject({ functionAppConfig: { scaleAndConcurrency: { alwaysReady: [] } } });
  });
});

describe("alerts", () => {
  const rules = () => [...ofType(stack, "azure-native:monitor:MetricAlert"), ...ofType(stack, "azure-native:monitor:ScheduledQueryRule")].filter((r) => r.name.startsWith("alerts-") && !r.name.startsWith("alerts-existing"));
  const actionGroupsOf = (rule: RecordedResource): string[] =>
    rule.type === "azure-native:monitor:MetricAlert"
      ? (rule.inputs["actions"] as { actionGroupId: string }[]).map((a) => a.actionGroupId)
      : (rule.inputs["actions"] as { actionGroups: string[] }).actionGroups;

  it("an action group e-mailing the configured address with the common alert schema", () => {
    expect(inputs("alerts-action-group")).toMatchObject({
      actionGroupName: names.actionGroup,
      groupShortName: names.actionGroupShortName,
      location: "global",
      enabled: true,
      emailReceivers: [{ emailAddress: config.alertEmail, useCommonAlertSchema: true }],
    });
    expect(names.actionGroupShortName.length).toBeLessThanOrEqual(12);
  });

  it("every rule notifies exactly that action group, and is named after the stack", () => {
    expect(rules().length).toBeGreaterThan(0);
    for (const rule of rules()) {
      expect(actionGroupsOf(rule), rule.name).toEqual([named(stack, "alerts-action-group").id]);
      expect(rule.inputs["ruleName"], rule.name).toBe(alertRuleName(names.base, rule.name.slice("alerts-".length)));
      expect(rule.inputs["enabled"], rule.name).toBe(true);
    }
  });

  it("metric alerts watch each queue on the namespace and throttling on the Cosmos account", () => {
    for (const queue of queues) {
      for (const key of [`dead-letters-${queue}`, `backlog-${queue}`]) {
        expect(inputs(`alerts-${key}`)).toMatchObject({
          scopes: [named(stack, "messaging-namespace").id],
          criteria: { odataType: "Microsoft.Azure.Monitor.SingleResourceMultipleMetricCriteria", allOf: [{ dimensions: [{ name: "EntityName", operator: "Include", values: [queue] }] }] },
        });
      }
    }
    expect(inputs("alerts-cosmos-throttling")).toMatchObject({ scopes: [named(stack, "database-account").id], criteria: { allOf: [{ metricName: "TotalRequests" }] } });
  });

  it("log alerts query the workspace with their own identity, which may only read the workspace, granted before they exist", () => {
    const identity = named(stack, "alerts-identity");
    const workspace = named(stack, "monitoring-logs");
    const logRules = ofType(stack, "azure-native:monitor:ScheduledQueryRule").filter((r) => !r.name.startsWith("alerts-existing"));
    for (const rule of logRules) {
      expect(rule.inputs, rule.name).toMatchObject({ kind: "LogAlert", scopes: [workspace.id], identity: { type: "UserAssigned", userAssignedIdentities: [identity.id] } });
      expect(dependsOn(rule.name, "alerts-workspace-read"), `${rule.name} waits for its grant`).toBe(true);
      expect(dependsOn(rule.name, "alerts-entra-replication-wait"), `${rule.name} waits for Entra`).toBe(true);
    }
    const grants = ofType(stack, "azure-native:authorization:RoleAssignment").filter((g) => g.inputs["principalId"] === `principal-id-of-${names.alertsIdentity}`);
    expect(grants.map((g) => [String(g.inputs["roleDefinitionId"]).split("/").pop(), g.inputs["scope"], g.inputs["principalType"]])).toEqual([
      [builtInRoles.reader, workspace.id, "ServicePrincipal"],
    ]);
  });

  it("the 5xx and failure queries name the apps' real site names", () => {
    for (const service of serviceNames) {
      expect(inputs<{ criteria: { allOf: { query: string }[] } }>(`alerts-function-failures-${service}`).criteria.allOf[0]!.query).toContain(`"${names.apps[service].site}"`);
    }
  });

  it("a workbook over the workspace whose tiles point at this stack's namespace, account and workspace", () => {
    const workbook = inputs<{ serializedData: string; kind: string; category: string; sourceId: string; resourceName: string }>("alerts-workbook");
    expect(workbook).toMatchObject({ kind: "shared", category: "workbook", sourceId: named(stack, "monitoring-logs").id });
    expect(workbook.resourceName).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    const data = JSON.parse(workbook.serializedData) as { items: { content: { resourceIds?: string[] } }[] };
    const resourceIds = data.items.flatMap((i) => i.content.resourceIds ?? []);
    expect(resourceIds).toContain(named(stack, "messaging-namespace").id);
    expect(resourceIds).toContain(named(stack, "database-account").id);
  });

  it("with only an existing action group, creates none and sends every rule there", () => {
    expect(stack.resources.some((r) => r.name === "alerts-existing-action-group")).toBe(false);
    expect(inputs<{ actions: { actionGroups: string[] } }>("alerts-existing-probe").actions.actionGroups).toEqual([existingActionGroup]);
    const nowhere = { resourceGroupName: "rg", location: config.location, workspaceId: "w", identityName: "i", metricTargets: { serviceBusNamespace: "s", cosmosAccount: "c" }, metricAlerts: [], logAlerts: [], ruleName: (key: string) => key };
    expect(() => new Alerts("alerts-nowhere", nowhere)).toThrow(/need an action group/);
  });
});

it("resolves every output of the production platform", async () => {
  const outputs = await new Promise<Record<string, unknown>>((resolve) => pulumi.output(platform.outputs).apply((o) => resolve(o as Record<string, unknown>)));
  for (const [key, value] of Object.entries(outputs)) expect(value, key).toBeTruthy();
});
