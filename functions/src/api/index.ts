/**
 * The api service's entry point: registers its HTTP functions and the stuck-job sweeper's timer,
 * and nothing else. Cold start pays only for @azure/functions: the handlers (zod, schemas) load on
 * the first request, the settings and SDK clients then too (clients.ts), the OpenAPI generator only
 * when the document is asked for.
 *
 * Every route is registered for all methods so that an unsupported one reaches the handler and gets
 * a 405 problem with an Allow header (the host would answer a bare 404 otherwise).
 */
import { app, type HttpMethod, type HttpRequest, type InvocationContext, type Timer } from "@azure/functions";
import type { ApiHandlers } from "./handlers.js";

/** Kept here rather than imported from http.ts, which would load zod and OpenTelemetry at import. */
const ALL_METHODS: HttpMethod[] = ["GET", "POST", "PUT", "PATCH", "DELETE"];

type HandlerName = keyof ApiHandlers | "openapi" | "docs";

let handlers: (ApiHandlers & { openapi: ApiHandlers["health"]; docs: ApiHandlers["health"] }) | undefined;

function apiHandler(name: HandlerName) {
  return (request: HttpRequest, context: InvocationContext) => {
    if (!handlers) {
      // A deferred require (this package is CommonJS): evaluated on the first request only.
      const { createApiHandlers, documentationHandlers } = require("./handlers.js") as typeof import("./handlers.js");
      const { apiDependencies } = require("./clients.js") as typeof import("./clients.js");
      handlers = { ...createApiHandlers(apiDependencies), ...documentationHandlers };
    }
    return handlers[name](request, context);
  };
}

const routes: { name: HandlerName; route: string }[] = [
  { name: "uploads", route: "uploads" },
  { name: "jobs", route: "jobs" },
  { name: "job", route: "jobs/{id}" },
  { name: "negotiate", route: "negotiate" },
  { name: "health", route: "health" },
  { name: "openapi", route: "openapi.json" },
  { name: "docs", route: "docs/{*asset}" },
];

for (const { name, route } of routes) {
  // App Service Authentication guards the app in Azure; the functions themselves check the caller.
  app.http(name, { route, methods: ALL_METHODS, authLevel: "anonymous", handler: apiHandler(name) });
}

let requeue: ((timer: Timer, context: InvocationContext) => Promise<void>) | undefined;

// Re-sends jobs left queued (or running past their lease) without a message (requeue.ts). In Azure
// the host runs one schedule per app (a blob lease in AzureWebJobsStorage), however many instances.
app.timer("requeueStuckJobs", {
  schedule: "%JOB_SWEEP_SCHEDULE%",
  handler: (timer: Timer, context: InvocationContext) => {
    if (!requeue) {
      const { createRequeueHandler } = require("./requeue.js") as typeof import("./requeue.js");
      const { apiDependencies } = require("./clients.js") as typeof import("./clients.js");
      requeue = createRequeueHandler(apiDependencies);
    }
    return requeue(timer, context);
  },
});
