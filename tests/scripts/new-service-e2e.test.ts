/**
 * `npm run new:service -- notifier --trigger queue` in a scratch copy of the repository (its app,
 * program and scripts; node_modules linked, not copied), then what the issue asks of the result:
 * the Pulumi program, under mocks, has three Function Apps with their own plans and identities and
 * the notifier's grants are exactly those of its links plus the Functions host's own; the bundler
 * packages it, and the package registers its two functions with its handlers deferred to first use.
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
import { builtInRoles } from "../../infrastructure/roles";
import { repoRoot } from "../../scripts/bundle/services";
import { scratchCopy } from "../../scripts/new-service/scratch";
import { installMocks, named, ofType, settled, type MockedStack } from "../infrastructure/support/mocks";

const run = promisify(execFile);
let scratch: string;
let generated: { stdout: string };
let refused: { code: number | null; stderr: string };

/** Runs the generator's command line in the scratch copy, as `npm run new:service -- ...` does. */
function newService(...args: string[]) {
  return run(process.execPath, ["--import", "tsx", "scripts/new-service/cli.ts", ...args], { cwd: scratch });
}

beforeAll(async () => {
  // The app, its program and its scripts: what the generator edits and what the checks below load.
  scratch = await scratchCopy(repoRoot, ["functions", "infrastructure", "local", "scripts"]);
  refused = await newService("Notifier", "--trigger", "queue").then(
    () => ({ code: 0, stderr: "" }),
    (error: { code: number | null; stderr: string }) => ({ code: error.code, stderr: error.stderr }),
  );
  generated = await newService("notifier", "--trigger", "queue");
}, 60_000);

afterAll(async () => {
  if (scratch) await rm(scratch, { recursive: true, force: true });
});

describe("npm run new:service -- notifier --trigger queue, in a scratch copy", () => {
  it("refuses a bad name with exit code 2, saying why and that nothing changed; then writes the service and says what comes next", () => {
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain('new:service: "Notifier" has upper case; use "notifier"');
    expect(refused.stderr).toContain("Nothing was changed.");
    expect(generated.stdout).toContain("Created the notifier service (queue trigger):");
    expect(generated.stdout).toContain("  created  functions/src/notifier/index.ts");
    expect(generated.stdout).toContain('    link.queue("notifier", "send"),');
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

    it("has three Function Apps, each on its own plan with its own identity", () => {
      const apps = ofType(stack, "azure-native:web:WebApp").map((app) => app.name).sort();
      expect(apps).toEqual(["agent-site", "api-site", "notifier-site"]);
      const identities = ofType(stack, "azure-native:managedidentity:UserAssignedIdentity");
      expect(identities.map((identity) => identity.name).sort()).toEqual(["agent-identity", "api-identity", "notifier-identity"]);
      expect(new Set(identities.map((identity) => identity.state["principalId"])).size).toBe(3);
      expect(ofType(stack, "azure-native:web:AppServicePlan").map((plan) => plan.name).sort()).toEqual(["agent-plan", "api-plan", "notifier-plan"]);
      const site = named(stack, "notifier-site").inputs as { serverFarmId: string; identity: { userAssignedIdentities: string[] } };
      expect(site.serverFarmId).toBe(named(stack, "notifier-plan").id);
      expect(site.identity.userAssignedIdentities).toEqual([named(stack, "notifier-identity").id]);
    });

    it("declares the notifier queue with the defaults, dead-lettering included", () => {
      expect(named(stack, "messaging-notifier").inputs).toMatchObject({ queueName: "notifier", maxDeliveryCount: 5, deadLetteringOnMessageExpiration: true, requiresSession: false });
    });

    it("grants the notifier exactly its link (Data Receiver on its queue) and the Functions host's own, nothing else", () => {
      const principal = named(stack, "notifier-identity").state["principalId"];
      const scopeOf = new Map(stack.resources.map((r) => [r.id, r.name]));
      const roleOf = new Map<string, string>(Object.entries(builtInRoles).map(([role, guid]) => [guid, role]));
      const grants = ofType(stack, "azure-native:authorization:RoleAssignment")
        .filter((r) => r.inputs["principalId"] === principal)
        .map((r) => `${roleOf.get(String(r.inputs["roleDefinitionId"]).split("/").pop()!)} @ ${scopeOf.get(String(r.inputs["scope"]))}`)
        .sort();
      expect(grants).toEqual(["monitoringMetricsPublisher @ monitoring-insights", "serviceBusDataReceiver @ messaging-notifier", "storageBlobDataOwner @ storage-host"]);
      expect(ofType(stack, "azure-native:cosmosdb:SqlResourceSqlRoleAssignment").filter((r) => r.inputs["principalId"] === principal)).toEqual([]);
    });

    it("gives the notifier its Service Bus connection in the identity-based shape and no other connection", () => {
      const settings = (named(stack, "notifier-site").inputs["siteConfig"] as { appSettings: { name: string }[] }).appSettings.map((s) => s.name);
      expect(settings).toEqual(expect.arrayContaining(["ServiceBus__fullyQualifiedNamespace", "ServiceBus__credential", "ServiceBus__clientId"]));
      expect(settings.filter((name) => /^(Cosmos|DataStorage|WebPubSub)(__|$)/.test(name))).toEqual([]);
    });
  });

  it("is packaged by the bundler: the package registers both functions and defers the handlers' packages to first use", async () => {
    const { buildService } = (await import(pathToFileURL(path.join(scratch, "scripts/bundle/build.ts")).href)) as typeof import("../../scripts/bundle/build");
    const bundle = await buildService("notifier" as Parameters<typeof buildService>[0], path.join(scratch, "dist"), { cache: false });
    expect(bundle.deferredPackages).toContain("zod");
    const loaded = JSON.parse((await run(process.execPath, [path.join(scratch, "scripts/bench/load-service.cjs"), path.join(bundle.packageDir, "main.js")])).stdout) as { functions: string[]; required: string[] };
    expect(loaded.functions.sort()).toEqual(["handleDeadLetteredMessage", "processMessage"]);
    expect(loaded.required).toEqual([]);
  }, 60_000);
});
