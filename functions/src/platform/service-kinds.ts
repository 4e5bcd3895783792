/**
 * What a service declaration holds (functions/src/services.ts): its HTTP surface, its links, the
 * settings its own code reads, the files it needs beside its bundle. Pulumi-free and data only, so
 * the function code, the bundler, the infrastructure and the local platform all read it.
 */
import type { PlatformConfig } from "../../../infrastructure/config";
import type { AnyLinkDeclaration } from "./links";

/** A stack configuration key (Pulumi.yaml `config:`, infrastructure/config.ts). */
export type ConfigKey = keyof PlatformConfig;
/** Keys whose value is an integer. */
export type IntegerConfigKey = { [K in ConfigKey]-?: NonNullable<PlatformConfig[K]> extends number ? K : never }[ConfigKey];

/**
 * Where a setting's value comes from in a deployed stack: a stack config key (or a fact derived
 * from the configuration, infrastructure/config.ts DerivedConfig), as text; an unset key leaves
 * the setting out.
 *
 * On the local platform the same key's default applies (the local platform is a stack with the
 * defaults), unless the declaration gives a `local` value.
 */
export interface ConfigSource {
  readonly config: ConfigKey;
}

interface SettingBase {
  /** What the setting means, for error messages and generated docs. */
  readonly description: string;
  /** Parse and validate the raw string; throw an Error whose message says what is allowed. */
  readonly parse?: (raw: string) => unknown;
  /** The loader returns `undefined` for an absent optional setting instead of failing. */
  readonly optional?: boolean;
}

/** A setting the stack gives a value from its configuration. */
export interface StackSetting extends SettingBase {
  readonly from: ConfigSource;
  /** The value on the local platform, when it is not the config key's default. */
  readonly local?: string;
}

/** A setting that exists only on the local platform (never in Azure: the Azure side has no room for it). */
export interface LocalOnlySetting extends SettingBase {
  readonly scope: "local";
  readonly local: string;
  readonly optional: true;
}

export type SettingDeclaration = StackSetting | LocalOnlySetting;

/** Files a service reads at run time from beside its bundle (its package has no node_modules). */
export interface ServiceAsset {
  /** The npm package the files come from. */
  readonly package: string;
  /** Paths inside that package. */
  readonly files: readonly string[];
  /** Folder inside the service's package, beside main.js. */
  readonly into: string;
}

export interface HttpSurface {
  /** Port of the service's HTTP functions on the local platform (`npm start -- --<service>-port N` overrides). */
  readonly localPort: number;
  /**
   * Browsers call it from the web app: CORS allows the web origin, and with Entra sign-in configured
   * (authEntraClientId) App Service Authentication requires a token in front of it.
   * @default false
   */
  readonly browserFacing?: boolean;
  /**
   * Routes below /api/ that answer without a token when App Service Authentication is on;
   * `docs/*` covers everything below docs/.
   * @default []
   */
  readonly anonymousRoutes?: readonly string[];
  /** The stack config key that holds how many always-ready instances the HTTP functions keep warm. */
  readonly alwaysReadyConfig?: IntegerConfigKey;
}

/**
 * What the Functions host that runs a service is told, as app settings the host reads (not the
 * service's code). The same settings reach the app in Azure and the local host, which honours them.
 */
export interface HostTuning {
  /**
   * Largest request body the host accepts, in bytes (`FUNCTIONS_REQUEST_BODY_SIZE_LIMIT`): a larger
   * one is refused with 413 before any function runs, so it is never held whole.
   * @default the host's own limit, 104857600 (100 MB)
   */
  readonly requestBodyLimitBytes?: number;
  /**
   * Service Bus trigger invocations one instance runs at once, from the instance's memory in MB
   * (`AzureFunctionsJobHost__extensions__serviceBus__maxConcurrentCalls`, which overrides host.json).
   * @default host.json's maxConcurrentCalls
   */
  readonly serviceBusConcurrency?: (instanceMemoryMb: number) => number;
}

export interface ServiceDeclaration {
  /** One line: what the service does. */
  readonly description: string;
  /** Present when the service has HTTP functions. */
  readonly http?: HttpSurface;
  /** What the service may reach; its connection settings and role assignments follow from these. */
  readonly links: readonly AnyLinkDeclaration[];
  /** Every other setting its code reads. */
  readonly settings: Readonly<Record<string, SettingDeclaration>>;
  /** Files it reads at run time from beside its bundle. @default [] */
  readonly assets?: readonly ServiceAsset[];
  /** Settings for the Functions host that runs it. @default none */
  readonly host?: HostTuning;
}

/**
 * A service name: it starts its Function App's site name (infrastructure/naming.ts), so it is
 * lowercase letters and digits (site names allow no upper case, and no hyphen keeps `<service>-` from
 * starting another service's name) and at most 16 characters, so `<service>-<prefix>-<stack>-<hash>`
 * stays within the 60 characters Azure allows a site.
 */
export const serviceNamePattern = /^[a-z][a-z0-9]{1,15}$/;

/**
 * Names a service cannot take: the folders of functions/src that hold no service, and the local
 * platform's own listeners (a service's `npm start -- --<service>-port` flag would clash with theirs).
 */
export const reservedServiceNames: readonly string[] = ["platform", "shared", "web", "blob", "cosmos", "servicebus", "webpubsub"];

/** Checks the service names and returns the declarations unchanged, typed as declared. */
export function defineServices<const S extends Record<string, ServiceDeclaration>>(services: S): S {
  const problems: string[] = [];
  const ports = new Map<number, string>();
  for (const [name, service] of Object.entries(services)) {
    if (!serviceNamePattern.test(name)) problems.push(`service name "${name}" must be 2 to 16 lowercase letters or digits, starting with a letter`);
    if (reservedServiceNames.includes(name)) problems.push(`service name "${name}" is reserved (${reservedServiceNames.join(", ")})`);
    if (service.http) {
      const other = ports.get(service.http.localPort);
      if (other) problems.push(`services "${other}" and "${name}" both use local port ${service.http.localPort}`);
      ports.set(service.http.localPort, name);
    }
    const seen = new Set<string>();
    for (const link of service.links) {
      const key = `${link.kind}:${link.name}`;
      if (seen.has(key)) problems.push(`service "${name}" links ${link.kind} "${link.name}" twice`);
      seen.add(key);
    }
  }
  if (problems.length > 0) throw new Error(`invalid service registry:\n  - ${problems.join("\n  - ")}`);
  return services;
}

/** Where a service's code starts: one folder per service, `functions/src/<service>/index.ts`. */
export function serviceEntry(service: string): string {
  return `functions/src/${service}/index.ts`;
}
