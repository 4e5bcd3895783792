/**
 * The production wiring (clients.ts) from each settings shape, without any network: identity-based
 * settings (Azure) sign uploads with user-delegation keys and never accept the development
 * identity; connection strings (local platform) sign with the account key.
 */
import { describe, expect, it } from "vitest";
import { createApiDependencies, uploadSigningFor } from "../../functions/src/api/clients.js";
import { loadSettings, SettingsError } from "../../functions/src/settings.js";

const common = {
  UPLOAD_MAX_BYTES: "1048576",
  UPLOAD_URL_TTL_SECONDS: "600",
  QUOTA_UPLOAD_URLS_PER_HOUR: "60",
  QUOTA_JOBS_PER_HOUR: "120",
  QUOTA_JOBS_IN_FLIGHT: "10",
  APP_SERVICE_AUTHENTICATION: "true",
  API_GATEWAY: "false",
  JOB_SWEEP_SCHEDULE: "0 * * * * *",
  JOB_REQUEUE_AFTER_SECONDS: "300",
  MAX_CONCURRENT_REQUESTS: "100",
};

/** Identity-based connections, as the infrastructure writes them for the api in Azure. */
const identityConnections = {
  Cosmos__accountEndpoint: "https://acct.documents.azure.com:443/",
  Cosmos__clientId: "00000000-0000-0000-0000-000000000001",
  DataStorage__blobServiceUri: "https://acct.blob.core.windows.net",
  DataStorage__clientId: "00000000-0000-0000-0000-000000000001",
  ServiceBus__fullyQualifiedNamespace: "ns.servicebus.windows.net",
  ServiceBus__clientId: "00000000-0000-0000-0000-000000000001",
  WebPubSub__serviceUri: "https://wps.webpubsub.azure.com",
  WebPubSub__clientId: "00000000-0000-0000-0000-000000000001",
};

describe("createApiDependencies", () => {
  it("uses managed identity and user-delegation SAS for identity-based settings", async () => {
    const deps = await createApiDependencies({ ...common, ...identityConnections });
    // Blob Storage is created on the first upload request (which here would call Azure): the decision is checked on its own.
    expect(uploadSigningFor(loadSettings("api", { ...common, ...identityConnections }).DataStorage)).toBe("userDelegation");
    expect(deps.identity.allowDevelopmentIdentity).toBe(false);
    expect(deps.identity.trustAppServiceAuthentication).toBe(true);
    expect(deps.identity.behindGateway).toBe(false);
    expect(deps.uploadMaxBytes).toBe(1048576);
    expect(deps.uploadUrlTtlSeconds).toBe(600);
    await deps.queue.close();
  });

  it("signs with the account key for a local connection string, and honours ALLOW_DEVELOPMENT_IDENTITY", async () => {
    const deps = await createApiDependencies({
      ...common,
      Cosmos: "AccountEndpoint=https://127.0.0.1:8081/;AccountKey=a2V5;",
      DataStorage: "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=a2V5;BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1;",
      ServiceBus: "Endpoint=sb://127.0.0.1:5672;SharedAccessKeyName=k;SharedAccessKey=a2V5;UseDevelopmentEmulator=true;",
      WebPubSub: "Endpoint=http://127.0.0.1:8080;AccessKey=a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5;Version=1.0;",
      ALLOW_DEVELOPMENT_IDENTITY: "true",
    });
    // A service SAS signed with the account key: made without any call to the storage account.
    const issued = await deps.uploads.issueUploadUrl("user-1", 1024, 600);
    const sas = new URL(issued.uploadUrl).searchParams;
    expect([sas.get("sp"), sas.has("sig"), sas.has("skoid")]).toEqual(["c", true, false]);
    expect(deps.identity.allowDevelopmentIdentity).toBe(true);
    await deps.queue.close();
  });

  it.each([
    ["Flex Consumption's own variables", { WEBSITE_SKU: "FlexConsumption", CONTAINER_NAME: "c1", WEBSITE_SITE_NAME: "api-app" }],
    ["App Service's instance id", { WEBSITE_INSTANCE_ID: "0123abcd" }],
    ["a managed-identity connection", { ServiceBus__credential: "managedidentity" }],
  ])("refuses to start with the development identity allowed where Azure runs it (%s; abuse review F5)", async (_where, azure) => {
    const attempt = createApiDependencies({ ...common, ...identityConnections, ...azure, ALLOW_DEVELOPMENT_IDENTITY: "true" });
    await expect(attempt).rejects.toThrow(SettingsError);
    await expect(attempt).rejects.toThrow(/ALLOW_DEVELOPMENT_IDENTITY is a local-only setting, but Azure runs this app/);
  });

  it("fails naming every missing setting", async () => {
    await expect(createApiDependencies({ UPLOAD_MAX_BYTES: "1024" })).rejects.toThrow(SettingsError);
    await expect(createApiDependencies({ UPLOAD_MAX_BYTES: "1024" })).rejects.toThrow(/ServiceBus is missing[\s\S]*DataStorage is missing[\s\S]*UPLOAD_URL_TTL_SECONDS is missing/);
  });
});
