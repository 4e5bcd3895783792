/**
 * With authCreateAppRegistrations the program creates both Entra registrations and wires them
 * through: Easy Auth accepts only the web app's tokens for the api, and the web app's site is built
 * for Entra sign-in with them. Built under mocks (Entra itself cannot be reached here).
 */
import { beforeAll, describe, expect, it } from "vitest";
import { getClientConfigOutput } from "@pulumi/azure-native/authorization";
import { parseConfig, projectName } from "../../infrastructure/config";
import { LOCAL_WEB_ORIGIN, createPlatform, type Platform } from "../../infrastructure/platform";
import { DEFAULT_PORTS } from "../../local/platform";
import { installMocks, named, ofType, settled, valueOf, deployerObjectId, tenantId, type MockedStack } from "./support/mocks";

let stack: MockedStack;
let platform: Platform;

beforeAll(async () => {
  stack = await installMocks("dev");
  platform = createPlatform(parseConfig({ authCreateAppRegistrations: "true" }), { project: projectName, stack: "dev", client: getClientConfigOutput() });
  await valueOf(platform.site);
  await settled(stack);
});

const clientIdOf = (name: string) => String(named(stack, name).state["clientId"]);

describe("created app registrations", () => {
  it("registers the api with v2 tokens, its App ID URI and one user_impersonation scope, owned by the deployer", () => {
    const api = named(stack, "sign-in-api").inputs as { owners: string[]; api: { requestedAccessTokenVersion: number; oauth2PermissionScopes: { value: string; type: string; enabled: boolean; id: string }[] } };
    expect(api.owners).toEqual([deployerObjectId]);
    expect(api.api.requestedAccessTokenVersion).toBe(2);
    expect(api.api.oauth2PermissionScopes).toEqual([expect.objectContaining({ value: "user_impersonation", type: "User", enabled: true })]);
    expect(named(stack, "sign-in-api-uri").inputs).toMatchObject({ identifierUri: `api://${clientIdOf("sign-in-api")}` });
  });

  it("registers the web app as a single-page application for the site and the local platform, asking for the api's scope, pre-authorized", async () => {
    const web = named(stack, "sign-in-web").inputs as { singlePageApplication: { redirectUris: string[] }; web?: unknown; requiredResourceAccesses: unknown[] };
    const webOrigin = await valueOf(platform.storage.webOrigin);
    expect(web.singlePageApplication.redirectUris).toEqual([`${webOrigin}/redirect.html`, `${LOCAL_WEB_ORIGIN}/redirect.html`]);
    expect(web.web).toBeUndefined();
    const scopeId = (named(stack, "sign-in-api").inputs as { api: { oauth2PermissionScopes: { id: string }[] } }).api.oauth2PermissionScopes[0]!.id;
    expect(web.requiredResourceAccesses).toEqual([{ resourceAppId: clientIdOf("sign-in-api"), resourceAccesses: [{ id: scopeId, type: "Scope" }] }]);
    expect(named(stack, "sign-in-web-preauthorized").inputs).toMatchObject({ authorizedClientId: clientIdOf("sign-in-web"), permissionIds: [scopeId] });
    expect(ofType(stack, "azuread:index/servicePrincipal:ServicePrincipal").map((r) => r.inputs["clientId"]).sort()).toEqual(
      [clientIdOf("sign-in-api"), clientIdOf("sign-in-web")].sort(),
    );
  });

  it("puts Easy Auth in front of the api for the created api registration, accepting only the web app's tokens", () => {
    expect(named(stack, "api-auth").inputs).toMatchObject({
      identityProviders: {
        azureActiveDirectory: {
          registration: { clientId: clientIdOf("sign-in-api"), openIdIssuer: `https://login.microsoftonline.com/${tenantId}/v2.0` },
          validation: { defaultAuthorizationPolicy: { allowedApplications: [clientIdOf("sign-in-web")] } },
        },
      },
    });
    const settings = (named(stack, "api-site").inputs["siteConfig"] as { appSettings: { name: string; value: string }[] }).appSettings;
    expect(settings.find((s) => s.name === "APP_SERVICE_AUTHENTICATION")?.value).toBe("true");
  });

  it("builds the site for Entra sign-in with the created registrations", async () => {
    expect((await valueOf(platform.site)).auth).toEqual({ mode: "entra", tenantId, spaClientId: clientIdOf("sign-in-web"), apiClientId: clientIdOf("sign-in-api") });
  });

  it("uses the local platform's web origin for the local redirect URI", () => {
    expect(LOCAL_WEB_ORIGIN).toBe(`http://localhost:${DEFAULT_PORTS.web}`);
  });
});
