import * as pulumi from "@pulumi/pulumi";
import * as webpubsub from "@pulumi/azure-native/webpubsub";
import type { LinkDeclaration } from "../../functions/src/platform/links";
import type { HubOptions } from "../../functions/src/platform/resource-kinds";
import { assignRole, type Grantee } from "./grant";
import { GrantsOnce, type Link } from "./link";
import { transformed, type Transform } from "./transform";

export type WebPubSubSku = "Free_F1" | "Standard_S1" | "Premium_P1";

const tierOf: Record<WebPubSubSku, string> = { Free_F1: "Free", Standard_S1: "Standard", Premium_P1: "Premium" };

/**
 * Network rules that keep browsers' WebSocket connections public and take every other kind of
 * request (REST calls, server connections, live trace) off the internet, leaving them to private
 * endpoints. `defaultAction: Allow` with a public deny list, rather than `Deny` with an allow list
 * per private endpoint: those entries must name the endpoint connection, which Azure names itself
 * only once the endpoint exists. The AVM module's tests deploy this shape.
 */
export const privateServerAccessAcls = {
  defaultAction: "Allow",
  publicNetwork: { allow: ["ClientConnection"], deny: ["RESTAPI", "ServerConnection", "Trace"] },
} as const;

export interface RealtimeArgs {
  /** Resource group that holds the service. */
  readonly resourceGroupName: pulumi.Input<string>;
  /** Azure region, e.g. `eastus`. */
  readonly location: pulumi.Input<string>;
  /** Web PubSub resource name: 3-63 characters, globally unique. */
  readonly serviceName: pulumi.Input<string>;
  /**
   * SKU. Free_F1 costs nothing but has no SLA (20 connections, 20k messages/day); use Standard_S1 in production.
   * @default "Standard_S1"
   */
  readonly sku?: WebPubSubSku;
  /**
   * Units (Standard_S1 and Premium_P1; Free_F1 has exactly 1).
   * @default 1
   */
  readonly units?: number;
  /**
   * REST calls and server connections only through private endpoints; browsers' client
   * connections stay public (see {@link privateServerAccessAcls}). Not on Free_F1.
   * @default false
   */
  readonly privateServerAccess?: boolean;
  /**
   * The hubs, by name.
   * @example { jobs: {} }
   */
  readonly hubs: Readonly<Record<string, HubOptions>>;
  /**
   * Changes to the arguments of the service and of each hub (see transform.ts).
   * @default no changes
   */
  readonly transform?: {
    /** Changes to the Web PubSub service. @default unchanged */
    readonly service?: Transform<webpubsub.WebPubSubArgs>;
    /** Changes to every hub. @default unchanged */
    readonly hub?: Transform<webpubsub.WebPubSubHubArgs>;
  };
}

/**
 * Web PubSub pushes events to browsers. Access keys are off (tokens come from Entra-authorised
 * REST calls), anonymous connections to every hub are denied (a browser needs a client token from a
 * service), and hubs have no event handler: browsers only receive.
 */
export class Realtime extends pulumi.ComponentResource {
  readonly service: webpubsub.WebPubSub;
  readonly hubs: Readonly<Record<string, webpubsub.WebPubSubHub>>;
  /** `https://<name>.webpubsub.azure.com`. */
  readonly serviceUri: pulumi.Output<string>;
  private readonly name: string;
  private readonly grants = new GrantsOnce();

  constructor(name: string, args: RealtimeArgs, opts?: pulumi.ComponentResourceOptions) {
    super("platform:azure:Realtime", name, {}, opts);
    this.name = name;
    const sku = args.sku ?? "Standard_S1";
    this.service = new webpubsub.WebPubSub(
      ...transformed(
        args.transform?.service,
        `${name}-service`,
        {
          resourceName: args.serviceName,
          resourceGroupName: args.resourceGroupName,
          location: args.location,
          sku: { name: sku, tier: tierOf[sku], capacity: sku === "Free_F1" ? 1 : (args.units ?? 1) },
          disableLocalAuth: true,
          disableAadAuth: false,
          // Browsers connect over the public client endpoint, so public access stays on even when
          // the rest is private; the network rules narrow it to client connections.
          publicNetworkAccess: "Enabled",
          ...(args.privateServerAccess
            ? { networkACLs: { defaultAction: privateServerAccessAcls.defaultAction, publicNetwork: { allow: [...privateServerAccessAcls.publicNetwork.allow], deny: [...privateServerAccessAcls.publicNetwork.deny] } } }
            : {}),
          tls: { clientCertEnabled: false },
        },
        { parent: this },
      ),
    );
    this.serviceUri = pulumi.interpolate`https://${this.service.hostName}`;
    const hubs: Record<string, webpubsub.WebPubSubHub> = {};
    for (const hubName of Object.keys(args.hubs)) {
      hubs[hubName] = new webpubsub.WebPubSubHub(
        ...transformed(
          args.transform?.hub,
          `${name}-${hubName}-hub`,
          {
            hubName,
            resourceName: this.service.name,
            resourceGroupName: args.resourceGroupName,
            properties: { anonymousConnectPolicy: "Deny" },
          },
          { parent: this },
        ),
      );
    }
    this.hubs = hubs;
    this.registerOutputs({ serviceUri: this.serviceUri, hubs: Object.keys(hubs) });
  }

  /**
   * A hub linked for `publish`: send to groups and users, and generate client tokens (Web PubSub
   * Service Owner). Web PubSub documents the resource as its narrowest RBAC scope (no hub-level
   * assignments), so the scope is the service, and one assignment serves all of a grantee's hubs.
   */
  link(declaration: LinkDeclaration<"hub">): Link {
    if (!this.hubs[declaration.name]) throw new Error(`no hub "${declaration.name}" in ${this.name}; declared: ${Object.keys(this.hubs).join(", ")}`);
    return {
      declaration,
      family: "webPubSub",
      endpoint: this.serviceUri,
      grant: (grantee: Grantee) => [
        this.grants.get(grantee, "publish", () => assignRole(this, `${this.name}-${grantee.granteeName}-publish`, this.service.id, "webPubSubServiceOwner", grantee)),
      ],
    };
  }
}
