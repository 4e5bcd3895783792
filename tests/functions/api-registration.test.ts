/**
 * The api entry point as the Functions worker loads it: through @azure/functions-core (a stand-in
 * that records registrations, in a fresh Node process). Checks the routes, methods and auth level
 * the host will see, the stuck-job sweeper's timer, and that registration loads no package besides
 * @azure/functions (cold start: zod, the SDKs and the OpenAPI generator wait for the first request).
 */
import { expect, it } from "vitest";
import { registrationsOf, triggersOf } from "../support/registrations.js";

it("registers each route for the methods it serves and every other method on a second function, anonymously, and the sweeper's timer, loading only @azure/functions", async () => {
  const { registrations, packages } = await registrationsOf("functions/src/api/index.ts");
  const triggers = triggersOf(registrations);
  const http = Object.entries(triggers).filter(([, t]) => t.type === "httpTrigger");
  const served = (name: string) => [triggers[name]!.route, triggers[name]!.methods?.map((m) => m.toUpperCase()).sort()];
  expect(Object.fromEntries(http.filter(([name]) => !name.endsWith("-other-methods")).map(([name]) => [name, served(name)]))).toEqual({
    uploads: ["uploads", ["POST"]],
    jobs: ["jobs", ["GET", "POST"]],
    job: ["jobs/{id}", ["GET"]],
    negotiate: ["negotiate", ["GET"]],
    health: ["health", ["GET"]],
    openapi: ["openapi.json", ["GET"]],
    docs: ["docs/{*asset}", ["GET"]],
  });
  for (const [name, trigger] of http) {
    expect(trigger.authLevel).toBe("anonymous");
    if (name.endsWith("-other-methods")) continue;
    // The rest of the methods reach the handler's 405 through a second function on the same route.
    const others = triggers[`${name}-other-methods`]!;
    expect(others.route).toBe(trigger.route);
    expect([...(trigger.methods ?? []), ...(others.methods ?? [])].map((m) => m.toUpperCase()).sort()).toEqual(["DELETE", "GET", "PATCH", "POST", "PUT"]);
  }
  // The schedule is the app setting the registry declares (services.ts), resolved by the host; never on start-up.
  expect(triggers.requeueStuckJobs).toMatchObject({ type: "timerTrigger", direction: "in", schedule: "%JOB_SWEEP_SCHEDULE%" });
  expect(triggers.requeueStuckJobs?.runOnStartup).toBeUndefined();
  expect(Object.keys(triggers)).toHaveLength(http.length + 1);
  expect(packages).toEqual(["@azure/functions"]);
});
