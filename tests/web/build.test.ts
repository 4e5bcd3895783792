/**
 * The web app's production build as a deployment makes it: content-addressed (builds side by side
 * share one directory and never see each other's half-written files), with no inline code (the
 * policy allows scripts and styles from the site only), and the headers `$web` will serve.
 */
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readSiteFiles } from "../../infrastructure/deploy/site-files";
import { buildWebAppSnapshot, bundleSizes } from "../../web/site/build";

const parent = mkdtempSync(join(tmpdir(), "web-build-test-"));
let builds: { outDir: string }[];

beforeAll(async () => {
  mkdirSync(join(parent, "0123456789abcdef"));
  builds = await Promise.all([buildWebAppSnapshot({ parentDir: parent, keep: 1 }), buildWebAppSnapshot({ parentDir: parent, keep: 1 })]);
}, 60_000);
afterAll(() => rmSync(parent, { recursive: true, force: true }));

describe("buildWebAppSnapshot", () => {
  it("puts identical builds in one directory named after the content, and keeps only the newest", () => {
    expect(builds[0]!.outDir).toBe(builds[1]!.outDir);
    expect(readdirSync(parent)).toEqual([builds[0]!.outDir.split("/").pop()]);
  });

  it("writes pages without inline code, each with the policy element the deployment fills in", () => {
    for (const page of ["index.html", "redirect.html"]) {
      const html = readFileSync(join(builds[0]!.outDir, page), "utf8");
      expect(html.match(/<meta http-equiv="Content-Security-Policy"/g)).toHaveLength(1);
      for (const script of html.match(/<script[^>]*>/g) ?? []) expect(script).toMatch(/ src="\/assets\/[^"]+\.js"/);
      expect(html).not.toMatch(/<style|\sstyle="|\son[a-z]+="/);
    }
  });

  it("marks the files $web will serve: pages revalidated, the bridge page never stored, hashed assets immutable, the manifest left out", async () => {
    const files = await readSiteFiles(builds[0]!.outDir);
    const headers = Object.fromEntries(files.map((f) => [f.name, f.cacheControl]));
    expect(headers["index.html"]).toBe("no-cache");
    expect(headers["redirect.html"]).toBe("no-store");
    const assets = files.filter((f) => f.name.startsWith("assets/"));
    expect(assets.length).toBeGreaterThan(3);
    for (const asset of assets) expect(headers[asset.name], asset.name).toBe("public, max-age=31536000, immutable");
    expect(files.some((f) => f.name.startsWith(".vite/"))).toBe(false);
  });

  it("keeps MSAL out of the app's own bundle", async () => {
    const sizes = await bundleSizes(builds[0]!.outDir);
    const development = sizes.development.files.map((file) => readFileSync(join(builds[0]!.outDir, file), "utf8")).join("");
    expect(development).not.toContain("msal");
    expect(sizes.entra.files.length).toBeGreaterThan(sizes.development.files.length);
  });
});
