/**
 * The whole local platform end to end, as `npm start` runs it (free ports instead of the fixed
 * ones): the api and the agent in their own Functions host processes against every emulator, a
 * browser-style client subscribed through /api/negotiate with @azure/web-pubsub-client, a job
 * created with the development identity, its events pushed, its result read back.
 *
 * It runs on the fault-injection rig (tests/faults/kit.ts: a Basic-tier Service Bus, a 5-second
 * lock, the stuck-job sweeper every second, proxies in front of the emulators, fault points), and
 * ends with the three faults `npm test` keeps from `npm run test:faults`: the agent killed mid-job,
 * the api killed between create and send, the same message sent several times.
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { WebPubSubClient } from "@azure/web-pubsub-client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { serviceNames } from "../../functions/src/services.js";
import { WARMED_UP } from "../../functions/src/shared/warm-up.js";
import { assertPortsFree, FREE_PORTS, PortInUseError, type LocalPlatform } from "../../local/platform.js";
import { runSmoke } from "../../scripts/smoke/checks.js";
import { smokeMain } from "../../scripts/smoke/cli.js";
import { outputLine, startFaultRig, type FaultRig } from "../faults/kit.js";
import * as faults from "../faults/scenarios.js";

let rig: FaultRig;
let platform: LocalPlatform;
/** Where local.settings.json goes in this test (dist/ belongs to the bundler). */
const bundleDirectory = mkdtempSync(join(tmpdir(), "local-platform-test-"));
let output: string[];
const caller = { "x-dev-user": "local-platform-test" };

beforeAll(async () => {
  rig = await startFaultRig({
    platform: {
      bundleDirectory,
      writeLocalSettings: true,
      // The web app's build goes beside them (dist/web is what `npm start` and deployments use).
      web: { outDir: join(bundleDirectory, "web") },
    },
  });
  platform = rig.platform;
  output = rig.output;
}, 60_000);

afterAll(async () => {
  await rig?.stop();
  rmSync(bundleDirectory, { recursive: true, force: true });
});

interface JobEvent {
  type: string;
  jobId: string;
}

describe("the local platform", () => {
  it("reports each start-up step and its duration", () => {
    expect(platform.timings.map((t) => t.step)).toEqual(
      expect.arrayContaining(["Azurite (Blob Storage)", "cosmosdb-server (Cosmos DB)", "Service Bus emulator", "Web PubSub emulator", "static site (web/)", "web app (Vite build)"]),
    );
    expect(platform.startupMs).toBeGreaterThan(0);
    expect(output.some((line) => line.startsWith("[platform]") && line.includes("api (local Functions host"))).toBe(true);
  });

  it("warms each service up at start: handlers loaded and first connections open before any request", async () => {
    // The api's and agent's appStart hooks (functions/src/shared/warm-up.ts) log one line when done;
    // a failure logs "warm-up failed" instead, and would time out here.
    for (const service of ["api", "agent"]) {
      const line = await outputLine(rig, new RegExp(`^\\[${service}\\] .*${service}: (${WARMED_UP}|warm-up failed)`), { includePast: true });
      expect(line).toContain(`${service}: ${WARMED_UP}`);
    }
  });

  it("writes each service's local.settings.json for Core Tools with the settings it runs with", () => {
    for (const service of serviceNames) {
      const file = JSON.parse(readFileSync(join(bundleDirectory, service, "local.settings.json"), "utf8")) as { IsEncrypted: boolean; Values: Record<string, string> };
      expect(file.IsEncrypted).toBe(false);
      expect(file.Values).toMatchObject({ FUNCTIONS_WORKER_RUNTIME: "node", ...platform.settings[service] });
      expect(file.Values.AzureWebJobsStorage).toContain(platform.urls.blob);
    }
    expect(platform.settings.api.ALLOW_DEVELOPMENT_IDENTITY).toBe("true");
  });

  it("serves the built site as $web would hold it: config.json for the local api, the local policy, the website's cache headers", async () => {
    const page = await fetch(`${platform.urls.web}/`);
    expect(page.headers.get("content-type")).toBe("text/html; charset=utf-8");
    expect(page.headers.get("cache-control")).toBe("no-cache");
    const html = await page.text();
    const apiOrigin = new URL(platform.urls.api).origin;
    expect(html).toMatch(new RegExp(`<meta http-equiv="Content-Security-Policy" content="[^"]*connect-src 'self' ${apiOrigin} `));
    const config = await fetch(`${platform.urls.web}/config.json`);
    expect(config.headers.get("cache-control")).toBe("no-cache");
    expect(await config.json()).toEqual({ apiBaseUrl: apiOrigin, auth: { mode: "development", header: "x-dev-user" } });
    const script = /<script type="module" crossorigin src="([^"]+)"/.exec(html)?.[1];
    expect((await fetch(`${platform.urls.web}${script}`)).headers.get("cache-control")).toBe("public, max-age=31536000, immutable");
    expect((await fetch(`${platform.urls.web}/redirect.html`)).headers.get("cache-control")).toBe("no-store");
    // Unknown paths get the website's 404 document (index.html); nothing outside the build is reachable.
    const outside = await fetch(`${platform.urls.web}/../package.json`);
    expect(outside.status).toBe(404);
    expect(await outside.text()).toContain("<html");
    expect((await fetch(`${platform.urls.web}/.vite/manifest.json`)).status).toBe(404);
  });

  it("runs the api against every emulator (health reports each dependency reachable)", async () => {
    const health = await fetch(`${platform.urls.api}/health`);
    expect(health.status, output.slice(-20).join("\n")).toBe(200);
  });

  it("serves the OpenAPI document and Swagger UI from the TypeScript sources (routes loaded on demand)", async () => {
    const openapi = await fetch(`${platform.urls.api}/openapi.json`);
    expect(openapi.status, output.slice(-20).join("\n")).toBe(200);
    expect(((await openapi.json()) as { openapi: string }).openapi).toMatch(/^3\.1/);
    const docs = await fetch(`${platform.urls.api}/docs/`);
    expect(docs.status, output.slice(-20).join("\n")).toBe(200);
    expect(await docs.text()).toContain("swagger-ui-bundle.js");
    expect((await fetch(`${platform.urls.api}/docs/swagger-ui-bundle.js`)).status).toBe(200);
  });

  it("lets the site's origin call the api (CORS as configured in Azure)", async () => {
    const preflight = await fetch(`${platform.urls.api}/jobs`, {
      method: "OPTIONS",
      headers: { origin: platform.urls.web, "access-control-request-method": "POST", "access-control-request-headers": "content-type,x-dev-user" },
    });
    expect(preflight.status).toBe(204);
    expect(preflight.headers.get("access-control-allow-origin")).toBe(platform.urls.web);
  });

  it("takes a job from POST to job.succeeded over Web PubSub, and GET shows the result", async () => {
    const events: JobEvent[] = [];
    let succeeded: (id: string) => void = () => {};
    const client = new WebPubSubClient({
      getClientAccessUrl: async () => ((await (await fetch(`${platform.urls.api}/negotiate`, { headers: caller })).json()) as { url: string }).url,
    });
    client.on("group-message", (event) => {
      const data = event.message.data as JobEvent;
      events.push(data);
      if (data.type === "job.succeeded") succeeded(data.jobId);
    });
    await client.start();
    try {
      const created = await fetch(`${platform.urls.api}/jobs`, {
        method: "POST",
        headers: { ...caller, "content-type": "application/json" },
        body: JSON.stringify({ kind: "text", text: "the local platform runs the whole system" }),
      });
      expect(created.status).toBe(202);
      const { id } = (await created.json()) as { id: string };
      // Resolves when job.succeeded arrives (the test's timeout bounds the wait).
      await new Promise<void>((resolve) => {
        if (events.some((e) => e.jobId === id && e.type === "job.succeeded")) resolve();
        succeeded = (jobId) => jobId === id && resolve();
      });
      expect(events.filter((e) => e.jobId === id).map((e) => e.type)).toEqual(["job.running", "job.succeeded"]);
      const job = (await (await fetch(`${platform.urls.api}/jobs/${id}`, { headers: caller })).json()) as { status: string; result?: { words: number } };
      expect(job.status).toBe("succeeded");
      expect(job.result?.words).toBe(7);
    } finally {
      await client.stop();
    }
  });

  it("answers bad input with a problem from the api itself, not from the host", async () => {
    const response = await fetch(`${platform.urls.api}/jobs`, { method: "POST", headers: { ...caller, "content-type": "application/json" }, body: "{}" });
    // The api's own validation answer (the host's 404/405 never carry a body pointer).
    expect(response.status).toBeGreaterThanOrEqual(400);
    expect(response.status).toBeLessThan(500);
    expect(response.headers.get("content-type")).toContain("application/problem+json");
    expect(JSON.stringify(await response.json())).toContain("kind");
  });

  it("passes `npm run smoke` with the development user: every step, one line each, exit code 0", async () => {
    const lines: string[] = [];
    const code = await smokeMain([platform.urls.api, "--dev-user", "smoke-test", "--web-origin", platform.urls.web, "--timeout", "20"], (line) => void lines.push(line));
    expect(code, `${lines.join("\n")}\n${output.slice(-20).join("\n")}`).toBe(0);
    const step = (title: string) => lines.find((line) => line.includes(title)) ?? `(no line for ${title})`;
    for (const title of [
      "GET /api/health",
      "GET /api/openapi.json",
      "GET /api/docs/ and /api/docs/swagger-ui.css",
      "CORS preflight of POST /api/jobs",
      "GET /api/negotiate",
      "connect to Web PubSub",
      "POST /api/jobs",
      "job.succeeded arrives over Web PubSub",
      "GET /api/jobs/{id} shows the result",
    ]) {
      expect(step(title)).toMatch(/^PASS .* \d+ ms {2}\S/);
    }
    // Locally there is no App Service Authentication to check, and the line says so.
    expect(step("without sign-in is refused")).toMatch(/^SKIP .*no App Service Authentication/);
    expect(lines.at(-1)).toMatch(/^passed: 9 passed, 0 failed, 1 skipped/);
  });

  it("fails the smoke check, saying what it means, for an origin CORS does not allow and for a wrong base URL", async () => {
    const lines: string[] = [];
    expect(await smokeMain([platform.urls.api, "--web-origin", "https://not-the-site.example"], (line) => void lines.push(line))).toBe(1);
    const cors = lines.findIndex((line) => line.startsWith("FAIL  CORS preflight"));
    expect(cors, lines.join("\n")).toBeGreaterThan(0);
    expect(lines[cors]).toContain("\n      usually means: CORS does not allow https://not-the-site.example");
    expect(lines.at(-1)).toMatch(/^FAILED: 4 passed, 1 failed, 5 skipped/);

    // The functions answer under /api only: any other base is a 404 from the host everywhere.
    const wrongBase = await runSmoke({ apiBase: platform.urls.api.replace(/\/api$/, "/v1/api") });
    expect(wrongBase.ok).toBe(false);
    const health = wrongBase.steps[0];
    expect(health).toMatchObject({ title: "GET /api/health", status: "fail" });
    expect(health?.detail).toMatch(/^404 /);
    expect(health?.meaning).toMatch(/code is not deployed .* or the Functions host has not started/);
  });

  it("names every taken port before starting anything", async () => {
    const blocker: Server = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, "127.0.0.1", resolve));
    const port = (blocker.address() as { port: number }).port;
    try {
      const attempt = assertPortsFree({ ...FREE_PORTS, api: port });
      await expect(attempt).rejects.toBeInstanceOf(PortInUseError);
      await expect(attempt).rejects.toThrow(`port ${port} (api) is already in use`);
    } finally {
      blocker.close();
    }
  });

  it("finishes every job once when the agent is killed mid-job: restarted, the job redelivered and run again", async () => {
    const report = await faults.agentKilledMidJob(rig);
    expect(report).toMatchObject({ lost: 0, doubled: 0 });
  }, 60_000);

  it("finishes a job whose api died between create and send: the sweeper sends it; a retry with its Idempotency-Key gets it", async () => {
    const report = await faults.apiKilledBetweenCreateAndSend(rig);
    expect(report).toMatchObject({ lost: 0, doubled: 0 });
  }, 60_000);

  it("runs a job once when its message arrives several times (no duplicate detection)", async () => {
    const report = await faults.sameMessageTwice(rig);
    expect(report).toMatchObject({ lost: 0, doubled: 0 });
  }, 60_000);

  it("stops every process it started", async () => {
    const pids = Object.values(platform.services).map((s) => s.pid);
    await platform.stop();
    for (const pid of pids) expect(() => process.kill(pid, 0)).toThrow(/ESRCH/);
    // Nothing listens on the api's port any more: the connection is refused, not answered.
    await expect(fetch(`${platform.urls.api}/health`)).rejects.toMatchObject({ cause: { code: "ECONNREFUSED" } });
  });
});
