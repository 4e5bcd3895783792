/**
 * The platform program with its content deployments, under mocks: each service's code and the
 * site are deployed with the hashes of what was built, after the resources they need.
 */
import { beforeAll, describe, expect, it } from "vitest";
import * as pulumi from "@pulumi/pulumi";
import { getClientConfigOutput } from "@pulumi/azure-native/authorization";
import { serviceNames } from "../../functions/src/services";
import { parseConfig, projectName } from "../../infrastructure/config";
import { createPlatform, type Platform } from "../../infrastructure/platform";
import path from "node:path";
import { deployContent, type ContentDeployments } from "../../infrastructure/deploy/platform-deployments";
import { siteContentHash, siteEnvironment, siteFilesToDeploy } from "../../infrastructure/deploy/site-files";
import { installMocks, named, settled, valueOf, type MockedStack } from "../infrastructure/support/mocks";
import { registered } from "../infrastructure/support/tree";

/** What the program sent the engine for each resource: its dependencies (URNs). */
const dependenciesByName = new Map<string, string[]>();
let stack: MockedStack;
let platform: Platform;
let deployments: ContentDeployments;
const built: string[] = [];
/** Stands for the web app's build output (a real build is tested in tests/web). */
const siteDir = path.join(__dirname, "fixtures", "site");
let siteBuilds = 0;

beforeAll(async () => {
  stack = await installMocks("dev");
  // The mocks' newResource does not see dependencies; the register request does.
  const monitor = pulumi.runtime.getMonitor() as unknown as { registerResource: (req: RegisterRequest, cb: unknown) => unknown };
  const register = monitor.registerResource.bind(monitor);
  monitor.registerResource = (req, cb) => {
    dependenciesByName.set(req.getName(), req.getDependenciesList());
    return register(req, cb);
  };
  platform = createPlatform(parseConfig({}), { project: projectName, stack: "dev", client: getClientConfigOutput() });
  deployments = deployContent(platform, {
    build: async (service) => {
      built.push(service);
      return { zipPath: `/build/${service}.zip`, sha256: `hash-of-${service}` };
    },
    buildSite: async () => {
      siteBuilds++;
      return siteDir;
    },
  });
  await registered([...serviceNames.map((service) => platform.apps[service]), platform.storage]);
  await valueOf(pulumi.output([...serviceNames.map((service) => deployments.code[service].urn), deployments.site.urn]));
  await settled(stack);
});

interface RegisterRequest {
  getName(): string;
  getDependenciesList(): string[];
}

const urnOf = (resource: pulumi.Resource) => valueOf(resource.urn);

describe("content deployments in the program", () => {
  it("deploys each service's package to its own app's SCM site, keyed on the package hash", async () => {
    expect(built.sort()).toEqual([...serviceNames].sort());
    expect(built).toEqual(expect.arrayContaining(["api", "agent"]));
    for (const service of serviceNames) {
      const resource = named(stack, `${service}-code`);
      expect(resource.type).toBe("pulumi-nodejs:dynamic/platform:FunctionCodeDeployment");
      const scmHost = await valueOf(platform.apps[service].scmHostName);
      expect(resource.inputs).toMatchObject({ scmUrl: `https://${scmHost}`, packagePath: `/build/${service}.zip`, packageHash: `hash-of-${service}` });
    }
    const scmUrls = serviceNames.map((service) => named(stack, `${service}-code`).inputs.scmUrl);
    expect(new Set(scmUrls).size).toBe(serviceNames.length);
  });

  it("builds the web app once and uploads the build to the data account's blob endpoint, keyed on its content hash", async () => {
    expect(siteBuilds).toBe(1);
    const resource = named(stack, "web-site");
    expect(resource.type).toBe("pulumi-nodejs:dynamic/platform:StaticSiteDeployment");
    const environment = siteEnvironment(await valueOf(platform.site));
    expect(resource.inputs).toMatchObject({
      blobEndpoint: await valueOf(platform.storage.dataBlobEndpoint),
      siteDir,
      environment,
      siteHash: siteContentHash(await siteFilesToDeploy(siteDir, environment)),
    });
  });

  it("makes the build this stack's site: its api, its Blob and Web PubSub origins, and no sign-in when none is configured", async () => {
    expect(siteEnvironment(await valueOf(platform.site))).toEqual({
      runtimeConfig: { apiBaseUrl: await valueOf(platform.apps.api.url), auth: { mode: "none" } },
      endpoints: { blobEndpoint: await valueOf(platform.storage.dataBlobEndpoint), webPubSubEndpoint: await valueOf(platform.realtime.serviceUri) },
    });
  });

  it("deploys code only after the app and every role assignment the app was given", async () => {
    for (const service of serviceNames) {
      const app = platform.apps[service];
      const deps = new Set(dependenciesByName.get(`${service}-code`));
      expect(deps.has(await urnOf(app.site))).toBe(true);
      expect(app.grants.length).toBeGreaterThan(0);
      for (const grant of app.grants) expect(deps.has(await urnOf(grant))).toBe(true);
      expect(deps.has(await urnOf(platform.storage.deploymentContainers[service]!)), `${service}-code waits for its deployment container`).toBe(true);
    }
  });

  it("uploads the site only after the static website exists and the deployer may write to it", async () => {
    const deps = new Set(dependenciesByName.get("web-site"));
    expect(deps.has(await urnOf(platform.storage.website))).toBe(true);
    expect(platform.deployerGrants.length).toBeGreaterThan(0);
    for (const grant of platform.deployerGrants) expect(deps.has(await urnOf(grant))).toBe(true);
  });
});
