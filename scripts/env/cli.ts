/**
 * `npm run env -- <up|preview|destroy> <stack> [options]`: see args.ts for the options.
 * Exit codes: 0 done, 1 the operation failed, 2 the command line is wrong.
 */
import { repoRoot } from "../bundle/services";
import { parseArgs, usage, UsageError } from "./args";
import { EnvironmentError, runEnvironment } from "./environment";

async function main(argv: readonly string[]): Promise<number> {
  let request;
  try {
    request = parseArgs(argv);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    process.stderr.write(`error: ${error.message}\n\n${usage}\n`);
    return 2;
  }
  if (request === "help") {
    process.stdout.write(`${usage}\n`);
    return 0;
  }
  try {
    await runEnvironment(request, {
      projectDir: repoRoot,
      env: process.env,
      out: (text) => process.stdout.write(text),
      err: (text) => process.stderr.write(text),
    });
    return 0;
  } catch (error) {
    process.stderr.write(`error: ${error instanceof EnvironmentError ? error.message : error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    return 1;
  }
}

main(process.argv.slice(2)).then((code) => {
  process.exitCode = code;
});
