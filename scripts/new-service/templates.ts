/**
 * What `npm run new:service` writes: the registry entry, the queue declaration, and the files of a
 * new service, for each trigger. Each service keeps the cold-start discipline of the existing ones:
 * its entry (index.ts) registers functions and imports nothing but @azure/functions and small
 * declarations; the handlers load on the first invocation, the settings and telemetry then too
 * (clients.ts). Paths are relative to the repository root.
 */

export type Trigger = "http" | "queue";

export interface ServiceTemplateInput {
  readonly name: string;
  readonly trigger: Trigger;
  readonly description: string;
  /** HTTP services: the port of its functions under `npm start`. */
  readonly localPort?: number;
}

export interface GeneratedFile {
  readonly path: string;
  readonly content: string;
}

/** `notifier` -> `Notifier` (service names are lowercase letters and digits, starting with a letter). */
export function pascalCase(name: string): string {
  return `${name[0]!.toUpperCase()}${name.slice(1)}`;
}

/** The example route of an HTTP service. */
export const HTTP_ROUTE = "hello";

export function defaultDescription(name: string, trigger: Trigger): string {
  return trigger === "queue" ? `Handles the messages of the ${name} queue` : `Answers GET /api/${HTTP_ROUTE}`;
}

/** The link a service needs to send to the queue of a queue-triggered service. */
export function sendLink(name: string): string {
  return `link.queue(${JSON.stringify(name)}, "send")`;
}

/** The service's entry in services.ts, unindented. */
export function registryEntry(input: ServiceTemplateInput): string[] {
  const lines = [`${input.name}: {`, `  description: ${JSON.stringify(input.description)},`];
  if (input.trigger === "http") {
    lines.push(`  http: { localPort: ${input.localPort} },`, "  links: [],");
  } else {
    lines.push(`  links: [link.queue(${JSON.stringify(input.name)}, "receive")],`);
  }
  lines.push("  settings: {},", "},");
  return lines;
}

/** The service's queue in resources.ts, unindented. */
export function queueEntry(name: string): string[] {
  return [
    `// To the ${name} service; options left out take the defaults of platform/resource-kinds.ts (5 deliveries, then dead-lettered).`,
    `${name}: {},`,
  ];
}

/** Every file of a new service, in the order they are written. */
export function serviceFiles(input: ServiceTemplateInput): GeneratedFile[] {
  return input.trigger === "queue" ? queueServiceFiles(input.name) : httpServiceFiles(input.name, input.localPort!);
}

function clientsFile(name: string, what: "message" | "request"): string {
  const Name = pascalCase(name);
  return `/**
 * The ${name} service's dependencies, created once per process (not at import: registration must
 * not need settings, and registration must not pay for them), in the warm-up the worker's start
 * begins (../shared/warm-up.ts) or on the first ${what} if that comes first. A failed creation is
 * not cached, so a later ${what} retries it. The SDK clients of the service's links belong here
 * (../shared/azure-clients.ts makes each from the settings' Connection); open their connections in
 * the warm-up too (index.ts) when every ${what} needs them.
 */
import { loadSettings, type Settings } from "../settings.js";
import { createdOnFirstUse } from "../shared/azure-clients.js";
import { ingestionIdentity, startTelemetry } from "../shared/telemetry-export.js";

export interface ${Name}Dependencies {
  readonly settings: Settings<"${name}">;
}

export const ${name}Dependencies: () => Promise<${Name}Dependencies> = createdOnFirstUse(() => create${Name}Dependencies(process.env));

export async function create${Name}Dependencies(env: NodeJS.ProcessEnv): Promise<${Name}Dependencies> {
  const settings = loadSettings("${name}", env);
  const managedIdentity = ingestionIdentity(env);
  await startTelemetry({
    connectionString: settings.APPLICATIONINSIGHTS_CONNECTION_STRING,
    serviceName: "${name}",
    ...(managedIdentity ? { managedIdentity } : {}),
  });
  return { settings };
}
`;
}

/**
 * The part of every service's entry that defers its handlers: created on the first call (or by the
 * warm-up), and the appStart hook that starts that warm-up when the worker starts the service.
 */
function deferredHandlers(name: string, firstCall: "invocation" | "request"): string {
  const Name = pascalCase(name);
  return `let handlers: ${Name}Handlers | undefined;

function ${name}Handlers(): ${Name}Handlers {
  if (!handlers) {
    // A deferred require (this package is CommonJS): evaluated on the first ${firstCall} (or the warm-up) only.
    const { create${Name}Handlers } = require("./handlers.js") as typeof import("./handlers.js");
    const { ${name}Dependencies } = require("./clients.js") as typeof import("./clients.js");
    handlers = create${Name}Handlers(${name}Dependencies);
  }
  return handlers;
}

// Loads the handlers and creates the dependencies while the worker starts (../shared/warm-up.ts).
app.hook.appStart(() =>
  warmUpInBackground("${name}", async () => {
    ${name}Handlers();
    await (require("./clients.js") as typeof import("./clients.js")).${name}Dependencies();
  }),
);
`;
}

function queueServiceFiles(name: string): GeneratedFile[] {
  const Name = pascalCase(name);
  const QUEUE = `${name.toUpperCase()}_QUEUE`;
  const index = `/**
 * The ${name} service's entry point: registers its two Service Bus functions, and nothing else.
 * Registration pays only for @azure/functions: the handlers (zod), the settings and telemetry
 * (clients.ts) load after it, in the warm-up the worker's start begins (../shared/warm-up.ts) or on
 * the first message if that comes first.
 *
 * - processMessage: the ${name} queue. A throw abandons the message, so Service Bus delivers it again.
 * - handleDeadLetteredMessage: the queue's dead-letter sub-queue, where a message ends up after the
 *   queue's maxDeliveryCount deliveries (functions/src/resources.ts).
 */
import { app, type InvocationContext } from "@azure/functions";
import { connectionFamilies } from "../platform/links.js";
import type { resources } from "../resources.js";
import { warmUpInBackground } from "../shared/warm-up.js";
import type { ${Name}Handlers } from "./handlers.js";

/** The queue, as resources.ts declares it: renaming it there fails to compile here. */
const QUEUE = "${name}" satisfies keyof typeof resources.queues;
/** The connection setting of the service's Service Bus link (\`ServiceBus__fullyQualifiedNamespace\` in Azure). */
const SERVICE_BUS_CONNECTION = connectionFamilies.serviceBus.setting;

${deferredHandlers(name, "invocation")}
app.serviceBusQueue("processMessage", {
  connection: SERVICE_BUS_CONNECTION,
  queueName: QUEUE,
  handler: (message: unknown, context: InvocationContext) => ${name}Handlers().processMessage(message, context),
});

app.serviceBusQueue("handleDeadLetteredMessage", {
  connection: SERVICE_BUS_CONNECTION,
  queueName: \`\${QUEUE}/$deadletterqueue\`,
  handler: (message: unknown, context: InvocationContext) => ${name}Handlers().handleDeadLetteredMessage(message, context),
});
`;
  const handlers = `/**
 * The ${name} service's function handlers: check each message against the queue's contract
 * (../shared/${name}-queue.ts), continue the sender's trace, and hand the message to
 * process-message.ts. Dependencies come from a factory so index.ts can create them on the first
 * message and tests can hand in their own.
 */
import type { InvocationContext } from "@azure/functions";
import { ${QUEUE}, ${Name}Message } from "../shared/${name}-queue.js";
import { messageBody, messageMetadata } from "../shared/service-bus-message.js";
import { extractTraceContext, SpanKind, withSpan } from "../shared/telemetry.js";
import type { ${Name}Dependencies } from "./clients.js";
import { process${Name}Message } from "./process-message.js";

export interface ${Name}Handlers {
  processMessage(message: unknown, context: InvocationContext): Promise<void>;
  handleDeadLetteredMessage(message: unknown, context: InvocationContext): Promise<void>;
}

export function create${Name}Handlers(dependencies: () => Promise<${Name}Dependencies>): ${Name}Handlers {
  return {
    async processMessage(body, context) {
      const metadata = messageMetadata(context);
      const parsed = ${Name}Message.safeParse(messageBody(body));
      if (!parsed.success) {
        // No retry can fix a message of the wrong shape: it is logged and completed, not redelivered.
        const problems = parsed.error.issues.map((issue) => \`\${issue.path.join(".") || "(body)"}: \${issue.message}\`).join("; ");
        context.error(\`message \${metadata.messageId ?? "(no id)"} is not a ${name} message (\${problems}); discarded\`);
        return;
      }
      const deps = await dependencies();
      await withSpan(
        "${name} process",
        {
          kind: SpanKind.CONSUMER,
          parent: extractTraceContext(metadata.applicationProperties),
          attributes: {
            "messaging.system": "servicebus",
            "messaging.operation.type": "process",
            "messaging.destination.name": ${QUEUE},
            ...(metadata.messageId ? { "messaging.message.id": metadata.messageId } : {}),
          },
        },
        () => process${Name}Message(deps, parsed.data, { info: (line) => context.info(line), warn: (line) => context.warn(line) }),
      );
    },

    async handleDeadLetteredMessage(_body, context) {
      // The end of the line: Service Bus delivers this message no more. Say which and why, so it can
      // be looked at (and resent) from the dead-letter queue; the body stays there, not in the log.
      const metadata = messageMetadata(context);
      const reason = [metadata.deadLetterReason ?? "no reason given", metadata.deadLetterDescription].filter(Boolean).join(": ");
      context.error(\`message \${metadata.messageId ?? "(no id)"} was dead-lettered (\${reason}) after \${metadata.deliveryCount ?? "?"} deliveries\`);
    },
  };
}
`;
  const processMessage = `/**
 * What the ${name} service does with one message: the domain logic, free of @azure/functions so it
 * is tested directly. Service Bus delivers at least once, so it may see a message twice: keep it
 * idempotent. Throw to have the message delivered again (after the queue's maxDeliveryCount
 * deliveries it is dead-lettered).
 */
import type { ${Name}Message } from "../shared/${name}-queue.js";
import type { ${Name}Dependencies } from "./clients.js";

export interface ${Name}Log {
  info(line: string): void;
  warn(line: string): void;
}

export async function process${Name}Message(_deps: ${Name}Dependencies, message: ${Name}Message, log: ${Name}Log): Promise<void> {
  // Replace with the service's work.
  log.info(\`${name} message \${message.id}: \${message.text.length} characters\`);
}
`;
  const queue = `/**
 * The ${name} queue (functions/src/resources.ts): the messages it carries, checked by the ${name}
 * service when it reads one, and the sender other services use. A service sends only with a link
 * for it in functions/src/services.ts, \`link.queue("${name}", "send")\`, which gives it the
 * ServiceBus connection setting and the Data Sender role on this queue alone.
 */
import type { ServiceBusClient, ServiceBusSender } from "@azure/service-bus";
import { z } from "zod";
import type { resources } from "../resources.js";
import { injectTraceContext, SpanKind, withSpan } from "./telemetry.js";

export const ${QUEUE} = "${name}" satisfies keyof typeof resources.queues;

/** One message for the ${name} service. The fields are an example: make them what the service needs. */
export const ${Name}Message = z.object({
  /** Unique per message: it becomes the message id, so a retried send within the queue's duplicate-detection window is dropped. */
  id: z.string().min(1).max(128),
  text: z.string().max(10_000),
});
export type ${Name}Message = z.infer<typeof ${Name}Message>;

/** Sends ${name} messages with the sender's trace context, over one link kept open between sends. */
export class ${Name}Queue {
  private sender: ServiceBusSender | undefined;

  constructor(private readonly client: ServiceBusClient) {}

  async send(message: ${Name}Message): Promise<void> {
    const body = ${Name}Message.parse(message);
    await withSpan(
      \`\${${QUEUE}} send\`,
      { kind: SpanKind.PRODUCER, attributes: { "messaging.system": "servicebus", "messaging.destination.name": ${QUEUE}, "messaging.message.id": body.id } },
      async () => {
        this.sender ??= this.client.createSender(${QUEUE});
        // Injected inside the producer span, so the ${name} service's span is its child.
        await this.sender.sendMessages({ messageId: body.id, contentType: "application/json", body, applicationProperties: injectTraceContext({}) });
      },
    );
  }

  async close(): Promise<void> {
    await this.sender?.close();
    this.sender = undefined;
  }
}
`;
  const test = `/**
 * The ${name} service: its handlers on messages, and the service as \`npm start\` runs it (its entry
 * under the local Functions host, its queue on the Service Bus emulator as resources.ts declares
 * it, its settings from the settings contract), fed through the sender other services use.
 */
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { InvocationContext } from "@azure/functions";
import { ServiceBusClient } from "@azure/service-bus";
import { startHostProcess, type HostProcess } from "@platform-tools/functions-host";
import { startServiceBusEmulator, type ServiceBusEmulator } from "@platform-tools/servicebus-emulator";
import { create${Name}Handlers } from "../../functions/src/${name}/handlers.js";
import { resources } from "../../functions/src/resources.js";
import { localAppSettings, loadSettings } from "../../functions/src/settings.js";
import { ${QUEUE}, ${Name}Queue } from "../../functions/src/shared/${name}-queue.js";
import { defaultConfig } from "../../infrastructure/config.js";
import { emulatorQueues } from "../../local/app-resources.js";

const repoRoot = join(__dirname, "..", "..");
let emulator: ServiceBusEmulator;
let host: HostProcess;
let client: ServiceBusClient;
let queue: ${Name}Queue;
let settings: Record<string, string>;
const hostOutput: string[] = [];
const lineWaiters: { pattern: RegExp; resolve: (line: string) => void }[] = [];

/** The first line of the host's output that matches, already written or still to come. */
function hostLine(pattern: RegExp): Promise<string> {
  const seen = hostOutput.find((line) => pattern.test(line));
  return seen !== undefined ? Promise.resolve(seen) : new Promise((resolve) => lineWaiters.push({ pattern, resolve }));
}

beforeAll(async () => {
  emulator = await startServiceBusEmulator({ queues: emulatorQueues(resources).filter((q) => q.name === ${QUEUE}) });
  const local = "UseDevelopmentEmulator=true";
  settings = localAppSettings("${name}", {
    connectionStrings: { serviceBus: emulator.connectionString, cosmos: local, blob: local, webPubSub: local },
    config: defaultConfig,
  });
  host = await startHostProcess({
    name: "${name}",
    entry: join(repoRoot, "functions/src/${name}/index.ts"),
    hostJson: join(repoRoot, "functions/host.json"),
    settings,
    output: (line) => {
      hostOutput.push(line);
      for (const waiter of lineWaiters.filter((w) => w.pattern.test(line))) {
        lineWaiters.splice(lineWaiters.indexOf(waiter), 1);
        waiter.resolve(line);
      }
    },
  });
  client = new ServiceBusClient(emulator.connectionString);
  queue = new ${Name}Queue(client);
}, 60_000);

afterAll(async () => {
  await queue?.close();
  await client?.close();
  await host?.stop();
  await emulator?.stop();
});

function invocation(triggerMetadata: Record<string, unknown> = {}) {
  const lines: string[] = [];
  const context = new InvocationContext({ functionName: "processMessage", triggerMetadata, logHandler: (level, ...args) => lines.push(\`\${level} \${args.join(" ")}\`) });
  return { context, lines };
}

describe("${name} handlers", () => {
  const handlers = () => create${Name}Handlers(async () => ({ settings: loadSettings("${name}", settings) }));

  it("processes a message of the queue's contract", async () => {
    const { context, lines } = invocation({ messageId: "m-1" });
    await handlers().processMessage(JSON.stringify({ id: "m-1", text: "hello" }), context);
    expect(lines).toContain("information ${name} message m-1: 5 characters");
  });

  it("discards a message of another shape without throwing (no redelivery can fix it), saying why", async () => {
    const { context, lines } = invocation({ messageId: "m-2" });
    await expect(handlers().processMessage({ id: "m-2" }, context)).resolves.toBeUndefined();
    expect(lines.join("\\n")).toMatch(/^error message m-2 is not a ${name} message \\(text: .+\\); discarded$/m);
  });

  it("reports a dead-lettered message with Service Bus's reason", async () => {
    const { context, lines } = invocation({ messageId: "m-3", deliveryCount: 5, applicationProperties: { deadLetterReason: "MaxDeliveryCountExceeded" } });
    await handlers().handleDeadLetteredMessage({ id: "m-3", text: "x" }, context);
    expect(lines).toEqual(["error message m-3 was dead-lettered (MaxDeliveryCountExceeded) after 5 deliveries"]);
  });
});

describe("${name} under the local Functions host", () => {
  it("registers a trigger on its queue and one on the queue's dead-letter sub-queue", () => {
    expect(host.functions.map((fn) => [fn.name, fn.source]).sort()).toEqual([
      ["handleDeadLetteredMessage", \`\${${QUEUE}}/$deadletterqueue\`],
      ["processMessage", ${QUEUE}],
    ]);
  });

  it("processes and completes a message another service sends", async () => {
    const id = \`host-\${Date.now()}\`;
    await queue.send({ id, text: "sent like a service would" });
    await hostLine(new RegExp(\`${name} message \${id}: 25 characters\`));
    await hostLine(new RegExp(\`message \${id} from \${${QUEUE}} completed\`));
  });
});
`;
  return [
    { path: `functions/src/${name}/index.ts`, content: index },
    { path: `functions/src/${name}/handlers.ts`, content: handlers },
    { path: `functions/src/${name}/process-message.ts`, content: processMessage },
    { path: `functions/src/${name}/clients.ts`, content: clientsFile(name, "message") },
    { path: `functions/src/shared/${name}-queue.ts`, content: queue },
    { path: `tests/functions/${name}.test.ts`, content: test },
  ];
}

function httpServiceFiles(name: string, localPort: number): GeneratedFile[] {
  const Name = pascalCase(name);
  const index = `/**
 * The ${name} service's entry point: registers its HTTP functions, and nothing else. Registration
 * pays only for @azure/functions: the handlers, the settings and telemetry (clients.ts) load after
 * it, in the warm-up the worker's start begins (../shared/warm-up.ts) or on the first request if
 * that comes first.
 *
 * Its routes answer anyone who can reach them: the service is not browser-facing (services.ts), so
 * no App Service Authentication stands in front of it. Check the caller in a route that reads or
 * changes data, or declare the service browser-facing to put Entra sign-in in front.
 */
import { app, type HttpRequest, type InvocationContext } from "@azure/functions";
import { warmUpInBackground } from "../shared/warm-up.js";
import type { ${Name}Handlers } from "./handlers.js";

${deferredHandlers(name, "request")}
function ${name}Handler(name: keyof ${Name}Handlers) {
  return (request: HttpRequest, context: InvocationContext) => ${name}Handlers()[name](request, context);
}

app.http("${HTTP_ROUTE}", { route: "${HTTP_ROUTE}", methods: ["GET"], authLevel: "anonymous", handler: ${name}Handler("${HTTP_ROUTE}") });
`;
  const handlers = `/**
 * The ${name} service's HTTP handlers. Dependencies come from a factory so index.ts can create them
 * on the first request and tests can hand in their own.
 */
import type { HttpRequest, HttpResponseInit, InvocationContext } from "@azure/functions";
import type { ${Name}Dependencies } from "./clients.js";

export interface ${Name}Handlers {
  ${HTTP_ROUTE}(request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit>;
}

export function create${Name}Handlers(dependencies: () => Promise<${Name}Dependencies>): ${Name}Handlers {
  return {
    async ${HTTP_ROUTE}() {
      await dependencies();
      // Replace with the service's work.
      return { status: 200, jsonBody: { service: "${name}", message: "hello" }, headers: { "cache-control": "no-store" } };
    },
  };
}
`;
  const test = `/**
 * The ${name} service: its handler, and the service as \`npm start\` runs it (its entry under the
 * local Functions host on a free port, its settings from the settings contract).
 */
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { HttpRequest, InvocationContext } from "@azure/functions";
import { startHostProcess, type HostProcess } from "@platform-tools/functions-host";
import { create${Name}Handlers } from "../../functions/src/${name}/handlers.js";
import { localAppSettings, loadSettings } from "../../functions/src/settings.js";
import { services } from "../../functions/src/services.js";
import { defaultConfig } from "../../infrastructure/config.js";

const repoRoot = join(__dirname, "..", "..");
const local = "UseDevelopmentEmulator=true";
const settings = localAppSettings("${name}", { connectionStrings: { serviceBus: local, cosmos: local, blob: local, webPubSub: local }, config: defaultConfig });
let host: HostProcess;

beforeAll(async () => {
  host = await startHostProcess({
    name: "${name}",
    entry: join(repoRoot, "functions/src/${name}/index.ts"),
    hostJson: join(repoRoot, "functions/host.json"),
    port: 0,
    settings,
    output: () => {},
  });
}, 60_000);

afterAll(async () => {
  await host?.stop();
});

describe("${name}", () => {
  it("declares its own local port for npm start", () => {
    expect(services.${name}.http.localPort).toBe(${localPort});
  });

  it("the ${HTTP_ROUTE} handler answers with JSON", async () => {
    const handlers = create${Name}Handlers(async () => ({ settings: loadSettings("${name}", settings) }));
    const response = await handlers.${HTTP_ROUTE}(new HttpRequest({ method: "GET", url: "http://localhost/api/${HTTP_ROUTE}" }), new InvocationContext());
    expect(response).toMatchObject({ status: 200, jsonBody: { service: "${name}" } });
  });

  it("answers GET /api/${HTTP_ROUTE} under the local Functions host", async () => {
    const response = await fetch(\`\${host.url}/api/${HTTP_ROUTE}\`);
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ service: "${name}", message: "hello" });
  });
});
`;
  return [
    { path: `functions/src/${name}/index.ts`, content: index },
    { path: `functions/src/${name}/handlers.ts`, content: handlers },
    { path: `functions/src/${name}/clients.ts`, content: clientsFile(name, "request") },
    { path: `tests/functions/${name}.test.ts`, content: test },
  ];
}
