import path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import { buildService, type ServiceBundle } from "../../scripts/bundle/build";
import { perService, type ServiceName } from "../../functions/src/services";
import type { Platform } from "../platform";
import type { FunctionApp } from "../components/function-app";
import { buildWebAppSnapshot } from "../../web/site/build";
import { FunctionCodeDeployment, StaticSiteDeployment } from "./code-deployment";
import { siteContentHash, siteEnvironment, siteFilesToDeploy } from "./site-files";

export interface ContentDeployments {
  readonly code: Readonly<Record<ServiceName, FunctionCodeDeployment>>;
  readonly site: StaticSiteDeployment;
}

export interface ContentDeploymentOptions {
  /** Builds a service's package; the real bundler by default (tests pass their own). */
  readonly build?: (service: ServiceName) => Promise<Pick<ServiceBundle, "zipPath" | "sha256">>;
  /** Builds the web app and answers the directory to upload; by default a Vite build in dist/site/<content hash> (tests pass their own). */
  readonly buildSite?: () => Promise<string>;
}

/**
 * Options of a code deployment: after the app and its role assignments (the first start reads
 * the package with the app's identity), and created anew when the site is replaced, since a new
 * site has no code even though the package hash is unchanged.
 */
export function codeDeploymentOptions(app: FunctionApp<ServiceName>, deploymentContainer: pulumi.Resource): pulumi.CustomResourceOptions {
  return { dependsOn: [app, ...app.grants, deploymentContainer], replaceWith: [app.site] };
}

/** Options of the site upload: after `$web` exists and the deployer may write to it. */
export function siteDeploymentOptions(platform: Pick<Platform, "storage" | "deployerGrants">): pulumi.CustomResourceOptions {
  return { dependsOn: [platform.storage.website, ...platform.deployerGrants] };
}

/**
 * Builds each service's package and the site's content hash while the program runs (locally;
 * preview makes no Azure call), and declares their deployments: each redeploys exactly when its
 * content hash changes.
 */
export function deployContent(platform: Pick<Platform, "apps" | "storage" | "deployerGrants" | "site">, options: ContentDeploymentOptions = {}): ContentDeployments {
  const build = options.build ?? ((service: ServiceName) => buildService(service));
  const code = perService((service) => {
    const app = platform.apps[service];
    const built = pulumi.output(build(service));
    return new FunctionCodeDeployment(
      `${service}-code`,
      { scmUrl: pulumi.interpolate`https://${app.scmHostName}`, packagePath: built.zipPath, packageHash: built.sha256 },
      codeDeploymentOptions(app, platform.storage.deploymentContainers[service] ?? missingContainer(service)),
    );
  });
  // The app is built before it is hashed, and made this stack's site (its config.json and the
  // Content-Security-Policy of its pages): the hash, and so the deployment, follows what goes up.
  const built = (options.buildSite ?? (() => buildWebAppSnapshot().then((build) => build.outDir)))().then((dir) => path.resolve(dir));
  const environment = platform.site.apply(siteEnvironment);
  const siteHash = pulumi.all([built, environment]).apply(([dir, env]) => siteFilesToDeploy(dir, env).then(siteContentHash));
  const site = new StaticSiteDeployment(
    "web-site",
    { blobEndpoint: platform.storage.dataBlobEndpoint, siteDir: pulumi.output(built), siteHash, environment },
    siteDeploymentOptions(platform),
  );
  return { code, site };
}

function missingContainer(service: string): never {
  throw new Error(`no deployment container for service "${service}"`);
}
