/**
 * `pulumi up` loads infrastructure/index.ts through ts-node, not vitest: a tsconfig option that
 * TypeScript 6 rejects under ts-node (TS5011 without rootDir, for one) stops every deployment
 * before it starts, while tsc and vitest stay green. This runs the language host's own loading
 * path in a child process (transpile-only; `npm test` type-checks separately).
 */
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { projectName } from "../../infrastructure/config";

const run = promisify(execFile);

describe("the program as Pulumi's nodejs language host loads it", () => {
  it("compiles under ts-node with the project's tsconfig and exports the stack outputs", async () => {
    const devStack = (parse(readFileSync("Pulumi.dev.yaml", "utf8")) as { config: Record<string, unknown> }).config;
    const { stdout } = await run(process.execPath, ["tests/infrastructure/support/load-like-pulumi.cjs", projectName, "dev"], {
      env: {
        ...process.env,
        PULUMI_NODEJS_TRANSPILE_ONLY: "true",
        PULUMI_CONFIG: JSON.stringify(Object.fromEntries(Object.entries(devStack).map(([k, v]) => [k, String(v)]))),
      },
      timeout: 60_000,
    });
    const exported = JSON.parse(stdout.trim().split("\n").pop() ?? "[]") as string[];
    expect(exported).toEqual(expect.arrayContaining(["apiUrl", "webUrl", "appNames", "resourceGroupName"]));
  }, 90_000);
});
