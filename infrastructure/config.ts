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
export const serviceBusSkus = ["Basic", "Standard"] as const;
export const webPubSubSkus = ["Free_F1", "Standard_S1"] as const;
/** BoundedStaleness is left out: it needs staleness bounds this template does not expose. */
export const cosmosConsistencyLevels = ["Session", "Eventual", "ConsistentPrefix", "Strong"] as const;
export const principalTypes = ["User", "ServicePrincipal", "Group"] as const;
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
    jobSweepSchedule: z
      .string()
      .refine((value) => isNcrontab(value), { error: 'allowed values: an NCRONTAB expression with six fields, e.g. "0 * * * * *" (every minute)' })
      .default("0 * * * * *"),
    jobRequeueAfterSeconds: integerIn(5, 86_400).default(300),
    apiMaxConcurrentRequests: integerIn(1, 10_000).default(100),
    externalProcessorUrl: z.url({ protocol: /^https$/, error: "allowed values: an absolute https:// URL" }).optional(),
    deployerPrincipalType: oneOf(principalTypes).default("User"),
    authEntraClientId: z.string().regex(guid, { error: "allowed values: an Entra application (client) ID, a GUID" }).optional(),
  })
  .strict();

export type PlatformConfig = z.output<typeof configSchema>;
/** The configuration of a stack that sets nothing: every default. */
export const defaultConfig: PlatformConfig = configSchema.parse({});
export type ConfigKey = keyof PlatformConfig;
export const configKeys = Object.keys(configSchema.shape) as ConfigKey[];

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
    if (config.webPubSubSku === "Free_F1" && config.webPubSubUnits !== 1) {
      problems.push(`${projectName}:webPubSubUnits = ${config.webPubSubUnits} is invalid with webPubSubSku Free_F1; allowed values: 1`);
    }
    if (config.apiAlwaysReadyInstances > config.functionMaximumInstances) {
      problems.push(
        `${projectName}:apiAlwaysReadyInstances = ${config.apiAlwaysReadyInstances} is invalid; allowed values: 0 to functionMaximumInstances (${config.functionMaximumInstances})`,
      );
    }
    if (problems.length === 0) return config;
  }
  throw new ConfigError(problems);
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
