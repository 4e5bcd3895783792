/**
 * The per-environment Content-Security-Policy: exactly the origins the page needs, nothing else,
 * and a meta element that must be present once in every page.
 */
import { describe, expect, it } from "vitest";
import { contentSecurityPolicy, webSocketOrigin, withContentSecurityPolicy } from "../../web/site/content-security-policy";
import { runtimeConfig } from "../../web/src/runtime-config";

const azure = { blobEndpoint: "https://stdata123.blob.core.windows.net/", webPubSubEndpoint: "https://wps-dev.webpubsub.azure.com" };

function directives(policy: string): Record<string, string[]> {
  return Object.fromEntries(policy.split("; ").map((d) => d.split(" ")).map(([name, ...values]) => [name!, values]));
}

describe("contentSecurityPolicy", () => {
  it("lets an Entra page reach its api, the upload origin, the Web PubSub socket and the sign-in authority, and frame only the authority", () => {
    const config = runtimeConfig("https://func-api-x.azurewebsites.net", { mode: "entra", tenantId: "t-1", spaClientId: "spa", apiClientId: "api" });
    expect(directives(contentSecurityPolicy(config, azure))).toEqual({
      "default-src": ["'none'"],
      "script-src": ["'self'"],
      "style-src": ["'self'"],
      "img-src": ["'self'"],
      "connect-src": ["'self'", "https://func-api-x.azurewebsites.net", "https://stdata123.blob.core.windows.net", "wss://wps-dev.webpubsub.azure.com", "https://login.microsoftonline.com"],
      "frame-src": ["https://login.microsoftonline.com"],
      "base-uri": ["'none'"],
      "form-action": ["'none'"],
    });
  });

  it("gives the local development page the emulators' origins, plain ws, and no sign-in origin or frame", () => {
    const config = runtimeConfig("http://127.0.0.1:7071", { mode: "development", header: "x-dev-user" });
    const policy = directives(contentSecurityPolicy(config, { blobEndpoint: "http://127.0.0.1:10000/devstoreaccount1", webPubSubEndpoint: "http://127.0.0.1:8080" }));
    expect(policy["connect-src"]).toEqual(["'self'", "http://127.0.0.1:7071", "http://127.0.0.1:10000", "ws://127.0.0.1:8080"]);
    expect(policy["frame-src"]).toEqual(["'none'"]);
    expect(policy["script-src"]).toEqual(["'self'"]);
  });

  it("refuses endpoints that are not URLs", () => {
    const config = runtimeConfig("https://a.example", { mode: "none" });
    expect(() => contentSecurityPolicy(config, { ...azure, blobEndpoint: "stdata123" })).toThrow(/Blob endpoint is not a URL/);
    expect(() => webSocketOrigin("ftp://x")).toThrow(/http\(s\) or ws\(s\)/);
  });
});

describe("withContentSecurityPolicy", () => {
  const page = `<!doctype html><head><meta charset="utf-8" />\n<meta http-equiv="Content-Security-Policy" content="default-src 'none'; connect-src 'self'" />\n<title>t</title>`;

  it("replaces the policy of the page's meta element and leaves the rest alone", () => {
    const out = withContentSecurityPolicy(page, "default-src 'none'; connect-src 'self' https://api.example");
    expect(out).toBe(
      `<!doctype html><head><meta charset="utf-8" />\n<meta http-equiv="Content-Security-Policy" content="default-src 'none'; connect-src 'self' https://api.example" />\n<title>t</title>`,
    );
  });

  it("escapes what would end the attribute", () => {
    expect(withContentSecurityPolicy(page, `a "b" & c`)).toContain(`content="a &quot;b&quot; &amp; c"`);
  });

  it("refuses a page with no policy element, or with two", () => {
    expect(() => withContentSecurityPolicy("<!doctype html><title>t</title>", "x", "about.html")).toThrow(/about.html must carry exactly one .* \(found 0\)/);
    expect(() => withContentSecurityPolicy(page + page, "x")).toThrow(/found 2/);
  });
});
