/** Configuration validation (a pure function) and its agreement with Pulumi.yaml and the dev stack. */
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { ConfigError, configKeys, configSchema, parseConfig, projectName } from "../../infrastructure/config";

const project = parse(readFileSync("Pulumi.yaml", "utf8")) as {
  name: string;
  main: string;
  runtime: { name: string; options: { typescript: boolean } };
  config: Record<string, { type: string; description: string; default: unknown }>;
};
const devStack = parse(readFileSync("Pulumi.dev.yaml", "utf8")) as { config: Record<string, unknown> };
const prodStack = parse(readFileSync("Pulumi.prod.yaml", "utf8")) as { config: Record<string, unknown> };

/** A stack file's values without the project prefix, as the CLI hands them to the program (strings). */
const valuesOf = (stack: { config: Record<string, unknown> }) =>
  Object.fromEntries(
    Object.entries(stack.config).map(([key, value]) => {
      expect(key.startsWith(`${projectName}:`), key).toBe(true);
      return [key.slice(projectName.length + 1), String(value)];
    }),
  );

const errorOf = (raw: Record<string, unknown>): string => {
  try {
    parseConfig(raw);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as Error).message;
  }
  throw new Error(`expected ${JSON.stringify(raw)} to be rejected`);
};

describe("parseConfig", () => {
  it("applies the defaults to an empty configuration", () => {
    expect(parseConfig({})).toMatchObject({
      namePrefix: "plat",
      location: "eastus",
      functionMemoryMb: 2048,
      serviceBusSku: "Standard",
      webPubSubSku: "Standard_S1",
      apiAlwaysReadyInstances: 0,
      deployerPrincipalType: "User",
    });
    expect(parseConfig({}).authEntraClientId).toBeUndefined();
    expect(parseConfig({})).toMatchObject({ gatewayEnabled: false, gatewaySku: "BasicV2", gatewayUnits: 1, gatewayRateLimitPeriodSeconds: 60 });
  });

  it("turns the gateway on with the api's registration and a publisher email, reading the flag as Pulumi stores it", () => {
    const on = parseConfig({ gatewayEnabled: "true", authEntraClientId: "0f0f0f0f-1111-2222-3333-444444444444", gatewayPublisherEmail: "ops@example.com" });
    expect(on).toMatchObject({ gatewayEnabled: true, gatewayPublisherEmail: "ops@example.com" });
    expect(parseConfig({ gatewayEnabled: "false" }).gatewayEnabled).toBe(false);
    expect(parseConfig({ gatewayEnabled: true, authEntraClientId: "0f0f0f0f-1111-2222-3333-444444444444", gatewayPublisherEmail: "ops@example.com" }).gatewayEnabled).toBe(true);
  });

  it("gives a stack that says nothing (production) a Web PubSub SKU with an SLA, and a Service Bus tier with duplicate detection", () => {
    expect(parseConfig({}).webPubSubSku).toBe("Standard_S1"); // Free_F1 has no SLA (CKV_AZURE_175)
    expect(parseConfig({}).serviceBusSku).toBe("Standard");
  });

  it("accepts numbers as the strings Pulumi stores", () => {
    expect(parseConfig({ functionMemoryMb: "4096", blobSoftDeleteDays: "3" })).toMatchObject({ functionMemoryMb: 4096, blobSoftDeleteDays: 3 });
  });

  it("treats an empty string as not set (optional keys default to \"\" in Pulumi.yaml)", () => {
    const config = parseConfig({ externalProcessorUrl: "", authEntraClientId: "" });
    expect(config.externalProcessorUrl).toBeUndefined();
    expect(config.authEntraClientId).toBeUndefined();
  });

  const rejected: [string, Record<string, unknown>, string[]][] = [
    ["memory 512", { functionMemoryMb: "512" }, ["functionMemoryMb", "512", "2048, 4096"]],
    ["an unknown Service Bus SKU", { serviceBusSku: "Enterprise" }, ["serviceBusSku", "Enterprise", "Basic, Standard, Premium"]],
    ["an unknown Web PubSub SKU", { webPubSubSku: "Standard_S2" }, ["webPubSubSku", "Free_F1, Standard_S1, Premium_P1"]],
    ["a messaging unit count Azure refuses", { serviceBusSku: "Premium", serviceBusMessagingUnits: "3" }, ["serviceBusMessagingUnits", "1, 2, 4, 8, 16"]],
    ["messaging units on Standard", { serviceBusMessagingUnits: "2" }, ["serviceBusMessagingUnits", "Premium only"]],
    ["private networking with a Standard Service Bus", { privateNetworking: "true" }, ["privateNetworking", "serviceBusSku Premium", "now Standard", "private endpoints on Premium only"]],
    ["private networking with a Basic Service Bus", { privateNetworking: "true", serviceBusSku: "Basic" }, ["privateNetworking", "now Basic"]],
    ["private networking with Free Web PubSub", { privateNetworking: "true", serviceBusSku: "Premium", webPubSubSku: "Free_F1" }, ["privateNetworking", "Free_F1 cannot have one"]],
    ["zone redundancy with locally redundant storage", { zoneRedundant: "true", webPubSubSku: "Premium_P1" }, ["zoneRedundant", "Standard_ZRS, Standard_GZRS, Standard_RAGZRS", "now Standard_LRS"]],
    ["zone redundancy with Standard Web PubSub", { zoneRedundant: "true", storageSku: "Standard_ZRS" }, ["zoneRedundant", "Premium_P1", "now Standard_S1"]],
    ["a public address space", { virtualNetworkAddressSpace: "8.8.0.0/16" }, ["virtualNetworkAddressSpace", "private IPv4 network"]],
    ["an address space too small for subnets", { virtualNetworkAddressSpace: "10.0.0.0/25" }, ["virtualNetworkAddressSpace", "/16 to /24"]],
    ["an address space with host bits", { virtualNetworkAddressSpace: "10.0.0.5/24" }, ["virtualNetworkAddressSpace"]],
    ["a flag that is no boolean", { privateNetworking: "yes" }, ["privateNetworking", "true, false"]],
    ["an alert address that is no e-mail", { alertEmail: "ops" }, ["alertEmail", "e-mail address"]],
    ["an action group that is no resource ID", { alertActionGroupId: "my-group" }, ["alertActionGroupId", "/providers/Microsoft.Insights/actionGroups/"]],
    ["an unknown storage SKU", { storageSku: "Premium_LRS" }, ["storageSku", "Standard_LRS"]],
    ["soft delete for 0 days", { blobSoftDeleteDays: "0" }, ["blobSoftDeleteDays", "an integer from 1 to 365"]],
    ["a fractional count", { blobSoftDeleteDays: "2.5" }, ["blobSoftDeleteDays", "an integer from 1 to 365"]],
    ["a display-name location", { location: "West Europe" }, ["location", "West Europe", "westeurope"]],
    ["a bad location", { location: "mars-north" }, ["location", "eastus"]],
    ["a five-field cron schedule", { jobSweepSchedule: "*/5 * * * *" }, ["jobSweepSchedule", "six fields"]],
    ["re-sending jobs every second", { jobRequeueAfterSeconds: "1" }, ["jobRequeueAfterSeconds", "an integer from 5 to 86400"]],
    ["no request allowed at once", { apiMaxConcurrentRequests: "0" }, ["apiMaxConcurrentRequests", "an integer from 1 to 10000"]],
    ["an upload URL living over an hour", { uploadUrlTtlSeconds: "3601" }, ["uploadUrlTtlSeconds", "60 to 3600"]],
    ["too few maximum instances", { functionMaximumInstances: "10" }, ["functionMaximumInstances", "40 to 1000"]],
    ["retention below 30 days", { logRetentionDays: "7" }, ["logRetentionDays", "30 to 730"]],
    ["an uppercase prefix", { namePrefix: "Acme" }, ["namePrefix", "lowercase"]],
    ["a too long prefix", { namePrefix: "abcdefghijk" }, ["namePrefix", "2 to 10"]],
    ["an unknown consistency", { cosmosConsistency: "BoundedStaleness" }, ["cosmosConsistency", "Session, Eventual, ConsistentPrefix, Strong"]],
    ["an http processor URL", { externalProcessorUrl: "http://example.com" }, ["externalProcessorUrl", "https://"]],
    ["a non-GUID client ID", { authEntraClientId: "my-app" }, ["authEntraClientId", "GUID"]],
    ["an unknown principal type", { deployerPrincipalType: "Robot" }, ["deployerPrincipalType", "User, ServicePrincipal, Group"]],
    ["a Web PubSub unit count Azure refuses", { webPubSubUnits: "15" }, ["webPubSubUnits", "15", "1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 20, 30"]],
    ["Free_F1 with 2 units", { webPubSubSku: "Free_F1", webPubSubUnits: "2" }, ["webPubSubUnits", "Free_F1", "allowed values: 1"]],
    ["a web app registration without the api's", { authSpaClientId: "5a5a5a5a-1111-2222-3333-444444444444" }, ["authSpaClientId", "without authEntraClientId"]],
    [
      "creating registrations while naming existing ones",
      { authCreateAppRegistrations: "true", authEntraClientId: "0f0f0f0f-1111-2222-3333-444444444444" },
      ["authCreateAppRegistrations", "unset authEntraClientId and authSpaClientId"],
    ],
    ["a flag that is not a boolean", { authCreateAppRegistrations: "yes" }, ["authCreateAppRegistrations", "true, false"]],
    ["more always-ready than maximum instances", { apiAlwaysReadyInstances: "60", functionMaximumInstances: "50" }, ["apiAlwaysReadyInstances", "50"]],
    ["a misspelt key", { functionMemory: "2048" }, ["functionMemory", "not a setting", "functionMemoryMb"]],
    ["a gateway flag that is not a boolean", { gatewayEnabled: "yes" }, ["gatewayEnabled", "true, false"]],
    ["the Consumption gateway tier (no per-caller limits)", { gatewaySku: "Consumption" }, ["gatewaySku", "BasicV2, StandardV2"]],
    ["a rate-limit window over API Management's 300 s", { gatewayRateLimitPeriodSeconds: "600" }, ["gatewayRateLimitPeriodSeconds", "1 to 300"]],
    ["a gateway without the api's app registration", { gatewayEnabled: "true", gatewayPublisherEmail: "ops@example.com" }, ["gatewayEnabled", "authEntraClientId"]],
    ["a gateway without a publisher email", { gatewayEnabled: "true", authEntraClientId: "0f0f0f0f-1111-2222-3333-444444444444" }, ["gatewayPublisherEmail"]],
    ["a publisher email that is none", { gatewayPublisherEmail: "ops" }, ["gatewayPublisherEmail", "email"]],
  ];
  for (const [what, raw, mentions] of rejected) {
    it(`rejects ${what}, naming the key and the allowed values`, () => {
      const message = errorOf(raw);
      expect(message).toContain(`${projectName}:`);
      for (const text of mentions) expect(message).toContain(text);
    });
  }

  it("reports every problem at once", () => {
    const message = errorOf({ functionMemoryMb: "512", serviceBusSku: "Enterprise" });
    expect(message).toContain("functionMemoryMb");
    expect(message).toContain("serviceBusSku");
    const combinations = errorOf({ privateNetworking: "true", zoneRedundant: "true" });
    for (const part of ["serviceBusSku Premium", "zone-redundant storage", "webPubSubSku Premium_P1"]) expect(combinations).toContain(part);
  });

  it("accepts the combinations production needs, and parses flags and an action group ID", () => {
    const config = parseConfig({
      privateNetworking: "true",
      serviceBusSku: "Premium",
      serviceBusMessagingUnits: "2",
      zoneRedundant: "TRUE",
      storageSku: "Standard_GZRS",
      webPubSubSku: "Premium_P1",
      virtualNetworkAddressSpace: "172.20.4.0/22",
      alertActionGroupId: "/subscriptions/11111111-2222-3333-4444-555555555555/resourceGroups/ops/providers/microsoft.insights/actionGroups/on-call",
    });
    expect(config).toMatchObject({ privateNetworking: true, zoneRedundant: true, serviceBusMessagingUnits: 2, virtualNetworkAddressSpace: "172.20.4.0/22" });
    expect(parseConfig({}).privateNetworking).toBe(false);
    expect(parseConfig({ privateNetworking: false }).privateNetworking).toBe(false);
  });
});

describe("Pulumi.yaml", () => {
  it("runs the TypeScript program in infrastructure/ on the nodejs runtime under the project name the program uses", () => {
    expect(project.name).toBe(projectName);
    expect(project.runtime.name).toBe("nodejs");
    expect(project.main).toBe("infrastructure/index.ts");
  });

  it("declares every config key with a type, a description and the same default as the program", () => {
    expect(Object.keys(project.config).sort()).toEqual([...configKeys].sort());
    const defaults = parseConfig({});
    for (const key of configKeys) {
      const declared = project.config[key]!;
      expect(declared.description.length, key).toBeGreaterThan(20);
      const expectedType = typeof defaults[key] === "number" ? "integer" : typeof defaults[key] === "boolean" ? "boolean" : "string";
      expect(declared.type, key).toBe(expectedType);
      expect(declared.default ?? "", key).toEqual(defaults[key] ?? "");
    }
  });

  it("has a schema whose keys are exactly the documented ones", () => {
    expect(Object.keys(configSchema.shape).sort()).toEqual([...configKeys].sort());
  });
});

describe("Pulumi.dev.yaml", () => {
  it("is valid and the cheapest sensible stack: Basic bus, free Web PubSub, nothing always ready, minimum retention, public, no alerts", () => {
    expect(parseConfig(valuesOf(devStack))).toMatchObject({
      serviceBusSku: "Basic",
      webPubSubSku: "Free_F1",
      apiAlwaysReadyInstances: 0,
      functionMemoryMb: 2048,
      logRetentionDays: 30,
      storageSku: "Standard_LRS",
      privateNetworking: false,
      zoneRedundant: false,
      // The gateway has a monthly base fee: dev goes without it.
      gatewayEnabled: false,
    });
    expect(parseConfig(valuesOf(devStack)).alertEmail).toBeUndefined();
  });
});

describe("Pulumi.prod.yaml", () => {
  it("is valid and production-shaped: private, zone redundant, warm api, longer retention, alerts on", () => {
    const config = parseConfig(valuesOf(prodStack));
    expect(config).toMatchObject({
      privateNetworking: true,
      serviceBusSku: "Premium",
      zoneRedundant: true,
      storageSku: "Standard_ZRS",
      webPubSubSku: "Premium_P1",
      logRetentionDays: 90,
    });
    expect(config.apiAlwaysReadyInstances).toBeGreaterThanOrEqual(2);
    expect(config.alertEmail ?? config.alertActionGroupId).toBeTruthy();
  });
});
