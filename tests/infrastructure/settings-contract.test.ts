/**
 * The FunctionApp component takes the service's settings through the shared contract's types: a
 * missing, misspelt or local-only setting does not compile. The @ts-expect-error lines below are
 * checked by `npm run typecheck` (part of `npm test`): if one of them compiled, tsc would fail.
 */
import { describe, expect, it } from "vitest";
import type { FunctionAppArgs } from "../../infrastructure/components/function-app";
import { functionAppSettings } from "../../infrastructure/components/function-app";

type ApiSettings = FunctionAppArgs<"api">["settings"];
type AgentSettings = FunctionAppArgs<"agent">["settings"];

const shared = {
  Cosmos: "https://cosmos.documents.azure.com:443/",
  COSMOS_DATABASE_NAME: "platform",
  COSMOS_JOBS_CONTAINER_NAME: "jobs",
  UploadsStorage: "https://data.blob.core.windows.net/",
  UPLOADS_CONTAINER_NAME: "uploads",
  WebPubSub: "https://wps.webpubsub.azure.com",
  WEBPUBSUB_HUB: "jobs",
  ServiceBus: "bus.servicebus.windows.net",
  JOBS_QUEUE_NAME: "jobs",
};
const api: ApiSettings = { ...shared, UPLOAD_MAX_BYTES: "1024", UPLOAD_URL_TTL_SECONDS: "300", APP_SERVICE_AUTHENTICATION: "false" };
const agent: AgentSettings = { ...shared };

// @ts-expect-error UPLOAD_URL_TTL_SECONDS is missing: the api's code needs it.
const missing: ApiSettings = { ...shared, UPLOAD_MAX_BYTES: "1024" };
const misspelt: ApiSettings = {
  ...shared,
  UPLOAD_MAX_BYTES: "1024",
  UPLOAD_URL_TTL_SECONDS: "300",
  // @ts-expect-error UPLOAD_URL_TTL_SECOND is not a setting of the api (misspelt).
  UPLOAD_URL_TTL_SECOND: "300",
};
// @ts-expect-error ALLOW_DEVELOPMENT_IDENTITY is local-only and cannot reach Azure.
const localOnly: ApiSettings = { ...api, ALLOW_DEVELOPMENT_IDENTITY: "true" };
// @ts-expect-error UPLOAD_URL_TTL_SECONDS is an api setting, not an agent one.
const otherService: AgentSettings = { ...agent, UPLOAD_URL_TTL_SECONDS: "300" };

describe("the settings contract in the FunctionApp component", () => {
  it("turns a complete set into identity-based app settings for the app's own identity", () => {
    const settings = new Map(functionAppSettings("api", api, "https://host.blob.core.windows.net/", "client-1").map((s) => [s.name, s.value]));
    expect(settings.get("ServiceBus__fullyQualifiedNamespace")).toBe("bus.servicebus.windows.net");
    expect(settings.get("ServiceBus__credential")).toBe("managedidentity");
    expect(settings.get("ServiceBus__clientId")).toBe("client-1");
    expect(settings.get("AzureWebJobsStorage__clientId")).toBe("client-1");
    expect(settings.has("ServiceBus")).toBe(false);
  });

  it("fails naming the setting when a value is missing at run time too (e.g. through a cast)", () => {
    expect(() => functionAppSettings("api", missing, "https://host/", "client-1")).toThrow(/UPLOAD_URL_TTL_SECONDS has no value/);
    expect(() => functionAppSettings("api", misspelt, "https://host/", "client-1")).toThrow(/UPLOAD_URL_TTL_SECOND is not a setting/);
    expect(() => functionAppSettings("api", localOnly, "https://host/", "client-1")).toThrow(/local-only/);
    expect(() => functionAppSettings("agent", otherService, "https://host/", "client-1")).toThrow(/UPLOAD_URL_TTL_SECONDS is not a setting/);
  });
});
