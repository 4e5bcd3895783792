/**
 * What one job costs in Azure operations: the counting rules of `npm run bench:ops`, pure so that a
 * unit test covers them. Requests are classified the way each service bills them: Cosmos DB by
 * request kind (its request units are estimated from the kind and the item size, prices.ts), Blob
 * Storage by operation class (write, read, list and create container, other; deletes are free),
 * Service Bus by operation, Web PubSub by outbound message in 2 KB units, Functions by execution
 * and execution time.
 */
import type { ServiceBusOperation } from "@platform-tools/servicebus-emulator";

/** One HTTP exchange seen between a service and an emulator. */
export interface Exchange {
  method: string;
  /** Path and query, as sent. */
  url: string;
  headers: Readonly<Record<string, string | string[] | undefined>>;
  status: number;
  requestBytes: number;
  responseBytes: number;
}

export type CosmosRequestKind = "pointRead" | "create" | "replace" | "upsert" | "patch" | "delete" | "query" | "batch" | "metadata";

const header = (headers: Exchange["headers"], name: string): string => {
  const value = headers[name];
  return (Array.isArray(value) ? value[0] : value)?.toLowerCase() ?? "";
};

/**
 * A Cosmos DB REST request by kind: item operations on `/dbs/{db}/colls/{coll}/docs[/{id}]`, and
 * everything else (the account, database, container and partition-key-range reads the SDK makes,
 * which serverless does not bill as item operations) as metadata.
 */
export function classifyCosmos(exchange: Pick<Exchange, "method" | "url" | "headers">): CosmosRequestKind {
  const path = exchange.url.split("?")[0]!.replace(/\/+$/, "");
  const docs = /^\/dbs\/[^/]+\/colls\/[^/]+\/docs(\/[^/]+)?$/.exec(path);
  if (!docs) return "metadata";
  const method = exchange.method.toUpperCase();
  const onItem = docs[1] !== undefined;
  if (onItem) {
    if (method === "GET") return "pointRead";
    if (method === "PUT") return "replace";
    if (method === "PATCH") return "patch";
    if (method === "DELETE") return "delete";
    return "metadata";
  }
  if (method === "POST") {
    if (header(exchange.headers, "x-ms-documentdb-isquery") === "true" || header(exchange.headers, "content-type").startsWith("application/query+json")) return "query";
    if (header(exchange.headers, "x-ms-cosmos-is-batch-request") === "true") return "batch";
    if (header(exchange.headers, "x-ms-documentdb-is-upsert") === "true") return "upsert";
    return "create";
  }
  // GET on the collection's docs is a read feed: billed like a query.
  if (method === "GET") return "query";
  return "metadata";
}

/** The classes Blob Storage prices operations in; deletes are free. */
export type BlobOperationClass = "write" | "read" | "list" | "other" | "delete";

/**
 * A Blob REST request by pricing class. Writes: Put Blob, Put Block, Put Block List, Append Block,
 * Set Blob Metadata/Properties/Tier, Copy, Snapshot, Set Container ACL/Metadata. Reads: Get Blob,
 * Get Block List. List and create container: List Blobs, List Containers, Create Container. Other:
 * Get Blob Properties/Metadata, Get Container Properties, Get User Delegation Key and the rest.
 */
export function classifyBlob(exchange: Pick<Exchange, "method" | "url">): BlobOperationClass {
  const url = new URL(exchange.url, "http://blob");
  const comp = url.searchParams.get("comp");
  const container = url.searchParams.get("restype") === "container";
  const method = exchange.method.toUpperCase();
  if (method === "DELETE") return "delete";
  if (comp === "list") return "list";
  if (method === "PUT") return container && comp === null ? "list" : "write";
  if (method === "GET" && !container && (comp === null || comp === "blocklist")) return "read";
  return "other";
}

/** An execution the local Functions host logged, with its duration. */
export interface Execution {
  functionName: string;
  trigger: "http" | "serviceBus" | "timer";
  ms: number;
}

/**
 * The host's own lines after each execution (packages/functions-host): `GET /api/x 200 12 ms` for
 * HTTP, `message … completed in 12 ms` for Service Bus, `timer run completed in 12 ms`, each after
 * the time, level and `<function> <invocation id>` (formatLogRecord).
 */
export function parseExecutionLine(line: string): Execution | undefined {
  const record = /^\d\d:\d\d:\d\d\.\d{3} \S+\s+(\S+) (?:\S{8} )?(.*)$/.exec(line);
  if (!record) return undefined;
  const [, functionName, message] = record as unknown as [string, string, string];
  const http = /^(?:GET|POST|PUT|PATCH|DELETE|HEAD|OPTIONS) \S+ \d{3} (\d+) ms$/.exec(message);
  if (http) return { functionName, trigger: "http", ms: Number(http[1]) };
  const message_ = /^message \S+ from \S+ completed in (\d+) ms$/.exec(message);
  if (message_) return { functionName, trigger: "serviceBus", ms: Number(message_[1]) };
  const timer = /^timer run completed in (\d+) ms$/.exec(message);
  if (timer) return { functionName, trigger: "timer", ms: Number(timer[1]) };
  return undefined;
}

/** Web PubSub bills outbound messages in 2 KB units: a 3 KB message counts as two. */
export const WEB_PUBSUB_BILLING_UNIT_BYTES = 2 * 1024;
export const webPubSubBilledMessages = (bytes: number): number => Math.max(1, Math.ceil(bytes / WEB_PUBSUB_BILLING_UNIT_BYTES));

/** Service Bus counts each 64 KB of a message as one operation. */
export const SERVICE_BUS_OPERATION_BYTES = 64 * 1024;

/** What the meter counted over a run; `perJob` divides it by the jobs. */
export interface Tally {
  cosmos: Record<CosmosRequestKind, { requests: number; requestBytes: number; responseBytes: number }>;
  blob: Record<BlobOperationClass, number>;
  serviceBus: { sends: number; receives: number; settles: number; management: Record<string, number>; tokens: number; billedOperations: number };
  webPubSub: { restCalls: number; outboundMessages: number; outboundBytes: number; billedMessages: number };
  functions: Record<string, { executions: number; ms: number }>;
}

const cosmosKinds: CosmosRequestKind[] = ["pointRead", "create", "replace", "upsert", "patch", "delete", "query", "batch", "metadata"];
const blobClasses: BlobOperationClass[] = ["write", "read", "list", "other", "delete"];

export function emptyTally(): Tally {
  return {
    cosmos: Object.fromEntries(cosmosKinds.map((kind) => [kind, { requests: 0, requestBytes: 0, responseBytes: 0 }])) as Tally["cosmos"],
    blob: Object.fromEntries(blobClasses.map((c) => [c, 0])) as Tally["blob"],
    serviceBus: { sends: 0, receives: 0, settles: 0, management: {}, tokens: 0, billedOperations: 0 },
    webPubSub: { restCalls: 0, outboundMessages: 0, outboundBytes: 0, billedMessages: 0 },
    functions: {},
  };
}

export function countCosmos(tally: Tally, exchange: Exchange): void {
  const entry = tally.cosmos[classifyCosmos(exchange)];
  entry.requests += 1;
  entry.requestBytes += exchange.requestBytes;
  entry.responseBytes += exchange.responseBytes;
}

export function countBlob(tally: Tally, exchange: Exchange): void {
  tally.blob[classifyBlob(exchange)] += 1;
}

/**
 * Service Bus operations as billed: every API call is one (sends, receives, settlements, lock
 * renewals and the other $management requests), a message over 64 KB one per 64 KB. Token
 * ($cbs) exchanges are the connection's authentication, not an entity operation: counted, not billed.
 */
export function countServiceBus(tally: Tally, operation: ServiceBusOperation): void {
  const sb = tally.serviceBus;
  switch (operation.kind) {
    case "send":
      sb.sends += 1;
      sb.billedOperations += Math.max(1, Math.ceil(operation.bytes / SERVICE_BUS_OPERATION_BYTES));
      break;
    case "receive":
      sb.receives += 1;
      sb.billedOperations += Math.max(1, Math.ceil(operation.bytes / SERVICE_BUS_OPERATION_BYTES));
      break;
    case "settle":
      sb.settles += 1;
      sb.billedOperations += 1;
      break;
    case "management":
      sb.management[operation.operation] = (sb.management[operation.operation] ?? 0) + 1;
      sb.billedOperations += 1;
      break;
    case "token":
      sb.tokens += 1;
      break;
  }
}

/** A message a client received from Web PubSub (outbound, billed); its size as framed on the socket. */
export function countWebPubSubMessage(tally: Tally, bytes: number): void {
  tally.webPubSub.outboundMessages += 1;
  tally.webPubSub.outboundBytes += bytes;
  tally.webPubSub.billedMessages += webPubSubBilledMessages(bytes);
}

export function countExecution(tally: Tally, execution: Execution): void {
  const entry = (tally.functions[execution.functionName] ??= { executions: 0, ms: 0 });
  entry.executions += 1;
  entry.ms += execution.ms;
}

/** Every count divided by `jobs` (what `npm run cost` multiplies by the jobs per month). */
export function perJob(tally: Tally, jobs: number): Tally {
  if (!Number.isInteger(jobs) || jobs < 1) throw new Error(`jobs must be a positive integer, got ${jobs}`);
  const divide = (value: unknown): unknown =>
    typeof value === "number" ? value / jobs : value && typeof value === "object" ? Object.fromEntries(Object.entries(value).map(([k, v]) => [k, divide(v)])) : value;
  return divide(tally) as Tally;
}
