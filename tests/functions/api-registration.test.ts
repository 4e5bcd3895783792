/**
 * The api entry point as the Functions worker loads it: through @azure/functions-core (a stand-in
 * that records registrations, in a fresh Node process). Checks the routes, methods and auth level
 * the host will see, the stuck-job sweeper's timer, and that registration loads no package besides
 * @azure/functions (cold start: zod, the SDKs and the OpenAPI generator wait for the first request).
 */
import { expect, it } from "vitest";
import { registrationsOf, triggersOf } from "../support/registrations.js";

it("registers every route for all methods, anonymously, and the sweeper's timer, with no settings, loading only @azure/functions", async () => {
  const { registrations, packages } = await registrationsOf("functions/src/api/index.ts");
  const triggers = triggersOf(registrations);
  const http = Object.entries(triggers).filter(([, t]) => t.type === "httpTrigger");
  expect(Object.fromEntries(http.map(([name, t]) => [name, t.route]))).toEqual({
    uploads: "uploads",
    jobs: "jobs",
    job: "jobs/{id}",
    negotiate: "negotiate",
    health: "health",
    openapi: "openapi.json",
    docs: "docs/{*asset}",
  });
  for (const [, trigger] of http) {
    expect(trigger.authLevel).toBe("anonymous");
    expect(trigger.methods?.map((m) => m.toUpperCase()).sort()).toEqual(["DELETE", "GET", "PATCH", "POST", "PUT"]);
  }
  // The schedule is the app setting the registry declares (services.ts), resolved by the host; never on start-up.
  expect(triggers.requeueStuckJobs).toMatchObject({ type: "timerTrigger", direction: "in", schedule: "%JOB_SWEEP_SCHEDULE%" });
  expect(triggers.requeueStuckJobs?.runOnStartup).toBeUndefined();
  expect(Object.keys(triggers)).toHaveLength(http.length + 1);
  expect(packages).toEqual(["@azure/functions"]);
});
