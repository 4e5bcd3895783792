import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { DeploymentFailedError, oneDeploy, scmTokenScope, scmUrlFor, type OneDeployOptions } from "../../infrastructure/deploy/onedeploy";
import { HttpStatusError } from "../../infrastructure/deploy/http-retry";
import { dropConnection, json, RecordingCredential, ScriptedServer, text } from "./scm-server";

let scm: ScriptedServer;
let credential: RecordingCredential;
// Not a real zip: the SCM fake only checks that the bytes arrive unchanged (all 256 byte values).
const zip = Uint8Array.from({ length: 70_000 }, (_, i) => (i * 7) % 256);

const deploy = (overrides: Partial<OneDeployOptions> = {}) =>
  oneDeploy({ scmUrl: scm.url, zip, credential, retry: { initialDelayMs: 5, maxRetries: 3 }, poll: { intervalMs: 5, timeoutMs: 2000 }, ...overrides });

const publishes = () => scm.requests.filter((r) => r.method === "POST" && r.url.startsWith("/api/publish"));

beforeAll(async () => {
  scm = await ScriptedServer.start();
});
afterAll(async () => {
  await scm.stop();
});
beforeEach(() => {
  scm.reset();
  credential = new RecordingCredential();
});

describe("oneDeploy", () => {
  it("posts exactly the zip with a bearer token and polls the deployment until it succeeded", async () => {
    scm
      .on("POST", "/api/publish", text(202, '"dep-1"'))
      .on("GET", "/api/deployments/dep-1", json(200, { id: "dep-1", status: 0 }), json(200, { id: "dep-1", status: 2 }), json(200, { id: "dep-1", status: 4, complete: true }));

    await expect(deploy()).resolves.toEqual({ deploymentId: "dep-1", statusUrl: `${scm.url}/api/deployments/dep-1` });

    const [publish, ...polls] = scm.requests;
    expect(publish?.url).toBe("/api/publish?RemoteBuild=false");
    expect(publish?.headers.authorization).toBe("Bearer test-token");
    expect(publish?.headers["content-type"]).toBe("application/zip");
    expect(publish?.body.equals(Buffer.from(zip))).toBe(true);
    expect(polls).toHaveLength(3);
    expect(polls.every((p) => p.headers.authorization === "Bearer test-token")).toBe(true);
    expect(new Set(credential.scopes)).toEqual(new Set([scmTokenScope]));
  });

  it("polls the Location the site returns when there is one", async () => {
    scm.on("POST", "/api/publish", text(202, "", { location: "/api/deployments/latest?deployer=x" })).on("GET", "/api/deployments/latest", json(200, { id: "d", status: 4 }));
    await expect(deploy()).resolves.toMatchObject({ deploymentId: "d", statusUrl: `${scm.url}/api/deployments/latest?deployer=x` });
  });

  it("retries 429 after the Retry-After the site asked for, then succeeds", async () => {
    scm
      .on("POST", "/api/publish", json(429, { Message: "Too many requests" }, { "retry-after": "0.3" }), text(202, '"dep-2"'))
      .on("GET", "/api/deployments/dep-2", json(200, { status: 4 }));
    const started = Date.now();
    await deploy();
    expect(Date.now() - started).toBeGreaterThanOrEqual(280);
    expect(publishes()).toHaveLength(2);
    expect(publishes()[1]?.body.equals(Buffer.from(zip))).toBe(true);
  });

  it("retries 503 and a dropped connection, on publish and on polling", async () => {
    scm
      .on("POST", "/api/publish", json(503, { Message: "busy" }), dropConnection, text(202, '"dep-3"'))
      .on("GET", "/api/deployments/dep-3", dropConnection, json(502, "bad gateway"), json(200, { status: 4 }));
    await deploy();
    expect(publishes()).toHaveLength(3);
  });

  it("retries a status read that got no answer in time", async () => {
    scm
      .on("POST", "/api/publish", text(202, '"dep-6"'))
      .on("GET", "/api/deployments/dep-6", () => undefined /* never answers */, json(200, { status: 4 }));
    await deploy({ requestTimeout: { statusMs: 150 } });
    expect(scm.requests.filter((r) => r.url === "/api/deployments/dep-6")).toHaveLength(2);
  });

  it.each([
    [400, "The request body is not a zip"],
    [401, "Unauthorized: token audience is not accepted"],
    [403, "The caller has no Website Contributor role on the app"],
    [404, "This API isn't available in this environment yet!"],
  ])("does not retry %i and fails with the site's message", async (status, message) => {
    scm.on("POST", "/api/publish", json(status, { Message: message }));
    const failure = deploy();
    await expect(failure).rejects.toThrow(message);
    await expect(failure).rejects.toBeInstanceOf(HttpStatusError);
    expect(publishes()).toHaveLength(1);
    expect(scm.requests).toHaveLength(1);
  });

  it("gives up on a transient failure after the configured retries, with the last message", async () => {
    scm.otherwise("POST", "/api/publish", json(500, { Message: "worker crashed" }));
    await expect(deploy({ retry: { initialDelayMs: 1, maxRetries: 2 } })).rejects.toThrow(/500: worker crashed/);
    expect(publishes()).toHaveLength(3);
  });

  it("surfaces a failed deployment with the site's status text and the last log entries", async () => {
    scm
      .on("POST", "/api/publish", text(202, '"dep-4"'))
      .on(
        "GET",
        "/api/deployments/dep-4",
        json(200, { id: "dep-4", status: 1 }),
        json(200, { id: "dep-4", status: 3, status_text: "Deployment failed", log_url: `${scm.url}/api/deployments/dep-4/log` }),
      )
      .on("GET", "/api/deployments/dep-4/log", json(200, [{ message: "Fetching changes." }, { message: "Syncing triggers failed: host.json is not valid JSON" }]));
    const failure = deploy();
    await expect(failure).rejects.toBeInstanceOf(DeploymentFailedError);
    await expect(failure).rejects.toThrow(/ended failed: Deployment failed \| Fetching changes\. \| Syncing triggers failed: host\.json is not valid JSON/);
  });

  it("fails with a clear message when the deployment never finishes", async () => {
    scm.on("POST", "/api/publish", text(202, '"dep-5"')).otherwise("GET", "/api/deployments/dep-5", json(200, { status: 1 }));
    await expect(deploy({ poll: { intervalMs: 20, timeoutMs: 100 } })).rejects.toThrow(/still building after 100 ms/);
  });
});

describe("scmUrlFor", () => {
  it("builds the SCM host of a public-cloud app and rejects names that are not app names", () => {
    expect(scmUrlFor("func-api-dev-1a2b")).toBe("https://func-api-dev-1a2b.scm.azurewebsites.net");
    expect(() => scmUrlFor("evil.example.com/x")).toThrow(/not a valid Function App name/);
  });
});
