import path from "node:path";
import { SWAGGER_UI_ASSET_FILES } from "../../functions/src/api/docs";

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

/** A file a service reads at run time from beside its bundle (the package has no node_modules). */
export interface PackageAsset {
  /** Absolute path on this machine. */
  readonly source: string;
  /** Path inside the package, relative to main.js. */
  readonly path: string;
}

function packageFile(pkg: string, file: string): string {
  return path.join(path.dirname(require.resolve(`${pkg}/package.json`, { paths: [repoRoot] })), file);
}

/** Run-time files per service: the api serves Swagger UI from `swagger-ui/` beside its code (docs.ts). */
export function serviceAssets(service: ServiceName): PackageAsset[] {
  if (service !== "api") return [];
  return SWAGGER_UI_ASSET_FILES.map((file) => ({ source: packageFile("swagger-ui-dist", file), path: `swagger-ui/${file}` }));
}
