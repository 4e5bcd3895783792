import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import { DefaultAzureCredential, type TokenCredential } from "@azure/identity";
import type { ContainerClient } from "@azure/storage-blob";
import { handleWhen, retry, ExponentialBackoff } from "cockatiel";
import { duration, oneDeploy, type OneDeployOptions } from "./onedeploy";
import { siteContentHash, siteFilesToDeploy, type SiteEnvironment } from "./site-files";
import { syncStaticSite, webContainerClient, type SiteSyncResult } from "./static-site";

/**
 * What the Pulumi providers do, as plain functions: tested directly against local servers, and
 * loaded by the thin dynamic providers in code-deployment.ts at create/update time only, so
 * `pulumi preview` never runs any of it.
 */

/** Inputs of a code deployment, as the provider receives them. */
export interface FunctionCodeInputs {
  /** `https://<app>.scm.azurewebsites.net`. */
  readonly scmUrl: string;
  /** The zip on this machine (built in the same program run). */
  readonly packagePath: string;
  /** sha256 of the zip: the resource changes exactly when this does. */
  readonly packageHash: string;
}

export interface FunctionCodeOutputs extends FunctionCodeInputs {
  readonly deploymentId: string;
}

/** Waits and retries of the OneDeploy client, for tests that cannot wait minutes. */
export type OneDeployTuning = Pick<OneDeployOptions, "retry" | "poll" | "ongoingDeploymentWait" | "roleAssignmentWait" | "requestTimeout">;

/**
 * Progress on the console, each line naming the app (both apps deploy at once). Pulumi shows a
 * dynamic provider's output as info messages of the `pulumi up` run.
 */
export function consoleProgress(label: string): (message: string) => void {
  return (message) => console.log(`[${label}] ${message}`);
}

/** Deploys the package, after checking it is the one whose hash Pulumi planned with. */
export async function deployFunctionCode(
  inputs: FunctionCodeInputs,
  options: { credential?: TokenCredential; log?: (message: string) => void; tuning?: OneDeployTuning } = {},
): Promise<FunctionCodeOutputs> {
  const zip = await readFile(inputs.packagePath).catch((error: unknown) => {
    throw new Error(`cannot read the package ${inputs.packagePath}: ${error instanceof Error ? error.message : String(error)}`);
  });
  const actual = createHash("sha256").update(zip).digest("hex");
  if (actual !== inputs.packageHash) {
    throw new Error(`package ${inputs.packagePath} changed since it was hashed (planned ${inputs.packageHash}, found ${actual}); run the deployment again`);
  }
  const outcome = await oneDeploy({
    scmUrl: inputs.scmUrl,
    zip,
    credential: options.credential ?? new DefaultAzureCredential(),
    log: options.log ?? consoleProgress(new URL(inputs.scmUrl).hostname.split(".")[0] ?? inputs.scmUrl),
    ...options.tuning,
  });
  return { ...inputs, deploymentId: outcome.deploymentId ?? "" };
}

/** Inputs of a static-site upload, as the provider receives them. */
export interface StaticSiteInputs {
  /** The account's blob endpoint, `https://<account>.blob.core.windows.net/`. */
  readonly blobEndpoint: string;
  /** The directory whose files become the site. */
  readonly siteDir: string;
  /** {@link siteContentHash} of {@link siteFilesToDeploy}: the resource changes exactly when this does. */
  readonly siteHash: string;
  /**
   * The environment the site is deployed for: its config.json and the Content-Security-Policy
   * of its pages. Without it the build goes up as built (same-origin policy, no config.json).
   */
  readonly environment?: SiteEnvironment;
}

export interface StaticSiteOutputs extends StaticSiteInputs {
  readonly fileCount: number;
}

/** Uploads the site, after checking it is the content whose hash Pulumi planned with. */
export async function deployStaticSite(
  inputs: StaticSiteInputs,
  options: { container?: ContainerClient; log?: (message: string) => void; permissionWait?: PermissionWait } = {},
): Promise<StaticSiteOutputs & SiteSyncResult> {
  const files = await siteFilesToDeploy(inputs.siteDir, inputs.environment);
  const actual = siteContentHash(files);
  if (actual !== inputs.siteHash) {
    throw new Error(`site ${inputs.siteDir} changed since it was hashed (planned ${inputs.siteHash}, found ${actual}); run the deployment again`);
  }
  const container = options.container ?? webContainerClient(inputs.blobEndpoint);
  const log = options.log ?? consoleProgress("$web");
  const policy = waitingForNewRoleAssignments(options.permissionWait);
  const maxRetries = options.permissionWait?.maxRetries ?? 8;
  policy.onRetry(({ delay, attempt }) =>
    log(`your new role assignment on the storage account has not taken effect yet (403 AuthorizationPermissionMismatch); trying again in ${duration(delay)} (retry ${attempt} of ${maxRetries})`),
  );
  const result = await policy.execute(() => syncStaticSite(container, files, log));
  return { ...inputs, fileCount: files.length, ...result };
}

/** How long to wait for a just-created data-plane role assignment to take effect. */
export interface PermissionWait {
  /** @default 8 */
  readonly maxRetries?: number;
  /** @default 5000 */
  readonly initialDelayMs?: number;
  /** @default 30000 */
  readonly maxDelayMs?: number;
}

// Storage's answer while an RBAC assignment made seconds ago has not propagated yet (it can take
// minutes). Only these codes: any other 403 is a real refusal and fails at once.
const propagationCodes = new Set(["AuthorizationPermissionMismatch", "AuthorizationFailure"]);

function waitingForNewRoleAssignments(wait: PermissionWait = {}) {
  return retry(
    handleWhen((error) => {
      const { statusCode, code } = error as Error & { statusCode?: number; code?: string };
      return statusCode === 403 && code !== undefined && propagationCodes.has(code);
    }),
    {
      maxAttempts: wait.maxRetries ?? 8,
      backoff: new ExponentialBackoff({ initialDelay: wait.initialDelayMs ?? 5000, maxDelay: wait.maxDelayMs ?? 30_000 }),
    },
  );
}
