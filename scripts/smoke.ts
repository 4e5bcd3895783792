/**
 * `npm run smoke -- <api URL> [--token <bearer> | --dev-user <name>] [--web-origin <origin>]`: the
 * post-deploy smoke check (health, OpenAPI, docs, CORS, sign-in, one job end to end with its live
 * event), one line per step, exit code 1 when a step failed. See scripts/smoke/checks.ts.
 */
import { smokeMain } from "./smoke/cli";

smokeMain(process.argv.slice(2)).then(
  // Exit at once: nothing the check started may keep the process (or a CI job) alive.
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(`smoke check crashed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
    process.exit(1);
  },
);
