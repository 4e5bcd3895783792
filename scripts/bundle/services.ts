/**
 * Where the bundler finds each service and writes its package. The services themselves are the
 * registry's (functions/src/services.ts): its entry point by convention, its run-time files from
 * its declaration.
 */
import path from "node:path";
import { serviceEntry } from "../../functions/src/platform/service-kinds";
import { declarationOf, perService, type ServiceName } from "../../functions/src/services";

/** The repository root, found from this file's place in it (scripts/bundle/). */
export const repoRoot = path.resolve(__dirname, "..", "..");

/** Each service's entry point, relative to the repository root: functions/src/<service>/index.ts. */
export const serviceEntries: Readonly<Record<ServiceName, string>> = perService(serviceEntry);

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

/** The run-time files a service declares (the api serves Swagger UI from `swagger-ui/` beside its code). */
export function serviceAssets(service: ServiceName): PackageAsset[] {
  return (declarationOf(service).assets ?? []).flatMap((asset) =>
    asset.files.map((file) => ({ source: packageFile(asset.package, file), path: `${asset.into}/${file}` })),
  );
}
