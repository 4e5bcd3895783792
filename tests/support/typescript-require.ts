/**
 * Lets the services' deferred `require("./sdk/<name>.js")` (functions/src/shared/sdk/README.md)
 * find the TypeScript source in tests, as the local Functions host does (it loads the source
 * through tsx): vitest transforms imports, not a module's own `require`, which is Node's.
 */
import { register } from "tsx/cjs/api";

register();
