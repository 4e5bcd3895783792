/**
 * Realtime negotiation: a Web PubSub client URL for the caller that joins the caller's own group on
 * connect and may re-join (after a reconnect) only that group. No send permission: browsers only
 * listen; the services publish.
 */
import type { WebPubSubServiceClient } from "@azure/web-pubsub";
import { userGroup } from "../shared/job-events.js";

export interface RealtimeAccess {
  readonly url: string;
  readonly group: string;
  readonly expiresAt: Date;
}

export interface Realtime {
  clientAccess(userId: string, now?: Date): Promise<RealtimeAccess>;
  ping(): Promise<void>;
}

/** Lifetime of a client access token; the client negotiates again after it. */
export const CLIENT_TOKEN_MINUTES = 60;

export class WebPubSubRealtime implements Realtime {
  constructor(private readonly client: WebPubSubServiceClient) {}

  async clientAccess(userId: string, now: Date = new Date()): Promise<RealtimeAccess> {
    const group = userGroup(userId);
    const token = await this.client.getClientAccessToken({
      userId,
      groups: [group],
      roles: [`webpubsub.joinLeaveGroup.${group}`],
      expirationTimeInMinutes: CLIENT_TOKEN_MINUTES,
    });
    return { url: token.url, group, expiresAt: new Date(now.getTime() + CLIENT_TOKEN_MINUTES * 60_000) };
  }

  async ping(): Promise<void> {
    await this.client.groupExists(userGroup("health-probe"));
  }
}
