/**
 * The app's side of the api contract. Types come from the api's zod schemas (web/src/api-types.ts,
 * checked by `npm run typecheck`); the routes the client calls are checked here against the
 * OpenAPI document the api serves, and the client's handling of problem answers against a server.
 */
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildOpenApiDocument } from "../../functions/src/api/openapi";
import { ApiClient, ApiProblem, apiRoutes, IDEMPOTENCY_KEY_HEADER } from "../../web/src/api-client";

describe("the routes the web app calls", () => {
  const document = buildOpenApiDocument();

  it.each(Object.entries(apiRoutes))("%s is an operation of the api's OpenAPI document", (_name, route) => {
    const operations = (document.paths ?? {})[route.path] as Record<string, unknown> | undefined;
    expect(operations, `the api has no path ${route.path}`).toBeDefined();
    expect(operations![route.method], `the api has no ${route.method.toUpperCase()} ${route.path}`).toBeDefined();
  });

  it("sends the idempotency header the api documents for job submissions", () => {
    const post = (document.paths ?? {})[apiRoutes.createJob.path]?.post as { parameters?: { name: string; in: string }[] };
    expect(post.parameters).toContainEqual(expect.objectContaining({ name: IDEMPOTENCY_KEY_HEADER, in: "header" }));
  });
});

describe("ApiClient against a server", () => {
  let server: Server;
  let base: string;
  const seen: { method?: string; url?: string; headers: Record<string, unknown> }[] = [];
  beforeAll(async () => {
    server = createServer((req, res) => {
      seen.push({ method: req.method, url: req.url, headers: req.headers });
      if (req.url === "/api/jobs" && req.method === "POST") {
        res.writeHead(422, { "content-type": "application/problem+json" }).end(
          JSON.stringify({ type: "about:blank", title: "Unprocessable Content", status: 422, detail: "The request is invalid: #/text", errors: [{ pointer: "#/text", detail: "Too big" }] }),
        );
      } else if (req.url === "/api/uploads" && req.method === "POST") {
        res.writeHead(429, { "content-type": "application/problem+json", "retry-after": "1200" }).end(
          JSON.stringify({ type: "about:blank", title: "Too Many Requests", status: 429, detail: "You have asked for 60 upload URLs in the last hour, the most allowed; try again in 20 minutes." }),
        );
      } else if (req.url?.startsWith("/api/jobs?")) {
        res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ items: [] }));
      } else {
        // What a gateway in front of the api may answer: not a problem document.
        res.writeHead(502, "Bad Gateway", { "content-type": "text/html" }).end("<html>bad gateway</html>");
      }
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  const client = () => new ApiClient(base, async () => ({ "x-dev-user": "alice" }));

  it("sends the caller's headers, the idempotency key and the query, and reads the answer", async () => {
    await expect(client().listJobs({ pageSize: "5", continuationToken: "abc" })).resolves.toEqual({ items: [] });
    expect(seen.at(-1)).toMatchObject({ method: "GET", url: "/api/jobs?pageSize=5&continuationToken=abc", headers: { "x-dev-user": "alice" } });
    await client()
      .createJob({ kind: "text", text: "x" }, "key-1")
      .catch(() => undefined);
    expect(seen.at(-1)!.headers).toMatchObject({ [IDEMPOTENCY_KEY_HEADER]: "key-1", "content-type": "application/json" });
  });

  it("turns a problem+json answer into an ApiProblem with the api's reasons per field", async () => {
    const error = await client()
      .createJob({ kind: "text", text: "x" }, "key-2")
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ApiProblem);
    const problem = error as ApiProblem;
    expect(problem.status).toBe(422);
    expect(problem.reasonsFor(["#/text"])).toEqual(["Too big"]);
    expect(problem.reasonsFor(["#/blobName"])).toEqual([]);
  });

  it("shows a quota refusal (429) in the api's words, which say when to try again", async () => {
    const error = await client()
      .createUpload({ size: 10 })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ApiProblem);
    expect((error as ApiProblem).status).toBe(429);
    // No field is at fault: the page shows the detail (app.ts messageFor), which says when to retry.
    expect((error as ApiProblem).reasonsFor(["#/size"])).toEqual([]);
    expect((error as ApiProblem).message).toBe("You have asked for 60 upload URLs in the last hour, the most allowed; try again in 20 minutes.");
  });

  it("words an answer that is not a problem document, and an api that cannot be reached", async () => {
    const gateway = await client()
      .getJob("x")
      .catch((e: unknown) => e);
    expect((gateway as ApiProblem).problem).toMatchObject({ status: 502, detail: "The api answered 502 Bad Gateway." });
    const unreachable = await new ApiClient("http://127.0.0.1:1", async () => ({}))
      .negotiate()
      .catch((e: unknown) => e);
    expect((unreachable as ApiProblem).problem).toMatchObject({ status: 0, detail: expect.stringMatching(/cannot be reached/) });
  });
});
