import path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import type { SiteEnvironment } from "./site-files";

/*
 * Pulumi serialises a dynamic provider's methods as closures and runs them in a separate
 * process that has no TypeScript loader. Serialising the deploy logic by value breaks (it drags
 * in Node internals; under vitest every import is a rewritten module object), so the methods
 * capture two absolute paths instead and load deploy-steps.ts through tsx at create/update.
 * check() and diff() are plain code over the inputs: `pulumi preview` makes no call to Azure
 * and loads nothing.
 */
const deployStepsModule = path.join(__dirname, "deploy-steps.ts");
const tsxApi = require.resolve("tsx/cjs/api");

function loadDeploySteps(): typeof import("./deploy-steps") {
  const tsx = require(tsxApi) as { require: (id: string, from: string) => unknown };
  return tsx.require(deployStepsModule, deployStepsModule) as typeof import("./deploy-steps");
}

/**
 * Pulumi diff by content hash: a change exactly when the hash (or a listed target input)
 * differs. `replaceKeys` name inputs whose change means another target, so a fresh create.
 * An input still unknown on preview compares as changed (conservative).
 */
export function diffByHash(olds: Record<string, unknown>, news: Record<string, unknown>, hashKey: string, replaceKeys: readonly string[]) {
  const replaces = replaceKeys.filter((key) => olds[key] !== news[key]);
  return { changes: replaces.length > 0 || olds[hashKey] !== news[hashKey], replaces, deleteBeforeReplace: false };
}

/** check(): names every missing input at once. */
export function missingInputs(news: Record<string, unknown>, required: readonly string[]) {
  return required.filter((key) => typeof news[key] !== "string" || news[key] === "").map((property) => ({ property, reason: `${property} must be a non-empty string` }));
}

const functionCodeProvider: pulumi.dynamic.ResourceProvider = {
  async check(_olds, news) {
    return { inputs: news, failures: missingInputs(news, ["scmUrl", "packagePath", "packageHash"]) };
  },
  async diff(_id, olds, news) {
    return diffByHash(olds, news, "packageHash", ["scmUrl"]);
  },
  async create(inputs) {
    const outs = await loadDeploySteps().deployFunctionCode(inputs as import("./deploy-steps").FunctionCodeInputs);
    return { id: `${outs.scmUrl}#${outs.packageHash}`, outs };
  },
  async update(_id, _olds, news) {
    return { outs: await loadDeploySteps().deployFunctionCode(news as import("./deploy-steps").FunctionCodeInputs) };
  },
  // Nothing to undo: the package lives and dies with the app.
  async delete() {},
};

const staticSiteProvider: pulumi.dynamic.ResourceProvider = {
  async check(_olds, news) {
    return { inputs: news, failures: missingInputs(news, ["blobEndpoint", "siteDir", "siteHash"]) };
  },
  async diff(_id, olds, news) {
    return diffByHash(olds, news, "siteHash", ["blobEndpoint"]);
  },
  async create(inputs) {
    const { blobEndpoint, siteDir, siteHash, fileCount } = await loadDeploySteps().deployStaticSite(inputs as import("./deploy-steps").StaticSiteInputs);
    return { id: `${blobEndpoint}#$web`, outs: { blobEndpoint, siteDir, siteHash, fileCount } };
  },
  async update(_id, _olds, news) {
    const { blobEndpoint, siteDir, siteHash, fileCount } = await loadDeploySteps().deployStaticSite(news as import("./deploy-steps").StaticSiteInputs);
    return { outs: { blobEndpoint, siteDir, siteHash, fileCount } };
  },
  // Leaving the files: the site goes when its storage account does.
  async delete() {},
};

export interface FunctionCodeDeploymentArgs {
  /** The app's SCM site, `https://<app>.scm.azurewebsites.net`. */
  readonly scmUrl: pulumi.Input<string>;
  /** The zip built by scripts/bundle in this program run. */
  readonly packagePath: pulumi.Input<string>;
  /** sha256 of the zip: unchanged hash, no deployment; changed hash, exactly one. */
  readonly packageHash: pulumi.Input<string>;
}

/**
 * A service's code package deployed to its Flex Consumption app through OneDeploy, keyless
 * (the deployer's Entra token). Give it `dependsOn` the app and the app's role assignments,
 * and `replaceWith` the site, so a replaced app gets its code again.
 */
export class FunctionCodeDeployment extends pulumi.dynamic.Resource {
  declare readonly scmUrl: pulumi.Output<string>;
  declare readonly packageHash: pulumi.Output<string>;
  /** Kudu's id of the deployment that put this package in place. */
  declare readonly deploymentId: pulumi.Output<string>;

  constructor(name: string, args: FunctionCodeDeploymentArgs, opts?: pulumi.CustomResourceOptions) {
    super(functionCodeProvider, name, { ...args, deploymentId: undefined }, opts, "platform", "FunctionCodeDeployment");
  }
}

export interface StaticSiteDeploymentArgs {
  /** The account's blob endpoint; the files go to its `$web` container. */
  readonly blobEndpoint: pulumi.Input<string>;
  /** The directory whose files become the site. */
  readonly siteDir: pulumi.Input<string>;
  /** Content hash of the files that go up (site-files.ts siteContentHash of siteFilesToDeploy). */
  readonly siteHash: pulumi.Input<string>;
  /** The stack the site is deployed for: its config.json and the Content-Security-Policy of its pages. */
  readonly environment?: pulumi.Input<SiteEnvironment>;
}

/**
 * The static frontend uploaded to `$web`, keyless: the deployer needs Storage Blob Data
 * Contributor on the account (give it `dependsOn` that role assignment and the static website).
 */
export class StaticSiteDeployment extends pulumi.dynamic.Resource {
  declare readonly siteHash: pulumi.Output<string>;
  declare readonly fileCount: pulumi.Output<number>;

  constructor(name: string, args: StaticSiteDeploymentArgs, opts?: pulumi.CustomResourceOptions) {
    super(staticSiteProvider, name, { ...args, fileCount: undefined }, opts, "platform", "StaticSiteDeployment");
  }
}

/** The providers, for tests that drive check/diff/create directly. */
export const providers = { functionCode: functionCodeProvider, staticSite: staticSiteProvider } as const;
