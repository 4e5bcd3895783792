/**
 * For tests of code that uses Web PubSub (`@platform-tools/webpubsub-emulator/testing`): real SDK
 * clients against a running emulator, each recording what it receives, and a wait for a condition.
 * Needs @azure/web-pubsub and @azure/web-pubsub-client, which the test's project installs.
 */
import { WebPubSubServiceClient, type GenerateClientTokenOptions } from "@azure/web-pubsub";
import {
  WebPubSubClient,
  type OnDisconnectedArgs,
  type OnGroupDataMessageArgs,
  type OnServerDataMessageArgs,
  type WebPubSubClientOptions,
} from "@azure/web-pubsub-client";

/** The server SDK for a plain-http emulator (over https no flag is needed). */
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
