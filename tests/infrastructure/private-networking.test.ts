/** The decisions of private networking: subnet plan, private-link group IDs and zones, address-space rules. */
import { describe, expect, it } from "vitest";
import { serviceNames } from "../../functions/src/services";
import { isPrivateAddressSpace } from "../../infrastructure/config";
import { appSubnetName, planSubnets, privateEndpointSubnetName, privateLinkServices } from "../../infrastructure/private-networking";

/** [first, last] address of a CIDR, as numbers. */
function rangeOf(cidr: string): [number, number] {
  const [ip, prefix] = cidr.split("/") as [string, string];
  const address = ip.split(".").reduce((sum, octet) => sum * 256 + Number(octet), 0);
  return [address, address + 2 ** (32 - Number(prefix)) - 1];
}

describe("planSubnets", () => {
  it("gives the private endpoints the first /26 and each app of the registry its own /27, in registry order, without overlap", () => {
    const plan = planSubnets("10.0.0.0/16", serviceNames);
    expect(plan.privateEndpoints).toEqual({ name: privateEndpointSubnetName, addressPrefix: "10.0.0.0/26" });
    expect(Object.keys(plan.apps)).toEqual(serviceNames);
    serviceNames.forEach((service, index) => {
      expect(plan.apps[service]).toEqual({ name: appSubnetName(service), addressPrefix: `10.0.0.${64 + 32 * index}/27` });
    });
    const ranges = [plan.privateEndpoints, ...Object.values(plan.apps)].map((s) => rangeOf(s.addressPrefix)).sort((a, b) => a[0] - b[0]);
    const [spaceStart, spaceEnd] = rangeOf("10.0.0.0/16");
    ranges.forEach(([start, end], i) => {
      expect(start).toBeGreaterThanOrEqual(spaceStart);
      expect(end).toBeLessThanOrEqual(spaceEnd);
      if (i > 0) expect(start).toBeGreaterThan(ranges[i - 1]![1]);
    });
  });

  it("keeps an app's subnet when services are added after it", () => {
    const before = planSubnets("192.168.10.0/24", ["api", "agent"]);
    const after = planSubnets("192.168.10.0/24", ["api", "agent", "reports"]);
    expect(after.apps["api"]).toEqual(before.apps["api"]);
    expect(after.apps["agent"]).toEqual(before.apps["agent"]);
    expect(after.apps["reports"]?.addressPrefix).toBe("192.168.10.128/27");
  });

  it("names subnets without underscores (Flex refuses them)", () => {
    for (const subnet of [privateEndpointSubnetName, ...serviceNames.map(appSubnetName)]) expect(subnet).not.toContain("_");
  });

  it("refuses an address space too small for the apps, saying how many fit", () => {
    expect(() => planSubnets("10.1.2.0/24", ["a1", "a2", "a3", "a4", "a5", "a6"])).not.toThrow();
    expect(() => planSubnets("10.1.2.0/24", ["a1", "a2", "a3", "a4", "a5", "a6", "a7"])).toThrow(/10\.1\.2\.0\/24 has 256 addresses.*it fits 6 apps/);
  });
});

describe("isPrivateAddressSpace", () => {
  it.each([
    ["10.0.0.0/16", true],
    ["172.16.0.0/20", true],
    ["172.31.255.0/24", true],
    ["192.168.0.0/16", true],
    ["172.32.0.0/16", false],
    ["11.0.0.0/16", false],
    ["10.0.0.0/15", false],
    ["10.0.0.0/25", false],
    ["10.0.1.0/16", false],
    ["10.0.256.0/24", false],
    ["10.0.0.0", false],
  ])("%s: %s", (cidr, expected) => {
    expect(isPrivateAddressSpace(cidr)).toBe(expected);
  });
});

describe("privateLinkServices", () => {
  it("maps each service to the group ID and DNS zone Microsoft documents", () => {
    expect(privateLinkServices).toEqual({
      blob: { groupId: "blob", dnsZone: "privatelink.blob.core.windows.net" },
      cosmosSql: { groupId: "Sql", dnsZone: "privatelink.documents.azure.com" },
      serviceBus: { groupId: "namespace", dnsZone: "privatelink.servicebus.windows.net" },
      webPubSub: { groupId: "webpubsub", dnsZone: "privatelink.webpubsub.azure.com" },
    });
  });
});
