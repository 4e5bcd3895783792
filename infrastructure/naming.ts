/**
 * Every Azure resource name of a stack, derived in one pure function.
 *
 * Several stacks (dev, prod, one per pull request) live side by side in one subscription, and some
 * names (storage accounts, Cosmos accounts, Service Bus and Web PubSub namespaces, site host names)
 * are global DNS names. Each name is `<prefix>-<stack>-<hash>-<role>`: readable prefix and stack,
 * plus a short hash of subscription + project + stack. The stack makes two stacks differ; the
 * subscription in the hash keeps two people who deploy the template with the same prefix and stack
 * name (everyone's "dev") from colliding on the global names.
 */
import { createHash } from "node:crypto";
import { perService, type ServiceName } from "../functions/src/services";

export interface NamingInput {
  /** Readable prefix: 2-10 lowercase letters/digits, starting with a letter (validated by config). */
  readonly prefix: string;
  readonly project: string;
  readonly stack: string;
  readonly subscriptionId: string;
}

export interface AppNames {
  readonly site: string;
  readonly plan: string;
  readonly identity: string;
  /** Blob container (in the host storage account) holding the app's deployment package. */
  readonly deploymentContainer: string;
}

export interface ResourceNames {
  readonly resourceGroup: string;
  /** User data: uploads and the static website. */
  readonly dataStorageAccount: string;
  /** Functions host storage (AzureWebJobsStorage) and the deployment packages. */
  readonly hostStorageAccount: string;
  readonly cosmosAccount: string;
  readonly serviceBusNamespace: string;
  readonly webPubSub: string;
  readonly logAnalyticsWorkspace: string;
  readonly applicationInsights: string;
  readonly apps: Readonly<Record<ServiceName, AppNames>>;
  /**
   * `<prefix>-<stack>-<hash>`: the stem of the names made per item ({@link privateEndpointName},
   * {@link alertRuleName}), and the display name of what has no Azure name rules (Entra app registrations).
   */
  readonly base: string;
  /** The virtual network of private networking (its subnets are named inside it). */
  readonly virtualNetwork: string;
  /** The action group alerts go to, and its short name (at most 12 characters, shown in SMS and e-mail). */
  readonly actionGroup: string;
  readonly actionGroupShortName: string;
  /** The identity the log alert rules query the workspace with. */
  readonly alertsIdentity: string;
  /** The optional API gateway (API Management). */
  readonly gateway: GatewayNames;
}

/** A private endpoint's name, from the short name of what it connects to (`host-blob`, `cosmos`). */
export function privateEndpointName(base: string, target: string): string {
  return `${base}-${target}-pe`;
}

/** An alert rule's name, from its short key (`dead-letters-jobs`). */
export function alertRuleName(base: string, key: string): string {
  return `${base}-${key}`;
}

export interface GatewayNames {
  /**
   * Start of the API Management service name: the service is `<servicePrefix>-<suffix>`, the suffix
   * random and kept in the stack's state ({@link gatewayServiceName}). A deleted API Management
   * service stays soft-deleted for 48 hours and its name (a global DNS name) cannot be reused in
   * that time, so a fixed name would make `pulumi destroy` then `pulumi up` fail.
   */
  readonly servicePrefix: string;
  /** The gateway's user-assigned identity. */
  readonly identity: string;
}

/** Length and character rules of each name, as Azure documents them; tests check every name against these. */
export const nameRules = {
  resourceGroup: { min: 1, max: 90, pattern: /^[a-z0-9][a-z0-9._()-]*[a-z0-9_()-]$/ },
  storageAccount: { min: 3, max: 24, pattern: /^[a-z0-9]+$/ },
  cosmosAccount: { min: 3, max: 44, pattern: /^[a-z0-9][a-z0-9-]*[a-z0-9]$/ },
  // Service Bus also rejects names ending in "-sb" or "-mgmt".
  serviceBusNamespace: { min: 6, max: 50, pattern: /^[a-z][a-z0-9-]*[a-z0-9]$/, forbiddenSuffixes: ["-sb", "-mgmt"] },
  webPubSub: { min: 3, max: 63, pattern: /^[a-z][a-z0-9-]*[a-z0-9]$/ },
  site: { min: 2, max: 60, pattern: /^[a-z0-9][a-z0-9-]*[a-z0-9]$/ },
  plan: { min: 1, max: 60, pattern: /^[a-z0-9][a-z0-9-]*[a-z0-9]$/ },
  identity: { min: 3, max: 128, pattern: /^[a-z0-9][a-z0-9_-]*$/ },
  container: { min: 3, max: 63, pattern: /^[a-z0-9](?:[a-z0-9]|-(?=[a-z0-9]))*$/ },
  logAnalyticsWorkspace: { min: 4, max: 63, pattern: /^[a-z0-9][a-z0-9-]*[a-z0-9]$/ },
  applicationInsights: { min: 1, max: 255, pattern: /^[a-z0-9][a-z0-9._()-]*$/ },
  virtualNetwork: { min: 2, max: 64, pattern: /^[a-z0-9][a-z0-9_.-]*[a-z0-9_]$/ },
  privateEndpoint: { min: 2, max: 64, pattern: /^[a-z0-9][a-z0-9_.-]*[a-z0-9_]$/ },
  actionGroup: { min: 1, max: 260, pattern: /^[a-z0-9][a-z0-9_.-]*$/ },
  actionGroupShortName: { min: 1, max: 12, pattern: /^[a-z0-9][a-z0-9-]*$/ },
  // Alert rules: no `*#&+:<>?@%{}\/;` and no trailing space or dot.
  alertRule: { min: 1, max: 260, pattern: /^[a-z0-9][a-z0-9_.-]*[a-z0-9_]$/ },
  // Microsoft.ApiManagement/service: a letter first, letters, digits and hyphens, no hyphen last.
  apiManagement: { min: 1, max: 50, pattern: /^[a-z][a-z0-9-]*[a-z0-9]$/ },
} as const;

/** Length of the random part of the API Management service name. */
export const GATEWAY_SUFFIX_LENGTH = 6;

/** The API Management service name: the stack's prefix and the random suffix of this incarnation. */
export function gatewayServiceName(servicePrefix: string, suffix: string): string {
  if (!new RegExp(`^[a-z0-9]{${GATEWAY_SUFFIX_LENGTH}}$`).test(suffix)) {
    throw new Error(`gateway name suffix "${suffix}" must be ${GATEWAY_SUFFIX_LENGTH} lowercase letters or digits`);
  }
  return `${servicePrefix}-${suffix}`;
}

/**
 * The Functions host ID Azure derives from a site name: its first 32 characters, lowercased
 * (azure-functions-host wiki "Host IDs"). Two apps that share a host storage account must not share
 * one: Functions v4 logs an error and shuts the host down.
 */
export function hostIdOf(siteName: string): string {
  return siteName.toLowerCase().slice(0, 32).replace(/-+$/, "");
}

/** The deployment-package container of a service in the host storage account. */
export function deploymentContainerName(service: ServiceName): string {
  return `${service}-package`;
}

const HASH_LENGTH = 6;
const STACK_SLUG_MAX = 16;
const STORAGE_MAX = nameRules.storageAccount.max;

/** Six base-36 characters (about 2 billion values) of SHA-256 over subscription, project and stack. */
export function stackHash(input: Pick<NamingInput, "project" | "stack" | "subscriptionId">): string {
  const digest = createHash("sha256").update(`${input.subscriptionId.toLowerCase()}/${input.project}/${input.stack}`).digest();
  return (digest.readUIntBE(0, 6) % 36 ** HASH_LENGTH).toString(36).padStart(HASH_LENGTH, "0");
}

/** The stack name reduced to lowercase letters, digits and single hyphens ("PR_123.x" -> "pr-123-x"). */
function stackSlug(stack: string, max: number): string {
  return stack
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, "-")
    .slice(0, max)
    .replace(/^-+|-+$/g, "");
}

export function resourceNames(input: NamingInput): ResourceNames {
  if (!/^[a-z][a-z0-9]{1,9}$/.test(input.prefix)) {
    throw new Error(`name prefix "${input.prefix}" must be 2 to 10 lowercase letters or digits, starting with a letter`);
  }
  const hash = stackHash(input);
  const base = [input.prefix, stackSlug(input.stack, STACK_SLUG_MAX), hash].filter(Boolean).join("-");
  // Storage accounts allow no hyphens and only 24 characters: prefix + as much of the stack as fits + hash + role letter.
  const storage = (role: "d" | "h") => {
    const room = STORAGE_MAX - input.prefix.length - HASH_LENGTH - 1;
    return `${input.prefix}${stackSlug(input.stack, room).replace(/-/g, "")}${hash}${role}`;
  };
  const app = (service: ServiceName): AppNames => ({
    // The service comes first: the host ID is the site name's first 32 characters, and all apps
    // share one host storage account; with `<base>-<service>` a long prefix + stack pushed the
    // service past character 32 and the hosts collided (and shut down). Service names have no
    // hyphen (functions/src/platform/service-kinds.ts), so `<service>-` never starts another's.
    site: `${service}-${base}`,
    plan: `${base}-${service}-plan`,
    identity: `${base}-${service}-id`,
    deploymentContainer: deploymentContainerName(service),
  });
  return {
    resourceGroup: `rg-${base}`,
    dataStorageAccount: storage("d"),
    hostStorageAccount: storage("h"),
    cosmosAccount: `${base}-cosmos`,
    serviceBusNamespace: `${base}-bus`,
    webPubSub: `${base}-pubsub`,
    logAnalyticsWorkspace: `${base}-logs`,
    applicationInsights: `${base}-insights`,
    apps: perService(app),
    base,
    virtualNetwork: `${base}-vnet`,
    actionGroup: `${base}-alerts`,
    actionGroupShortName: `${input.prefix}-${stackSlug(input.stack, 11 - input.prefix.length)}`.replace(/-+$/, "").slice(0, 12),
    alertsIdentity: `${base}-alerts-id`,
    gateway: { servicePrefix: `${base}-gw`, identity: `${base}-gw-id` },
  };
}
