import { describe, expect, it } from "vitest";
import { azureAppSettings, loadSettings, SettingsError, type AzureSettingValues } from "../../functions/src/settings";

const agentAzure: AzureSettingValues<"agent"> = {
  Cosmos: "https://acct.documents.azure.com:443/",
  COSMOS_DATABASE_NAME: "app",
  COSMOS_JOBS_CONTAINER_NAME: "jobs",
  UploadsStorage: "https://acct.blob.core.windows.net",
  UPLOADS_CONTAINER_NAME: "uploads",
  WebPubSub: "https://wps.webpubsub.azure.com",
  WEBPUBSUB_HUB: "jobs",
  ServiceBus: "ns.servicebus.windows.net",
  JOBS_QUEUE_NAME: "jobs",
};

describe("settings contract", () => {
  it("turns connection settings into identity-based Azure app settings", () => {
    const settings = Object.fromEntries(azureAppSettings("agent", agentAzure).map((s) => [s.name, s.value]));
    expect(settings).toMatchObject({
      Cosmos__accountEndpoint: "https://acct.documents.azure.com:443/",
      UploadsStorage__blobServiceUri: "https://acct.blob.core.windows.net",
      WebPubSub__serviceUri: "https://wps.webpubsub.azure.com",
      ServiceBus__fullyQualifiedNamespace: "ns.servicebus.windows.net",
      JOBS_QUEUE_NAME: "jobs",
    });
    expect(Object.keys(settings)).not.toContain("ServiceBus");
    expect(Object.keys(settings)).not.toContain("EXTERNAL_PROCESSOR_URL");
  });

  it("adds credential and clientId for a user-assigned identity", () => {
    const names = azureAppSettings("agent", agentAzure, { clientId: "cid" }).map((s) => s.name);
    expect(names).toEqual(expect.arrayContaining(["ServiceBus__credential", "ServiceBus__clientId"]));
  });

  it("refuses local-only settings in Azure, at compile time and at run time", () => {
    const values = {
      ...agentAzure,
      UPLOAD_MAX_BYTES: "1",
      UPLOAD_URL_TTL_SECONDS: "300",
      APP_SERVICE_AUTHENTICATION: "false",
      // @ts-expect-error ALLOW_DEVELOPMENT_IDENTITY is local-only: the Azure type has no room for it
      ALLOW_DEVELOPMENT_IDENTITY: "true",
    } satisfies Partial<AzureSettingValues<"api">>;
    expect(() => azureAppSettings("api", values as never)).toThrow(/local-only/);
  });

  it("does not compile when a setting is missing or misspelled", () => {
    // @ts-expect-error JOBS_QUEUE_NAME is missing
    const missing: AzureSettingValues<"agent"> = { ...agentAzure, JOBS_QUEUE_NAME: undefined };
    expect(() => azureAppSettings("agent", missing)).toThrow(/JOBS_QUEUE_NAME has no value/);
    // @ts-expect-error JOBS_QUEUE is not a setting
    const misspelled: AzureSettingValues<"agent"> = { ...agentAzure, JOBS_QUEUE: "jobs" };
    expect(() => azureAppSettings("agent", misspelled)).toThrow(/JOBS_QUEUE is not a setting/);
  });

  it("loads identity and connection-string shapes and parses values", () => {
    const settings = loadSettings("api", {
      Cosmos__accountEndpoint: "https://acct.documents.azure.com:443/",
      COSMOS_DATABASE_NAME: "app",
      COSMOS_JOBS_CONTAINER_NAME: "jobs",
      UploadsStorage: "UseDevelopmentStorage=true",
      UPLOADS_CONTAINER_NAME: "uploads",
      WebPubSub__serviceUri: "https://wps.webpubsub.azure.com",
      WebPubSub__clientId: "cid",
      WEBPUBSUB_HUB: "jobs",
      ServiceBus__fullyQualifiedNamespace: "ns.servicebus.windows.net",
      JOBS_QUEUE_NAME: "jobs",
      UPLOAD_MAX_BYTES: "1048576",
      UPLOAD_URL_TTL_SECONDS: "600",
      APP_SERVICE_AUTHENTICATION: "true",
      ALLOW_DEVELOPMENT_IDENTITY: "true",
    });
    expect(settings.Cosmos).toEqual({ mode: "identity", endpoint: "https://acct.documents.azure.com:443/" });
    expect(settings.UploadsStorage).toEqual({ mode: "connectionString", connectionString: "UseDevelopmentStorage=true" });
    expect(settings.WebPubSub).toEqual({ mode: "identity", endpoint: "https://wps.webpubsub.azure.com", clientId: "cid" });
    expect(settings.UPLOAD_MAX_BYTES).toBe(1048576);
    expect(settings.ALLOW_DEVELOPMENT_IDENTITY).toBe(true);
    expect(settings.APPLICATIONINSIGHTS_CONNECTION_STRING).toBeUndefined();
  });

  it("names every missing and malformed setting at once", () => {
    let error: unknown;
    try {
      loadSettings("api", { UPLOAD_MAX_BYTES: "lots", COSMOS_DATABASE_NAME: "app" });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(SettingsError);
    const message = (error as Error).message;
    expect(message).toMatch(/Cosmos is missing: set Cosmos__accountEndpoint .* or Cosmos \(connection string/);
    expect(message).toMatch(/UPLOAD_MAX_BYTES must be an integer from 1 to 268435456 \(got "lots"\)/);
    expect(message).toMatch(/JOBS_QUEUE_NAME is missing/);
    expect(message).not.toMatch(/COSMOS_DATABASE_NAME/);
    expect(message).not.toMatch(/ALLOW_DEVELOPMENT_IDENTITY/);
  });
});
