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
    ["an unknown Service Bus SKU", { serviceBusSku: "Premium" }, ["serviceBusSku", "Premium", "Basic, Standard"]],
    ["an unknown Web PubSub SKU", { webPubSubSku: "Standard_S2" }, ["webPubSubSku", "Free_F1, Standard_S1"]],
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
    ["more always-ready than maximum instances", { apiAlwaysReadyInstances: "60", functionMaximumInstances: "50" }, ["apiAlwaysReadyInstances", "50"]],
    ["a misspelt key", { functionMemory: "2048" }, ["functionMemory", "not a setting", "functionMemoryMb"]],
  ];
  for (const [what, raw, mentions] of rejected) {
    it(`rejects ${what}, naming the key and the allowed values`, () => {
      const message = errorOf(raw);
      expect(message).toContain(`${projectName}:`);
      for (const text of mentions) expect(message).toContain(text);
    });
  }

  it("reports every problem at once", () => {
    const message = errorOf({ functionMemoryMb: "512", serviceBusSku: "Premium" });
    expect(message).toContain("functionMemoryMb");
    expect(message).toContain("serviceBusSku");
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
      const expectedType = typeof defaults[key] === "number" ? "integer" : "string";
      expect(declared.type, key).toBe(expectedType);
      expect(declared.default ?? "", key).toEqual(defaults[key] ?? "");
    }
  });

  it("has a schema whose keys are exactly the documented ones", () => {
    expect(Object.keys(configSchema.shape).sort()).toEqual([...configKeys].sort());
  });
});

describe("Pulumi.dev.yaml", () => {
  const prefix = `${projectName}:`;
  const values = Object.fromEntries(
    Object.entries(devStack.config).map(([key, value]) => {
      expect(key.startsWith(prefix), key).toBe(true);
      return [key.slice(prefix.length), String(value)];
    }),
  );

  it("is valid and the cheapest sensible stack: Basic bus, free Web PubSub, nothing always ready, minimum retention", () => {
    expect(parseConfig(values)).toMatchObject({
      serviceBusSku: "Basic",
      webPubSubSku: "Free_F1",
      apiAlwaysReadyInstances: 0,
      functionMemoryMb: 2048,
      logRetentionDays: 30,
      storageSku: "Standard_LRS",
    });
  });
});
