/**
 * The smoke check's readings of answers only Azure gives (App Service Authentication in front of
 * the api, a dependency whose role assignment is not effective yet, an app with no code), played
 * by a local HTTP server: Easy Auth cannot run here. The passing path runs against the real local
 * platform in tests/local/platform.test.ts.
 */
import { createServer } from "node:net";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { apiBaseOf, runSmoke, type StepResult } from "../../scripts/smoke/checks";
import { formatStep, parseSmokeArgs, smokeMain, UsageError } from "../../scripts/smoke/cli";
import { json, ScriptedServer, text, type Route } from "../deploy/scm-server";

let api: ScriptedServer;
beforeAll(async () => {
  api = await ScriptedServer.start();
});
afterAll(async () => {
  await api.stop();
});
beforeEach(() => api.reset());

const easyAuth401: Route = (_req, res) => {
  res
    .writeHead(401, { "www-authenticate": 'Bearer realm="app.azurewebsites.net" authorization_uri="https://login.microsoftonline.com/t/oauth2/v2.0/authorize"' })
    .end("You do not have permission to view this directory or page.");
};
const healthy = json(200, { status: "ok", checks: { cosmos: "ok", blob: "ok", serviceBus: "ok", webPubSub: "ok" } });
const openapi = json(200, { openapi: "3.1.0", paths: { "/api/jobs": {}, "/api/jobs/{id}": {}, "/api/health": {} } });
const docsPage = text(200, '<link rel="stylesheet" href="/api/docs/swagger-ui.css">');
const stylesheet: Route = (_req, res) => {
  res.writeHead(200, { "content-type": "text/css; charset=utf-8" }).end("body{}");
};
const byTitle = (steps: readonly StepResult[], title: string) => steps.find((s) => s.title.startsWith(title));

describe("runSmoke's readings of Azure-side failures", () => {
  it("App Service Authentication in front: an asset outside excludedPaths and a token for the wrong audience", async () => {
    api
      .on("GET", "/api/health", healthy)
      .on("GET", "/api/openapi.json", openapi)
      .on("GET", "/api/docs/", docsPage)
      .on("GET", "/api/docs/swagger-ui.css", easyAuth401)
      .on("GET", "/api/jobs", easyAuth401)
      .on("GET", "/api/negotiate", easyAuth401);
    const report = await runSmoke({ apiBase: `${api.url}/api`, identity: { kind: "token", token: "wrong-audience" } });

    expect(report.ok).toBe(false);
    expect(byTitle(report.steps, "GET /api/docs/")).toMatchObject({ status: "fail", meaning: expect.stringContaining("excludedPaths cover the docs page but not the files under /api/docs/") });
    expect(byTitle(report.steps, "GET /api/jobs without sign-in")).toMatchObject({ status: "pass", detail: "401 from App Service Authentication" });
    expect(byTitle(report.steps, "GET /api/negotiate")).toMatchObject({ status: "fail", meaning: expect.stringContaining("--resource api://<authEntraClientId>") });
    expect(byTitle(report.steps, "POST /api/jobs")).toMatchObject({ status: "skip", detail: 'needs "connect to Web PubSub", which did not pass' });
    // The anonymous step sent no token; negotiate sent it.
    const anonymous = api.requests.find((r) => r.url === "/api/jobs");
    expect(anonymous?.headers.authorization).toBeUndefined();
    expect(api.requests.find((r) => r.url === "/api/negotiate")?.headers.authorization).toBe("Bearer wrong-audience");
  });

  it("names the dependencies the app cannot reach, and what that usually means on a new stack", async () => {
    api.on("GET", "/api/health", json(503, { status: "degraded", checks: { cosmos: "ok", blob: "ok", serviceBus: "unreachable", webPubSub: "unreachable" } }));
    const [health] = (await runSmoke({ apiBase: `${api.url}/api` })).steps;
    expect(health).toMatchObject({ status: "fail", detail: "503: unreachable from the app: serviceBus, webPubSub" });
    expect(health?.meaning).toMatch(/role assignments that have not taken effect yet/);
  });

  it("reads 404 everywhere as code not deployed, 401 on health as a missing excluded path, and a silent address as unreachable", async () => {
    api.otherwise("GET", "/api/openapi.json", json(404, "not found"));
    api.on("GET", "/api/health", easyAuth401);
    const report = await runSmoke({ apiBase: `${api.url}/api` });
    expect(byTitle(report.steps, "GET /api/health")?.meaning).toMatch(/excludedPaths/);
    expect(byTitle(report.steps, "GET /api/openapi.json")?.meaning).toMatch(/code is not deployed/);

    const closed = await freePort();
    const [unreachable] = (await runSmoke({ apiBase: `http://127.0.0.1:${closed}/api` })).steps;
    expect(unreachable).toMatchObject({ status: "fail", meaning: expect.stringContaining("Nothing answered at this address") });
    expect(unreachable?.detail).toContain("ECONNREFUSED");
  });

  it("fails the CORS step on a 401 preflight (Authentication before CORS) and passes a wildcard", async () => {
    api.on("OPTIONS", "/api/jobs", easyAuth401, (_req, res) => void res.writeHead(204, { "access-control-allow-origin": "*" }).end());
    const first = byTitle((await runSmoke({ apiBase: `${api.url}/api`, webOrigin: "https://site.example" })).steps, "CORS");
    expect(first).toMatchObject({ status: "fail", meaning: expect.stringContaining("answered the preflight before CORS") });
    const second = byTitle((await runSmoke({ apiBase: `${api.url}/api`, webOrigin: "https://site.example" })).steps, "CORS");
    expect(second).toMatchObject({ status: "pass", detail: "204, allows any origin (https://site.example asked)" });
    const preflight = api.requests.find((r) => r.method === "OPTIONS");
    expect(preflight?.headers).toMatchObject({ origin: "https://site.example", "access-control-request-method": "POST" });
  });
});

describe("the smoke command line", () => {
  it("takes the stack's apiUrl (site root) or an /api base", () => {
    expect(apiBaseOf("https://app.azurewebsites.net")).toBe("https://app.azurewebsites.net/api");
    expect(apiBaseOf("https://app.azurewebsites.net/")).toBe("https://app.azurewebsites.net/api");
    expect(apiBaseOf("http://127.0.0.1:7071/api/")).toBe("http://127.0.0.1:7071/api");
    expect(() => apiBaseOf("app.azurewebsites.net")).toThrow(/not a URL/);
    expect(() => apiBaseOf("ftp://app")).toThrow(/not an http\(s\) URL/);
  });

  it("parses the options and refuses bad ones with a reason", () => {
    expect(parseSmokeArgs(["https://app.azurewebsites.net", "--token", " t0k ", "--web-origin", "https://site.z6.web.core.windows.net/", "--timeout", "30"])).toEqual({
      apiBase: "https://app.azurewebsites.net/api",
      identity: { kind: "token", token: "t0k" },
      webOrigin: "https://site.z6.web.core.windows.net",
      jobTimeoutMs: 30_000,
    });
    expect(parseSmokeArgs(["http://127.0.0.1:7071/api", "--dev-user", "alice"])).toEqual({ apiBase: "http://127.0.0.1:7071/api", identity: { kind: "dev-user", name: "alice" } });
    const refused = (argv: string[]) => () => parseSmokeArgs(argv);
    expect(refused([])).toThrow(UsageError);
    expect(refused([])).toThrow("the api URL is missing");
    expect(refused(["https://a.example", "--token", "t", "--dev-user", "u"])).toThrow("exclude each other");
    expect(refused(["https://a.example", "--token", ""])).toThrow(/--token is empty/);
    expect(refused(["http://a.example", "--token", "t"])).toThrow("refusing to send a bearer token over plain http to a.example");
    expect(refused(["https://a.example", "--timeout", "soon"])).toThrow(/--timeout must be/);
    expect(refused(["https://a.example", "--verbose"])).toThrow(UsageError);
  });

  it("exits 2 with the usage on bad arguments, and prints a failure with what it usually means", async () => {
    const lines: string[] = [];
    expect(await smokeMain(["--token", "x"], (line) => void lines.push(line))).toBe(2);
    expect(lines.join("\n")).toMatch(/the api URL is missing\n\nusage: npm run smoke -- <api URL>/);
    expect(formatStep({ title: "GET /api/health", status: "fail", ms: 12, detail: "404 Not Found", meaning: "No function serves this route." })).toBe(
      `FAIL  ${"GET /api/health".padEnd(50)}     12 ms  404 Not Found\n      usually means: No function serves this route.`,
    );
  });
});

/** A port nothing listens on (bound, then released). */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}
