/**
 * The environment script (scripts/env) against a stand-in `pulumi` executable
 * (support/fake-pulumi/bin/pulumi, given to the Automation API as a custom CLI root) that answers
 * like the CLI and records every command it was given. Asserts the commands, their order, the
 * configuration applied, the outputs handed on, and the messages for a missing CLI, a missing
 * login, drift and failures.
 */
import { execFile } from "node:child_process";
import { once } from "node:events";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { parseArgs, UsageError } from "../../scripts/env/args";
import { EnvironmentError, runEnvironment, stepOutputLines } from "../../scripts/env/environment";
import { FederatedTokenFile } from "../../scripts/env/github-oidc";
import { readStackSettings, StackConfigError } from "../../scripts/env/stack-config";

const fakeRoot = join(process.cwd(), "tests/env/support/fake-pulumi");
const secretsProvider = "azurekeyvault://kv-plat-abc123.vault.azure.net/keys/pulumi-secrets";
const outputs = {
  apiUrl: { value: "https://plat-pr-7-abc123-api.azurewebsites.net", secret: false },
  webUrl: { value: "https://platpr7abc123data.z13.web.core.windows.net/", secret: false },
  deployedContentHashes: { value: { api: "a1", agent: "b2" }, secret: false },
  token: { value: "s3cr3t", secret: true },
};

let project: string;
let fakeState: string;

interface Call {
  readonly args: string[];
  readonly env: Record<string, string>;
}

function calls(): Call[] {
  const file = join(fakeState, "calls.jsonl");
  return existsSync(file) ? readFileSync(file, "utf8").trim().split("\n").map((line) => JSON.parse(line) as Call) : [];
}

/** The commands without the flags the Automation API adds to each (--non-interactive, --event-log, ...). */
function commands(): string[] {
  return calls().map((c) =>
    c.args
      .filter((a, i) => a !== "--non-interactive" && !["--event-log", "--exec-kind"].includes(a) && !["--event-log", "--exec-kind"].includes(c.args[i - 1] ?? ""))
      .join(" "),
  );
}

async function run(argv: string[], options: { env?: NodeJS.ProcessEnv; pulumiRoot?: string } = {}) {
  let out = "";
  let err = "";
  const request = parseArgs(argv);
  if (request === "help") throw new Error("unexpected help");
  let error: unknown;
  try {
    await runEnvironment(request, {
      projectDir: project,
      env: { PULUMI_SECRETS_PROVIDER: secretsProvider, ...options.env },
      pulumiRoot: options.pulumiRoot ?? fakeRoot,
      out: (text) => (out += text),
      err: (text) => (err += text),
    });
  } catch (e) {
    error = e;
  }
  return { out, err, error };
}

beforeAll(() => {
  project = mkdtempSync(join(tmpdir(), "env-project-"));
  writeFileSync(join(project, "Pulumi.yaml"), "name: test-platform\nruntime: nodejs\n");
  writeFileSync(
    join(project, "Pulumi.dev.yaml"),
    "config:\n  test-platform:namePrefix: plat\n  test-platform:serviceBusSku: Basic\n  test-platform:webPubSubUnits: 1\n  azure-native:location: eastus\n",
  );
  mkdirSync(join(project, "policy"));
  writeFileSync(join(project, "policy/PulumiPolicy.yaml"), "runtime: nodejs\n");
});

beforeEach(() => {
  fakeState = mkdtempSync(join(tmpdir(), "fake-pulumi-"));
  process.env["FAKE_PULUMI_DIR"] = fakeState;
  for (const key of ["FAKE_PULUMI_LOGGED_OUT", "FAKE_PULUMI_DRIFT", "FAKE_PULUMI_FAIL_UP"]) delete process.env[key];
  process.env["FAKE_PULUMI_OUTPUTS"] = JSON.stringify(Object.fromEntries(Object.entries(outputs).map(([k, v]) => [k, v.value])));
  process.env["FAKE_PULUMI_SECRET_OUTPUTS"] = "token";
});

describe("npm run env -- up", () => {
  it("creates a pull-request stack with the secrets provider, applies dev's settings and the overrides, deploys with the policy pack, and hands the outputs on", async () => {
    const outputsFile = join(fakeState, "github-output");
    const { out, error } = await run(["up", "pr-7", "--config-from", "dev", "--config", "deployerPrincipalType=ServicePrincipal", "--outputs-to", outputsFile]);
    expect(error).toBeUndefined();
    expect(commands()).toEqual([
      "version",
      "whoami --json",
      "stack select --stack pr-7",
      `stack init pr-7 --secrets-provider ${secretsProvider}`,
      "config set-all --stack pr-7 --plaintext test-platform:namePrefix=plat --plaintext test-platform:serviceBusSku=Basic --plaintext test-platform:webPubSubUnits=1 --plaintext azure-native:location=eastus --plaintext test-platform:deployerPrincipalType=ServicePrincipal",
      `up --yes --skip-preview --policy-pack ${join(project, "policy")} --stack pr-7`,
      "stack output --json --stack pr-7",
      "stack output --json --show-secrets --stack pr-7",
      "stack history --json --show-secrets --page-size 1 --page 1 --stack pr-7",
    ]);
    // The CLI's progress reaches the output as it streams, then the outputs, secrets masked.
    expect(out).toContain("Updating (pr-7)\n  + azure-native:resources:ResourceGroup resource-group created");
    expect(out).toContain(`  apiUrl: ${outputs.apiUrl.value}`);
    expect(out).toContain("  token: [secret]");
    expect(out).not.toContain("s3cr3t");
    expect(readFileSync(outputsFile, "utf8")).toBe(
      `apiUrl=${outputs.apiUrl.value}\nwebUrl=${outputs.webUrl.value}\ndeployedContentHashes={"api":"a1","agent":"b2"}\n`,
    );
    // A stack file that lives only in a CI checkout: the next run reads the secrets provider from state.
    for (const call of calls().slice(1)) expect(call.env["PULUMI_FALLBACK_TO_STATE_SECRETS_MANAGER"], call.args.join(" ")).toBe("true");
  });

  it("selects the existing stack on the next run and applies the settings again", async () => {
    await run(["up", "pr-7", "--config-from", "dev"]);
    const first = commands().length;
    const { error } = await run(["up", "pr-7", "--config-from", "dev", "--no-policy"]);
    expect(error).toBeUndefined();
    const second = commands().slice(first);
    expect(second.some((c) => c.startsWith("stack init"))).toBe(false);
    expect(second).toContain("config set-all --stack pr-7 --plaintext test-platform:namePrefix=plat --plaintext test-platform:serviceBusSku=Basic --plaintext test-platform:webPubSubUnits=1 --plaintext azure-native:location=eastus");
    expect(second.find((c) => c.startsWith("up "))).toBe("up --yes --skip-preview --stack pr-7");
  });

  it("says the operation failed, with the exit code, after streaming the CLI's error", async () => {
    process.env["FAKE_PULUMI_FAIL_UP"] = "1";
    const { err, error } = await run(["up", "pr-7"]);
    expect(error).toBeInstanceOf(EnvironmentError);
    expect(String(error)).toMatch(/pulumi up of pr-7 failed \(exit 255\); the output above says why/);
    expect(err).toContain("ARM error 51021");
  });
});

describe("npm run env -- preview", () => {
  it("passes when nothing would change, with the policy pack and a refresh", async () => {
    const { out, error } = await run(["preview", "dev", "--expect-no-changes", "--refresh"]);
    expect(error).toBeUndefined();
    expect(commands()).toContain(`preview --expect-no-changes --refresh --policy-pack ${join(project, "policy")} --stack dev`);
    expect(out).toContain(`Loading policy packs... ${join(project, "policy")}`);
  });

  it("fails loudly on drift under --expect-no-changes", async () => {
    process.env["FAKE_PULUMI_DRIFT"] = "1";
    const { out, error } = await run(["preview", "dev", "--expect-no-changes", "--refresh"]);
    expect(String(error)).toMatch(/drift: dev differs from the program/);
    expect(out).toContain("~ azure-native:web:WebApp api-site update");
  });

  it("refuses a policy pack directory that is not one", async () => {
    const { error } = await run(["preview", "dev", "--policy-pack", "scripts"]);
    expect(String(error)).toMatch(/scripts is not a policy pack \(no PulumiPolicy\.yaml\); pass --no-policy/);
    expect(commands().some((c) => c.startsWith("preview"))).toBe(false);
  });
});

describe("npm run env -- destroy", () => {
  it("destroys, removes the stack and checks it is gone", async () => {
    await run(["up", "pr-9", "--config-from", "dev"]);
    const before = commands().length;
    const { out, error } = await run(["destroy", "pr-9", "--remove"]);
    expect(error).toBeUndefined();
    const destroyRun = commands().slice(before);
    expect(destroyRun.filter((c) => /^(destroy|stack rm|stack ls|config)/.test(c))).toEqual([
      "destroy --yes --skip-preview --stack pr-9",
      "stack rm --yes pr-9",
      "stack ls --json",
    ]);
    expect(out).toContain("== removed stack pr-9");
    expect(JSON.parse(readFileSync(join(fakeState, "stacks.json"), "utf8"))).not.toHaveProperty("pr-9");
  });

  it("has nothing to do for a stack that never existed (a pull request closed before it deployed)", async () => {
    const { out, error } = await run(["destroy", "pr-404", "--remove"]);
    expect(error).toBeUndefined();
    expect(out).toContain("stack pr-404 does not exist: nothing to destroy");
    expect(commands().some((c) => c.startsWith("destroy") || c.startsWith("stack init"))).toBe(false);
  });
});

describe("clear errors", () => {
  it("names the missing CLI and where to get it", async () => {
    const empty = mkdtempSync(join(tmpdir(), "no-pulumi-"));
    const { error } = await run(["preview", "dev"], { pulumiRoot: empty });
    expect(error).toBeInstanceOf(EnvironmentError);
    expect(String(error)).toMatch(/the Pulumi CLI was not found \(.*no-pulumi-.*\/bin\/pulumi\)\. Install it: https:\/\/www\.pulumi\.com/);
  });

  it("says how to log in when the backend refuses, before touching any stack", async () => {
    process.env["FAKE_PULUMI_LOGGED_OUT"] = "1";
    const { error } = await run(["up", "pr-7"]);
    expect(String(error)).toMatch(/not logged in to a Pulumi backend: run `pulumi login <url>` or set PULUMI_BACKEND_URL/);
    expect(String(error)).toContain("PULUMI_ACCESS_TOKEN must be set");
    expect(commands()).toEqual(["version", "whoami --json"]);
  });

  it("refuses to copy a secret from the template stack", () => {
    const dir = mkdtempSync(join(tmpdir(), "secret-template-"));
    writeFileSync(join(dir, "Pulumi.dev.yaml"), "config:\n  p:token:\n    secure: AAABAJ==\n");
    expect(() => readStackSettings(dir, "dev")).toThrow(StackConfigError);
    expect(() => readStackSettings(dir, "dev")).toThrow(/p:token is a secret, encrypted for dev only/);
    expect(() => readStackSettings(dir, "qa")).toThrow(/no Pulumi\.qa\.yaml/);
  });

  it("explains a wrong command line", () => {
    expect(() => parseArgs(["deploy", "dev"])).toThrow(/unknown operation "deploy"; use one of up, preview, destroy/);
    expect(() => parseArgs(["up"])).toThrow(/expected an operation and a stack/);
    expect(() => parseArgs(["up", "dev", "--expect-no-changes"])).toThrow(/--expect-no-changes goes with preview/);
    expect(() => parseArgs(["preview", "dev", "--config", "nokey"])).toThrow(/expected key=value/);
    expect(() => parseArgs(["preview", "dev", "--outputs-to"])).toThrow(/--outputs-to needs a value/);
    expect(() => parseArgs(["preview", "bad stack!"])).toThrow(UsageError);
  });
});

describe("GitHub OIDC in CI", () => {
  let server: Server;
  let tokenUrl: string;
  const requests: IncomingMessage[] = [];
  let issued = 0;
  let refuse = false;

  beforeAll(async () => {
    server = createServer((req, res) => {
      requests.push(req);
      if (refuse) {
        res.writeHead(403).end();
        return;
      }
      res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ value: `github-token-${++issued}` }));
    });
    server.listen(0, "127.0.0.1");
    await once(server, "listening");
    tokenUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/token?api-version=2.0`;
  });

  afterAll(async () => {
    server.close();
    await once(server, "close");
  });

  it("gives every CLI call a federated token file for Azure, fetched with the job's request token, and deletes it afterwards", async () => {
    const env = { ACTIONS_ID_TOKEN_REQUEST_URL: tokenUrl, ACTIONS_ID_TOKEN_REQUEST_TOKEN: "request-token", AZURE_CLIENT_ID: "c", AZURE_TENANT_ID: "t" };
    const { out, error } = await run(["preview", "dev", "--no-policy"], { env });
    expect(error).toBeUndefined();
    expect(out).toContain("GitHub OIDC token, refreshed while this runs");
    const cliCalls = calls().slice(1);
    const files = new Set(cliCalls.map((c) => c.env["AZURE_FEDERATED_TOKEN_FILE"]));
    expect(files.size).toBe(1);
    for (const call of cliCalls) expect(call.env["federatedToken"]).toMatch(/^github-token-\d+$/);
    expect(existsSync([...files][0]!)).toBe(false);
    const last = requests[requests.length - 1]!;
    expect(last.headers.authorization).toBe("bearer request-token");
    expect(new URL(last.url!, "http://x").searchParams.get("audience")).toBe("api://AzureADTokenExchange");
    expect(new URL(last.url!, "http://x").searchParams.get("api-version")).toBe("2.0");
  });

  it("rewrites the file with a new token on each refresh", async () => {
    const file = await FederatedTokenFile.start({ requestUrl: tokenUrl, requestToken: "r" }, { path: join(fakeState, "token") });
    const first = readFileSync(file.path, "utf8");
    await file.refresh();
    expect(readFileSync(file.path, "utf8")).not.toBe(first);
    expect(readFileSync(file.path, "utf8")).toMatch(/^github-token-\d+$/);
    await file.stop();
    expect(existsSync(file.path)).toBe(false);
  });

  it("stops before running anything when GitHub refuses a token", async () => {
    refuse = true;
    try {
      const env = { ACTIONS_ID_TOKEN_REQUEST_URL: tokenUrl, ACTIONS_ID_TOKEN_REQUEST_TOKEN: "r", AZURE_CLIENT_ID: "c", AZURE_TENANT_ID: "t" };
      const { error } = await run(["preview", "dev"], { env });
      expect(String(error)).toMatch(/GitHub refused an OIDC token \(403 Forbidden\); does the job have permissions: id-token: write\?/);
      expect(commands()).toEqual(["version"]);
    } finally {
      refuse = false;
    }
  });
});

describe("step outputs", () => {
  it("writes multi-line values in GitHub's heredoc form and never writes secrets", () => {
    const text = stepOutputLines({ a: { value: "one\ntwo", secret: false }, b: { value: "x", secret: true }, c: { value: 3, secret: false } });
    expect(text).toMatch(/^a<<(EOF_a_\d+)\none\ntwo\n\1\nc=3\n$/);
  });
});

describe("the npm entry (npm run env)", () => {
  const execFileAsync = promisify(execFile);
  const cli = (args: string[], env: NodeJS.ProcessEnv) =>
    execFileAsync(process.execPath, [join(process.cwd(), "node_modules/tsx/dist/cli.mjs"), "scripts/env/cli.ts", ...args], { env: { ...process.env, ...env }, timeout: 60_000 }).then(
      (r) => ({ code: 0, ...r }),
      (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, stdout: e.stdout, stderr: e.stderr }),
    );

  it("finds pulumi on PATH, runs the operation for this repository and exits 0; a wrong command line exits 2 with the usage", async () => {
    const path = `${join(fakeRoot, "bin")}:${dirname(process.execPath)}:${process.env["PATH"] ?? ""}`;
    const ok = await cli(["preview", "dev", "--no-policy"], { PATH: path, PULUMI_SECRETS_PROVIDER: "" });
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stdout).toContain("Previewing update (dev)");
    expect(calls().find((c) => c.args[0] === "preview")).toMatchObject({ args: expect.arrayContaining(["--stack", "dev"]) });
    const bad = await cli(["deploy", "dev"], { PATH: path });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("Usage: npm run env -- <up|preview|destroy> <stack> [options]");
  }, 90_000);
});
