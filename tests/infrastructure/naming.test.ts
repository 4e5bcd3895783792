/** The naming function: every name obeys its service's rules, and stacks never collide. */
import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { alertRuleName, GATEWAY_SUFFIX_LENGTH, gatewayServiceName, hostIdOf, nameRules, privateEndpointName, resourceNames, stackHash, type ResourceNames } from "../../infrastructure/naming";
import { serviceNamePattern } from "../../functions/src/platform/service-kinds";
import { serviceNames } from "../../functions/src/services";
import { deterministicGuid, roleDefinitionId, subscriptionOf } from "../../infrastructure/roles";

const subscription = "11111111-2222-3333-4444-555555555555";
const base = { prefix: "plat", project: "azure-serverless-platform", subscriptionId: subscription };

type Rule = { min: number; max: number; pattern: RegExp; forbiddenSuffixes?: readonly string[] };
const rulesOf = (names: ResourceNames): [string, string, Rule][] => [
  ["resourceGroup", names.resourceGroup, nameRules.resourceGroup],
  ["dataStorageAccount", names.dataStorageAccount, nameRules.storageAccount],
  ["hostStorageAccount", names.hostStorageAccount, nameRules.storageAccount],
  ["cosmosAccount", names.cosmosAccount, nameRules.cosmosAccount],
  ["serviceBusNamespace", names.serviceBusNamespace, nameRules.serviceBusNamespace],
  ["webPubSub", names.webPubSub, nameRules.webPubSub],
  ["logAnalyticsWorkspace", names.logAnalyticsWorkspace, nameRules.logAnalyticsWorkspace],
  ["applicationInsights", names.applicationInsights, nameRules.applicationInsights],
  ["virtualNetwork", names.virtualNetwork, nameRules.virtualNetwork],
  ["privateEndpoint", privateEndpointName(names.base, "host-blob"), nameRules.privateEndpoint],
  ["actionGroup", names.actionGroup, nameRules.actionGroup],
  ["actionGroupShortName", names.actionGroupShortName, nameRules.actionGroupShortName],
  ["alertsIdentity", names.alertsIdentity, nameRules.identity],
  ["alertRule", alertRuleName(names.base, "function-failures-agent"), nameRules.alertRule],
  // The longest suffix-completed gateway name, and the suffix's worst case: all digits.
  ["gateway.service", gatewayServiceName(names.gateway.servicePrefix, "9".repeat(GATEWAY_SUFFIX_LENGTH)), nameRules.apiManagement],
  ["gateway.identity", names.gateway.identity, nameRules.identity],
  ...serviceNames.flatMap((s): [string, string, Rule][] => [
    [`${s}.site`, names.apps[s].site, nameRules.site],
    [`${s}.plan`, names.apps[s].plan, nameRules.plan],
    [`${s}.identity`, names.apps[s].identity, nameRules.identity],
    [`${s}.deploymentContainer`, names.apps[s].deploymentContainer, nameRules.container],
  ]),
];
const globalNames = (n: ResourceNames) => [
  n.dataStorageAccount,
  n.hostStorageAccount,
  n.cosmosAccount,
  n.serviceBusNamespace,
  n.webPubSub,
  ...serviceNames.map((service) => n.apps[service].site),
];

const violations = (names: ResourceNames): string[] =>
  rulesOf(names).flatMap(([what, name, rule]) => {
    const problems: string[] = [];
    if (name.length < rule.min || name.length > rule.max) problems.push(`${what} "${name}" has ${name.length} characters, allowed ${rule.min}-${rule.max}`);
    if (!rule.pattern.test(name)) problems.push(`${what} "${name}" breaks ${rule.pattern}`);
    for (const suffix of rule.forbiddenSuffixes ?? []) if (name.endsWith(suffix)) problems.push(`${what} "${name}" ends with ${suffix}`);
    return problems;
  });

const prefixes = fc.stringMatching(/^[a-z][a-z0-9]{1,9}$/);
// Pulumi stack names: letters, digits, hyphens, underscores, dots; up to 100 characters.
const stacks = fc.stringMatching(/^[A-Za-z0-9._-]{1,100}$/);

describe("resourceNames", () => {
  it("gives readable names made of prefix, stack and hash", () => {
    const names = resourceNames({ ...base, stack: "dev" });
    const hash = stackHash({ ...base, stack: "dev" });
    expect(hash).toMatch(/^[a-z0-9]{6}$/);
    expect(names.resourceGroup).toBe(`rg-plat-dev-${hash}`);
    expect(names.cosmosAccount).toBe(`plat-dev-${hash}-cosmos`);
    expect(names.apps.api.site).toBe(`api-plat-dev-${hash}`);
    expect(names.dataStorageAccount).toBe(`platdev${hash}d`);
    expect(names.hostStorageAccount).toBe(`platdev${hash}h`);
  });

  it("obeys every service's length and character rules for any prefix and stack name", () => {
    fc.assert(
      fc.property(prefixes, stacks, (prefix, stack) => {
        expect(violations(resourceNames({ ...base, prefix, stack }))).toEqual([]);
      }),
      { numRuns: 300 },
    );
  });

  it("obeys them at the extremes: longest prefix with a long stack name full of separators", () => {
    expect(violations(resourceNames({ ...base, prefix: "abcdefghij", stack: "Feature_Branch.With-A-Very-Long-Name-1234567890-".repeat(2) }))).toEqual([]);
    expect(violations(resourceNames({ ...base, prefix: "ab", stack: "___" }))).toEqual([]);
  });

  it("never gives two stacks of one subscription the same global name", () => {
    fc.assert(
      fc.property(prefixes, stacks, stacks, (prefix, a, b) => {
        fc.pre(a !== b);
        const first = new Set(globalNames(resourceNames({ ...base, prefix, stack: a })));
        for (const name of globalNames(resourceNames({ ...base, prefix, stack: b }))) expect(first.has(name)).toBe(false);
      }),
      { numRuns: 300 },
    );
  });

  it("separates stacks whose names differ only beyond what fits (pr-1001 vs pr-1002 with a long prefix)", () => {
    const a = resourceNames({ ...base, prefix: "abcdefghij", stack: "pull-request-1001" });
    const b = resourceNames({ ...base, prefix: "abcdefghij", stack: "pull-request-1002" });
    expect(a.dataStorageAccount).not.toBe(b.dataStorageAccount);
    expect(a.resourceGroup).not.toBe(b.resourceGroup);
  });

  it("gives the same stack in another subscription other global names (no clash between two users' dev stacks)", () => {
    const mine = resourceNames({ ...base, stack: "dev" });
    const theirs = resourceNames({ ...base, stack: "dev", subscriptionId: "aaaaaaaa-2222-3333-4444-555555555555" });
    for (const name of globalNames(theirs)) expect(globalNames(mine)).not.toContain(name);
  });

  it("is deterministic", () => {
    expect(resourceNames({ ...base, stack: "prod" })).toEqual(resourceNames({ ...base, stack: "prod" }));
  });

  it("rejects a prefix that would break the rules", () => {
    expect(() => resourceNames({ ...base, prefix: "Plat", stack: "dev" })).toThrow(/lowercase/);
    expect(() => resourceNames({ ...base, prefix: "1plat", stack: "dev" })).toThrow(/starting with a letter/);
  });

  it("gives every app of a stack its own Functions host ID (they share one host storage account)", () => {
    fc.assert(
      fc.property(prefixes, stacks, (prefix, stack) => {
        const { apps } = resourceNames({ ...base, prefix, stack });
        const hostIds = serviceNames.map((service) => hostIdOf(apps[service].site));
        expect(new Set(hostIds).size).toBe(serviceNames.length);
      }),
      { numRuns: 300 },
    );
    // The review's collision: prefix "platform" and stack "pr-1234-uploads-ui" with <base>-<service> names.
    const { api, agent } = resourceNames({ ...base, prefix: "platform", stack: "pr-1234-uploads-ui" }).apps;
    expect(hostIdOf(api.site)).not.toBe(hostIdOf(agent.site));
  });

  it("keeps the host IDs of any two service names apart: `<service>-` differs within 32 characters", () => {
    const services = fc.stringMatching(serviceNamePattern);
    fc.assert(
      fc.property(services, services, prefixes, stacks, (a, b, prefix, stack) => {
        fc.pre(a !== b);
        const rest = resourceNames({ ...base, prefix, stack }).apps.api.site.slice("api".length);
        expect(hostIdOf(`${a}${rest}`)).not.toBe(hostIdOf(`${b}${rest}`));
      }),
      { numRuns: 500 },
    );
  });

  it("completes the gateway's name only with a suffix of the expected shape", () => {
    expect(gatewayServiceName("plat-dev-abc123-gw", "x7k2q9")).toBe("plat-dev-abc123-gw-x7k2q9");
    expect(() => gatewayServiceName("plat-dev-abc123-gw", "X7K2Q9")).toThrow(/6 lowercase letters or digits/);
    expect(() => gatewayServiceName("plat-dev-abc123-gw", "")).toThrow(/6 lowercase/);
  });

  it("keeps the Service Bus namespace clear of the reserved -sb and -mgmt endings", () => {
    expect(resourceNames({ ...base, stack: "sb" }).serviceBusNamespace.endsWith("-sb")).toBe(false);
    expect(violations(resourceNames({ ...base, stack: "mgmt" }))).toEqual([]);
  });
});

describe("role assignment names", () => {
  const scope = `/subscriptions/${subscription}/resourceGroups/rg/providers/Microsoft.ServiceBus/namespaces/ns/queues/jobs`;

  it("are GUIDs, stable for the same scope, role and principal", () => {
    const guid = deterministicGuid(scope, "role", "principal");
    expect(guid).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(deterministicGuid(scope, "role", "principal")).toBe(guid);
    expect(deterministicGuid(scope.toUpperCase(), "ROLE", "PRINCIPAL")).toBe(guid);
  });

  it("change when the scope, the role or the principal changes", () => {
    const guid = deterministicGuid(scope, "role", "principal");
    expect(deterministicGuid(`${scope}2`, "role", "principal")).not.toBe(guid);
    expect(deterministicGuid(scope, "role2", "principal")).not.toBe(guid);
    expect(deterministicGuid(scope, "role", "principal2")).not.toBe(guid);
  });

  it("role definitions live in the scope's subscription", () => {
    expect(subscriptionOf(scope)).toBe(subscription);
    expect(roleDefinitionId(scope, "serviceBusDataSender")).toBe(
      `/subscriptions/${subscription}/providers/Microsoft.Authorization/roleDefinitions/69a216fc-b8fb-44d8-bc22-1f3c2cd27a39`,
    );
    expect(() => subscriptionOf("not-an-id")).toThrow(/not an ARM resource ID/);
  });
});
