/**
 * `npm run new:service -- notifier --trigger queue` in a scratch copy of the repository (its app,
 * program and scripts; node_modules linked, not copied), then what the issue asks of the result:
 * the Pulumi program, under mocks, has a Function App more (three for the template's api and
 * agent), each with its own plan and identity, and the notifier's grants are exactly those of its
 * link plus the Functions host's own; the bundler packages it, and the package registers its two
 * functions with its handlers deferred to first use. In a fork that already has a `notifier`, the
 * next free name (`notifier2`, ...) stands in for it.
 *
 * The typecheck of the copy and the generated service's own test (its handlers under the local
 * Functions host) are slower, so `npm run test:new-service` runs them (with these checks) instead.
 */
import { execFile } from "node:child_process";
import { rm } from "node:fs/promises";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { getClientConfigOutput } from "@pulumi/azure-native/authorization";
import { serviceNames } from "../../functions/src/services";
import { builtInRoles } from "../../infrastructure/roles";
import { repoRoot } from "../../scripts/bundle/services";
import { scratchCopy, unusedServiceName } from "../../scripts/new-service/scratch";
import { installMocks, named, ofType, settled, type MockedStack } from "../infrastructure/support/mocks";

const run = promisify(execFile);
/** `notifier`, unless the repository has one already. */
const name = unusedServiceName(repoRoot, "notifier");
const apps = [...serviceNames, name].sort();
let scratch: string;
let generated: { stdout: string };

/** Runs the generator's command line in the scratch copy, as `npm run new:service -- ...` does. */
function newService(...args: string[]) {
  return run(process.execPath, ["--import", "tsx", "scripts/new-service/cli.ts", ...args], { cwd: scratch });
}

beforeAll(async () => {
  // The app, its program and its scripts: what the generator edits and what the checks below load.
  scratch = await scratchCopy(repoRoot, ["functions", "infrastructure", "local", "scripts", "web"]);
  generated = await newService(name, "--trigger", "queue");
}, 60_000);

afterAll(async () => {
  if (scratch) await rm(scratch, { recursive: true, force: true });
});

describe(`npm run new:service -- ${name} --trigger queue, in a scratch copy`, () => {
  it("writes the service and says what comes next", () => {
    expect(generated.stdout).toContain(`Created the ${name} service (queue trigger):`);
    expect(generated.stdout).toContain(`  created  functions/src/${name}/index.ts`);
    expect(generated.stdout).toContain(`    link.queue("${name}", "send"),`);
  });

  describe("the program under mocks", () => {
    let stack: MockedStack;

    beforeAll(async () => {
      stack = await installMocks("dev");
      const { createPlatform } = (await import(pathToFileURL(path.join(scratch, "infrastructure/platform.ts")).href)) as typeof import("../../infrastructure/platform");
      const { parseConfig, projectName } = (await import(pathToFileURL(path.join(scratch, "infrastructure/config.ts")).href)) as typeof import("../../infrastructure/config");
      createPlatform(parseConfig({}), { project: projectName, stack: "dev", client: getClientConfigOutput() });
      await settled(stack);
    }, 60_000);

    it(`has a Function App per service, ${name} included (${apps.length}), each on its own plan with its own identity`, () => {
      expect(ofType(stack, "azure-native:web:WebApp").map((app) => app.name).sort()).toEqual(apps.map((app) => `${app}-site`));
      const identities = ofType(stack, "azure-native:managedidentity:UserAssignedIdentity");
      expect(identities.map((identity) => identity.name).sort()).toEqual(apps.map((app) => `${app}-identity`));
      expect(new Set(identities.map((identity) => identity.state["principalId"])).size).toBe(apps.length);
      expect(ofType(stack, "azure-native:web:AppServicePlan").map((plan) => plan.name).sort()).toEqual(apps.map((app) => `${app}-plan`));
      const site = named(stack, `${name}-site`).inputs as { serverFarmId: string; identity: { userAssignedIdentities: string[] } };
      expect(site.serverFarmId).toBe(named(stack, `${name}-plan`).id);
      expect(site.identity.userAssignedIdentities).toEqual([named(stack, `${name}-identity`).id]);
    });

    it(`declares the ${name} queue with the defaults, dead-lettering included`, () => {
      expect(named(stack, `messaging-${name}`).inputs).toMatchObject({ queueName: name, maxDeliveryCount: 5, deadLetteringOnMessageExpiration: true, requiresSession: false });
    });

    it(`grants ${name} exactly its link (Data Receiver on its queue) and the Functions host's own, nothing else`, () => {
      const principal = named(stack, `${name}-identity`).state["principalId"];
      const scopeOf = new Map(stack.resources.map((r) => [r.id, r.name]));
      const roleOf = new Map<string, string>(Object.entries(builtInRoles).map(([role, guid]) => [guid, role]));
      const grants = ofType(stack, "azure-native:authorization:RoleAssignment")
        .filter((r) => r.inputs["principalId"] === principal)
        .map((r) => `${roleOf.get(String(r.inputs["roleDefinitionId"]).split("/").pop()!)} @ ${scopeOf.get(String(r.inputs["scope"]))}`)
        .sort();
      expect(grants).toEqual(["monitoringMetricsPublisher @ monitoring-insights", `serviceBusDataReceiver @ messaging-${name}`, "storageBlobDataOwner @ storage-host"]);
      expect(ofType(stack, "azure-native:cosmosdb:SqlResourceSqlRoleAssignment").filter((r) => r.inputs["principalId"] === principal)).toEqual([]);
    });

    it(`gives ${name} its Service Bus connection in the identity-based shape and no other connection`, () => {
      const settings = (named(stack, `${name}-site`).inputs["siteConfig"] as { appSettings: { name: string }[] }).appSettings.map((s) => s.name);
      expect(settings).toEqual(expect.arrayContaining(["ServiceBus__fullyQualifiedNamespace", "ServiceBus__credential", "ServiceBus__clientId"]));
      expect(settings.filter((name) => /^(Cosmos|DataStorage|WebPubSub)(__|$)/.test(name))).toEqual([]);
    });
  });

  it("is packaged by the bundler: the package registers both functions and defers the handlers' packages to first use", async () => {
    const { buildService } = (await import(pathToFileURL(path.join(scratch, "scripts/bundle/build.ts")).href)) as typeof import("../../scripts/bundle/build");
    const bundle = await buildService(name as Parameters<typeof buildService>[0], path.join(scratch, "dist"), { cache: false });
    // zod (the message schema) loads with the handlers, in a chunk read on first use, never at start.
    const withZod = bundle.chunks.filter((chunk) => chunk.packages.includes("zod"));
    expect(withZod.length).toBeGreaterThan(0);
    for (const chunk of withZod) expect(chunk.loadedWith).not.toBe("start");
    const loaded = JSON.parse((await run(process.execPath, [path.join(scratch, "scripts/bench/load-service.cjs"), path.join(bundle.packageDir, "main.js")])).stdout) as { functions: string[]; required: string[] };
    expect(loaded.functions.sort()).toEqual(["handleDeadLetteredMessage", "processMessage"]);
    expect(loaded.required).toEqual([]);
  }, 60_000);
});
