/**
 * The API gateway's routes and policies, pure: the routes against the api's real OpenAPI document,
 * the policy XML parsed by a strict XML parser (@xmldom/xmldom) and read element by element, one
 * describe per capability of the issue (routing, authentication, rate limiting, logging, response
 * transformation). What API Management does with the XML needs Azure; what is checked here is that
 * the document says what the capability needs, in the order API Management evaluates it.
 */
import { describe, expect, it } from "vitest";
import { DOMParser, onWarningStopParsing, type Element } from "@xmldom/xmldom";
import { buildOpenApiDocument } from "../../functions/src/api/openapi";
import { SWAGGER_UI_ASSET_FILES } from "../../functions/src/api/docs-assets";
import { GATEWAY_USER_HEADER } from "../../functions/src/api/identity";
import { PROBLEM_CONTENT_TYPE, statusTitles } from "../../functions/src/api/problem";
import { declarationOf } from "../../functions/src/services";
import { IDEMPOTENCY_KEY_HEADER } from "../../web/src/api-client";
import {
  apiPolicy,
  gatewayProblemStatuses,
  removedResponseHeaders,
  securityHeaders,
  servicePolicy,
  type ApiPolicyInputs,
} from "../../infrastructure/components/gateway-policies";
import { gatewayRoutes, normalizedOperationId, type OpenApiDocument } from "../../infrastructure/components/gateway-routes";

const webOrigin = "https://platdevdata.z13.web.core.windows.net";
const tenantId = "99999999-8888-7777-6666-555555555555";
const clientId = "0f0f0f0f-1111-2222-3333-444444444444";
const gatewayIdentityClientId = "12345678-aaaa-bbbb-cccc-1234567890ab";

const apiDocument = buildOpenApiDocument();
const routes = gatewayRoutes(apiDocument, { pathPrefix: "/api", anonymousRoutes: declarationOf("api").http?.anonymousRoutes ?? [] });
const inputs: ApiPolicyInputs = {
  allowedOrigins: [webOrigin],
  methods: routes.methods,
  anonymousOperationIds: routes.anonymousOperationIds,
  entra: { tenantId, clientId, requiredScope: "user_impersonation" },
  rateLimits: { perUser: 120, perIp: 30, periodSeconds: 60 },
  gatewayIdentityClientId,
};

/** Parses strictly: any warning (malformed or ambiguous XML) fails the test. */
function parse(xml: string): Element {
  const document = new DOMParser({ onError: onWarningStopParsing }).parseFromString(xml, "text/xml");
  const root = document.documentElement;
  if (!root) throw new Error("no root element");
  return root;
}
const elements = (parent: Element): Element[] => Array.from(parent.childNodes).filter((n): n is Element => n.nodeType === 1);
const child = (parent: Element, name: string): Element => {
  const found = elements(parent).filter((e) => e.tagName === name);
  if (found.length !== 1) throw new Error(`expected one <${name}> under <${parent.tagName}>, found ${found.length}`);
  return found[0]!;
};
const all = (parent: Element, name: string): Element[] => Array.from(parent.getElementsByTagName(name));
const attr = (element: Element, name: string) => element.getAttribute(name);
const names = (parent: Element) => elements(parent).map((e) => e.tagName);
const text = (element: Element) => element.textContent ?? "";

const api = parse(apiPolicy(inputs));
const service = parse(servicePolicy({ allowedOrigins: [webOrigin] }));
const inbound = child(api, "inbound");
const choose = child(inbound, "choose");
const anonymousBranch = child(choose, "when");
const signedInBranch = child(choose, "otherwise");

describe("both policies", () => {
  it("are well-formed policy documents with the four sections in API Management's order", () => {
    for (const root of [api, service]) {
      expect(root.tagName).toBe("policies");
      expect(names(root)).toEqual(["inbound", "backend", "outbound", "on-error"]);
    }
  });

  it("let the service-wide policy run inside the api's (base in every section)", () => {
    for (const section of ["backend", "outbound", "on-error"]) expect(names(child(api, section))).toEqual(["base"]);
    expect(names(inbound)).toContain("base");
    expect(names(child(service, "backend"))).toEqual(["forward-request"]);
  });
});

describe("routing: the api's own OpenAPI document", () => {
  const paths = routes.document.paths as Record<string, Record<string, { operationId?: string; parameters?: { name: string; in: string }[] }>>;

  it("keeps every operation of the document, below the gateway API's path, each with a stable operationId", () => {
    for (const [fullPath, item] of Object.entries(apiDocument.paths ?? {})) {
      const path = fullPath.slice("/api".length);
      for (const method of Object.keys(item as object)) {
        expect(paths[path]?.[method]?.operationId, `${method} ${path}`).toBe(normalizedOperationId(`${method}-${path}`));
      }
    }
    expect(paths["/jobs/{id}"]?.["get"]?.operationId).toBe("get-jobs-id");
    expect(Object.keys(paths).every((p) => !p.startsWith("/api/"))).toBe(true);
  });

  it("adds the anonymous routes the document leaves out, and says which operations are anonymous", () => {
    expect([...routes.anonymousOperationIds].sort()).toEqual(["get-docs", "get-docs-path", "get-health", "get-openapi-json"]);
    expect(paths["/docs/{path}"]?.["get"]?.parameters).toEqual([expect.objectContaining({ name: "path", in: "path" })]);
    // docs/{path} is one segment: every asset the docs page loads must be one.
    for (const asset of [...SWAGGER_UI_ASSET_FILES, "initializer.js"]) expect(asset).not.toContain("/");
  });

  it("answers exactly the document's methods and drops what the gateway does not serve", () => {
    expect(routes.methods).toEqual(["GET", "POST"]);
    expect(routes.document).not.toHaveProperty("servers");
    expect(routes.document).not.toHaveProperty("webhooks");
    expect(routes.document.openapi).toBe(apiDocument.openapi);
  });

  it("refuses a document that disagrees with the service registry or the route prefix", () => {
    const doc = (paths: Record<string, object>): OpenApiDocument => ({ openapi: "3.1.0", paths });
    const open = { get: { responses: {} } };
    const guarded = { get: { security: [{ bearer: [] }], responses: {} } };
    expect(() => gatewayRoutes(doc({ "/api/secret": open }), { pathPrefix: "/api", anonymousRoutes: [] })).toThrow(/no security requirement .* not an anonymous route/);
    expect(() => gatewayRoutes(doc({ "/api/health": guarded }), { pathPrefix: "/api", anonymousRoutes: ["health"] })).toThrow(/anonymous route .* requires security/);
    expect(() => gatewayRoutes(doc({ "/other/x": guarded }), { pathPrefix: "/api", anonymousRoutes: [] })).toThrow(/does not start with the route prefix/);
    expect(() => gatewayRoutes(doc({ "/api/a-b": guarded, "/api/a/b": guarded }), { pathPrefix: "/api", anonymousRoutes: [] })).toThrow(/both get the operationId "get-a-b"/);
    expect(() => gatewayRoutes(doc({}), { pathPrefix: "/api", anonymousRoutes: ["a*b"] })).toThrow(/trailing \/\*/);
  });
});

describe("authentication: Entra tokens validated at the gateway, the api called as the gateway", () => {
  const validate = child(signedInBranch, "validate-jwt");

  it("validates the Authorization bearer token against the tenant's v2 metadata, the api's registration and its scope", () => {
    expect(attr(validate, "header-name")).toBe("Authorization");
    expect(attr(validate, "require-scheme")).toBe("Bearer");
    expect(attr(validate, "failed-validation-httpcode")).toBe("401");
    expect(attr(child(validate, "openid-config"), "url")).toBe(`https://login.microsoftonline.com/${tenantId}/v2.0/.well-known/openid-configuration`);
    expect(all(validate, "audience").map(text)).toEqual([clientId, `api://${clientId}`]);
    expect(all(validate, "issuer").map(text)).toEqual([`https://login.microsoftonline.com/${tenantId}/v2.0`]);
    const claim = child(child(validate, "required-claims"), "claim");
    expect([attr(claim, "name"), attr(claim, "match"), attr(claim, "separator")]).toEqual(["scp", "any", " "]);
    expect(all(claim, "value").map(text)).toEqual(["user_impersonation"]);
  });

  it("lets exactly the anonymous operations through without a token", () => {
    const condition = attr(anonymousBranch, "condition") ?? "";
    const named = [...condition.matchAll(/context\.Operation\.Id == "([^"]+)"/g)].map((m) => m[1]).sort();
    expect(named).toEqual([...routes.anonymousOperationIds].sort());
    expect(all(anonymousBranch, "validate-jwt")).toEqual([]);
  });

  it("names the user to the api only from the validated token, after deleting whatever the client sent", () => {
    const order = names(inbound);
    const deleted = elements(inbound).findIndex((e) => e.tagName === "set-header" && attr(e, "name") === GATEWAY_USER_HEADER && attr(e, "exists-action") === "delete");
    expect(deleted).toBeGreaterThan(-1);
    expect(deleted).toBeLessThan(order.indexOf("choose"));
    const branch = names(signedInBranch);
    expect(branch.indexOf("validate-jwt")).toBeLessThan(branch.indexOf("set-variable"));
    expect(attr(child(signedInBranch, "set-variable"), "value")).toBe('@(((Jwt)context.Variables["jwt"]).Claims.GetValueOrDefault("oid", ""))');
    const named = elements(signedInBranch).find((e) => e.tagName === "set-header" && attr(e, "name") === GATEWAY_USER_HEADER)!;
    expect(attr(named, "exists-action")).toBe("override");
    expect(text(child(named, "value"))).toBe('@((string)context.Variables["callerId"])');
  });

  it("calls the api with the gateway's own identity, for the api's registration, on every operation", () => {
    const authentication = child(inbound, "authentication-managed-identity");
    expect(attr(authentication, "resource")).toBe(clientId);
    expect(attr(authentication, "client-id")).toBe(gatewayIdentityClientId);
    expect(names(inbound).indexOf("authentication-managed-identity")).toBeGreaterThan(names(inbound).indexOf("choose"));
  });

  it("answers browsers of the web app first (CORS before anything else), without credentials or wildcards", () => {
    expect(names(inbound)[0]).toBe("cors");
    const cors = child(inbound, "cors");
    expect(attr(cors, "allow-credentials")).toBe("false");
    expect(all(cors, "origin").map(text)).toEqual([webOrigin]);
    expect(all(cors, "method").map(text)).toEqual(["GET", "POST"]);
    expect(all(child(cors, "allowed-headers"), "header").map(text)).toEqual(expect.arrayContaining(["authorization", "content-type", IDEMPOTENCY_KEY_HEADER]));
    expect(all(cors, "header").map(text)).not.toContain("*");
  });

  it("refuses inputs that would weaken it", () => {
    expect(() => apiPolicy({ ...inputs, allowedOrigins: ["*"] })).toThrow(/allowed origin "\*"/);
    expect(() => apiPolicy({ ...inputs, allowedOrigins: [] })).toThrow(/at least one allowed origin/);
    expect(() => apiPolicy({ ...inputs, entra: { ...inputs.entra, clientId: "my-app" } })).toThrow(/clientId must be the api.s application \(client\) ID, a GUID/);
    expect(() => servicePolicy({ allowedOrigins: [`${webOrigin}/path`] })).toThrow(/not "\*" or a URL with a path/);
  });
});

describe("rate limiting: per signed-in user, per IP on anonymous routes, 429 with Retry-After", () => {
  const limit = (parent: Element) => child(parent, "rate-limit-by-key");

  it("counts signed-in calls per token oid, after the token is validated", () => {
    const perUser = limit(signedInBranch);
    expect([attr(perUser, "calls"), attr(perUser, "renewal-period")]).toEqual(["120", "60"]);
    expect(attr(perUser, "counter-key")).toBe('@("user:" + (string)context.Variables["callerId"])');
    expect(names(signedInBranch).indexOf("rate-limit-by-key")).toBeGreaterThan(names(signedInBranch).indexOf("set-variable"));
  });

  it("counts anonymous calls per client IP", () => {
    const perIp = limit(anonymousBranch);
    expect([attr(perIp, "calls"), attr(perIp, "renewal-period")]).toEqual(["30", "60"]);
    expect(attr(perIp, "counter-key")).toBe('@("anonymous:" + context.Request.IpAddress)');
  });

  it("answers 429 as problem+json with the Retry-After the limit computed", () => {
    for (const perCaller of [limit(signedInBranch), limit(anonymousBranch)]) expect(attr(perCaller, "retry-after-variable-name")).toBe("retryAfterSeconds");
    const onError = child(service, "on-error");
    expect(attr(all(onError, "set-variable")[0]!, "value")).toMatch(/StartsWith\("rate-limit"\) \|\| reason == "RateLimitExceeded"\) \{ return 429; \}/);
    const tooMany = problemBranch(onError, 429);
    expect(headerValue(tooMany, "Retry-After")).toContain('context.Variables["retryAfterSeconds"].ToString()');
    expect(attr(child(tooMany, "set-status"), "code")).toBe("429");
    expect(headerValue(tooMany, "Content-Type")).toBe(PROBLEM_CONTENT_TYPE);
  });

  it("refuses limits API Management would not take", () => {
    expect(() => apiPolicy({ ...inputs, rateLimits: { ...inputs.rateLimits, periodSeconds: 301 } })).toThrow(/1 to 300 seconds/);
    expect(() => apiPolicy({ ...inputs, rateLimits: { ...inputs.rateLimits, perUser: 0 } })).toThrow(/perUser must be a positive integer/);
  });
});

describe("logging: the policies keep the trace context the gateway's diagnostic starts", () => {
  it("never removes or rewrites the W3C trace headers, in either direction", () => {
    for (const root of [api, service]) {
      const touched = all(root, "set-header").map((e) => (attr(e, "name") ?? "").toLowerCase());
      expect(touched).not.toContain("traceparent");
      expect(touched).not.toContain("tracestate");
    }
  });

  it("logs nothing itself that could carry a token (no trace or log-to-eventhub policies)", () => {
    for (const root of [api, service]) for (const policy of ["trace", "log-to-eventhub", "emit-metric"]) expect(all(root, policy)).toEqual([]);
  });
});

/** The `return-response` the service policy uses for one status. */
function problemBranch(section: Element, status: number): Element {
  const branches = elements(child(section, "choose"));
  const branch = branches.find((b) => attr(b, "condition") === `@((int)context.Variables["problemStatus"] == ${status})`) ?? (status === 500 ? branches.find((b) => b.tagName === "otherwise") : undefined);
  if (!branch) throw new Error(`no branch for ${status}`);
  return child(branch, "return-response");
}
const headerValue = (response: Element, name: string) => {
  const header = elements(response).find((e) => e.tagName === "set-header" && attr(e, "name") === name);
  return header ? text(child(header, "value")) : undefined;
};

describe("response transformation: security headers in, server headers out, gateway errors as problem+json", () => {
  const outbound = child(service, "outbound");
  const onError = child(service, "on-error");

  it("adds every security header to every response, keeping a page's own CSP", () => {
    for (const header of securityHeaders) {
      const set = elements(outbound).find((e) => e.tagName === "set-header" && attr(e, "name") === header.name);
      expect(set, header.name).toBeDefined();
      expect(attr(set!, "exists-action")).toBe(header.existsAction);
      expect(text(child(set!, "value"))).toBe(header.value);
    }
    expect(securityHeaders.find((h) => h.name === "Content-Security-Policy")?.existsAction).toBe("skip");
  });

  it("removes the headers that name what runs behind the gateway, and not Server (API Management cannot)", () => {
    const deleted = elements(outbound)
      .filter((e) => e.tagName === "set-header" && attr(e, "exists-action") === "delete")
      .map((e) => attr(e, "name"));
    expect(deleted).toEqual([...removedResponseHeaders]);
    expect(deleted).toEqual(expect.arrayContaining(["X-Powered-By", "x-ms-invocation-id"]));
    expect(all(service, "set-header").map((e) => attr(e, "name"))).not.toContain("Server");
  });

  it("answers every gateway error with the api's problem shape, title and no caching", () => {
    for (const status of gatewayProblemStatuses) {
      const response = problemBranch(onError, status);
      expect(attr(child(response, "set-status"), "code")).toBe(String(status));
      expect(headerValue(response, "Content-Type")).toBe(PROBLEM_CONTENT_TYPE);
      expect(headerValue(response, "Cache-Control")).toBe("no-store");
      const body = text(child(response, "set-body"));
      for (const member of ["type", "title", "status", "detail", "instance"]) expect(body).toContain(`new JProperty("${member}"`);
      expect(body).toContain(`new JProperty("status", ${status})`);
      const title = statusTitles[status];
      if (title) expect(body).toContain(`new JProperty("title", "${title}")`);
      // The answer a browser can read: the web app's origin, the same security headers.
      expect(headerValue(response, "Access-Control-Allow-Origin")).toBe(webOrigin);
      for (const header of securityHeaders) expect(headerValue(response, header.name), header.name).toBe(header.value);
    }
    expect(headerValue(problemBranch(onError, 401), "WWW-Authenticate")).toBe("Bearer");
  });

  it("maps what failed to the status, and never shows the internal error message", () => {
    const [status, detail] = all(onError, "set-variable").map((e) => attr(e, "value") ?? "");
    expect(status).toMatch(/reason == "BackendConnectionFailure"\) \{ return 502; \}/);
    expect(status).toMatch(/reason == "Timeout"\) \{ return 504; \}/);
    expect(status).toMatch(/source == "validate-jwt"\) \{ return 401; \}/);
    expect(status).toMatch(/reason == "OperationNotFound" \|\| reason == "ApiNotFound"\) \{ return 404; \}/);
    expect(detail).not.toContain("LastError.Message");
  });

  it("turns the api's own errors without a problem body (a platform page) into problem+json, 401/403 from its authentication into 502", () => {
    const when = child(child(outbound, "choose"), "when");
    expect(attr(when, "condition")).toContain(`StartsWith("${PROBLEM_CONTENT_TYPE}")`);
    expect(attr(all(when, "set-variable")[0]!, "value")).toMatch(/status == 401 \|\| status == 403\) \{ return 502; \}/);
    expect(names(outbound)[0]).toBe("choose");
  });

  it("echoes the caller's origin when several are allowed, else the first (a browser refuses the mismatch)", () => {
    const second = "https://www.example.com";
    const response = problemBranch(child(parse(servicePolicy({ allowedOrigins: [webOrigin, second] })), "on-error"), 404);
    expect(headerValue(response, "Access-Control-Allow-Origin")).toBe(
      `@{ var origin = context.Request.Headers.GetValueOrDefault("Origin", ""); return (origin == "${webOrigin}" || origin == "${second}") ? origin : "${webOrigin}"; }`,
    );
  });
});
