/**
 * config.json: one typed shape, built by the writers (local platform, Pulumi program) and read by
 * the page, with errors that name the member at fault.
 */
import { describe, expect, it } from "vitest";
import { parseRuntimeConfig, runtimeConfig, RuntimeConfigError } from "../../web/src/runtime-config";

const tenantId = "11111111-2222-3333-4444-555555555555";
const spaClientId = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee";
const apiClientId = "99999999-8888-7777-6666-555555555555";

describe("runtimeConfig (what the writers call)", () => {
  it("builds the Entra shape from the stack's ids: authority from the tenant, the api's delegated scope", () => {
    expect(runtimeConfig("https://func-api.azurewebsites.net/", { mode: "entra", tenantId, spaClientId, apiClientId })).toEqual({
      apiBaseUrl: "https://func-api.azurewebsites.net",
      auth: {
        mode: "entra",
        clientId: spaClientId,
        authority: `https://login.microsoftonline.com/${tenantId}`,
        scopes: [`api://${apiClientId}/user_impersonation`],
      },
    });
  });

  it("takes another cloud's sign-in instance and another scope name", () => {
    const config = runtimeConfig("https://api.example.us", { mode: "entra", tenantId, spaClientId, apiClientId, scope: "access_as_user", instance: "https://login.microsoftonline.us" });
    expect(config.auth).toMatchObject({ authority: `https://login.microsoftonline.us/${tenantId}`, scopes: [`api://${apiClientId}/access_as_user`] });
  });

  it("builds the development and no-sign-in shapes", () => {
    expect(runtimeConfig("http://127.0.0.1:7071", { mode: "development", header: "x-dev-user" })).toEqual({
      apiBaseUrl: "http://127.0.0.1:7071",
      auth: { mode: "development", header: "x-dev-user" },
    });
    expect(runtimeConfig("https://a.example", { mode: "none" }).auth).toEqual({ mode: "none" });
  });

  it("refuses an api URL with a path (the app adds /api/...), a non-http URL, or an empty id, naming the member", () => {
    expect(() => runtimeConfig("https://a.example/api", { mode: "none" })).toThrow(/apiBaseUrl must be the api's origin without a path/);
    expect(() => runtimeConfig("ftp://a.example", { mode: "none" })).toThrow(/apiBaseUrl must be an http\(s\) URL/);
    expect(() => runtimeConfig("not a url", { mode: "none" })).toThrow(RuntimeConfigError);
    expect(() => runtimeConfig("https://a.example", { mode: "entra", tenantId, spaClientId: " ", apiClientId })).toThrow(/auth.spaClientId must be a non-empty string/);
  });
});

describe("parseRuntimeConfig (what the page calls)", () => {
  it("reads back what the writers write, in every mode", () => {
    for (const config of [
      runtimeConfig("https://api.example", { mode: "entra", tenantId, spaClientId, apiClientId }),
      runtimeConfig("http://127.0.0.1:7071", { mode: "development", header: "x-dev-user" }),
      runtimeConfig("https://api.example", { mode: "none" }),
    ]) {
      expect(parseRuntimeConfig(JSON.parse(JSON.stringify(config)))).toEqual(config);
    }
  });

  it("names what is wrong in a hand-edited file", () => {
    expect(() => parseRuntimeConfig([])).toThrow(/config.json must be an object/);
    expect(() => parseRuntimeConfig({ apiUrl: "https://a.example/api" })).toThrow(/apiBaseUrl must be the api's URL/);
    expect(() => parseRuntimeConfig({ apiBaseUrl: "https://a.example" })).toThrow(/auth must be an object/);
    expect(() => parseRuntimeConfig({ apiBaseUrl: "https://a.example", auth: { mode: "magic" } })).toThrow(/auth.mode must be "development", "entra" or "none", got "magic"/);
    expect(() => parseRuntimeConfig({ apiBaseUrl: "https://a.example", auth: { mode: "entra", clientId: "c", authority: "https://login.microsoftonline.com/t", scopes: [] } })).toThrow(
      /auth.scopes must list at least one scope/,
    );
    expect(() => parseRuntimeConfig({ apiBaseUrl: "https://a.example", auth: { mode: "entra", clientId: "c", authority: "javascript:alert(1)", scopes: ["s"] } })).toThrow(
      /auth.authority must be an http\(s\) URL/,
    );
    expect(() => parseRuntimeConfig({ apiBaseUrl: "https://a.example", auth: { mode: "development" } })).toThrow(/auth.header must be a non-empty string/);
  });
});
