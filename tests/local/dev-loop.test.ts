/**
 * The services' side of the development loop: an edit restarts the service it belongs to, from the
 * new source, on the same URL, with a log line; a broken edit says so and the next good one
 * restarts it. And supervision: a process that dies is started again on the same URL. A small service in a scratch folder under the repository stands in for
 * functions/src (so it resolves @azure/functions like the real ones).
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { servicesAffectedBy, startRestartableHost, watchServiceSources, type RestartableHost, type SourceWatcher, type SupervisorEvent } from "../../local/dev-loop.js";
import { repoRoot } from "../../scripts/bundle/services.js";

mkdirSync(join(repoRoot, ".tmp"), { recursive: true });
const sourceRoot = mkdtempSync(join(repoRoot, ".tmp", "dev-loop-test-"));
const message = (text: string) => writeFileSync(join(sourceRoot, "hello", "message.ts"), `export const message: string = ${JSON.stringify(text)};\n`);

let host: RestartableHost;
let watcher: SourceWatcher;
const logs: string[] = [];
const supervisorLines: string[] = [];
function supervisorEvent(type: SupervisorEvent["type"]): Promise<SupervisorEvent> {
  return new Promise((resolve) => {
    const off = host.onSupervisorEvent((event) => {
      if (event.type === type) {
        off();
        resolve(event);
      }
    });
  });
}
const logWaiters: { pattern: RegExp; resolve: (line: string) => void }[] = [];
function logLine(pattern: RegExp): Promise<string> {
  return new Promise((resolve) => logWaiters.push({ pattern, resolve }));
}

beforeAll(async () => {
  mkdirSync(join(sourceRoot, "hello"));
  writeFileSync(
    join(sourceRoot, "hello", "index.ts"),
    [
      `import { app } from "@azure/functions";`,
      `import { message } from "./message";`,
      `app.http("hello", { route: "hello", methods: ["GET"], authLevel: "anonymous", handler: async () => ({ body: message }) });`,
      "",
    ].join("\n"),
  );
  message("first");
  host = await startRestartableHost(
    { name: "hello", entry: join(sourceRoot, "hello", "index.ts"), hostJson: join(repoRoot, "functions", "host.json"), settings: {}, output: () => {} },
    { log: (line) => supervisorLines.push(line), backoffMs: [0, 200] },
  );
  watcher = watchServiceSources({
    services: { hello: host },
    sourceRoot,
    log: (line) => {
      logs.push(line);
      for (const waiter of logWaiters.filter((w) => w.pattern.test(line))) {
        logWaiters.splice(logWaiters.indexOf(waiter), 1);
        waiter.resolve(line);
      }
    },
  });
}, 60_000);

afterAll(async () => {
  watcher?.close();
  await host?.stop();
  rmSync(sourceRoot, { recursive: true, force: true });
});

const hello = async () => (await fetch(`${host.url}/api/hello`)).text();

describe("the services' development loop", () => {
  it("restarts a service from its edited source on the same URL, and logs it", async () => {
    expect(await hello()).toBe("first");
    const { url, pid } = host;
    const restarted = logLine(/^hello restarted in \d+ ms \(.*hello\/message\.ts changed\)$/);
    message("second");
    await restarted;
    expect(host.url).toBe(url);
    expect(host.pid).not.toBe(pid);
    expect(await hello()).toBe("second");
  });

  it("says when an edit breaks the service, and restarts it after the fix", async () => {
    const failed = logLine(/^hello did not restart .*fix the code and save again$/);
    writeFileSync(join(sourceRoot, "hello", "message.ts"), "export const message: string = ;\n");
    await failed;
    const restarted = logLine(/^hello restarted in \d+ ms/);
    message("third");
    await restarted;
    expect(await hello()).toBe("third");
  });

  it("starts a process that was killed again on the same URL, and says so; one killed again right after waits its backoff", async () => {
    const { url, pid } = host;
    const restarted = supervisorEvent("restarted");
    process.kill(pid, "SIGKILL");
    expect(await restarted).toMatchObject({ type: "restarted", pid: host.pid });
    expect(host.pid).not.toBe(pid);
    expect(host.url).toBe(url);
    expect(await hello()).toBe("third");
    expect(supervisorLines.join("\n")).toMatch(new RegExp(`hello killed by SIGKILL \\(pid ${pid}\\); starting it again, as the Functions host would\\nhello restarted in \\d+ ms after it killed by SIGKILL`));

    // Dying again before it ran for a minute: the second restart waits the next backoff step.
    const again = supervisorEvent("restarted");
    const killedAt = performance.now();
    process.kill(host.pid, "SIGKILL");
    await again;
    expect(performance.now() - killedAt).toBeGreaterThanOrEqual(200);
    expect(host.recoveries).toBe(2);
    expect(await hello()).toBe("third");
  });

  it("stops the process a restart under way starts, so Ctrl-C mid-restart leaves nothing running", async () => {
    watcher.close();
    const restart = host.restart();
    await host.stop();
    await expect(restart).resolves.toBeGreaterThan(0);
    // The process the restart started is the one stop() ended.
    expect(() => process.kill(host.pid, 0)).toThrow(/ESRCH/);
  });

  it("maps an edited file to its service, and shared code to every service", () => {
    expect(servicesAffectedBy("api/handlers.ts", ["api", "agent"])).toEqual(["api"]);
    expect(servicesAffectedBy("agent/notify.ts", ["api", "agent"])).toEqual(["agent"]);
    expect(servicesAffectedBy("shared/job.ts", ["api", "agent"])).toEqual(["api", "agent"]);
    expect(servicesAffectedBy("settings.ts", ["api", "agent"])).toEqual(["api", "agent"]);
  });
});
