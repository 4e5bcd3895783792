/**
 * Run in a child process by agent-emulators.test.ts, with the agent's settings and
 * NODE_EXTRA_CA_CERTS in its environment (Node reads that only at start-up): builds the agent's
 * dependencies exactly as the deployed app does (clients.ts, from settings) and hands it one job
 * message, like the host. Prints one JSON line: the log lines.
 */
import { InvocationContext } from "@azure/functions";
import { agentDependencies } from "../../functions/src/agent/clients.js";
import { createAgentHandlers } from "../../functions/src/agent/handlers.js";

async function main() {
  const message: unknown = JSON.parse(process.argv[2] ?? "null");
  const logs: string[] = [];
  const context = new InvocationContext({
    invocationId: "wiring",
    functionName: "processJob",
    logHandler: (level, ...args) => logs.push(`${level} ${args.map(String).join(" ")}`),
    triggerMetadata: { messageId: "wiring", deliveryCount: 1, applicationProperties: {} },
  });
  await createAgentHandlers(agentDependencies).processJobMessage(message, context);
  process.stdout.write(`${JSON.stringify({ logs })}\n`);
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    process.stderr.write(`${(error as Error).stack ?? String(error)}\n`);
    process.exit(1);
  },
);
