/**
 * The web app in a real browser (Debian's Chromium driven by playwright-core) against the whole
 * local platform on free ports: paste a text, upload a file and see its chart, a job that fails
 * shows why, bad input shows the api's reason next to its field, the live list survives a dropped
 * WebSocket, and axe-core finds nothing serious. One platform, one browser, one page for the file,
 * under the page's own Content-Security-Policy (a violation fails the test). The finished page is
 * kept as a screenshot in .tmp/test-artifacts/.
 */
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { WebPubSubServiceClient } from "@azure/web-pubsub";
import { chromium, type Browser, type Page, type Route } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { repoRoot } from "../../scripts/bundle/services.js";
import { jobResources } from "../../functions/src/shared/job-resources.js";
import { startLocalPlatform, type LocalPlatform } from "../../local/platform.js";
import { contentSecurityPolicy, withContentSecurityPolicy } from "../../web/site/content-security-policy.js";
import { bundleSizes } from "../../web/site/build.js";
import { runtimeConfig } from "../../web/src/runtime-config.js";
import { TEST_CERTIFICATE_DIRECTORY } from "../support/certificate-directory.js";

/** Debian's chromium (`.ci/run` installs it); CHROMIUM_PATH points elsewhere. */
const chromiumPath = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
/** Where the screenshot is kept (gitignored). */
const artifacts = join(repoRoot, ".tmp", "test-artifacts");

const workDirectory = mkdtempSync(join(tmpdir(), "web-browser-test-"));
const user = `browser-${process.pid}`;
const output: string[] = [];
const outputWaiters: { pattern: RegExp; resolve: (line: string) => void }[] = [];
/** Resolves with the first platform output line (past or future) that matches. */
function outputLine(pattern: RegExp): Promise<string> {
  const seen = output.find((line) => pattern.test(line));
  return seen !== undefined ? Promise.resolve(seen) : new Promise((resolve) => outputWaiters.push({ pattern, resolve }));
}

let platform: LocalPlatform;
let browser: Browser;
let page: Page;
/** Policy violations and uncaught errors in the page: none is allowed. */
const pageProblems: string[] = [];
/** Every URL the development-mode page requested. */
const requested: string[] = [];

beforeAll(async () => {
  if (!existsSync(chromiumPath)) {
    throw new Error(`no Chromium at ${chromiumPath}: install it (Debian: apt-get install chromium; .ci/run does) or set CHROMIUM_PATH to a Chromium or Chrome binary`);
  }
  [platform, browser] = await Promise.all([
    startLocalPlatform({
      ports: { web: 0, api: 0, blob: 0, cosmos: 0, serviceBus: 0, webPubSub: 0 },
      stateDirectory: TEST_CERTIFICATE_DIRECTORY,
      bundleDirectory: workDirectory,
      writeLocalSettings: false,
      web: { outDir: join(workDirectory, "web") },
      progress: () => {},
      output: (source, line) => {
        const tagged = `[${source}] ${line}`;
        output.push(tagged);
        for (const waiter of outputWaiters.filter((w) => w.pattern.test(tagged))) {
          outputWaiters.splice(outputWaiters.indexOf(waiter), 1);
          waiter.resolve(tagged);
        }
      },
    }),
    // The flags this machine needs (no sandbox as root, no background calls to Google's hosts).
    chromium.launch({
      executablePath: chromiumPath,
      args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
    }),
  ]);
  page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  page.on("console", (message) => {
    // Failed requests the app handles (the 422 below) are logged as errors too; policy refusals are what matter.
    if (message.type() === "error" && /Content Security Policy|Refused to/.test(message.text())) pageProblems.push(message.text());
  });
  page.on("pageerror", (error) => pageProblems.push(error.message));
  page.on("request", (request) => requested.push(request.url()));
  await page.goto(`${platform.urls.web}/`);
  await page.getByLabel("Your name").fill(user);
  await page.getByRole("button", { name: "Start" }).click();
  await page.locator('#connection[data-state="connected"]').waitFor();
}, 90_000);

afterAll(async () => {
  await browser?.close();
  await platform?.stop();
  rmSync(workDirectory, { recursive: true, force: true });
});

/** In the page (these run in the browser, so they are strings to this Node program). */
const focusedId = "document.activeElement && document.activeElement.id";
interface AxeViolation {
  id: string;
  impact: string | null;
  help: string;
  targets: string[];
}

const api = (path: string, init: RequestInit = {}) => fetch(`${platform.urls.api}${path}`, { ...init, headers: { "x-dev-user": user, "content-type": "application/json", ...init.headers } });
/** Waits until the result view shows another job than before `action`, in `status`. */
async function nextResult(status: string, action: () => Promise<void>): Promise<void> {
  const before = (await page.locator("#result").getAttribute("data-job-id")) ?? "";
  await action();
  await page.locator(`#result[data-status="${status}"]:not([data-job-id="${before}"])`).waitFor();
}

describe("the web app in Chromium", () => {
  it("analyses pasted text, used with the keyboard, and moves focus to the result", async () => {
    await page.getByLabel("Text", { exact: true }).fill("the cat sat on the mat and the cat was happy");
    await nextResult("succeeded", async () => {
      await page.keyboard.press("Tab");
      await page.keyboard.press("Enter");
    });
    expect(await page.evaluate(focusedId)).toBe("result-heading");
    expect(await page.locator("#result .stats").innerText()).toMatch(/Words\s+11\s+Lines\s+1/);
    await expect.poll(() => page.locator("#announcer").innerText()).toMatch(/Done/);
    // The pushed events carried the job's new state: the page never read the job it created again.
    const id = await page.locator("#result").getAttribute("data-job-id");
    expect(requested.filter((url) => new URL(url).pathname === `/api/jobs/${id}`)).toEqual([]);
  });

  it("uploads a file straight to storage with a progress bar, and shows the result with its chart", async () => {
    // Every value the progress bar takes (value is a reflected attribute).
    await page.evaluate(`{
      const bar = document.getElementById("upload-progress");
      window.progressValues = [];
      new MutationObserver(() => window.progressValues.push(Number(bar.getAttribute("value")))).observe(bar, { attributes: true, attributeFilter: ["value"] });
    }`);
    const text = `${"alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu ".repeat(4000)}alpha\n`;
    await page.getByLabel("Text file (UTF-8)").setInputFiles({ name: "greek.txt", mimeType: "text/plain", buffer: Buffer.from(text) });
    await nextResult("succeeded", () => page.getByRole("button", { name: "Upload and analyse" }).click());
    expect(await page.evaluate<number[]>("window.progressValues")).toContain(100);
    expect(await page.locator("#result .stats").innerText()).toMatch(/Words\s+48,001/);
    const chart = page.getByRole("img", { name: "Top words" });
    expect(await chart.locator("rect.word-chart-bar").count()).toBe(10);
    expect(await chart.locator("desc").textContent()).toMatch(/^Most frequent words: alpha \(4001\), beta \(4000\)/);
  });

  it("shows why a job failed: an upload that is not text", async () => {
    const binary = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52]);
    await page.getByLabel("Text file (UTF-8)").setInputFiles({ name: "picture.png", mimeType: "image/png", buffer: binary });
    await nextResult("failed", () => page.getByRole("button", { name: "Upload and analyse" }).click());
    expect(await page.locator("#result").innerText()).toMatch(/Why it failed: .+ \(InputNotText\)/);
    expect(await page.locator('#job-list li[data-status="failed"] .job-reason').first().innerText()).toMatch(/\(InputNotText\)$/);
  });

  it("shows the api's problem next to the field, marks the field invalid and focuses it", async () => {
    const textarea = page.getByLabel("Text", { exact: true });
    await textarea.fill("x".repeat(100_001));
    await page.getByRole("button", { name: "Analyse text" }).click();
    const error = page.locator("#text-error");
    await error.waitFor();
    // The api's own words for #/text (zod's message, through problem+json).
    expect(await error.innerText()).toMatch(/100000 characters/);
    expect(await textarea.getAttribute("aria-invalid")).toBe("true");
    expect(await textarea.getAttribute("aria-describedby")).toContain("text-error");
    expect(await page.evaluate(focusedId)).toBe("text-input");
    await textarea.fill("");
  });

  it("keeps the list right across a dropped WebSocket: reconnects and re-reads what it missed", async () => {
    // Hold the reconnection's negotiate call, so the page stays disconnected while a job finishes.
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    const negotiate = `${platform.urls.api}/negotiate`;
    await page.route(negotiate, async (route) => {
      if (route.request().method() === "GET") await held;
      await route.continue();
    });
    try {
      const service = new WebPubSubServiceClient(platform.settings.api.WebPubSub!, jobResources.hub, { allowInsecureConnection: true });
      await service.closeUserConnections(user, { reason: "test: connection dropped" });
      await page.locator('#connection[data-state="reconnecting"]').waitFor();

      // A job created elsewhere finishes while the page is offline: its pushes go nowhere.
      const created = await api("/jobs", { method: "POST", body: JSON.stringify({ kind: "text", text: "missed while offline" }) });
      expect(created.status).toBe(202);
      const { id } = (await created.json()) as { id: string };
      await outputLine(new RegExp(`\\[job ${id}\\] job succeeded`));
      expect(await page.locator(`#job-list li[data-job-id="${id}"]`).count()).toBe(0);

      release();
      await page.locator('#connection[data-state="connected"]').waitFor();
      await page.locator(`#job-list li[data-job-id="${id}"][data-status="succeeded"]`).waitFor();
    } finally {
      release();
      await page.unroute(negotiate);
    }
  });

  it("has no serious or critical accessibility violations (axe-core), and keeps a screenshot of the finished page", async () => {
    // Show a successful result with its chart, as a user would last see it.
    await nextResult("succeeded", () => page.locator('#job-list li[data-status="succeeded"]').filter({ hasText: "Uploaded file" }).getByRole("button").click());
    const axeSource = createRequire(__filename)("axe-core").source as string;
    // Evaluated through the debugging protocol: the page's policy rightly refuses inline scripts.
    await page.evaluate(axeSource);
    const violations = await page.evaluate<AxeViolation[]>(`axe
      .run(document, { runOnly: { type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"] } })
      .then((results) => results.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, targets: v.nodes.map((n) => JSON.stringify(n.target)) })))`);
    expect(violations.filter((v) => v.impact === "serious" || v.impact === "critical")).toEqual([]);
    await mkdir(artifacts, { recursive: true });
    await page.screenshot({ path: join(artifacts, "web-app.png"), fullPage: true });
    expect(pageProblems).toEqual([]);
  });

  it("loads no sign-in code in development mode", async () => {
    const sizes = await bundleSizes(join(workDirectory, "web"));
    const msalOnly = sizes.entra.files.filter((file) => !sizes.development.files.includes(file));
    expect(msalOnly.length).toBeGreaterThan(0);
    expect(requested.filter((url) => msalOnly.some((file) => url.endsWith(`/${file}`)))).toEqual([]);
    expect(sizes.development.js.gzipBytes).toBeLessThan(sizes.entra.js.gzipBytes);
  });
});

describe("the same build in Entra mode, against a stand-in for Entra ID", () => {
  const tenantId = "11111111-2222-3333-4444-555555555555";
  const spaClientId = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee";
  const apiClientId = "99999999-8888-7777-6666-555555555555";

  it("signs in through MSAL (code flow with PKCE, back through the redirect bridge page) and calls the api with the bearer token", async () => {
    const config = runtimeConfig(new URL(platform.urls.api).origin, { mode: "entra", tenantId, spaClientId, apiClientId });
    const policy = contentSecurityPolicy(config, { blobEndpoint: platform.urls.blob, webPubSubEndpoint: platform.urls.webPubSub });
    const entraPage = await browser.newPage();
    const problems: string[] = [];
    entraPage.on("pageerror", (error) => problems.push(error.message));
    entraPage.on("console", (message) => /Content Security Policy|Refused to/.test(message.text()) && problems.push(message.text()));
    // What a deployment for this stack would serve: the same files, its config.json, its policy.
    await entraPage.route(`${platform.urls.web}/config.json`, (route) => route.fulfill({ json: config, headers: { "cache-control": "no-cache" } }));
    const withPolicy = async (route: Route) => {
      const response = await route.fetch();
      await route.fulfill({ response, body: withContentSecurityPolicy(await response.text(), policy) });
    };
    await entraPage.route(`${platform.urls.web}/`, withPolicy);
    await entraPage.route(`${platform.urls.web}/redirect.html*`, withPolicy);

    // The stand-in: authorize answers with a code at the redirect URI, token redeems it.
    const encode = (value: unknown) => Buffer.from(JSON.stringify(value)).toString("base64url");
    const clientInfo = encode({ uid: "user-object-id", utid: tenantId });
    let authorize: URL | undefined;
    let tokenRequest: URLSearchParams | undefined;
    await entraPage.route("https://login.microsoftonline.com/**", async (route) => {
      const url = new URL(route.request().url());
      if (url.pathname === `/${tenantId}/oauth2/v2.0/authorize`) {
        authorize = url;
        const state = encodeURIComponent(url.searchParams.get("state") ?? "");
        await route.fulfill({ status: 302, headers: { location: `${url.searchParams.get("redirect_uri")}#code=the-code&client_info=${clientInfo}&state=${state}` } });
      } else if (url.pathname === `/${tenantId}/oauth2/v2.0/token`) {
        tokenRequest = new URLSearchParams(route.request().postData() ?? "");
        const now = Math.floor(Date.now() / 1000);
        const claims = { ver: "2.0", iss: `https://login.microsoftonline.com/${tenantId}/v2.0`, aud: spaClientId, tid: tenantId, oid: "user-object-id", sub: "s", name: "Ada Lovelace", nonce: authorize?.searchParams.get("nonce"), iat: now, nbf: now, exp: now + 3600 };
        await route.fulfill({
          headers: { "access-control-allow-origin": platform.urls.web },
          json: { token_type: "Bearer", scope: config.auth.mode === "entra" ? config.auth.scopes.join(" ") : "", expires_in: 3600, access_token: "the-access-token", id_token: `${encode({ alg: "none" })}.${encode(claims)}.`, client_info: clientInfo },
        });
      } else {
        await route.fulfill({ status: 404 });
      }
    });
    const apiAuthorization: (string | undefined)[] = [];
    entraPage.on("request", (request) => request.url().startsWith(platform.urls.api) && request.method() === "GET" && apiAuthorization.push(request.headers().authorization));

    try {
      await entraPage.goto(`${platform.urls.web}/`);
      await entraPage.getByRole("button", { name: "Sign in" }).click();
      await entraPage.getByText("Signed in as Ada Lovelace").waitFor();
      expect(authorize?.searchParams.get("client_id")).toBe(spaClientId);
      expect(authorize?.searchParams.get("redirect_uri")).toBe(`${platform.urls.web}/redirect.html`);
      expect(authorize?.searchParams.get("scope")?.split(" ")).toContain(`api://${apiClientId}/user_impersonation`);
      expect([authorize?.searchParams.get("response_type"), authorize?.searchParams.get("code_challenge_method")]).toEqual(["code", "S256"]);
      expect([tokenRequest?.get("grant_type"), tokenRequest?.get("code")]).toEqual(["authorization_code", "the-code"]);
      expect(tokenRequest?.get("code_verifier")).toMatch(/^[\w-]{43,128}$/);
      // The local api does not accept bearer tokens (Easy Auth does, in Azure): what matters is that they go out.
      await expect.poll(() => apiAuthorization.length).toBeGreaterThan(0);
      expect(new Set(apiAuthorization)).toEqual(new Set(["Bearer the-access-token"]));
      expect(problems).toEqual([]);
    } finally {
      await entraPage.close();
    }
  });
});
