/**
 * The web app's side of the development loop, on a scratch copy of web/: while watching, served
 * pages carry the reload script, and an edit rebuilds the app, serves the new build and tells open
 * pages to reload (over /__local/events), with a log line.
 */
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { repoRoot } from "../../scripts/bundle/services.js";
import { localSiteEnvironment, startWebApp, type WebAppServer } from "../../local/platform-web.js";

mkdirSync(join(repoRoot, ".tmp"), { recursive: true });
// Under the repository, so the copy resolves its packages from node_modules like web/ does.
const scratch = mkdtempSync(join(repoRoot, ".tmp", "web-dev-loop-test-"));
const root = join(scratch, "web");
let site: WebAppServer;
const logs: string[] = [];
const logWaiters: { pattern: RegExp; resolve: () => void }[] = [];

beforeAll(async () => {
  cpSync(join(repoRoot, "web"), root, { recursive: true, filter: (source) => !source.includes("node_modules") });
  site = await startWebApp({
    port: 0,
    watch: true,
    root,
    outDir: join(scratch, "dist"),
    log: (line) => {
      logs.push(line);
      for (const waiter of logWaiters.filter((w) => w.pattern.test(line))) {
        logWaiters.splice(logWaiters.indexOf(waiter), 1);
        waiter.resolve();
      }
    },
  });
  await site.built;
  site.configure(localSiteEnvironment({ apiUrl: "http://127.0.0.1:7071", blobEndpoint: "http://127.0.0.1:10000/devstoreaccount1", webPubSubEndpoint: "http://127.0.0.1:8080" }));
}, 60_000);

afterAll(async () => {
  await site?.close();
  rmSync(scratch, { recursive: true, force: true });
});

const stylesheetOf = (html: string) => /<link rel="stylesheet" crossorigin href="([^"]+)"/.exec(html)?.[1];

describe("the web app's development loop", () => {
  it("serves pages with the reload script, and reloads them after an edit is rebuilt", async () => {
    const before = await (await fetch(`${site.url}/`)).text();
    expect(before).toContain(`<script type="module" src="/__local/reload.js"></script>`);
    expect(await (await fetch(`${site.url}/__local/reload.js`)).text()).toContain("location.reload()");

    const events = await fetch(`${site.url}/__local/events`);
    const reader = events.body!.getReader();
    await reader.read(); // the stream's opening comment: the page is registered
    const rebuilt = new Promise<void>((resolve) => logWaiters.push({ pattern: /^web app rebuilt in \d+ ms; reloading 1 open page$/, resolve }));

    const styles = join(root, "src", "styles.css");
    writeFileSync(styles, `${readFileSync(styles, "utf8")}\n.dev-loop-probe { color: #000; }\n`);
    let received = "";
    while (!received.includes("event: reload")) {
      const { value, done } = await reader.read();
      if (done) throw new Error(`the event stream ended; logs: ${logs.join("\n")}`);
      received += new TextDecoder().decode(value);
    }
    await rebuilt;
    await reader.cancel();

    const after = await (await fetch(`${site.url}/`)).text();
    const stylesheet = stylesheetOf(after);
    expect(stylesheet).not.toBe(stylesheetOf(before));
    expect(await (await fetch(`${site.url}${stylesheet}`)).text()).toContain(".dev-loop-probe");
  });
});
