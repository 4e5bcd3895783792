/**
 * The api service's entry point: registers its HTTP functions and the stuck-job sweeper's timer,
 * and nothing else. Registration pays only for @azure/functions: the handlers (zod, schemas), the
 * settings and SDK clients (clients.ts) load after it, in the warm-up the worker's start begins
 * (shared/warm-up.ts) or on the first request if that comes first; the OpenAPI generator only when
 * the document is asked for.
 *
 * Each route is registered for the methods it serves, and a second function on the same route
 * takes every other method and answers 405 (problem+json, with Allow) without reading the body: the
 * Functions host would otherwise answer a bare 404. Whatever the method, the host refuses a body
 * over the api's request limit before any function runs (FUNCTIONS_REQUEST_BODY_SIZE_LIMIT, set
 * from services.ts), so no route, anonymous or not, can make the api hold a large body.
 */
import { app, type HttpMethod, type HttpRequest, type InvocationContext, type Timer } from "@azure/functions";
import { warmUpInBackground } from "../shared/warm-up.js";
import type { ApiHandlers } from "./handlers.js";

/** Kept here rather than imported from http.ts, which would load zod and OpenTelemetry at import. */
const ALL_METHODS: readonly HttpMethod[] = ["GET", "POST", "PUT", "PATCH", "DELETE"];

type HandlerName = keyof ApiHandlers | "openapi" | "docs";

let handlers: (ApiHandlers & { openapi: ApiHandlers["health"]; docs: ApiHandlers["health"] }) | undefined;

function apiHandlers(): NonNullable<typeof handlers> {
  if (!handlers) {
    // A deferred require (this package is CommonJS): evaluated on the first request (or the warm-up) only.
    const { createApiHandlers, documentationHandlers } = require("./handlers.js") as typeof import("./handlers.js");
    const { apiDependencies } = require("./clients.js") as typeof import("./clients.js");
    handlers = { ...createApiHandlers(apiDependencies), ...documentationHandlers };
  }
  return handlers;
}

function apiHandler(name: HandlerName) {
  return (request: HttpRequest, context: InvocationContext) => apiHandlers()[name](request, context);
}

// Loads the handlers and opens what a job's POST uses while the worker starts (warm-up.ts).
app.hook.appStart(() =>
  warmUpInBackground("api", async () => {
    apiHandlers();
    await (require("./clients.js") as typeof import("./clients.js")).warmUpApiDependencies();
  }),
);

/** Every route and the methods its handler serves (handlers.ts answers 405 for the others). */
export const apiRoutes: readonly { name: HandlerName; route: string; methods: readonly HttpMethod[] }[] = [
  { name: "uploads", route: "uploads", methods: ["POST"] },
  { name: "jobs", route: "jobs", methods: ["GET", "POST"] },
  { name: "job", route: "jobs/{id}", methods: ["GET"] },
  { name: "negotiate", route: "negotiate", methods: ["GET"] },
  { name: "health", route: "health", methods: ["GET"] },
  { name: "openapi", route: "openapi.json", methods: ["GET"] },
  { name: "docs", route: "docs/{*asset}", methods: ["GET"] },
];

for (const { name, route, methods } of apiRoutes) {
  // App Service Authentication guards the app in Azure; the functions themselves check the caller.
  app.http(name, { route, methods: [...methods], authLevel: "anonymous", handler: apiHandler(name) });
  const others = ALL_METHODS.filter((method) => !methods.includes(method));
  // The same handler: its method dispatch answers 405 before it looks at the body.
  if (others.length > 0) app.http(`${name}-other-methods`, { route, methods: others, authLevel: "anonymous", handler: apiHandler(name) });
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

// The spans still batched go out before the worker exits (a scale-in, a redeploy). Only a process
// that served an invocation has telemetry (and its module) loaded; any other has nothing to send.
app.hook.appTerminate(async () => {
  if (handlers || requeue) await (require("../shared/telemetry-export.js") as typeof import("../shared/telemetry-export.js")).flushTelemetry();
});
