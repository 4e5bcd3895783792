/**
 * Live job updates over Web PubSub. The api's /api/negotiate hands out a client URL that puts the
 * connection in the caller's own group; both services publish a JobEvent there whenever a job
 * changes. Pushes are hints, never the truth: the app re-reads from the api on every (re)connect,
 * so an update sent while the socket was down is not lost, and re-reads the one job an event names.
 */
import { WebPubSubClient } from "@azure/web-pubsub-client";
import type { ApiClient } from "./api-client";

/** What the page shows about the connection. */
export type ConnectionState = "connecting" | "connected" | "reconnecting" | "stopped";

export interface LiveUpdateHandlers {
  onState(state: ConnectionState): void;
  /** The connection (re)opened: anything may have changed meanwhile. */
  onConnected(): void;
  /** A job changed (re-read it). */
  onJobChanged(jobId: string): void;
}

export interface LiveUpdates {
  /** Connects again after the client gave up (its default is to retry forever). */
  restart(): void;
  stop(): void;
}

/** The job id of a JobEvent; anything else in the group is ignored. */
export function jobIdOf(data: unknown): string | undefined {
  if (typeof data !== "object" || data === null) return undefined;
  const { jobId, type } = data as Record<string, unknown>;
  return typeof jobId === "string" && typeof type === "string" && type.startsWith("job.") ? jobId : undefined;
}

export function connectLiveUpdates(api: ApiClient, handlers: LiveUpdateHandlers): LiveUpdates {
  // Each (re)connection negotiates anew: a fresh token for the same caller and group.
  const client = new WebPubSubClient({ getClientAccessUrl: async () => (await api.negotiate()).url });
  let stopped = false;
  client.on("connected", () => {
    handlers.onState("connected");
    handlers.onConnected();
  });
  client.on("disconnected", () => {
    if (!stopped) handlers.onState("reconnecting");
  });
  client.on("stopped", () => handlers.onState("stopped"));
  client.on("group-message", (event) => {
    const jobId = jobIdOf(event.message.data);
    if (jobId) handlers.onJobChanged(jobId);
  });
  const start = () => {
    handlers.onState("connecting");
    // A failed first connection ends in "stopped", which the page shows with a way to retry.
    client.start().catch(() => handlers.onState("stopped"));
  };
  start();
  return {
    restart: () => {
      if (!stopped) start();
    },
    stop: () => {
      stopped = true;
      client.stop();
    },
  };
}
