/**
 * `npm run new:service` on temporary copies of the declaration files (never the repository
 * itself): what it inserts into services.ts and resources.ts (as hand-written code, nothing else
 * touched), the files it writes and their cold-start discipline, the local port it picks, the
 * sender link of --from, and that bad input (or a write that fails midway) leaves every file as
 * it was. The copies are of fixtures/registry/ (the template's api and agent with the jobs demo), so
 * these tests do not change when a fork's own registry does; that the generator reads the
 * repository's real declaration files is checked too.
 */
import { mkdtemp, mkdir, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import ts from "typescript";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { parseNewServiceArgs, runNewService, UsageError } from "../../scripts/new-service/cli";
import { applyPlan, newService, NewServiceError, nextLocalPort, planNewService, RESOURCES_FILE, SERVICES_FILE, type NewServiceOptions } from "../../scripts/new-service/scaffold";
import { repoRoot } from "../../scripts/bundle/services";
import { addLink, addQueue, addService, readQueues, readServices } from "../../scripts/new-service/registry-source";
import { resources } from "../../functions/src/resources";
import { declarationOf, serviceNames } from "../../functions/src/services";

/** services.ts and resources.ts as the template ships them. */
const fixtures = path.join(__dirname, "fixtures", "registry");
let root: string;
let servicesBefore: string;
let resourcesBefore: string;

beforeEach(async () => {
  root = await mkdtemp(path.join(tmpdir(), "new-service-"));
  for (const file of [SERVICES_FILE, RESOURCES_FILE]) {
    await mkdir(path.dirname(path.join(root, file)), { recursive: true });
    await writeFile(path.join(root, file), await readFile(path.join(fixtures, `${path.basename(file)}.txt`)));
  }
  for (const folder of ["functions/src/api", "functions/src/agent", "functions/src/shared", "tests/functions"]) await mkdir(path.join(root, folder), { recursive: true });
  servicesBefore = await read(SERVICES_FILE);
  resourcesBefore = await read(RESOURCES_FILE);
});

afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

const read = (file: string) => readFile(path.join(root, file), "utf8");

/** Every file under the temporary root with its content: compared before and after a refused request. */
async function tree(directory = root): Promise<Record<string, string>> {
  const result: Record<string, string> = {};
  for (const entry of await readdir(directory, { withFileTypes: true })) {
    const full = path.join(directory, entry.name);
    const relative = path.relative(root, full);
    if (entry.isDirectory()) Object.assign(result, { [`${relative}/`]: "" }, await tree(full));
    else result[relative] = await readFile(full, "utf8");
  }
  return result;
}

/** The module specifiers a file imports at run time (type-only imports left out). */
function runtimeImports(source: string): string[] {
  const file = ts.createSourceFile("x.ts", source, ts.ScriptTarget.Latest, true);
  return file.statements
    .filter((s): s is ts.ImportDeclaration => ts.isImportDeclaration(s) && !s.importClause?.isTypeOnly)
    .map((s) => (s.moduleSpecifier as ts.StringLiteral).text);
}

function parseErrors(source: string): number {
  const file = ts.createSourceFile("x.ts", source, ts.ScriptTarget.Latest, true) as ts.SourceFile & { parseDiagnostics: unknown[] };
  return file.parseDiagnostics.length;
}

describe("a queue-triggered service", () => {
  it("declares its queue after the last one and itself after the last service, linked to receive, changing nothing else", async () => {
    const plan = await newService(root, { name: "notifier", trigger: "queue" });
    const queue = [
      "    // To the notifier service; options left out take the defaults of platform/resource-kinds.ts (5 deliveries, then dead-lettered).",
      "    notifier: {},",
      "",
    ].join("\n");
    const resources = await read(RESOURCES_FILE);
    expect(resources).toContain(`${queue}  },\n  blobContainers: {`);
    expect(resources.replace(queue, "")).toBe(resourcesBefore);

    const entry = [
      "  notifier: {",
      '    description: "Handles the messages of the notifier queue",',
      '    links: [link.queue("notifier", "receive")],',
      "    settings: {},",
      "  },",
      "",
    ].join("\n");
    const services = await read(SERVICES_FILE);
    expect(services).toContain(`${entry}});\n`);
    expect(services.replace(entry, "")).toBe(servicesBefore);
    expect(plan.sendLink).toBe('link.queue("notifier", "send")');
  });

  it("writes its entry, handlers, domain function, clients, the queue's contract and sender, and a first test; the entry loads nothing heavy", async () => {
    const plan = await newService(root, { name: "notifier", trigger: "queue" });
    expect(plan.creates.map((file) => file.path)).toEqual([
      "functions/src/notifier/index.ts",
      "functions/src/notifier/handlers.ts",
      "functions/src/notifier/process-message.ts",
      "functions/src/notifier/clients.ts",
      "functions/src/shared/notifier-queue.ts",
      "tests/functions/notifier.test.ts",
    ]);
    for (const file of plan.creates) {
      const content = await read(file.path);
      expect(content, file.path).toBe(file.content);
      expect(content.startsWith("/**\n"), `${file.path} starts with its TSDoc`).toBe(true);
      expect(parseErrors(content), file.path).toBe(0);
      expect(content, file.path).not.toMatch(/\/tmp\/|\/work\//);
    }
    const index = await read("functions/src/notifier/index.ts");
    // Cold start: the entry needs only the functions library, the links' small table and the warm-up
    // (node:perf_hooks only); the rest is a deferred require, made by the warm-up or the first message.
    expect(runtimeImports(index)).toEqual(["@azure/functions", "../platform/links.js", "../shared/warm-up.js"]);
    expect(index).toContain('require("./handlers.js")');
    expect(index).toContain('app.hook.appStart(() =>\n  warmUpInBackground("notifier", async () => {');
    expect(index).toContain('queueName: `${QUEUE}/$deadletterqueue`');
  });

  it("--from links an existing service for send: after its last link in a multi-line list, or within a short one-line list", async () => {
    await newService(root, { name: "notifier", trigger: "queue", from: "api" });
    const services = await read(SERVICES_FILE);
    expect(services).toContain('      link.hub("jobs", "publish"),\n      link.queue("notifier", "send"),\n    ],\n    settings: {\n      UPLOAD_MAX_BYTES');
    await newService(root, { name: "mailer", trigger: "queue", from: "notifier" });
    expect(await read(SERVICES_FILE)).toContain('    links: [link.queue("notifier", "receive"), link.queue("mailer", "send")],\n');
  });
});

describe("an HTTP-triggered service", () => {
  it("gets the next free local port, no links, and GET /api/hello registered from an entry that loads nothing heavy", async () => {
    const plan = await newService(root, { name: "status", trigger: "http", description: 'Says "up"' });
    expect(plan.localPort).toBe(7072);
    const entry = ["  status: {", '    description: "Says \\"up\\"",', "    http: { localPort: 7072 },", "    links: [],", "    settings: {},", "  },", ""].join("\n");
    const services = await read(SERVICES_FILE);
    expect(services).toContain(`${entry}});\n`);
    expect(services.replace(entry, "")).toBe(servicesBefore);
    expect(await read(RESOURCES_FILE)).toBe(resourcesBefore);
    expect(plan.creates.map((file) => file.path)).toEqual(["functions/src/status/index.ts", "functions/src/status/handlers.ts", "functions/src/status/clients.ts", "tests/functions/status.test.ts"]);
    const index = await read("functions/src/status/index.ts");
    expect(runtimeImports(index)).toEqual(["@azure/functions", "../shared/warm-up.js"]);
    expect(index).toContain('app.hook.appStart(() =>\n  warmUpInBackground("status", async () => {');
    expect(index).toContain('app.http("hello", { route: "hello", methods: ["GET"], authLevel: "anonymous"');

    const second = await newService(root, { name: "reports", trigger: "http" });
    expect(second.localPort).toBe(7073);
  });

  it("never picks a port an emulator or the site listens on", () => {
    expect(nextLocalPort([7071])).toBe(7072);
    expect(nextLocalPort([8079])).toBe(8082); // 8080 Web PubSub, 8081 Cosmos
    expect(nextLocalPort([4279])).toBe(4281); // 4280 the site
    expect(nextLocalPort([])).toBe(7071);
  });
});

describe("bad input changes nothing", () => {
  const refused: [string, NewServiceOptions, RegExp][] = [
    ["upper case", { name: "Notifier", trigger: "queue" }, /"Notifier" has upper case; use "notifier"/],
    ["too long for Azure's names", { name: "notificationsender", trigger: "queue" }, /"notificationsender" is 18 characters; 16 at most, so .* fits the 60 characters Azure allows a site name/],
    ["a hyphen", { name: "mail-out", trigger: "http" }, /may hold only lowercase letters and digits/],
    ["a leading digit", { name: "2fa", trigger: "http" }, /must start with a letter/],
    ["an empty name", { name: "", trigger: "http" }, /the service name is empty/],
    ["an existing service", { name: "agent", trigger: "queue" }, /service "agent" already exists in functions\/src\/services\.ts/],
    ["an existing queue", { name: "jobs", trigger: "queue" }, /queue "jobs" already exists in functions\/src\/resources\.ts/],
    ["a reserved name", { name: "shared", trigger: "http" }, /"shared" is reserved/],
    ["an unknown trigger", { name: "notifier", trigger: "cron" as "http" }, /unknown trigger "cron"; one of: http, queue/],
    ["an unknown sender", { name: "notifier", trigger: "queue", from: "mailer" }, /--from mailer: no such service .*declared: api, agent/],
    ["a sender for an HTTP service", { name: "status", trigger: "http", from: "api" }, /--from .* needs --trigger queue/],
    ["itself as sender", { name: "notifier", trigger: "queue", from: "notifier" }, /cannot also be its sender/],
  ];
  it.each(refused)("%s", async (_case, options, message) => {
    const before = await tree();
    const error = await newService(root, options).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(NewServiceError);
    expect((error as Error).message).toMatch(message);
    expect(await tree()).toEqual(before);
  });

  it("a file or folder of the service that already exists", async () => {
    await mkdir(path.join(root, "functions/src/notifier"));
    const before = await tree();
    await expect(newService(root, { name: "notifier", trigger: "queue" })).rejects.toThrow(/functions\/src\/notifier already exists/);
    await writeFile(path.join(root, "tests/functions/status.test.ts"), "// mine\n");
    await expect(newService(root, { name: "status", trigger: "http" })).rejects.toThrow(/tests\/functions\/status\.test\.ts already exists/);
    expect(await tree()).toEqual({ ...before, "tests/functions/status.test.ts": "// mine\n" });
  });

  it("a registry the generator cannot read is named, not guessed at", async () => {
    await writeFile(path.join(root, SERVICES_FILE), servicesBefore.replace("defineServices({", "defineServices(registry, {"));
    const before = await tree();
    await expect(newService(root, { name: "notifier", trigger: "queue" })).rejects.toThrow(/no defineServices\(\{ \.\.\. \}\) call with an object literal/);
    expect(await tree()).toEqual(before);
  });

  it("a write that fails midway is undone: edited declarations restored, created files and folders removed", async () => {
    // tests/functions is a file here, so the last file cannot be written after everything else was.
    await rm(path.join(root, "tests/functions"), { recursive: true });
    await writeFile(path.join(root, "tests/functions"), "not a folder\n");
    const before = await tree();
    const plan = await planNewService(root, { name: "notifier", trigger: "queue" });
    const error = await applyPlan(root, plan).catch((e: unknown) => e as Error);
    expect(error?.message).toMatch(/could not write the notifier service: .*; nothing was changed \(what had been written is undone\)/);
    expect(await tree()).toEqual(before);
    await expect(stat(path.join(root, "functions/src/notifier"))).rejects.toThrow(/ENOENT/);
  });
});

describe("the command line", () => {
  async function command(...argv: string[]) {
    const output = { out: "", err: "" };
    const code = await runNewService(argv, root, { out: (text) => void (output.out += text), err: (text) => void (output.err += text) });
    return { code, ...output };
  }

  it("exits 2 on a refused request, saying why and that nothing changed; 0 with a report of what it wrote", async () => {
    const before = await tree();
    expect(await command("Notifier", "--trigger", "queue")).toEqual({ code: 2, out: "", err: 'new:service: "Notifier" has upper case; use "notifier": the name starts Azure site names, which are lowercase\nNothing was changed.\n' });
    const missing = await command("--trigger", "queue");
    expect(missing.code).toBe(2);
    expect(missing.err).toMatch(/^new:service: the service name is missing\n\nUsage: npm run new:service -- <name> --trigger http\|queue/);
    expect(await tree()).toEqual(before);
    expect(await command("--help")).toMatchObject({ code: 0, err: "" });

    const done = await command("notifier", "--trigger", "queue");
    expect(done.code).toBe(0);
    expect(done.out).toContain("Created the notifier service (queue trigger):\n  edited   functions/src/resources.ts\n  edited   functions/src/services.ts\n  created  functions/src/notifier/index.ts");
    expect(done.out).toContain('add this to its links in functions/src/services.ts:\n    link.queue("notifier", "send"),\n');
    expect((await command("status", "--trigger", "http")).out).toContain("it answers on http://127.0.0.1:7072/api/hello (`--status-port N` moves it)");
  });

  it("takes a name, a trigger and the options", () => {
    expect(parseNewServiceArgs(["notifier", "--trigger", "queue", "--from", "api"])).toEqual({ name: "notifier", trigger: "queue", from: "api" });
    expect(parseNewServiceArgs(["status", "--trigger=http", "--description", "Says up"])).toEqual({ name: "status", trigger: "http", description: "Says up" });
    expect(parseNewServiceArgs(["--help"])).toBe("help");
  });

  it.each([
    [["--trigger", "queue"], /the service name is missing/],
    [["notifier"], /--trigger is missing: one of http, queue/],
    [["notifier", "--trigger", "timer"], /unknown trigger "timer"; one of: http, queue/],
    [["notifier", "mailer", "--trigger", "queue"], /one service at a time; unexpected: mailer/],
    [["notifier", "--trigger", "queue", "--from"], /--from/],
    [["notifier", "--trigger", "queue", "--sessions"], /Unknown option '--sessions'/],
  ])("refuses %j", (argv, message) => {
    expect(() => parseNewServiceArgs(argv)).toThrow(UsageError);
    expect(() => parseNewServiceArgs(argv)).toThrow(message);
  });
});

describe("edits of the declaration source", () => {
  const resourcesWith = (queues: string) => `export const resources = defineResources({\n  cosmos: { database: "d", containers: {} },\n  queues: ${queues},\n  blobContainers: {},\n  hubs: {},\n});\n`;

  it("keeps a comment on the last entry's line with that entry, and adds a comma the last entry lacked", () => {
    expect(addQueue(resourcesWith("{\n    jobs: {}, // the api's\n  }"), ["mail: {},"])).toBe(resourcesWith("{\n    jobs: {}, // the api's\n    mail: {},\n  }"));
    expect(addQueue(resourcesWith("{\n    jobs: {}\n  }"), ["mail: {},"])).toBe(resourcesWith("{\n    jobs: {},\n    mail: {},\n  }"));
  });

  it("opens an empty object onto lines of its own", () => {
    expect(addQueue(resourcesWith("{}"), ["// first", "mail: {},"])).toBe(resourcesWith("{\n    // first\n    mail: {},\n  }"));
    expect(addService("export const services = defineServices({});\n", ["one: {", "  links: [],", "},"])).toBe("export const services = defineServices({\n  one: {\n    links: [],\n  },\n});\n");
  });

  it("puts links one per line when a single line would grow too long", () => {
    const source = `const services = defineServices({\n  one: {\n    links: [link.queue("a-rather-long-queue-name", "receive"), link.cosmosContainer("a-rather-long-container", "read")],\n  },\n});\n`;
    expect(addLink(source, "one", 'link.queue("another-queue", "send")')).toBe(
      `const services = defineServices({\n  one: {\n    links: [\n      link.queue("a-rather-long-queue-name", "receive"),\n      link.cosmosContainer("a-rather-long-container", "read"),\n      link.queue("another-queue", "send"),\n    ],\n  },\n});\n`,
    );
    expect(addLink(source.replace(/links: \[.*\]/, "links: []"), "one", 'link.queue("q", "send")')).toContain('    links: [link.queue("q", "send")],\n');
  });

  it("refuses an edit that would not parse", () => {
    expect(() => addQueue(resourcesWith("{\n    jobs: {},\n  }"), ["mail: {"])).toThrow(/functions\/src\/resources\.ts:\d+: /);
  });
});

describe("the repository's own declaration files", () => {
  it("are read as the registry declares them: every service, its local port, every queue", async () => {
    const registry = readServices(await readFile(path.join(repoRoot, SERVICES_FILE), "utf8"));
    expect(registry.services).toEqual(serviceNames);
    expect(registry.localPorts).toEqual(serviceNames.flatMap((service) => declarationOf(service).http?.localPort ?? []));
    expect(readQueues(await readFile(path.join(repoRoot, RESOURCES_FILE), "utf8"))).toEqual(Object.keys(resources.queues));
  });
});
