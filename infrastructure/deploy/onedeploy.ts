import type { TokenCredential } from "@azure/identity";
import { fetchOk, transientRetryPolicy, type RetryOptions } from "./http-retry";

/** Scope of the Entra token the SCM site (Kudu) accepts for OneDeploy. */
export const scmTokenScope = "https://management.azure.com/.default";

/** Kudu's DeployStatus values, as /api/deployments/<id> reports them. */
export const deployStatus = {
  cancelled: -1,
  pending: 0,
  building: 1,
  deploying: 2,
  failed: 3,
  success: 4,
  conflict: 5,
  partialSuccess: 6,
} as const;
const inProgress: ReadonlySet<number> = new Set([deployStatus.pending, deployStatus.building, deployStatus.deploying]);
const statusName = new Map<number, string>(Object.entries(deployStatus).map(([name, code]) => [code, name]));

export interface OneDeployOptions {
  /** The app's SCM site, e.g. `https://<app>.scm.azurewebsites.net` (see {@link scmUrlFor}). */
  readonly scmUrl: string;
  /** The package: a zip with host.json, package.json and the bundle. */
  readonly zip: Uint8Array;
  /** DefaultAzureCredential in production; tests inject their own. */
  readonly credential: TokenCredential;
  readonly retry?: RetryOptions;
  /** Status polling. @default { intervalMs: 2000, timeoutMs: 600000 } */
  readonly poll?: { readonly intervalMs?: number; readonly timeoutMs?: number };
  /**
   * Longest wait for one answer (the upload, one status read) before it counts as ETIMEDOUT and
   * is retried.
   * @default { publishMs: 300000, statusMs: 60000 }
   */
  readonly requestTimeout?: { readonly publishMs?: number; readonly statusMs?: number };
  /** Progress lines (Pulumi's log in the provider). */
  readonly log?: (message: string) => void;
}

export interface DeploymentOutcome {
  readonly deploymentId: string | undefined;
  readonly statusUrl: string;
}

export class DeploymentFailedError extends Error {
  constructor(
    readonly scmUrl: string,
    readonly status: number,
    /** The SCM site's own explanation (status_text, message, build errors, last log entries). */
    readonly serviceMessage: string,
  ) {
    super(`deployment to ${scmUrl} ended ${statusName.get(status) ?? `with status ${status}`}: ${serviceMessage || "(no message)"}`);
    this.name = "DeploymentFailedError";
  }
}

/** The SCM (Kudu) site of a Function App in public Azure. */
export function scmUrlFor(appName: string): string {
  if (!/^[a-z0-9][a-z0-9-]{0,58}[a-z0-9]$/i.test(appName)) throw new Error(`not a valid Function App name: ${JSON.stringify(appName)}`);
  return `https://${appName.toLowerCase()}.scm.azurewebsites.net`;
}

/**
 * Deploys a package to a Flex Consumption app through OneDeploy, keyless: POST the zip to
 * /api/publish with an Entra token, then poll the deployment until it finished. Resolves when
 * the SCM site reports success; rejects with the site's own message otherwise.
 */
export async function oneDeploy(options: OneDeployOptions): Promise<DeploymentOutcome> {
  const base = options.scmUrl.replace(/\/+$/, "");
  const policy = transientRetryPolicy(options.retry);
  const log = options.log ?? (() => {});
  const authorization = async () => {
    // Asked per request: the credential caches, and a long poll may outlive one token.
    const token = await options.credential.getToken(scmTokenScope);
    if (!token) throw new Error(`the credential returned no token for ${scmTokenScope}`);
    return `Bearer ${token.token}`;
  };

  const publishUrl = `${base}/api/publish?RemoteBuild=false`;
  log(`publishing ${options.zip.byteLength} bytes to ${publishUrl}`);
  const publishTimeoutMs = options.requestTimeout?.publishMs ?? 300_000;
  const published = await policy.execute(async () => {
    const headers = { authorization: await authorization(), "content-type": "application/zip", "cache-control": "no-cache" };
    return fetchOk(publishUrl, { method: "POST", headers, body: options.zip }, publishTimeoutMs);
  });
  const deploymentId = parseDeploymentId(await published.text());
  const statusUrl = statusUrlFor(base, published.headers.get("location"), deploymentId);

  const intervalMs = options.poll?.intervalMs ?? 2000;
  const statusTimeoutMs = options.requestTimeout?.statusMs ?? 60_000;
  const deadline = Date.now() + (options.poll?.timeoutMs ?? 600_000);
  for (;;) {
    const response = await policy.execute(async () => fetchOk(statusUrl, { method: "GET", headers: { authorization: await authorization() } }, statusTimeoutMs));
    const status = (await response.json()) as KuduDeployment;
    const code = typeof status.status === "number" ? status.status : Number(status.status);
    if (code === deployStatus.success) {
      log(`deployment ${status.id ?? deploymentId ?? ""} succeeded`);
      return { deploymentId: status.id ?? deploymentId, statusUrl };
    }
    if (!inProgress.has(code)) {
      throw new DeploymentFailedError(base, code, await failureMessage(status, authorization));
    }
    if (Date.now() + intervalMs > deadline) {
      throw new Error(`deployment to ${base} still ${statusName.get(code)} after ${options.poll?.timeoutMs ?? 600_000} ms; see ${statusUrl}`);
    }
    log(`deployment ${statusName.get(code)}: ${status.progress || status.status_text || ""}`.trimEnd());
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

/** The subset of Kudu's deployment record this module reads. */
interface KuduDeployment {
  id?: string;
  status?: number | string;
  status_text?: string;
  message?: string;
  progress?: string;
  log_url?: string;
  build_summary?: { errors?: unknown[] };
}

/** /api/publish answers with the deployment id, as a JSON string or bare. */
function parseDeploymentId(body: string): string | undefined {
  const text = body.trim();
  if (text === "") return undefined;
  try {
    const parsed = JSON.parse(text) as unknown;
    if (typeof parsed === "string") return parsed;
    if (parsed && typeof parsed === "object" && typeof (parsed as { id?: unknown }).id === "string") return (parsed as { id: string }).id;
    return undefined;
  } catch {
    return /^[\w-]+$/.test(text) ? text : undefined;
  }
}

/** Where to poll: the Location the site gave, else this deployment's record, else the latest. */
function statusUrlFor(base: string, location: string | null, deploymentId: string | undefined): string {
  if (location) return new URL(location, `${base}/`).toString();
  return deploymentId ? `${base}/api/deployments/${encodeURIComponent(deploymentId)}` : `${base}/api/deployments/latest`;
}

async function failureMessage(status: KuduDeployment, authorization: () => Promise<string>): Promise<string> {
  const parts = [status.status_text, status.message, ...(status.build_summary?.errors ?? []).map(String)].filter(
    (p): p is string => typeof p === "string" && p.trim() !== "",
  );
  if (status.log_url) {
    // The log usually holds the real cause ("package has no host.json", a failed trigger sync).
    // Best effort: the failure itself is already certain.
    try {
      const response = await fetchOk(status.log_url, { method: "GET", headers: { authorization: await authorization() } }, 30_000);
      const entries = (await response.json()) as { message?: unknown }[];
      for (const entry of entries.slice(-3)) if (typeof entry.message === "string" && entry.message.trim() !== "") parts.push(entry.message);
    } catch {
      // keep the status text alone
    }
  }
  return [...new Set(parts)].join(" | ");
}
