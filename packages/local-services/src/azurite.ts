/**
 * Azurite (Microsoft's Blob Storage emulator) as a child process, for the local platform and tests.
 *
 * `--skipApiVersionCheck` is required: the installed @azure/storage-blob sends a newer x-ms-version
 * than Azurite knows and every call would fail with 400 InvalidHeaderValue. Azurite runs in its own
 * process because its package entry point requires `vscode`.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { dirname, join } from "node:path";

/** Azurite's well-known development account (public, documented by Microsoft; not a secret). */
export const AZURITE_ACCOUNT_NAME = "devstoreaccount1";
export const AZURITE_ACCOUNT_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

export interface AzuriteBlobEmulator {
  /** `http://127.0.0.1:PORT/devstoreaccount1` */
  readonly blobEndpoint: string;
  readonly connectionString: string;
  readonly port: number;
  stop(): Promise<void>;
}

export interface AzuriteOptions {
  /** @default 0 (a free port) */
  port?: number;
  /** Keep data on disk in this directory; in memory when omitted. */
  location?: string;
  /** @default 20_000 */
  startTimeoutMs?: number;
}

export async function startAzurite(options: AzuriteOptions = {}): Promise<AzuriteBlobEmulator> {
  const main = join(dirname(require.resolve("azurite/package.json")), "dist", "src", "blob", "main.js");
  const args = [
    main,
    "--blobHost",
    "127.0.0.1",
    "--blobPort",
    String(options.port ?? 0),
    "--disableTelemetry",
    "--silent", // no access log; the "listens on" line is still printed
    "--loose",
    "--skipApiVersionCheck",
    ...(options.location ? ["--location", options.location] : ["--inMemoryPersistence", "--extentMemoryLimit", "256"]),
  ];
  const child = spawn(process.execPath, args, { stdio: ["ignore", "pipe", "pipe"] });
  const port = await new Promise<number>((resolve, reject) => {
    let output = "";
    const timer = setTimeout(() => fail(new Error(`Azurite did not start within ${options.startTimeoutMs ?? 20_000} ms:\n${output}`)), options.startTimeoutMs ?? 20_000);
    const onData = (chunk: Buffer) => {
      output += chunk.toString("utf8");
      const match = /successfully listens on http:\/\/[^:]+:(\d+)/.exec(output);
      if (match?.[1]) {
        cleanup();
        resolve(Number(match[1]));
      }
    };
    const onExit = (code: number | null) => fail(new Error(`Azurite exited with code ${code} before it was ready:\n${output}`));
    function cleanup() {
      clearTimeout(timer);
      child.stdout?.off("data", onData);
      child.stderr?.off("data", onData);
      child.off("exit", onExit);
    }
    function fail(error: Error) {
      cleanup();
      child.kill();
      reject(error);
    }
    child.stdout?.on("data", onData);
    child.stderr?.on("data", onData);
    child.once("exit", onExit);
  });
  // Keep draining its output so a chatty emulator never blocks on a full pipe.
  child.stdout?.resume();
  child.stderr?.resume();
  const blobEndpoint = `http://127.0.0.1:${port}/${AZURITE_ACCOUNT_NAME}`;
  return {
    blobEndpoint,
    port,
    connectionString: `DefaultEndpointsProtocol=http;AccountName=${AZURITE_ACCOUNT_NAME};AccountKey=${AZURITE_ACCOUNT_KEY};BlobEndpoint=${blobEndpoint};`,
    stop: () => stopChild(child),
  };
}

function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill("SIGKILL"), 5_000);
    child.once("exit", () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill("SIGTERM");
  });
}

/**
 * Lets browsers on `origins` upload straight to the emulator with the api's SAS URLs (a cross-origin
 * PUT with x-ms-blob-type needs a CORS preflight answer). The Azure storage account needs the same
 * rule for the site's origin.
 */
export async function allowBrowserUploads(connectionString: string, origins: string[]): Promise<void> {
  const { BlobServiceClient } = await import("@azure/storage-blob");
  const service = BlobServiceClient.fromConnectionString(connectionString);
  await service.setProperties({
    cors: [
      {
        allowedOrigins: origins.join(","),
        allowedMethods: "PUT,OPTIONS",
        allowedHeaders: "content-type,x-ms-blob-type,x-ms-version,x-ms-client-request-id,x-ms-date",
        exposedHeaders: "etag,x-ms-request-id",
        maxAgeInSeconds: 600,
      },
    ],
  });
}
