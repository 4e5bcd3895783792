/**
 * How the benches that hold Web PubSub clients end: run `main`, then exit at once, 0 when it
 * resolved, 1 (with its message) when it threw. @azure/web-pubsub-client 1.1's keep-alive loops
 * sleep (up to 40 s) in a delay that stop() cannot abort, and would hold the process open after
 * everything else stopped.
 */
export function exitWhenDone(main: () => Promise<void>): void {
  main().then(
    () => process.exit(0),
    (error: unknown) => {
      console.error(error instanceof Error ? error.message : error);
      process.exit(1);
    },
  );
}
