/**
 * The web app's runtime configuration: `/config.json`, served next to index.html. One build serves
 * every environment; what differs between them (where the api is, how people sign in) is read at
 * start-up from this file.
 *
 * Written by the local platform and (from stack outputs) by the Pulumi program, both through
 * {@link runtimeConfig}; read by the app through {@link parseRuntimeConfig}. No DOM and no
 * dependencies, so Node imports it as well as the browser.
 */

/** How the app identifies its user to the api. */
export type AuthConfig =
  /**
   * The local platform: a name typed into the page, sent in `header` (the api accepts it only where
   * ALLOW_DEVELOPMENT_IDENTITY is set, which Azure never is). No sign-in code is loaded.
   */
  | { readonly mode: "development"; readonly header: string }
  /**
   * Microsoft Entra ID through MSAL (loaded only in this mode): bearer tokens for `scopes`, which
   * App Service Authentication validates in front of the api.
   */
  | { readonly mode: "entra"; readonly clientId: string; readonly authority: string; readonly scopes: readonly string[] }
  /** No sign-in is configured: the page says so instead of failing on every call. */
  | { readonly mode: "none" };

export interface RuntimeConfig {
  /**
   * Where the api's routes hang from: its origin, without a path (`https://<app>.azurewebsites.net`,
   * `http://127.0.0.1:7071`). The OpenAPI document's paths (`/api/jobs`) are relative to it.
   */
  readonly apiBaseUrl: string;
  readonly auth: AuthConfig;
}

/** Where the Entra sign-in pages and token endpoints are, unless a sovereign cloud says otherwise. */
export const DEFAULT_ENTRA_INSTANCE = "https://login.microsoftonline.com";
/** The delegated scope the api's app registration exposes. */
export const DEFAULT_API_SCOPE = "user_impersonation";

/** Plain values the writers of config.json have; {@link runtimeConfig} turns them into the file. */
export type AuthSettings =
  | { readonly mode: "development"; readonly header: string }
  | {
      readonly mode: "entra";
      /** The directory (tenant) id, or a verified domain. */
      readonly tenantId: string;
      /** The single-page application's registration: the client that asks for tokens. */
      readonly spaClientId: string;
      /** The api's registration (authEntraClientId): the audience of the tokens. */
      readonly apiClientId: string;
      /** @default "user_impersonation" */
      readonly scope?: string;
      /** @default "https://login.microsoftonline.com" */
      readonly instance?: string;
    }
  | { readonly mode: "none" };

/** Thrown for a configuration that cannot work; the message names the member. */
export class RuntimeConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "RuntimeConfigError";
  }
}

/** The api's base URL as config.json holds it: an http(s) origin, without a trailing slash or path. */
function apiOrigin(value: unknown, member: string): string {
  if (typeof value !== "string" || value === "") throw new RuntimeConfigError(`${member} must be the api's URL, e.g. https://<app>.azurewebsites.net`);
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new RuntimeConfigError(`${member} is not a URL: ${JSON.stringify(value)}`);
  }
  if (url.protocol !== "https:" && url.protocol !== "http:") throw new RuntimeConfigError(`${member} must be an http(s) URL, got ${JSON.stringify(value)}`);
  if (url.pathname !== "/" || url.search || url.hash) {
    throw new RuntimeConfigError(`${member} must be the api's origin without a path (the app adds /api/...), got ${JSON.stringify(value)}`);
  }
  return url.origin;
}

/** An absolute http(s) URL, without a trailing slash. */
function absoluteUrl(value: unknown, member: string): string {
  const raw = text(value, member);
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new RuntimeConfigError(`${member} is not a URL: ${JSON.stringify(raw)}`);
  }
  if (url.protocol !== "https:" && url.protocol !== "http:") throw new RuntimeConfigError(`${member} must be an http(s) URL, got ${JSON.stringify(raw)}`);
  return url.href.replace(/\/+$/, "");
}

function text(value: unknown, member: string): string {
  if (typeof value !== "string" || value.trim() === "") throw new RuntimeConfigError(`${member} must be a non-empty string`);
  return value;
}

/** Builds config.json from the values its writer has, checking each. */
export function runtimeConfig(apiBaseUrl: string, auth: AuthSettings): RuntimeConfig {
  const base = apiOrigin(apiBaseUrl, "apiBaseUrl");
  switch (auth.mode) {
    case "development":
      return { apiBaseUrl: base, auth: { mode: "development", header: text(auth.header, "auth.header") } };
    case "entra": {
      const instance = apiOrigin(auth.instance ?? DEFAULT_ENTRA_INSTANCE, "auth.instance");
      const apiClientId = text(auth.apiClientId, "auth.apiClientId");
      return {
        apiBaseUrl: base,
        auth: {
          mode: "entra",
          clientId: text(auth.spaClientId, "auth.spaClientId"),
          authority: `${instance}/${encodeURIComponent(text(auth.tenantId, "auth.tenantId"))}`,
          scopes: [`api://${apiClientId}/${text(auth.scope ?? DEFAULT_API_SCOPE, "auth.scope")}`],
        },
      };
    }
    case "none":
      return { apiBaseUrl: base, auth: { mode: "none" } };
  }
}

function record(value: unknown, member: string): Record<string, unknown> {
  if (typeof value !== "object" || value === null || Array.isArray(value)) throw new RuntimeConfigError(`${member} must be an object`);
  return value as Record<string, unknown>;
}

/** Reads config.json as fetched (any JSON value); throws {@link RuntimeConfigError} naming what is wrong. */
export function parseRuntimeConfig(value: unknown): RuntimeConfig {
  const config = record(value, "config.json");
  const apiBaseUrl = apiOrigin(config.apiBaseUrl, "apiBaseUrl");
  const auth = record(config.auth, "auth");
  switch (auth.mode) {
    case "development":
      return { apiBaseUrl, auth: { mode: "development", header: text(auth.header, "auth.header") } };
    case "entra": {
      const scopes = auth.scopes;
      if (!Array.isArray(scopes) || scopes.length === 0) throw new RuntimeConfigError("auth.scopes must list at least one scope");
      return {
        apiBaseUrl,
        auth: {
          mode: "entra",
          clientId: text(auth.clientId, "auth.clientId"),
          authority: absoluteUrl(auth.authority, "auth.authority"),
          scopes: scopes.map((scope, i) => text(scope, `auth.scopes[${i}]`)),
        },
      };
    }
    case "none":
      return { apiBaseUrl, auth: { mode: "none" } };
    default:
      throw new RuntimeConfigError(`auth.mode must be "development", "entra" or "none", got ${JSON.stringify(auth.mode)}`);
  }
}
