/**
 * What the agent's entry point registers with the Functions worker, read through the same seam the
 * worker uses (a stand-in for @azure/functions-core, in a fresh Node process), and what importing
 * it costs: no settings, no SDK, no handler code until the first message.
 */
import { expect, it } from "vitest";
import { registrationsOf, triggersOf } from "../support/registrations.js";

it("registers the queue and dead-letter triggers on the ServiceBus connection, with no settings, loading only @azure/functions", async () => {
  const { registrations, packages } = await registrationsOf("functions/src/agent/index.ts");
  const triggers = triggersOf(registrations);
  expect(Object.keys(triggers).sort()).toEqual(["failDeadLetteredJob", "processJob"]);
  expect(triggers.processJob).toMatchObject({ type: "serviceBusTrigger", queueName: "jobs", connection: "ServiceBus" });
  expect(triggers.failDeadLetteredJob).toMatchObject({ type: "serviceBusTrigger", queueName: "jobs/$deadletterqueue", connection: "ServiceBus" });
  // Cold start: the SDKs, zod, cockatiel and OpenTelemetry wait for the first message.
  expect(packages).toEqual(["@azure/functions"]);
});
