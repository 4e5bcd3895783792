/**
 * Warm-up at start: when the worker starts a service (an appStart hook), the service begins, in the
 * background, what its first invocation would otherwise pay for: loading its handlers and SDKs,
 * the first token and the first connections (Cosmos DB's account and container metadata, the
 * Service Bus sender link, the Web PubSub endpoint).
 *
 * - An instance started ahead of traffic (Flex Consumption's always-ready instances, a scale-out
 *   before the requests that caused it) serves its first invocation warm instead of paying for all
 *   of that inside it.
 * - An instance started by the invocation itself still pays, but the connections' round trips run
 *   while the rest loads, instead of one after the other.
 *
 * Nothing waits for it: the hook returns at once, and an invocation that arrives meanwhile awaits
 * the same creations (createdOnFirstUse), never a second copy. A failure is logged in one line and
 * forgotten: creations that failed are not cached, so the first invocation tries again and reports
 * its own error.
 */
import { performance } from "node:perf_hooks";

/** What a warm-up reports when it ends (the local host's log and Azure's worker log show it). */
export type WarmUpLog = (line: string) => void;

/** The start of the line a finished warm-up logs: the cold-start bench waits for it. */
export const WARMED_UP = "warmed up in";

export function warmUpInBackground(service: string, warmUp: () => Promise<void>, log: WarmUpLog = (line) => console.info(line)): void {
  // After the hook returns: the worker goes on starting (listeners, triggers) while this loads.
  setImmediate(() => {
    const started = performance.now();
    let attempt: Promise<void>;
    try {
      attempt = warmUp();
    } catch (error) {
      attempt = Promise.reject(error);
    }
    attempt.then(
      () => log(`${service}: ${WARMED_UP} ${Math.round(performance.now() - started)} ms (handlers loaded, connections open)`),
      (error: unknown) => log(`${service}: warm-up failed, the first invocation will try again: ${error instanceof Error ? error.message : String(error)}`),
    );
  });
}
