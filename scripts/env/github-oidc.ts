/**
 * Keeps a fresh GitHub Actions OIDC token in a file for the whole of a long `pulumi up`.
 *
 * Why: `azure/login` hands the az CLI one GitHub token, valid for minutes, and the az CLI cannot get
 * another; any Azure token requested after it expires fails (AADSTS700024). A `pulumi up` that
 * creates a Cosmos DB account runs long enough for that: the state backend (azblob), the Key Vault
 * secrets provider and the code upload all ask for tokens late. With AZURE_FEDERATED_TOKEN_FILE (plus
 * AZURE_CLIENT_ID and AZURE_TENANT_ID) the Go and JavaScript Azure SDKs use workload identity and
 * re-read the file when they need a token, so a file refreshed every few minutes never goes stale.
 */
import { randomUUID } from "node:crypto";
import { rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** The audience Azure's federated credentials expect. */
export const azureAudience = "api://AzureADTokenExchange";

/**
 * How often the file is rewritten. The SDKs cache the file's content for up to 5 minutes and a
 * GitHub token lives about 10, so every 2 minutes keeps what they send younger than 7.
 */
export const refreshIntervalMs = 2 * 60 * 1000;

export interface GitHubTokenSource {
  /** ACTIONS_ID_TOKEN_REQUEST_URL (present in jobs with `permissions: id-token: write`). */
  readonly requestUrl: string;
  /** ACTIONS_ID_TOKEN_REQUEST_TOKEN. */
  readonly requestToken: string;
}

/** The GitHub OIDC request variables, when this runs in a job that may ask for tokens. */
export function gitHubTokenSource(env: NodeJS.ProcessEnv): GitHubTokenSource | undefined {
  const requestUrl = env["ACTIONS_ID_TOKEN_REQUEST_URL"];
  const requestToken = env["ACTIONS_ID_TOKEN_REQUEST_TOKEN"];
  return requestUrl && requestToken ? { requestUrl, requestToken } : undefined;
}

/** Asks GitHub for an OIDC token for `audience`. */
export async function fetchGitHubToken(source: GitHubTokenSource, audience = azureAudience): Promise<string> {
  const url = new URL(source.requestUrl);
  url.searchParams.set("audience", audience);
  const response = await fetch(url, { headers: { authorization: `bearer ${source.requestToken}`, accept: "application/json" } });
  if (!response.ok) throw new Error(`GitHub refused an OIDC token (${response.status} ${response.statusText}); does the job have permissions: id-token: write?`);
  const body = (await response.json()) as { value?: unknown };
  if (typeof body.value !== "string" || body.value === "") throw new Error("GitHub's OIDC token response has no value");
  return body.value;
}

/** A file holding a current GitHub OIDC token, rewritten on a timer until stopped. */
export class FederatedTokenFile {
  private timer: NodeJS.Timeout | undefined;
  private lastError: Error | undefined;

  private constructor(
    readonly path: string,
    private readonly source: GitHubTokenSource,
    private readonly onRefreshError: (error: Error) => void,
  ) {}

  /** Writes the first token (failing if GitHub refuses one) and starts refreshing. */
  static async start(
    source: GitHubTokenSource,
    options: { path?: string; intervalMs?: number; onRefreshError?: (error: Error) => void } = {},
  ): Promise<FederatedTokenFile> {
    const file = new FederatedTokenFile(options.path ?? join(tmpdir(), `github-oidc-${randomUUID()}.jwt`), source, options.onRefreshError ?? (() => {}));
    await file.refresh();
    file.timer = setInterval(() => {
      file.refresh().catch((error: unknown) => {
        file.lastError = error instanceof Error ? error : new Error(String(error));
        file.onRefreshError(file.lastError);
      });
    }, options.intervalMs ?? refreshIntervalMs);
    // The timer must not keep the process alive once the work is done.
    file.timer.unref();
    return file;
  }

  /** Fetches a new token and replaces the file's content. */
  async refresh(): Promise<void> {
    const token = await fetchGitHubToken(this.source);
    await writeFile(this.path, token, { mode: 0o600 });
  }

  /** Stops refreshing and deletes the file. */
  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await rm(this.path, { force: true });
  }
}
