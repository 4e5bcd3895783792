/**
 * The whole system on one machine, on loopback: Azurite and cosmosdb-server, our Service Bus and Web
 * PubSub emulators, the api and the agent each under the local Functions host in its own process,
 * and the static site. Entities carry the names and defaults of a deployed stack
 * (platform-defaults.ts); each service gets its settings from the settings contract, in their local
 * shape (connection strings), validated by the same loader the code uses.
 */
import { access, mkdir, readFile, writeFile } from "node:fs/promises";
import { Agent as HttpsAgent } from "node:https";
import { createServer } from "node:net";
import { join } from "node:path";
import { CosmosClient } from "@azure/cosmos";
import { BlobServiceClient } from "@azure/storage-blob";
import { startHostProcess, type HostProcess } from "@platform-tools/functions-host";
import {
  AZURITE_ACCOUNT_KEY,
  AZURITE_ACCOUNT_NAME,
  COSMOS_EMULATOR_KEY,
  loopbackCertificateIn,
  startAzurite,
  startCosmosEmulator,
  type StoredLoopbackCertificate,
} from "@platform-tools/local-services";
import { startServiceBusEmulator } from "@platform-tools/servicebus-emulator";
import { startWebPubSubEmulator } from "@platform-tools/webpubsub-emulator";
import { ensureJobsContainer } from "../functions/src/shared/job-store.js";
import { loadSettings, serviceNames, type ServiceName, serviceSettings } from "../functions/src/settings.js";
import { hostJsonPath, serviceEntries, distDir } from "../scripts/bundle/services.js";
import { DUPLICATE_DETECTION_MINUTES, platformNames, repositoryRoot, stackDefaults } from "./platform-defaults.js";
import { startStaticSite, type StaticSite } from "./platform-web.js";

/** Every listener of the platform. */
export type PlatformPort = "web" | "api" | "blob" | "cosmos" | "serviceBus" | "webPubSub";

/** The ports `npm start` uses: the tools' own defaults where they have one (func 7071, Azurite 10000, Cosmos 8081, AMQP 5672). */
export const DEFAULT_PORTS: Readonly<Record<PlatformPort, number>> = {
  web: 4280,
  api: 7071,
  blob: 10000,
  cosmos: 8081,
  serviceBus: 5672,
  webPubSub: 8080,
};

/**
 * Fixed keys, so local.settings.json stays valid across restarts. They open only emulators bound to
 * 127.0.0.1 and mean nothing anywhere else (like Azurite's well-known account key).
 */
const LOCAL_SERVICE_BUS_KEY = "bG9jYWwtcGxhdGZvcm0tc2VydmljZS1idXMta2V5LTAwMDA=";
const LOCAL_WEB_PUBSUB_KEY = "bG9jYWwtcGxhdGZvcm0td2ViLXB1YnN1Yi1hY2Nlc3Mta2V5LTAwMDAwMDAw";

export interface LocalPlatformOptions {
  /** Ports to listen on; 0 picks a free one. @default DEFAULT_PORTS */
  ports?: Partial<Record<PlatformPort, number>>;
  /** Run the services from their TypeScript sources (tsx) or from the bundles `npm run bundle` builds. @default "source" */
  code?: "source" | "bundle";
  /** Where the bundles are (`<directory>/<service>/main.js`), and where local.settings.json goes. @default dist/ */
  bundleDirectory?: string;
  /** Where the loopback certificate is kept. @default <repository>/.tmp/local-platform */
  stateDirectory?: string;
  /** Write <bundleDirectory>/<service>/local.settings.json (for Core Tools' `func start`). @default true */
  writeLocalSettings?: boolean;
  /** Progress lines. @default stdout */
  progress?: (line: string) => void;
  /** Output lines of the services and emulators, tagged with their source. @default stdout/stderr */
  output?: (source: string, line: string, stream: "stdout" | "stderr") => void;
}

export interface LocalPlatformUrls {
  web: string;
  api: string;
  docs: string;
  blob: string;
  cosmos: string;
  serviceBus: string;
  webPubSub: string;
}

export interface LocalPlatform {
  readonly urls: LocalPlatformUrls;
  /** The app settings each service runs with (what local.settings.json holds in Values). */
  readonly settings: Readonly<Record<ServiceName, Readonly<Record<string, string>>>>;
  readonly services: Readonly<Record<ServiceName, HostProcess>>;
  /** Start-up steps and their durations, in start order. */
  readonly timings: readonly { step: string; ms: number }[];
  readonly startupMs: number;
  /** Stops the services first (so in-flight messages settle), then the site and the emulators. */
  stop(): Promise<void>;
}

/** A port the platform needs is taken: says which, by what role, and how to choose another. */
export class PortInUseError extends Error {
  constructor(readonly taken: { role: PlatformPort; port: number }[]) {
    super(
      `${taken.map(({ role, port }) => `port ${port} (${role}) is already in use`).join("; ")}. ` +
        `Stop what listens there, or choose other ports, e.g. npm start -- ${taken.map(({ role, port }) => `--${role}-port ${port + 1}`).join(" ")}`,
    );
    this.name = "PortInUseError";
  }
}

function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = createServer();
    probe.once("error", () => resolve(false));
    probe.listen(port, "127.0.0.1", () => probe.close(() => resolve(true)));
  });
}

/** Checks every fixed port before anything starts, so a clash fails fast and names them all. */
export async function assertPortsFree(ports: Record<PlatformPort, number>): Promise<void> {
  const entries = Object.entries(ports) as [PlatformPort, number][];
  const results = await Promise.all(entries.map(async ([role, port]) => ({ role, port, free: port === 0 || (await portIsFree(port)) })));
  const taken = results.filter((r) => !r.free).map(({ role, port }) => ({ role, port }));
  if (taken.length > 0) throw new PortInUseError(taken);
}

type LocalValues<S extends ServiceName> = { [K in keyof (typeof serviceSettings)[S]]?: string };

/** The emulators' connection strings, by the Azure service they stand for. */
type Endpoints = Record<"blob" | "cosmos" | "serviceBus" | "webPubSub", { readonly connectionString: string }>;

/**
 * Each service's app settings in their local shapes, from the settings contract. The loader the code
 * uses validates them here, so a setting the contract gains and the platform lacks fails at start,
 * naming it, rather than in the first request.
 */
export function localSettingsFor(endpoints: Endpoints, defaults = stackDefaults()): Record<ServiceName, Record<string, string>> {
  const shared = {
    Cosmos: endpoints.cosmos.connectionString,
    COSMOS_DATABASE_NAME: platformNames.cosmosDatabase,
    COSMOS_JOBS_CONTAINER_NAME: platformNames.jobsContainer,
    UploadsStorage: endpoints.blob.connectionString,
    UPLOADS_CONTAINER_NAME: platformNames.uploadsContainer,
    WebPubSub: endpoints.webPubSub.connectionString,
    WEBPUBSUB_HUB: platformNames.webPubSubHub,
    ServiceBus: endpoints.serviceBus.connectionString,
    JOBS_QUEUE_NAME: platformNames.jobsQueue,
    UPLOAD_MAX_BYTES: String(defaults.uploadMaxBytes),
  };
  const api: LocalValues<"api"> = {
    ...shared,
    UPLOAD_URL_TTL_SECONDS: String(defaults.uploadUrlTtlSeconds),
    // No Easy Auth locally: x-ms-client-principal headers are not trusted, x-dev-user is.
    APP_SERVICE_AUTHENTICATION: "false",
    ALLOW_DEVELOPMENT_IDENTITY: "true",
  };
  const agent: LocalValues<"agent"> = { ...shared };
  const settings = { api, agent } as Record<ServiceName, Record<string, string>>;
  for (const service of serviceNames) loadSettings(service, settings[service]);
  return settings;
}

/**
 * What Core Tools reads: `func start` in dist/<service> runs the same service with the same settings.
 * AzureWebJobsStorage (the host's own state) goes to the local Azurite, as the host account does in Azure.
 */
export function localSettingsFile(settings: Record<string, string>, host: { storageConnectionString: string; port?: number; corsOrigins?: string[] }) {
  return {
    IsEncrypted: false,
    Values: { FUNCTIONS_WORKER_RUNTIME: "node", AzureWebJobsStorage: host.storageConnectionString, ...settings },
    Host: {
      ...(host.port ? { LocalHttpPort: host.port } : {}),
      ...(host.corsOrigins?.length ? { CORS: host.corsOrigins.join(","), CORSCredentials: false } : {}),
    },
  };
}

/** Azurite's connection string for a known port (the same shape startAzurite reports once it listens). */
function azuriteConnectionString(port: number): string {
  return `DefaultEndpointsProtocol=http;AccountName=${AZURITE_ACCOUNT_NAME};AccountKey=${AZURITE_ACCOUNT_KEY};BlobEndpoint=http://127.0.0.1:${port}/${AZURITE_ACCOUNT_NAME};`;
}

async function exists(file: string): Promise<boolean> {
  return access(file).then(
    () => true,
    () => false,
  );
}

/** NODE_EXTRA_CA_CERTS for the services: the loopback certificate, plus what the user already trusts. */
async function trustedCertificates(certificate: StoredLoopbackCertificate, directory: string): Promise<string> {
  const existing = process.env.NODE_EXTRA_CA_CERTS;
  if (!existing || existing === certificate.certFile) return certificate.certFile;
  const bundle = join(directory, "extra-ca-bundle.pem");
  await writeFile(bundle, `${await readFile(existing, "utf8")}\n${certificate.cert}`);
  return bundle;
}

export async function startLocalPlatform(options: LocalPlatformOptions = {}): Promise<LocalPlatform> {
  const began = performance.now();
  const progress = options.progress ?? ((line: string) => process.stdout.write(`${line}\n`));
  const output =
    options.output ?? ((source: string, line: string, stream: "stdout" | "stderr") => (stream === "stderr" ? process.stderr : process.stdout).write(`[${source}] ${line}\n`));
  const ports: Record<PlatformPort, number> = { ...DEFAULT_PORTS, ...options.ports };
  const stateDirectory = options.stateDirectory ?? join(repositoryRoot, ".tmp", "local-platform");
  const timings: { step: string; ms: number }[] = [];
  const siteConfig: Record<string, string> = {};
  /** Emulators and the site, stopped in reverse start order after the services. */
  const stops: (() => Promise<void>)[] = [];
  /** The Functions hosts: stopped first, together, so in-flight messages settle against live emulators. */
  const serviceStops: (() => Promise<void>)[] = [];
  const timed = async <T>(step: string, work: () => Promise<T>, describe?: (value: T) => string): Promise<T> => {
    const started = performance.now();
    const value = await work();
    const ms = Math.round(performance.now() - started);
    timings.push({ step, ms });
    progress(`  ✓ ${step}${describe ? `  ${describe(value)}` : ""}  (${ms} ms)`);
    return value;
  };
  const stopAll = async () => {
    await Promise.allSettled(serviceStops.splice(0).map((stop) => stop()));
    for (const stop of stops.splice(0).reverse()) await stop().catch(() => {});
  };
  /** Like Promise.all, but waits for every step, so whatever started is registered for stopAll before a failure surfaces. */
  const allStarted = async <T extends readonly unknown[]>(steps: { [K in keyof T]: Promise<T[K]> }): Promise<T> => {
    const outcomes = await Promise.allSettled(steps);
    const failed = outcomes.find((o): o is PromiseRejectedResult => o.status === "rejected");
    if (failed) throw failed.reason;
    return outcomes.map((o) => (o as PromiseFulfilledResult<unknown>).value) as unknown as T;
  };

  try {
    const code = options.code ?? "source";
    const bundleDirectory = options.bundleDirectory ?? distDir;
    const entries = Object.fromEntries(
      serviceNames.map((service) => [service, code === "bundle" ? join(bundleDirectory, service, "main.js") : join(repositoryRoot, serviceEntries[service])]),
    ) as Record<ServiceName, string>;
    if (code === "bundle") {
      for (const entry of Object.values(entries)) {
        if (!(await exists(entry))) throw new Error(`${entry} does not exist: run \`npm run bundle\` first (or start from sources without --bundle)`);
      }
    }
    progress("Starting the local platform");
    await assertPortsFree(ports);
    const defaults = stackDefaults();
    const certificate = await timed("loopback certificate", () => loopbackCertificateIn(stateDirectory));

    // Azurite is a separate process and by far the slowest to start: nothing waits for it that need not.
    const blobStarting = timed("Azurite (Blob Storage)", () => startAzurite({ port: ports.blob }), (e) => e.blobEndpoint).then((e) => (stops.push(() => e.stop()), e));
    const [cosmos, serviceBus, webPubSub, site] = await allStarted([
      timed("cosmosdb-server (Cosmos DB)", () => startCosmosEmulator({ certificate, port: ports.cosmos }), (e) => e.endpoint).then((e) => (stops.push(() => e.stop()), e)),
      timed(
        "Service Bus emulator",
        () =>
          startServiceBusEmulator({
            port: ports.serviceBus,
            key: LOCAL_SERVICE_BUS_KEY,
            queues: [
              {
                name: platformNames.jobsQueue,
                maxDeliveryCount: defaults.jobsQueueMaxDeliveryCount,
                lockDurationMs: defaults.jobsQueueLockDurationSeconds * 1000,
                defaultMessageTtlMs: defaults.jobsQueueMessageTtlHours * 3_600_000,
                deadLetteringOnMessageExpiration: true,
                requiresDuplicateDetection: true,
                duplicateDetectionWindowMs: DUPLICATE_DETECTION_MINUTES * 60_000,
              },
            ],
            log: (line) => output("servicebus", line, "stderr"),
          }),
        (e) => `sb://127.0.0.1:${e.port}  queue "${platformNames.jobsQueue}" (maxDeliveryCount ${defaults.jobsQueueMaxDeliveryCount})`,
      ).then((e) => (stops.push(() => e.stop()), e)),
      timed(
        "Web PubSub emulator",
        () => startWebPubSubEmulator({ port: ports.webPubSub, hubs: [platformNames.webPubSubHub], accessKey: LOCAL_WEB_PUBSUB_KEY, log: (line) => output("webpubsub", line, "stderr") }),
        (e) => `${e.endpoint}  hub "${platformNames.webPubSubHub}"`,
      ).then((e) => (stops.push(() => e.stop()), e)),
      // Its origin is what the api's CORS and the Blob CORS rule allow; /config.json is completed below.
      timed("static site (web/)", () => startStaticSite({ directory: join(repositoryRoot, "web"), port: ports.web, config: () => siteConfig }), (s) => s.url).then(
        (s) => (stops.push(() => s.close()), s),
      ),
    ] as const).catch(async (error: unknown) => {
      await blobStarting.catch(() => undefined);
      throw error;
    });
    const webOrigins = [site.url, `http://localhost:${site.port}`];

    // With a fixed port Azurite's connection string is known before it listens, so the services start meanwhile.
    const blobConnectionString = ports.blob !== 0 ? azuriteConnectionString(ports.blob) : (await blobStarting).connectionString;
    const settings = localSettingsFor({ blob: { connectionString: blobConnectionString }, cosmos, serviceBus, webPubSub }, defaults);
    const nodeEnv = { NODE_EXTRA_CA_CERTS: await trustedCertificates(certificate, stateDirectory) };
    const hostPorts: Record<ServiceName, number> = { api: ports.api, agent: 0 };
    if (options.writeLocalSettings ?? true) {
      await timed("local.settings.json for func start", async () => {
        for (const service of serviceNames) {
          const directory = join(bundleDirectory, service);
          await mkdir(directory, { recursive: true });
          const host = { storageConnectionString: blobConnectionString, ...(service === "api" ? { port: ports.api, corsOrigins: webOrigins } : {}) };
          const file = localSettingsFile(settings[service], host);
          await writeFile(join(directory, "local.settings.json"), `${JSON.stringify(file, null, 2)}\n`);
        }
      });
    }

    const cosmosReady = timed("Cosmos database and container", async () => {
      // This process started before the certificate existed: trust it for this one client instead.
      const agent = new HttpsAgent({ ca: certificate.cert, keepAlive: false });
      const cosmosClient = new CosmosClient({ endpoint: cosmos.endpoint, key: COSMOS_EMULATOR_KEY, agent });
      try {
        await ensureJobsContainer(cosmosClient, platformNames.cosmosDatabase, platformNames.jobsContainer);
      } finally {
        cosmosClient.dispose();
        agent.destroy();
      }
    });
    const blobReady = blobStarting.then((blob) =>
      timed("Blob container and CORS", async () => {
        const blobService = BlobServiceClient.fromConnectionString(blob.connectionString);
        await Promise.all([
          blobService.getContainerClient(platformNames.uploadsContainer).createIfNotExists(),
          // Browsers PUT uploads straight to Blob Storage with the SAS URL, as in Azure (Storage component's rule).
          blobService.setProperties({
            cors: [{ allowedOrigins: webOrigins.join(","), allowedMethods: "PUT", allowedHeaders: "content-type,x-ms-*", exposedHeaders: "etag,x-ms-request-id", maxAgeInSeconds: 3600 }],
          }),
        ]);
      }),
    );
    const hostsStarting = serviceNames.map((service) =>
      timed(
        `${service} (local Functions host, ${code === "bundle" ? "bundle" : "TypeScript source"})`,
        () =>
          startHostProcess({
            name: service,
            entry: entries[service],
            hostJson: code === "bundle" ? join(bundleDirectory, service, "host.json") : hostJsonPath,
            port: hostPorts[service],
            ...(service === "api" ? { corsAllowedOrigins: webOrigins } : {}),
            settings: settings[service],
            nodeEnv,
            output: (line, stream) => output(service, line, stream),
          }),
        (h) => `${h.url ?? "no HTTP triggers"}; ${h.functions.length} functions`,
      ).then((h) => (serviceStops.push(() => h.stop()), h)),
    );
    const [hosts, , , blob] = await allStarted([Promise.all(hostsStarting), cosmosReady, blobReady, blobStarting] as const).catch(async (error: unknown) => {
      await Promise.allSettled(hostsStarting);
      throw error;
    });
    const services = Object.fromEntries(serviceNames.map((service, i) => [service, hosts[i]!])) as Record<ServiceName, HostProcess>;
    const apiUrl = services.api.url;
    if (!apiUrl) throw new Error("the api registered no HTTP functions");
    siteConfig.apiUrl = `${apiUrl}/api`;

    const startupMs = Math.round(performance.now() - began);
    let stopping: Promise<void> | undefined;
    return {
      urls: {
        web: site.url,
        api: `${apiUrl}/api`,
        docs: `${apiUrl}/api/docs/`,
        blob: blob.blobEndpoint,
        cosmos: cosmos.endpoint,
        serviceBus: `sb://127.0.0.1:${serviceBus.port}`,
        webPubSub: webPubSub.endpoint,
      },
      settings,
      services,
      timings,
      startupMs,
      stop() {
        // Services go first: stops run in reverse start order.
        stopping ??= stopAll();
        return stopping;
      },
    };
  } catch (error) {
    await stopAll();
    throw error;
  }
}
