/**
 * The agent service's entry point: registers its two Service Bus functions. Nothing else happens at
 * import (no settings, no SDK clients): they are created on the first invocation (clients.ts).
 *
 * - processJob: the `jobs` queue (name from the JOBS_QUEUE_NAME app setting through the binding
 *   expression). A throw abandons the message, so Service Bus redelivers it.
 * - failDeadLetteredJob: the queue's dead-letter sub-queue; marks the job failed and tells the owner.
 */
import { app } from "@azure/functions";
import { agentDependencies } from "./clients.js";
import { createAgentHandlers } from "./handlers.js";

/** The Functions connection setting prefix both triggers use (settings.ts: ServiceBus). */
const SERVICE_BUS_CONNECTION = "ServiceBus";

const handlers = createAgentHandlers(agentDependencies);

app.serviceBusQueue("processJob", {
  connection: SERVICE_BUS_CONNECTION,
  queueName: "%JOBS_QUEUE_NAME%",
  handler: handlers.processJobMessage,
});

app.serviceBusQueue("failDeadLetteredJob", {
  connection: SERVICE_BUS_CONNECTION,
  queueName: "%JOBS_QUEUE_NAME%/$deadletterqueue",
  handler: handlers.failDeadLetteredJobMessage,
});
