/**
 * The ports of the emulators and the site under `npm start`: the tools' own defaults where they
 * have one (Azurite 10000, Cosmos 8081, AMQP 5672). Apart from platform.ts so that tools which only
 * need the numbers (the service generator picks a local port that none of them uses) load nothing else.
 */

/** The emulators and the site. */
export type EmulatorPort = "web" | "blob" | "cosmos" | "serviceBus" | "webPubSub";

export const EMULATOR_PORTS: Readonly<Record<EmulatorPort, number>> = {
  web: 4280,
  blob: 10000,
  cosmos: 8081,
  serviceBus: 5672,
  webPubSub: 8080,
};
