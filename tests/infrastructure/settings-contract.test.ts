/**
 * The FunctionApp component derives an app's settings from its links and the stack configuration:
 * a connection setting exists only with the link that grants it, and an app gets exactly the links
 * its service declares.
 */
import { describe, expect, it } from "vitest";
import { defaultConfig } from "../../infrastructure/config";
import { assertLinksAsDeclared, functionAppSettings, type HostNeeds } from "../../infrastructure/components/function-app";
import type { Link } from "../../infrastructure/components/link";
import { linkKinds, type AnyLinkDeclaration } from "../../functions/src/platform/links";
import { declarationOf } from "../../functions/src/services";

const endpoints = {
  serviceBus: "bus.servicebus.windows.net",
  cosmos: "https://cosmos.documents.azure.com:443/",
  blob: "https://data.blob.core.windows.net/",
  webPubSub: "https://wps.webpubsub.azure.com",
};
/** A link as a component hands it out, granting nothing (grants are the components' tests). */
const linkFor = (declaration: AnyLinkDeclaration): Link => {
  const family = linkKinds[declaration.kind].family;
  return { declaration, family, endpoint: endpoints[family], grant: () => [] };
};
const host: HostNeeds = {
  storageBlobEndpoint: "https://host.blob.core.windows.net/",
  deploymentContainerUrl: "https://host.blob.core.windows.net/api-package",
  telemetryConnectionString: "InstrumentationKey=00000000-0000-0000-0000-000000000000;IngestionEndpoint=https://x/",
  grant: () => [],
};
const apiLinks = declarationOf("api").links.map(linkFor);

describe("the settings of a FunctionApp", () => {
  it("are the host's own, then one identity-based connection per linked service, then the declared settings", () => {
    const settings = new Map(functionAppSettings({ service: "api", host, links: apiLinks, config: defaultConfig }, "client-1").map((s) => [s.name, s.value]));
    expect(settings.get("AzureWebJobsStorage__blobServiceUri")).toBe(host.storageBlobEndpoint);
    expect(settings.get("AzureWebJobsStorage__clientId")).toBe("client-1");
    expect(settings.get("APPLICATIONINSIGHTS_CONNECTION_STRING")).toBe(host.telemetryConnectionString);
    expect(settings.get("ServiceBus__fullyQualifiedNamespace")).toBe(endpoints.serviceBus);
    expect(settings.get("ServiceBus__credential")).toBe("managedidentity");
    expect(settings.get("ServiceBus__clientId")).toBe("client-1");
    expect(settings.get("DataStorage__blobServiceUri")).toBe(endpoints.blob);
    expect(settings.get("UPLOAD_MAX_BYTES")).toBe(String(defaultConfig.uploadMaxBytes));
    expect(settings.has("ServiceBus")).toBe(false);
  });

  it("have no connection for a service the app does not link (a setting without its grant cannot be written)", () => {
    const withoutQueue = apiLinks.filter((link) => link.declaration.kind !== "queue");
    expect(() => functionAppSettings({ service: "api", host, links: withoutQueue, config: defaultConfig }, "client-1")).toThrow(/api: no endpoint for its serviceBus links/);
  });
});

describe("a FunctionApp's links", () => {
  it("must be exactly the ones its service declares", () => {
    expect(() => assertLinksAsDeclared("api", apiLinks)).not.toThrow();
    expect(() => assertLinksAsDeclared("api", apiLinks.slice(1))).toThrow(/api: links given \(.*\) differ from the registry's \(.*cosmosContainer jobs \(readWrite\)/);
    const receiving = apiLinks.map((link) => (link.declaration.kind === "queue" ? linkFor({ kind: "queue", name: "jobs", access: "receive" }) : link));
    expect(() => assertLinksAsDeclared("api", receiving)).toThrow(/queue jobs \(receive\)/);
  });
});
