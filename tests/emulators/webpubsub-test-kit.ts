/**
 * Shared pieces of the Web PubSub emulator tests: real SDK clients against a running emulator,
 * and a recorder of what each client receives.
 */
import { createServer as createNetServer, connect as connectTcp, type AddressInfo, type Socket } from "node:net";
import { WebPubSubServiceClient, type GenerateClientTokenOptions } from "@azure/web-pubsub";
import {
  WebPubSubClient,
  type OnDisconnectedArgs,
  type OnGroupDataMessageArgs,
  type OnServerDataMessageArgs,
  type WebPubSubClientOptions,
} from "@azure/web-pubsub-client";

export function serviceClient(connectionString: string, hub: string): WebPubSubServiceClient {
  return new WebPubSubServiceClient(connectionString, hub, { allowInsecureConnection: true });
}

/** A started client and everything it has received, in order. */
export interface RecordingClient {
  client: WebPubSubClient;
  connectionId: string;
  userId: string | undefined;
  groupMessages: OnGroupDataMessageArgs["message"][];
  serverMessages: OnServerDataMessageArgs["message"][];
  disconnects: OnDisconnectedArgs[];
  connectedCount: () => number;
}

const started: { client: WebPubSubClient; stopped: Promise<void> }[] = [];

export async function connectClient(
  service: WebPubSubServiceClient,
  token: GenerateClientTokenOptions = {},
  options: WebPubSubClientOptions = {},
): Promise<RecordingClient> {
  const client = new WebPubSubClient(
    { getClientAccessUrl: async () => (await service.getClientAccessToken(token)).url },
    { keepAliveIntervalInMs: 0, keepAliveTimeoutInMs: 0, ...options },
  );
  return startRecording(client);
}

export async function startRecording(client: WebPubSubClient): Promise<RecordingClient> {
  let connected = 0;
  let identity: { connectionId: string; userId: string | undefined } | undefined;
  const recording = {
    client,
    groupMessages: [] as RecordingClient["groupMessages"],
    serverMessages: [] as RecordingClient["serverMessages"],
    disconnects: [] as OnDisconnectedArgs[],
    connectedCount: () => connected,
  };
  client.on("connected", (e) => {
    connected++;
    identity = { connectionId: e.connectionId, userId: e.userId };
  });
  client.on("group-message", (e) => recording.groupMessages.push(e.message));
  client.on("server-message", (e) => recording.serverMessages.push(e.message));
  client.on("disconnected", (e) => recording.disconnects.push(e));
  started.push({ client, stopped: new Promise<void>((resolve) => client.on("stopped", () => resolve())) });
  await client.start();
  await waitFor(() => identity !== undefined, "the connected message");
  return { ...recording, connectionId: identity!.connectionId, userId: identity!.userId };
}

/** Stops every client started through this kit and waits until they have (call in afterEach). */
export async function stopAllClients(): Promise<void> {
  const clients = started.splice(0);
  for (const { client } of clients) client.stop();
  // A client that failed to start, or had already stopped, emits nothing more: bound the wait.
  const bound = new Promise<void>((resolve) => setTimeout(resolve, 2_000).unref());
  await Promise.race([Promise.all(clients.map((c) => c.stopped)), bound]);
}

/** Polls until `condition` holds; fails naming what was awaited. */
export async function waitFor(condition: () => boolean | Promise<boolean>, what: string, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

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
