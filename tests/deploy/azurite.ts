import { spawn, type ChildProcess } from "node:child_process";
import path from "node:path";
import { BlobServiceClient, StorageSharedKeyCredential } from "@azure/storage-blob";
import { repoRoot } from "../../scripts/bundle/services";

// Azurite's published development account: a well-known constant, not a secret.
const account = "devstoreaccount1";
const accountKey = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

/** Azurite's Blob service in memory on a free port, for tests; stop() ends the child process. */
export class AzuriteBlob {
  private constructor(private readonly child: ChildProcess, readonly endpoint: string) {}

  static async start(): Promise<AzuriteBlob> {
    const main = path.join(repoRoot, "node_modules/azurite/dist/src/blob/main.js");
    const child = spawn(
      process.execPath,
      [main, "--blobHost", "127.0.0.1", "--blobPort", "0", "--inMemoryPersistence", "--disableTelemetry", "--silent", "--loose", "--skipApiVersionCheck", "--extentMemoryLimit", "64"],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    const port = await new Promise<number>((resolve, reject) => {
      let out = "";
      const timer = setTimeout(() => reject(new Error(`Azurite did not start: ${out}`)), 20_000);
      child.stdout!.on("data", (chunk: Buffer) => {
        out += chunk.toString();
        const match = /listens on http:\/\/127\.0\.0\.1:(\d+)/.exec(out);
        if (match) {
          clearTimeout(timer);
          resolve(Number(match[1]));
        }
      });
      child.stderr!.on("data", (chunk: Buffer) => (out += chunk.toString()));
      child.on("exit", (code) => reject(new Error(`Azurite exited with ${code}: ${out}`)));
    });
    return new AzuriteBlob(child, `http://127.0.0.1:${port}/${account}`);
  }

  client(): BlobServiceClient {
    return new BlobServiceClient(this.endpoint, new StorageSharedKeyCredential(account, accountKey));
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null) return;
    const exited = new Promise((resolve) => this.child.once("exit", resolve));
    this.child.kill();
    await exited;
  }
}
