/**
 * The decisions of private networking, as data and pure functions (the Network component wires
 * them): which private-link service each endpoint connects to and the private DNS zone that
 * resolves it, how the address space is cut into subnets, and what stays reachable from the
 * internet and why.
 *
 * Sources: Microsoft's "Azure Private Endpoint private DNS zone values" and the Flex Consumption
 * networking docs, as summarised in the project's networking notes; the shapes follow
 * Azure-Samples/functions-quickstart-typescript-azd (VNET_ENABLED: app subnet delegated to
 * Microsoft.App/environments, blob endpoint with a DNS zone group) and the AVM private-endpoint
 * module.
 */

/**
 * The private-link services the platform connects to: the endpoint's group ID (the target's
 * sub-resource) and the private DNS zone its A record goes in. Public cloud only, like the region
 * list in config.ts.
 */
export const privateLinkServices = {
  /** A storage account's blob service (Functions host storage: AzureWebJobsStorage and the deployment packages). */
  blob: { groupId: "blob", dnsZone: "privatelink.blob.core.windows.net" },
  /** Cosmos DB for NoSQL. */
  cosmosSql: { groupId: "Sql", dnsZone: "privatelink.documents.azure.com" },
  /** A Service Bus namespace (Premium only). */
  serviceBus: { groupId: "namespace", dnsZone: "privatelink.servicebus.windows.net" },
  /** Web PubSub (Standard and Premium; not Free_F1). */
  webPubSub: { groupId: "webpubsub", dnsZone: "privatelink.webpubsub.azure.com" },
} as const;
export type PrivateLinkService = keyof typeof privateLinkServices;

/** The subnet the private endpoints take their addresses from. */
export const privateEndpointSubnetName = "snet-private-endpoints";

/** A Function App's integration subnet (names may not contain `_`; service names have none). */
export function appSubnetName(app: string): string {
  return `snet-app-${app}`;
}

export interface PlannedSubnet {
  readonly name: string;
  readonly addressPrefix: string;
}

export interface SubnetPlan {
  readonly addressSpace: string;
  readonly privateEndpoints: PlannedSubnet;
  /** One subnet per app, keyed by app. */
  readonly apps: Readonly<Record<string, PlannedSubnet>>;
}

/** Private endpoints take one address each; a /26 leaves room for the ones to come (Azure keeps 5 per subnet). */
export const privateEndpointSubnetPrefixLength = 26;
/**
 * Flex Consumption's recommendation: a /27 per app. Outbound traffic leaves through gateways
 * dedicated to the subnet, at most 27 of them, one address each; several apps on one /27, or a
 * smaller subnet, share or cut that capacity.
 */
export const appSubnetPrefixLength = 27;

function parseCidr(cidr: string): { address: number; prefix: number } {
  const match = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\/(\d{1,2})$/.exec(cidr);
  if (!match) throw new Error(`"${cidr}" is not an IPv4 CIDR such as 10.0.0.0/16`);
  const [a, b, c, d, prefix] = match.slice(1).map(Number) as [number, number, number, number, number];
  return { address: ((a << 24) >>> 0) + (b << 16) + (c << 8) + d, prefix };
}

function formatCidr(address: number, prefix: number): string {
  return `${address >>> 24}.${(address >>> 16) & 255}.${(address >>> 8) & 255}.${address & 255}/${prefix}`;
}

/**
 * Cuts the address space into the private-endpoint subnet (the first /26) and one /27 per app
 * after it, in the order given (the service registry's order). An app keeps its subnet as long as
 * the apps before it stay: add services at the end of the registry, since moving a subnet means
 * replacing its app's network integration. Throws when the space is too small for the apps.
 */
export function planSubnets(addressSpace: string, apps: readonly string[]): SubnetPlan {
  const { address, prefix } = parseCidr(addressSpace);
  const size = 2 ** (32 - prefix);
  const endpointsSize = 2 ** (32 - privateEndpointSubnetPrefixLength);
  const appSize = 2 ** (32 - appSubnetPrefixLength);
  const needed = endpointsSize + apps.length * appSize;
  if (needed > size) {
    const fits = Math.max(0, Math.floor((size - endpointsSize) / appSize));
    throw new Error(
      `the address space ${addressSpace} has ${size} addresses; a /${privateEndpointSubnetPrefixLength} for private endpoints and a /${appSubnetPrefixLength} for each of the ${apps.length} apps need ${needed} (it fits ${fits} apps): choose a larger virtualNetworkAddressSpace`,
    );
  }
  const planned: Record<string, PlannedSubnet> = {};
  apps.forEach((app, index) => {
    planned[app] = { name: appSubnetName(app), addressPrefix: formatCidr(address + endpointsSize + index * appSize, appSubnetPrefixLength) };
  });
  return {
    addressSpace,
    privateEndpoints: { name: privateEndpointSubnetName, addressPrefix: formatCidr(address, privateEndpointSubnetPrefixLength) },
    apps: planned,
  };
}

/**
 * What private networking leaves reachable from the internet, and why: the README lists it, and
 * the tests hold the program to it (nothing else public).
 */
export const publicWithPrivateNetworking = [
  {
    what: "The api Function App's HTTPS endpoint",
    why: "browsers call it; it checks callers itself (App Service Authentication when configured)",
  },
  {
    what: "Each Function App's deployment (scm) endpoint",
    why: "OneDeploy publishes the code from CI or your machine; it accepts only Entra tokens with rights on the site (basic-auth publishing is off)",
  },
  {
    what: "The data storage account: the static website ($web) and the upload containers",
    why: "browsers load the site and PUT files with the api's write-only user-delegation SAS URLs; shared keys stay off",
  },
  {
    what: "Web PubSub's client endpoint",
    why: "browsers hold a WebSocket to it with a client token; REST, server connections and live trace are denied from the internet",
  },
  {
    what: "The agent Function App's endpoint",
    why: "it has no HTTP functions, and turning the site's public access off would also close its deployment endpoint",
  },
  {
    what: "Application Insights ingestion and Entra ID (outbound from the apps)",
    why: "a private link scope (AMPLS) would change Azure Monitor DNS for the whole network; telemetry is Entra-authenticated either way",
  },
] as const;
