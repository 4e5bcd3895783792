import path from "node:path";

/** The repository root, found from this file's place in it (scripts/bundle/). */
export const repoRoot = path.resolve(__dirname, "..", "..");

/**
 * The services that become Function Apps: each name maps to the entry point whose
 * `app.http` / `app.serviceBusQueue` calls register its functions. The bundler walks this list.
 */
export const serviceEntries = {
  api: "functions/src/api/index.ts",
  agent: "functions/src/agent/index.ts",
} as const satisfies Record<string, string>;

export type ServiceName = keyof typeof serviceEntries;
export const serviceNames = Object.keys(serviceEntries) as ServiceName[];

/** The host.json every service package carries. */
export const hostJsonPath = path.join(repoRoot, "functions", "host.json");

/** Where `npm run bundle` writes dist/<service>.zip and the unpacked dist/<service>/. */
export const distDir = path.join(repoRoot, "dist");
