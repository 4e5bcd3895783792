/**
 * The agent service's entry point: registers its two Service Bus functions, and nothing else.
 * Registration pays only for @azure/functions: the handlers (zod schemas, cockatiel, OpenTelemetry),
 * the settings and SDK clients (clients.ts) load after it, in the warm-up the worker's start begins
 * (shared/warm-up.ts) or on the first message if that comes first.
 *
 * - processJob: the jobs queue. A throw abandons the message, so Service Bus redelivers it.
 * - failDeadLetteredJob: the queue's dead-letter sub-queue; marks the job failed and tells the owner.
 */
import { app, type InvocationContext } from "@azure/functions";
import { connectionFamilies } from "../platform/links.js";
import { jobResources } from "../shared/job-resources.js";
import { warmUpInBackground } from "../shared/warm-up.js";
import type { AgentHandlers } from "./handlers.js";

/** The connection setting of the agent's Service Bus link (`ServiceBus__fullyQualifiedNamespace` in Azure). */
const SERVICE_BUS_CONNECTION = connectionFamilies.serviceBus.setting;

let handlers: AgentHandlers | undefined;

function agentHandlers(): AgentHandlers {
  if (!handlers) {
    // A deferred require (this package is CommonJS): evaluated on the first invocation (or the warm-up) only.
    const { createAgentHandlers } = require("./handlers.js") as typeof import("./handlers.js");
    const { agentDependencies } = require("./clients.js") as typeof import("./clients.js");
    handlers = createAgentHandlers(agentDependencies);
  }
  return handlers;
}

// Loads the handlers and opens what every job uses while the worker starts (warm-up.ts).
app.hook.appStart(() =>
  warmUpInBackground("agent", async () => {
    agentHandlers();
    await (require("./clients.js") as typeof import("./clients.js")).warmUpAgentDependencies();
  }),
);

app.serviceBusQueue("processJob", {
  connection: SERVICE_BUS_CONNECTION,
  queueName: jobResources.queue,
  handler: (message: unknown, context: InvocationContext) => agentHandlers().processJobMessage(message, context),
});

app.serviceBusQueue("failDeadLetteredJob", {
  connection: SERVICE_BUS_CONNECTION,
  queueName: `${jobResources.queue}/$deadletterqueue`,
  handler: (message: unknown, context: InvocationContext) => agentHandlers().failDeadLetteredJobMessage(message, context),
});

// The spans still batched go out before the worker exits (a scale-in, a redeploy). Only a process
// that served an invocation has telemetry (and its module) loaded; any other has nothing to send.
app.hook.appTerminate(async () => {
  if (handlers) await (require("../shared/telemetry-export.js") as typeof import("../shared/telemetry-export.js")).flushTelemetry();
});
