/**
 * The API gateway's policies, as API Management policy XML built from typed inputs: the one place
 * that says what the gateway does to a request and its response. Pure, so the tests parse the XML
 * and check each capability.
 *
 * Two documents (API Management evaluates the service-wide one where an API's says `<base />`):
 * - {@link servicePolicy}, for every request: security headers added and server-identifying
 *   headers removed on every response; every error the gateway makes itself (no token, too many
 *   requests, no such operation, api unreachable), and any error the api answers without a problem
 *   body, answered as RFC 9457 `application/problem+json` the way the api answers its own.
 * - {@link apiPolicy}, for the api: CORS for the web app; the caller's Entra token validated
 *   (`validate-jwt` with the api's app registration, except on the anonymous routes); rate limits
 *   per signed-in user (token `oid`) and per client IP on anonymous routes, 429 with Retry-After;
 *   the user's object ID passed on in `x-gateway-user-id` (any client-sent value deleted first);
 *   the call to the api made with the gateway's own managed identity token.
 *
 * Request logging is no policy: the component's Logger and Diagnostic (W3C trace context) do it.
 *
 * The XML is escaped properly (`&quot;` inside attributes) and sent with format "xml". Policy
 * expressions use only members of API Management's documented expression context
 * (api-management-policy-expressions: context.LastError, context.Operation.Id,
 * Jwt.Claims.GetValueOrDefault, JObject, ...).
 */
import { GATEWAY_USER_HEADER } from "../../functions/src/api/identity";
import { PROBLEM_CONTENT_TYPE, statusTitles } from "../../functions/src/api/problem";

// ---------------------------------------------------------------------------------------------
// A small XML builder: elements, attributes and text, escaped.

export interface XmlElement {
  readonly name: string;
  readonly attributes: Readonly<Record<string, string | number | boolean>>;
  readonly children: readonly (XmlElement | string)[];
}

function el(name: string, attributes: XmlElement["attributes"] = {}, ...children: (XmlElement | string)[]): XmlElement {
  return { name, attributes, children };
}

const escapeText = (text: string) => text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
const escapeAttribute = (text: string) => escapeText(text).replace(/"/g, "&quot;");

export function renderXml(node: XmlElement, depth = 0): string {
  const pad = "  ".repeat(depth);
  const attributes = Object.entries(node.attributes)
    .map(([key, value]) => ` ${key}="${escapeAttribute(String(value))}"`)
    .join("");
  if (node.children.length === 0) return `${pad}<${node.name}${attributes} />`;
  if (node.children.every((child) => typeof child === "string")) {
    return `${pad}<${node.name}${attributes}>${escapeText(node.children.join(""))}</${node.name}>`;
  }
  const inner = node.children.map((child) => (typeof child === "string" ? `${"  ".repeat(depth + 1)}${escapeText(child)}` : renderXml(child, depth + 1)));
  return `${pad}<${node.name}${attributes}>\n${inner.join("\n")}\n${pad}</${node.name}>`;
}

/** A C# string literal for a policy expression. */
function cs(text: string): string {
  return `"${text.replace(/\\/g, "\\\\").replace(/"/g, '\\"')}"`;
}

// ---------------------------------------------------------------------------------------------
// Inputs

export interface RateLimits {
  /** Calls one signed-in user (token `oid`) may make per period. */
  readonly perUser: number;
  /** Calls one client IP address may make to the anonymous routes per period. */
  readonly perIp: number;
  /** The period in seconds (API Management allows at most 300). */
  readonly periodSeconds: number;
}

export interface EntraTokenRequirements {
  /** Directory (tenant) ID: the issuer of the tokens. */
  readonly tenantId: string;
  /** The api's app registration (authEntraClientId): the audience, `<id>` or `api://<id>`. */
  readonly clientId: string;
  /** The delegated scope a user's token must carry (`scp`). */
  readonly requiredScope: string;
  /** @default "https://login.microsoftonline.com" */
  readonly instance?: string;
}

export interface ServicePolicyInputs {
  /** Origins whose pages may read the gateway's answers (the web app's); errors carry CORS headers for them too. */
  readonly allowedOrigins: readonly string[];
}

export interface ApiPolicyInputs extends ServicePolicyInputs {
  /** HTTP methods the API answers (upper case): what browsers may send. */
  readonly methods: readonly string[];
  /** Operations that pass without a token; every other one requires a valid Entra token. */
  readonly anonymousOperationIds: readonly string[];
  readonly entra: EntraTokenRequirements;
  readonly rateLimits: RateLimits;
  /** Client ID of the gateway's user-assigned identity, whose token the api accepts. */
  readonly gatewayIdentityClientId: string;
}

/** Request headers the web app sends besides the CORS-safelisted ones. */
export const allowedRequestHeaders = ["authorization", "content-type", "idempotency-key"] as const;
/** Response headers the web app may read besides the safelisted ones. */
export const exposedResponseHeaders = ["location", "retry-after"] as const;

/** Headers every response gets, whatever the api set (`override`), or unless it set its own (`skip`). */
export const securityHeaders: readonly { readonly name: string; readonly value: string; readonly existsAction: "override" | "skip" }[] = [
  { name: "Strict-Transport-Security", value: "max-age=31536000; includeSubDomains", existsAction: "override" },
  { name: "X-Content-Type-Options", value: "nosniff", existsAction: "override" },
  { name: "X-Frame-Options", value: "DENY", existsAction: "override" },
  { name: "Referrer-Policy", value: "no-referrer", existsAction: "override" },
  // JSON needs no content policy; the api's docs page sends its own, which is kept.
  { name: "Content-Security-Policy", value: "default-src 'none'; frame-ancestors 'none'", existsAction: "skip" },
];

/**
 * Headers that say what runs behind the gateway (the framework, the Functions runtime and its
 * invocation, the Application Insights app). `Server` is not here: API Management does not support
 * removing it (set-header policy reference, "Removal of Server header isn't supported").
 */
export const removedResponseHeaders = ["X-Powered-By", "X-AspNet-Version", "X-AspNetMvc-Version", "Request-Context", "x-ms-invocation-id"] as const;

/** The statuses the gateway answers with its own problem body; anything else is a 500. */
export const gatewayProblemStatuses = [400, 401, 404, 429, 500, 502, 503, 504] as const;
export type GatewayProblemStatus = (typeof gatewayProblemStatuses)[number];

const gatewayTitles: Readonly<Record<GatewayProblemStatus, string>> = {
  400: statusTitles[400] ?? "Bad Request",
  401: statusTitles[401] ?? "Unauthorized",
  404: statusTitles[404] ?? "Not Found",
  429: "Too Many Requests",
  500: statusTitles[500] ?? "Internal Server Error",
  502: "Bad Gateway",
  503: statusTitles[503] ?? "Service Unavailable",
  504: "Gateway Timeout",
};

/** Context variable names shared between the policies. */
const variables = { jwt: "jwt", caller: "callerId", retryAfter: "retryAfterSeconds", status: "problemStatus", detail: "problemDetail" } as const;

// ---------------------------------------------------------------------------------------------
// Validation: a bad input fails the deployment here, naming it, not in Azure.

const guid = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

function checkOrigins(origins: readonly string[]): void {
  if (origins.length === 0) throw new Error("the gateway needs at least one allowed origin (the web app's)");
  for (const origin of origins) {
    let url: URL | undefined;
    try {
      url = new URL(origin);
    } catch {
      url = undefined;
    }
    if (!url || url.origin !== origin.replace(/\/$/, "")) throw new Error(`allowed origin ${JSON.stringify(origin)} must be a scheme://host[:port] origin, not "*" or a URL with a path`);
  }
}

function checkApiInputs(inputs: ApiPolicyInputs): void {
  checkOrigins(inputs.allowedOrigins);
  const { perUser, perIp, periodSeconds } = inputs.rateLimits;
  for (const [name, value] of Object.entries({ perUser, perIp })) {
    if (!Number.isInteger(value) || value < 1) throw new Error(`rate limit ${name} must be a positive integer, got ${value}`);
  }
  if (!Number.isInteger(periodSeconds) || periodSeconds < 1 || periodSeconds > 300) {
    throw new Error(`rate limit period must be 1 to 300 seconds (API Management's maximum renewal period), got ${periodSeconds}`);
  }
  if (!guid.test(inputs.entra.clientId)) throw new Error(`clientId must be the api's application (client) ID, a GUID, got ${JSON.stringify(inputs.entra.clientId)}`);
  // Azure's own values (the tenant, the identity's client ID): present and one token.
  for (const [name, value] of Object.entries({ tenantId: inputs.entra.tenantId, gatewayIdentityClientId: inputs.gatewayIdentityClientId })) {
    if (!/^[\x21-\x7e]+$/.test(value)) throw new Error(`${name} must be an ID, got ${JSON.stringify(value)}`);
  }
  if (!/^[\x21-\x7e]+$/.test(inputs.entra.requiredScope)) throw new Error(`required scope ${JSON.stringify(inputs.entra.requiredScope)} must be one scope name`);
  if (inputs.methods.length === 0) throw new Error("the API answers no method");
}

// ---------------------------------------------------------------------------------------------
// Pieces

function setHeader(name: string, existsAction: "override" | "skip" | "delete", ...values: string[]): XmlElement {
  return el("set-header", { name, "exists-action": existsAction }, ...values.map((value) => el("value", {}, value)));
}

function securityHeaderElements(): XmlElement[] {
  return securityHeaders.map((header) => setHeader(header.name, header.existsAction, header.value));
}

/** Access-Control-Allow-Origin for an answer the gateway makes itself (its cors policy adds none there). */
function allowOriginValue(origins: readonly string[]): string {
  const normalized = origins.map((origin) => origin.replace(/\/$/, ""));
  if (normalized.length === 1) return normalized[0]!;
  // Several origins: echo the caller's when it is one of them; a browser refuses a mismatch anyway.
  const matches = normalized.map((origin) => `origin == ${cs(origin)}`).join(" || ");
  return `@{ var origin = context.Request.Headers.GetValueOrDefault("Origin", ""); return (${matches}) ? origin : ${cs(normalized[0]!)}; }`;
}

const retryAfterExpression = `(context.Variables.ContainsKey(${cs(variables.retryAfter)}) ? context.Variables[${cs(variables.retryAfter)}].ToString() : context.Response.Headers.GetValueOrDefault("Retry-After", "1"))`;

/**
 * One `return-response` per status: an RFC 9457 body like the api's (type, title, status, detail,
 * instance), no caching, the security headers, CORS for the web app, and Retry-After (429) or
 * WWW-Authenticate (401). Statuses are literals: set-status takes no expression.
 */
function problemResponses(origins: readonly string[]): XmlElement {
  const response = (status: GatewayProblemStatus) => {
    const title = gatewayTitles[status];
    const body = `@(new JObject(new JProperty("type", "about:blank"), new JProperty("title", ${cs(title)}), new JProperty("status", ${status}), new JProperty("detail", (string)context.Variables[${cs(variables.detail)}]), new JProperty("instance", context.Request.OriginalUrl.Path)).ToString())`;
    return el(
      "return-response",
      {},
      el("set-status", { code: status, reason: title }),
      setHeader("Content-Type", "override", PROBLEM_CONTENT_TYPE),
      setHeader("Cache-Control", "override", "no-store"),
      ...securityHeaderElements().map((header) => ({ ...header, attributes: { ...header.attributes, "exists-action": "override" } })),
      setHeader("Access-Control-Allow-Origin", "override", allowOriginValue(origins)),
      setHeader("Access-Control-Expose-Headers", "override", "Retry-After, WWW-Authenticate"),
      setHeader("Vary", "override", "Origin"),
      ...(status === 429 ? [setHeader("Retry-After", "override", `@${retryAfterExpression}`)] : []),
      ...(status === 401 ? [setHeader("WWW-Authenticate", "override", "Bearer")] : []),
      el("set-body", {}, body),
    );
  };
  const statusIs = (status: number) => `@((int)context.Variables[${cs(variables.status)}] == ${status})`;
  return el(
    "choose",
    {},
    ...gatewayProblemStatuses.filter((s) => s !== 500).map((status) => el("when", { condition: statusIs(status) }, response(status))),
    el("otherwise", {}, response(500)),
  );
}

/** The status of a gateway error, from what failed (api-management-error-handling-policies). */
const errorStatusExpression = `@{
    var source = context.LastError.Source ?? "";
    var reason = context.LastError.Reason ?? "";
    if (reason == "BackendConnectionFailure") { return 502; }
    if (reason == "Timeout") { return 504; }
    if (source == "validate-jwt") { return 401; }
    if (source.StartsWith("rate-limit") || reason == "RateLimitExceeded") { return 429; }
    if (reason == "OperationNotFound" || reason == "ApiNotFound") { return 404; }
    return 500;
}`;

/** What the caller reads about it; never the internal error message. */
const errorDetailExpression = `@{
    switch ((int)context.Variables[${cs(variables.status)}]) {
        case 401: return "A valid Microsoft Entra access token for this api is required: Authorization: Bearer <token>.";
        case 404: return "Nothing is served at " + context.Request.Method + " " + context.Request.OriginalUrl.Path + ".";
        case 429: return "Too many requests from this caller; retry after " + ${retryAfterExpression} + " seconds.";
        case 502: return "The api could not be reached; try again shortly.";
        case 504: return "The api did not answer in time; try again shortly.";
        default: return "The gateway could not complete the request. It has been logged.";
    }
}`;

/** An error status from the api without a problem body (the platform's own pages). */
const backendErrorCondition = `@(context.Response.StatusCode >= 400 && !context.Response.Headers.GetValueOrDefault("Content-Type", "").ToLowerInvariant().StartsWith(${cs(PROBLEM_CONTENT_TYPE)}))`;

const backendStatusExpression = `@{
    var status = context.Response.StatusCode;
    if (status == 401 || status == 403) { return 502; }
    if (status == 404 || status == 429 || status == 503) { return status; }
    if (status == 408 || status == 504) { return 504; }
    return status < 500 ? 400 : 502;
}`;

const backendDetailExpression = `@{
    var status = context.Response.StatusCode;
    if (status == 401 || status == 403) { return "The api refused the gateway's credentials."; }
    if (status == 404) { return "Nothing is served at " + context.Request.Method + " " + context.Request.OriginalUrl.Path + "."; }
    if (status == 429) { return "Too many requests; retry after " + ${retryAfterExpression} + " seconds."; }
    if (status == 503 || status == 408 || status == 504) { return "The api is not available right now; try again shortly."; }
    return status < 500 ? "The api could not handle the request." : "The api failed. It has been logged.";
}`;

// ---------------------------------------------------------------------------------------------
// The documents

/** The service-wide policy: response transformation and problem+json errors for every API. */
export function servicePolicy(inputs: ServicePolicyInputs): string {
  checkOrigins(inputs.allowedOrigins);
  const policies = el(
    "policies",
    {},
    el("inbound"),
    el("backend", {}, el("forward-request")),
    el(
      "outbound",
      {},
      el(
        "choose",
        {},
        el(
          "when",
          { condition: backendErrorCondition },
          el("set-variable", { name: variables.status, value: backendStatusExpression }),
          el("set-variable", { name: variables.detail, value: backendDetailExpression }),
          problemResponses(inputs.allowedOrigins),
        ),
      ),
      ...removedResponseHeaders.map((name) => setHeader(name, "delete")),
      ...securityHeaderElements(),
    ),
    el(
      "on-error",
      {},
      el("set-variable", { name: variables.status, value: errorStatusExpression }),
      el("set-variable", { name: variables.detail, value: errorDetailExpression }),
      problemResponses(inputs.allowedOrigins),
    ),
  );
  return renderXml(policies);
}

/** The api's policy: CORS, token validation, rate limits, the user passed on, the gateway's own credentials. */
export function apiPolicy(inputs: ApiPolicyInputs): string {
  checkApiInputs(inputs);
  const instance = (inputs.entra.instance ?? "https://login.microsoftonline.com").replace(/\/$/, "");
  const issuer = `${instance}/${inputs.entra.tenantId}/v2.0`;
  const { perUser, perIp, periodSeconds } = inputs.rateLimits;
  const jwt = `((Jwt)context.Variables[${cs(variables.jwt)}])`;

  const anonymous =
    inputs.anonymousOperationIds.length === 0 ? "@(false)" : `@(${inputs.anonymousOperationIds.map((id) => `context.Operation.Id == ${cs(id)}`).join(" || ")})`;

  const cors = el(
    "cors",
    { "allow-credentials": false, "terminate-unmatched-request": false },
    el("allowed-origins", {}, ...inputs.allowedOrigins.map((origin) => el("origin", {}, origin.replace(/\/$/, "")))),
    el("allowed-methods", { "preflight-result-max-age": 600 }, ...inputs.methods.map((method) => el("method", {}, method))),
    el("allowed-headers", {}, ...allowedRequestHeaders.map((header) => el("header", {}, header))),
    el("expose-headers", {}, ...exposedResponseHeaders.map((header) => el("header", {}, header))),
  );

  const perIpLimit = el("rate-limit-by-key", {
    calls: perIp,
    "renewal-period": periodSeconds,
    "counter-key": `@("anonymous:" + context.Request.IpAddress)`,
    "retry-after-variable-name": variables.retryAfter,
  });

  const validateToken = el(
    "validate-jwt",
    {
      "header-name": "Authorization",
      "require-scheme": "Bearer",
      "failed-validation-httpcode": 401,
      "failed-validation-error-message": "Unauthorized",
      "output-token-variable-name": variables.jwt,
    },
    el("openid-config", { url: `${issuer}/.well-known/openid-configuration` }),
    el("audiences", {}, el("audience", {}, inputs.entra.clientId), el("audience", {}, `api://${inputs.entra.clientId}`)),
    el("issuers", {}, el("issuer", {}, issuer)),
    // A user's delegated token for this api: app-only tokens any tenant app could mint carry no scp.
    el("required-claims", {}, el("claim", { name: "scp", match: "any", separator: " " }, el("value", {}, inputs.entra.requiredScope))),
  );

  const perUserLimit = el("rate-limit-by-key", {
    calls: perUser,
    "renewal-period": periodSeconds,
    "counter-key": `@("user:" + (string)context.Variables[${cs(variables.caller)}])`,
    "retry-after-variable-name": variables.retryAfter,
  });

  const policies = el(
    "policies",
    {},
    el(
      "inbound",
      {},
      // First: only cors runs on a preflight, and only when it comes first (cors-policy usage notes).
      cors,
      el("base"),
      // Only the gateway names the user; never a client.
      setHeader(GATEWAY_USER_HEADER, "delete"),
      el(
        "choose",
        {},
        el("when", { condition: anonymous }, perIpLimit),
        el(
          "otherwise",
          {},
          validateToken,
          el("set-variable", { name: variables.caller, value: `@(${jwt}.Claims.GetValueOrDefault("oid", ""))` }),
          perUserLimit,
          setHeader(GATEWAY_USER_HEADER, "override", `@((string)context.Variables[${cs(variables.caller)}])`),
        ),
      ),
      // Replaces the caller's Authorization header: the api admits only the gateway's identity.
      el("authentication-managed-identity", { resource: inputs.entra.clientId, "client-id": inputs.gatewayIdentityClientId }),
    ),
    el("backend", {}, el("base")),
    el("outbound", {}, el("base")),
    el("on-error", {}, el("base")),
  );
  return renderXml(policies);
}
