import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import {
  awaitingRoleAssignments,
  DeploymentFailedError,
  DeploymentNotFoundError,
  duration,
  oneDeploy,
  RoleAssignmentWaitExpiredError,
  scmTokenScope,
  scmUrlFor,
  type OneDeployOptions,
} from "../../infrastructure/deploy/onedeploy";
import { HttpStatusError } from "../../infrastructure/deploy/http-retry";
import { dropConnection, json, RecordingCredential, ScriptedServer, text } from "./scm-server";

let scm: ScriptedServer;
let credential: RecordingCredential;
// Not a real zip: the SCM fake only checks that the bytes arrive unchanged (all 256 byte values).
const zip = Uint8Array.from({ length: 70_000 }, (_, i) => (i * 7) % 256);

let logged: string[];
// Every wait in milliseconds: the real defaults are seconds and minutes.
const deploy = (overrides: Partial<OneDeployOptions> = {}) =>
  oneDeploy({
    scmUrl: scm.url,
    zip,
    credential,
    retry: { initialDelayMs: 5, maxRetries: 3 },
    poll: { intervalMs: 5, timeoutMs: 2000 },
    ongoingDeploymentWait: { intervalMs: 5, timeoutMs: 500 },
    roleAssignmentWait: { initialDelayMs: 5, maxDelayMs: 20, timeoutMs: 1000 },
    log: (line) => void logged.push(line),
    ...overrides,
  });

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
  logged = [];
});

describe("oneDeploy", () => {
  it("posts exactly the zip with a bearer token and polls the deployment until it succeeded", async () => {
    scm
      .on("POST", "/api/publish", text(202, '"dep-1"'))
      .on("GET", "/api/deployments/dep-1", json(200, { id: "dep-1", status: 0 }), json(200, { id: "dep-1", status: 2 }), json(200, { id: "dep-1", status: 4, complete: true }));

    await expect(deploy()).resolves.toEqual({ deploymentId: "dep-1", statusUrl: `${scm.url}/api/deployments/dep-1`, publishes: 1 });

    const [publish, ...polls] = scm.requests;
    expect(publish?.url).toBe("/api/publish?RemoteBuild=false");
    expect(publish?.headers.authorization).toBe("Bearer test-token");
    expect(publish?.headers["content-type"]).toBe("application/zip");
    expect(publish?.body.equals(Buffer.from(zip))).toBe(true);
    expect(polls).toHaveLength(3);
    expect(polls.every((p) => p.headers.authorization === "Bearer test-token")).toBe(true);
    // The ARM audience azd and the az CLI ask for (management.core.windows.net), not management.azure.com.
    expect(new Set(credential.scopes)).toEqual(new Set(["https://management.core.windows.net//.default"]));
    expect(scmTokenScope).toBe("https://management.core.windows.net//.default");
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
    // Not a storage authorization failure: final at once, no second publish.
    expect(publishes()).toHaveLength(1);
  });

  it("fails with a clear message when the deployment never finishes", async () => {
    scm.on("POST", "/api/publish", text(202, '"dep-5"')).otherwise("GET", "/api/deployments/dep-5", json(200, { status: 1 }));
    await expect(deploy({ poll: { intervalMs: 20, timeoutMs: 100 } })).rejects.toThrow(/still building after 100 ms/);
  });
});

// What a fresh Flex app's SCM site logs when the app's identity may not write the deployment
// container yet (as reported in azure-functions-core-tools#4346 and azure-dev#4439).
const storage403 =
  "Failed to upload because Azure Storage responded with Forbidden : Response status code does not indicate success: 403 (This request is not authorized to perform this operation.).";
const failedUpload = (id: string) =>
  json(200, { id, status: 3, status_text: "Deployment failed", log_url: `${scm.url}/api/deployments/${id}/log` });
const uploadLog = json(200, [
  { log_time: "2026-01-01T00:00:00Z", message: "Starting deployment pipeline.", type: 0 },
  { log_time: "2026-01-01T00:00:01Z", message: "Created blob uri: https://st.blob.core.windows.net/app-package-x/released-package.zip", type: 0 },
  { log_time: "2026-01-01T00:00:02Z", message: storage403, type: 2 },
  { log_time: "2026-01-01T00:00:03Z", message: "Cleaning up temp folders.", type: 0 },
]);

describe("oneDeploy: 404s on the status URL (azd's reading)", () => {
  it("tolerates 404s while the deployment comes alive", async () => {
    scm
      .on("POST", "/api/publish", text(202, '"dep-a"'))
      .on("GET", "/api/deployments/dep-a", json(404, "not found"), json(404, "not found"), json(404, "not found"), json(200, { status: 1 }), json(200, { id: "dep-a", status: 4 }));
    await expect(deploy()).resolves.toMatchObject({ deploymentId: "dep-a", publishes: 1 });
    expect(scm.requests.filter((r) => r.url === "/api/deployments/dep-a")).toHaveLength(5);
    expect(logged).toContain("deployment dep-a not known yet (404 3 of 3 tolerated)");
  });

  it("takes a 404 after progress as a recycled id and lets /api/deployments/latest decide: success", async () => {
    scm
      .on("POST", "/api/publish", text(202, '"dep-b"'))
      .on("GET", "/api/deployments/dep-b", json(200, { id: "dep-b", status: 2 }), json(404, "not found"))
      .on("GET", "/api/deployments/latest", json(200, { id: "dep-b", status: 4 }));
    await expect(deploy()).resolves.toEqual({ deploymentId: "dep-b", statusUrl: `${scm.url}/api/deployments/dep-b`, publishes: 1 });
    expect(publishes()).toHaveLength(1);
  });

  it("a recycled id whose latest record failed fails with that record's message and log", async () => {
    scm
      .on("POST", "/api/publish", text(202, '"dep-c"'))
      .on("GET", "/api/deployments/dep-c", json(200, { id: "dep-c", status: 1 }), json(404, "not found"))
      .on("GET", "/api/deployments/latest", json(200, { id: "dep-c", status: 3, status_text: "Deployment failed", log_url: `${scm.url}/api/deployments/dep-c/log` }))
      .on("GET", "/api/deployments/dep-c/log", json(200, [{ message: "Syncing triggers.", type: 0 }, { message: "Sync triggers failed: host.json is not valid JSON", type: 2 }]));
    const failure = deploy();
    await expect(failure).rejects.toBeInstanceOf(DeploymentFailedError);
    await expect(failure).rejects.toThrow("ended failed: Deployment failed | Syncing triggers. | Sync triggers failed: host.json is not valid JSON");
    expect(publishes()).toHaveLength(1);
  });

  it("keeps waiting while latest shows the recycled deployment still running, or an older one", async () => {
    scm
      .on("POST", "/api/publish", text(202, '"dep-d"'))
      .otherwise("GET", "/api/deployments/dep-d", json(404, "not found"))
      .on("GET", "/api/deployments/dep-d", json(200, { id: "dep-d", status: 0 }))
      .on(
        "GET",
        "/api/deployments/latest",
        json(200, { id: "older", status: 4 }), // a previous deployment's success is not ours
        json(200, { id: "dep-d", status: 2 }),
        json(200, { id: "dep-d", status: 4 }),
      );
    await expect(deploy()).resolves.toMatchObject({ deploymentId: "dep-d", publishes: 1 });
    expect(scm.requests.filter((r) => r.url === "/api/deployments/latest")).toHaveLength(3);
    expect(logged.some((line) => line.includes("answers 404 after it was pending") && line.includes("it shows older"))).toBe(true);
  });
});

describe("oneDeploy on a fresh app: waiting for role assignments to take effect", () => {
  it("publishes again after a failed storage upload (403 in the log) and succeeds, saying what it waits for", async () => {
    scm
      .on("POST", "/api/publish", text(202, '"dep-e"'), text(202, '"dep-f"'))
      .on("GET", "/api/deployments/dep-e", json(200, { id: "dep-e", status: 1 }), failedUpload("dep-e"))
      .on("GET", "/api/deployments/dep-e/log", uploadLog)
      .on("GET", "/api/deployments/dep-f", json(200, { id: "dep-f", status: 2 }), json(200, { id: "dep-f", status: 4 }));
    await expect(deploy()).resolves.toMatchObject({ deploymentId: "dep-f", publishes: 2 });
    expect(publishes()).toHaveLength(2);
    expect(publishes()[1]?.body.equals(Buffer.from(zip))).toBe(true);
    const wait = logged.find((line) => line.includes("publishing again in"));
    expect(wait).toMatch(/storage authorization error/);
    expect(wait).toContain(storage403);
    expect(wait).toMatch(/publishing again in 5 ms \(\d+ ms left of 1 s\)/);
  });

  it("publishes again when the site never records the deployment, reporting what latest says", async () => {
    scm
      .on("POST", "/api/publish", text(202, '"dep-g"'), text(202, '"dep-h"'))
      .otherwise("GET", "/api/deployments/dep-g", json(404, "not found"))
      .on("GET", "/api/deployments/latest", json(200, { id: "dep-g", status: 0, status_text: "Receiving package" }))
      .on("GET", "/api/deployments/dep-g/log", json(200, [{ message: "Starting deployment pipeline." }]))
      .on("GET", "/api/deployments/dep-h", json(200, { id: "dep-h", status: 4 }));
    await expect(deploy()).resolves.toMatchObject({ deploymentId: "dep-h", publishes: 2 });
    // 1 + the 3 tolerated 404s, then latest was read once.
    expect(scm.requests.filter((r) => r.url === "/api/deployments/dep-g")).toHaveLength(4);
    const wait = logged.find((line) => line.includes("publishing again in"));
    expect(wait).toContain("never recorded the deployment");
    expect(wait).toContain("latest deployment: dep-g pending: Receiving package | Starting deployment pipeline.");
  });

  it("gives up when the 403 outlasts the wait, with the site's message and how long it tried", async () => {
    scm
      .otherwise("POST", "/api/publish", text(202, '"dep-i"'))
      .otherwise("GET", "/api/deployments/dep-i", failedUpload("dep-i"))
      .otherwise("GET", "/api/deployments/dep-i/log", uploadLog);
    const failure = deploy({ roleAssignmentWait: { initialDelayMs: 10, maxDelayMs: 20, timeoutMs: 60 } });
    await expect(failure).rejects.toBeInstanceOf(RoleAssignmentWaitExpiredError);
    await expect(failure).rejects.toThrow(storage403);
    const error = (await failure.catch((e: unknown) => e)) as RoleAssignmentWaitExpiredError;
    // How many publishes fit depends on how fast this machine answers; the report matches them.
    expect(error.message).toContain(`still failing after ${publishes().length} publishes over`);
    expect(error.lastFailure).toBeInstanceOf(DeploymentFailedError);
  });

  it("classifies only storage authorization failures and unknown deployments as worth waiting for", () => {
    expect(awaitingRoleAssignments(new DeploymentFailedError("https://x", 3, `Deployment failed | ${storage403}`))).toBeDefined();
    expect(awaitingRoleAssignments(new DeploymentFailedError("https://x", 3, "ErrorCode: AuthorizationPermissionMismatch"))).toBeDefined();
    expect(awaitingRoleAssignments(new DeploymentNotFoundError("https://x/api/deployments/1", 4, ""))).toBeDefined();
    expect(awaitingRoleAssignments(new DeploymentFailedError("https://x", 3, "host.json is not valid JSON"))).toBeUndefined();
    expect(awaitingRoleAssignments(new DeploymentFailedError("https://x", 6, "partial: 403 on one step"))).toBeUndefined();
    expect(awaitingRoleAssignments(new Error("403"))).toBeUndefined();
  });
});

describe("oneDeploy: 409 on publish (another deployment in progress)", () => {
  it("waits and publishes again, then succeeds", async () => {
    scm
      .on("POST", "/api/publish", json(409, { Message: "There is a deployment currently in progress." }), text(202, '"dep-j"'))
      .on("GET", "/api/deployments/dep-j", json(200, { status: 4 }));
    await expect(deploy()).resolves.toMatchObject({ deploymentId: "dep-j", publishes: 1 });
    expect(publishes()).toHaveLength(2);
    expect(logged.some((line) => /another deployment to .* is in progress \(409: There is a deployment currently in progress\.\); publishing again in 5 ms/.test(line))).toBe(true);
  });

  it("fails with the site's message once the wait is over", async () => {
    scm.otherwise("POST", "/api/publish", json(409, { Message: "There is a deployment currently in progress." }));
    await expect(deploy({ ongoingDeploymentWait: { intervalMs: 10, timeoutMs: 35 } })).rejects.toThrow(
      /was still in progress after 35 ms \(409: There is a deployment currently in progress\.\); see http:\/\/127\.0\.0\.1:\d+\/api\/deployments\/latest/,
    );
    expect(publishes().length).toBeGreaterThanOrEqual(1);
  });
});

describe("duration", () => {
  it("reads as people say it", () => {
    expect([duration(5), duration(1000), duration(45_000), duration(60_000), duration(280_000)]).toEqual(["5 ms", "1 s", "45 s", "1 min", "4 min 40 s"]);
  });
});

describe("scmUrlFor", () => {
  it("builds the SCM host of a public-cloud app and rejects names that are not app names", () => {
    expect(scmUrlFor("func-api-dev-1a2b")).toBe("https://func-api-dev-1a2b.scm.azurewebsites.net");
    expect(() => scmUrlFor("evil.example.com/x")).toThrow(/not a valid Function App name/);
  });
});
