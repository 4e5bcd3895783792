/**
 * The command line of `npm run smoke`: arguments, one line per step, the exit code.
 *
 *   npm run smoke -- <api URL> [--token <bearer> | --dev-user <name>] [--web-origin <origin>] [--timeout <seconds>]
 */
import { parseArgs } from "node:util";
import { apiBaseOf, runSmoke, type SmokeOptions, type StepResult } from "./checks";

export const usage = `usage: npm run smoke -- <api URL> [--token <bearer> | --dev-user <name>] [--web-origin <origin>] [--timeout <seconds>]

  <api URL>        the api's site (pulumi stack output apiUrl) or its /api base (local: http://127.0.0.1:7071/api)
  --token          an Entra access token for the api (az account get-access-token --resource api://<authEntraClientId>)
  --dev-user       the development identity (local platform only)
  --web-origin     the static site's origin (pulumi stack output webUrl), for the CORS check
  --timeout        longest wait for the job's job.succeeded event, in seconds (default 120)`;

/** Bad arguments: the message, then the usage. Exit code 2. */
export class UsageError extends Error {}

const loopback = new Set(["localhost", "127.0.0.1", "[::1]"]);

/** Reads and checks the arguments; throws {@link UsageError}. */
export function parseSmokeArgs(argv: readonly string[]): SmokeOptions {
  let parsed;
  try {
    parsed = parseArgs({
      args: [...argv],
      allowPositionals: true,
      strict: true,
      options: { token: { type: "string" }, "dev-user": { type: "string" }, "web-origin": { type: "string" }, timeout: { type: "string" } },
    });
  } catch (error) {
    throw new UsageError(error instanceof Error ? error.message : String(error));
  }
  const { values, positionals } = parsed;
  if (positionals.length !== 1) throw new UsageError(positionals.length === 0 ? "the api URL is missing" : `one api URL expected, got ${positionals.length}`);
  let apiBase: string;
  try {
    apiBase = apiBaseOf(positionals[0] ?? "");
  } catch (error) {
    throw new UsageError(error instanceof Error ? error.message : String(error));
  }
  if (values.token !== undefined && values["dev-user"] !== undefined) throw new UsageError("--token and --dev-user exclude each other");
  if (values.token !== undefined) {
    if (values.token.trim() === "") throw new UsageError("--token is empty (did the az account get-access-token command fail?)");
    const url = new URL(apiBase);
    // A bearer token is a password for an hour: never send it where anyone on the path can read it.
    if (url.protocol !== "https:" && !loopback.has(url.hostname)) throw new UsageError(`refusing to send a bearer token over plain http to ${url.host}; use https`);
  }
  if (values["dev-user"] !== undefined && values["dev-user"].trim() === "") throw new UsageError("--dev-user is empty");
  let webOrigin: string | undefined;
  if (values["web-origin"] !== undefined) {
    try {
      webOrigin = new URL(values["web-origin"]).origin;
    } catch {
      throw new UsageError(`--web-origin is not a URL: ${JSON.stringify(values["web-origin"])}`);
    }
  }
  let jobTimeoutMs: number | undefined;
  if (values.timeout !== undefined) {
    const seconds = Number(values.timeout);
    if (!Number.isFinite(seconds) || seconds <= 0 || seconds > 3600) throw new UsageError(`--timeout must be a number of seconds from 1 to 3600 (got ${values.timeout})`);
    jobTimeoutMs = seconds * 1000;
  }
  return {
    apiBase,
    ...(values.token !== undefined ? { identity: { kind: "token" as const, token: values.token.trim() } } : {}),
    ...(values["dev-user"] !== undefined ? { identity: { kind: "dev-user" as const, name: values["dev-user"] } } : {}),
    ...(webOrigin ? { webOrigin } : {}),
    ...(jobTimeoutMs ? { jobTimeoutMs } : {}),
  };
}

const label: Record<StepResult["status"], string> = { pass: "PASS", fail: "FAIL", skip: "SKIP" };

/** One step as printed: status, title, time, what was seen; a failure adds what it usually means. */
export function formatStep(result: StepResult): string {
  const time = result.status === "skip" ? "" : `${result.ms} ms`;
  const line = `${label[result.status]}  ${result.title.padEnd(50)} ${time.padStart(9)}  ${result.detail}`;
  return result.meaning ? `${line}\n      usually means: ${result.meaning}` : line;
}

/** Runs the check and prints it; resolves with the process exit code (0 pass, 1 a step failed, 2 usage). */
export async function smokeMain(argv: readonly string[], print: (line: string) => void = (line) => console.log(line), overrides: Partial<SmokeOptions> = {}): Promise<number> {
  let options: SmokeOptions;
  try {
    options = { ...parseSmokeArgs(argv), ...overrides };
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    print(`${error.message}\n\n${usage}`);
    return 2;
  }
  const who = options.identity?.kind === "token" ? "with a bearer token" : options.identity ? `as development user ${options.identity.name}` : "without a caller";
  print(`Smoke check of ${options.apiBase} ${who}${options.webOrigin ? `, web origin ${options.webOrigin}` : ""}`);
  const started = performance.now();
  const report = await runSmoke(options, (result) => print(formatStep(result)));
  const count = (status: StepResult["status"]) => report.steps.filter((s) => s.status === status).length;
  print(`${report.ok ? "passed" : "FAILED"}: ${count("pass")} passed, ${count("fail")} failed, ${count("skip")} skipped in ${((performance.now() - started) / 1000).toFixed(1)} s`);
  return report.ok ? 0 : 1;
}
