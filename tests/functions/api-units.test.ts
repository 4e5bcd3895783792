/** The api's pure pieces: identity, problem details, health aggregation. */
import { describe, expect, it } from "vitest";
import { z } from "zod";
import type { ApiDependencies } from "../../functions/src/api/dependencies.js";
import { ConcurrencyLimit } from "../../functions/src/api/overload.js";
import { createApiHandlers } from "../../functions/src/api/handlers.js";
import { checkHealth } from "../../functions/src/api/health.js";
import { decode, httpRequest, invocationContext } from "../support/http.js";
import { callerFrom, idFromPrincipal } from "../../functions/src/api/identity.js";
import { HttpProblem, pointerFor, problemResponse, validationProblem } from "../../functions/src/api/problem.js";

const headers = (values: Record<string, string>) => new Headers(values);
const principal = (claims: { typ: string; val: string }[]) => Buffer.from(JSON.stringify({ auth_typ: "aad", claims })).toString("base64");

describe("identity", () => {
  const azure = { trustAppServiceAuthentication: true, allowDevelopmentIdentity: false };
  const local = { trustAppServiceAuthentication: false, allowDevelopmentIdentity: true };
  const noAuthentication = { trustAppServiceAuthentication: false, allowDevelopmentIdentity: false };

  it("prefers the platform's principal id, then the oid/sub claims", () => {
    expect(callerFrom(headers({ "x-ms-client-principal-id": "abc" }), azure)).toEqual({ userId: "abc", source: "appServiceAuthentication" });
    expect(callerFrom(headers({ "x-ms-client-principal": principal([{ typ: "name", val: "Ann" }, { typ: "oid", val: "o-1" }]) }), azure)?.userId).toBe("o-1");
    expect(idFromPrincipal(principal([{ typ: "sub", val: "s-1" }, { typ: "http://schemas.microsoft.com/identity/claims/objectidentifier", val: "o-2" }]))).toBe("o-2");
  });

  it("has no caller for missing, malformed or unusable identities", () => {
    expect(callerFrom(headers({}), azure)).toBeUndefined();
    expect(callerFrom(headers({ "x-ms-client-principal": "%%%" }), azure)).toBeUndefined();
    expect(callerFrom(headers({ "x-ms-client-principal": Buffer.from("[]").toString("base64") }), azure)).toBeUndefined();
    expect(callerFrom(headers({ "x-ms-client-principal": principal([{ typ: "name", val: "Ann" }]) }), azure)).toBeUndefined();
    expect(callerFrom(headers({ "x-ms-client-principal-id": "has space" }), azure)).toBeUndefined();
    expect(callerFrom(headers({ "x-ms-client-principal-id": "x".repeat(129) }), azure)).toBeUndefined();
  });

  it("ignores the platform's headers when App Service Authentication is not in front of the app (anyone could forge them)", () => {
    expect(callerFrom(headers({ "x-ms-client-principal-id": "abc" }), noAuthentication)).toBeUndefined();
    expect(callerFrom(headers({ "x-ms-client-principal": principal([{ typ: "oid", val: "o-1" }]) }), noAuthentication)).toBeUndefined();
    expect(callerFrom(headers({ "x-ms-client-principal-id": "abc" }), local)).toBeUndefined();
  });

  it("behind the API gateway, takes the user from the gateway's header, and only on a request App Service Authentication authenticated", () => {
    const gateway = { ...azure, behindGateway: true };
    // Easy Auth admits only the gateway's identity: its principal headers name the gateway.
    const fromGateway = { "x-ms-client-principal-id": "gateway-principal", "x-gateway-user-id": "user-oid-1" };
    expect(callerFrom(headers(fromGateway), gateway)).toEqual({ userId: "user-oid-1", source: "apiGateway" });
    expect(callerFrom(headers({ "x-ms-client-principal": principal([{ typ: "oid", val: "gateway-principal" }]), "x-gateway-user-id": "user-oid-2" }), gateway)?.userId).toBe("user-oid-2");
    // Never the gateway itself: without the gateway's header there is no user.
    expect(callerFrom(headers({ "x-ms-client-principal-id": "gateway-principal" }), gateway)).toBeUndefined();
    // A header nothing authenticated (no Easy Auth principal) is anyone's to forge.
    expect(callerFrom(headers({ "x-gateway-user-id": "user-oid-1" }), gateway)).toBeUndefined();
    expect(callerFrom(headers({ ...fromGateway, "x-gateway-user-id": "has space" }), gateway)).toBeUndefined();
    // Without App Service Authentication nothing is trusted, gateway or not.
    expect(callerFrom(headers(fromGateway), { ...gateway, trustAppServiceAuthentication: false })).toBeUndefined();
    // Not behind the gateway, its header means nothing.
    expect(callerFrom(headers(fromGateway), azure)).toEqual({ userId: "gateway-principal", source: "appServiceAuthentication" });
  });

  it("honours x-dev-user only when the local-only setting allows it", () => {
    expect(callerFrom(headers({ "x-dev-user": "dev" }), azure)).toBeUndefined();
    expect(callerFrom(headers({ "x-dev-user": "dev" }), local)).toEqual({ userId: "dev", source: "development" });
    // An invalid development identity is refused, not silently replaced by another header.
    expect(callerFrom(headers({ "x-dev-user": "bad user" }), local)).toBeUndefined();
  });

  it("never lets x-dev-user override the platform's identity, even with both trusted (abuse review F5)", () => {
    const both = { ...local, trustAppServiceAuthentication: true };
    expect(callerFrom(headers({ "x-dev-user": "victim-oid", "x-ms-client-principal-id": "attacker-oid" }), both)).toEqual({ userId: "attacker-oid", source: "appServiceAuthentication" });
    // A malformed principal is refused outright: it does not fall back to the header a caller controls.
    expect(callerFrom(headers({ "x-dev-user": "victim-oid", "x-ms-client-principal": "%%%" }), both)).toBeUndefined();
  });
});

describe("problem details", () => {
  it("points at each bad member with an RFC 6901 pointer, unknown members included", () => {
    const schema = z.strictObject({ a: z.string(), "b/c": z.strictObject({ "d~e": z.number() }) });
    const parsed = schema.safeParse({ a: 1, "b/c": { "d~e": "x" }, extra: true });
    expect(parsed.success).toBe(false);
    const problem = validationProblem(parsed.error!);
    expect(problem.status).toBe(422);
    expect(problem.extras.errors?.map((e) => e.pointer).sort()).toEqual(["#/a", "#/b~1c/d~0e", "#/extra"]);
    expect(problem.detail).toContain("#/extra");
    expect(pointerFor([], "/query")).toBe("#/query");
  });

  it("renders application/problem+json with status, title and instance", () => {
    const response = problemResponse(new HttpProblem(415, "use JSON", { headers: { "accept-post": "application/json" } }), "/api/jobs");
    expect(response.status).toBe(415);
    expect(response.headers).toMatchObject({ "content-type": "application/problem+json", "accept-post": "application/json" });
    expect(JSON.parse(response.body as string)).toEqual({ type: "about:blank", title: "Unsupported Media Type", status: 415, detail: "use JSON", instance: "/api/jobs" });
  });
});

describe("health", () => {
  it("reports a slow or failing probe as unreachable, logs why, and degrades the whole", async () => {
    const logged: string[] = [];
    const report = await checkHealth(
      {
        cosmos: async () => {},
        blob: () => Promise.reject(new Error("secret-account.blob.core.windows.net refused")),
        serviceBus: () => new Promise(() => {}),
        webPubSub: async () => {},
      },
      (dependency, error) => logged.push(`${dependency}: ${(error as Error).message}`),
      50,
    );
    expect(report).toEqual({ status: "degraded", checks: { cosmos: "ok", blob: "unreachable", serviceBus: "unreachable", webPubSub: "ok" } });
    expect(logged).toEqual(["blob: secret-account.blob.core.windows.net refused", "serviceBus: no answer within 50 ms"]);
  });
});

describe("GET /api/health", () => {
  it("shares one round of probes between concurrent and recent requests", async () => {
    let probes = 0;
    const ping = async () => {
      probes += 1;
      await new Promise((resolve) => setTimeout(resolve, 20));
    };
    const deps = {
      jobs: { ping },
      uploads: { ping },
      queue: { ping },
      realtime: { ping },
      identity: { allowDevelopmentIdentity: false },
    } as unknown as ApiDependencies; // only what the health route touches
    const handlers = createApiHandlers(async () => deps);
    const ask = async () => decode(await handlers.health(httpRequest({ path: "/api/health" }), invocationContext()));
    const answers = await Promise.all([ask(), ask(), ask()]);
    answers.push(await ask());
    expect(answers.map((a) => a.status)).toEqual([200, 200, 200, 200]);
    expect(probes).toBe(4); // one per dependency, once
  });
});

describe("overload", () => {
  it("serves at most MAX_CONCURRENT_REQUESTS at once and answers the next at once with 503 and Retry-After; health is never shed", async () => {
    const gates: (() => void)[] = [];
    let started!: () => void;
    const allStarted = new Promise<void>((resolve) => (started = resolve));
    let hold = true;
    const deps = {
      jobs: {
        list: () =>
          hold
            ? new Promise((resolve) => {
                gates.push(() => resolve({ jobs: [] }));
                if (gates.length === 2) started();
              })
            : Promise.resolve({ jobs: [] }),
        ping: async () => {},
      },
      uploads: { ping: async () => {} },
      queue: { ping: async () => {} },
      realtime: { ping: async () => {} },
      identity: { allowDevelopmentIdentity: true },
      maxConcurrentRequests: 2,
    } as unknown as ApiDependencies; // only what listing and health touch
    const limit = new ConcurrencyLimit();
    const handlers = createApiHandlers(async () => deps, limit);
    const list = () => handlers.jobs(httpRequest({ path: "/api/jobs", headers: { "x-dev-user": "u" } }), invocationContext()).then(decode);
    const held = [list(), list()];
    await allStarted;
    const shed = await list();
    expect(shed.status).toBe(503);
    expect(shed.headers["retry-after"]).toBe("1");
    expect(shed.headers["content-type"]).toBe("application/problem+json");
    expect((shed.body as { detail: string }).detail).toMatch(/limit of 2 requests in progress/);
    expect((await decode(await handlers.health(httpRequest({ path: "/api/health" }), invocationContext()))).status).toBe(200);
    hold = false;
    for (const open of gates) open();
    expect((await Promise.all(held)).map((r) => r.status)).toEqual([200, 200]);
    expect(limit.active).toBe(0);
    expect(limit.shed).toBe(1);
    expect((await list()).status).toBe(200); // the slots are free again
  });
});

describe("unexpected failures", () => {
  const failingWith = (error: unknown) => {
    const deps = {
      jobs: { list: () => Promise.reject(error) },
      identity: { allowDevelopmentIdentity: true },
    } as unknown as ApiDependencies; // only what listing touches
    const handlers = createApiHandlers(async () => deps);
    return handlers.jobs(httpRequest({ path: "/api/jobs", headers: { "x-dev-user": "u" } }), invocationContext()).then(decode);
  };

  it("answers 503 with Retry-After when a dependency throttles or is unreachable", async () => {
    for (const error of [{ code: 429, message: "throttled" }, Object.assign(new Error("connect ECONNREFUSED 10.0.0.4:443"), { code: "ECONNREFUSED" }), { statusCode: 503 }]) {
      const response = await failingWith(error);
      expect(response.status).toBe(503);
      expect(response.headers["retry-after"]).toBe("5");
      expect(response.text).not.toMatch(/10\.0\.0\.4|throttled/);
    }
  });

  it("answers 500 problem+json that reveals nothing for anything else", async () => {
    const response = await failingWith(new Error("secret internals at cosmos://acct"));
    expect(response.status).toBe(500);
    expect(response.headers["content-type"]).toBe("application/problem+json");
    expect(response.text).not.toContain("secret");
  });
});
