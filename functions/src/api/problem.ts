/**
 * RFC 9457 problem details for every 4xx/5xx answer of the api. Handlers throw {@link HttpProblem};
 * the HTTP layer turns it into an `application/problem+json` response. Validation problems list each
 * bad field as a JSON Pointer into the request (`errors[].pointer`), as RFC 9457 section 3 shows.
 */
import type { HttpResponseInit } from "@azure/functions";
import { z } from "zod";

export const PROBLEM_CONTENT_TYPE = "application/problem+json";

export const ProblemFieldError = z
  .strictObject({
    pointer: z.string().meta({ description: "JSON Pointer (RFC 6901) to the bad member: #/text; query and header problems use #/query/<name>, #/headers/<name>" }),
    detail: z.string(),
  })
  .meta({ id: "ProblemFieldError" });
export type ProblemFieldError = z.infer<typeof ProblemFieldError>;

export const ProblemDetails = z
  .object({
    type: z.string().meta({ description: "about:blank: the title is the HTTP status phrase" }),
    title: z.string(),
    status: z.number().int(),
    detail: z.string(),
    instance: z.string().optional(),
    errors: z.array(ProblemFieldError).optional(),
  })
  .meta({ id: "ProblemDetails", description: "RFC 9457 problem details" });
export type ProblemDetails = z.infer<typeof ProblemDetails>;

/** HTTP status phrases used as problem titles (the API gateway uses the same for its own errors). */
export const statusTitles: Readonly<Record<number, string>> = {
  400: "Bad Request",
  401: "Unauthorized",
  403: "Forbidden",
  404: "Not Found",
  405: "Method Not Allowed",
  406: "Not Acceptable",
  409: "Conflict",
  413: "Content Too Large",
  415: "Unsupported Media Type",
  422: "Unprocessable Content",
  429: "Too Many Requests",
  500: "Internal Server Error",
  503: "Service Unavailable",
};

/** An HTTP error answer; thrown anywhere below a handler, rendered by {@link problemResponse}. */
export class HttpProblem extends Error {
  constructor(
    readonly status: number,
    readonly detail: string,
    readonly extras: { errors?: ProblemFieldError[]; headers?: Record<string, string> } = {},
  ) {
    super(detail);
    this.name = "HttpProblem";
  }
}

export function problemResponse(problem: HttpProblem, instance?: string): HttpResponseInit {
  const body: ProblemDetails = {
    type: "about:blank",
    title: statusTitles[problem.status] ?? "Error",
    status: problem.status,
    detail: problem.detail,
  };
  if (instance) body.instance = instance;
  if (problem.extras.errors?.length) body.errors = problem.extras.errors;
  return {
    status: problem.status,
    headers: { "content-type": PROBLEM_CONTENT_TYPE, "cache-control": "no-store", "x-content-type-options": "nosniff", ...problem.extras.headers },
    body: JSON.stringify(body),
  };
}

/** JSON Pointer (RFC 6901) for a zod issue path under `root` ("" for a body, "/query" ...). */
export function pointerFor(path: readonly PropertyKey[], root = ""): string {
  const escaped = path.map((segment) => String(segment).replace(/~/g, "~0").replace(/\//g, "~1"));
  return `#${root}${escaped.length > 0 ? `/${escaped.join("/")}` : ""}`;
}

/** The problem for a failed zod validation: 422 naming every bad field. */
export function validationProblem(error: z.ZodError, root = "", status = 422): HttpProblem {
  const errors = error.issues.flatMap((issue): ProblemFieldError[] =>
    // Point at each unknown member itself, not at the object holding it.
    issue.code === "unrecognized_keys"
      ? issue.keys.map((key) => ({ pointer: pointerFor([...issue.path, key], root), detail: "unknown field" }))
      : [{ pointer: pointerFor(issue.path, root), detail: issue.message }],
  );
  const fields = [...new Set(errors.map((e) => e.pointer))].join(", ");
  return new HttpProblem(status, `The request is invalid: ${fields}`, { errors });
}
