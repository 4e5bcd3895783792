/**
 * THE settings contract shared by the function code and the infrastructure.
 *
 * Each service declares every setting its code reads. The function code loads them once, at
 * start-up, through {@link loadSettings}, which fails naming every missing or malformed setting.
 * The infrastructure imports the same declarations: the FunctionApp component takes an
 * {@link AzureSettingValues} for its service, so a missing or misspelled setting does not compile.
 *
 * Two kinds of setting:
 * - `value`: one app setting, the same name in Azure and on the local platform.
 * - `connection`: how to reach an Azure service. In Azure it is identity-based
 *   (`<Name>__fullyQualifiedNamespace`, `__accountEndpoint`, `__blobServiceUri`, `__serviceUri`,
 *   plus `__credential`/`__clientId` for a user-assigned identity), the shape the Functions host
 *   and its bindings understand. On the local platform it is a connection string in `<Name>`.
 *   Connection strings never reach Azure: the Azure-side type has no room for one.
 *
 * `scope: "local"` settings exist only on the local platform (the Azure type omits them).
 */

/** The Azure service a connection setting reaches, and the app-setting suffix of its identity shape. */
export const connectionKinds = {
  serviceBus: { suffix: "fullyQualifiedNamespace", example: "myns.servicebus.windows.net" },
  cosmos: { suffix: "accountEndpoint", example: "https://myacct.documents.azure.com:443/" },
  blob: { suffix: "blobServiceUri", example: "https://myacct.blob.core.windows.net" },
  webPubSub: { suffix: "serviceUri", example: "https://mywps.webpubsub.azure.com" },
} as const;
export type ConnectionKind = keyof typeof connectionKinds;

interface SettingBase {
  /** What the setting means, for error messages and generated docs. */
  readonly description: string;
  /** Optional settings may be absent; the loader then returns `undefined` for them. */
  readonly optional?: boolean;
  /** `local`: only the local platform sets it (never present in Azure). @default "everywhere" */
  readonly scope?: "everywhere" | "local";
}
export interface ValueSetting extends SettingBase {
  readonly kind: "value";
  /** Parse and validate the raw string; throw an Error whose message says what is allowed. */
  readonly parse?: (raw: string) => unknown;
}
export interface ConnectionSetting extends SettingBase {
  readonly kind: "connection";
  readonly service: ConnectionKind;
}
export type SettingDeclaration = ValueSetting | ConnectionSetting;

const integer = (min: number, max: number) => (raw: string) => {
  const n = Number(raw);
  if (!/^\d+$/.test(raw.trim()) || !Number.isSafeInteger(n) || n < min || n > max) {
    throw new Error(`must be an integer from ${min} to ${max}`);
  }
  return n;
};
const httpUrl = (raw: string) => {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new Error("must be an absolute http(s) URL");
  }
  if (url.protocol !== "https:" && url.protocol !== "http:") throw new Error("must be an absolute http(s) URL");
  return url.toString();
};
const flag = (raw: string) => {
  if (raw !== "true" && raw !== "false") throw new Error('must be "true" or "false"');
  return raw === "true";
};

const cosmos = {
  Cosmos: { kind: "connection", service: "cosmos", description: "Cosmos DB account holding the jobs" },
  COSMOS_DATABASE_NAME: { kind: "value", description: "Cosmos DB database name" },
  COSMOS_JOBS_CONTAINER_NAME: { kind: "value", description: "Cosmos DB container of job documents (partition key /userId)" },
} as const satisfies Record<string, SettingDeclaration>;

const uploads = {
  UploadsStorage: { kind: "connection", service: "blob", description: "Blob Storage account holding user uploads" },
  UPLOADS_CONTAINER_NAME: { kind: "value", description: "Blob container for user uploads" },
} as const satisfies Record<string, SettingDeclaration>;

const realtime = {
  WebPubSub: { kind: "connection", service: "webPubSub", description: "Web PubSub service that pushes job events to browsers" },
  WEBPUBSUB_HUB: { kind: "value", description: "Web PubSub hub name" },
} as const satisfies Record<string, SettingDeclaration>;

const telemetry = {
  APPLICATIONINSIGHTS_CONNECTION_STRING: {
    kind: "value",
    optional: true,
    description: "Application Insights connection string (ingestion endpoint; Entra auth, no key); telemetry is off without it",
  },
} as const satisfies Record<string, SettingDeclaration>;

/** Every setting each service's code reads. Extend here first; the compiler shows the rest. */
export const serviceSettings = {
  api: {
    ...cosmos,
    ...uploads,
    ...realtime,
    ...telemetry,
    ServiceBus: { kind: "connection", service: "serviceBus", description: "Service Bus namespace the api sends jobs to" },
    JOBS_QUEUE_NAME: { kind: "value", description: "Service Bus queue that carries jobs to the agent" },
    UPLOAD_MAX_BYTES: { kind: "value", parse: integer(1, 256 * 1024 * 1024), description: "Largest upload a SAS URL allows, in bytes" },
    UPLOAD_URL_TTL_SECONDS: { kind: "value", parse: integer(60, 3600), description: "Lifetime of an upload SAS URL, in seconds" },
    APP_SERVICE_AUTHENTICATION: {
      kind: "value",
      parse: flag,
      description:
        'Whether App Service Authentication runs in front of the api ("true" only then): the x-ms-client-principal headers identify callers only because it strips and sets them; without it anyone could forge them, so they are ignored',
    },
    ALLOW_DEVELOPMENT_IDENTITY: {
      kind: "value",
      parse: flag,
      optional: true,
      scope: "local",
      description: "Accept the x-dev-user header as the caller's identity (local platform only; never in Azure)",
    },
  },
  agent: {
    ...cosmos,
    ...uploads,
    ...realtime,
    ...telemetry,
    ServiceBus: { kind: "connection", service: "serviceBus", description: "Service Bus namespace the agent receives jobs from" },
    JOBS_QUEUE_NAME: { kind: "value", description: "Service Bus queue that carries jobs to the agent" },
    UPLOAD_MAX_BYTES: {
      kind: "value",
      parse: integer(1, 256 * 1024 * 1024),
      optional: true,
      description:
        "Largest blob the agent analyses, in bytes: give it the api's value (a SAS URL cannot enforce a size, the agent does); 16 MiB when unset",
    },
    EXTERNAL_PROCESSOR_URL: {
      kind: "value",
      parse: httpUrl,
      optional: true,
      description: "Optional external analysis service; the built-in analysis is used without it",
    },
  },
} as const satisfies Record<string, Record<string, SettingDeclaration>>;

export type ServiceName = keyof typeof serviceSettings;
export const serviceNames = Object.keys(serviceSettings) as ServiceName[];
type Declarations<S extends ServiceName> = (typeof serviceSettings)[S];

// ---------------------------------------------------------------------------------------------
// Types the infrastructure uses: a value for every Azure-side setting of a service.

type AzureKeys<S extends ServiceName> = {
  [K in keyof Declarations<S>]: Declarations<S>[K] extends { scope: "local" } ? never : K;
}[keyof Declarations<S>];
type RequiredAzureKeys<S extends ServiceName> = {
  [K in AzureKeys<S>]: Declarations<S>[K] extends { optional: true } ? never : K;
}[AzureKeys<S>];
type OptionalAzureKeys<S extends ServiceName> = Exclude<AzureKeys<S>, RequiredAzureKeys<S>>;

/**
 * The values a service needs in Azure, keyed by setting name. For a connection setting the value is
 * the service's endpoint (namespace FQDN, account endpoint, blob service URI, service URI), never a
 * connection string. `V` is the value type: `pulumi.Input<string>` in the infrastructure.
 */
export type AzureSettingValues<S extends ServiceName, V = string> = {
  [K in RequiredAzureKeys<S>]: V;
} & {
  [K in OptionalAzureKeys<S>]?: V;
};

/** Names of the connection settings of a service. */
export function connectionSettingNames(service: ServiceName): string[] {
  return Object.entries(serviceSettings[service])
    .filter(([, d]) => (d as SettingDeclaration).kind === "connection")
    .map(([name]) => name);
}

/**
 * The Azure app settings for a service's values: connection settings become their identity-based
 * names (`<Name>__<suffix>`, and `__credential`/`__clientId` when a user-assigned identity is given).
 * Pure, so the infrastructure and its tests share it.
 */
export function azureAppSettings<S extends ServiceName, V>(
  service: S,
  values: AzureSettingValues<S, V>,
  identity?: { clientId: V },
): { name: string; value: V | string }[] {
  const declarations = serviceSettings[service] as Record<string, SettingDeclaration>;
  const given = values as Record<string, V | undefined>;
  for (const name of Object.keys(given)) {
    const declaration = declarations[name];
    if (!declaration) throw new Error(`${service}: ${name} is not a setting of this service`);
    if (declaration.scope === "local") throw new Error(`${service}: ${name} is a local-only setting and cannot be set in Azure`);
  }
  const result: { name: string; value: V | string }[] = [];
  for (const [name, declaration] of Object.entries(declarations)) {
    const value = given[name];
    if (declaration.scope === "local") continue;
    if (value === undefined) {
      if (declaration.optional) continue;
      throw new Error(`${service}: setting ${name} has no value`);
    }
    if (declaration.kind === "value") {
      result.push({ name, value });
      continue;
    }
    result.push({ name: `${name}__${connectionKinds[declaration.service].suffix}`, value });
    if (identity) {
      result.push({ name: `${name}__credential`, value: "managedidentity" });
      result.push({ name: `${name}__clientId`, value: identity.clientId });
    }
  }
  return result;
}

// ---------------------------------------------------------------------------------------------
// The loader the function code uses.

/** A connection as the code sees it: identity-based (Azure) or a connection string (local). */
export type Connection =
  | { mode: "identity"; endpoint: string; clientId?: string }
  | { mode: "connectionString"; connectionString: string };

type LoadedValue<D> = D extends { kind: "connection" }
  ? Connection
  : D extends { parse: (raw: string) => infer T }
    ? T
    : string;
type Loaded<D> = D extends { optional: true } ? LoadedValue<D> | undefined : LoadedValue<D>;

/** The typed settings of a service, as {@link loadSettings} returns them. */
export type Settings<S extends ServiceName> = { readonly [K in keyof Declarations<S>]: Loaded<Declarations<S>[K]> };

export class SettingsError extends Error {
  constructor(
    readonly service: ServiceName,
    readonly problems: string[],
  ) {
    super(`${service} settings are invalid:\n  - ${problems.join("\n  - ")}`);
    this.name = "SettingsError";
  }
}

function readConnection(env: NodeJS.ProcessEnv, name: string, kind: ConnectionKind): Connection | undefined {
  const connectionString = env[name];
  const endpoint = env[`${name}__${connectionKinds[kind].suffix}`];
  if (endpoint) {
    const clientId = env[`${name}__clientId`];
    return clientId ? { mode: "identity", endpoint, clientId } : { mode: "identity", endpoint };
  }
  if (connectionString) return { mode: "connectionString", connectionString };
  return undefined;
}

/**
 * Reads and validates every setting of a service from `env`. Throws a {@link SettingsError} that
 * names each missing or malformed setting (and, for a connection, both shapes it may take).
 */
export function loadSettings<S extends ServiceName>(service: S, env: NodeJS.ProcessEnv = process.env): Settings<S> {
  const declarations = serviceSettings[service] as Record<string, SettingDeclaration>;
  const problems: string[] = [];
  const result: Record<string, unknown> = {};
  for (const [name, declaration] of Object.entries(declarations)) {
    if (declaration.kind === "connection") {
      const connection = readConnection(env, name, declaration.service);
      if (!connection && !declaration.optional) {
        const suffix = connectionKinds[declaration.service].suffix;
        problems.push(`${name} is missing: set ${name}__${suffix} (managed identity) or ${name} (connection string, local only) — ${declaration.description}`);
      }
      result[name] = connection;
      continue;
    }
    const raw = env[name];
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
  if (problems.length > 0) throw new SettingsError(service, problems);
  return result as Settings<S>;
}
