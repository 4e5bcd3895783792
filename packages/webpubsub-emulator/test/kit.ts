/**
 * Pieces of this package's own tests: a marker that proves what did NOT arrive, a short pause for
 * the few server-side events that have nothing to order them by, and a TCP proxy to cut networks.
 */
import { randomUUID } from "node:crypto";
import { createServer as createNetServer, connect as connectTcp, type AddressInfo, type Socket } from "node:net";
import type { WebPubSubServiceClient } from "@azure/web-pubsub";
import { waitFor, type RecordingClient } from "../src/testing.js";

/** Waits a little and returns; only for server-side events with no ordering to wait on. */
export const settle = (ms = 150) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Resolves once everything sent to these clients before the call has reached them: a marker is
 * sent to each connection after it, and a connection's messages arrive in order, so when the
 * marker is in, anything sent earlier that it did not get was never sent to it. The markers are
 * taken out of the recordings again.
 */
export async function everythingSentHasArrived(service: WebPubSubServiceClient, ...clients: RecordingClient[]): Promise<void> {
  for (const client of clients) {
    const marker = `marker ${randomUUID()}`;
    await service.sendToConnection(client.connectionId, marker, { contentType: "text/plain" });
    await waitFor(() => client.serverMessages.some((m) => m.data === marker), `the marker to ${client.connectionId}`);
    client.serverMessages.splice(
      client.serverMessages.findIndex((m) => m.data === marker),
      1,
    );
  }
}

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
