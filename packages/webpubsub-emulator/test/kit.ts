/** Pieces of this package's own tests: a pause for negative assertions and a TCP proxy to cut networks. */
import { createServer as createNetServer, connect as connectTcp, type AddressInfo, type Socket } from "node:net";

/** Waits a little and returns; for asserting that something did NOT arrive. */
export const settle = (ms = 150) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * A TCP proxy in front of the emulator, to cut a client's network the way a real outage does:
 * both sockets die with no WebSocket close frame. While blocked it refuses new connections.
 */
export interface TcpProxy {
  port: number;
  /** Destroys every proxied connection and refuses new ones until {@link TcpProxy.unblock}. */
  cutAndBlock(): void;
  unblock(): void;
  close(): Promise<void>;
}

export async function startTcpProxy(targetPort: number): Promise<TcpProxy> {
  const pairs = new Set<[Socket, Socket]>();
  let blocked = false;
  const server = createNetServer((inbound) => {
    if (blocked) return void inbound.destroy();
    const outbound = connectTcp(targetPort, "127.0.0.1");
    const pair: [Socket, Socket] = [inbound, outbound];
    pairs.add(pair);
    inbound.pipe(outbound).pipe(inbound);
    const drop = () => {
      pairs.delete(pair);
      inbound.destroy();
      outbound.destroy();
    };
    inbound.on("error", drop).on("close", drop);
    outbound.on("error", drop).on("close", drop);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const cutAll = () => {
    for (const [a, b] of pairs) {
      a.destroy();
      b.destroy();
    }
    pairs.clear();
  };
  return {
    port: (server.address() as AddressInfo).port,
    cutAndBlock() {
      blocked = true;
      cutAll();
    },
    unblock() {
      blocked = false;
    },
    close: () =>
      new Promise<void>((resolve) => {
        cutAll();
        server.close(() => resolve());
      }),
  };
}
