import * as pulumi from "@pulumi/pulumi";
import * as webpubsub from "@pulumi/azure-native/webpubsub";
import { assignRole, type Grantee } from "./grant";

export type WebPubSubSku = "Free_F1" | "Standard_S1";

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
   * Units (Standard_S1 only; Free_F1 has exactly 1).
   * @default 1
   */
  readonly units?: number;
  /**
   * Hub the job events go through.
   * @default "jobs"
   */
  readonly hubName?: string;
}

/**
 * Web PubSub pushes job events to browsers. Access keys are off (tokens come from Entra-authorised
 * REST calls), anonymous connections to the hub are denied (a browser needs a client token from the
 * api), and the hub has no event handler: browsers only receive.
 */
export class Realtime extends pulumi.ComponentResource {
  readonly service: webpubsub.WebPubSub;
  readonly hub: webpubsub.WebPubSubHub;
  /** `https://<name>.webpubsub.azure.com`. */
  readonly serviceUri: pulumi.Output<string>;
  readonly hubName: string;
  private readonly name: string;

  constructor(name: string, args: RealtimeArgs, opts?: pulumi.ComponentResourceOptions) {
    super("platform:azure:Realtime", name, {}, opts);
    this.name = name;
    this.hubName = args.hubName ?? "jobs";
    const sku = args.sku ?? "Standard_S1";
    this.service = new webpubsub.WebPubSub(
      `${name}-service`,
      {
        resourceName: args.serviceName,
        resourceGroupName: args.resourceGroupName,
        location: args.location,
        sku: { name: sku, tier: sku === "Free_F1" ? "Free" : "Standard", capacity: sku === "Free_F1" ? 1 : (args.units ?? 1) },
        disableLocalAuth: true,
        disableAadAuth: false,
        publicNetworkAccess: "Enabled",
        tls: { clientCertEnabled: false },
      },
      { parent: this },
    );
    this.serviceUri = pulumi.interpolate`https://${this.service.hostName}`;
    this.hub = new webpubsub.WebPubSubHub(
      `${name}-hub`,
      {
        hubName: this.hubName,
        resourceName: this.service.name,
        resourceGroupName: args.resourceGroupName,
        properties: { anonymousConnectPolicy: "Deny" },
      },
      { parent: this },
    );
    this.registerOutputs({ serviceUri: this.serviceUri, hubName: this.hubName });
  }

  /**
   * Publish to groups and generate client tokens (Web PubSub Service Owner). Web PubSub documents
   * the resource as its narrowest RBAC scope (no hub-level assignments), so the scope is the service.
   */
  grantPublish(grantee: Grantee) {
    return assignRole(this, `${this.name}-${grantee.granteeName}-publish`, this.service.id, "webPubSubServiceOwner", grantee);
  }
}
