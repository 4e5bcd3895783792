/**
 * `npm run bench:emulators`: throughput of the local emulators through the production SDKs.
 * Service Bus first, then Web PubSub when its benchmark is present (it is optional here, so this
 * script also runs on its own).
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { benchServiceBus, printServiceBusFigures } from "./servicebus.js";

interface WebPubSubBenchModule {
  benchWebPubSub(): Promise<unknown>;
  printWebPubSubFigures?: (figures: unknown) => void;
}

async function main(): Promise<void> {
  printServiceBusFigures(await benchServiceBus());
  const webPubSubBench = join(__dirname, "webpubsub.ts");
  if (!existsSync(webPubSubBench)) {
    console.log("Web PubSub benchmark not present: skipped");
    return;
  }
  const webPubSub = (await import("./webpubsub.js")) as unknown as WebPubSubBenchModule;
  const figures = await webPubSub.benchWebPubSub();
  console.log("Web PubSub emulator:");
  if (webPubSub.printWebPubSubFigures) webPubSub.printWebPubSubFigures(figures);
  else console.log(JSON.stringify(figures, null, 2));
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
