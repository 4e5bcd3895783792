/**
 * THE settings contract shared by the function code, the infrastructure and the local platform,
 * derived from the service registry (services.ts):
 *
 * - each link gives a connection setting for the Azure service it reaches (`ServiceBus`, `Cosmos`,
 *   `DataStorage`, `WebPubSub`; platform/links.ts). In Azure it is identity-based
 *   (`<Name>__fullyQualifiedNamespace`, `__accountEndpoint`, `__blobServiceUri`, `__serviceUri`,
 *   plus `__credential`/`__clientId` for the app's user-assigned identity), the shape the Functions
 *   host and its bindings understand; on the local platform it is a connection string in `<Name>`.
 *   Connection strings never reach Azure: the Azure side has no room for one.
 * - each declared setting of the service gives one app setting, its value from a stack config key
 *   in Azure, and that key's default (or the declared local value) on the local platform;
 * - every service gets APPLICATIONINSIGHTS_CONNECTION_STRING (telemetry is off without it);
 * - a service's `host` tuning gives the settings the Functions host itself reads (request body
 *   limit, Service Bus concurrency), in Azure and on the local platform alike (see hostSettings).
 *
 * The function code loads its settings once, at start-up, through {@link loadSettings}, which fails
 * naming every missing or malformed setting. Names of queues, containers and hubs are not settings:
 * they are the names declared in resources.ts, the same everywhere.
 */
import type { PlatformConfig } from "../../infrastructure/config";
import { connectionFamilies, linkKinds, type ConnectionFamily, type ConnectionSettingName, type FamilyOf } from "./platform/links";
import type { ConfigSource, SettingDeclaration } from "./platform/service-kinds";
import { declarationOf, type ServiceName } from "./services";

type Declaration<S extends ServiceName> = (typeof import("./services.js").services)[S];
type DeclaredSettings<S extends ServiceName> = Declaration<S>["settings"];

/** The Azure services a service's links reach. */
export type LinkedFamilies<S extends ServiceName> = FamilyOf<Declaration<S>["links"][number]["kind"]>;

/** The setting Application Insights' connection string arrives in, for every service. */
export const TELEMETRY_SETTING = "APPLICATIONINSIGHTS_CONNECTION_STRING";

/** A connection as the code sees it: identity-based (Azure) or a connection string (local). */
export type Connection =
  | { mode: "identity"; endpoint: string; clientId?: string }
  | { mode: "connectionString"; connectionString: string };

type LoadedValue<D> = D extends { parse: (raw: string) => infer T } ? T : string;
type Loaded<D> = D extends { optional: true } ? LoadedValue<D> | undefined : LoadedValue<D>;

/** The typed settings of a service, as {@link loadSettings} returns them. */
export type Settings<S extends ServiceName> = {
  readonly [F in LinkedFamilies<S> as ConnectionSettingName<F>]: Connection;
} & {
  readonly [K in keyof DeclaredSettings<S>]: Loaded<DeclaredSettings<S>[K]>;
} & {
  /** Application Insights ingestion endpoint (Entra auth, no key); telemetry is off without it. */
  readonly APPLICATIONINSIGHTS_CONNECTION_STRING: string | undefined;
};

/** The connection families a service's links reach, each once, in link order. */
export function linkedFamilies<S extends ServiceName>(service: S): LinkedFamilies<S>[] {
  const families: ConnectionFamily[] = [];
  for (const link of declarationOf(service).links) {
    const family = linkKinds[link.kind].family;
    if (!families.includes(family)) families.push(family);
  }
  return families as LinkedFamilies<S>[];
}

function declaredSettings(service: ServiceName): [string, SettingDeclaration][] {
  return Object.entries(declarationOf(service).settings);
}

/** The Functions host's request body limit, in bytes (read by the host, not the code). */
export const HOST_REQUEST_BODY_LIMIT_SETTING = "FUNCTIONS_REQUEST_BODY_SIZE_LIMIT";
/** Overrides host.json's extensions.serviceBus.maxConcurrentCalls (`AzureFunctionsJobHost__<path>`). */
export const HOST_SERVICE_BUS_CONCURRENCY_SETTING = "AzureFunctionsJobHost__extensions__serviceBus__maxConcurrentCalls";

/**
 * The settings the Functions host reads for a service, from its `host` tuning (services.ts) and
 * the stack configuration (the instance memory decides the Service Bus concurrency).
 */
export function hostSettings(service: ServiceName, config: PlatformConfig): Record<string, string> {
  const tuning = declarationOf(service).host;
  const result: Record<string, string> = {};
  if (tuning?.requestBodyLimitBytes !== undefined) result[HOST_REQUEST_BODY_LIMIT_SETTING] = String(tuning.requestBodyLimitBytes);
  if (tuning?.serviceBusConcurrency) result[HOST_SERVICE_BUS_CONCURRENCY_SETTING] = String(tuning.serviceBusConcurrency(config.functionMemoryMb));
  return result;
}

/** The text a config value becomes in an app setting; undefined leaves the setting out. */
export function settingValueFromConfig(source: ConfigSource, config: PlatformConfig): string | undefined {
  const value = config[source.config];
  return value === undefined ? undefined : String(value);
}

/**
 * The app settings of a service in Azure: identity-based connections for its linked families
 * (`endpoints`, one per family: namespace FQDN, account endpoint, blob service URI, service URI),
 * and its declared settings from the stack configuration. Pure, so the infrastructure and its tests
 * share it; `V` is the value type (`pulumi.Input<string>` in the infrastructure).
 */
export function azureAppSettings<S extends ServiceName, V>(
  service: S,
  inputs: { readonly endpoints: Readonly<Partial<Record<ConnectionFamily, V>>>; readonly config: PlatformConfig; readonly identityClientId?: V },
): { name: string; value: V | string }[] {
  const result: { name: string; value: V | string }[] = [];
  for (const family of linkedFamilies(service)) {
    const endpoint = inputs.endpoints[family];
    if (endpoint === undefined) throw new Error(`${service}: no endpoint for its ${family} links`);
    const { setting, suffix } = connectionFamilies[family];
    result.push({ name: `${setting}__${suffix}`, value: endpoint });
    if (inputs.identityClientId !== undefined) {
      result.push({ name: `${setting}__credential`, value: "managedidentity" });
      result.push({ name: `${setting}__clientId`, value: inputs.identityClientId });
    }
  }
  for (const [name, declaration] of declaredSettings(service)) {
    if ("scope" in declaration) continue;
    const value = settingValueFromConfig(declaration.from, inputs.config);
    if (value === undefined) {
      if (declaration.optional) continue;
      throw new Error(`${service}: setting ${name} has no value (stack config ${declaration.from.config} is not set)`);
    }
    result.push({ name, value });
  }
  for (const [name, value] of Object.entries(hostSettings(service, inputs.config))) result.push({ name, value });
  return result;
}

/**
 * The app settings of a service on the local platform: connection strings of the emulators for its
 * linked families, and its declared settings from the configuration's defaults (or their local value).
 */
export function localAppSettings(
  service: ServiceName,
  inputs: { readonly connectionStrings: Readonly<Record<ConnectionFamily, string>>; readonly config: PlatformConfig },
): Record<string, string> {
  const result: Record<string, string> = {};
  for (const family of linkedFamilies(service)) result[connectionFamilies[family].setting] = inputs.connectionStrings[family];
  for (const [name, declaration] of declaredSettings(service)) {
    const value = declaration.local ?? ("from" in declaration ? settingValueFromConfig(declaration.from, inputs.config) : undefined);
    if (value !== undefined) result[name] = value;
  }
  return { ...result, ...hostSettings(service, inputs.config) };
}

/**
 * Environment variables that Azure's hosting sets and no local run has: App Service and Functions
 * set WEBSITE_SITE_NAME and WEBSITE_INSTANCE_ID; Flex Consumption (Linux, "Legion") sets
 * WEBSITE_SKU=FlexConsumption, CONTAINER_NAME and WEBSITE_POD_NAME (the Functions host's own
 * EnvironmentExtensions recognise Flex by these). A managed-identity connection
 * (`<Name>__credential=managedidentity`) works only where Azure provides the identity.
 */
export const AZURE_HOSTING_VARIABLES = ["WEBSITE_SITE_NAME", "WEBSITE_INSTANCE_ID", "WEBSITE_SKU", "CONTAINER_NAME", "WEBSITE_POD_NAME"] as const;

/** What shows that Azure runs this process (empty on this machine and under Core Tools). */
export function azureHostingEvidence(env: NodeJS.ProcessEnv): string[] {
  const evidence: string[] = AZURE_HOSTING_VARIABLES.filter((name) => (env[name] ?? "") !== "").map((name) => `${name} is set`);
  for (const [name, value] of Object.entries(env)) {
    if (name.endsWith("__credential") && value?.toLowerCase() === "managedidentity") evidence.push(`${name}=managedidentity`);
  }
  return evidence;
}

export class SettingsError extends Error {
  constructor(
    readonly service: ServiceName,
    readonly problems: string[],
  ) {
    super(`${service} settings are invalid:\n  - ${problems.join("\n  - ")}`);
    this.name = "SettingsError";
  }
}

function readConnection(env: NodeJS.ProcessEnv, family: ConnectionFamily): Connection | undefined {
  const { setting, suffix } = connectionFamilies[family];
  const endpoint = env[`${setting}__${suffix}`];
  if (endpoint) {
    const clientId = env[`${setting}__clientId`];
    return clientId ? { mode: "identity", endpoint, clientId } : { mode: "identity", endpoint };
  }
  const connectionString = env[setting];
  return connectionString ? { mode: "connectionString", connectionString } : undefined;
}

/**
 * Reads and validates every setting of a service from `env`. Throws a {@link SettingsError} that
 * names each missing or malformed setting (and, for a connection, both shapes it may take).
 */
export function loadSettings<S extends ServiceName>(service: S, env: NodeJS.ProcessEnv = process.env): Settings<S> {
  const problems: string[] = [];
  const result: Record<string, unknown> = {};
  for (const family of linkedFamilies(service)) {
    const { setting, suffix } = connectionFamilies[family];
    const connection = readConnection(env, family);
    if (!connection) {
      const links = declarationOf(service).links.filter((l) => linkKinds[l.kind].family === family).map((l) => `${l.kind} ${l.name}`);
      problems.push(`${setting} is missing: set ${setting}__${suffix} (managed identity) or ${setting} (connection string, local only) — the connection for ${links.join(", ")}`);
    }
    result[setting] = connection;
  }
  const inAzure = azureHostingEvidence(env);
  for (const [name, declaration] of declaredSettings(service)) {
    const raw = env[name];
    if ("scope" in declaration && raw !== undefined && raw !== "" && inAzure.length > 0) {
      // Local-only settings (the development identity) must never take effect where Azure runs the
      // code, whoever put them there (a published local.settings.json, a portal edit).
      problems.push(`${name} is a local-only setting, but Azure runs this app (${inAzure.join(", ")}): remove it from the app settings — ${declaration.description}`);
      continue;
    }
    if (raw === undefined || raw === "") {
      if (!declaration.optional) problems.push(`${name} is missing — ${declaration.description}`);
      result[name] = undefined;
      continue;
    }
    try {
      result[name] = declaration.parse ? declaration.parse(raw) : raw;
    } catch (error) {
      problems.push(`${name} ${(error as Error).message} (got ${JSON.stringify(raw)})`);
    }
  }
  result[TELEMETRY_SETTING] = env[TELEMETRY_SETTING] || undefined;
  if (problems.length > 0) throw new SettingsError(service, problems);
  return result as Settings<S>;
}
