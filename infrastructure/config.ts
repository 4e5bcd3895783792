/**
 * The stack configuration: read once here, validated by a pure function, handed to the program as
 * one typed object. Pulumi.yaml declares the same keys (type, description, default); a test keeps
 * the two in step.
 *
 * Only readConfig needs Pulumi, and it loads it when called: the local platform and the settings
 * contract read the schema's defaults without paying for @pulumi/pulumi.
 */
import { z } from "zod";
import { ncrontab } from "../functions/src/platform/setting-parsers";

function isNcrontab(value: string): boolean {
  try {
    ncrontab(value);
    return true;
  } catch {
    return false;
  }
}

/** The Pulumi project name (Pulumi.yaml `name`): the namespace of every config key below. */
export const projectName = "azure-serverless-platform";

/**
 * Azure public-cloud region names. Flex Consumption is offered in a subset that changes over time
 * (`az functionapp list-flexconsumption-locations`); Azure rejects the plan in a region without it,
 * so this list only catches typos and display names ("West Europe") early.
 */
export const azureRegions = [
  "australiacentral", "australiaeast", "australiasoutheast", "austriaeast", "belgiumcentral", "brazilsouth",
  "canadacentral", "canadaeast", "centralindia", "centralus", "chilecentral", "eastasia", "eastus", "eastus2",
  "francecentral", "germanywestcentral", "indonesiacentral", "israelcentral", "italynorth", "japaneast",
  "japanwest", "koreacentral", "koreasouth", "malaysiawest", "mexicocentral", "newzealandnorth",
  "northcentralus", "northeurope", "norwayeast", "polandcentral", "qatarcentral", "southafricanorth",
  "southcentralus", "southeastasia", "southindia", "spaincentral", "swedencentral", "switzerlandnorth",
  "uaenorth", "uksouth", "ukwest", "westcentralus", "westeurope", "westus", "westus2", "westus3",
] as const;

/** Flex Consumption instance sizes this template supports (512 MB instances are rejected by the API version used). */
export const functionMemoryOptions = [2048, 4096] as const;
export const storageSkus = ["Standard_LRS", "Standard_ZRS", "Standard_GRS", "Standard_RAGRS", "Standard_GZRS", "Standard_RAGZRS"] as const;
/** Basic has no duplicate detection; Premium alone offers private endpoints (and a fixed hourly price per messaging unit). */
export const serviceBusSkus = ["Basic", "Standard", "Premium"] as const;
/** Service Bus Premium messaging units Azure accepts. */
export const serviceBusMessagingUnitCounts = [1, 2, 4, 8, 16] as const;
/** Free_F1 has no SLA and no private endpoints; Premium_P1 adds zone redundancy. */
export const webPubSubSkus = ["Free_F1", "Standard_S1", "Premium_P1"] as const;
/** Storage replications that keep copies in three availability zones (what zone redundancy needs of the host account). */
export const zoneRedundantStorageSkus = ["Standard_ZRS", "Standard_GZRS", "Standard_RAGZRS"] as const;
/** BoundedStaleness is left out: it needs staleness bounds this template does not expose. */
export const cosmosConsistencyLevels = ["Session", "Eventual", "ConsistentPrefix", "Strong"] as const;
export const principalTypes = ["User", "ServicePrincipal", "Group"] as const;
/**
 * API Management tiers the gateway may use: the v2 tiers, which provision in minutes and have
 * rate-limit-by-key (per-caller limits). Consumption has no rate-limit-by-key; the classic tiers
 * take 30-90 minutes to create.
 */
export const gatewaySkus = ["BasicV2", "StandardV2"] as const;
/**
 * Web PubSub Standard unit counts Azure accepts: 1-10, then tens up to 100 ("How to scale an Azure
 * Web PubSub Service instance"; ARM refuses e.g. 15).
 */
export const webPubSubUnitCounts = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100] as const;

const listOf = (values: readonly (string | number)[]) => values.join(", ");

/** Accepts a number or the string Pulumi config stores, and checks it is an integer in range. */
const integerIn = (min: number, max: number) =>
  z.preprocess(
    (raw) => (typeof raw === "string" && /^-?\d+$/.test(raw.trim()) ? Number(raw) : raw),
    z.number({ error: `allowed values: an integer from ${min} to ${max}` })
      .int({ error: `allowed values: an integer from ${min} to ${max}` })
      .min(min, { error: `allowed values: an integer from ${min} to ${max}` })
      .max(max, { error: `allowed values: an integer from ${min} to ${max}` }),
  );

const oneOf = <const T extends readonly [string, ...string[]]>(values: T) =>
  z.enum(values, { error: `allowed values: ${listOf(values)}` });

const memory = z.preprocess(
  (raw) => (typeof raw === "string" && /^\d+$/.test(raw.trim()) ? Number(raw) : raw),
  z.union(functionMemoryOptions.map((m) => z.literal(m)) as [z.ZodLiteral<2048>, z.ZodLiteral<4096>], {
    error: `allowed values: ${listOf(functionMemoryOptions)} (MB)`,
  }),
);

const guid = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Accepts a boolean or the "true"/"false" string Pulumi config stores. */
const flag = z.preprocess(
  (raw) => (typeof raw === "string" && /^(true|false)$/i.test(raw.trim()) ? raw.trim().toLowerCase() === "true" : raw),
  z.boolean({ error: "allowed values: true, false" }),
);

/** An existing action group's ARM resource ID. */
const actionGroupId = /^\/subscriptions\/[0-9a-f-]{36}\/resourceGroups\/[^/]+\/providers\/microsoft\.insights\/actionGroups\/[^/]+$/i;

/** An IPv4 CIDR from the private ranges (RFC 1918), /16 to /24: room for the subnets, and routable in a peered network. */
export function isPrivateAddressSpace(cidr: string): boolean {
  const match = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\/(\d{1,2})$/.exec(cidr);
  if (!match) return false;
  const [a, b, c, d, prefix] = match.slice(1).map(Number) as [number, number, number, number, number];
  if ([a, b, c, d].some((octet) => octet > 255) || prefix < 16 || prefix > 24) return false;
  const address = ((a << 24) >>> 0) + (b << 16) + (c << 8) + d;
  if (address % 2 ** (32 - prefix) !== 0) return false; // host bits set: not the network's own address
  return a === 10 || (a === 172 && b >= 16 && b <= 31) || (a === 192 && b === 168);
}

/** Every key a user may set, with its default. Keep Pulumi.yaml's `config:` section in step. */
export const configSchema = z
  .object({
    namePrefix: z
      .string()
      .regex(/^[a-z][a-z0-9]{1,9}$/, {
        error: "allowed values: 2 to 10 lowercase letters or digits, starting with a letter (it goes into every resource name)",
      })
      .default("plat"),
    location: oneOf(azureRegions).default("eastus"),
    storageSku: oneOf(storageSkus).default("Standard_LRS"),
    blobSoftDeleteDays: integerIn(1, 365).default(7),
    cosmosConsistency: oneOf(cosmosConsistencyLevels).default("Session"),
    serviceBusSku: oneOf(serviceBusSkus).default("Standard"),
    serviceBusMessagingUnits: integerIn(1, 16)
      .refine((units) => (serviceBusMessagingUnitCounts as readonly number[]).includes(units), { error: `allowed values: ${listOf(serviceBusMessagingUnitCounts)}` })
      .default(1),
    webPubSubSku: oneOf(webPubSubSkus).default("Standard_S1"),
    webPubSubUnits: integerIn(1, 100)
      .refine((units) => (webPubSubUnitCounts as readonly number[]).includes(units), { error: `allowed values: ${listOf(webPubSubUnitCounts)}` })
      .default(1),
    functionMemoryMb: memory.default(2048),
    functionMaximumInstances: integerIn(40, 1000).default(100),
    apiAlwaysReadyInstances: integerIn(0, 100).default(0),
    logRetentionDays: integerIn(30, 730).default(30),
    uploadMaxBytes: integerIn(1, 256 * 1024 * 1024).default(10 * 1024 * 1024),
    uploadUrlTtlSeconds: integerIn(60, 3600).default(300),
    uploadsDeleteAfterDays: integerIn(1, 3650).default(7),
    quotaUploadUrlsPerHour: integerIn(1, 10_000).default(60),
    quotaJobsPerHour: integerIn(1, 10_000).default(120),
    quotaJobsInFlight: integerIn(1, 1000).default(10),
    jobSweepSchedule: z
      .string()
      .refine((value) => isNcrontab(value), { error: 'allowed values: an NCRONTAB expression with six fields, e.g. "0 * * * * *" (every minute)' })
      .default("0 * * * * *"),
    jobRequeueAfterSeconds: integerIn(5, 86_400).default(300),
    apiMaxConcurrentRequests: integerIn(1, 10_000).default(100),
    externalProcessorUrl: z.url({ protocol: /^https$/, error: "allowed values: an absolute https:// URL" }).optional(),
    deployerPrincipalType: oneOf(principalTypes).default("User"),
    authEntraClientId: z.string().regex(guid, { error: "allowed values: an Entra application (client) ID, a GUID" }).optional(),
    authSpaClientId: z.string().regex(guid, { error: "allowed values: an Entra application (client) ID, a GUID" }).optional(),
    authCreateAppRegistrations: flag.default(false),
    authAllowedClientIds: z
      .string()
      .regex(/^\s*[0-9a-f-]{36}(\s*,\s*[0-9a-f-]{36})*\s*$/i, { error: "allowed values: Entra application (client) IDs, GUIDs separated by commas" })
      .optional(),
    privateNetworking: flag.default(false),
    virtualNetworkAddressSpace: z
      .string()
      .refine(isPrivateAddressSpace, { error: "allowed values: a private IPv4 network (10.x, 172.16-31.x or 192.168.x) from /16 to /24, e.g. 10.0.0.0/16" })
      .default("10.0.0.0/16"),
    zoneRedundant: flag.default(false),
    alertEmail: z.email({ error: "allowed values: an e-mail address" }).optional(),
    alertActionGroupId: z
      .string()
      .regex(actionGroupId, { error: "allowed values: an action group's resource ID, /subscriptions/<id>/resourceGroups/<group>/providers/Microsoft.Insights/actionGroups/<name>" })
      .optional(),
    gatewayEnabled: flag.default(false),
    gatewaySku: oneOf(gatewaySkus).default("BasicV2"),
    gatewayUnits: integerIn(1, 10).default(1),
    gatewayPublisherEmail: z.email({ error: "allowed values: an email address (API Management sends its notices there)" }).optional(),
    gatewayUserRateLimit: integerIn(1, 100_000).default(120),
    gatewayAnonymousRateLimit: integerIn(1, 100_000).default(60),
    gatewayRateLimitPeriodSeconds: integerIn(1, 300).default(60),
  })
  .strict();

/** What a stack sets (Pulumi.yaml `config:`), defaults applied. */
export type StackConfig = z.output<typeof configSchema>;

/** Facts the program derives from the stack configuration; settings can read them like keys. */
export interface DerivedConfig {
  /**
   * Entra sign-in guards the browser-facing api: with the api's registration given
   * (authEntraClientId) or created by the program (authCreateAppRegistrations).
   */
  readonly signInEnabled: boolean;
}

export type PlatformConfig = StackConfig & DerivedConfig;

function derived(config: StackConfig): PlatformConfig {
  return { ...config, signInEnabled: config.authEntraClientId !== undefined || config.authCreateAppRegistrations };
}

/** The configuration of a stack that sets nothing: every default. */
export const defaultConfig: PlatformConfig = derived(configSchema.parse({}));
export type ConfigKey = keyof PlatformConfig;
/** The keys a stack may set. */
export const configKeys = Object.keys(configSchema.shape) as (keyof StackConfig)[];

/** The configuration is invalid: the message names each key, the value given and what is allowed. */
export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid stack configuration:\n  - ${problems.join("\n  - ")}`);
    this.name = "ConfigError";
  }
}

/**
 * Validates raw configuration values (strings as Pulumi stores them, or numbers) and applies the
 * defaults. Pure: the program and the tests call it with plain objects.
 */
export function parseConfig(raw: Readonly<Record<string, unknown>>): PlatformConfig {
  const problems: string[] = [];
  const known = new Set<string>(configKeys);
  for (const key of Object.keys(raw)) {
    if (!known.has(key)) problems.push(`${projectName}:${key} is not a setting of this template; allowed keys: ${configKeys.join(", ")}`);
  }
  // An empty string means "not set": Pulumi.yaml gives optional keys the default "" because a
  // declared key without a default is required by the CLI.
  const given = Object.fromEntries(Object.entries(raw).filter(([key, value]) => known.has(key) && value !== ""));
  const result = configSchema.safeParse(given);
  if (!result.success) {
    for (const issue of result.error.issues) {
      const key = String(issue.path[0] ?? "");
      problems.push(`${projectName}:${key} = ${JSON.stringify(given[key])} is invalid; ${issue.message}`);
    }
  }
  if (problems.length === 0 && result.success) {
    const config = result.data;
    problems.push(...combinationProblems(config));
    if (problems.length === 0) return derived(config);
  }
  throw new ConfigError(problems);
}

/**
 * Combinations of valid values that Azure refuses (or that break what the other keys promise),
 * each explained with the way out. Checked before anything is created: a refused combination
 * otherwise fails minutes into `pulumi up`, with half the stack created.
 */
export function combinationProblems(config: StackConfig): string[] {
  const problems: string[] = [];
  const key = (name: ConfigKey) => `${projectName}:${name}`;
  if (config.webPubSubSku === "Free_F1" && config.webPubSubUnits !== 1) {
    problems.push(`${key("webPubSubUnits")} = ${config.webPubSubUnits} is invalid with webPubSubSku Free_F1; allowed values: 1`);
  }
  if (config.apiAlwaysReadyInstances > config.functionMaximumInstances) {
    problems.push(
      `${key("apiAlwaysReadyInstances")} = ${config.apiAlwaysReadyInstances} is invalid; allowed values: 0 to functionMaximumInstances (${config.functionMaximumInstances})`,
    );
  }
  if (config.serviceBusSku !== "Premium" && config.serviceBusMessagingUnits !== 1) {
    problems.push(
      `${key("serviceBusMessagingUnits")} = ${config.serviceBusMessagingUnits} is invalid with serviceBusSku ${config.serviceBusSku}: messaging units exist on Premium only; set serviceBusSku Premium or leave serviceBusMessagingUnits at 1`,
    );
  }
  if (config.privateNetworking && config.serviceBusSku !== "Premium") {
    problems.push(
      `${key("privateNetworking")} = true needs serviceBusSku Premium (now ${config.serviceBusSku}): Service Bus offers private endpoints on Premium only, so the namespace would stay on the internet; set serviceBusSku Premium, or privateNetworking false`,
    );
  }
  if (config.privateNetworking && config.webPubSubSku === "Free_F1") {
    problems.push(
      `${key("privateNetworking")} = true needs a Web PubSub SKU with private endpoints: Free_F1 cannot have one; set webPubSubSku Standard_S1 or Premium_P1, or privateNetworking false`,
    );
  }
  if (config.zoneRedundant && !(zoneRedundantStorageSkus as readonly string[]).includes(config.storageSku)) {
    problems.push(
      `${key("zoneRedundant")} = true needs zone-redundant storage (storageSku ${listOf(zoneRedundantStorageSkus)}; now ${config.storageSku}): a zone-redundant Flex Consumption app must have its host storage in every zone, or it stops with the zone that holds it`,
    );
  }
  if (config.authSpaClientId !== undefined && config.authEntraClientId === undefined) {
    problems.push(`${key("authSpaClientId")} is set without authEntraClientId; the web app's tokens are for the api's registration: set both, or neither`);
  }
  if (config.authCreateAppRegistrations && (config.authEntraClientId !== undefined || config.authSpaClientId !== undefined)) {
    problems.push(
      `${key("authCreateAppRegistrations")} = true creates the api's and the web app's registrations; unset authEntraClientId and authSpaClientId, or set authCreateAppRegistrations to false to use existing ones`,
    );
  }
  if (config.gatewayEnabled) {
    // The gateway validates Entra tokens for the api's registration and calls the api as that
    // registration's audience: without one there is nothing to validate or to call.
    if (!config.authEntraClientId && !config.authCreateAppRegistrations) {
      problems.push(`${key("gatewayEnabled")} = true needs Entra sign-in: ${key("authEntraClientId")} (the api's registration the gateway validates tokens for), or ${key("authCreateAppRegistrations")} = true`);
    }
    if (!config.gatewayPublisherEmail) problems.push(`${key("gatewayEnabled")} = true needs ${key("gatewayPublisherEmail")} (API Management requires a publisher email)`);
  }
  if (config.zoneRedundant && config.webPubSubSku !== "Premium_P1") {
    problems.push(
      `${key("zoneRedundant")} = true needs webPubSubSku Premium_P1 (now ${config.webPubSubSku}): Web PubSub spreads over availability zones on Premium only; set webPubSubSku Premium_P1, or zoneRedundant false`,
    );
  }
  return problems;
}

/**
 * Reads this project's keys from the stack configuration. Unknown keys in the project's namespace
 * are reported too, so a misspelt key fails instead of silently falling back to its default.
 */
export function readConfig(): PlatformConfig {
  const { runtime } = require("@pulumi/pulumi") as typeof import("@pulumi/pulumi");
  const prefix = `${projectName}:`;
  const raw: Record<string, string> = {};
  for (const [fullKey, value] of Object.entries(runtime.allConfig())) {
    if (fullKey.startsWith(prefix)) raw[fullKey.slice(prefix.length)] = value;
  }
  return parseConfig(raw);
}
