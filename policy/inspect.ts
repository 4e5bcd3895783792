/**
 * Pure helpers the rules share: reading role GUIDs, telling Flex Consumption sites apart, finding
 * credential-shaped strings. Kept apart from the rules so each can be tested on its own.
 */

/** Strings that carry a credential: storage/Service Bus/Web PubSub keys, SAS signatures, passwords. */
const credentialPattern = /(AccountKey|SharedAccessKey|AccessKey|Password|ClientSecret)=|(^|[?&;])sig=/i;

export function looksLikeCredential(value: string): boolean {
  return credentialPattern.test(value);
}

/** True when `error` is @pulumi/policy's UnknownValueError: a value that is unknown during preview. */
function isUnknownValue(error: unknown): boolean {
  return error instanceof Error && error.constructor.name === "UnknownValueError";
}

/**
 * Every string inside `value` that looks like a credential, with its path (`$.siteConfig.appSettings[2].value`).
 * Values unknown during preview are skipped (they cannot be judged yet; `pulumi up` sees them).
 */
export function findCredentials(value: unknown, path = "$", seen = new Set<object>()): string[] {
  if (typeof value === "string") return looksLikeCredential(value) ? [path] : [];
  if (!value || typeof value !== "object" || seen.has(value)) return [];
  seen.add(value);
  const found: string[] = [];
  for (const key of Object.keys(value)) {
    let child: unknown;
    try {
      child = (value as Record<string, unknown>)[key];
    } catch (error) {
      if (isUnknownValue(error)) continue;
      throw error;
    }
    found.push(...findCredentials(child, Array.isArray(value) ? `${path}[${key}]` : `${path}.${key}`, seen));
  }
  return found;
}

/**
 * API Management custom properties that turn off TLS 1.0/1.1 towards clients and backends on the
 * classic tiers (the v2 and Consumption tiers take no protocol settings and speak TLS 1.2).
 */
export const apimLegacyProtocolProperties = [
  "Microsoft.WindowsAzure.ApiManagement.Gateway.Security.Protocols.Tls10",
  "Microsoft.WindowsAzure.ApiManagement.Gateway.Security.Protocols.Tls11",
  "Microsoft.WindowsAzure.ApiManagement.Gateway.Security.Backend.Protocols.Tls10",
  "Microsoft.WindowsAzure.ApiManagement.Gateway.Security.Backend.Protocols.Tls11",
] as const;

/** API Management tiers whose protocols and ciphers cannot be changed (TLS 1.2 and newer only). */
export const apimFixedTlsTiers = ["Consumption", "BasicV2", "StandardV2", "PremiumV2"] as const;

/** The `<origin>` values of a `cors` policy in API Management policy XML. */
export function corsOrigins(policyXml: string): string[] {
  return [...policyXml.matchAll(/<origin>\s*([^<]*?)\s*<\/origin>/g)].map((match) => match[1] ?? "");
}

/** Request or response headers that carry credentials: never logged. */
export const credentialHeaders = ["authorization", "cookie", "set-cookie", "ocp-apim-subscription-key", "x-ms-client-principal", "x-ms-token-aad-access-token"] as const;

/** The role GUID at the end of a role definition ID (`/subscriptions/…/roleDefinitions/<guid>`), lowercased. */
export function roleGuid(roleDefinitionId: string): string {
  return (roleDefinitionId.split("/").pop() ?? "").toLowerCase();
}

/**
 * Azure RBAC scopes, broadest first. A resource scope has a provider segment
 * (`/subscriptions/<id>/resourceGroups/<rg>/providers/...`).
 */
export type ScopeLevel = "root" | "managementGroup" | "subscription" | "resourceGroup" | "resource";

export function scopeLevel(scope: string): ScopeLevel {
  const s = scope.toLowerCase().replace(/\/+$/, "");
  if (s === "") return "root";
  if (s.startsWith("/providers/microsoft.management/managementgroups/")) return "managementGroup";
  if (/^\/subscriptions\/[^/]+$/.test(s)) return "subscription";
  if (/^\/subscriptions\/[^/]+\/resourcegroups\/[^/]+$/.test(s)) return "resourceGroup";
  return "resource";
}

/** Site config properties Flex Consumption rejects (ARM error 51021) or that have no meaning there. */
export const flexRejectedSiteConfig = [
  "ftpsState",
  "netFrameworkVersion",
  "use32BitWorkerProcess",
  "functionsRuntimeScaleMonitoringEnabled",
  "linuxFxVersion",
  "functionAppScaleLimit",
] as const;

/**
 * App settings Flex Consumption rejects or ignores: the runtime and version come from
 * functionAppConfig.runtime, code from functionAppConfig.deployment, and there is no content share.
 * A plain `AzureWebJobsStorage` is a connection string (a key); Flex takes the identity-based
 * `AzureWebJobsStorage__*` settings instead.
 */
export const flexRejectedAppSettings = [
  "FUNCTIONS_WORKER_RUNTIME",
  "FUNCTIONS_EXTENSION_VERSION",
  "WEBSITE_RUN_FROM_PACKAGE",
  "WEBSITE_CONTENTAZUREFILECONNECTIONSTRING",
  "WEBSITE_CONTENTSHARE",
  "WEBSITE_NODE_DEFAULT_VERSION",
  "SCM_DO_BUILD_DURING_DEPLOYMENT",
  "AzureWebJobsStorage",
] as const;

/** A site on Flex Consumption: only Flex sites carry `functionAppConfig`. */
export function isFlexSite(props: { functionAppConfig?: unknown }): boolean {
  return props.functionAppConfig !== undefined && props.functionAppConfig !== null;
}

/**
 * Whether a TLS version setting is at least `minimum`, across the spellings Azure uses:
 * "1.2" (App Service, Service Bus), "TLS1_2" (Storage), "Tls12" and "Tls" (= 1.0, Cosmos DB).
 */
export function tlsAtLeast(version: string, minimum: string): boolean {
  const rank = (v: string) => {
    const digits = v.replace(/\D/g, "");
    if (digits === "") return /^tls$/i.test(v.trim()) ? 10 : NaN;
    return Number(digits.length === 1 ? `${digits}0` : digits.slice(0, 2));
  };
  const a = rank(version);
  return !Number.isNaN(a) && a >= rank(minimum);
}
