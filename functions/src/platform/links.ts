/**
 * Links: what a service may reach, declared once in the service registry. A link names a resource
 * of the app and an access level; from it the infrastructure derives both the settings the code
 * reads (the Azure service's endpoint, identity-based) and the role assignments at the narrowest
 * scope, so a setting without its grant, or a grant without its setting, cannot be written.
 *
 * Pulumi-free: the code, the infrastructure and the local platform read the same declarations.
 */
import type { AppResources } from "./resource-kinds";

/**
 * The Azure services a link reaches, with the app-setting name of their connection and the suffix
 * of its identity-based shape in Azure (`<Name>__<suffix>`, the form the Functions host and its
 * bindings read). One connection per service: every queue is in one namespace, every container in
 * one account.
 */
export const connectionFamilies = {
  serviceBus: { setting: "ServiceBus", suffix: "fullyQualifiedNamespace", example: "myns.servicebus.windows.net" },
  cosmos: { setting: "Cosmos", suffix: "accountEndpoint", example: "https://myacct.documents.azure.com:443/" },
  blob: { setting: "DataStorage", suffix: "blobServiceUri", example: "https://myacct.blob.core.windows.net" },
  webPubSub: { setting: "WebPubSub", suffix: "serviceUri", example: "https://mywps.webpubsub.azure.com" },
} as const;
export type ConnectionFamily = keyof typeof connectionFamilies;
export type ConnectionSettingName<F extends ConnectionFamily> = (typeof connectionFamilies)[F]["setting"];

/**
 * Each kind of link: the family it connects to and the access levels it offers.
 * - queue `send` / `receive` (receive includes the dead-letter sub-queue);
 * - cosmosContainer `read` / `readWrite`;
 * - blobContainer `read` / `readWrite` / `delegatedWrite` (hand out create-only user-delegation SAS
 *   URLs for the container: browsers upload straight to it);
 * - hub `publish` (send to groups and users, and generate client tokens).
 */
export const linkKinds = {
  queue: { family: "serviceBus", access: ["send", "receive"] },
  cosmosContainer: { family: "cosmos", access: ["read", "readWrite"] },
  blobContainer: { family: "blob", access: ["read", "readWrite", "delegatedWrite"] },
  hub: { family: "webPubSub", access: ["publish"] },
} as const;
export type LinkKind = keyof typeof linkKinds;
export type LinkAccess<K extends LinkKind> = (typeof linkKinds)[K]["access"][number];
export type FamilyOf<K extends LinkKind> = (typeof linkKinds)[K]["family"];

export interface LinkDeclaration<K extends LinkKind = LinkKind, N extends string = string, A extends LinkAccess<K> = LinkAccess<K>> {
  readonly kind: K;
  /** The resource's name, as declared in the app's resources. */
  readonly name: N;
  readonly access: A;
}

/** A link of any kind: narrowing on `kind` narrows `access` too. */
export type AnyLinkDeclaration = { [K in LinkKind]: LinkDeclaration<K> }[LinkKind];

/** The link builders for one app's resources: only names the app declared compile. */
export function linksTo<const R extends AppResources>(_resources: R) {
  return {
    queue: <N extends keyof R["queues"] & string, A extends LinkAccess<"queue">>(name: N, access: A): LinkDeclaration<"queue", N, A> => ({ kind: "queue", name, access }),
    cosmosContainer: <N extends keyof R["cosmos"]["containers"] & string, A extends LinkAccess<"cosmosContainer">>(name: N, access: A): LinkDeclaration<"cosmosContainer", N, A> => ({
      kind: "cosmosContainer",
      name,
      access,
    }),
    blobContainer: <N extends keyof R["blobContainers"] & string, A extends LinkAccess<"blobContainer">>(name: N, access: A): LinkDeclaration<"blobContainer", N, A> => ({
      kind: "blobContainer",
      name,
      access,
    }),
    hub: <N extends keyof R["hubs"] & string, A extends LinkAccess<"hub">>(name: N, access: A): LinkDeclaration<"hub", N, A> => ({ kind: "hub", name, access }),
  };
}

/** `queue jobs (send)`: how errors and reports name a link. */
export function describeLink(link: AnyLinkDeclaration): string {
  return `${link.kind} ${link.name} (${link.access})`;
}
