/**
 * A TCP proxy that makes a dependency fail the way networks do, for the fault-injection suite: the
 * services connect to it instead of an emulator (local/platform.ts `interpose`), and the test
 * switches its mode while jobs are in flight.
 *
 * - `pass`: bytes flow both ways untouched.
 * - `refuse`: the port stops listening (new connections get ECONNREFUSED) and open connections are
 *   reset: the dependency is down.
 * - `reset`: connections are accepted and reset at once, open ones too (ECONNRESET): a dependency
 *   that crashes on every request.
 * - `delay`: every chunk, each way, waits `delayMs` first: a slow network or a slow dependency.
 *
 * TLS passes through untouched (Cosmos is HTTPS): the proxy never reads the bytes.
 */
import { createServer, connect, type Server, type Socket } from "node:net";

export type FaultMode = "pass" | "refuse" | "reset" | "delay";

export interface FaultProxy {
  readonly port: number;
  readonly mode: FaultMode;
  /** Connections accepted in each mode since the proxy started. */
  readonly accepted: Readonly<Record<FaultMode, number>>;
  /** Switches the mode; `refuse` resolves once the port no longer listens, `pass` once it listens again. */
  set(mode: FaultMode, options?: { delayMs?: number }): Promise<void>;
  close(): Promise<void>;
}

export async function startFaultProxy(target: { host?: string; port: number }): Promise<FaultProxy> {
  const host = target.host ?? "127.0.0.1";
  let mode: FaultMode = "pass";
  let delayMs = 0;
  const accepted: Record<FaultMode, number> = { pass: 0, refuse: 0, reset: 0, delay: 0 };
  const open = new Set<Socket>();

  const relay = (from: Socket, to: Socket) => {
    // Chunks (and the end after them) go out in order; in delay mode each waits its turn plus delayMs.
    let queue = Promise.resolve();
    const inOrder = (step: () => void) => {
      const wait = mode === "delay" ? delayMs : 0;
      queue = queue.then(() => (wait > 0 ? new Promise<void>((resolve) => setTimeout(resolve, wait)) : undefined)).then(() => {
        if (!to.destroyed) step();
      });
    };
    from.on("data", (chunk) => inOrder(() => to.write(chunk)));
    from.on("end", () => inOrder(() => to.end()));
    from.on("error", () => to.destroy());
    from.on("close", () => void queue.then(() => to.destroy()));
  };

  const onConnection = (client: Socket) => {
    accepted[mode] += 1;
    if (mode === "reset" || mode === "refuse") {
      client.resetAndDestroy();
      return;
    }
    const upstream = connect({ host, port: target.port });
    for (const socket of [client, upstream]) {
      open.add(socket);
      socket.once("close", () => open.delete(socket));
    }
    relay(client, upstream);
    relay(upstream, client);
  };

  let server: Server = createServer(onConnection);
  const listen = (port: number) =>
    new Promise<number>((resolve, reject) => {
      server.once("error", reject);
      server.listen(port, "127.0.0.1", () => {
        server.off("error", reject);
        resolve((server.address() as { port: number }).port);
      });
    });
  const port = await listen(0);
  let listening = true;
  const resetOpen = () => {
    for (const socket of open) socket.resetAndDestroy();
    open.clear();
  };

  return {
    port,
    get mode() {
      return mode;
    },
    accepted,
    async set(next, options = {}) {
      mode = next;
      delayMs = options.delayMs ?? delayMs;
      if (next === "refuse" || next === "reset") resetOpen();
      if (next === "refuse" && listening) {
        listening = false;
        await new Promise<void>((resolve) => server.close(() => resolve()));
      } else if (next !== "refuse" && !listening) {
        server = createServer(onConnection);
        await listen(port);
        listening = true;
      }
    },
    async close() {
      resetOpen();
      if (listening) await new Promise<void>((resolve) => server.close(() => resolve()));
      listening = false;
    },
  };
}
