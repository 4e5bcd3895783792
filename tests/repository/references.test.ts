/**
 * Every file the repository's documents and comments point at exists: markdown links (relative to
 * the document), and paths written from the repository root (`functions/src/...`, `tests/...`,
 * `local/...`) in markdown and TypeScript. A file moved or renamed without its mentions fails here.
 */
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import path from "node:path";
import { expect, it } from "vitest";

const root = path.resolve(__dirname, "..", "..");
const tracked = execFileSync("git", ["ls-files", "-z"], { cwd: root, encoding: "utf8" }).split("\0").filter(Boolean);
const files = new Set(tracked);
const folders = new Set(tracked.flatMap((file) => file.split("/").slice(0, -1).map((_, i, parts) => parts.slice(0, i + 1).join("/"))));
const exists = (raw: string) => {
  const candidate = raw.replace(/\/+$/, "");
  if (candidate.endsWith("*")) return tracked.some((file) => file.startsWith(candidate.slice(0, -1)));
  return (
    files.has(candidate) ||
    folders.has(candidate) ||
    (candidate.endsWith(".js") && files.has(`${candidate.slice(0, -3)}.ts`)) ||
    // A module or a test file named without its ending ("tests/functions/quotas").
    files.has(`${candidate}.ts`) ||
    files.has(`${candidate}.test.ts`)
  );
};
/** The services the README and the generator's tests create as examples: files a forker makes, not ours. */
const EXAMPLE_SERVICE = /(?:^|\/)(?:notifier|status)(?:[-/.]|$)/;

/** A path from the repository root: a top-level folder of this repository, then more. */
const ROOTED = /(?<![\w./@-])((?:functions|infrastructure|local|packages|scripts|tests|web|policy|bootstrap|\.github|\.ci)\/[\w./-]+\*?)/g;

it("points only at files that exist", () => {
  const broken: string[] = [];
  for (const file of tracked.filter((f) => /\.(md|ts|mts)$/.test(f))) {
    const text = readFileSync(path.join(root, file), "utf8");
    if (file.endsWith(".md")) {
      for (const [, target = ""] of text.matchAll(/\]\(([^)\s]+)\)/g)) {
        const local = target.split("#")[0] ?? "";
        if (local && !/^[a-z]+:/i.test(local) && !exists(path.normalize(path.join(path.dirname(file), local)))) broken.push(`${file}: link ${target}`);
      }
    }
    for (const [, raw = ""] of text.matchAll(ROOTED)) {
      const reference = raw.replace(/[.,:;]+$/, "");
      if (EXAMPLE_SERVICE.test(reference)) continue;
      // Written relative to the file's own folder (a package's README naming `test/...`) also counts.
      if (!exists(reference) && !exists(path.normalize(path.join(path.dirname(file), reference)))) broken.push(`${file}: ${reference}`);
    }
  }
  expect(broken).toEqual([]);
});
