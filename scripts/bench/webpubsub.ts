/**
 * Web PubSub emulator fan-out: deliveries per second to 100 connected clients from group sends
 * made with the real server SDK (WebPubSubServiceClient.group(g).sendToAll, several in flight).
 *
 * The emulator runs in this process; the 100 clients are raw `ws` clients speaking
 * json.webpubsub.azure.v1 in a worker thread (so their parsing runs on the other core), and
 * count a delivery only after parsing it as a group data message. Latency is measured from just
 * before the REST call to the client's parse, on every 10th delivery.
 *
 *   npx tsx scripts/bench/webpubsub.ts
 */
import { Worker } from "node:worker_threads";
import { WebPubSubServiceClient } from "@azure/web-pubsub";
import { startWebPubSubEmulator } from "../../local/webpubsub/index.js";

export interface WebPubSubBenchOptions {
  clients?: number;
  /** How long to keep sending. */
  durationMs?: number;
  /** REST sends in flight at once. */
  concurrency?: number;
}

export interface WebPubSubBenchFigures {
  clients: number;
  clientKind: string;
  sender: string;
  groupSends: number;
  deliveries: number;
  expectedDeliveries: number;
  seconds: number;
  deliveriesPerSecond: number;
  groupSendsPerSecond: number;
  latencyMs: { p50: number; p99: number; max: number };
}

/** Runs in the worker: opens the clients, counts parsed group messages, samples latency. */
const clientWorkerSource = `
const { parentPort, workerData } = require("node:worker_threads");
const WebSocket = require(workerData.wsPath);
let deliveries = 0;
const latencies = [];
let connected = 0;
const sockets = workerData.urls.map((url) => {
  const ws = new WebSocket(url, "json.webpubsub.azure.v1");
  ws.on("message", (data) => {
    const message = JSON.parse(data.toString());
    if (message.type === "system" && message.event === "connected") {
      if (++connected === workerData.urls.length) parentPort.postMessage({ type: "ready" });
    } else if (message.type === "message" && message.from === "group") {
      deliveries++;
      if (deliveries % 10 === 0) latencies.push(Date.now() - message.data.sentAt);
    }
  });
  ws.on("error", (error) => parentPort.postMessage({ type: "error", message: error.message }));
  return ws;
});
const ticker = setInterval(() => parentPort.postMessage({ type: "count", deliveries }), 20);
parentPort.on("message", (command) => {
  if (command === "finish") {
    clearInterval(ticker);
    parentPort.postMessage({ type: "done", deliveries, latencies });
    for (const ws of sockets) ws.close();
  }
});
`;

export async function benchWebPubSub(options: WebPubSubBenchOptions = {}): Promise<WebPubSubBenchFigures> {
  const clientCount = options.clients ?? 100;
  const durationMs = options.durationMs ?? 3_000;
  const concurrency = options.concurrency ?? 16;
  const emulator = await startWebPubSubEmulator({ hubs: ["bench"] });
  const service = new WebPubSubServiceClient(emulator.connectionString, "bench", { allowInsecureConnection: true });
  const urls = await Promise.all(
    Array.from({ length: clientCount }, async (_, i) => (await service.getClientAccessToken({ userId: `client-${i}`, groups: ["fanout"] })).url),
  );

  const worker = new Worker(clientWorkerSource, { eval: true, workerData: { urls, wsPath: require.resolve("ws") } });
  let delivered = 0;
  let lastDeliveryAt = 0;
  let done: ((result: { deliveries: number; latencies: number[] }) => void) | undefined;
  const ready = new Promise<void>((resolve, reject) => {
    worker.on("message", (message: { type: string; deliveries?: number; latencies?: number[]; message?: string }) => {
      if (message.type === "ready") resolve();
      else if (message.type === "error") reject(new Error(`bench client: ${message.message}`));
      else if (message.type === "count" && message.deliveries !== delivered) {
        delivered = message.deliveries ?? delivered;
        lastDeliveryAt = performance.now();
      } else if (message.type === "done") done?.({ deliveries: message.deliveries ?? 0, latencies: message.latencies ?? [] });
    });
    worker.on("error", reject);
  });

  try {
    await ready;
    const group = service.group("fanout");
    const send = () => group.sendToAll({ sentAt: Date.now(), jobId: "bench-job", status: "running", progress: 42 });
    for (let i = 0; i < 20; i++) await send(); // warm-up: connections, JIT
    const warmupDeliveries = 20 * clientCount;
    await waitUntil(() => delivered >= warmupDeliveries, 10_000);

    const startedAt = performance.now();
    let groupSends = 0;
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (performance.now() - startedAt < durationMs) {
          await send();
          groupSends++;
        }
      }),
    );
    const expectedDeliveries = warmupDeliveries + groupSends * clientCount;
    await waitUntil(() => delivered >= expectedDeliveries, 30_000).catch(() => undefined);
    const finished = new Promise<{ deliveries: number; latencies: number[] }>((resolve) => (done = resolve));
    worker.postMessage("finish");
    const result = await finished;
    const seconds = (lastDeliveryAt - startedAt) / 1000;
    const deliveries = result.deliveries - warmupDeliveries;
    const sorted = result.latencies.slice(Math.floor(warmupDeliveries / 10)).sort((a, b) => a - b);
    const percentile = (p: number) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN;
    return {
      clients: clientCount,
      clientKind: "raw ws, json.webpubsub.azure.v1, in a worker thread",
      sender: `@azure/web-pubsub group(...).sendToAll, ${concurrency} in flight`,
      groupSends,
      deliveries,
      expectedDeliveries: groupSends * clientCount,
      seconds: round(seconds, 2),
      deliveriesPerSecond: Math.round(deliveries / seconds),
      groupSendsPerSecond: Math.round(groupSends / seconds),
      latencyMs: { p50: percentile(50), p99: percentile(99), max: sorted[sorted.length - 1] ?? Number.NaN },
    };
  } finally {
    await worker.terminate();
    await emulator.stop();
  }
}

async function waitUntil(condition: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error("timed out");
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

const round = (value: number, digits: number) => Math.round(value * 10 ** digits) / 10 ** digits;

if (require.main === module) {
  benchWebPubSub().then(
    (figures) => console.log(JSON.stringify(figures, null, 2)),
    (error: unknown) => {
      console.error(error);
      process.exit(1);
    },
  );
}
