/**
 * The post-deploy smoke check as steps: each calls the deployed api the way a browser or a
 * developer would, and a failure carries one sentence on what it usually means. Used by
 * `npm run smoke` (scripts/smoke.ts) and by the tests against the local platform.
 */
import { WebPubSubClient } from "@azure/web-pubsub-client";

/** Who calls the api: an Entra bearer token in Azure, the development identity on the local platform. */
export type SmokeIdentity = { readonly kind: "token"; readonly token: string } | { readonly kind: "dev-user"; readonly name: string };

export interface SmokeOptions {
  /** The api's `/api` base, e.g. `https://<app>.azurewebsites.net/api` (see {@link apiBaseOf}). */
  readonly apiBase: string;
  /** Without one, the steps that need a caller are skipped. */
  readonly identity?: SmokeIdentity;
  /** The static site's origin (stack output `webUrl`); without it the CORS step is skipped. */
  readonly webOrigin?: string;
  /** Longest wait for the job's `job.succeeded` event. A Flex app scaling from zero takes seconds. @default 120000 */
  readonly jobTimeoutMs?: number;
  /** Longest wait for one HTTP answer or the Web PubSub connection. @default 30000 */
  readonly requestTimeoutMs?: number;
}

export type StepStatus = "pass" | "fail" | "skip";

export interface StepResult {
  /** What was checked, e.g. `GET /api/health`. */
  readonly title: string;
  readonly status: StepStatus;
  readonly ms: number;
  /** What was seen (pass, fail) or why the step did not run (skip). */
  readonly detail: string;
  /** For a failure: what it usually means, in one sentence. */
  readonly meaning?: string;
}

export interface SmokeReport {
  readonly ok: boolean;
  readonly steps: readonly StepResult[];
}

/**
 * The `/api` base of an api URL: the site root (stack output `apiUrl`) gets `/api` appended, a URL
 * that already ends in `/api` is kept. Rejects what is not an http(s) URL.
 */
export function apiBaseOf(url: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new Error(`not a URL: ${JSON.stringify(url)} (expected e.g. https://<app>.azurewebsites.net)`);
  }
  if (parsed.protocol !== "https:" && parsed.protocol !== "http:") throw new Error(`not an http(s) URL: ${url}`);
  const path = parsed.pathname.replace(/\/+$/, "");
  return `${parsed.origin}${path.endsWith("/api") ? path : `${path}/api`}`;
}

/** Meanings shared by several steps. */
const meanings = {
  unreachable: "Nothing answered at this address: a wrong URL, an app that does not exist (yet), or a network rule between here and the app.",
  notDeployed:
    "No function serves this route: the code is not deployed (see the api-code step of `pulumi up`) or the Functions host has not started yet (a new Flex app can take a minute; run the check again).",
  hostFailed: "The Functions host or the api failed: the app's log (Application Insights, or the Log stream in the portal) has the start-up error; a missing app setting names itself there.",
  excludedPath: "App Service Authentication refused an anonymous call: this path is not in its excludedPaths, so browsers cannot load it without signing in.",
  dependencyRefused:
    "A dependency refused the api (Cosmos DB, Service Bus or Web PubSub): on a new stack the api identity's role assignments usually have not taken effect yet (wait a few minutes and run again).",
  notThisApi: "Something other than this api answered (a proxy, an error page or an older deployment of different code).",
} as const;

/** A failed step: what was seen, and what that usually means. */
class StepFailure extends Error {
  constructor(
    message: string,
    readonly meaning: string,
  ) {
    super(message);
  }
}

/** A step that cannot run in this configuration, with the reason. */
class StepSkipped extends Error {}

/** The usual reading of a status code no step expects, so every failure says something useful. */
function unexpected(response: Response, body: string, expected: string): StepFailure {
  const seen = `${response.status} ${response.statusText}${body ? `: ${body.slice(0, 300)}` : ""} (expected ${expected})`;
  if (response.status === 404) return new StepFailure(seen, meanings.notDeployed);
  if (response.status === 401) return new StepFailure(seen, meanings.excludedPath);
  if (response.status === 503) return new StepFailure(seen, meanings.dependencyRefused);
  if (response.status >= 500) return new StepFailure(seen, meanings.hostFailed);
  return new StepFailure(seen, meanings.notThisApi);
}

/** A 401 on a call that carried the identity. */
function refusedIdentity(identity: SmokeIdentity, response: Response, body: string): StepFailure {
  const seen = `401 with the ${identity.kind === "token" ? "bearer token" : "development identity"}: ${body.slice(0, 300)}`;
  if (identity.kind === "dev-user") {
    return new StepFailure(seen, "This api does not take the development identity (x-dev-user): only the local platform sets ALLOW_DEVELOPMENT_IDENTITY; use --token against Azure.");
  }
  if (answeredByApi(response)) {
    return new StepFailure(seen, "The api itself refused: App Service Authentication is not in front of it (authEntraClientId is not set), so it trusts no caller.");
  }
  return new StepFailure(
    seen,
    "App Service Authentication refused the token: it must be issued for the api's app registration (az account get-access-token --resource api://<authEntraClientId>) and not be expired.",
  );
}

/** The api's own 401 names realm "api"; App Service Authentication's does not. */
function answeredByApi(response: Response): boolean {
  return /realm="api"/.test(response.headers.get("www-authenticate") ?? "");
}

interface JobEvent {
  readonly type: string;
  readonly jobId: string;
  readonly error?: { readonly code?: string; readonly message?: string };
}

/** Runs every step in order; a step whose prerequisite failed is skipped and says which. */
export async function runSmoke(options: SmokeOptions, onStep: (result: StepResult) => void = () => {}): Promise<SmokeReport> {
  const api = options.apiBase.replace(/\/+$/, "");
  const requestTimeoutMs = options.requestTimeoutMs ?? 30_000;
  const jobTimeoutMs = options.jobTimeoutMs ?? 120_000;
  const identity = options.identity;
  const identityHeaders: Record<string, string> =
    identity?.kind === "token" ? { authorization: `Bearer ${identity.token}` } : identity?.kind === "dev-user" ? { "x-dev-user": identity.name } : {};
  const steps: StepResult[] = [];

  const call = async (path: string, init: RequestInit = {}): Promise<{ response: Response; body: string }> => {
    let response: Response;
    try {
      response = await fetch(`${api}${path}`, { ...init, redirect: "manual", signal: AbortSignal.timeout(requestTimeoutMs) });
    } catch (error) {
      const cause = error instanceof Error ? ((error.cause as Error | undefined)?.message ?? error.message) : String(error);
      throw new StepFailure(`no answer from ${api}${path}: ${cause}`, meanings.unreachable);
    }
    return { response, body: await response.text() };
  };
  const needIdentity = (): SmokeIdentity => {
    if (!identity) throw new StepSkipped("no --token or --dev-user: the steps that need a caller do not run");
    return identity;
  };

  /** Runs one step unless a prerequisite failed; records and reports its result. */
  const step = async (title: string, run: () => Promise<string>, needs: readonly (StepResult | undefined)[] = []): Promise<StepResult> => {
    const started = performance.now();
    let result: Omit<StepResult, "ms">;
    const missing = needs.find((n) => n?.status !== "pass");
    if (missing) {
      result = { title, status: "skip", detail: `needs "${missing.title}", which did not pass` };
    } else {
      try {
        result = { title, status: "pass", detail: await run() };
      } catch (error) {
        if (error instanceof StepSkipped) result = { title, status: "skip", detail: error.message };
        else if (error instanceof StepFailure) result = { title, status: "fail", detail: error.message, meaning: error.meaning };
        else result = { title, status: "fail", detail: error instanceof Error ? error.message : String(error), meaning: meanings.notThisApi };
      }
    }
    const done: StepResult = { ...result, ms: Math.round(performance.now() - started) };
    steps.push(done);
    onStep(done);
    return done;
  };

  await step("GET /api/health", async () => {
    const { response, body } = await call("/health");
    if (response.status === 401) throw new StepFailure(`401: ${body.slice(0, 300)}`, meanings.excludedPath);
    const report = parseJson(body) as { checks?: Record<string, string> } | undefined;
    if (response.status === 503 && report?.checks) {
      const down = Object.entries(report.checks).filter(([, state]) => state !== "ok").map(([name]) => name);
      throw new StepFailure(
        `503: unreachable from the app: ${down.join(", ")}`,
        "The app cannot reach these services: on a new stack usually role assignments that have not taken effect yet (wait a few minutes and run again), otherwise a wrong endpoint setting; the reason is in the app's log, never in the answer.",
      );
    }
    if (response.status !== 200 || !report?.checks) throw unexpected(response, body, "200 with every dependency ok");
    return Object.entries(report.checks).map(([name, state]) => `${name} ${state}`).join(", ");
  });

  await step("GET /api/openapi.json", async () => {
    const { response, body } = await call("/openapi.json");
    if (response.status !== 200) throw unexpected(response, body, "200 with the OpenAPI document");
    const document = parseJson(body) as { openapi?: unknown; paths?: Record<string, unknown> } | undefined;
    if (!document) throw new StepFailure(`200 but not JSON: ${body.slice(0, 120)}`, meanings.notThisApi);
    const missing = ["/api/jobs", "/api/jobs/{id}"].filter((path) => !document.paths?.[path]);
    if (typeof document.openapi !== "string" || missing.length > 0) {
      throw new StepFailure(`not this api's document (openapi ${String(document.openapi)}; missing paths ${missing.join(", ") || "none"})`, meanings.notThisApi);
    }
    return `OpenAPI ${document.openapi}, ${Object.keys(document.paths ?? {}).length} paths`;
  });

  await step("GET /api/docs/ and /api/docs/swagger-ui.css", async () => {
    const page = await call("/docs/");
    if (page.response.status !== 200 || !page.body.includes("swagger-ui.css")) throw unexpected(page.response, page.body, "200 with the Swagger UI page");
    const asset = await call("/docs/swagger-ui.css");
    if (asset.response.status === 401) {
      throw new StepFailure(
        `the page loads but its asset answers 401`,
        "App Service Authentication's excludedPaths cover the docs page but not the files under /api/docs/, so the page renders empty without signing in.",
      );
    }
    if (asset.response.status === 404) {
      throw new StepFailure(`404 for swagger-ui.css`, "The package lacks the Swagger UI files the bundler copies beside main.js (scripts/bundle): rebuild and deploy again.");
    }
    if (asset.response.status !== 200 || !(asset.response.headers.get("content-type") ?? "").startsWith("text/css") || asset.body.length === 0) {
      throw unexpected(asset.response, "", "200 text/css");
    }
    return `page and stylesheet (${asset.body.length} bytes) served`;
  });

  await step("CORS preflight of POST /api/jobs", async () => {
    if (!options.webOrigin) throw new StepSkipped("no --web-origin given (the stack output webUrl): the CORS step does not run");
    const origin = new URL(options.webOrigin).origin;
    const requested = identity?.kind === "dev-user" ? "content-type,x-dev-user" : "authorization,content-type";
    const { response, body } = await call("/jobs", {
      method: "OPTIONS",
      headers: { origin, "access-control-request-method": "POST", "access-control-request-headers": requested },
    });
    const allowed = response.headers.get("access-control-allow-origin");
    if (response.status === 401) {
      throw new StepFailure(`401 to the preflight`, "App Service Authentication answered the preflight before CORS did, so no browser can call the api.");
    }
    if (response.status >= 300 || (allowed !== origin && allowed !== "*")) {
      throw new StepFailure(
        `${response.status}, Access-Control-Allow-Origin ${allowed === null ? "missing" : JSON.stringify(allowed)}${body ? `: ${body.slice(0, 200)}` : ""}`,
        `CORS does not allow ${origin}: the api's allowed origins (siteConfig.cors, set from the site's webUrl) lack it, or a change has not reached the app yet.`,
      );
    }
    return `${response.status}, allows ${allowed === "*" ? `any origin (${origin} asked)` : origin}`;
  });

  await step("GET /api/jobs without sign-in is refused", async () => {
    if (identity?.kind === "dev-user") {
      throw new StepSkipped("with --dev-user (the local platform) there is no App Service Authentication to check; run with --token against Azure");
    }
    const { response, body } = await call("/jobs");
    if (response.status === 200) {
      throw new StepFailure("200: the api answered an anonymous caller", "Callers are not authenticated: the api trusts identity headers without App Service Authentication in front of it.");
    }
    if (response.status !== 401) throw unexpected(response, body, "401");
    return answeredByApi(response) ? "401 from the api itself (App Service Authentication is not in front of it)" : "401 from App Service Authentication";
  });

  const negotiated: { url?: string } = {};
  const negotiate = await step("GET /api/negotiate", async () => {
    const caller = needIdentity();
    const { response, body } = await call("/negotiate", { headers: identityHeaders });
    if (response.status === 401) throw refusedIdentity(caller, response, body);
    if (response.status === 500 || response.status === 503) {
      throw new StepFailure(
        `${response.status}: ${body.slice(0, 300)}`,
        "The api could not get a Web PubSub client token: its Web PubSub Service Owner role assignment has not taken effect yet (wait a few minutes and run again) or WebPubSub__serviceUri is wrong.",
      );
    }
    const answer = parseJson(body) as { url?: unknown; group?: unknown } | undefined;
    if (response.status !== 200 || typeof answer?.url !== "string") throw unexpected(response, body, "200 with a client URL");
    negotiated.url = answer.url;
    return `client URL for ${new URL(answer.url).host}, group ${String(answer.group)}`;
  });

  // No keep-alive and no reconnects: the check is short, and the client's keep-alive timers would
  // otherwise outlive stop().
  const client = new WebPubSubClient(
    { getClientAccessUrl: async () => negotiated.url ?? "" },
    { autoReconnect: false, keepAliveIntervalInMs: 0, keepAliveTimeoutInMs: 0 },
  );
  const events = new Map<string, JobEvent>();
  const waiters = new Map<string, (event: JobEvent) => void>();
  client.on("group-message", (message) => {
    const event = message.message.data as JobEvent;
    if (event?.type !== "job.succeeded" && event?.type !== "job.failed") return;
    events.set(event.jobId, event);
    waiters.get(event.jobId)?.(event);
  });
  try {
    const connected = await step(
      "connect to Web PubSub",
      async () => {
        try {
          await client.start({ abortSignal: AbortSignal.timeout(requestTimeoutMs) });
        } catch (error) {
          throw new StepFailure(
            `the negotiated URL did not connect: ${error instanceof Error ? error.message : String(error)}`,
            "The client cannot reach Web PubSub with the negotiated URL: a network rule, or a hub that does not exist on the service.",
          );
        }
        return "connected";
      },
      [negotiate],
    );

    const job: { id?: string } = {};
    const posted = await step(
      "POST /api/jobs",
      async () => {
        const caller = needIdentity();
        const { response, body } = await call("/jobs", {
          method: "POST",
          headers: { ...identityHeaders, "content-type": "application/json" },
          body: JSON.stringify({ kind: "text", text: `smoke check ${new Date().toISOString()}: one job end to end` }),
        });
        if (response.status === 401) throw refusedIdentity(caller, response, body);
        const created = parseJson(body) as { id?: unknown } | undefined;
        if (response.status !== 202 || typeof created?.id !== "string") throw unexpected(response, body, "202 with the job");
        job.id = created.id;
        return `202, job ${created.id}`;
      },
      [connected],
    );

    const event = await step(
      "job.succeeded arrives over Web PubSub",
      async () => {
        const id = job.id ?? "";
        const arrived = events.get(id) ?? (await eventOrTimeout(waiters, id, jobTimeoutMs));
        if (arrived?.type === "job.succeeded") return "received";
        if (arrived?.type === "job.failed") {
          throw new StepFailure(`job.failed: ${arrived.error?.code ?? "?"}: ${arrived.error?.message ?? ""}`, "The agent ran the job and failed it: the agent's log has the reason.");
        }
        const { body } = await call(`/jobs/${id}`, { headers: identityHeaders });
        const status = (parseJson(body) as { status?: string } | undefined)?.status ?? "unknown";
        throw new StepFailure(`no event within ${Math.round(jobTimeoutMs / 1000)} s; the job is ${status}`, noEventMeaning(status));
      },
      [posted],
    );

    await step(
      "GET /api/jobs/{id} shows the result",
      async () => {
        const { response, body } = await call(`/jobs/${job.id ?? ""}`, { headers: identityHeaders });
        const stored = parseJson(body) as { status?: string; result?: { words?: number } } | undefined;
        if (response.status !== 200) throw unexpected(response, body, "200 with the job");
        if (stored?.status !== "succeeded" || !stored.result) {
          throw new StepFailure(`status ${String(stored?.status)}, ${stored?.result ? "with" : "without"} a result`, "The event and the stored job disagree: the agent published before its write was kept.");
        }
        return `succeeded, ${stored.result.words ?? "?"} words`;
      },
      [event],
    );
  } finally {
    client.stop();
  }
  return { ok: steps.every((s) => s.status !== "fail"), steps };
}

function noEventMeaning(status: string): string {
  switch (status) {
    case "queued":
      return "The agent never took the job: its code is not deployed, its host has not started, or its Service Bus Data Receiver role has not taken effect yet (wait a few minutes and run again).";
    case "running":
      return "The agent took the job but did not finish in time: its log shows where it stopped (a slow cold start of a new Flex app, or a dependency it cannot reach).";
    case "succeeded":
      return "The job succeeded but no event arrived: the agent cannot publish to Web PubSub (its Service Owner role has not taken effect yet) or the client is in another group.";
    default:
      return "The job's state could not be read back: see the api's and the agent's logs.";
  }
}

/** Resolves with the job's terminal event, or undefined after `ms`. */
function eventOrTimeout(waiters: Map<string, (event: JobEvent) => void>, jobId: string, ms: number): Promise<JobEvent | undefined> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      waiters.delete(jobId);
      resolve(undefined);
    }, ms);
    waiters.set(jobId, (event) => {
      clearTimeout(timer);
      waiters.delete(jobId);
      resolve(event);
    });
  });
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}
