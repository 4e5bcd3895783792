/**
 * Lets the services' deferred `require("./sdk/<name>.js")` (functions/src/shared/sdk/README.md)
 * find the TypeScript source in tests, as the local Functions host does (it loads the source
 * through tsx): vitest transforms imports, not a module's own `require`, which is Node's.
 *
 * Once per worker process: vitest runs setup files before every test file, and files of the
 * "shared" project (vitest.config.mts) share their worker, where a second registration would stack
 * another loader on the first.
 */
import { register } from "tsx/cjs/api";

const REGISTERED = Symbol.for("platform.tests.typescript-require");
const worker = globalThis as { [REGISTERED]?: true };
if (!worker[REGISTERED]) {
  register();
  worker[REGISTERED] = true;
}
