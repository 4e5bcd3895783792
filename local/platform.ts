/**
 * The whole system on one machine, on loopback: Azurite and cosmosdb-server, our Service Bus and Web
 * PubSub emulators, every service of the registry (functions/src/services.ts) under the local
 * Functions host in its own process, and the static site. The emulators hold the app's resources
 * (functions/src/resources.ts) with the defaults a deployed stack gets; each service gets its
 * settings from the settings contract, in their local shape (connection strings) and with the stack
 * configuration's defaults, validated by the same loader the code uses.
 */
import { randomBytes } from "node:crypto";
import { access, mkdir, readFile, writeFile } from "node:fs/promises";
import { Agent as HttpsAgent } from "node:https";
import { createServer } from "node:net";
import { join } from "node:path";
import { CosmosClient } from "@azure/cosmos";
import { BlobServiceClient } from "@azure/storage-blob";
import {
  AZURITE_ACCOUNT_KEY,
  AZURITE_ACCOUNT_NAME,
  COSMOS_EMULATOR_KEY,
  loopbackCertificateIn,
  startAzurite,
  startCosmosEmulator,
  type StoredLoopbackCertificate,
} from "@platform-tools/local-services";
import { startServiceBusEmulator, type ServiceBusEmulator, type ServiceBusOperation } from "@platform-tools/servicebus-emulator";
import { startWebPubSubEmulator } from "@platform-tools/webpubsub-emulator";
import { defaultConfig, type PlatformConfig } from "../infrastructure/config.js";
import type { ConnectionFamily } from "../functions/src/platform/links.js";
import type { QueueOptions } from "../functions/src/platform/resource-kinds.js";
import { resources } from "../functions/src/resources.js";
import { declarationOf, perService, serviceNames, type ServiceName } from "../functions/src/services.js";
import { loadSettings, localAppSettings } from "../functions/src/settings.js";
import { distDir, hostJsonPath, repoRoot, serviceEntries } from "../scripts/bundle/services.js";
import { emulatorQueues, ensureBlobResources, ensureCosmosResources, hubNames, sweepExpiredBlobs } from "./app-resources.js";
import { resolveBlobContainer } from "../functions/src/platform/resource-kinds.js";
import { EMULATOR_PORTS, type EmulatorPort } from "./emulator-ports.js";
import { startRestartableHost, type RestartableHost } from "./dev-loop.js";
import { localSiteEnvironment, startWebApp } from "./platform-web.js";

/** Every listener of the platform: the emulators, the site, and each service's HTTP functions. */
export type PlatformPort = EmulatorPort | ServiceName;

/**
 * The ports `npm start` uses: the emulators' and each service's declared local port (func's 7071
 * for the api); 0 for a service without HTTP functions.
 */
export const DEFAULT_PORTS: Readonly<Record<PlatformPort, number>> = {
  ...EMULATOR_PORTS,
  ...perService((service) => declarationOf(service).http?.localPort ?? 0),
};

/** Every listener on a free port of the system's choosing (tests and benches run beside `npm start`). */
export const FREE_PORTS: Readonly<Record<PlatformPort, number>> = Object.fromEntries(Object.keys(DEFAULT_PORTS).map((role) => [role, 0])) as Record<PlatformPort, number>;

/**
 * The emulators' keys are new on every start: a key fixed in the repository would let any web page
 * a developer opens sign Web PubSub tokens for the local hub (the abuse review's F7). The emulators
 * keep their data in memory, so nothing outlives a start that would need the old keys; each start
 * writes local.settings.json again.
 */
const newLocalKey = () => randomBytes(32).toString("base64");

/** How often the local platform deletes uploads older than their container's deleteAfterDays. */
const LIFECYCLE_SWEEP_INTERVAL_MS = 60 * 60 * 1000;

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
  /** The web app: rebuild and reload open pages on edits (`npm start`); where the build goes. @default built once (platform-web.ts) */
  web?: { watch?: boolean; outDir?: string };
  /** Output lines of the services and emulators, tagged with their source. @default stdout/stderr */
  output?: (source: string, line: string, stream: "stdout" | "stderr") => void;
  /**
   * The stack configuration the platform stands for, as values that differ from the defaults: the
   * services' settings and the Service Bus tier (duplicate detection only on Standard, as in Azure)
   * come from it; a bench raises the per-user quotas, which would otherwise throttle it.
   * @default every default (infrastructure/config.ts `defaultConfig`), as a stack that sets nothing
   */
  config?: Partial<PlatformConfig>;
  /**
   * Queue options that differ locally from resources.ts, by queue name (the fault suite shortens the
   * lock so a killed agent's messages come back in seconds). @default none
   */
  queues?: Readonly<Record<string, QueueOptions>>;
  /**
   * Where the Service Bus emulator keeps its messages, so that they survive a stop and start of it
   * (LocalPlatform.serviceBus). @default in memory
   */
  serviceBusDataDir?: string;
  /**
   * Puts something between the services and an emulator: given the emulator's port, resolves with
   * the port the services should connect to instead (the fault suite's TCP proxies). @default none
   */
  interpose?: (family: "cosmos" | "blob" | "webPubSub", emulatorPort: number) => Promise<number>;
  /** Hears of every Service Bus operation the services ask for (npm run bench:ops counts them). @default none */
  onServiceBusOperation?: (operation: ServiceBusOperation) => void;
  /**
   * A directory the services watch for armed fault points (functions/src/shared/fault-points.ts).
   * Only the fault suite sets it; without it every fault point does nothing. @default none
   */
  faultPointsDirectory?: string;
}

export interface LocalPlatformUrls {
  web: string;
  /** The browser-facing service's API (what the web app calls): `<origin>/api`. */
  api: string;
  docs: string;
  /** Each HTTP service's `<origin>/api`. */
  services: Partial<Record<ServiceName, string>>;
  blob: string;
  cosmos: string;
  serviceBus: string;
  webPubSub: string;
}

/** The Service Bus emulator as a dependency that can go away and come back (on the same port). */
export interface EmulatorControl {
  readonly running: boolean;
  /** Closes every client connection and the listener; with serviceBusDataDir the messages are kept. */
  stop(): Promise<void>;
  /** Starts it again on the same port, from the data directory. */
  start(): Promise<void>;
}

export interface LocalPlatform {
  readonly urls: LocalPlatformUrls;
  /** The app settings each service runs with (what local.settings.json holds in Values). */
  readonly settings: Readonly<Record<ServiceName, Readonly<Record<string, string>>>>;
  /** What each service's Node process runs with beside its app settings (NODE_EXTRA_CA_CERTS for the emulators' certificate). */
  readonly nodeEnv: Readonly<Record<string, string>>;
  readonly services: Readonly<Record<ServiceName, RestartableHost>>;
  /** The Service Bus emulator: the fault suite stops and starts it. */
  readonly serviceBus: EmulatorControl;
  /** The configuration the platform stands for. */
  readonly config: PlatformConfig;
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

/** The emulators' connection strings, by the Azure service they stand for. */
export type EmulatorConnections = Readonly<Record<ConnectionFamily, string>>;

/**
 * Each service's app settings in their local shapes, from the settings contract: the emulators'
 * connection strings for its links, its declared settings from the configuration's defaults (or
 * their local value). The loader the code uses validates them here, so a setting the contract gains
 * and the platform cannot give fails at start, naming it, rather than in the first request.
 */
export function localSettingsFor(connections: EmulatorConnections, config: PlatformConfig = defaultConfig): Record<ServiceName, Record<string, string>> {
  return perService((service) => {
    const settings = localAppSettings(service, { connectionStrings: connections, config });
    loadSettings(service, settings);
    return settings;
  });
}

/**
 * What Core Tools reads: `func start` in dist/<service> runs the same service with the same settings.
 * AzureWebJobsStorage (the host's own state) goes to the local Azurite, as the host account does in Azure.
 */
export function localSettingsFile(settings: Record<string, string>, host: { storageConnectionString: string; port?: number; corsOrigins?: string[] }) {
  return {
    $comment:
      "Local only: written by npm start for the local emulators (connection strings with this start's keys, the development identity). Never publish it to Azure (func azure functionapp publish --publish-local-settings): the app refuses to start where Azure runs it with ALLOW_DEVELOPMENT_IDENTITY set.",
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
  const config: PlatformConfig = { ...defaultConfig, ...options.config };
  const queues = emulatorQueues(resources, config.serviceBusSku, options.queues);
  const stateDirectory = options.stateDirectory ?? join(repoRoot, ".tmp", "local-platform");
  const timings: { step: string; ms: number }[] = [];
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
    const entries = perService((service) => (code === "bundle" ? join(bundleDirectory, service, "main.js") : join(repoRoot, serviceEntries[service])));
    if (code === "bundle") {
      for (const entry of Object.values(entries)) {
        if (!(await exists(entry))) throw new Error(`${entry} does not exist: run \`npm run bundle\` first (or start from sources without --bundle)`);
      }
    }
    progress("Starting the local platform");
    await assertPortsFree(ports);
    const certificate = await timed("loopback certificate", () => loopbackCertificateIn(stateDirectory));

    // Azurite is a separate process and by far the slowest to start: nothing waits for it that need not.
    const blobStarting = timed("Azurite (Blob Storage)", () => startAzurite({ port: ports.blob }), (e) => e.blobEndpoint).then((e) => (stops.push(() => e.stop()), e));
    // Its origin is what the api's CORS, the Blob CORS rule and the Web PubSub emulator allow; the app builds meanwhile, its environment is set below.
    const siteStarting = timed("static site (web/)", () => startWebApp({ port: ports.web, ...options.web, log: (line) => output("web", line, "stdout") }), (s) => s.url).then(
      (s) => (stops.push(() => s.close()), s),
    );
    // One key per start of the platform, kept across a stop and start of the Service Bus emulator.
    const serviceBusKey = newLocalKey();
    let serviceBusEmulator: ServiceBusEmulator | undefined;
    const startServiceBus = (port: number) =>
      startServiceBusEmulator({
        port,
        key: serviceBusKey,
        queues,
        ...(options.serviceBusDataDir ? { dataDir: options.serviceBusDataDir } : {}),
        log: (line) => output("servicebus", line, "stderr"),
        ...(options.onServiceBusOperation ? { onOperation: options.onServiceBusOperation } : {}),
      }).then((emulator) => (serviceBusEmulator = emulator));
    const [cosmos, serviceBus, webPubSub, site] = await allStarted([
      timed("cosmosdb-server (Cosmos DB)", () => startCosmosEmulator({ certificate, port: ports.cosmos }), (e) => e.endpoint).then((e) => (stops.push(() => e.stop()), e)),
      timed(
        "Service Bus emulator",
        () => startServiceBus(ports.serviceBus),
        (e) =>
          `sb://127.0.0.1:${e.port}  ${config.serviceBusSku} tier (duplicate detection ${config.serviceBusSku === "Basic" ? "off" : "on"})  queues ${queues.map((q) => `"${q.name}" (maxDeliveryCount ${q.maxDeliveryCount}, lock ${(q.lockDurationMs ?? 0) / 1000} s)`).join(", ")}`,
      ).then((e) => (stops.push(() => serviceBusEmulator?.stop() ?? Promise.resolve()), e)),
      siteStarting.then((started) =>
        timed(
          "Web PubSub emulator",
          () =>
            startWebPubSubEmulator({
              port: ports.webPubSub,
              hubs: hubNames(resources),
              accessKey: newLocalKey(),
              // Only the local site's pages may connect (the service itself does not check Origin).
              allowedOrigins: [started.url, `http://localhost:${started.port}`],
              log: (line) => output("webpubsub", line, "stderr"),
            }),
          (e) => `${e.endpoint}  hubs ${hubNames(resources).map((h) => `"${h}"`).join(", ")}; pages of the local site only`,
        ).then((e) => (stops.push(() => e.stop()), e)),
      ),
      siteStarting,
    ] as const).catch(async (error: unknown) => {
      await blobStarting.catch(() => undefined);
      throw error;
    });
    const webOrigins = [site.url, `http://localhost:${site.port}`];

    // With a fixed port Azurite's connection string is known before it listens, so the services start meanwhile.
    const blobConnectionString = ports.blob !== 0 ? azuriteConnectionString(ports.blob) : (await blobStarting).connectionString;
    const throughInterposer = async (family: "cosmos" | "blob" | "webPubSub", connectionString: string): Promise<string> => {
      if (!options.interpose) return connectionString;
      const port = /127\.0\.0\.1:(\d+)/.exec(connectionString)?.[1];
      if (!port) throw new Error(`cannot find the ${family} emulator's port in its connection string`);
      const through = await options.interpose(family, Number(port));
      return connectionString.replaceAll(`127.0.0.1:${port}`, `127.0.0.1:${through}`);
    };
    const settings = localSettingsFor(
      {
        blob: await throughInterposer("blob", blobConnectionString),
        cosmos: await throughInterposer("cosmos", cosmos.connectionString),
        serviceBus: serviceBus.connectionString,
        webPubSub: await throughInterposer("webPubSub", webPubSub.connectionString),
      },
      config,
    );
    const nodeEnv: Record<string, string> = {
      NODE_EXTRA_CA_CERTS: await trustedCertificates(certificate, stateDirectory),
      ...(options.faultPointsDirectory ? { PLATFORM_FAULT_POINTS_DIR: options.faultPointsDirectory } : {}),
    };
    // HTTP services listen on their port and, when browsers call them, allow the web origins (CORS).
    const http = perService((service) => {
      const surface = declarationOf(service).http;
      return surface ? { port: ports[service], ...(surface.browserFacing ? { corsOrigins: webOrigins } : {}) } : undefined;
    });
    if (options.writeLocalSettings ?? true) {
      await timed("local.settings.json for func start", async () => {
        for (const service of serviceNames) {
          const directory = join(bundleDirectory, service);
          await mkdir(directory, { recursive: true });
          const host = { storageConnectionString: blobConnectionString, ...http[service] };
          const file = localSettingsFile(settings[service], host);
          await writeFile(join(directory, "local.settings.json"), `${JSON.stringify(file, null, 2)}\n`);
        }
      });
    }

    const cosmosReady = timed("Cosmos database and containers", async () => {
      // This process started before the certificate existed: trust it for this one client instead.
      const agent = new HttpsAgent({ ca: certificate.cert, keepAlive: false });
      const cosmosClient = new CosmosClient({ endpoint: cosmos.endpoint, key: COSMOS_EMULATOR_KEY, agent });
      try {
        await ensureCosmosResources(cosmosClient, resources.cosmos);
      } finally {
        cosmosClient.dispose();
        agent.destroy();
      }
    });
    const blobReady = blobStarting.then((blob) =>
      // Browsers PUT uploads straight to Blob Storage with SAS URLs, as in Azure (the Storage component's CORS rule).
      timed("Blob containers and CORS", () => ensureBlobResources(BlobServiceClient.fromConnectionString(blob.connectionString), resources.blobContainers, webOrigins)),
    );
    const hostsStarting = serviceNames.map((service) =>
      timed(
        `${service} (local Functions host, ${code === "bundle" ? "bundle" : "TypeScript source"})`,
        () =>
          startRestartableHost({
            name: service,
            entry: entries[service],
            hostJson: code === "bundle" ? join(bundleDirectory, service, "host.json") : hostJsonPath,
            port: http[service]?.port ?? 0,
            ...(http[service]?.corsOrigins ? { corsAllowedOrigins: http[service].corsOrigins } : {}),
            settings: settings[service],
            nodeEnv,
            output: (line, stream) => output(service, line, stream),
          }, { log: progress }),
        (h) => `${h.url ?? "no HTTP triggers"}; ${h.functions.length} functions`,
      ).then((h) => (serviceStops.push(() => h.stop()), h)),
    );
    const webBuilt = timed("web app (Vite build)", () => site.built, (build) => `built in ${build.ms} ms`);
    const [hosts, , , blob] = await allStarted([Promise.all(hostsStarting), cosmosReady, blobReady, blobStarting, webBuilt] as const).catch(async (error: unknown) => {
      await Promise.allSettled(hostsStarting);
      throw error;
    });
    // Azurite has no lifecycle management: the platform deletes old blobs as the container's rule would.
    const lifecycle = Object.entries(resources.blobContainers).flatMap(([name, options]) => {
      const days = resolveBlobContainer(options, config).deleteAfterDays;
      return days === undefined ? [] : [{ container: BlobServiceClient.fromConnectionString(blob.connectionString).getContainerClient(name), days }];
    });
    if (lifecycle.length > 0) {
      const sweep = setInterval(() => {
        for (const { container, days } of lifecycle) {
          sweepExpiredBlobs(container, days).catch((error: unknown) => output("platform", `lifecycle sweep of ${container.containerName} failed: ${(error as Error).message}`, "stderr"));
        }
      }, LIFECYCLE_SWEEP_INTERVAL_MS);
      sweep.unref();
      stops.push(async () => clearInterval(sweep));
    }
    const services = perService((service) => hosts[serviceNames.indexOf(service)]!);
    const serviceUrls: Partial<Record<ServiceName, string>> = {};
    for (const service of serviceNames) {
      const url = services[service].url;
      if (declarationOf(service).http && !url) throw new Error(`${service} is declared with HTTP functions but registered none`);
      if (url) serviceUrls[service] = `${url}/api`;
    }
    // The web app calls the browser-facing service.
    const browserFacing = serviceNames.find((service) => declarationOf(service).http?.browserFacing);
    const apiOrigin = browserFacing ? services[browserFacing].url : undefined;
    if (!apiOrigin) throw new Error("no service is declared browser-facing with HTTP functions (functions/src/services.ts)");
    const apiUrl = `${apiOrigin}/api`;
    site.configure(localSiteEnvironment({ apiUrl: apiOrigin, blobEndpoint: blob.blobEndpoint, webPubSubEndpoint: webPubSub.endpoint }));

    const startupMs = Math.round(performance.now() - began);
    let stopping: Promise<void> | undefined;
    return {
      urls: {
        web: site.url,
        api: apiUrl,
        docs: `${apiUrl}/docs/`,
        services: serviceUrls,
        blob: blob.blobEndpoint,
        cosmos: cosmos.endpoint,
        serviceBus: `sb://127.0.0.1:${serviceBus.port}`,
        webPubSub: webPubSub.endpoint,
      },
      settings,
      nodeEnv,
      services,
      config,
      serviceBus: {
        get running() {
          return serviceBusEmulator !== undefined;
        },
        async stop() {
          const emulator = serviceBusEmulator;
          serviceBusEmulator = undefined;
          await emulator?.stop();
          progress(`Service Bus emulator stopped${options.serviceBusDataDir ? " (its messages are kept in its data directory)" : ""}`);
        },
        async start() {
          if (serviceBusEmulator) return;
          await startServiceBus(serviceBus.port);
          progress(`Service Bus emulator started again on sb://127.0.0.1:${serviceBus.port}`);
        },
      },
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
