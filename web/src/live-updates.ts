/**
 * Live job updates over Web PubSub. The api's /api/negotiate hands out a client URL that puts the
 * connection in the caller's own group; the agent publishes a JobEvent there whenever a job
 * changes: the job's new state, applied to the job the page knows like a read of it (jobs.ts), so
 * a job the page follows costs no request per change. Pushes can be missed (the socket was down)
 * or repeated: the app re-reads from the api on every (re)connect, and reads a job it does not know.
 */
import { WebPubSubClient } from "@azure/web-pubsub-client";
import type { ApiClient } from "./api-client";
import type { JobEvent } from "./api-types";

/** What the page shows about the connection. */
export type ConnectionState = "connecting" | "connected" | "reconnecting" | "stopped";

export interface LiveUpdateHandlers {
  onState(state: ConnectionState): void;
  /** The connection (re)opened: anything may have changed meanwhile. */
  onConnected(): void;
  /** A job changed: its new state. */
  onJobEvent(event: JobEvent): void;
}

export interface LiveUpdates {
  /** Connects again after the client gave up (its default is to retry forever). */
  restart(): void;
  stop(): void;
}

const isRecord = (value: unknown): value is Record<string, unknown> => typeof value === "object" && value !== null && !Array.isArray(value);
const isTime = (value: unknown) => typeof value === "string" && !Number.isNaN(Date.parse(value));
const isCount = (value: unknown) => typeof value === "number" && Number.isInteger(value) && value >= 0;

/**
 * A JobEvent (functions/src/shared/job.ts) checked for what the page uses of it; anything else in
 * the group, or an event of a shape this page does not know, is undefined (and ignored).
 */
export function jobEventOf(data: unknown): JobEvent | undefined {
  if (!isRecord(data)) return undefined;
  const { type, status, jobId, updatedAt, startedAt, finishedAt, attempts } = data;
  if (typeof jobId !== "string" || jobId === "" || !isTime(updatedAt) || !isCount(attempts)) return undefined;
  if ((startedAt !== undefined && !isTime(startedAt)) || (finishedAt !== undefined && !isTime(finishedAt))) return undefined;
  if (type === "job.running" && status === "running") return data as JobEvent;
  if (type === "job.succeeded" && status === "succeeded" && isRecord(data.result)) return data as JobEvent;
  if (type === "job.failed" && status === "failed" && isRecord(data.error) && typeof data.error.message === "string") return data as JobEvent;
  return undefined;
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
    const jobEvent = jobEventOf(event.message.data);
    if (jobEvent) handlers.onJobEvent(jobEvent);
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
