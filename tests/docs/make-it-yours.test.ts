/**
 * The README's "Make it yours" recipes against the code: every file they name exists, every
 * function, option and command they tell a forker to use is where they say (each claim is checked
 * in the README and in the code, so renaming either side fails here), and the files and functions
 * the service recipe lists are the ones the generator writes.
 */
import { existsSync, readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { linkKinds } from "../../functions/src/platform/links";
import { queueDefaults } from "../../functions/src/platform/resource-kinds";
import { configKeys } from "../../infrastructure/config";
import { repoRoot } from "../../scripts/bundle/services";
import { serviceFiles } from "../../scripts/new-service/templates";

const readme = readFileSync(path.join(repoRoot, "README.md"), "utf8");
const start = readme.indexOf("## Make it yours\n");
const section = readme.slice(start, readme.indexOf("\n## ", start + 1));
const source = (file: string) => readFileSync(path.join(repoRoot, file), "utf8");

/** What a recipe says, and where the code must say the same. */
const claims: { readme: string; file: string; code: string | RegExp }[] = [
  { readme: "`functions/src/resources.ts` (`defineResources`)", file: "functions/src/resources.ts", code: "defineResources({" },
  { readme: "`functions/src/services.ts` (`defineServices`)", file: "functions/src/services.ts", code: "defineServices({" },
  { readme: "`queueDefaults` in\n   `functions/src/platform/resource-kinds.ts`", file: "functions/src/platform/resource-kinds.ts", code: "export const queueDefaults" },
  { readme: "(`integer`, `flag` or `httpUrl`)", file: "functions/src/platform/setting-parsers.ts", code: /export const integer[\s\S]*export const httpUrl[\s\S]*export const flag/ },
  { readme: "`configSchema` in `infrastructure/config.ts`", file: "infrastructure/config.ts", code: "export const configSchema" },
  { readme: "the `apiUrl` export of `infrastructure/index.ts`", file: "infrastructure/index.ts", code: "export const apiUrl = platform.outputs.appUrls.api" },
  { readme: "the `Try it` line of `scripts/start.ts`", file: "scripts/start.ts", code: "Try it: curl -X POST ${platform.urls.api}/jobs" },
  { readme: "`createServiceBusClient` is in `functions/src/shared/azure-clients.ts`", file: "functions/src/shared/azure-clients.ts", code: "export async function createServiceBusClient(connection: Connection)" },
  { readme: "`createCosmosContainer(settings.Cosmos, resources.cosmos.database, \"orders\")`", file: "functions/src/shared/azure-clients.ts", code: "export async function createCosmosContainer(connection: Connection, databaseName: string, containerName: string)" },
  { readme: "`createBlobServiceClient(settings.DataStorage)`", file: "functions/src/shared/azure-clients.ts", code: "export async function createBlobServiceClient(connection: Connection)" },
  { readme: "`createWebPubSubClient(settings.WebPubSub, \"alerts\")`", file: "functions/src/shared/azure-clients.ts", code: "export async function createWebPubSubClient(connection: Connection, hub: string)" },
  { readme: "`loadSettings(\"<service>\").GREETING`", file: "functions/src/settings.ts", code: "export function loadSettings<S extends ServiceName>(service: S" },
  { readme: 'connection: connectionFamilies.serviceBus.setting, queueName: "orders"', file: "functions/src/platform/links.ts", code: 'serviceBus: { setting: "ServiceBus"' },
  { readme: "`npm start -- --<name>-port N`", file: "scripts/start.ts", code: "[`${service}-port`, service]" },
  { readme: "`notifier (local Functions host, ...) no HTTP triggers; 2\n   functions`", file: "local/platform.ts", code: '`${h.url ?? "no HTTP triggers"}; ${h.functions.length} functions`' },
  { readme: "`browserUploads: true`", file: "functions/src/platform/resource-kinds.ts", code: "readonly browserUploads?: boolean;" },
  { readme: "`browserFacing: true`", file: "functions/src/platform/service-kinds.ts", code: "readonly browserFacing?: boolean;" },
  { readme: "`{ scope: \"local\", local: \"...\", optional: true, description: \"...\" }`", file: "functions/src/platform/service-kinds.ts", code: /readonly scope: "local";\s+readonly local: string;\s+readonly optional: true;/ },
  { readme: "`tests/infrastructure/config.test.ts`", file: "tests/infrastructure/config.test.ts", code: "Pulumi.yaml" },
  { readme: "`acceptNextSession`", file: "tests/local/app-resources.test.ts", code: "client.acceptNextSession(" },
];

describe("README: Make it yours", () => {
  it("is there, with a recipe for a service, a queue, a setting, a container or hub, and the demo domain", () => {
    expect(start).toBeGreaterThan(0);
    expect([...section.matchAll(/^### (.+)$/gm)].map((m) => m[1])).toEqual([
      "Add a service",
      "Add a queue",
      "Add a setting",
      "Add a container, blob container or hub",
      "Replace the demo domain",
    ]);
  });

  it.each(claims)("says $readme, and $file holds it", ({ readme: text, file, code }) => {
    expect(section).toContain(text);
    const content = source(file);
    if (typeof code === "string") expect(content).toContain(code);
    else expect(content).toMatch(code);
  });

  it("names only files and folders that exist (the generator's examples aside)", () => {
    const named = [...section.matchAll(/`((?:functions|infrastructure|scripts|tests|local|web)\/[^`\s]*|Pulumi\.yaml)`/g)].map((m) => m[1]!);
    expect(named.length).toBeGreaterThan(20);
    for (const name of named) {
      if (/notifier|<name>/.test(name)) continue;
      if (name.endsWith("*")) {
        const folder = path.dirname(name);
        const prefix = path.basename(name).slice(0, -1);
        expect(readdirSync(path.join(repoRoot, folder)).some((entry) => entry.startsWith(prefix)), name).toBe(true);
      } else {
        expect(existsSync(path.join(repoRoot, name)), name).toBe(true);
      }
    }
    // Bare names inside a folder the recipe named: the demo's tests and job modules.
    for (const test of ["agent", "analysis", "external-processor", "shared-"]) expect(readdirSync(path.join(repoRoot, "tests/functions")).some((f) => f.startsWith(test)), test).toBe(true);
    for (const module of ["job.ts", "analysis.ts", "external-processor.ts", "upload-names.ts", "azure-clients.ts", "telemetry.ts", "service-bus-message.ts"]) {
      expect(existsSync(path.join(repoRoot, "functions/src/shared", module)), module).toBe(true);
    }
  });

  it("lists the generator's files and functions for a queue service as it writes them", () => {
    const files = serviceFiles({ name: "notifier", trigger: "queue", description: "x" });
    for (const file of files) {
      const relative = file.path.startsWith("functions/src/notifier/") ? `\`${path.basename(file.path)}\`` : `\`${file.path}\``;
      expect(section, file.path).toContain(relative);
    }
    const byPath = new Map(files.map((file) => [file.path, file.content]));
    expect(byPath.get("functions/src/notifier/index.ts")).toMatch(/app\.serviceBusQueue\("processMessage"[\s\S]*app\.serviceBusQueue\("handleDeadLetteredMessage"/);
    expect(byPath.get("functions/src/notifier/process-message.ts")).toContain("export async function processNotifierMessage(");
    expect(byPath.get("functions/src/shared/notifier-queue.ts")).toMatch(/export const NotifierMessage = [\s\S]*export class NotifierQueue/);
    expect(section).toContain("registers `processMessage` and `handleDeadLetteredMessage`");
    expect(section).toContain("`processNotifierMessage` in\n     `process-message.ts`");
    expect(section).toContain("the sender\n     `NotifierQueue`");
  });

  it("names every queue option, every link kind with its access levels, and the generator's commands", () => {
    for (const option of Object.keys(queueDefaults)) expect(section).toContain(`\`${option}\``);
    for (const [kind, { access }] of Object.entries(linkKinds)) {
      expect(section).toContain(`\`link.${kind}(name, ${access.map((a) => `"${a}"`).join(" | ")})\``);
    }
    const scripts = (JSON.parse(source("package.json")) as { scripts: Record<string, string> }).scripts;
    expect(scripts["new:service"]).toBe("tsx scripts/new-service/cli.ts");
    expect(scripts["test:new-service"]).toBe("tsx scripts/new-service/e2e.ts");
    expect(scripts["up"]).toBe("pulumi up");
    for (const command of ["npm run new:service -- notifier --trigger queue", "npm run test:new-service", "npm run bundle -- notifier", "npm run up"]) expect(section).toContain(command);
  });

  it("names demo config keys that exist", () => {
    for (const key of ["uploadMaxBytes", "uploadUrlTtlSeconds", "externalProcessorUrl"]) {
      expect(section).toContain(`\`${key}\``);
      expect(configKeys).toContain(key);
    }
  });
});
