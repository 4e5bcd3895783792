/**
 * The settings contract derived from the registry: links become connection settings (identity-based
 * in Azure, connection strings locally), declared settings take their values from the stack
 * configuration, and the loader names everything missing or malformed. The @ts-expect-error lines
 * are checked by `npm run typecheck`: if one of them compiled, tsc would fail.
 */
import { concurrentJobsFor } from "../../functions/src/agent/capacity.js";
import { describe, expect, it } from "vitest";
import { defaultConfig, parseConfig } from "../../infrastructure/config";
import { linksTo } from "../../functions/src/platform/links";
import { defineServices } from "../../functions/src/platform/service-kinds";
import { resources } from "../../functions/src/resources";
import { azureAppSettings, linkedFamilies, loadSettings, localAppSettings, SettingsError } from "../../functions/src/settings";

const endpoints = {
  cosmos: "https://acct.documents.azure.com:443/",
  blob: "https://acct.blob.core.windows.net",
  webPubSub: "https://wps.webpubsub.azure.com",
  serviceBus: "ns.servicebus.windows.net",
};
const asMap = (settings: { name: string; value: unknown }[]) => Object.fromEntries(settings.map((s) => [s.name, s.value]));

describe("settings in Azure", () => {
  it("turns each linked Azure service into one identity-based connection, named by its family", () => {
    expect(linkedFamilies("agent")).toEqual(["cosmos", "serviceBus", "blob", "webPubSub"]);
    const settings = asMap(azureAppSettings("agent", { endpoints, config: defaultConfig }));
    expect(settings).toMatchObject({
      Cosmos__accountEndpoint: endpoints.cosmos,
      DataStorage__blobServiceUri: endpoints.blob,
      WebPubSub__serviceUri: endpoints.webPubSub,
      ServiceBus__fullyQualifiedNamespace: endpoints.serviceBus,
    });
    expect(Object.keys(settings)).not.toContain("ServiceBus");
  });

  it("adds credential and clientId for a user-assigned identity", () => {
    const names = azureAppSettings("agent", { endpoints, config: defaultConfig, identityClientId: "cid" }).map((s) => s.name);
    expect(names).toEqual(expect.arrayContaining(["ServiceBus__credential", "ServiceBus__clientId", "Cosmos__clientId", "DataStorage__clientId", "WebPubSub__clientId"]));
  });

  it("takes declared settings from the stack configuration, leaves out unset optional ones and never sends local-only ones", () => {
    const config = parseConfig({ uploadMaxBytes: "2048", uploadUrlTtlSeconds: "120", authEntraClientId: "0f0f0f0f-1111-2222-3333-444444444444" });
    const api = asMap(azureAppSettings("api", { endpoints, config }));
    expect(api).toMatchObject({ UPLOAD_MAX_BYTES: "2048", UPLOAD_URL_TTL_SECONDS: "120", APP_SERVICE_AUTHENTICATION: "true" });
    expect(api).not.toHaveProperty("ALLOW_DEVELOPMENT_IDENTITY");
    expect(asMap(azureAppSettings("api", { endpoints, config: defaultConfig }))).toMatchObject({ APP_SERVICE_AUTHENTICATION: "false" });
    const agent = asMap(azureAppSettings("agent", { endpoints, config: defaultConfig }));
    expect(agent).not.toHaveProperty("EXTERNAL_PROCESSOR_URL");
    expect(asMap(azureAppSettings("agent", { endpoints, config: parseConfig({ externalProcessorUrl: "https://x.example/analyse" }) }))).toMatchObject({
      EXTERNAL_PROCESSOR_URL: "https://x.example/analyse",
    });
  });

  it("tells the Functions host the api's request limit and the agent's concurrency for the instance memory", () => {
    expect(asMap(azureAppSettings("api", { endpoints, config: defaultConfig }))).toMatchObject({ FUNCTIONS_REQUEST_BODY_SIZE_LIMIT: "1048576" });
    const agentAt = (functionMemoryMb: string) =>
      asMap(azureAppSettings("agent", { endpoints, config: parseConfig({ functionMemoryMb }) })).AzureFunctionsJobHost__extensions__serviceBus__maxConcurrentCalls;
    expect(agentAt("2048")).toBe("16");
    expect(agentAt("4096")).toBe("16");
    // Smaller instances get fewer concurrent jobs, each within its memory budget; never none.
    expect(concurrentJobsFor(768)).toBe(5);
    expect(concurrentJobsFor(512)).toBe(1);
    expect(asMap(azureAppSettings("agent", { endpoints, config: defaultConfig }))).not.toHaveProperty("FUNCTIONS_REQUEST_BODY_SIZE_LIMIT");
  });

  it("fails naming the service's family when a linked service has no endpoint, and a required setting whose config key is unset", () => {
    const { blob: _blob, ...withoutBlob } = endpoints;
    expect(() => azureAppSettings("agent", { endpoints: withoutBlob, config: defaultConfig })).toThrow(/agent: no endpoint for its blob links/);
    const unset = { ...defaultConfig, uploadUrlTtlSeconds: undefined } as unknown as typeof defaultConfig;
    expect(() => azureAppSettings("api", { endpoints, config: unset })).toThrow(/api: setting UPLOAD_URL_TTL_SECONDS has no value \(stack config uploadUrlTtlSeconds is not set\)/);
  });
});

describe("settings on the local platform", () => {
  it("gives connection strings for the linked services and the configuration's defaults or the declared local value", () => {
    const connectionStrings = { cosmos: "c", blob: "b", webPubSub: "w", serviceBus: "s" };
    expect(localAppSettings("api", { connectionStrings, config: defaultConfig })).toEqual({
      Cosmos: "c",
      ServiceBus: "s",
      DataStorage: "b",
      WebPubSub: "w",
      UPLOAD_MAX_BYTES: String(defaultConfig.uploadMaxBytes),
      UPLOAD_URL_TTL_SECONDS: String(defaultConfig.uploadUrlTtlSeconds),
      QUOTA_UPLOAD_URLS_PER_HOUR: String(defaultConfig.quotaUploadUrlsPerHour),
      QUOTA_JOBS_PER_HOUR: String(defaultConfig.quotaJobsPerHour),
      QUOTA_JOBS_IN_FLIGHT: String(defaultConfig.quotaJobsInFlight),
      APP_SERVICE_AUTHENTICATION: "false",
      // No gateway on the local platform: the web app calls the local api directly.
      API_GATEWAY: "false",
      JOB_SWEEP_SCHEDULE: defaultConfig.jobSweepSchedule,
      JOB_REQUEUE_AFTER_SECONDS: String(defaultConfig.jobRequeueAfterSeconds),
      MAX_CONCURRENT_REQUESTS: String(defaultConfig.apiMaxConcurrentRequests),
      ALLOW_DEVELOPMENT_IDENTITY: "true",
      // The host's own settings, as in Azure: the local host honours them.
      FUNCTIONS_REQUEST_BODY_SIZE_LIMIT: "1048576",
    });
    expect(localAppSettings("agent", { connectionStrings, config: defaultConfig })).toMatchObject({
      AzureFunctionsJobHost__extensions__serviceBus__maxConcurrentCalls: "16",
    });
  });
});

describe("loadSettings", () => {
  it("loads identity and connection-string shapes and parses values", () => {
    const settings = loadSettings("api", {
      Cosmos__accountEndpoint: "https://acct.documents.azure.com:443/",
      DataStorage: "UseDevelopmentStorage=true",
      WebPubSub__serviceUri: "https://wps.webpubsub.azure.com",
      WebPubSub__clientId: "cid",
      ServiceBus__fullyQualifiedNamespace: "ns.servicebus.windows.net",
      UPLOAD_MAX_BYTES: "1048576",
      UPLOAD_URL_TTL_SECONDS: "600",
      QUOTA_UPLOAD_URLS_PER_HOUR: "60",
      QUOTA_JOBS_PER_HOUR: "120",
      QUOTA_JOBS_IN_FLIGHT: "10",
      APP_SERVICE_AUTHENTICATION: "true",
      API_GATEWAY: "true",
      JOB_SWEEP_SCHEDULE: "0 */5 * * * *",
      JOB_REQUEUE_AFTER_SECONDS: "120",
      MAX_CONCURRENT_REQUESTS: "64",
      ALLOW_DEVELOPMENT_IDENTITY: "true",
    });
    expect(settings.API_GATEWAY).toBe(true);
    expect(settings.JOB_SWEEP_SCHEDULE).toBe("0 */5 * * * *");
    expect(settings.JOB_REQUEUE_AFTER_SECONDS).toBe(120);
    expect(settings.MAX_CONCURRENT_REQUESTS).toBe(64);
    expect(settings.Cosmos).toEqual({ mode: "identity", endpoint: "https://acct.documents.azure.com:443/" });
    expect(settings.DataStorage).toEqual({ mode: "connectionString", connectionString: "UseDevelopmentStorage=true" });
    expect(settings.WebPubSub).toEqual({ mode: "identity", endpoint: "https://wps.webpubsub.azure.com", clientId: "cid" });
    expect(settings.UPLOAD_MAX_BYTES).toBe(1048576);
    expect(settings.ALLOW_DEVELOPMENT_IDENTITY).toBe(true);
    expect(settings.APPLICATIONINSIGHTS_CONNECTION_STRING).toBeUndefined();
  });

  it("names every missing and malformed setting at once, and the links a missing connection serves", () => {
    let error: unknown;
    try {
      loadSettings("api", { UPLOAD_MAX_BYTES: "lots", Cosmos: "AccountEndpoint=x;", JOB_SWEEP_SCHEDULE: "*/5 * * * *" });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(SettingsError);
    const message = (error as Error).message;
    expect(message).toMatch(/ServiceBus is missing: set ServiceBus__fullyQualifiedNamespace \(managed identity\) or ServiceBus \(connection string, local only\) — the connection for queue jobs/);
    expect(message).toMatch(/UPLOAD_MAX_BYTES must be an integer from 1 to 268435456 \(got "lots"\)/);
    expect(message).toMatch(/UPLOAD_URL_TTL_SECONDS is missing/);
    expect(message).toMatch(/JOB_SWEEP_SCHEDULE must be an NCRONTAB expression with six fields/);
    expect(message).not.toMatch(/Cosmos is missing/);
    expect(message).not.toMatch(/ALLOW_DEVELOPMENT_IDENTITY/);
  });
});

describe("what does not compile", () => {
  it("a setting another service declares, a link to an undeclared resource or an access level it does not offer", () => {
    const read = () => {
      const agent = loadSettings("agent", {});
      // @ts-expect-error UPLOAD_URL_TTL_SECONDS is an api setting, not an agent one.
      return agent.UPLOAD_URL_TTL_SECONDS;
    };
    expect(read).toThrow(SettingsError);
    const link = linksTo(resources);
    // @ts-expect-error no queue "emails" is declared in resources.ts
    expect(link.queue("emails", "send")).toMatchObject({ name: "emails" });
    // @ts-expect-error a queue is linked for send or receive, not publish
    expect(link.queue("jobs", "publish")).toMatchObject({ access: "publish" });
  });

  it("a setting read from a config key that does not exist, or an Azure setting with no source", () => {
    const make = () =>
      defineServices({
        // @ts-expect-error uploadMaxByte is not a config key (misspelt)
        one: { description: "x", links: [], settings: { A: { description: "a", from: { config: "uploadMaxByte" } } } },
      });
    expect(make).not.toThrow();
    const noSource = () =>
      defineServices({
        // @ts-expect-error a setting needs a source (a config key) or must be local-only
        two: { description: "x", links: [], settings: { B: { description: "b" } } },
      });
    expect(noSource).not.toThrow();
  });

  it("refuses at run time what the types cannot see: bad service names, reserved names, two services on one local port", () => {
    expect(() => defineServices({ "Bad-Name": { description: "x", links: [], settings: {} } })).toThrow(/service name "Bad-Name" must be 2 to 16 lowercase/);
    expect(() => defineServices({ shared: { description: "x", links: [], settings: {} } })).toThrow(/service name "shared" is reserved/);
    expect(() => defineServices({ web: { description: "x", links: [], settings: {} } })).toThrow(/service name "web" is reserved/);
    expect(() =>
      defineServices({
        one: { description: "x", http: { localPort: 7071 }, links: [], settings: {} },
        two: { description: "x", http: { localPort: 7071 }, links: [], settings: {} },
      }),
    ).toThrow(/services "one" and "two" both use local port 7071/);
  });
});
