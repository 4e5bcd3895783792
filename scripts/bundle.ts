/**
 * `npm run bundle [-- service...] [-- --no-cache]`: builds dist/<service>.zip for every service (or
 * the named ones) and prints sizes, content hashes and the largest inputs. A package whose inputs
 * are unchanged is reused from dist/.cache unless --no-cache.
 */
import { buildService } from "./bundle/build";
import { formatBundleReport } from "./bundle/report";
import { serviceNames, type ServiceName } from "../functions/src/services";

async function main(argv: readonly string[]): Promise<void> {
  const cache = !argv.includes("--no-cache");
  const args = argv.filter((a) => a !== "--no-cache");
  const unknown = args.filter((a) => !(serviceNames as readonly string[]).includes(a));
  if (unknown.length > 0) {
    throw new Error(`unknown service(s) ${unknown.join(", ")}; known: ${serviceNames.join(", ")}`);
  }
  const wanted = args.length > 0 ? (args as ServiceName[]) : serviceNames;
  for (const name of wanted) {
    console.log(formatBundleReport(await buildService(name, undefined, { cache })));
  }
}

main(process.argv.slice(2)).catch((error: unknown) => {
  console.error(`bundle failed: ${error instanceof Error ? error.message : String(error)}`);
  process.exitCode = 1;
});
