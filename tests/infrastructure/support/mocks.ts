/**
 * Pulumi mocks for the infrastructure tests: every resource registered is recorded with its
 * inputs, and given ARM-shaped IDs and the computed outputs the program reads (endpoints, host
 * names, identity IDs), so the program's wiring can be asserted without Azure.
 */
import * as pulumi from "@pulumi/pulumi";
import { projectName } from "../../../infrastructure/config";
import { deterministicGuid } from "../../../infrastructure/roles";

export const subscriptionId = "11111111-2222-3333-4444-555555555555";
export const tenantId = "99999999-8888-7777-6666-555555555555";
export const deployerObjectId = "dddddddd-0000-0000-0000-000000000001";

export interface RecordedResource {
  readonly type: string;
  readonly name: string;
  readonly id: string;
  readonly inputs: Record<string, unknown>;
  readonly state: Record<string, unknown>;
}

export interface RecordedCall {
  readonly token: string;
  readonly inputs: Record<string, unknown>;
}

const physicalNameKeys = [
  "resourceGroupName:ResourceGroup",
  "accountName",
  "namespaceName",
  "workspaceName",
  "resourceName",
  "name",
  "containerName",
  "queueName",
  "hubName",
  "databaseName",
  "vaultName",
] as const;

/** The physical (Azure) name a resource's inputs give it, as azure-native reports it in `name`. */
function physicalName(type: string, name: string, inputs: Record<string, unknown>): string {
  if (type === "azure-native:resources:ResourceGroup") return String(inputs["resourceGroupName"] ?? name);
  const byType: Record<string, string> = {
    "azure-native:storage:BlobContainer": "containerName",
    "azure-native:servicebus:Queue": "queueName",
    "azure-native:webpubsub:WebPubSubHub": "hubName",
    "azure-native:cosmosdb:SqlResourceSqlDatabase": "databaseName",
    "azure-native:cosmosdb:SqlResourceSqlContainer": "containerName",
    "azure-native:authorization:RoleAssignment": "roleAssignmentName",
    "azure-native:cosmosdb:SqlResourceSqlRoleAssignment": "roleAssignmentId",
    "azure-native:network:VirtualNetwork": "virtualNetworkName",
    "azure-native:network:Subnet": "subnetName",
    "azure-native:network:PrivateEndpoint": "privateEndpointName",
    "azure-native:network:PrivateDnsZoneGroup": "privateDnsZoneGroupName",
    "azure-native:privatedns:PrivateZone": "privateZoneName",
    "azure-native:privatedns:VirtualNetworkLink": "virtualNetworkLinkName",
    "azure-native:monitor:ActionGroup": "actionGroupName",
    "azure-native:monitor:MetricAlert": "ruleName",
    "azure-native:monitor:ScheduledQueryRule": "ruleName",
    "azure-native:apimanagement:ApiManagementService": "serviceName",
    "azure-native:apimanagement:Api": "apiId",
    "azure-native:apimanagement:ApiPolicy": "policyId",
    "azure-native:apimanagement:Policy": "policyId",
    "azure-native:apimanagement:Logger": "loggerId",
    "azure-native:apimanagement:Diagnostic": "diagnosticId",
  };
  const key = byType[type];
  if (key && typeof inputs[key] === "string") return inputs[key] as string;
  for (const k of physicalNameKeys) {
    if (typeof inputs[k] === "string") return inputs[k] as string;
  }
  return name;
}

/** Outputs Azure computes that the program reads. */
function computedState(type: string, physical: string): Record<string, unknown> {
  switch (type) {
    case "azure-native:storage:StorageAccount":
      return {
        primaryEndpoints: {
          blob: `https://${physical}.blob.core.windows.net/`,
          queue: `https://${physical}.queue.core.windows.net/`,
          web: `https://${physical}.z13.web.core.windows.net/`,
        },
      };
    case "azure-native:cosmosdb:DatabaseAccount":
      return { documentEndpoint: `https://${physical}.documents.azure.com:443/` };
    case "azure-native:servicebus:Namespace":
      return { serviceBusEndpoint: `https://${physical}.servicebus.windows.net:443/` };
    case "azure-native:webpubsub:WebPubSub":
      return { hostName: `${physical}.webpubsub.azure.com` };
    case "azure-native:web:WebApp":
      return { defaultHostName: `${physical}.azurewebsites.net` };
    case "azure-native:apimanagement:ApiManagementService":
      return { gatewayUrl: `https://${physical}.azure-api.net` };
    // The dynamic provider's create draws a random suffix; the mock stands in with a fixed one.
    case "pulumi-nodejs:dynamic/platform:UniqueSuffix":
      return { suffix: "mock01" };
    case "azure-native:managedidentity:UserAssignedIdentity":
      return { clientId: `client-id-of-${physical}`, principalId: `principal-id-of-${physical}` };
    case "azuread:index/application:Application":
      // GUID-shaped, as Entra's are: the gateway's policies check the client ID's shape.
      return { clientId: deterministicGuid("client-id", physical), objectId: deterministicGuid("object-id", physical) };
    case "azure-native:applicationinsights:Component":
      // The real shape: an instrumentation key is an identifier, not a credential once local auth is off.
      return {
        connectionString:
          "InstrumentationKey=00000000-aaaa-bbbb-cccc-000000000000;IngestionEndpoint=https://eastus-8.in.applicationinsights.azure.com/;LiveEndpoint=https://eastus.livediagnostics.monitor.azure.com/;ApplicationId=00000000-dddd-eeee-ffff-000000000000",
      };
    default:
      return {};
  }
}

/**
 * Invokes that hand out credentials (listStorageAccountKeys, listNamespaceKeys, listWebPubSubKeys,
 * listDatabaseAccountConnectionStrings, listStorageAccountSAS, ...). The mocks answer them with
 * secret-shaped values, so that a credential the program fetched and passed on shows up in the
 * secret scan instead of hiding behind an empty answer; the tests also check none is called.
 */
export const CREDENTIAL_INVOKE = /:list\w*(Keys|ConnectionStrings|Secrets|Sas|Credentials?)$/i;

const MOCK_SECRET_ANSWER = {
  keys: [{ keyName: "key1", value: "AccountKey=mock-secret==" }],
  primaryKey: "AccessKey=mock-secret",
  secondaryKey: "AccessKey=mock-secret",
  primaryMasterKey: "AccountKey=mock-secret==",
  primaryConnectionString: "Endpoint=sb://mock.servicebus.windows.net/;SharedAccessKeyName=k;SharedAccessKey=mock-secret=",
  secondaryConnectionString: "Endpoint=sb://mock.servicebus.windows.net/;SharedAccessKeyName=k;SharedAccessKey=mock-secret=",
  connectionStrings: [{ connectionString: "AccountEndpoint=https://mock.documents.azure.com:443/;AccountKey=mock-secret==" }],
  accountSasToken: "sv=2024-08-04&sig=mock-secret",
  serviceSasToken: "sv=2024-08-04&sig=mock-secret",
};

export interface MockedStack {
  readonly resources: RecordedResource[];
  readonly calls: RecordedCall[];
  /** URNs each resource depends on (explicit dependsOn and inputs), by logical name. */
  readonly dependencies: Map<string, string[]>;
}

/** The slice of the registration request the mock monitor receives that the tests read. */
interface RegisterResourceRequest {
  getName(): string;
  getDependenciesList(): string[];
}
type RegisterResource = (req: RegisterResourceRequest, callback: unknown) => unknown;

/**
 * Installs the mocks for project `projectName` and `stack`, with the given stack configuration
 * (keys without the project prefix). Call before loading or building the program.
 */
export async function installMocks(stack = "test", config: Record<string, string> = {}): Promise<MockedStack> {
  const recorded: MockedStack = { resources: [], calls: [], dependencies: new Map() };
  pulumi.runtime.setAllConfig(Object.fromEntries(Object.entries(config).map(([k, v]) => [`${projectName}:${k}`, v])));
  await pulumi.runtime.setMocks(
    {
      newResource(args) {
        const inputs = args.inputs as Record<string, unknown>;
        const physical = physicalName(args.type, args.name, inputs);
        const resourceGroup = typeof inputs["resourceGroupName"] === "string" ? (inputs["resourceGroupName"] as string) : "none";
        const id =
          args.type === "azure-native:resources:ResourceGroup"
            ? `/subscriptions/${subscriptionId}/resourceGroups/${physical}`
            : `/subscriptions/${subscriptionId}/resourceGroups/${resourceGroup}/providers/${args.type.replace(/:/g, ".")}/${args.name}`;
        const state = { ...inputs, name: physical, ...computedState(args.type, physical) };
        recorded.resources.push({ type: args.type, name: args.name, id, inputs, state });
        return { id, state };
      },
      call(args) {
        recorded.calls.push({ token: args.token, inputs: args.inputs as Record<string, unknown> });
        if (args.token === "azure-native:authorization:getClientConfig") {
          return { subscriptionId, tenantId, objectId: deployerObjectId, clientId: "cccccccc-0000-0000-0000-000000000001" };
        }
        if (CREDENTIAL_INVOKE.test(args.token)) return MOCK_SECRET_ANSWER;
        return {};
      },
    },
    projectName,
    stack,
    false,
  );
  // Mocks hand newResource no dependencies; the monitor's request has them. Record them on the way.
  const monitor = pulumi.runtime.getMonitor() as unknown as { registerResource: RegisterResource };
  const register = monitor.registerResource.bind(monitor);
  monitor.registerResource = (req, callback) => {
    recorded.dependencies.set(req.getName(), req.getDependenciesList());
    return register(req, callback);
  };
  return recorded;
}

/** The resolved value of an output (never assert inside `apply`). */
export function valueOf<T>(output: pulumi.Input<T>): Promise<pulumi.Unwrap<T>> {
  return new Promise((resolve) => pulumi.output(output).apply((v) => resolve(v)));
}

/** Waits until the mocks saw no new registration for a short while: the program's async work is done. */
export async function settled(recorded: MockedStack, quietMs = 50): Promise<void> {
  let count = -1;
  while (count !== recorded.resources.length) {
    count = recorded.resources.length;
    await new Promise((r) => setTimeout(r, quietMs));
  }
}

export function ofType(recorded: MockedStack, type: string): RecordedResource[] {
  return recorded.resources.filter((r) => r.type === type);
}

export function named(recorded: MockedStack, name: string): RecordedResource {
  const found = recorded.resources.filter((r) => r.name === name);
  if (found.length !== 1) throw new Error(`expected exactly one resource named ${name}, found ${found.length}`);
  return found[0]!;
}
