/**
 * The components' transform hooks (components/transform.ts) and options, on components built alone
 * under mocks: the partial-arguments form and the function form each change what the child resource
 * is registered with (and only that child), a function may change the child's options too, and a
 * site transform cannot smuggle in a site-config property Flex Consumption refuses. Also: a
 * session queue reaches Azure as `requiresSession`, and Basic (no sessions) is refused up front.
 */
import { beforeAll, describe, expect, it } from "vitest";
import * as pulumi from "@pulumi/pulumi";
import type * as web from "@pulumi/azure-native/web";
import { linkKinds } from "../../functions/src/platform/links";
import { resolveQueue } from "../../functions/src/platform/resource-kinds";
import { declarationOf } from "../../functions/src/services";
import { parseConfig } from "../../infrastructure/config";
import { FunctionApp, type FunctionAppArgs } from "../../infrastructure/components/function-app";
import type { Link } from "../../infrastructure/components/link";
import { Messaging, queueProperties } from "../../infrastructure/components/messaging";
import type { Transform } from "../../infrastructure/components/transform";
import { installMocks, named, settled, valueOf, type MockedStack } from "./support/mocks";

let stack: MockedStack;

beforeAll(async () => {
  stack = await installMocks("transforms");
});

const placement = { resourceGroupName: "rg", location: "eastus" };

/** Links for the agent as the components would hand them over; this file checks the site, not grants. */
function agentLinks(): Link[] {
  return declarationOf("agent").links.map((declaration) => ({ declaration, family: linkKinds[declaration.kind].family, endpoint: "https://endpoint.example", grant: () => [] }));
}

function agentApp(name: string, transform: FunctionAppArgs<"agent">["transform"]): FunctionApp<"agent"> {
  return new FunctionApp(name, {
    service: "agent",
    ...placement,
    siteName: `${name}-site-name`,
    planName: `${name}-plan-name`,
    identityName: `${name}-identity-name`,
    host: { storageBlobEndpoint: "https://host.blob.core.windows.net/", deploymentContainerUrl: "https://host.blob.core.windows.net/agent-package", telemetryConnectionString: "InstrumentationKey=x", grant: () => [] },
    links: agentLinks(),
    config: parseConfig({}),
    transform,
  });
}

/**
 * The flexSiteConfig rule runs inside the site's inputs (an Output): its error fails the site's
 * registration, which the Pulumi runtime reports as an unhandled rejection and exits the program
 * with. Vitest would count those as stray errors of the run, so while `work` runs they come here.
 */
async function unhandledRejectionsDuring(work: () => Promise<void>): Promise<unknown[]> {
  const rejections: unknown[] = [];
  const others = process.listeners("unhandledRejection");
  const collect = (reason: unknown) => void rejections.push(reason);
  process.removeAllListeners("unhandledRejection");
  process.on("unhandledRejection", collect);
  try {
    await work();
  } finally {
    process.off("unhandledRejection", collect);
    for (const listener of others) process.on("unhandledRejection", listener);
  }
  return rejections;
}

describe("transform hooks", () => {
  it("the partial-arguments form is merged over the child's own arguments, for that child only", async () => {
    new Messaging("partial", { ...placement, namespaceName: "partial-ns", queues: { a: {}, b: {} }, transform: { namespace: { zoneRedundant: true }, queue: { maxSizeInMegabytes: 2048 } } });
    await settled(stack);
    expect(named(stack, "partial-namespace").inputs).toMatchObject({ namespaceName: "partial-ns", zoneRedundant: true, disableLocalAuth: true, minimumTlsVersion: "1.2" });
    for (const queue of ["a", "b"]) expect(named(stack, `partial-${queue}`).inputs).toMatchObject({ queueName: queue, maxSizeInMegabytes: 2048, maxDeliveryCount: 5 });
  });

  it("the function form changes the arguments and options of the children it picks, by name", async () => {
    const marker = new Messaging("marker", { ...placement, namespaceName: "marker-ns", queues: {} });
    new Messaging("function", {
      ...placement,
      namespaceName: "function-ns",
      queues: { a: {}, b: {} },
      transform: {
        queue: (args, opts, name) => {
          if (!name.endsWith("-b")) return;
          args.maxDeliveryCount = 9;
          opts.dependsOn = [marker.namespace];
        },
      },
    });
    await settled(stack);
    expect(named(stack, "function-a").inputs).toMatchObject({ maxDeliveryCount: 5 });
    expect(named(stack, "function-b").inputs).toMatchObject({ queueName: "b", maxDeliveryCount: 9, lockDuration: "PT60S" });
    const markerUrn = await valueOf(marker.namespace.urn);
    expect(stack.dependencies.get("function-b")).toContain(markerUrn);
    expect(stack.dependencies.get("function-a") ?? []).not.toContain(markerUrn);
  });

  it("a FunctionApp's plan and site take transforms too, and the Flex site-config rules still hold after them", async () => {
    agentApp("tagged", { plan: { tags: { team: "data" } }, site: (args) => void (args.clientAffinityEnabled = false) });
    await settled(stack);
    expect(named(stack, "tagged-plan").inputs).toMatchObject({ name: "tagged-plan-name", tags: { team: "data" }, sku: { name: "FC1" } });
    expect(named(stack, "tagged-site").inputs).toMatchObject({ name: "tagged-site-name", clientAffinityEnabled: false });
    // azure-native's injected App Service defaults were dropped after the transform ran.
    expect(Object.keys(named(stack, "tagged-site").inputs["siteConfig"] as object).sort()).toEqual(["appSettings", "cors", "minTlsVersion"]);
  });

  const refusedSite: [string, Transform<web.WebAppArgs>][] = [
    ["function", (args) => void (args.siteConfig = pulumi.output(args.siteConfig ?? {}).apply((siteConfig) => ({ ...siteConfig, ftpsState: "FtpsOnly" })))],
    ["partial", { siteConfig: { minTlsVersion: "1.2", ftpsState: "FtpsOnly" } }],
  ];
  it.each(refusedSite)("a site transform (%s form) that adds a property Flex refuses fails the program with the flexSiteConfig error", async (form, site) => {
    const rejections = await unhandledRejectionsDuring(async () => {
      agentApp(`refused-${form}`, { site });
      await settled(stack);
    });
    expect(rejections.length).toBeGreaterThan(0);
    for (const rejection of rejections) {
      expect(rejection instanceof Error ? rejection.message : String(rejection)).toMatch(
        /siteConfig\.ftpsState cannot be set on a Flex Consumption app: Flex Consumption rejects it \(ARM error 51021\)/,
      );
    }
    expect(stack.resources.some((r) => r.name === `refused-${form}-site`)).toBe(false);
  });
});

describe("session queues", () => {
  it("a queue declared with sessions reaches Azure as requiresSession; the others stay without", async () => {
    new Messaging("sessions", { ...placement, namespaceName: "sessions-ns", queues: { ordered: { sessions: true }, plain: {} } });
    await settled(stack);
    expect(named(stack, "sessions-ordered").inputs).toMatchObject({ queueName: "ordered", requiresSession: true });
    expect(named(stack, "sessions-plain").inputs).toMatchObject({ queueName: "plain", requiresSession: false });
  });

  it("refuses a session queue on the Basic tier (Basic has no sessions), naming the queue", () => {
    expect(() => queueProperties(resolveQueue({ sessions: true }), "Basic", "ordered")).toThrow(/ordered: sessions need the Standard or Premium tier/);
    expect(queueProperties(resolveQueue({}), "Basic", "plain").requiresSession).toBe(false);
  });
});
