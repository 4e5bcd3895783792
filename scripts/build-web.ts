/**
 * `npm run build:web`: builds the web app into dist/web (what `pulumi up` syncs to `$web`) and
 * prints what a browser downloads in each sign-in mode.
 */
import { buildWebApp, bundleSizes, describeSizes } from "../web/site/build.js";

async function main(): Promise<void> {
  const { outDir } = await buildWebApp({ log: (line) => process.stdout.write(`${line}\n`) });
  for (const line of describeSizes(await bundleSizes(outDir))) process.stdout.write(`  ${line}\n`);
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
