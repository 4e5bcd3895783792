/**
 * The local platform mirrors a deployed default stack: this builds the real Pulumi program under
 * mocks with the default configuration and checks that the emulators' queues, hubs, database and
 * containers, and each service's app settings, are the ones the infrastructure gives Azure. Both
 * sides derive them from the same declarations (resources.ts, services.ts); this catches a side
 * that stops doing so.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { getClientConfigOutput } from "@pulumi/azure-native/authorization";
import { connectionFamilies } from "../../functions/src/platform/links.js";
import { resources } from "../../functions/src/resources.js";
import { serviceNames } from "../../functions/src/services.js";
import { linkedFamilies } from "../../functions/src/settings.js";
import { parseConfig, projectName } from "../../infrastructure/config.js";
import { createPlatform } from "../../infrastructure/platform.js";
import { emulatorQueues, hubNames } from "../../local/app-resources.js";
import { localSettingsFile, localSettingsFor } from "../../local/platform.js";
import { installMocks, named, ofType, settled, type MockedStack } from "../infrastructure/support/mocks.js";

let stack: MockedStack;

beforeAll(async () => {
  stack = await installMocks("dev");
  createPlatform(parseConfig({}), { project: projectName, stack: "dev", client: getClientConfigOutput() });
  await settled(stack);
}, 60_000);

const appSettings = (service: string) =>
  new Map(((named(stack, `${service}-site`).inputs["siteConfig"] as { appSettings: { name: string; value: string }[] }).appSettings).map((s) => [s.name, s.value]));

describe("the local platform mirrors the default stack", () => {
  it("declares every queue with the program's name and properties", () => {
    const azure = ofType(stack, "azure-native:servicebus:Queue").map((q) => q.inputs);
    const local = emulatorQueues(resources, parseConfig({}).serviceBusSku);
    expect(local.map((q) => q.name).sort()).toEqual(azure.map((q) => q["queueName"]).sort());
    for (const queue of local) {
      expect(azure.find((q) => q["queueName"] === queue.name)).toMatchObject({
        maxDeliveryCount: queue.maxDeliveryCount,
        lockDuration: `PT${queue.lockDurationMs! / 1000}S`,
        defaultMessageTimeToLive: `PT${queue.defaultMessageTtlMs! / 3_600_000}H`,
        deadLetteringOnMessageExpiration: queue.deadLetteringOnMessageExpiration,
        requiresDuplicateDetection: queue.requiresDuplicateDetection,
        duplicateDetectionHistoryTimeWindow: `PT${queue.duplicateDetectionWindowMs! / 60_000}M`,
        requiresSession: queue.requiresSession,
      });
    }
  });

  it("follows the tier: a Basic stack's queues have no duplicate detection, in Azure or locally", () => {
    for (const queue of emulatorQueues(resources, "Basic")) {
      expect(queue.requiresDuplicateDetection).toBeUndefined();
      expect(queue.duplicateDetectionWindowMs).toBeUndefined();
    }
    expect(emulatorQueues(resources, "Standard").every((queue) => queue.requiresDuplicateDetection === true)).toBe(true);
    // Local overrides change only what they name, and only for declared queues.
    const [jobs] = emulatorQueues(resources, "Standard", { jobs: { lockDurationSeconds: 5 } });
    expect(jobs).toMatchObject({ name: "jobs", lockDurationMs: 5_000, maxDeliveryCount: resources.queues.jobs.maxDeliveryCount });
    expect(() => emulatorQueues(resources, "Standard", { nope: {} })).toThrow(/"nope", which resources.ts does not declare/);
  });

  it("uses the program's hub, database, container and blob container names", () => {
    expect(ofType(stack, "azure-native:webpubsub:WebPubSubHub").map((h) => h.inputs["hubName"])).toEqual(hubNames(resources));
    expect(ofType(stack, "azure-native:cosmosdb:SqlResourceSqlDatabase").map((d) => d.inputs["databaseName"])).toEqual([resources.cosmos.database]);
    expect(ofType(stack, "azure-native:cosmosdb:SqlResourceSqlContainer").map((c) => c.inputs["containerName"])).toEqual(Object.keys(resources.cosmos.containers));
    const blobContainers = ofType(stack, "azure-native:storage:BlobContainer").map((c) => c.inputs["containerName"]);
    for (const name of Object.keys(resources.blobContainers)) expect(blobContainers).toContain(name);
  });

  it("gives each service every value setting Azure gets, with the same value, and a connection string for every linked service", () => {
    const local = localSettingsFor({
      blob: "DefaultEndpointsProtocol=http;AccountName=a;AccountKey=a2V5;BlobEndpoint=http://127.0.0.1:1/a;",
      cosmos: "AccountEndpoint=https://127.0.0.1:1/;AccountKey=a2V5;",
      serviceBus: "Endpoint=sb://127.0.0.1:1;SharedAccessKeyName=k;SharedAccessKey=a2V5;UseDevelopmentEmulator=true;",
      webPubSub: "Endpoint=http://127.0.0.1:1;AccessKey=a2V5;Version=1.0;",
    });
    const compared = new Set<string>();
    for (const service of serviceNames) {
      const azure = appSettings(service);
      const connections = linkedFamilies(service).map((family) => connectionFamilies[family].setting);
      for (const connection of connections) {
        expect(local[service][connection], `${service}: ${connection}`).toMatch(/=/);
        expect([...azure.keys()].some((name) => name.startsWith(`${connection}__`)), `${service}: ${connection} in Azure`).toBe(true);
      }
      for (const [name, value] of azure) {
        const isConnection = connections.some((c) => name.startsWith(`${c}__`));
        const isHostSetting = /^(AzureWebJobsStorage|FUNCTIONS_|APPLICATIONINSIGHTS_|WEBSITE_)/.test(name);
        if (isConnection || isHostSetting) continue;
        expect(local[service][name], `${service}: ${name}`).toBe(value);
        compared.add(name);
      }
    }
    // Guards the guard: the Azure side really carried the settings compared above.
    expect([...compared]).toEqual(expect.arrayContaining(["UPLOAD_MAX_BYTES", "UPLOAD_URL_TTL_SECONDS", "APP_SERVICE_AUTHENTICATION"]));
    expect(local.api.ALLOW_DEVELOPMENT_IDENTITY).toBe("true");
    expect(local.agent).not.toHaveProperty("ALLOW_DEVELOPMENT_IDENTITY");
  });

  it("writes a local.settings.json that Core Tools reads (node worker, settings in Values, port and CORS in Host)", () => {
    const file = localSettingsFile({ UPLOAD_MAX_BYTES: "1024" }, { storageConnectionString: "UseDevelopmentStorage=true", port: 7071, corsOrigins: ["http://127.0.0.1:4280"] });
    expect(file).toEqual({
      // Core Tools ignores members it does not know; people reading the file see it is local only.
      $comment: expect.stringMatching(/^Local only: .*Never publish it to Azure/),
      IsEncrypted: false,
      Values: { FUNCTIONS_WORKER_RUNTIME: "node", AzureWebJobsStorage: "UseDevelopmentStorage=true", UPLOAD_MAX_BYTES: "1024" },
      Host: { LocalHttpPort: 7071, CORS: "http://127.0.0.1:4280", CORSCredentials: false },
    });
  });
});
