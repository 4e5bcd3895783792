import * as pulumi from "@pulumi/pulumi";
import * as network from "@pulumi/azure-native/network";
import * as privatedns from "@pulumi/azure-native/privatedns";
import { planSubnets, privateLinkServices, type PrivateLinkService, type SubnetPlan } from "../private-networking";
import { transformed, type Transform } from "./transform";

/** A resource that gets a private endpoint. */
export interface PrivateEndpointTarget {
  /** Short name in the endpoint's resource names, e.g. `host-blob`, `cosmos`. */
  readonly key: string;
  /** The endpoint's Azure name. */
  readonly endpointName: pulumi.Input<string>;
  /** Resource ID of the storage account, Cosmos account, namespace or Web PubSub service. */
  readonly resourceId: pulumi.Input<string>;
  /** Which of its private-link services the endpoint connects to (decides group ID and DNS zone). */
  readonly service: PrivateLinkService;
}

export interface NetworkArgs {
  /** Resource group that holds the network, the endpoints and the private DNS zones. */
  readonly resourceGroupName: pulumi.Input<string>;
  /** Azure region of the network and the endpoints (the Function Apps' region). */
  readonly location: pulumi.Input<string>;
  /** Virtual network name. */
  readonly virtualNetworkName: pulumi.Input<string>;
  /**
   * Address space, cut into a /26 for private endpoints and a /27 per app (see planSubnets).
   * @default "10.0.0.0/16"
   */
  readonly addressSpace?: string;
  /**
   * The Function Apps that get an integration subnet, one each, delegated to
   * Microsoft.App/environments (Flex Consumption), in a stable order.
   * @example ["api", "agent"]
   */
  readonly apps: readonly string[];
  /**
   * The private endpoints, each with its DNS zone group. One private DNS zone per service kind,
   * linked to the network, serves every endpoint of that kind.
   * @default []
   */
  readonly privateEndpoints?: readonly PrivateEndpointTarget[];
  /**
   * Changes to the arguments of the network's children (see transform.ts).
   * @default no changes
   */
  readonly transform?: {
    /** Changes to the virtual network. @default unchanged */
    readonly virtualNetwork?: Transform<network.VirtualNetworkArgs>;
    /** Changes to every subnet. @default unchanged */
    readonly subnet?: Transform<network.SubnetArgs>;
    /** Changes to every private endpoint. @default unchanged */
    readonly privateEndpoint?: Transform<network.PrivateEndpointArgs>;
    /** Changes to every private DNS zone. @default unchanged */
    readonly privateDnsZone?: Transform<privatedns.PrivateZoneArgs>;
    /** Changes to every zone's link to the network. @default unchanged */
    readonly privateDnsZoneLink?: Transform<privatedns.VirtualNetworkLinkArgs>;
    /** Changes to every endpoint's DNS zone group. @default unchanged */
    readonly dnsZoneGroup?: Transform<network.PrivateDnsZoneGroupArgs>;
  };
}

/**
 * A virtual network for Flex Consumption apps and the private endpoints of the services they use:
 *
 * - one integration subnet per app, delegated to `Microsoft.App/environments` (what Flex requires;
 *   Premium and Dedicated plans use Microsoft.Web/serverFarms), sized /27 as Microsoft recommends
 *   per app; the apps send all their outbound traffic through it (Flex needs no "route all");
 * - a subnet for private endpoints, and per target an endpoint plus a DNS zone group, so Azure
 *   writes and removes the endpoint's A record in the private DNS zone itself (Microsoft's Cosmos
 *   quickstart omits the zone group, leaving the account's name resolving to its public address);
 * - one private DNS zone per service kind, linked to the network, so the apps resolve the
 *   services' usual host names to private addresses and need no setting changed.
 *
 * Subnets are separate resources created one after another: Azure refuses concurrent changes to
 * one network ("AnotherOperationInProgress"; the AVM virtual-network module creates subnets with
 * batchSize 1 for the same reason), and a network must not mix inline and separate subnets.
 */
export class Network extends pulumi.ComponentResource {
  readonly virtualNetwork: network.VirtualNetwork;
  readonly plan: SubnetPlan;
  readonly privateEndpointSubnet: network.Subnet;
  /** Each app's integration subnet, keyed by app. */
  readonly appSubnets: Readonly<Record<string, network.Subnet>>;
  /** One zone per private-link service in use, keyed by service. */
  readonly privateDnsZones: Readonly<Partial<Record<PrivateLinkService, privatedns.PrivateZone>>>;
  readonly privateEndpoints: Readonly<Record<string, network.PrivateEndpoint>>;
  readonly dnsZoneGroups: Readonly<Record<string, network.PrivateDnsZoneGroup>>;
  /**
   * What an app must wait for before its first start: every endpoint with its DNS record, and the
   * zones' links to the network. Without them the app resolves its (private) storage to the public
   * address, is refused, and does not start.
   */
  readonly ready: pulumi.Resource[];

  constructor(name: string, args: NetworkArgs, opts?: pulumi.ComponentResourceOptions) {
    super("platform:azure:Network", name, {}, opts);
    const placement = { resourceGroupName: args.resourceGroupName, location: args.location };
    this.plan = planSubnets(args.addressSpace ?? "10.0.0.0/16", args.apps);

    this.virtualNetwork = new network.VirtualNetwork(
      ...transformed(
        args.transform?.virtualNetwork,
        `${name}-vnet`,
        { ...placement, virtualNetworkName: args.virtualNetworkName, addressSpace: { addressPrefixes: [this.plan.addressSpace] } },
        { parent: this },
      ),
    );

    let previous: pulumi.Resource = this.virtualNetwork;
    const subnet = (key: string, subnetArgs: Omit<network.SubnetArgs, "resourceGroupName" | "virtualNetworkName">) => {
      const created = new network.Subnet(
        ...transformed(
          args.transform?.subnet,
          `${name}-${key}-subnet`,
          { resourceGroupName: args.resourceGroupName, virtualNetworkName: this.virtualNetwork.name, ...subnetArgs },
          { parent: this, dependsOn: [previous] },
        ),
      );
      previous = created;
      return created;
    };

    this.privateEndpointSubnet = subnet("private-endpoints", {
      subnetName: this.plan.privateEndpoints.name,
      addressPrefix: this.plan.privateEndpoints.addressPrefix,
      // Endpoints ignore NSGs and route tables unless these policies are on; nothing here uses either.
      privateEndpointNetworkPolicies: network.VirtualNetworkPrivateEndpointNetworkPolicies.Disabled,
    });
    const appSubnets: Record<string, network.Subnet> = {};
    for (const app of args.apps) {
      const planned = this.plan.apps[app]!;
      appSubnets[app] = subnet(`app-${app}`, {
        subnetName: planned.name,
        addressPrefix: planned.addressPrefix,
        delegations: [{ name: "flex-consumption", serviceName: "Microsoft.App/environments" }],
        privateEndpointNetworkPolicies: network.VirtualNetworkPrivateEndpointNetworkPolicies.Disabled,
      });
    }
    this.appSubnets = appSubnets;

    const zones: Partial<Record<PrivateLinkService, privatedns.PrivateZone>> = {};
    const links: privatedns.VirtualNetworkLink[] = [];
    const zoneFor = (service: PrivateLinkService): privatedns.PrivateZone => {
      const existing = zones[service];
      if (existing) return existing;
      const zoneName = privateLinkServices[service].dnsZone;
      const zone = new privatedns.PrivateZone(
        ...transformed(
          args.transform?.privateDnsZone,
          `${name}-${service}-zone`,
          { resourceGroupName: args.resourceGroupName, privateZoneName: zoneName, location: "global" },
          { parent: this },
        ),
      );
      links.push(
        new privatedns.VirtualNetworkLink(
          ...transformed(
            args.transform?.privateDnsZoneLink,
            `${name}-${service}-zone-link`,
            {
              resourceGroupName: args.resourceGroupName,
              privateZoneName: zone.name,
              virtualNetworkLinkName: pulumi.interpolate`${this.virtualNetwork.name}-link`,
              location: "global",
              virtualNetwork: { id: this.virtualNetwork.id },
              // Resolution only: nothing in the network registers its own records.
              registrationEnabled: false,
            },
            { parent: this },
          ),
        ),
      );
      zones[service] = zone;
      return zone;
    };

    const endpoints: Record<string, network.PrivateEndpoint> = {};
    const groups: Record<string, network.PrivateDnsZoneGroup> = {};
    for (const target of args.privateEndpoints ?? []) {
      const service = privateLinkServices[target.service];
      const zone = zoneFor(target.service);
      const endpoint = new network.PrivateEndpoint(
        ...transformed(
          args.transform?.privateEndpoint,
          `${name}-${target.key}-endpoint`,
          {
            ...placement,
            privateEndpointName: target.endpointName,
            subnet: { id: this.privateEndpointSubnet.id },
            privateLinkServiceConnections: [{ name: target.key, privateLinkServiceId: target.resourceId, groupIds: [service.groupId] }],
          },
          { parent: this },
        ),
      );
      endpoints[target.key] = endpoint;
      groups[target.key] = new network.PrivateDnsZoneGroup(
        ...transformed(
          args.transform?.dnsZoneGroup,
          `${name}-${target.key}-dns`,
          {
            resourceGroupName: args.resourceGroupName,
            privateEndpointName: endpoint.name,
            privateDnsZoneGroupName: "default",
            privateDnsZoneConfigs: [{ name: service.dnsZone.replace(/\./g, "-"), privateDnsZoneId: zone.id }],
          },
          { parent: this },
        ),
      );
    }
    this.privateEndpoints = endpoints;
    this.dnsZoneGroups = groups;
    this.privateDnsZones = zones;
    this.ready = [...Object.values(endpoints), ...Object.values(groups), ...links];

    this.registerOutputs({
      virtualNetworkId: this.virtualNetwork.id,
      appSubnetIds: Object.fromEntries(Object.entries(appSubnets).map(([app, s]) => [app, s.id])),
      privateEndpoints: Object.keys(endpoints),
    });
  }

  /** The integration subnet's resource ID of an app (what its site's virtualNetworkSubnetId holds). */
  appSubnetId(app: string): pulumi.Output<string> {
    const subnet = this.appSubnets[app];
    if (!subnet) throw new Error(`no subnet for app "${app}"; apps: ${Object.keys(this.appSubnets).join(", ")}`);
    return subnet.id;
  }
}
