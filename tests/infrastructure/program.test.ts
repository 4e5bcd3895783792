/**
 * The program entry (infrastructure/index.ts) as `pulumi up` runs it: configuration read from the
 * dev stack file, the deploying principal from getClientConfig, stack outputs exported. Loaded once,
 * after the mocks (a static import would build the resources before setMocks).
 */
import { readFileSync } from "node:fs";
import { beforeAll, describe, expect, it } from "vitest";
import * as pulumi from "@pulumi/pulumi";
import { parse } from "yaml";
import { ConfigError, projectName, readConfig } from "../../infrastructure/config";
import { installMocks, named, ofType, settled, valueOf, type MockedStack } from "./support/mocks";
import { findSecrets } from "./support/secrets";

const devConfig = Object.fromEntries(
  Object.entries((parse(readFileSync("Pulumi.dev.yaml", "utf8")) as { config: Record<string, unknown> }).config).map(([k, v]) => [
    k.slice(projectName.length + 1),
    String(v),
  ]),
);

let stack: MockedStack;
let outputs: Record<string, unknown>;

beforeAll(async () => {
  stack = await installMocks("dev", { ...devConfig, externalProcessorUrl: "https://analysis.example.com/v1" });
  const program = (await import("../../infrastructure/index.js")) as Record<string, pulumi.Input<unknown>>;
  outputs = (await valueOf(pulumi.output(program))) as Record<string, unknown>;
  await settled(stack);
  // The program builds every service's package and the web app; with an empty dist/ (a fresh clone)
  // that took 14 s of CPU here with three services, and each added service adds a bundle.
}, 120_000);

describe("the program with the dev stack", () => {
  it("exports the typed stack outputs, all resolved and free of secrets", () => {
    // Other steps (code deployment) may export more; these are the platform's.
    expect(Object.keys(outputs)).toEqual(
      expect.arrayContaining([
        "apiUrl",
        "appNames",
        "appUrls",
        "dataStorageAccountName",
        "deploymentContainerUrls",
        "hostStorageAccountName",
        "resourceGroupName",
        "webContainerName",
        "webPubSubEndpoint",
        "webUrl",
      ]),
    );
    // Sign-in is off in the dev stack: no api registration to name.
    expect(outputs["signInApiClientId"]).toBe("");
    for (const [key, value] of Object.entries(outputs)) if (key !== "signInApiClientId") expect(value, key).toBeTruthy();
    expect(findSecrets(outputs)).toEqual([]);
    expect(String(outputs["apiUrl"])).toMatch(/^https:\/\/api-plat-dev-[a-z0-9]{6}\.azurewebsites\.net$/);
  });

  it("asks Azure who is deploying (getClientConfig) to name resources and grant the deployer", () => {
    expect(stack.calls.some((c) => c.token === "azure-native:authorization:getClientConfig")).toBe(true);
  });

  it("uses Basic Service Bus without duplicate detection (the tier has none)", () => {
    expect(named(stack, "messaging-namespace").inputs).toMatchObject({ sku: { name: "Basic", tier: "Basic" } });
    const queue = named(stack, "messaging-jobs").inputs;
    expect(queue["requiresDuplicateDetection"]).toBe(false);
    expect(queue["duplicateDetectionHistoryTimeWindow"]).toBeUndefined();
    expect(queue["deadLetteringOnMessageExpiration"]).toBe(true);
  });

  it("uses free Web PubSub with exactly one unit", () => {
    expect(named(stack, "realtime-service").inputs).toMatchObject({ sku: { name: "Free_F1", tier: "Free", capacity: 1 } });
  });

  it("keeps nothing warm and caps scale-out at the dev maximum", () => {
    for (const site of ofType(stack, "azure-native:web:WebApp")) {
      expect(site.inputs, site.name).toMatchObject({ functionAppConfig: { scaleAndConcurrency: { alwaysReady: [], maximumInstanceCount: 40, instanceMemoryMB: 2048 } } });
    }
  });

  it("leaves App Service Authentication off when no Entra client ID is configured, and tells the api not to trust its headers", () => {
    expect(ofType(stack, "azure-native:web:WebAppAuthSettingsV2")).toEqual([]);
    const settings = (named(stack, "api-site").inputs["siteConfig"] as { appSettings: { name: string; value: string }[] }).appSettings;
    expect(settings).toContainEqual({ name: "APP_SERVICE_AUTHENTICATION", value: "false" });
  });

  it("stays as cheap as before: no network, no private endpoint or DNS zone, no Premium tier, no zone redundancy, no alerts", () => {
    const types = new Set(stack.resources.map((r) => r.type));
    for (const type of [
      "azure-native:network:VirtualNetwork",
      "azure-native:network:Subnet",
      "azure-native:network:PrivateEndpoint",
      "azure-native:network:PrivateDnsZoneGroup",
      "azure-native:privatedns:PrivateZone",
      "azure-native:privatedns:VirtualNetworkLink",
      "azure-native:monitor:ActionGroup",
      "azure-native:monitor:MetricAlert",
      "azure-native:monitor:ScheduledQueryRule",
      "azure-native:applicationinsights:Workbook",
    ]) {
      expect(types.has(type), type).toBe(false);
    }
    const skus = stack.resources.map((r) => JSON.stringify((r.inputs["sku"] as { name?: string; tier?: string } | undefined) ?? {}));
    expect(skus.filter((sku) => /Premium/i.test(sku))).toEqual([]);
    for (const plan of ofType(stack, "azure-native:web:AppServicePlan")) expect(plan.inputs["zoneRedundant"], plan.name).toBeUndefined();
    for (const site of ofType(stack, "azure-native:web:WebApp")) expect(site.inputs["virtualNetworkSubnetId"], site.name).toBeUndefined();
    expect(named(stack, "database-account").inputs).toMatchObject({ publicNetworkAccess: "Enabled", locations: [{ isZoneRedundant: false }] });
    expect(named(stack, "storage-host").inputs).toMatchObject({ publicNetworkAccess: "Enabled" });
    expect(named(stack, "storage-host").inputs["networkRuleSet"]).toBeUndefined();
    expect(named(stack, "realtime-service").inputs["networkACLs"]).toBeUndefined();
    // One identity per app, nothing for alerts.
    expect(ofType(stack, "azure-native:managedidentity:UserAssignedIdentity")).toHaveLength(2);
  });

  it("passes the configured external processor to the agent only", () => {
    const settingsOf = (name: string) => (named(stack, name).inputs["siteConfig"] as { appSettings: { name: string; value: string }[] }).appSettings;
    expect(settingsOf("agent-site")).toContainEqual({ name: "EXTERNAL_PROCESSOR_URL", value: "https://analysis.example.com/v1" });
    expect(settingsOf("api-site").some((s) => s.name === "EXTERNAL_PROCESSOR_URL")).toBe(false);
  });
});

describe("readConfig", () => {
  it("stops the program with a message naming the key and the allowed values", () => {
    pulumi.runtime.setAllConfig({ [`${projectName}:functionMemoryMb`]: "512", [`${projectName}:serviceBusSku`]: "Enterprise" });
    try {
      expect(() => readConfig()).toThrow(ConfigError);
      expect(() => readConfig()).toThrow(/functionMemoryMb = "512" is invalid; allowed values: 2048, 4096/);
      expect(() => readConfig()).toThrow(/serviceBusSku = "Enterprise" is invalid; allowed values: Basic, Standard, Premium/);
    } finally {
      pulumi.runtime.setAllConfig({});
    }
  });

  it("ignores other namespaces (provider settings) and rejects unknown keys of this project", () => {
    pulumi.runtime.setAllConfig({ "azure-native:location": "westeurope", [`${projectName}:namePrfix`]: "x" });
    try {
      expect(() => readConfig()).toThrow(/namePrfix is not a setting of this template/);
    } finally {
      pulumi.runtime.setAllConfig({});
    }
  });
});
