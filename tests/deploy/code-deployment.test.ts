import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import { RestError, type ContainerClient } from "@azure/storage-blob";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { sha256Hex } from "../../scripts/bundle/build";
import { FunctionCodeDeployment, providers, StaticSiteDeployment } from "../../infrastructure/deploy/code-deployment";
import { deployFunctionCode, deployStaticSite } from "../../infrastructure/deploy/deploy-steps";
import { readSiteFiles, siteContentHash, siteFilesToDeploy } from "../../infrastructure/deploy/site-files";
import { runtimeConfig } from "../../web/src/runtime-config";
import { json, RecordingCredential, ScriptedServer, text } from "./scm-server";

interface Recorded {
  type: string;
  name: string;
  inputs: Record<string, unknown>;
}
const recorded: Recorded[] = [];
pulumi.runtime.setMocks(
  {
    newResource: (args) => {
      recorded.push({ type: args.type, name: args.name, inputs: args.inputs as Record<string, unknown> });
      return { id: `${args.name}-id`, state: args.inputs };
    },
    call: (args) => args.inputs,
  },
  "platform",
  "test",
  true, // preview: nothing may reach Azure
);

const outputOf = <T>(output: pulumi.Output<T>) => new Promise<T>((resolve) => output.apply(resolve));

let scm: ScriptedServer;
let work: string;
let zipPath: string;
const zip = Buffer.from("PK\u0003\u0004 pretend package");

beforeAll(async () => {
  scm = await ScriptedServer.start();
  work = await mkdtemp(path.join(tmpdir(), "code-deployment-"));
  zipPath = path.join(work, "api.zip");
  await writeFile(zipPath, zip);
});
afterAll(async () => {
  await scm.stop();
  await rm(work, { recursive: true, force: true });
});
beforeEach(() => scm.reset());

// Deserialises a provider the way Pulumi's dynamic-provider host does (a separate process with
// no TypeScript loader; here, the same process).
const requireFromString = require("require-from-string") as (code: string) => { handler: () => pulumi.dynamic.ResourceProvider };

describe("the dynamic providers", () => {
  it("diff reports a change exactly when the package hash changes, and a replacement for another app", async () => {
    const olds = { scmUrl: "https://a.scm.azurewebsites.net", packagePath: "/x/api.zip", packageHash: "aa" };
    await expect(providers.functionCode.diff!("id", olds, { ...olds, packagePath: "/elsewhere/api.zip" })).resolves.toMatchObject({ changes: false, replaces: [] });
    await expect(providers.functionCode.diff!("id", olds, { ...olds, packageHash: "bb" })).resolves.toMatchObject({ changes: true, replaces: [] });
    await expect(providers.functionCode.diff!("id", olds, { ...olds, scmUrl: "https://b.scm.azurewebsites.net" })).resolves.toMatchObject({
      changes: true,
      replaces: ["scmUrl"],
    });
    const site = { blobEndpoint: "https://acct.blob.core.windows.net/", siteDir: "web", siteHash: "11" };
    await expect(providers.staticSite.diff!("id", site, { ...site })).resolves.toMatchObject({ changes: false });
    await expect(providers.staticSite.diff!("id", site, { ...site, siteHash: "22" })).resolves.toMatchObject({ changes: true, replaces: [] });
  });

  it("check names every missing input", async () => {
    const result = await providers.functionCode.check!({}, { scmUrl: "https://a.scm.azurewebsites.net", packageHash: "" });
    expect(result.failures?.map((f: { property: string }) => f.property)).toEqual(["packagePath", "packageHash"]);
  });

  it("register under mocks (the closure serialises) without any HTTP call", async () => {
    const code = new FunctionCodeDeployment("api-code", { scmUrl: scm.url, packagePath: zipPath, packageHash: sha256Hex(zip) });
    const site = new StaticSiteDeployment("web-site", { blobEndpoint: `${scm.url}/devstoreaccount1`, siteDir: work, siteHash: "00" });
    expect(await outputOf(code.packageHash)).toBe(sha256Hex(zip));
    expect(await outputOf(site.siteHash)).toBe("00");
    const types = recorded.map((r) => r.type);
    expect(types).toContain("pulumi-nodejs:dynamic/platform:FunctionCodeDeployment");
    expect(types).toContain("pulumi-nodejs:dynamic/platform:StaticSiteDeployment");
    for (const r of recorded) expect(typeof r.inputs.__provider).toBe("string");
    expect(scm.requests).toEqual([]);

    // The serialised provider works on its own: diff is plain code, create loads the deploy
    // steps at run time (and here stops at the hash check, before any network call).
    const serialised = recorded.find((r) => r.name === "web-site")!.inputs.__provider as string;
    const provider = requireFromString(serialised).handler();
    const inputs = { blobEndpoint: "https://acct.blob.core.windows.net/", siteDir: path.join(__dirname, "../../web"), siteHash: "stale" };
    await expect(provider.diff!("id", inputs, { ...inputs, siteHash: "fresh" })).resolves.toMatchObject({ changes: true });
    await expect(provider.create(inputs)).rejects.toThrow(/changed since it was hashed/);
  });
});

describe("deployFunctionCode", () => {
  it("deploys the package whose hash was planned", async () => {
    scm.on("POST", "/api/publish", text(202, '"d-1"')).on("GET", "/api/deployments/d-1", json(200, { status: 4 }));
    const logged: string[] = [];
    const outs = await deployFunctionCode(
      { scmUrl: scm.url, packagePath: zipPath, packageHash: sha256Hex(zip) },
      { credential: new RecordingCredential(), tuning: { poll: { intervalMs: 1 } }, log: (line) => void logged.push(line) },
    );
    expect(outs.deploymentId).toBe("d-1");
    expect(logged).toContain("deployment d-1 succeeded");
    expect(scm.requests[0]?.body.equals(zip)).toBe(true);
  });

  it("refuses a package that changed after planning, before any HTTP call", async () => {
    await expect(deployFunctionCode({ scmUrl: scm.url, packagePath: zipPath, packageHash: "0".repeat(64) }, { credential: new RecordingCredential() })).rejects.toThrow(
      /changed since it was hashed/,
    );
    expect(scm.requests).toEqual([]);
  });
});

describe("deployStaticSite", () => {
  const fakeContainer = (failures: number) => {
    const calls = { list: 0, uploads: [] as string[] };
    const container = {
      async *listBlobsFlat() {
        calls.list++;
        if (calls.list <= failures) {
          throw new RestError("This request is not authorized to perform this operation using this permission.", { statusCode: 403, code: "AuthorizationPermissionMismatch" });
        }
      },
      getBlockBlobClient: (name: string) => ({ uploadData: async () => void calls.uploads.push(name) }),
      deleteBlob: async () => undefined,
    };
    return { calls, container: container as unknown as ContainerClient };
  };
  let site: string;
  beforeAll(async () => {
    site = await mkdtemp(path.join(tmpdir(), "site-"));
    await writeFile(path.join(site, "index.html"), "<!doctype html>");
  });
  afterAll(() => rm(site, { recursive: true, force: true }));

  it("waits out a role assignment that has not propagated yet", async () => {
    const { calls, container } = fakeContainer(2);
    const siteHash = siteContentHash(await readSiteFiles(site));
    const logged: string[] = [];
    const result = await deployStaticSite(
      { blobEndpoint: "https://x", siteDir: site, siteHash },
      { container, permissionWait: { initialDelayMs: 1, maxDelayMs: 2 }, log: (line) => void logged.push(line) },
    );
    expect(calls.list).toBe(3);
    // Each wait says what it waits for and how many tries are left.
    expect(logged.filter((line) => line.includes("role assignment on the storage account has not taken effect yet"))).toHaveLength(2);
    expect(logged[0]).toMatch(/retry 1 of 8/);
    expect(calls.uploads).toEqual(["index.html"]);
    expect(result.fileCount).toBe(1);
  });

  it("deploys the environment's site: its config.json, keyed on the hash of what goes up", async () => {
    const environment = {
      runtimeConfig: runtimeConfig("https://api.example.net", { mode: "none" }),
      endpoints: { blobEndpoint: "https://data.blob.core.windows.net/", webPubSubEndpoint: "https://wps.webpubsub.azure.com" },
    };
    await writeFile(path.join(site, "index.html"), `<!doctype html><meta http-equiv="Content-Security-Policy" content="default-src 'none'">`);
    const { calls, container } = fakeContainer(0);
    // The plain build's hash is not the environment's: a changed api URL redeploys the site.
    const buildHash = siteContentHash(await readSiteFiles(site));
    await expect(deployStaticSite({ blobEndpoint: "https://x", siteDir: site, siteHash: buildHash, environment }, { container })).rejects.toThrow(/changed since it was hashed/);
    const siteHash = siteContentHash(await siteFilesToDeploy(site, environment));
    const result = await deployStaticSite({ blobEndpoint: "https://x", siteDir: site, siteHash, environment }, { container });
    expect(calls.uploads.sort()).toEqual(["config.json", "index.html"]);
    expect(result.fileCount).toBe(2);
  });

  it("fails on a site that changed after planning", async () => {
    const { calls, container } = fakeContainer(0);
    await expect(deployStaticSite({ blobEndpoint: "https://x", siteDir: site, siteHash: "stale" }, { container })).rejects.toThrow(/changed since it was hashed/);
    expect(calls.list).toBe(0);
  });
});
