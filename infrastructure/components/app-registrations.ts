import * as pulumi from "@pulumi/pulumi";
import * as azuread from "@pulumi/azuread";
import { deterministicGuid } from "../roles";
import { transformed, type Transform } from "./transform";

export interface AppRegistrationsArgs {
  /** Display-name prefix of both registrations, e.g. `plat-dev`: they show as `<prefix> api` and `<prefix> web`. */
  readonly displayNamePrefix: pulumi.Input<string>;
  /** The web app's origin, e.g. `https://<account>.z13.web.core.windows.net`: its redirect bridge page is a redirect URI. */
  readonly webOrigin: pulumi.Input<string>;
  /**
   * Further origins the web app signs in from (the local platform's), each with its `/redirect.html`.
   * @default []
   */
  readonly extraWebOrigins?: readonly string[];
  /**
   * Object IDs of the registrations' owners (the deployer, so the stack can update and delete them).
   * @default []
   */
  readonly owners?: pulumi.Input<pulumi.Input<string>[]>;
  /**
   * The delegated scope the api exposes and the web app asks for.
   * @default "user_impersonation"
   */
  readonly scope?: string;
  /**
   * Changes to either registration's arguments (see transform.ts).
   * @default no changes
   */
  readonly transform?: {
    /** Changes to the api's registration. @default unchanged */
    readonly api?: Transform<azuread.ApplicationArgs>;
    /** Changes to the web app's registration. @default unchanged */
    readonly web?: Transform<azuread.ApplicationArgs>;
  };
}

/** The redirect URI MSAL 5 uses: the bridge page beside index.html (web/redirect.html). */
export function redirectUriFor(origin: string): string {
  return `${origin.replace(/\/+$/, "")}/redirect.html`;
}

/**
 * The two Entra app registrations sign-in needs, for users allowed to register applications
 * (config authCreateAppRegistrations):
 *
 * - the api: App ID URI `api://<client id>`, one delegated scope, v2 access tokens (App Service
 *   Authentication validates against the v2 issuer, which accepts only v2 tokens);
 * - the web app: a single-page application (its redirect URIs under `singlePageApplication`, not `web`: Entra refuses
 *   a cross-origin token redemption for a web redirect URI, AADSTS9002326), asking for the api's
 *   scope, which the api pre-authorizes (users are not asked to consent).
 *
 * No secret exists: the api validates bearer tokens, the web app is a public client using PKCE.
 */
export class AppRegistrations extends pulumi.ComponentResource {
  readonly api: azuread.Application;
  readonly web: azuread.Application;
  /** The api's application (client) ID: the audience of the web app's tokens. */
  readonly apiClientId: pulumi.Output<string>;
  /** The web app's application (client) ID. */
  readonly webClientId: pulumi.Output<string>;
  readonly scope: string;

  constructor(name: string, args: AppRegistrationsArgs, opts?: pulumi.ComponentResourceOptions) {
    super("platform:azure:AppRegistrations", name, {}, opts);
    this.scope = args.scope ?? "user_impersonation";
    const owners = args.owners ?? [];
    // A scope's id is chosen by its creator; derived from the stack's registration name, it stays
    // the same across updates (Entra refuses to change the id of an enabled scope).
    const scopeId = pulumi.output(args.displayNamePrefix).apply((prefix) => deterministicGuid(prefix, "api", this.scope));

    this.api = new azuread.Application(
      ...transformed(
        args.transform?.api,
        `${name}-api`,
        {
          displayName: pulumi.interpolate`${args.displayNamePrefix} api`,
          signInAudience: "AzureADMyOrg",
          owners,
          api: {
            requestedAccessTokenVersion: 2,
            oauth2PermissionScopes: [
              {
                id: scopeId,
                value: this.scope,
                type: "User",
                enabled: true,
                adminConsentDisplayName: "Use the api as the signed-in user",
                adminConsentDescription: "Lets the web app call the api on behalf of the signed-in user.",
                userConsentDisplayName: "Use the api as you",
                userConsentDescription: "Lets the web app call the api on your behalf.",
              },
            ],
          },
        },
        { parent: this },
      ),
    );
    this.apiClientId = this.api.clientId;
    // The App ID URI names the application's own client id, so it can only be set once that exists.
    new azuread.ApplicationIdentifierUri(
      `${name}-api-uri`,
      { applicationId: this.api.id, identifierUri: pulumi.interpolate`api://${this.api.clientId}` },
      { parent: this },
    );
    new azuread.ServicePrincipal(`${name}-api-principal`, { clientId: this.api.clientId, owners }, { parent: this });

    const redirectUris = pulumi
      .output(args.webOrigin)
      .apply((origin) => [redirectUriFor(origin), ...(args.extraWebOrigins ?? []).map(redirectUriFor)]);
    this.web = new azuread.Application(
      ...transformed(
        args.transform?.web,
        `${name}-web`,
        {
          displayName: pulumi.interpolate`${args.displayNamePrefix} web`,
          signInAudience: "AzureADMyOrg",
          owners,
          singlePageApplication: { redirectUris },
          requiredResourceAccesses: [{ resourceAppId: this.api.clientId, resourceAccesses: [{ id: scopeId, type: "Scope" }] }],
        },
        { parent: this },
      ),
    );
    this.webClientId = this.web.clientId;
    new azuread.ServicePrincipal(`${name}-web-principal`, { clientId: this.web.clientId, owners }, { parent: this });
    new azuread.ApplicationPreAuthorized(
      `${name}-web-preauthorized`,
      { applicationId: this.api.id, authorizedClientId: this.web.clientId, permissionIds: [scopeId] },
      { parent: this },
    );
    this.registerOutputs({ apiClientId: this.apiClientId, webClientId: this.webClientId });
  }
}
