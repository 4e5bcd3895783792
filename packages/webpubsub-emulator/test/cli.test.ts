/**
 * The emulator's command line: one ready line on stdout, a clean stop on SIGTERM (clients get a
 * close frame, exit 0), and exit 2 with a message for bad arguments.
 */
import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import { once } from "node:events";
import { resolve } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { CliUsageError, parseCliArguments } from "../src/cli.js";
import { connectClient, serviceClient, stopAllClients, waitFor } from "../src/testing.js";

const packageDir = resolve(__dirname, "..");
const children: ChildProcessWithoutNullStreams[] = [];

function runCli(args: string[]) {
  const child = spawn(process.execPath, ["--import", "tsx", "src/cli.ts", ...args], { cwd: packageDir });
  children.push(child);
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = once(child, "exit").then(([code]) => code as number | null);
  return { child, exited, stdout: () => stdout, stderr: () => stderr };
}

afterEach(async () => {
  await stopAllClients();
  for (const child of children.splice(0)) if (child.exitCode === null) child.kill("SIGKILL");
});

describe("emulator:webpubsub", () => {
  it("prints one connection string line, serves it, and stops cleanly on SIGTERM", async () => {
    const cli = runCli(["--port", "0", "--hub", "jobs", "--access-key", "cli-key"]);
    await waitFor(() => cli.stdout().includes("\n"), "the ready line", 15_000);
    const match = /^WEBPUBSUB_CONNECTION_STRING=(Endpoint=http:\/\/127\.0\.0\.1:\d+;AccessKey=cli-key;Version=1\.0;)\n$/.exec(cli.stdout());
    expect(match, cli.stdout()).not.toBeNull();

    const service = serviceClient(match![1]!, "jobs");
    const client = await connectClient(service, { userId: "cli-user" }, { autoReconnect: false });
    expect(await service.userExists("cli-user")).toBe(true);

    cli.child.kill("SIGTERM");
    expect(await cli.exited).toBe(0);
    await waitFor(() => client.disconnects.length === 1, "the client to see the close");
    expect(client.disconnects[0]?.message?.message).toBe("the service is stopping");
    expect(cli.stdout().split("\n").filter((line) => line !== "")).toHaveLength(1);
  }, 30_000);

  it("exits 2 with a message for a bad argument", async () => {
    const cli = runCli(["--port", "not-a-port"]);
    expect(await cli.exited).toBe(2);
    expect(cli.stderr()).toContain("--port must be an integer");
    expect(cli.stdout()).toBe("");
  }, 30_000);
});

describe("parseCliArguments", () => {
  it("maps --event-handler to every --hub with all user and system events", () => {
    expect(parseCliArguments(["--hub", "jobs", "--hub", "chat", "--event-handler", "http://127.0.0.1:7071/runtime/webhooks/webpubsub"])).toEqual({
      hubs: ["jobs", "chat"],
      eventHandlers: ["jobs", "chat"].map((hub) => ({
        hub,
        urlTemplate: "http://127.0.0.1:7071/runtime/webhooks/webpubsub",
        userEventPattern: "*",
        systemEvents: ["connect", "connected", "disconnected"],
      })),
    });
  });

  it("refuses what it cannot use", () => {
    expect(() => parseCliArguments(["--event-handler", "http://x/"])).toThrow(/needs at least one --hub/);
    expect(() => parseCliArguments(["--hub", "jobs", "--event-handler", "not a url"])).toThrow(CliUsageError);
    expect(() => parseCliArguments(["--hub", "9lives"])).toThrow(/not a valid hub name/);
    expect(() => parseCliArguments(["--tls-cert", "cert.pem"])).toThrow(/go together/);
    expect(() => parseCliArguments(["--port", "70000"])).toThrow(/0 to 65535/);
    expect(() => parseCliArguments(["--verbose"])).toThrow(CliUsageError);
    expect(parseCliArguments(["--help"])).toBe("help");
  });
});
