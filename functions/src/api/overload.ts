/**
 * Overload protection for one api instance: at most `limit` requests in progress at once; the next
 * one is answered at once with 503 and Retry-After instead of queueing behind the others until
 * every caller times out. Flex Consumption adds instances when the load stays high; this bounds
 * what one instance takes on meanwhile (and what a slow dependency can pile up).
 */
import type { Handler } from "./http.js";
import { HttpProblem } from "./problem.js";

/** Seconds a shed caller is asked to wait: a slot frees up as soon as any request finishes. */
export const OVERLOAD_RETRY_AFTER_SECONDS = 1;

export class ConcurrencyLimit {
  #active = 0;
  /** Requests answered 503 since the process started (for logs and tests). */
  shed = 0;

  get active(): number {
    return this.#active;
  }

  /** Runs `work` if fewer than `limit` requests are in progress; throws a 503 problem otherwise. */
  async run<T>(limit: number, work: () => Promise<T>): Promise<T> {
    if (this.#active >= limit) {
      this.shed += 1;
      throw new HttpProblem(503, `The api is at its limit of ${limit} requests in progress; try again shortly.`, {
        headers: { "retry-after": String(OVERLOAD_RETRY_AFTER_SECONDS) },
      });
    }
    this.#active += 1;
    try {
      return await work();
    } finally {
      this.#active -= 1;
    }
  }
}

/** Wraps a handler so it runs under the limit its dependencies name (MAX_CONCURRENT_REQUESTS). */
export function underLimit(limit: ConcurrencyLimit, maxConcurrentRequests: () => Promise<number>, handler: Handler): Handler {
  return async (request, context) => limit.run(await maxConcurrentRequests(), () => handler(request, context));
}
