/**
 * What the agent's entry point registers with the Functions worker, read through the same seam the
 * worker uses (a module standing in for @azure/functions-core), and what importing it costs: no
 * settings, no SDK, no handler code until the first message.
 */
import Module from "node:module";
import { describe, expect, it } from "vitest";

interface Registered {
  name: string;
  bindings: Record<string, Record<string, unknown>>;
}

describe("agent entry point", () => {
  it("registers the queue and dead-letter triggers on the ServiceBus connection, loading nothing else", async () => {
    const registered: Registered[] = [];
    const disposable = { dispose() {} };
    const fakeCore = {
      registerFunction: (metadata: Registered) => (registered.push(metadata), disposable),
      registerHook: () => disposable,
      setProgrammingModel() {},
      getProgrammingModel: () => undefined,
      log() {},
    };
    type Load = (request: string, ...rest: unknown[]) => unknown;
    const moduleWithLoad = Module as unknown as { _load: Load };
    const load = moduleWithLoad._load;
    moduleWithLoad._load = function (this: unknown, request: string, ...rest: unknown[]) {
      return request === "@azure/functions-core" ? fakeCore : load.call(this, request, ...rest);
    };
    const settingsBefore = Object.keys(process.env).filter((name) => name === "ServiceBus" || name === "Cosmos");
    try {
      await import("../../functions/src/agent/index.js");
    } finally {
      moduleWithLoad._load = load;
    }
    expect(settingsBefore).toEqual([]); // registration needed no settings

    const byName = new Map(registered.map((fn) => [fn.name, Object.values(fn.bindings).find((binding) => binding.direction === "in")]));
    expect([...byName.keys()].sort()).toEqual(["failDeadLetteredJob", "processJob"]);
    expect(byName.get("processJob")).toMatchObject({ type: "serviceBusTrigger", queueName: "jobs", connection: "ServiceBus" });
    expect(byName.get("failDeadLetteredJob")).toMatchObject({
      type: "serviceBusTrigger",
      queueName: "jobs/$deadletterqueue",
      connection: "ServiceBus",
    });

    const loaded = Object.keys(require.cache);
    for (const heavy of ["@azure/cosmos", "@azure/storage-blob", "@azure/web-pubsub", "@azure/identity", "@azure/monitor-opentelemetry-exporter", "@opentelemetry/sdk-trace-base", "cockatiel", "zod"]) {
      expect(loaded.filter((path) => path.includes(`/node_modules/${heavy}/`))).toEqual([]);
    }
  });
});
