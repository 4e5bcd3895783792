/**
 * `npm run bundle [service...]`: builds dist/<service>.zip for every service (or the named ones)
 * and prints sizes, content hashes and the largest inputs.
 */
import { buildService } from "./bundle/build";
import { formatBundleReport } from "./bundle/report";
import { serviceNames, type ServiceName } from "./bundle/services";

async function main(args: readonly string[]): Promise<void> {
  const unknown = args.filter((a) => !(serviceNames as readonly string[]).includes(a));
  if (unknown.length > 0) {
    throw new Error(`unknown service(s) ${unknown.join(", ")}; known: ${serviceNames.join(", ")}`);
  }
  const wanted = args.length > 0 ? (args as ServiceName[]) : serviceNames;
  for (const name of wanted) {
    console.log(formatBundleReport(await buildService(name)));
  }
}

main(process.argv.slice(2)).catch((error: unknown) => {
  console.error(`bundle failed: ${error instanceof Error ? error.message : String(error)}`);
  process.exitCode = 1;
});
