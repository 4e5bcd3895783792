/**
 * `npm run new:service`'s work, in two steps: {@link planNewService} reads the repository, checks
 * everything (the name, the registry, the queues, the files it would write) and computes every file
 * change without touching the disk; {@link applyPlan} writes them, and undoes what it wrote if a
 * write fails, so the repository ends up either with the whole service or as it was.
 */
import { access, mkdir, readFile, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { reservedServiceNames, serviceNamePattern } from "../../functions/src/platform/service-kinds";
import { EMULATOR_PORTS } from "../../local/emulator-ports";
import { addLink, addQueue, addService, hasLink, readQueues, readServices } from "./registry-source";
import { defaultDescription, queueEntry, registryEntry, sendLink, serviceFiles, type Trigger } from "./templates";

export const triggers: readonly Trigger[] = ["http", "queue"];

export interface NewServiceOptions {
  readonly name: string;
  readonly trigger: Trigger;
  /** The one-line description in the registry. @default per trigger (templates.ts) */
  readonly description?: string;
  /** Queue services: an existing service linked to the new queue for `send`. */
  readonly from?: string;
}

/** A request that cannot be carried out; nothing was written. */
export class NewServiceError extends Error {
  override readonly name = "NewServiceError";
}

export const SERVICES_FILE = "functions/src/services.ts";
export const RESOURCES_FILE = "functions/src/resources.ts";
/** The first local port the generator hands out when no service declares one. */
const FIRST_LOCAL_PORT = 7071;

export interface FileEdit {
  readonly path: string;
  readonly before: string;
  readonly after: string;
}

export interface NewServicePlan {
  readonly name: string;
  readonly trigger: Trigger;
  /** HTTP services: the local port given to it. */
  readonly localPort?: number;
  /** The declaration files changed (services.ts, and resources.ts for a queue). */
  readonly edits: readonly FileEdit[];
  /** New files, each with its content. */
  readonly creates: readonly { readonly path: string; readonly content: string }[];
  /** Queue services: the registry line another service needs to send (already added with `from`). */
  readonly sendLink?: string;
}

/** Why a name cannot be a service's, or undefined when it can (before looking at the repository). */
export function serviceNameProblem(name: string): string | undefined {
  if (name === "") return "the service name is empty";
  if (/[A-Z]/.test(name)) return `"${name}" has upper case; use "${name.toLowerCase()}": the name starts Azure site names, which are lowercase`;
  if (name.length > 16) return `"${name}" is ${name.length} characters; 16 at most, so "<service>-<prefix>-<stack>-<hash>" fits the 60 characters Azure allows a site name`;
  if (name.length < 2) return `"${name}" is too short; 2 to 16 characters`;
  if (!/^[a-z]/.test(name)) return `"${name}" must start with a letter`;
  if (!serviceNamePattern.test(name)) return `"${name}" may hold only lowercase letters and digits (no "-", "_" or "."): the service name starts the Function App's site name, and a hyphen would blur where it ends`;
  if (reservedServiceNames.includes(name)) return `"${name}" is reserved (${reservedServiceNames.join(", ")}): a folder of functions/src or a listener of the local platform has that name`;
  return undefined;
}

async function exists(file: string): Promise<boolean> {
  return access(file).then(
    () => true,
    () => false,
  );
}

async function readSource(root: string, file: string): Promise<string> {
  try {
    return await readFile(path.join(root, file), "utf8");
  } catch (error) {
    throw new NewServiceError(`cannot read ${file}: ${(error as Error).message} (is ${root} the repository root?)`);
  }
}

/** The next free local port: after the highest a service declares, skipping the emulators' ports. */
export function nextLocalPort(declared: readonly number[]): number {
  const taken = new Set<number>([...declared, ...Object.values(EMULATOR_PORTS)]);
  let port = declared.length > 0 ? Math.max(...declared) + 1 : FIRST_LOCAL_PORT;
  while (taken.has(port)) port += 1;
  return port;
}

/** Checks the request against the repository at `root` and computes every change; writes nothing. */
export async function planNewService(root: string, options: NewServiceOptions): Promise<NewServicePlan> {
  const { name, trigger } = options;
  const nameProblem = serviceNameProblem(name);
  if (nameProblem) throw new NewServiceError(nameProblem);
  if (!triggers.includes(trigger)) throw new NewServiceError(`unknown trigger "${String(trigger)}"; one of: ${triggers.join(", ")}`);
  if (options.from !== undefined && trigger !== "queue") throw new NewServiceError("--from links a sender to the new service's queue: it needs --trigger queue");
  if (options.description !== undefined && options.description.trim() === "") throw new NewServiceError("the description is empty");

  const servicesBefore = await readSource(root, SERVICES_FILE);
  const registry = safely(() => readServices(servicesBefore));
  if (registry.services.includes(name)) throw new NewServiceError(`service "${name}" already exists in ${SERVICES_FILE}`);
  if (options.from !== undefined) {
    if (options.from === name) throw new NewServiceError(`--from ${name}: the new service receives from its queue; it cannot also be its sender`);
    if (!registry.services.includes(options.from)) {
      throw new NewServiceError(`--from ${options.from}: no such service in ${SERVICES_FILE}; declared: ${registry.services.join(", ")}`);
    }
  }

  const edits: FileEdit[] = [];
  let servicesAfter = servicesBefore;
  let link: string | undefined;
  if (trigger === "queue") {
    const resourcesBefore = await readSource(root, RESOURCES_FILE);
    const queues = safely(() => readQueues(resourcesBefore));
    if (queues.includes(name)) throw new NewServiceError(`queue "${name}" already exists in ${RESOURCES_FILE}: choose another service name, or link a service to that queue for "receive" by hand`);
    edits.push({ path: RESOURCES_FILE, before: resourcesBefore, after: safely(() => addQueue(resourcesBefore, queueEntry(name))) });
    link = sendLink(name);
    if (options.from !== undefined) {
      const sender = options.from;
      if (hasLink(servicesBefore, sender, link)) throw new NewServiceError(`${sender} already links ${link}`);
      servicesAfter = safely(() => addLink(servicesAfter, sender, link!));
    }
  }
  const localPort = trigger === "http" ? nextLocalPort(registry.localPorts) : undefined;
  const input = { name, trigger, description: options.description?.trim() ?? defaultDescription(name, trigger), ...(localPort !== undefined ? { localPort } : {}) };
  servicesAfter = safely(() => addService(servicesAfter, registryEntry(input)));
  // services.ts last: it names the queue, so it is written after resources.ts declares it.
  edits.push({ path: SERVICES_FILE, before: servicesBefore, after: servicesAfter });

  const creates = serviceFiles(input);
  const taken = [path.join("functions", "src", name), ...creates.map((file) => file.path)];
  for (const file of taken) {
    if (await exists(path.join(root, file))) throw new NewServiceError(`${file.split(path.sep).join("/")} already exists; move it away or choose another name`);
  }
  return { name, trigger, ...(localPort !== undefined ? { localPort } : {}), edits, creates, ...(link ? { sendLink: link } : {}) };
}

/** Runs a source edit, turning a file of an unexpected shape into a NewServiceError. */
function safely<T>(work: () => T): T {
  try {
    return work();
  } catch (error) {
    throw new NewServiceError(`cannot edit the declarations: ${(error as Error).message}`);
  }
}

/**
 * Writes a plan: the declaration edits, then the new files (each refused if it appeared meanwhile).
 * If any write fails, what was written is undone (edited files get their old text back, created
 * files and folders are removed) and the error says so.
 */
export async function applyPlan(root: string, plan: NewServicePlan): Promise<void> {
  const undo: (() => Promise<void>)[] = [];
  try {
    for (const edit of plan.edits) {
      const file = path.join(root, edit.path);
      if ((await readFile(file, "utf8")) !== edit.before) throw new Error(`${edit.path} changed while the service was being generated`);
      undo.push(() => writeFile(file, edit.before));
      await writeFile(file, edit.after);
    }
    for (const created of plan.creates) {
      const file = path.join(root, created.path);
      const folder = await mkdir(path.dirname(file), { recursive: true });
      if (folder !== undefined) undo.push(() => rm(folder, { recursive: true, force: true }));
      await writeFile(file, created.content, { flag: "wx" });
      undo.push(() => rm(file, { force: true }));
    }
  } catch (error) {
    const failures: string[] = [];
    for (const step of undo.reverse()) await step().catch((undoError: unknown) => failures.push((undoError as Error).message));
    const state = failures.length === 0 ? "nothing was changed (what had been written is undone)" : `undoing failed too, check the files by hand: ${failures.join("; ")}`;
    throw new Error(`could not write the ${plan.name} service: ${(error as Error).message}; ${state}`);
  }
}

/** Plans and writes a new service. */
export async function newService(root: string, options: NewServiceOptions): Promise<NewServicePlan> {
  const plan = await planNewService(root, options);
  await applyPlan(root, plan);
  return plan;
}
