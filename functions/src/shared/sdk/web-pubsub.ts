/** What the services use of @azure/web-pubsub, loaded on first use (README.md beside this file). */
export { WebPubSubServiceClient } from "@azure/web-pubsub";
