import { setTimeout as sleep } from "node:timers/promises";
import type { TokenCredential } from "@azure/identity";
import type { RetryPolicy } from "cockatiel";
import { fetchOk, HttpStatusError, transientRetryPolicy, type RetryOptions } from "./http-retry";

/**
 * Scope of the Entra token for the SCM site (Kudu), which takes Azure Resource Manager tokens.
 * This is the audience Microsoft's own deploy clients ask for: azd's SCM client runs on the ARM
 * pipeline of the Go SDK (scope = `https://management.core.windows.net/` + `/.default`), and the
 * az CLI's Flex deployment and `az account get-access-token` default to the same resource. A
 * public deploy runbook reports a Flex SCM host refusing `https://management.azure.com/`, so we
 * send what the tools that are known to deploy send.
 */
export const scmTokenScope = "https://management.core.windows.net//.default";

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
  /** Retries of 408, 429, 5xx and dropped connections on every request. */
  readonly retry?: RetryOptions;
  /**
   * Status polling. Every second, as azd does ("recommended by the service team"): a Flex
   * deployment's id can be recycled within seconds of finishing. A 404 before any status was
   * seen means the deployment has not come alive yet: it is retried `initialNotFoundRetries` times.
   * @default { intervalMs: 1000, timeoutMs: 600000, initialNotFoundRetries: 3 }
   */
  readonly poll?: { readonly intervalMs?: number; readonly timeoutMs?: number; readonly initialNotFoundRetries?: number };
  /**
   * /api/publish answering 409: another deployment to the app is in progress (the az CLI's
   * reading). Publishing is tried again every `intervalMs` (or after the site's Retry-After)
   * until `timeoutMs` has passed.
   * @default { intervalMs: 10000, timeoutMs: 300000 }
   */
  readonly ongoingDeploymentWait?: { readonly intervalMs?: number; readonly timeoutMs?: number };
  /**
   * A fresh app whose role assignments have not taken effect yet: the SCM site uploads the
   * package to the deployment container with the app's identity and gets a storage 403, or
   * never records the deployment (404s). The whole publish is repeated with exponential backoff
   * until `timeoutMs` (counted from the first publish) has passed. Any other failure is final.
   * @default { timeoutMs: 300000, initialDelayMs: 10000, maxDelayMs: 60000 }
   */
  readonly roleAssignmentWait?: { readonly timeoutMs?: number; readonly initialDelayMs?: number; readonly maxDelayMs?: number };
  /**
   * Longest wait for one answer (the upload, one status read) before it counts as ETIMEDOUT and
   * is retried.
   * @default { publishMs: 300000, statusMs: 60000 }
   */
  readonly requestTimeout?: { readonly publishMs?: number; readonly statusMs?: number };
  /** Progress lines, including what is being waited for and how long is left. */
  readonly log?: (message: string) => void;
}

export interface DeploymentOutcome {
  readonly deploymentId: string | undefined;
  readonly statusUrl: string;
  /** How many times the package was published (more than 1 after waiting for role assignments). */
  readonly publishes: number;
}

export class DeploymentFailedError extends Error {
  constructor(
    readonly scmUrl: string,
    readonly status: number,
    /** The SCM site's own explanation (status_text, message, build errors, log entries). */
    readonly serviceMessage: string,
  ) {
    super(`deployment to ${scmUrl} ended ${statusName.get(status) ?? `with status ${status}`}: ${serviceMessage || "(no message)"}`);
    this.name = "DeploymentFailedError";
  }
}

/** The SCM site never knew the deployment it accepted: its status URL stayed 404. */
export class DeploymentNotFoundError extends Error {
  constructor(
    readonly statusUrl: string,
    readonly notFoundAnswers: number,
    /** What /api/deployments/latest said instead (its status and log), when it said anything. */
    readonly latest: string,
  ) {
    super(`the SCM site answered 404 for ${statusUrl} ${notFoundAnswers} times: it never recorded the deployment${latest ? `; latest deployment: ${latest}` : ""}`);
    this.name = "DeploymentNotFoundError";
  }
}

/** The role-assignment wait ran out: the last failure, and how long it was retried. */
export class RoleAssignmentWaitExpiredError extends Error {
  constructor(
    readonly lastFailure: Error,
    readonly publishes: number,
    readonly waitedMs: number,
  ) {
    super(
      `${lastFailure.message} (still failing after ${publishes} publishes over ${duration(waitedMs)}; if the app's identity lacks Storage Blob Data Owner on ` +
        `the deployment storage account, or that account's network rules refuse the SCM site, waiting longer will not help)`,
      { cause: lastFailure },
    );
    this.name = "RoleAssignmentWaitExpiredError";
  }
}

/** The SCM (Kudu) site of a Function App in public Azure. */
export function scmUrlFor(appName: string): string {
  if (!/^[a-z0-9][a-z0-9-]{0,58}[a-z0-9]$/i.test(appName)) throw new Error(`not a valid Function App name: ${JSON.stringify(appName)}`);
  return `https://${appName.toLowerCase()}.scm.azurewebsites.net`;
}

// What a deployment's log says when the app's identity may not (yet) write the deployment
// container, e.g. "Failed to upload because Azure Storage responded with Forbidden : ... 403"
// (Core Tools' and azd's reports of a fresh Flex app).
const storageAuthorizationFailure = /\b403\b|forbidden|AuthorizationPermissionMismatch|AuthorizationFailure|not authorized to perform this operation/i;

/**
 * Why a failed publish is worth repeating on a fresh app, or undefined when it is not: a storage
 * authorization failure in the deployment's log, or a deployment the site never recorded.
 */
export function awaitingRoleAssignments(error: unknown): string | undefined {
  if (error instanceof DeploymentFailedError && error.status === deployStatus.failed && storageAuthorizationFailure.test(error.serviceMessage)) {
    return "the deployment failed with a storage authorization error";
  }
  if (error instanceof DeploymentNotFoundError) return "the SCM site never recorded the deployment";
  return undefined;
}

/**
 * Deploys a package to a Flex Consumption app through OneDeploy, keyless: POST the zip to
 * /api/publish with an Entra token, then poll the deployment until it finished. Resolves when
 * the SCM site reports success; rejects with the site's own message otherwise. A fresh app's
 * storage 403 or unknown deployment is waited out (bounded, see
 * {@link OneDeployOptions.roleAssignmentWait}); every other failure is final at once.
 */
export async function oneDeploy(options: OneDeployOptions): Promise<DeploymentOutcome> {
  const scm = new ScmSite(options);
  const log = options.log ?? (() => {});
  const timeoutMs = options.roleAssignmentWait?.timeoutMs ?? 300_000;
  const initialDelayMs = options.roleAssignmentWait?.initialDelayMs ?? 10_000;
  const maxDelayMs = options.roleAssignmentWait?.maxDelayMs ?? 60_000;
  const started = Date.now();
  for (let publishes = 1; ; publishes++) {
    try {
      const deployment = await scm.publish();
      return { ...(await scm.waitForDeployment(deployment)), publishes };
    } catch (error) {
      const reason = awaitingRoleAssignments(error);
      if (!reason || !(error instanceof Error)) throw error;
      const elapsed = Date.now() - started;
      const delay = Math.min(initialDelayMs * 2 ** (publishes - 1), maxDelayMs);
      if (elapsed + delay > timeoutMs) throw new RoleAssignmentWaitExpiredError(error, publishes, elapsed);
      log(
        `${reason} (${error.message}). A new app shows this until its role assignments on the deployment storage take effect: ` +
          `publishing again in ${duration(delay)} (${duration(timeoutMs - elapsed)} left of ${duration(timeoutMs)})`,
      );
      await sleep(delay);
    }
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

/** One entry of a deployment's log (Kudu's LogEntry). */
interface KuduLogEntry {
  message?: unknown;
  /** 0 message, 1 warning, 2 error. */
  type?: unknown;
  /** More entries, e.g. the steps of a failed upload. */
  details_url?: unknown;
}

interface Published {
  readonly deploymentId: string | undefined;
  readonly statusUrl: string;
}

/** One app's SCM site: the requests OneDeploy makes, each with a fresh token and transient retries. */
class ScmSite {
  private readonly base: string;
  private readonly policy: RetryPolicy;
  private readonly log: (message: string) => void;

  constructor(private readonly options: OneDeployOptions) {
    this.base = options.scmUrl.replace(/\/+$/, "");
    this.policy = transientRetryPolicy(options.retry);
    this.log = options.log ?? (() => {});
  }

  private async authorization(): Promise<string> {
    // Asked per request: the credential caches, and a long poll may outlive one token.
    const token = await this.options.credential.getToken(scmTokenScope);
    if (!token) throw new Error(`the credential returned no token for ${scmTokenScope}`);
    return `Bearer ${token.token}`;
  }

  private async get(url: string, timeoutMs = this.options.requestTimeout?.statusMs ?? 60_000): Promise<unknown> {
    const response = await this.policy.execute(async () => fetchOk(url, { method: "GET", headers: { authorization: await this.authorization() } }, timeoutMs));
    return response.json();
  }

  /** POSTs the package; a 409 (another deployment in progress) is waited out, bounded. */
  async publish(): Promise<Published> {
    const publishUrl = `${this.base}/api/publish?RemoteBuild=false`;
    const intervalMs = this.options.ongoingDeploymentWait?.intervalMs ?? 10_000;
    const timeoutMs = this.options.ongoingDeploymentWait?.timeoutMs ?? 300_000;
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      this.log(`publishing ${this.options.zip.byteLength} bytes to ${publishUrl}`);
      try {
        const published = await this.policy.execute(async () => {
          const headers = { authorization: await this.authorization(), "content-type": "application/zip", "cache-control": "no-cache" };
          return fetchOk(publishUrl, { method: "POST", headers, body: this.options.zip }, this.options.requestTimeout?.publishMs ?? 300_000);
        });
        const deploymentId = parseDeploymentId(await published.text());
        return { deploymentId, statusUrl: statusUrlFor(this.base, published.headers.get("location"), deploymentId) };
      } catch (error) {
        if (!(error instanceof HttpStatusError && error.status === 409)) throw error;
        const delay = error.retryAfterMs ?? intervalMs;
        const left = deadline - Date.now();
        if (delay > left) {
          throw new Error(`another deployment to ${this.base} was still in progress after ${duration(timeoutMs)} (409: ${error.serviceMessage}); see ${this.base}/api/deployments/latest`, {
            cause: error,
          });
        }
        this.log(`another deployment to ${this.base} is in progress (409: ${error.serviceMessage}); publishing again in ${duration(delay)} (${duration(left)} left)`);
        await sleep(delay);
      }
    }
  }

  /**
   * Polls the deployment until it is final. A 404 first means "not alive yet" (a few are
   * tolerated); a 404 after progress means the deployment worker recycled the id (azd's reading),
   * and /api/deployments/latest decides.
   */
  async waitForDeployment({ deploymentId, statusUrl }: Published): Promise<Omit<DeploymentOutcome, "publishes">> {
    const intervalMs = this.options.poll?.intervalMs ?? 1000;
    const timeoutMs = this.options.poll?.timeoutMs ?? 600_000;
    const initialNotFoundRetries = this.options.poll?.initialNotFoundRetries ?? 3;
    const deadline = Date.now() + timeoutMs;
    const name = deploymentId ?? "(latest)";
    let lastStatus: number | undefined;
    let lastReport = "";
    let notFound = 0;
    for (;;) {
      let record: KuduDeployment | undefined;
      try {
        record = (await this.get(statusUrl)) as KuduDeployment;
      } catch (error) {
        if (!(error instanceof HttpStatusError && error.status === 404)) throw error;
        notFound++;
      }

      if (!record && lastStatus === undefined && notFound > initialNotFoundRetries) {
        // The id never came alive. Kudu may have failed before recording it (a storage 403 has
        // surfaced as nothing but this 404): the latest deployment says why.
        const latest = await this.latest();
        if (latest && this.isOurs(latest, deploymentId) && !inProgress.has(codeOf(latest))) return this.settle(latest, deploymentId, statusUrl);
        throw new DeploymentNotFoundError(statusUrl, notFound, latest ? `${latest.id ?? "?"} ${statusName.get(codeOf(latest)) ?? latest.status}: ${await this.failureMessage(latest)}` : "");
      }
      if (!record && lastStatus !== undefined) {
        // Recycled after progress: the record is gone, the latest deployment may still tell.
        const latest = await this.latest();
        if (latest && this.isOurs(latest, deploymentId)) {
          const code = codeOf(latest);
          if (!inProgress.has(code)) return this.settle(latest, deploymentId, statusUrl);
          record = latest;
        } else {
          const report = `deployment ${name} answers 404 after it was ${statusName.get(lastStatus)}; waiting for /api/deployments/latest to show it${latest ? ` (it shows ${latest.id ?? "another deployment"})` : ""}`;
          if (report !== lastReport) this.log((lastReport = report));
        }
      }
      if (!record && lastStatus === undefined) {
        this.log(`deployment ${name} not known yet (404 ${notFound} of ${initialNotFoundRetries} tolerated)`);
      }

      if (record) {
        const code = codeOf(record);
        if (!inProgress.has(code)) return this.settle(record, deploymentId, statusUrl);
        lastStatus = code;
        const report = `deployment ${name} ${statusName.get(code)}${record.progress || record.status_text ? `: ${record.progress || record.status_text}` : ""}`;
        if (report !== lastReport) this.log((lastReport = report));
      }

      if (Date.now() + intervalMs > deadline) {
        const state = lastStatus === undefined ? "not known to the site" : `still ${statusName.get(lastStatus)}`;
        throw new Error(`deployment to ${this.base} ${state} after ${duration(timeoutMs)}; see ${statusUrl}`);
      }
      await sleep(intervalMs);
    }
  }

  /** A final record: success resolves, anything else is a DeploymentFailedError with the cause. */
  private async settle(record: KuduDeployment, deploymentId: string | undefined, statusUrl: string): Promise<Omit<DeploymentOutcome, "publishes">> {
    const code = codeOf(record);
    if (code !== deployStatus.success) throw new DeploymentFailedError(this.base, code, await this.failureMessage(record));
    this.log(`deployment ${record.id ?? deploymentId ?? ""} succeeded`);
    return { deploymentId: record.id ?? deploymentId, statusUrl };
  }

  /** /api/deployments/latest, or undefined when the site has none (404). */
  private async latest(): Promise<KuduDeployment | undefined> {
    try {
      return (await this.get(`${this.base}/api/deployments/latest`)) as KuduDeployment;
    } catch (error) {
      if (error instanceof HttpStatusError && error.status === 404) return undefined;
      throw error;
    }
  }

  /** The latest record is this deployment (or this deployment has no id to compare). */
  private isOurs(latest: KuduDeployment, deploymentId: string | undefined): boolean {
    return deploymentId === undefined || latest.id === undefined || latest.id === deploymentId;
  }

  /** The record's own texts, then its log (errors and warnings, and the last lines). */
  private async failureMessage(record: KuduDeployment): Promise<string> {
    const parts = [record.status_text, record.message, ...(record.build_summary?.errors ?? []).map(String)].filter(
      (p): p is string => typeof p === "string" && p.trim() !== "",
    );
    const logUrl = record.log_url ?? (record.id ? `${this.base}/api/deployments/${encodeURIComponent(record.id)}/log` : undefined);
    if (logUrl) {
      // Best effort: the failure itself is already certain, the log only explains it.
      try {
        parts.push(...(await this.logMessages(logUrl)));
      } catch {
        // keep the record's own texts
      }
    }
    return [...new Set(parts)].join(" | ");
  }

  /** Messages worth showing from a deployment log: every warning and error, and the last 3 lines; one level of details_url. */
  private async logMessages(logUrl: string): Promise<string[]> {
    const entries = await this.get(logUrl, 30_000);
    if (!Array.isArray(entries)) return [];
    const messages: string[] = [];
    for (const [index, entry] of (entries as KuduLogEntry[]).entries()) {
      const notable = (typeof entry.type === "number" && entry.type >= 1) || index >= entries.length - 3;
      if (notable && typeof entry.message === "string" && entry.message.trim() !== "") messages.push(entry.message.trim());
      if (typeof entry.details_url === "string" && entry.details_url !== "") {
        const details = await this.get(entry.details_url, 30_000).catch(() => []);
        if (Array.isArray(details)) {
          for (const detail of details as KuduLogEntry[]) if (typeof detail.message === "string" && detail.message.trim() !== "") messages.push(detail.message.trim());
        }
      }
    }
    return messages;
  }
}

function codeOf(record: KuduDeployment): number {
  return typeof record.status === "number" ? record.status : Number(record.status);
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

/** "45 s", "4 min 40 s": for people reading a wait on the console. */
export function duration(ms: number): string {
  const seconds = Math.max(0, Math.round(ms / 1000));
  if (ms > 0 && ms < 1000) return `${Math.round(ms)} ms`;
  if (seconds < 60) return `${seconds} s`;
  const rest = seconds % 60;
  return `${Math.floor(seconds / 60)} min${rest ? ` ${rest} s` : ""}`;
}
