/**
 * The local platform for a test file: Cosmos (in-process, HTTPS), and on request Azurite (child
 * process), the Service Bus emulator and the Web PubSub emulator (in-process), started in parallel
 * once per file. `settings` holds the app settings both services read, in their local shapes, so a
 * test can build the real production wiring from them. A service that is not started gets an
 * endpoint where nothing listens (health reports it unreachable).
 */
import { CosmosClient } from "@azure/cosmos";
import { BlobServiceClient } from "@azure/storage-blob";
import {
  loopbackCertificateIn,
  startAzurite,
  startCosmosEmulator,
  type AzuriteBlobEmulator,
  type CosmosEmulator,
} from "@platform-tools/local-services";
import { startServiceBusEmulator, type ServiceBusEmulator } from "@platform-tools/servicebus-emulator";
import { startWebPubSubEmulator, type WebPubSubEmulator } from "@platform-tools/webpubsub-emulator";
import { resources } from "../../functions/src/resources.js";
import { jobResources } from "../../functions/src/shared/job-resources.js";
import { ensureCosmosResources } from "../../local/app-resources.js";
import { TEST_CERTIFICATE_DIRECTORY } from "./certificate-directory.js";

export interface TestPlatformOptions {
  blob?: boolean;
  serviceBus?: boolean | { maxDeliveryCount?: number; lockDurationMs?: number };
  webPubSub?: boolean;
}

export interface TestPlatform {
  readonly cosmos: CosmosEmulator;
  readonly blob?: AzuriteBlobEmulator;
  readonly serviceBus?: ServiceBusEmulator;
  readonly webPubSub?: WebPubSubEmulator;
  /** App settings (local shapes) for the api and the agent. */
  readonly settings: Record<string, string>;
  stop(): Promise<void>;
}

/** A loopback port where nothing listens (the discard port; refused at once). */
const NOTHING_LISTENS = "127.0.0.1:9";
/** The names the services use (resources.ts): the code reads them from there, not from settings. */
export const TEST_QUEUE_NAME = jobResources.queue;
export const TEST_HUB = jobResources.hub;
export const TEST_UPLOADS_CONTAINER = jobResources.uploads;
export const TEST_UPLOAD_MAX_BYTES = 64 * 1024;

export async function startTestPlatform(options: TestPlatformOptions = {}): Promise<TestPlatform> {
  if (!process.env.NODE_EXTRA_CA_CERTS) {
    throw new Error("NODE_EXTRA_CA_CERTS is not set: run the tests through vitest.config.mts (its globalSetup trusts the emulator certificate)");
  }
  const certificate = await loopbackCertificateIn(TEST_CERTIFICATE_DIRECTORY);
  const serviceBusQueue = typeof options.serviceBus === "object" ? options.serviceBus : {};
  const started = await Promise.allSettled([
    startCosmosEmulator({ certificate }),
    options.blob ? startAzurite() : undefined,
    options.serviceBus
      ? startServiceBusEmulator({ queues: [{ name: TEST_QUEUE_NAME, requiresDuplicateDetection: true, maxDeliveryCount: 3, lockDurationMs: 5_000, ...serviceBusQueue }] })
      : undefined,
    options.webPubSub ? startWebPubSubEmulator({ hubs: [TEST_HUB] }) : undefined,
  ] as const);
  const stops = started.flatMap((outcome) => (outcome.status === "fulfilled" && outcome.value ? [() => outcome.value!.stop()] : []));
  const failed = started.find((outcome) => outcome.status === "rejected");
  if (failed) {
    await Promise.allSettled(stops.map((stop) => stop()));
    throw (failed as PromiseRejectedResult).reason;
  }
  const [cosmos, blob, serviceBus, webPubSub] = started.map((outcome) => (outcome as PromiseFulfilledResult<unknown>).value) as [
    CosmosEmulator,
    AzuriteBlobEmulator | undefined,
    ServiceBusEmulator | undefined,
    WebPubSubEmulator | undefined,
  ];

  const settings: Record<string, string> = {
    Cosmos: cosmos.connectionString,
    DataStorage:
      blob?.connectionString ??
      `DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=a2V5;BlobEndpoint=http://${NOTHING_LISTENS}/devstoreaccount1;`,
    ServiceBus: serviceBus?.connectionString ?? `Endpoint=sb://${NOTHING_LISTENS};SharedAccessKeyName=k;SharedAccessKey=a2V5;UseDevelopmentEmulator=true;`,
    WebPubSub: webPubSub?.connectionString ?? `Endpoint=http://${NOTHING_LISTENS};AccessKey=a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5;Version=1.0;`,
    UPLOAD_MAX_BYTES: String(TEST_UPLOAD_MAX_BYTES),
    UPLOAD_URL_TTL_SECONDS: "300",
    // Generous: these files test other behaviour; tests/abuse runs with the defaults.
    QUOTA_UPLOAD_URLS_PER_HOUR: "10000",
    QUOTA_JOBS_PER_HOUR: "10000",
    QUOTA_JOBS_IN_FLIGHT: "1000",
    JOB_SWEEP_SCHEDULE: "0 * * * * *",
    JOB_REQUEUE_AFTER_SECONDS: "300",
    MAX_CONCURRENT_REQUESTS: "100",
    APP_SERVICE_AUTHENTICATION: "true",
    API_GATEWAY: "false",
    ALLOW_DEVELOPMENT_IDENTITY: "true",
  };

  const cosmosClient = new CosmosClient(cosmos.connectionString);
  try {
    await ensureCosmosResources(cosmosClient, resources.cosmos);
    if (blob) await BlobServiceClient.fromConnectionString(blob.connectionString).getContainerClient(TEST_UPLOADS_CONTAINER).createIfNotExists();
  } catch (error) {
    await Promise.allSettled(stops.map((stop) => stop()));
    throw error;
  } finally {
    cosmosClient.dispose();
  }

  return {
    cosmos,
    ...(blob ? { blob } : {}),
    ...(serviceBus ? { serviceBus } : {}),
    ...(webPubSub ? { webPubSub } : {}),
    settings,
    stop: async () => {
      await Promise.allSettled(stops.map((stop) => stop()));
    },
  };
}
