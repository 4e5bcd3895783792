/**
 * Shared pieces of the Web PubSub emulator tests: real SDK clients against a running emulator,
 * and a recorder of what each client receives.
 */
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

const started: WebPubSubClient[] = [];

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
  started.push(client);
  await client.start();
  await waitFor(() => identity !== undefined, "the connected message");
  return { ...recording, connectionId: identity!.connectionId, userId: identity!.userId };
}

/** Stops every client started through this kit (call in afterAll/afterEach). */
export function stopAllClients(): void {
  for (const client of started.splice(0)) client.stop();
}

/** Polls until `condition` holds; fails naming what was awaited. */
export async function waitFor(condition: () => boolean, what: string, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** Waits a little and returns; for asserting that something did NOT arrive. */
export const settle = (ms = 150) => new Promise((resolve) => setTimeout(resolve, ms));
