/**
 * The abuse review's reproductions (issue 16), replayed against the whole local platform as
 * `npm start` runs it (one platform for the file, free ports, lowered quotas), each asserting the
 * refusal. The agent's side of F1/F8 (If-Match, copied blobs) is in tests/functions/agent-emulators
 * (it needs a job the agent has not picked up yet), the quota records under many instances in
 * tests/functions/quotas, the memory bound of the analysis in tests/functions/analysis.
 */
import { createHmac } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { request as httpRequest } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { BlobServiceClient, BlockBlobClient, type ContainerClient } from "@azure/storage-blob";
import { WebPubSubClient } from "@azure/web-pubsub-client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { callerFrom } from "../../functions/src/api/identity.js";
import { jobResources } from "../../functions/src/shared/job-resources.js";
import { uploadPrefix } from "../../functions/src/shared/upload-names.js";
import { loadSettings } from "../../functions/src/settings.js";
import { sweepExpiredBlobs } from "../../local/app-resources.js";
import { FREE_PORTS, startLocalPlatform, type LocalPlatform } from "../../local/platform.js";
import { memoryOf } from "../../scripts/bench/abuse-memory.js";
import { TEST_CERTIFICATE_DIRECTORY } from "../support/certificate-directory.js";

const MiB = 1024 * 1024;
/** Low enough that a test reaches them in a few requests. */
const quotas = { quotaUploadUrlsPerHour: 4, quotaJobsPerHour: 6, quotaJobsInFlight: 10 };

let platform: LocalPlatform;
let api: string;
let uploads: ContainerClient;
const output: string[] = [];
const scratch = mkdtempSync(join(tmpdir(), "abuse-review-"));
let userCounter = 0;
const newUser = () => `abuse-${++userCounter}-${Math.random().toString(36).slice(2, 8)}`;

beforeAll(async () => {
  platform = await startLocalPlatform({
    ports: FREE_PORTS,
    stateDirectory: TEST_CERTIFICATE_DIRECTORY,
    bundleDirectory: scratch,
    web: { outDir: join(scratch, "web") },
    config: quotas,
    progress: () => {},
    output: (source, line) => void output.push(`[${source}] ${line}`),
  });
  api = platform.urls.api;
  uploads = BlobServiceClient.fromConnectionString(platform.settings.api.DataStorage!).getContainerClient(jobResources.uploads);
}, 90_000);

afterAll(async () => {
  await platform?.stop();
  rmSync(scratch, { recursive: true, force: true });
});

const asUser = (user: string, headers: Record<string, string> = {}) => ({ "x-dev-user": user, ...headers });
const json = (user: string) => asUser(user, { "content-type": "application/json" });

async function issueUpload(user: string, size: number) {
  const response = await fetch(`${api}/uploads`, { method: "POST", headers: json(user), body: JSON.stringify({ size }) });
  expect(response.status, await response.clone().text()).toBe(201);
  return (await response.json()) as { blobName: string; uploadUrl: string; maxBytes: number };
}

const submitBlobJob = (user: string, blobName: string) => fetch(`${api}/jobs`, { method: "POST", headers: json(user), body: JSON.stringify({ kind: "blob", blobName }) });

/** A Blob REST call with the upload URL's SAS, as an attacker would make it by hand. */
const withSas = (uploadUrl: string, init: RequestInit & { query?: string }) =>
  fetch(`${uploadUrl}${init.query ? `&${init.query}` : ""}`, init).then(async (response) => ({ status: response.status, body: await response.text() }));

/** Sends `bytes` as a chunked body and reports how many the server had taken when it answered. */
async function streamedPost(path: string, bytes: number, headers: Record<string, string> = {}) {
  let sent = 0;
  const chunk = new Uint8Array(64 * 1024).fill(0x61);
  const body = Readable.toWeb(
    Readable.from(
      (function* () {
        while (sent < bytes) {
          sent += chunk.length;
          yield chunk;
        }
      })(),
    ),
  ) as ReadableStream<Uint8Array>;
  try {
    const response = await fetch(`${api}${path}`, { method: "POST", headers: { "content-type": "application/json", ...headers }, body, duplex: "half" } as RequestInit);
    return { status: response.status, contentType: response.headers.get("content-type"), sentWhenAnswered: sent };
  } catch {
    // The server answered and closed before the body was sent: a refusal as well.
    return { status: 0, contentType: null, sentWhenAnswered: sent };
  }
}

/** Resolves with the job's terminal event, pushed to its owner over Web PubSub (no polling). */
async function terminalEventOf(user: string, submit: () => Promise<Response>): Promise<{ status: number; event?: { type: string; result?: { words: number; characters: number }; error?: { code: string } } }> {
  const client = new WebPubSubClient({ getClientAccessUrl: async () => ((await (await fetch(`${api}/negotiate`, { headers: asUser(user) })).json()) as { url: string }).url });
  const events: { type: string; jobId: string }[] = [];
  let notify = () => {};
  client.on("group-message", (message) => {
    events.push(message.message.data as { type: string; jobId: string });
    notify();
  });
  await client.start();
  try {
    const response = await submit();
    if (response.status !== 202) return { status: response.status };
    const { id } = (await response.json()) as { id: string };
    const terminal = () => events.find((e) => e.jobId === id && (e.type === "job.succeeded" || e.type === "job.failed"));
    await new Promise<void>((resolve) => {
      notify = () => terminal() && resolve();
      notify();
    });
    return { status: 202, event: terminal() as never };
  } finally {
    client.stop();
  }
}

describe("F2: bodies are refused before they are buffered", () => {
  it("refuses a 95 MiB chunked POST to the anonymous /api/health after about the 1 MiB limit, and the api stays small", async () => {
    await (await fetch(`${api}/health`)).arrayBuffer(); // loads the handlers first: the baseline is a warm process
    const before = memoryOf(platform.services.api.pid);
    const refused = await streamedPost("/health", 95 * MiB);
    expect([413, 0]).toContain(refused.status);
    // The review saw the whole 95 MiB read (and +380 MB of memory) before the 405.
    expect(refused.sentWhenAnswered).toBeLessThan(32 * MiB);
    const jobs = await streamedPost("/jobs", 95 * MiB, asUser(newUser()));
    expect([413, 0]).toContain(jobs.status);
    expect(jobs.sentWhenAnswered).toBeLessThan(32 * MiB);
    expect(memoryOf(platform.services.api.pid).peakMb - before.rssMb, output.slice(-10).join("\n")).toBeLessThan(100);
  });

  it("answers a method a route does not serve with a 405 problem naming the allowed ones, without looking at the body", async () => {
    for (const [path, allow] of [["/health", "GET"], ["/openapi.json", "GET"], ["/docs/", "GET"], ["/jobs", "GET, POST"], ["/uploads", "POST"]] as const) {
      const response = await fetch(`${api}${path}`, { method: "PUT", headers: { "content-type": "application/json" }, body: "{}" });
      expect(response.status, path).toBe(405);
      expect(response.headers.get("content-type"), path).toBe("application/problem+json");
      expect(response.headers.get("allow")?.split(", ").sort().join(", "), path).toBe(allow);
    }
  });

  it("refuses a body on a route that takes none", async () => {
    const response = await new Promise<{ status: number; type: string | undefined }>((resolve, reject) => {
      const url = new URL(`${api}/health`);
      const req = httpRequest({ host: url.hostname, port: url.port, path: url.pathname, method: "GET", headers: { "content-length": "5" } }, (res) => {
        res.resume();
        resolve({ status: res.statusCode ?? 0, type: res.headers["content-type"] });
      });
      req.on("error", reject);
      req.end("hello");
    });
    expect(response).toEqual({ status: 413, type: "application/problem+json" });
  });
});

describe("F1, F3, F8: uploads", () => {
  it("refuses a job for a blob filled by Copy Blob from another user's upload, and deletes it (F1)", async () => {
    const bob = newUser();
    const alice = newUser();
    const bobs = await issueUpload(bob, 100);
    expect((await withSas(bobs.uploadUrl, { method: "PUT", headers: { "x-ms-blob-type": "BlockBlob" }, body: "bob secret content words here" })).status).toBe(201);
    const alices = await issueUpload(alice, 100);
    // Azurite copies without authorising the source (Azure would require it): the copy lands...
    const copy = await withSas(alices.uploadUrl, { method: "PUT", headers: { "x-ms-copy-source": `${platform.urls.blob}/${jobResources.uploads}/${bobs.blobName}` } });
    expect(copy.status).toBe(202);
    // ...but the api refuses the job for it, so the agent never reads bob's words.
    const job = await submitBlobJob(alice, alices.blobName);
    expect(job.status).toBe(422);
    expect(((await job.json()) as { detail: string }).detail).toMatch(/copy from another blob/);
    expect(await uploads.getBlobClient(alices.blobName).exists()).toBe(false);
  });

  it("the upload URL creates one blob once and does nothing else: no overwrite, copy over, blocks, append, lease or metadata (F3, F8)", async () => {
    const user = newUser();
    const upload = await issueUpload(user, 100);
    expect(new URL(upload.uploadUrl).searchParams.get("sp")).toBe("c");
    const put = (body: string) => withSas(upload.uploadUrl, { method: "PUT", headers: { "x-ms-blob-type": "BlockBlob" }, body });
    expect((await put("harmless words")).status).toBe(201);
    // The swap after acceptance the review made (overwrite, or Copy Blob over it) is refused by the SAS itself.
    expect((await put("payroll confidential numbers")).status).toBe(403);
    expect((await withSas(upload.uploadUrl, { method: "PUT", headers: { "x-ms-copy-source": `${platform.urls.blob}/${jobResources.uploads}/${upload.blobName}` } })).status).toBe(403);
    const refused = [
      await withSas(upload.uploadUrl, { method: "PUT", query: `comp=block&blockid=${Buffer.from("b1").toString("base64")}`, body: "more" }),
      await withSas(upload.uploadUrl, { method: "PUT", query: "comp=appendblock", body: "more" }),
      await withSas(upload.uploadUrl, { method: "PUT", query: "comp=lease", headers: { "x-ms-lease-action": "acquire", "x-ms-lease-duration": "-1" } }),
      await withSas(upload.uploadUrl, { method: "PUT", query: "comp=metadata", headers: { "x-ms-meta-a": "b" } }),
      await withSas(upload.uploadUrl, { method: "GET" }),
      await withSas(upload.uploadUrl, { method: "DELETE" }),
    ];
    expect(refused.map((r) => r.status)).toEqual([403, 403, 403, 403, 403, 403]);
  });

  it("refuses (and deletes) a blob larger than the size declared for its URL, and one that is not a block blob (F3)", async () => {
    const user = newUser();
    const small = await issueUpload(user, 1);
    expect(small.maxBytes).toBe(1);
    // The review's 30 MiB on a {"size":1} URL: the SAS cannot stop the PUT, the api refuses the job.
    const big = Buffer.alloc(30 * MiB, 0x61);
    await new BlockBlobClient(small.uploadUrl).upload(big, big.length);
    const oversized = await submitBlobJob(user, small.blobName);
    expect(oversized.status).toBe(422);
    expect(((await oversized.json()) as { detail: string }).detail).toMatch(/more than the 1 bytes declared/);
    expect(await uploads.getBlobClient(small.blobName).exists()).toBe(false);

    const paged = await issueUpload(user, 100);
    expect((await withSas(paged.uploadUrl, { method: "PUT", headers: { "x-ms-blob-type": "PageBlob", "x-ms-blob-content-length": String(64 * MiB) } })).status).toBe(201);
    const page = await submitBlobJob(user, paged.blobName);
    expect(page.status).toBe(422);
    expect(((await page.json()) as { detail: string }).detail).toMatch(/BlockBlob/);
    expect(await uploads.getBlobClient(paged.blobName).exists()).toBe(false);
  });

  it("deletes uploads older than deleteAfterDays, as the lifecycle rule does in Azure (F3)", async () => {
    const user = newUser();
    const upload = await issueUpload(user, 100);
    await new BlockBlobClient(upload.uploadUrl).upload("kept for a while", 16);
    expect(await sweepExpiredBlobs(uploads, 7)).not.toContain(upload.blobName);
    const eightDaysOn = new Date(Date.now() + 8 * 24 * 3_600_000);
    expect(await sweepExpiredBlobs(uploads, 7, eightDaysOn)).toContain(upload.blobName);
    expect(await uploads.getBlobClient(upload.blobName).exists()).toBe(false);
  });
});

describe("F3: per-user quotas", () => {
  it("answers the upload URL over the hourly limit with 429, Retry-After and a problem saying when", async () => {
    const user = newUser();
    for (let n = 0; n < quotas.quotaUploadUrlsPerHour; n += 1) await issueUpload(user, 10);
    const refused = await fetch(`${api}/uploads`, { method: "POST", headers: json(user), body: JSON.stringify({ size: 10 }) });
    expect(refused.status).toBe(429);
    expect(refused.headers.get("content-type")).toBe("application/problem+json");
    expect(Number(refused.headers.get("retry-after"))).toBeGreaterThan(3000);
    expect(((await refused.json()) as { detail: string }).detail).toMatch(/4 upload URLs in the last hour/);
    // Another user is unaffected.
    await issueUpload(newUser(), 10);
  });

  it("answers jobs over the hourly limit with 429, and a replay of an accepted one is no new job", async () => {
    const user = newUser();
    const submit = (text: string, key?: string) =>
      fetch(`${api}/jobs`, { method: "POST", headers: { ...json(user), ...(key ? { "idempotency-key": key } : {}) }, body: JSON.stringify({ kind: "text", text }) });
    for (let n = 0; n < quotas.quotaJobsPerHour; n += 1) expect((await submit(`job ${n}`, `key-${n}`)).status).toBe(202);
    expect((await submit("job 0", "key-0")).status).toBe(202); // a replay, not a seventh job
    const refused = await submit("one too many");
    expect(refused.status).toBe(429);
    expect(Number(refused.headers.get("retry-after"))).toBeGreaterThan(3000);
  });
});

describe("F4: agent memory", () => {
  it("analyses a blob of more distinct words than the frequency table holds, exactly where it can", async () => {
    const user = newUser();
    const tokens = Array.from({ length: 120_000 }, (_, n) => n.toString(36)).join(" ") + " the the the";
    const upload = await issueUpload(user, tokens.length);
    await new BlockBlobClient(upload.uploadUrl).upload(tokens, tokens.length);
    const { status, event } = await terminalEventOf(user, () => submitBlobJob(user, upload.blobName));
    expect(status).toBe(202);
    expect(event?.type, JSON.stringify(event)).toBe("job.succeeded");
    expect(event?.result).toMatchObject({ words: 120_003, characters: tokens.length });
  });

  it("runs as many jobs per agent instance as its memory holds (the host honours the derived setting)", () => {
    expect(platform.settings.agent.AzureFunctionsJobHost__extensions__serviceBus__maxConcurrentCalls).toBe("16");
    expect(output.some((line) => line.startsWith("[agent]") && line.includes("(max 16 concurrent calls)"))).toBe(true);
  });
});

describe("F5: the development identity", () => {
  it("is refused where Azure runs the code, and never wins over the platform's principal", () => {
    const azureShaped = {
      ...platform.settings.api,
      Cosmos__accountEndpoint: "https://acct.documents.azure.com:443/",
      APP_SERVICE_AUTHENTICATION: "true",
      ALLOW_DEVELOPMENT_IDENTITY: "true",
      WEBSITE_INSTANCE_ID: "0123abcd",
    };
    expect(() => loadSettings("api", azureShaped)).toThrow(/ALLOW_DEVELOPMENT_IDENTITY is a local-only setting, but Azure runs this app \(WEBSITE_INSTANCE_ID is set\)/);
    const headers = new Headers({ "x-dev-user": "victim-oid", "x-ms-client-principal-id": "attacker-oid" });
    expect(callerFrom(headers, { trustAppServiceAuthentication: true, allowDevelopmentIdentity: true })?.userId).toBe("attacker-oid");
  });

  it("local.settings.json says it is local only", () => {
    const file = JSON.parse(readFileSync(join(scratch, "api", "local.settings.json"), "utf8")) as { $comment: string; Values: Record<string, string> };
    expect(file.$comment).toMatch(/^Local only: .*Never publish it to Azure/);
    expect(file.Values.ALLOW_DEVELOPMENT_IDENTITY).toBe("true");
  });
});

describe("F6, F9, F10, F11: smaller findings", () => {
  it("answers inherited property names under /api/docs with 404, not 500 (F6)", async () => {
    for (const name of ["__proto__", "constructor", "hasOwnProperty", "toString"]) {
      expect((await fetch(`${api}/docs/${name}`)).status, name).toBe(404);
    }
  });

  it("refuses a text with NUL at once (422), and counts characters as the result does (F9)", async () => {
    const user = newUser();
    const nul = await fetch(`${api}/jobs`, { method: "POST", headers: json(user), body: JSON.stringify({ kind: "text", text: "a\u0000b" }) });
    expect(nul.status).toBe(422);
    expect(((await nul.json()) as { errors: { pointer: string }[] }).errors[0]?.pointer).toBe("#/text");
    const emoji = "😀".repeat(50_000);
    const { event } = await terminalEventOf(user, async () => {
      const response = await fetch(`${api}/jobs`, { method: "POST", headers: json(user), body: JSON.stringify({ kind: "text", text: emoji }) });
      expect(((await response.clone().json()) as { input: { characters: number } }).input.characters).toBe(50_000);
      return response;
    });
    expect(event?.result?.characters).toBe(50_000);
  });

  it("answers forged or foreign continuation tokens with 400 (F10)", async () => {
    const alice = newUser();
    for (let n = 0; n < 3; n += 1) await fetch(`${api}/jobs`, { method: "POST", headers: json(alice), body: JSON.stringify({ kind: "text", text: `page ${n}` }) });
    const first = (await (await fetch(`${api}/jobs?pageSize=1`, { headers: asUser(alice) })).json()) as { continuationToken: string };
    expect((await fetch(`${api}/jobs?pageSize=1&continuationToken=${first.continuationToken}`, { headers: asUser(alice) })).status).toBe(200);
    const forged = ["hello", "null", JSON.stringify({ token: "' OR 1=1 --" }), JSON.stringify({ token: "-RID:~AAAAAA==#RT:1#TRC:-5", range: { min: "", max: "FF" } })].map((raw) =>
      Buffer.from(raw).toString("base64url"),
    );
    for (const token of [...forged, first.continuationToken]) {
      const caller = token === first.continuationToken ? newUser() : alice; // alice's own token, used by someone else
      const response = await fetch(`${api}/jobs?continuationToken=${token}`, { headers: asUser(caller) });
      expect(response.status, Buffer.from(token, "base64url").toString()).toBe(400);
    }
  });

  it("sends nosniff with JSON and problem answers, does not echo an invalid job id, and refuses a rebound host name (F11)", async () => {
    const user = newUser();
    expect((await fetch(`${api}/jobs`, { headers: asUser(user) })).headers.get("x-content-type-options")).toBe("nosniff");
    const missing = await fetch(`${api}/jobs/${"x".repeat(8000)}`, { headers: asUser(user) });
    expect(missing.headers.get("x-content-type-options")).toBe("nosniff");
    expect((await missing.text()).length).toBeLessThan(500);
    const rebound = await new Promise<number>((resolve, reject) => {
      const url = new URL(`${api}/jobs`);
      const req = httpRequest({ host: url.hostname, port: url.port, path: url.pathname, headers: { host: `attacker.example:${url.port}`, "x-dev-user": user } }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on("error", reject).end();
    });
    expect(rebound).toBe(421);
  });
});

describe("F7: local Web PubSub", () => {
  const reviewKey = "bG9jYWwtcGxhdGZvcm0td2ViLXB1YnN1Yi1hY2Nlc3Mta2V5LTAwMDAwMDAw";

  it("no longer accepts tokens signed with the key that was fixed in the repository", async () => {
    const audience = `${platform.urls.webPubSub}/client/hubs/${jobResources.hub}`;
    const encode = (value: unknown) => Buffer.from(JSON.stringify(value)).toString("base64url");
    const unsigned = `${encode({ alg: "HS256", typ: "JWT" })}.${encode({ aud: audience, sub: "mallory", "webpubsub.group": [`user.${uploadPrefix("bob").slice(6, 46)}`], exp: Math.floor(Date.now() / 1000) + 600 })}`;
    const token = `${unsigned}.${createHmac("sha256", reviewKey).update(unsigned).digest("base64url")}`;
    expect(await upgradeStatus(`${audience.replace("http", "ws")}?access_token=${token}`)).toBe(401);
  });

  it("refuses a page from another origin even with a valid token, and serves the local site's", async () => {
    const { url } = (await (await fetch(`${api}/negotiate`, { headers: asUser(newUser()) })).json()) as { url: string };
    expect(await upgradeStatus(url, "https://evil.example")).toBe(403);
    expect(await upgradeStatus(url, platform.urls.web)).toBe(101);
  });
});

/** The HTTP status of a WebSocket upgrade (101 when it was accepted), sent as a browser would. */
function upgradeStatus(url: string, origin?: string): Promise<number> {
  const target = new URL(url.replace(/^ws/, "http"));
  return new Promise((resolve, reject) => {
    const req = httpRequest({
      host: target.hostname,
      port: target.port,
      path: `${target.pathname}${target.search}`,
      headers: {
        connection: "Upgrade",
        upgrade: "websocket",
        "sec-websocket-version": "13",
        "sec-websocket-key": Buffer.from("abuse-review-key").toString("base64"),
        "sec-websocket-protocol": "json.webpubsub.azure.v1",
        ...(origin ? { origin } : {}),
      },
    });
    req.once("upgrade", (_response, socket) => {
      socket.destroy();
      resolve(101);
    });
    req.once("response", (response) => {
      response.resume();
      resolve(response.statusCode ?? 0);
    });
    req.once("error", reject);
    req.end();
  });
}
