/**
 * `pulumi up` in bootstrap/ loads bootstrap/index.ts through ts-node with bootstrap/tsconfig.json
 * (which extends the root one) and imports infrastructure/roles.ts from outside the project
 * directory. This runs the language host's own loading path in a child process, under mocks.
 */
import { execFile } from "node:child_process";
import { join } from "node:path";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { bootstrapProjectName } from "../../bootstrap/config";

const run = promisify(execFile);

describe("the bootstrap program as Pulumi's nodejs language host loads it", () => {
  it("compiles under ts-node from bootstrap/ and exports the CI outputs", async () => {
    const { stdout } = await run(process.execPath, [join(process.cwd(), "tests/infrastructure/support/load-like-pulumi.cjs"), bootstrapProjectName, "ci", "index.ts"], {
      cwd: join(process.cwd(), "bootstrap"),
      env: {
        ...process.env,
        PULUMI_NODEJS_TRANSPILE_ONLY: "true",
        PULUMI_CONFIG: JSON.stringify({ [`${bootstrapProjectName}:githubRepository`]: "contoso/platform" }),
      },
      timeout: 60_000,
    });
    const exported = JSON.parse(stdout.trim().split("\n").pop() ?? "[]") as string[];
    expect(exported).toEqual(["ciClientId", "ciPrincipalId", "federatedSubjects", "ghCommands", "resourceGroupName", "variables"]);
  }, 90_000);
});
