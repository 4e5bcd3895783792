/**
 * The local platform mirrors a deployed default stack: this builds the real Pulumi program under
 * mocks with the default configuration and checks that the local names, queue settings and app
 * settings are the ones the infrastructure gives Azure. A renamed queue, container or hub, a new
 * default, or a setting the contract gains fails here instead of drifting silently.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { getClientConfigOutput } from "@pulumi/azure-native/authorization";
import { connectionSettingNames, serviceNames } from "../../functions/src/settings.js";
import { parseConfig, projectName } from "../../infrastructure/config.js";
import { createPlatform } from "../../infrastructure/platform.js";
import { localSettingsFile, localSettingsFor } from "../../local/platform.js";
import { DUPLICATE_DETECTION_MINUTES, platformNames, stackDefaults } from "../../local/platform-defaults.js";
import { installMocks, named, ofType, settled, type MockedStack } from "../infrastructure/support/mocks.js";

let stack: MockedStack;
const defaults = stackDefaults();

beforeAll(async () => {
  stack = await installMocks("dev");
  createPlatform(parseConfig({}), { project: projectName, stack: "dev", client: getClientConfigOutput() });
  await settled(stack);
}, 60_000);

const appSettings = (service: string) =>
  new Map(((named(stack, `${service}-site`).inputs["siteConfig"] as { appSettings: { name: string; value: string }[] }).appSettings).map((s) => [s.name, s.value]));

describe("the local platform mirrors the default stack", () => {
  it("reads the same config defaults the program applies", () => {
    const config = parseConfig({});
    expect(defaults).toEqual({
      jobsQueueMaxDeliveryCount: config.jobsQueueMaxDeliveryCount,
      jobsQueueLockDurationSeconds: config.jobsQueueLockDurationSeconds,
      jobsQueueMessageTtlHours: config.jobsQueueMessageTtlHours,
      uploadMaxBytes: config.uploadMaxBytes,
      uploadUrlTtlSeconds: config.uploadUrlTtlSeconds,
    });
  });

  it("declares the jobs queue with the program's name and properties", () => {
    const queues = ofType(stack, "azure-native:servicebus:Queue");
    expect(queues).toHaveLength(1);
    expect(queues[0]!.inputs).toMatchObject({
      queueName: platformNames.jobsQueue,
      maxDeliveryCount: defaults.jobsQueueMaxDeliveryCount,
      lockDuration: `PT${defaults.jobsQueueLockDurationSeconds}S`,
      defaultMessageTimeToLive: `PT${defaults.jobsQueueMessageTtlHours}H`,
      deadLetteringOnMessageExpiration: true,
      requiresDuplicateDetection: true,
      duplicateDetectionHistoryTimeWindow: `PT${DUPLICATE_DETECTION_MINUTES}M`,
    });
  });

  it("uses the program's hub, database, container and blob container names", () => {
    expect(ofType(stack, "azure-native:webpubsub:WebPubSubHub").map((h) => h.inputs.hubName)).toEqual([platformNames.webPubSubHub]);
    expect(ofType(stack, "azure-native:cosmosdb:SqlResourceSqlDatabase").map((d) => d.inputs.databaseName)).toEqual([platformNames.cosmosDatabase]);
    expect(ofType(stack, "azure-native:cosmosdb:SqlResourceSqlContainer").map((c) => c.inputs.containerName)).toEqual([platformNames.jobsContainer]);
    expect(ofType(stack, "azure-native:storage:BlobContainer").map((c) => c.inputs.containerName)).toContain(platformNames.uploadsContainer);
  });

  it("gives each service every value setting Azure gets, with the same value, and a connection string for every connection", () => {
    const local = localSettingsFor({
      blob: { connectionString: "DefaultEndpointsProtocol=http;AccountName=a;AccountKey=a2V5;BlobEndpoint=http://127.0.0.1:1/a;" },
      cosmos: { connectionString: "AccountEndpoint=https://127.0.0.1:1/;AccountKey=a2V5;" },
      serviceBus: { connectionString: "Endpoint=sb://127.0.0.1:1;SharedAccessKeyName=k;SharedAccessKey=a2V5;UseDevelopmentEmulator=true;" },
      webPubSub: { connectionString: "Endpoint=http://127.0.0.1:1;AccessKey=a2V5;Version=1.0;" },
    });
    const compared = new Set<string>();
    for (const service of serviceNames) {
      const azure = appSettings(service);
      const connections = connectionSettingNames(service);
      for (const connection of connections) expect(local[service][connection], `${service}: ${connection}`).toMatch(/=/);
      for (const [name, value] of azure) {
        const isConnection = connections.some((c) => name.startsWith(`${c}__`));
        const isHostSetting = /^(AzureWebJobsStorage|FUNCTIONS_|APPLICATIONINSIGHTS_|WEBSITE_)/.test(name);
        if (isConnection || isHostSetting) continue;
        expect(local[service][name], `${service}: ${name}`).toBe(value);
        compared.add(name);
      }
    }
    // Guards the guard: the Azure side really carried the names and limits compared above.
    expect([...compared]).toEqual(expect.arrayContaining(["COSMOS_DATABASE_NAME", "COSMOS_JOBS_CONTAINER_NAME", "UPLOADS_CONTAINER_NAME", "WEBPUBSUB_HUB", "JOBS_QUEUE_NAME", "UPLOAD_MAX_BYTES", "UPLOAD_URL_TTL_SECONDS"]));
    expect(local.api.ALLOW_DEVELOPMENT_IDENTITY).toBe("true");
    expect(local.agent).not.toHaveProperty("ALLOW_DEVELOPMENT_IDENTITY");
  });

  it("writes a local.settings.json that Core Tools reads (node worker, settings in Values, port and CORS in Host)", () => {
    const file = localSettingsFile({ JOBS_QUEUE_NAME: "jobs" }, { storageConnectionString: "UseDevelopmentStorage=true", port: 7071, corsOrigins: ["http://127.0.0.1:4280"] });
    expect(file).toEqual({
      IsEncrypted: false,
      Values: { FUNCTIONS_WORKER_RUNTIME: "node", AzureWebJobsStorage: "UseDevelopmentStorage=true", JOBS_QUEUE_NAME: "jobs" },
      Host: { LocalHttpPort: 7071, CORS: "http://127.0.0.1:4280", CORSCredentials: false },
    });
  });
});
