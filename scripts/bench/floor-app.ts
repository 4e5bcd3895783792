/**
 * The floor of a first request, for `npm run bench:cold-start`: the api's job route or the agent's
 * queue trigger (BENCH_FLOOR_SERVICE) registered as the services register them, with a handler that
 * does nothing (202, or complete the message). Built as the services are (buildServiceBundle), it
 * is what a start costs before any code of ours runs: Node's start, the local host,
 * @azure/functions, the trigger's first delivery. A service's first request can get no faster.
 */
import { app } from "@azure/functions";
import { connectionFamilies } from "../../functions/src/platform/links.js";
import { jobResources } from "../../functions/src/shared/job-resources.js";

// Which service's trigger to stand in for: set by the bench (first-request.ts, FLOOR_SERVICE).
if (process.env.BENCH_FLOOR_SERVICE === "agent") {
  app.serviceBusQueue("processJob", { connection: connectionFamilies.serviceBus.setting, queueName: jobResources.queue, handler: async () => {} });
} else {
  app.http("jobs", { route: "jobs", methods: ["POST"], authLevel: "anonymous", handler: async () => ({ status: 202, jsonBody: { floor: true } }) });
}
