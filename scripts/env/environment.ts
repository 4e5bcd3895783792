/**
 * One environment operation on the Automation API: find the CLI, check the backend login, create or
 * select the stack, apply its configuration, run up/preview/destroy with the CLI's progress streamed,
 * print the outputs. Used by the workflows and by people (`npm run env`).
 */
import { existsSync } from "node:fs";
import { appendFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { CommandError, ConcurrentUpdateError, LocalWorkspace, PulumiCommand, Stack, StackNotFoundError, type OutputMap } from "@pulumi/pulumi/automation";
import type { EnvironmentRequest } from "./args";
import { FederatedTokenFile, gitHubTokenSource } from "./github-oidc";
import { qualify, readStackSettings } from "./stack-config";

export interface EnvironmentDeps {
  /** The Pulumi project directory (Pulumi.yaml). */
  readonly projectDir: string;
  /** Where PULUMI_SECRETS_PROVIDER and the GitHub OIDC variables come from. */
  readonly env: NodeJS.ProcessEnv;
  /** A CLI installation (`<root>/bin/pulumi`); `pulumi` on PATH when absent. */
  readonly pulumiRoot?: string;
  readonly out: (text: string) => void;
  readonly err: (text: string) => void;
}

/** A failure the user can act on; the message says what to do. */
export class EnvironmentError extends Error {
  override readonly name = "EnvironmentError";
}

/**
 * The CLI's stderr inside an Automation API CommandError. The SDK (3.248) wraps a failed command's
 * error in a second one (exit code -2, the first error's text as stderr), so the innermost wins.
 */
function cliStderr(error: unknown): string {
  const message = error instanceof Error ? error.message : "";
  const start = message.lastIndexOf(" stderr: ");
  if (start < 0) return "";
  const end = message.indexOf("\n err?: ", start);
  return message.slice(start + " stderr: ".length, end < 0 ? undefined : end).trim();
}

/** The CLI's own exit code inside a CommandError (the SDK's wrapper reports -2; execa's text has the real one). */
function cliExitCode(error: unknown): string {
  const message = error instanceof Error ? error.message : "";
  return /exit code (\d+)/.exec(message)?.[1] ?? /^code: (-?\d+)/.exec(message)?.[1] ?? "?";
}

async function findCli(root: string | undefined): Promise<PulumiCommand> {
  try {
    return await PulumiCommand.get(root ? { root } : undefined);
  } catch (error) {
    const where = root ? `${root}/bin/pulumi` : "pulumi on PATH";
    throw new EnvironmentError(
      `the Pulumi CLI was not found (${where}). Install it: https://www.pulumi.com/docs/iac/download-install/ (in GitHub Actions, pulumi/actions installs it).\n${cliStderr(error) || String(error)}`,
    );
  }
}

/** GitHub step output lines (`name=value`, or the heredoc form for values with line breaks). */
export function stepOutputLines(outputs: OutputMap): string {
  let text = "";
  for (const [name, { value, secret }] of Object.entries(outputs)) {
    if (secret) continue; // never into logs or step outputs
    const plain = typeof value === "string" ? value : JSON.stringify(value);
    if (plain.includes("\n")) {
      const delimiter = `EOF_${name}_${Date.now()}`;
      text += `${name}<<${delimiter}\n${plain}\n${delimiter}\n`;
    } else text += `${name}=${plain}\n`;
  }
  return text;
}

function describeOutputs(outputs: OutputMap): string {
  const lines = Object.entries(outputs).map(([name, { value, secret }]) => `  ${name}: ${secret ? "[secret]" : typeof value === "string" ? value : JSON.stringify(value)}`);
  return lines.length > 0 ? `Outputs:\n${lines.join("\n")}\n` : "No outputs.\n";
}

export async function runEnvironment(request: EnvironmentRequest, deps: EnvironmentDeps): Promise<void> {
  const { out, err } = deps;
  const pulumiCommand = await findCli(deps.pulumiRoot);
  out(`== pulumi ${pulumiCommand.version?.toString() ?? "(unknown version)"}: ${request.operation} ${request.stack}\n`);

  const envVars: Record<string, string> = {
    PULUMI_SKIP_UPDATE_CHECK: "true",
    // A pull-request stack's Pulumi.<stack>.yaml exists only in the CI checkout that created it: the
    // next run finds the stack's secrets provider in its state instead of falling back to a passphrase.
    PULUMI_FALLBACK_TO_STATE_SECRETS_MANAGER: deps.env["PULUMI_FALLBACK_TO_STATE_SECRETS_MANAGER"] ?? "true",
  };
  let tokenFile: FederatedTokenFile | undefined;
  const source = gitHubTokenSource(deps.env);
  if (source && deps.env["AZURE_CLIENT_ID"] && deps.env["AZURE_TENANT_ID"] && !deps.env["AZURE_FEDERATED_TOKEN_FILE"]) {
    tokenFile = await FederatedTokenFile.start(source, { onRefreshError: (e) => err(`warning: could not refresh the GitHub OIDC token: ${e.message}\n`) });
    envVars["AZURE_FEDERATED_TOKEN_FILE"] = tokenFile.path;
    out("== Azure credentials: GitHub OIDC token, refreshed while this runs (workload identity)\n");
  }

  try {
    const secretsProvider = deps.env["PULUMI_SECRETS_PROVIDER"] || undefined;
    const workspace = await LocalWorkspace.create({ workDir: deps.projectDir, pulumiCommand, envVars, secretsProvider });
    try {
      const who = await workspace.whoAmI();
      out(`== backend: ${who.url ?? who.user}\n`);
    } catch (error) {
      throw new EnvironmentError(
        `not logged in to a Pulumi backend: run \`pulumi login <url>\` or set PULUMI_BACKEND_URL (the bootstrap's output PULUMI_BACKEND_URL is the team backend).\n${cliStderr(error)}`,
      );
    }

    let stack: Stack;
    try {
      stack = await Stack.select(request.stack, workspace);
    } catch (error) {
      if (!(error instanceof StackNotFoundError)) throw error;
      if (request.operation === "destroy") {
        out(`== stack ${request.stack} does not exist: nothing to destroy\n`);
        return;
      }
      stack = await Stack.create(request.stack, workspace);
      out(`== created stack ${request.stack}${secretsProvider ? ` (secrets: ${secretsProvider})` : ""}\n`);
    }

    if (request.operation !== "destroy") await applyConfig(stack, workspace, request, deps);

    const policyPacks = request.policyPack && request.operation !== "destroy" ? [policyPackDir(deps.projectDir, request.policyPack)] : undefined;
    const stream = { onOutput: (text: string) => out(text), onError: (text: string) => err(text) };
    try {
      if (request.operation === "preview") {
        const result = await stack.preview({ ...stream, policyPacks, expectNoChanges: request.expectNoChanges, refresh: request.refresh });
        if (Object.keys(result.changeSummary).length > 0) out(`== preview of ${request.stack}: ${JSON.stringify(result.changeSummary)}\n`);
      } else if (request.operation === "up") {
        const result = await stack.up({ ...stream, policyPacks, refresh: request.refresh });
        out(describeOutputs(result.outputs));
        if (request.outputsTo) await appendFile(request.outputsTo, stepOutputLines(result.outputs));
      } else {
        await stack.destroy({ ...stream, refresh: request.refresh });
        out(`== destroyed the resources of ${request.stack}\n`);
        if (request.remove) await removeStack(workspace, request.stack, out);
      }
    } catch (error) {
      throw explain(error, request);
    }
  } finally {
    await tokenFile?.stop();
  }
}

function policyPackDir(projectDir: string, dir: string): string {
  const path = resolve(projectDir, dir);
  if (!existsSync(join(path, "PulumiPolicy.yaml"))) throw new EnvironmentError(`${dir} is not a policy pack (no PulumiPolicy.yaml); pass --no-policy to run without one`);
  return path;
}

async function applyConfig(stack: Stack, workspace: LocalWorkspace, request: EnvironmentRequest, deps: EnvironmentDeps): Promise<void> {
  const project = (await workspace.projectSettings()).name;
  const fromTemplate = request.configFrom ? readStackSettings(deps.projectDir, request.configFrom) : {};
  const settings = { ...fromTemplate, ...qualify(project, request.config) };
  if (Object.keys(settings).length === 0) return;
  await stack.setAllConfig(Object.fromEntries(Object.entries(settings).map(([key, value]) => [key, { value, secret: false }])));
  const parts = [
    request.configFrom ? `${Object.keys(fromTemplate).length} from Pulumi.${request.configFrom}.yaml` : "",
    Object.keys(request.config).length > 0 ? `${Object.keys(request.config).join(", ")} from --config` : "",
  ].filter(Boolean);
  deps.out(`== config of ${request.stack}: ${parts.join("; ")}\n`);
}

/** Removes the stack and checks it is gone (pulumi/actions' `remove` does not wait for it). */
async function removeStack(workspace: LocalWorkspace, name: string, out: (text: string) => void): Promise<void> {
  await workspace.removeStack(name);
  const remaining = await workspace.listStacks();
  if (remaining.some((s) => s.name === name || s.name.endsWith(`/${name}`))) throw new EnvironmentError(`stack ${name} is still listed after pulumi stack rm`);
  out(`== removed stack ${name}\n`);
}

function explain(error: unknown, request: EnvironmentRequest): unknown {
  if (error instanceof ConcurrentUpdateError)
    return new EnvironmentError(`stack ${request.stack} is locked by another update; wait for it (CI serialises updates per stack) or, if it died, run pulumi cancel`);
  if (!(error instanceof CommandError)) return error;
  const stderr = cliStderr(error);
  if (request.expectNoChanges && /no changes were expected/i.test(stderr))
    return new EnvironmentError(`drift: ${request.stack} differs from the program and its configuration (the preview above lists what would change)`);
  return new EnvironmentError(`pulumi ${request.operation} of ${request.stack} failed (exit ${cliExitCode(error)}); the output above says why`);
}
