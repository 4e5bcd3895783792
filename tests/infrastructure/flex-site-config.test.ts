/**
 * What the Flex Consumption site config may carry: azure-native's injected App Service defaults are
 * dropped, a property Flex refuses fails the program before Azure is asked.
 */
import { describe, expect, it } from "vitest";
import { flexSiteConfig, flexRejectedSiteConfig } from "../../infrastructure/components/function-app";

describe("flexSiteConfig", () => {
  it("drops the defaults azure-native injects into every siteConfig and keeps the Flex set", () => {
    const withDefaults = { minTlsVersion: "1.2", cors: { allowedOrigins: [] }, appSettings: [], netFrameworkVersion: "v4.6", localMySqlEnabled: false, http20Enabled: true };
    expect(flexSiteConfig(withDefaults)).toEqual({ minTlsVersion: "1.2", cors: { allowedOrigins: [] }, appSettings: [] });
  });

  it.each(flexRejectedSiteConfig.map((key) => [key]))("refuses %s, naming it and why", (key) => {
    expect(() => flexSiteConfig({ minTlsVersion: "1.2", [key]: "x" })).toThrow(new RegExp(`siteConfig\\.${key} cannot be set on a Flex Consumption app: Flex Consumption rejects it`));
  });

  it("refuses a non-default value of an injected property (someone set it on purpose)", () => {
    expect(() => flexSiteConfig({ netFrameworkVersion: "v8.0" })).toThrow(/siteConfig\.netFrameworkVersion cannot be set/);
    expect(() => flexSiteConfig({ remoteDebuggingEnabled: false })).toThrow(/Microsoft's Flex references never send it/);
  });
});
