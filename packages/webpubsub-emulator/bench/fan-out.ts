/**
 * Web PubSub emulator fan-out: deliveries per second to 100 connected clients, from group sends
 * made with the real server SDK (WebPubSubServiceClient.group(g).sendToAll, several in flight)
 * and from a client's sendToGroup.
 *
 * The emulator has this process's main thread to itself, as it would its own process. The 100
 * clients (raw `ws` clients speaking json.webpubsub.azure.v1) run in one worker thread, the
 * sender in another. A delivery counts once a client has parsed it as a group data message.
 * Latency: from just before the send to the client's parse, sampled on every 10th delivery.
 *
 * `npm run bench:emulators` (from the repository root) or `npx tsx bench/fan-out.ts` (here).
 */
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { Worker } from "node:worker_threads";
import { WebPubSubServiceClient } from "@azure/web-pubsub";
import { startWebPubSubEmulator } from "../src/index.js";

export interface WebPubSubBenchOptions {
  clients?: number;
  /** How long to keep sending. */
  durationMs?: number;
  /** REST calls in flight per sender, or unacknowledged client sends. @default 16 */
  concurrency?: number;
  /** Threads sending REST group sends, each with its own SDK client. @default 2 */
  restSenders?: number;
}

/** The clients' worker: opens them, counts parsed group messages, samples latency. */
const clientsWorkerSource = `
const { parentPort, workerData } = require("node:worker_threads");
const WebSocket = require(workerData.wsPath);
let deliveries = 0;
let target = Infinity;
const latencies = [];
let connected = 0;
const reliable = workerData.subprotocol === "json.reliable.webpubsub.azure.v1";
const sockets = workerData.urls.map((url) => {
  const ws = new WebSocket(url, workerData.subprotocol);
  // Reliable clients acknowledge as @azure/web-pubsub-client does: every second, and at once
  // when more than 300 messages are unacknowledged.
  ws.lastSequenceId = 0;
  ws.ackedSequenceId = 0;
  ws.on("message", (data) => {
    const message = JSON.parse(data.toString());
    if (message.type === "system" && message.event === "connected") {
      if (++connected === workerData.urls.length) parentPort.postMessage({ type: "ready" });
    } else if (message.type === "message" && message.from === "group") {
      if (reliable) {
        if (message.sequenceId <= ws.lastSequenceId) return;
        ws.lastSequenceId = message.sequenceId;
        if (ws.lastSequenceId - ws.ackedSequenceId > 300) acknowledge(ws);
      }
      deliveries++;
      if (deliveries % 10 === 0) latencies.push(Date.now() - message.data.sentAt);
      if (deliveries >= target) report();
    }
  });
  ws.on("error", (error) => parentPort.postMessage({ type: "error", message: error.message }));
  return ws;
});
function acknowledge(ws) {
  if (ws.lastSequenceId === ws.ackedSequenceId) return;
  ws.ackedSequenceId = ws.lastSequenceId;
  ws.send(JSON.stringify({ type: "sequenceAck", sequenceId: ws.lastSequenceId }));
}
if (reliable) setInterval(() => sockets.forEach(acknowledge), 1000).unref();
function report() {
  target = Infinity;
  parentPort.postMessage({ type: "delivered", deliveries, at: Date.now(), latencies: latencies.splice(0) });
}
parentPort.on("message", (command) => {
  if (command.type === "reset") { deliveries = 0; latencies.length = 0; parentPort.postMessage({ type: "reset" }); }
  if (command.type === "await") { target = command.deliveries; if (deliveries >= target) report(); }
  if (command.type === "close") for (const ws of sockets) ws.close();
});
`;

/**
 * The sender's worker. "rest": the server SDK's group(...).sendToAll, \`concurrency\` calls in
 * flight. "client": one client connection sending sendToGroup frames with ackIds, at most
 * \`concurrency\` unacknowledged.
 */
const senderWorkerSource = `
const { parentPort, workerData } = require("node:worker_threads");
const payload = () => ({ sentAt: Date.now(), jobId: "bench-job", status: "running", progress: 42 });
async function rest(count, durationMs) {
  const { WebPubSubServiceClient } = require(workerData.webPubSubPath);
  const group = new WebPubSubServiceClient(workerData.connectionString, "bench", { allowInsecureConnection: true }).group("fanout");
  const startedAt = Date.now();
  let sends = 0;
  await Promise.all(Array.from({ length: workerData.concurrency }, async () => {
    while (count !== undefined ? sends < count : Date.now() - startedAt < durationMs) {
      sends++;
      await group.sendToAll(payload());
    }
  }));
  return { sends, startedAt };
}
async function client(count, durationMs) {
  const WebSocket = require(workerData.wsPath);
  const ws = new WebSocket(workerData.publisherUrl, "json.webpubsub.azure.v1");
  await new Promise((resolve, reject) => { ws.once("message", resolve); ws.once("error", reject); });
  const startedAt = Date.now();
  let sends = 0;
  let acked = 0;
  let nextAckId = 1;
  return new Promise((resolve, reject) => {
    const more = () => count !== undefined ? sends < count : Date.now() - startedAt < durationMs;
    const pump = () => {
      while (sends - acked < workerData.concurrency && more()) {
        sends++;
        ws.send(JSON.stringify({ type: "sendToGroup", group: "fanout", ackId: nextAckId++, dataType: "json", data: payload() }));
      }
      if (acked === sends && !more()) { ws.close(); resolve({ sends, startedAt }); }
    };
    ws.on("message", (data) => {
      const message = JSON.parse(data.toString());
      if (message.type !== "ack") return;
      if (!message.success) return reject(new Error(JSON.stringify(message.error)));
      acked++;
      pump();
    });
    pump();
  });
}
(workerData.mode === "rest" ? rest : client)(workerData.count, workerData.durationMs).then(
  (result) => parentPort.postMessage({ type: "sent", ...result }),
  (error) => parentPort.postMessage({ type: "error", message: String(error) }),
);
`;

type WorkerMessage = { type: string; message?: string; deliveries?: number; at?: number; latencies?: number[]; sends?: number; startedAt?: number };

function nextMessage(worker: Worker, type: string): Promise<WorkerMessage> {
  return new Promise((resolve, reject) => {
    const onMessage = (message: WorkerMessage) => {
      if (message.type === "error") done(() => reject(new Error(`bench worker: ${message.message}`)));
      else if (message.type === type) done(() => resolve(message));
    };
    const onError = (error: Error) => done(() => reject(error));
    const done = (settle: () => void) => {
      worker.off("message", onMessage);
      worker.off("error", onError);
      settle();
    };
    worker.on("message", onMessage);
    worker.on("error", onError);
  });
}

export interface FanOutFigures {
  sender: string;
  groupSends: number;
  deliveries: number;
  seconds: number;
  deliveriesPerSecond: number;
  groupSendsPerSecond: number;
  latencyMs: { p50: number; p99: number; max: number };
}

export interface WebPubSubBenchFigures {
  clients: number;
  clientKind: string;
  /** Server SDK group sends (what the api and agent do), to json.webpubsub.azure.v1 clients. */
  restGroupSends: FanOutFigures;
  /** A client's sendToGroup over its WebSocket, to json.webpubsub.azure.v1 clients. */
  clientGroupSends: FanOutFigures;
  /** Server SDK group sends to json.reliable.webpubsub.azure.v1 clients (the client SDK's default). */
  restGroupSendsReliable: FanOutFigures;
  /** A client's sendToGroup to json.reliable.webpubsub.azure.v1 clients. */
  clientGroupSendsReliable: FanOutFigures;
  /**
   * The same REST senders against a server that answers 202 at once and does nothing: the most
   * the SDK side can send here, whatever the emulator does. restGroupSends at or near it means
   * the SDK, not the emulator, sets the REST figure.
   */
  restSdkCeiling: { groupSendsPerSecond: number; deliveriesPerSecondIfEachReached: number };
}

export async function benchWebPubSub(options: WebPubSubBenchOptions = {}): Promise<WebPubSubBenchFigures> {
  const clientCount = options.clients ?? 100;
  const durationMs = options.durationMs ?? 3_000;
  const concurrency = options.concurrency ?? 16;
  const restSenders = options.restSenders ?? 2;
  const emulator = await startWebPubSubEmulator({ hubs: ["bench"] });
  const service = new WebPubSubServiceClient(emulator.connectionString, "bench", { allowInsecureConnection: true });
  const urls = await Promise.all(
    Array.from({ length: clientCount }, async (_, i) => (await service.getClientAccessToken({ userId: `client-${i}`, groups: ["fanout"] })).url),
  );
  const publisherUrl = (await service.getClientAccessToken({ userId: "publisher", roles: ["webpubsub.sendToGroup.fanout"] })).url;
  const paths = { wsPath: require.resolve("ws"), webPubSubPath: require.resolve("@azure/web-pubsub") };
  const workers: Worker[] = [];

  const run = async (clients: Worker, mode: "rest" | "client", count: number | undefined): Promise<FanOutFigures> => {
    clients.postMessage({ type: "reset" });
    await nextMessage(clients, "reset");
    // REST: several publishing services (the api and the agent both publish job events).
    const senderCount = mode === "rest" ? restSenders : 1;
    const senders = Array.from({ length: senderCount }, () => {
      const perSender = count === undefined ? undefined : Math.ceil(count / senderCount);
      const sender = new Worker(senderWorkerSource, {
        eval: true,
        workerData: { mode, count: perSender, durationMs, concurrency, connectionString: emulator.connectionString, publisherUrl, ...paths },
      });
      workers.push(sender);
      return sender;
    });
    const sentBySender = await Promise.all(senders.map((sender) => nextMessage(sender, "sent")));
    const groupSends = sentBySender.reduce((sum, sent) => sum + (sent.sends ?? 0), 0);
    const startedAt = Math.min(...sentBySender.map((sent) => sent.startedAt ?? Number.POSITIVE_INFINITY));
    const delivered = nextMessage(clients, "delivered");
    clients.postMessage({ type: "await", deliveries: groupSends * clientCount });
    const result = await delivered;
    await Promise.all(senders.map((sender) => sender.terminate()));
    const seconds = ((result.at ?? 0) - startedAt) / 1000;
    const sorted = (result.latencies ?? []).sort((a, b) => a - b);
    const percentile = (p: number) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN;
    return {
      sender:
        mode === "rest"
          ? `@azure/web-pubsub group(...).sendToAll from ${restSenders} sender threads, ${concurrency} calls in flight each`
          : `one client's sendToGroup with ackIds, ${concurrency} unacknowledged`,
      groupSends,
      deliveries: result.deliveries ?? 0,
      seconds: round(seconds, 2),
      deliveriesPerSecond: Math.round((result.deliveries ?? 0) / seconds),
      groupSendsPerSecond: Math.round(groupSends / seconds),
      latencyMs: { p50: percentile(50), p99: percentile(99), max: sorted[sorted.length - 1] ?? Number.NaN },
    };
  };

  /** REST and client group sends to 100 clients speaking `subprotocol`. */
  const fanOut = async (subprotocol: string) => {
    const clients = new Worker(clientsWorkerSource, { eval: true, workerData: { urls, subprotocol, ...paths } });
    workers.push(clients);
    await nextMessage(clients, "ready");
    await run(clients, "rest", 20); // warm-up: keep-alive sockets, JIT on every path
    await run(clients, "client", 20);
    const rest = await run(clients, "rest", undefined);
    const client = await run(clients, "client", undefined);
    await clients.terminate();
    return { rest, client };
  };

  /** REST senders against a do-nothing server. */
  const sdkCeiling = async () => {
    const nullServer = createServer((req, res) => {
      req.resume();
      req.on("end", () => res.writeHead(202).end());
    });
    await new Promise<void>((resolve) => nullServer.listen(0, "127.0.0.1", resolve));
    try {
      const connectionString = `Endpoint=http://127.0.0.1:${(nullServer.address() as AddressInfo).port};AccessKey=unused;Version=1.0;`;
      const senders = Array.from({ length: restSenders }, () => {
        const sender = new Worker(senderWorkerSource, { eval: true, workerData: { mode: "rest", durationMs, concurrency, connectionString, ...paths } });
        workers.push(sender);
        return sender;
      });
      const sent = await Promise.all(senders.map((sender) => nextMessage(sender, "sent")));
      const finishedAt = Date.now();
      await Promise.all(senders.map((sender) => sender.terminate()));
      const sends = sent.reduce((sum, s) => sum + (s.sends ?? 0), 0);
      const seconds = (finishedAt - Math.min(...sent.map((s) => s.startedAt ?? finishedAt))) / 1000;
      const groupSendsPerSecond = Math.round(sends / seconds);
      return { groupSendsPerSecond, deliveriesPerSecondIfEachReached: groupSendsPerSecond * clientCount };
    } finally {
      nullServer.close();
    }
  };

  try {
    const plain = await fanOut("json.webpubsub.azure.v1");
    const reliable = await fanOut("json.reliable.webpubsub.azure.v1");
    const restSdkCeiling = await sdkCeiling();
    return {
      clients: clientCount,
      clientKind: "raw ws clients in one worker thread (the sender in another, the emulator on the main thread)",
      restGroupSends: plain.rest,
      clientGroupSends: plain.client,
      restGroupSendsReliable: reliable.rest,
      clientGroupSendsReliable: reliable.client,
      restSdkCeiling,
    };
  } finally {
    await Promise.all(workers.map((w) => w.terminate()));
    await emulator.stop();
  }
}

const round = (value: number, digits: number) => Math.round(value * 10 ** digits) / 10 ** digits;

/** One line per figure, for `npm run bench:emulators` and a direct run. */
export function printWebPubSubFigures(figures: WebPubSubBenchFigures): void {
  console.log("Web PubSub emulator:");
  console.log(`  ${figures.clients} clients: ${figures.clientKind}`);
  const rows: [string, FanOutFigures][] = [
    ["REST group sends -> json clients", figures.restGroupSends],
    ["client sendToGroup -> json clients", figures.clientGroupSends],
    ["REST group sends -> reliable clients", figures.restGroupSendsReliable],
    ["client sendToGroup -> reliable clients", figures.clientGroupSendsReliable],
  ];
  for (const [name, f] of rows) {
    console.log(
      `  ${name}: ${f.deliveriesPerSecond} deliveries/s (${f.groupSendsPerSecond} sends/s, ${f.deliveries} delivered in ${f.seconds} s, ` +
        `latency p50 ${f.latencyMs.p50} ms, p99 ${f.latencyMs.p99} ms) [${f.sender}]`,
    );
  }
  console.log(`  REST sender ceiling against a do-nothing server: ${figures.restSdkCeiling.groupSendsPerSecond} sends/s`);
}

if (require.main === module) {
  benchWebPubSub().then(printWebPubSubFigures, (error: unknown) => {
    console.error(error);
    process.exit(1);
  });
}
