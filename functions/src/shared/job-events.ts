/**
 * Job events pushed to browsers through Web PubSub, behind a thin interface. Each user has one
 * group; the api's negotiate endpoint lets a connection join only its owner's group, and both
 * services publish only to the job owner's group. Pushes are hints (at most once): clients re-read
 * the job from the api after a reconnect.
 */
import { createHash } from "node:crypto";
import type { WebPubSubServiceClient } from "@azure/web-pubsub";
import type { JobEvent } from "./job.js";

/**
 * The Web PubSub group of a user. Derived by hashing, so any user id (which may hold characters a
 * group name should not, or be long) maps to a short, fixed-alphabet name, and one user's group
 * name never reveals another's id.
 */
export function userGroup(userId: string): string {
  return `user.${createHash("sha256").update(userId).digest("hex").slice(0, 40)}`;
}

export interface JobEvents {
  /** Sends the event to every connection in the owner's group. */
  publish(userId: string, event: JobEvent): Promise<void>;
  /** Cheap reachability probe for health checks. */
  ping(): Promise<void>;
}

export class WebPubSubJobEvents implements JobEvents {
  constructor(private readonly client: WebPubSubServiceClient) {}

  async publish(userId: string, event: JobEvent): Promise<void> {
    await this.client.group(userGroup(userId)).sendToAll(event);
  }

  async ping(): Promise<void> {
    // HEAD on a group: an authenticated round trip that changes nothing.
    await this.client.groupExists(userGroup("health-probe"));
  }
}
