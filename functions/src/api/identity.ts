/**
 * Who is calling. In Azure, App Service Authentication (Easy Auth) sits in front of the app,
 * validates the caller's token, strips any client-sent `x-ms-client-principal*` headers and sets its
 * own: `x-ms-client-principal-id` and `x-ms-client-principal` (base64 JSON with the claims). The api
 * trusts those headers only because the platform owns them, which is why the infrastructure must
 * keep authentication enabled and required in front of the api, and says so through the
 * APP_SERVICE_AUTHENTICATION setting; without it the headers are ignored and callers get 401.
 *
 * Behind the API gateway (API_GATEWAY=true), Easy Auth lets through only the gateway's own managed
 * identity, so its principal headers name the gateway, not the user. The gateway validated the
 * user's token itself and passes the user's object ID in `x-gateway-user-id`, after deleting any
 * value the client sent; the api takes the user from there, and only from a request Easy Auth
 * authenticated (the gateway's). It never falls back to the principal headers then: every user
 * would be the gateway.
 *
 * On the local platform there is no Easy Auth: a development identity header (`x-dev-user`) is
 * accepted only when ALLOW_DEVELOPMENT_IDENTITY=true, a local-only setting: the settings contract
 * has no Azure-side slot for it, and the settings loader refuses to start where Azure runs the
 * code if it is set anyway (settings.ts, azureHostingEvidence). Even then it never overrides the
 * platform's identity: a request that App Service Authentication identified is that caller.
 */

export interface Caller {
  /** Stable id of the user: owner of jobs, blob prefix, realtime group. */
  readonly userId: string;
  readonly source: "appServiceAuthentication" | "apiGateway" | "development";
}

export interface IdentityOptions {
  /** App Service Authentication runs in front of the app: only then are its headers the caller's. */
  readonly trustAppServiceAuthentication: boolean;
  /**
   * The API gateway is in front: the user comes from its header (App Service Authentication admits
   * only the gateway).
   * @default false
   */
  readonly behindGateway?: boolean;
  readonly allowDevelopmentIdentity: boolean;
}

export const PRINCIPAL_ID_HEADER = "x-ms-client-principal-id";
export const PRINCIPAL_HEADER = "x-ms-client-principal";
export const DEVELOPMENT_IDENTITY_HEADER = "x-dev-user";
/** The signed-in user's object ID (`oid`), set by the API gateway from the token it validated. */
export const GATEWAY_USER_HEADER = "x-gateway-user-id";

/** Claim types that carry the user's stable id, in order of preference. */
const idClaimTypes = ["http://schemas.microsoft.com/identity/claims/objectidentifier", "oid", "sub", "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/nameidentifier"];

/** User ids are ASCII printable, bounded: they become partition keys and log fields. */
const USER_ID_PATTERN = /^[\x21-\x7e]{1,128}$/;

interface HeaderSource {
  get(name: string): string | null;
}

/** The caller, or undefined when the request carries no acceptable identity (answer 401). */
export function callerFrom(headers: HeaderSource, options: IdentityOptions): Caller | undefined {
  // Without App Service Authentication nothing strips client-sent x-ms-client-principal headers:
  // trusting them then would let any caller claim any identity.
  if (options.trustAppServiceAuthentication) {
    const principalId = headers.get(PRINCIPAL_ID_HEADER)?.trim();
    const principal = headers.get(PRINCIPAL_HEADER);
    if (principalId || principal) {
      if (options.behindGateway) {
        // Easy Auth authenticated the caller (it sets the principal headers, and admits only the
        // gateway's identity); the user is who the gateway says.
        const gatewayUser = headers.get(GATEWAY_USER_HEADER)?.trim();
        return gatewayUser && USER_ID_PATTERN.test(gatewayUser) ? { userId: gatewayUser, source: "apiGateway" } : undefined;
      }
      // The platform identified the caller: that is who it is, whatever else the request says.
      const userId = principalId || (principal ? idFromPrincipal(principal) : undefined);
      return userId && USER_ID_PATTERN.test(userId) ? { userId, source: "appServiceAuthentication" } : undefined;
    }
  }
  if (options.allowDevelopmentIdentity) {
    const developmentUser = headers.get(DEVELOPMENT_IDENTITY_HEADER)?.trim();
    if (developmentUser) return USER_ID_PATTERN.test(developmentUser) ? { userId: developmentUser, source: "development" } : undefined;
  }
  return undefined;
}

/** The user id inside an `x-ms-client-principal` value; undefined when it is malformed. */
export function idFromPrincipal(encoded: string): string | undefined {
  let principal: unknown;
  try {
    principal = JSON.parse(Buffer.from(encoded, "base64").toString("utf8"));
  } catch {
    return undefined;
  }
  if (typeof principal !== "object" || principal === null) return undefined;
  const claims = (principal as { claims?: unknown }).claims;
  if (!Array.isArray(claims)) return undefined;
  for (const type of idClaimTypes) {
    for (const claim of claims) {
      if (typeof claim === "object" && claim !== null) {
        const { typ, val } = claim as { typ?: unknown; val?: unknown };
        if (typ === type && typeof val === "string" && val.length > 0) return val;
      }
    }
  }
  return undefined;
}
