/**
 * The agent service as it runs on the local platform: its entry (TypeScript source) loaded by the
 * local Functions host in a child process, which plays the two Service Bus triggers against the
 * Service Bus emulator. The test only sends messages (as the api does) and watches the outcome in
 * Cosmos, in the owner's Web PubSub group and in the host's output.
 */
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CosmosClient } from "@azure/cosmos";
import { ServiceBusClient } from "@azure/service-bus";
import { WebPubSubServiceClient } from "@azure/web-pubsub";
import { startHostProcess, type HostProcess } from "@platform-tools/functions-host";
import { analyzeText } from "../../functions/src/shared/analysis.js";
import { newJob, type JobEvent } from "../../functions/src/shared/job.js";
import { userGroup } from "../../functions/src/shared/job-events.js";
import { ServiceBusJobQueue } from "../../functions/src/shared/job-queue.js";
import { CosmosJobStore } from "../../functions/src/shared/job-store.js";
import { startTestPlatform, TEST_HUB, TEST_QUEUE_NAME, type TestPlatform } from "../support/emulators.js";
import { jobResources } from "../../functions/src/shared/job-resources.js";
import { connectClient, stopAllClients, waitFor } from "@platform-tools/webpubsub-emulator/testing";

const repoRoot = join(__dirname, "..", "..");
let platform: TestPlatform;
let host: HostProcess;
let cosmosClient: CosmosClient;
let store: CosmosJobStore;
let serviceBusClient: ServiceBusClient;
let queue: ServiceBusJobQueue;
const hostOutput: string[] = [];

beforeAll(async () => {
  platform = await startTestPlatform({ serviceBus: { maxDeliveryCount: 2 }, webPubSub: true });
  host = await startHostProcess({
    name: "agent",
    entry: join(repoRoot, "functions/src/agent/index.ts"),
    hostJson: join(repoRoot, "functions/host.json"),
    settings: platform.settings,
    output: (line) => void hostOutput.push(line),
  });
  cosmosClient = new CosmosClient(platform.settings.Cosmos!);
  store = new CosmosJobStore(cosmosClient.database(jobResources.database).container(jobResources.container));
  serviceBusClient = new ServiceBusClient(platform.settings.ServiceBus!);
  queue = new ServiceBusJobQueue(serviceBusClient, TEST_QUEUE_NAME);
}, 90_000);

afterAll(async () => {
  await stopAllClients();
  await queue?.close();
  await serviceBusClient?.close();
  cosmosClient?.dispose();
  // DUMP_HOST_OUTPUT=1 prints what the host logged, for diagnosing a failure.
  if (process.env.DUMP_HOST_OUTPUT) console.log(hostOutput.join("\n"));
  await host?.stop();
  await platform?.stop();
});

describe("agent under the local Functions host", () => {
  it("indexes both triggers from the binding expressions", () => {
    expect(host.functions.map((fn) => [fn.name, fn.source]).sort()).toEqual([
      ["failDeadLetteredJob", `${TEST_QUEUE_NAME}/$deadletterqueue`],
      ["processJob", TEST_QUEUE_NAME],
    ]);
  });

  it("a job message runs the job to succeeded and the owner hears about it", async () => {
    const text = "hosted agent, hosted trigger, real messages";
    const job = newJob({ id: `host-job-${Date.now()}`, userId: "host-user", input: { kind: "text", text } });
    await store.create(job);
    const webPubSub = new WebPubSubServiceClient(platform.settings.WebPubSub!, TEST_HUB, { allowInsecureConnection: true });
    const owner = await connectClient(webPubSub, { userId: "host-user", groups: [userGroup("host-user")] });
    await queue.send({ jobId: job.id, userId: job.userId });

    await waitFor(async () => (await store.get("host-user", job.id)).job.status === "succeeded", "the job to succeed", 15_000);
    expect((await store.get("host-user", job.id)).job).toMatchObject({ attempts: 1, result: analyzeText(text) });
    await waitFor(() => owner.groupMessages.length >= 2, "both events", 5_000);
    expect(owner.groupMessages.map((message) => (message.data as JobEvent).type)).toEqual(["job.running", "job.succeeded"]);
    await waitFor(() => hostOutput.some((line) => line.includes(`[job ${job.id}] job succeeded`)), "the job's log line", 5_000);
  });

  it("a message that keeps failing is retried, dead-lettered, and handled by the dead-letter function with Service Bus's reason", async () => {
    // No such job: every delivery throws (it may be replication lag), until Service Bus gives up.
    const jobId = `host-missing-${Date.now()}`;
    await queue.send({ jobId, userId: "host-user" });
    const reported = `[job ${jobId}] dead-lettered message for a job that does not exist (MaxDeliveryCountExceeded)`;
    await waitFor(() => hostOutput.some((line) => line.includes(reported)), "the dead-letter function", 15_000);
    const failures = hostOutput.filter((line) => line.includes(`message ${jobId}`) && line.includes("abandoned for redelivery"));
    expect(failures).toHaveLength(2); // maxDeliveryCount
    await waitFor(() => hostOutput.some((line) => line.includes(`message ${jobId} from ${TEST_QUEUE_NAME}/$deadletterqueue completed`)), "completion", 5_000);
  });
});
