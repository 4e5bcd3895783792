/**
 * `npm run bench:abuse-memory`: the peak memory of the api and the agent under the largest inputs of
 * the abuse review, on the local platform (Linux: it reads VmRSS and VmHWM from /proc/<pid>/status
 * of each service's host process, which on the local platform holds the host and the worker).
 *
 *   npm run bench:abuse-memory -- [--code source|bundle] [--only api|agent]
 *
 * - api: three concurrent 95 MiB chunked POSTs to the anonymous /api/health (no Content-Length, so
 *   nothing can refuse it before reading), then the same body on POST /api/jobs.
 * - agent: eight concurrent blob jobs of 10 MiB each (the default upload limit) made of distinct
 *   tokens (`0 1 2 ... ` in base 36, about 1.9 million distinct words), each from its own user.
 *
 * Figures: resident memory after warm-up, and the peak (VmHWM) after the run, in MB.
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { parseArgs } from "node:util";
import { FREE_PORTS, startLocalPlatform, type LocalPlatform } from "../../local/platform.js";
import { exitWhenDone } from "./exit-when-done.js";

const MiB = 1024 * 1024;

/** Resident and peak resident memory of a process, in MB (Linux /proc). */
export function memoryOf(pid: number): { rssMb: number; peakMb: number } {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(status)?.[1] ?? Number.NaN);
  return { rssMb: Math.round(kb("VmRSS") / 1024), peakMb: Math.round(kb("VmHWM") / 1024) };
}

/** A body of `bytes` bytes, streamed in 64 KiB chunks (fetch sends it chunked, without Content-Length). */
function streamedBody(bytes: number): ReadableStream<Uint8Array> {
  const chunk = new Uint8Array(64 * 1024).fill(0x61);
  let sent = 0;
  return Readable.toWeb(
    Readable.from(
      (function* () {
        while (sent < bytes) {
          const size = Math.min(chunk.length, bytes - sent);
          sent += size;
          yield size === chunk.length ? chunk : chunk.subarray(0, size);
        }
      })(),
    ),
  ) as ReadableStream<Uint8Array>;
}

async function postLarge(url: string, bytes: number, headers: Record<string, string> = {}): Promise<string> {
  try {
    const response = await fetch(url, { method: "POST", headers: { "content-type": "application/json", ...headers }, body: streamedBody(bytes), duplex: "half" } as RequestInit);
    await response.arrayBuffer();
    return String(response.status);
  } catch (error) {
    // A server may answer and close before the body is sent: that is a refusal too.
    return `connection closed (${(error as Error).cause instanceof Error ? ((error as Error).cause as Error).message : (error as Error).message})`;
  }
}

/** `0 1 2 ... ` in base 36 until `bytes`: every word distinct. */
export function distinctTokens(bytes: number): Buffer {
  const parts: string[] = [];
  let length = 0;
  for (let n = 0; ; n += 1) {
    const token = `${n.toString(36)} `;
    if (length + token.length > bytes) break;
    parts.push(token);
    length += token.length;
  }
  return Buffer.from(parts.join(""), "utf8");
}

async function measureApi(platform: LocalPlatform): Promise<void> {
  const pid = platform.services.api.pid;
  // Warm up: the handlers and SDKs load on the first request.
  await (await fetch(`${platform.urls.api}/health`)).arrayBuffer();
  const before = memoryOf(pid);
  const statuses = await Promise.all([1, 2, 3].map(() => postLarge(`${platform.urls.api}/health`, 95 * MiB)));
  const afterHealth = memoryOf(pid);
  const jobs = await postLarge(`${platform.urls.api}/jobs`, 95 * MiB, { "x-dev-user": "bench-memory" });
  const after = memoryOf(pid);
  console.log(`api: resident after warm-up ${before.rssMb} MB (peak so far ${before.peakMb} MB)`);
  console.log(`  3 x 95 MiB chunked POST /api/health -> ${statuses.join(", ")}; resident ${afterHealth.rssMb} MB, peak ${afterHealth.peakMb} MB`);
  console.log(`  95 MiB chunked POST /api/jobs -> ${jobs}; resident ${after.rssMb} MB, peak ${after.peakMb} MB`);
}

async function measureAgent(platform: LocalPlatform): Promise<void> {
  const pid = platform.services.agent.pid;
  const maxBytes = Number(platform.settings.api.UPLOAD_MAX_BYTES);
  const content = distinctTokens(maxBytes);
  const users = Array.from({ length: 8 }, (_, n) => `bench-memory-${n}`);
  const uploaded: { user: string; blobName: string }[] = [];
  // A small job first, so the agent has loaded its handlers and SDKs before the baseline.
  const warm = await fetch(`${platform.urls.api}/jobs`, {
    method: "POST",
    headers: { "x-dev-user": "bench-memory-warm", "content-type": "application/json" },
    body: JSON.stringify({ kind: "text", text: "warm up the agent" }),
  });
  const warmId = ((await warm.json()) as { id: string }).id;
  await waitFor(platform, "bench-memory-warm", warmId);
  const before = memoryOf(pid);
  for (const user of users) {
    const upload = await fetch(`${platform.urls.api}/uploads`, {
      method: "POST",
      headers: { "x-dev-user": user, "content-type": "application/json" },
      body: JSON.stringify({ size: content.byteLength }),
    });
    if (upload.status !== 201) throw new Error(`POST /api/uploads answered ${upload.status}: ${await upload.text()}`);
    const issued = (await upload.json()) as { blobName: string; uploadUrl: string; headers: Record<string, string> };
    const put = await fetch(issued.uploadUrl, { method: "PUT", headers: { ...issued.headers, "content-type": "text/plain" }, body: content });
    if (put.status !== 201) throw new Error(`the upload PUT answered ${put.status}: ${await put.text()}`);
    uploaded.push({ user, blobName: issued.blobName });
  }
  const started = performance.now();
  const ids = await Promise.all(
    uploaded.map(async ({ user, blobName }) => {
      const response = await fetch(`${platform.urls.api}/jobs`, {
        method: "POST",
        headers: { "x-dev-user": user, "content-type": "application/json" },
        body: JSON.stringify({ kind: "blob", blobName }),
      });
      if (response.status !== 202) throw new Error(`POST /api/jobs answered ${response.status}: ${await response.text()}`);
      return { user, id: ((await response.json()) as { id: string }).id };
    }),
  );
  const outcomes = await Promise.all(ids.map(({ user, id }) => waitFor(platform, user, id)));
  const seconds = (performance.now() - started) / 1000;
  const after = memoryOf(pid);
  console.log(`agent: resident after warm-up ${before.rssMb} MB (peak so far ${before.peakMb} MB)`);
  console.log(
    `  8 concurrent ${(content.byteLength / MiB).toFixed(1)} MiB distinct-token blob jobs -> ${outcomes.join(", ")} in ${seconds.toFixed(1)} s; resident ${after.rssMb} MB, peak ${after.peakMb} MB`,
  );
}

/** Polls the job until it is finished (a bench, not a test: polling is fine here). */
async function waitFor(platform: LocalPlatform, user: string, id: string): Promise<string> {
  const deadline = Date.now() + 900_000;
  for (;;) {
    const job = (await (await fetch(`${platform.urls.api}/jobs/${id}`, { headers: { "x-dev-user": user } })).json()) as { status: string; error?: { code: string } };
    if (job.status === "succeeded") return "succeeded";
    if (job.status === "failed") return `failed (${job.error?.code ?? "?"})`;
    if (Date.now() > deadline) throw new Error(`job ${id} still ${job.status} after 900 s`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({ args: process.argv.slice(2), options: { code: { type: "string", default: "source" }, only: { type: "string" } } });
  if (values.code !== "source" && values.code !== "bundle") throw new Error(`--code must be source or bundle (got ${values.code})`);
  if (values.only !== undefined && values.only !== "api" && values.only !== "agent") throw new Error(`--only must be api or agent (got ${values.only})`);
  const output: string[] = [];
  const scratch = mkdtempSync(join(tmpdir(), "bench-memory-"));
  console.log(`Starting the local platform (${values.code}) on free ports…`);
  const platform = await startLocalPlatform({
    ports: FREE_PORTS,
    code: values.code,
    ...(values.code === "source" ? { bundleDirectory: scratch } : {}),
    web: { outDir: join(scratch, "web") },
    writeLocalSettings: false,
    progress: () => {},
    output: (source, line) => void output.push(`[${source}] ${line}`),
  });
  try {
    if (values.only !== "agent") await measureApi(platform);
    if (values.only !== "api") await measureAgent(platform);
  } catch (error) {
    console.error(output.slice(-40).join("\n"));
    throw error;
  } finally {
    await platform.stop();
    rmSync(scratch, { recursive: true, force: true });
  }
}

if (require.main === module) {
  exitWhenDone(main);
}
