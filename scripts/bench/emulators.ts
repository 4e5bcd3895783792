/**
 * `npm run bench:emulators`: throughput of the local emulators through the production SDKs:
 * Service Bus send + receive + complete, then Web PubSub fan-out to 100 clients.
 */
import { benchServiceBus, printServiceBusFigures } from "./servicebus.js";
import { benchWebPubSub, printWebPubSubFigures } from "./webpubsub.js";

async function main(): Promise<void> {
  printServiceBusFigures(await benchServiceBus());
  console.log("Web PubSub emulator:");
  printWebPubSubFigures(await benchWebPubSub());
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
