/**
 * The bootstrap program under mocks, like the platform: the state backend and key are keyless and
 * recoverable, the federated credentials are created one after another, the CI identity may assign
 * exactly the roles the platform assigns (infrastructure/roles.ts) and only to service principals,
 * and its custom role covers every resource type the platform program creates, and no more providers.
 */
import { beforeAll, describe, expect, it } from "vitest";
import * as pulumi from "@pulumi/pulumi";
import { getClientConfigOutput } from "@pulumi/azure-native/authorization";
import { createBootstrap, federatedSubjects, ghCommands, type Bootstrap } from "../../bootstrap/bootstrap";
import { assignableRoleIds, bootstrapRoles, platformActions, platformNotActions, roleAssignmentCondition } from "../../bootstrap/ci-access";
import { BootstrapConfigError, parseBootstrapConfig } from "../../bootstrap/config";
import { createPlatform } from "../../infrastructure/platform";
import { parseConfig, projectName } from "../../infrastructure/config";
import { builtInRoles } from "../../infrastructure/roles";
import { policies } from "../../policy/policies";
import { installMocks, named, ofType, settled, subscriptionId, tenantId, deployerObjectId, valueOf, type MockedStack, type RecordedResource } from "../infrastructure/support/mocks";
import { findSecrets } from "../infrastructure/support/secrets";
import { evaluateResource, isResourcePolicy } from "../policy/support/evaluate";

const config = parseBootstrapConfig({ githubRepository: "contoso/platform", environments: '["dev","prod"]' });

let stack: MockedStack;
let bootstrap: Bootstrap;
let outputs: Record<string, unknown>;
/** The bootstrap's own resources (the platform is built beside it to compare). */
let own: RecordedResource[];
let platformResources: RecordedResource[];

beforeAll(async () => {
  stack = await installMocks("ci");
  bootstrap = createBootstrap(config, { stack: "ci", client: getClientConfigOutput() });
  // The platform with every optional part switched on, as CI (a service principal) deploys it.
  const platform = createPlatform(
    parseConfig({
      authEntraClientId: "0f0f0f0f-1111-2222-3333-444444444444",
      deployerPrincipalType: "ServicePrincipal",
      privateNetworking: "true",
      serviceBusSku: "Premium",
      zoneRedundant: "true",
      storageSku: "Standard_ZRS",
      webPubSubSku: "Premium_P1",
      alertEmail: "ops@example.com",
      gatewayEnabled: "true",
      gatewayPublisherEmail: "ops@example.com",
    }),
    { project: projectName, stack: "dev", client: getClientConfigOutput() },
  );
  outputs = (await valueOf(pulumi.output({ ...bootstrap.outputs }))) as Record<string, unknown>;
  await valueOf(pulumi.output(platform.outputs));
  await settled(stack);
  own = stack.resources.filter((r) => /^(ci|operator)-/.test(r.name));
  platformResources = stack.resources.filter((r) => !own.includes(r));
});

const dependencyNames = (name: string) => (stack.dependencies.get(name) ?? []).map((urn) => urn.slice(urn.lastIndexOf("::") + 2));
const assignment = (name: string) => named(stack, name).inputs;
const guidsIn = (text: string) => [...text.matchAll(/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/gi)].map((m) => m[0].toLowerCase());

describe("federated credentials", () => {
  it("trust the repository's pull requests, its main branch and each environment, with GitHub's issuer and audience", () => {
    const credentials = ofType(stack, "azure-native:managedidentity:FederatedIdentityCredential");
    expect(credentials.map((c) => c.inputs["subject"])).toEqual([
      "repo:contoso/platform:pull_request",
      "repo:contoso/platform:ref:refs/heads/main",
      "repo:contoso/platform:environment:dev",
      "repo:contoso/platform:environment:prod",
    ]);
    for (const c of credentials) {
      expect(c.inputs).toMatchObject({ issuer: "https://token.actions.githubusercontent.com", audiences: ["api://AzureADTokenExchange"] });
      expect(c.inputs["federatedIdentityCredentialResourceName"]).toMatch(/^[a-zA-Z0-9][a-zA-Z0-9-_]{2,119}$/);
    }
  });

  it("are created one after another: each depends on the one before, the first on none", () => {
    const names = bootstrap.federatedCredentials.map((_, i) => ofType(stack, "azure-native:managedidentity:FederatedIdentityCredential")[i]!.name);
    expect(dependencyNames(names[0]!).filter((d) => names.includes(d))).toEqual([]);
    for (let i = 1; i < names.length; i++) {
      expect(dependencyNames(names[i]!), names[i]).toContain(names[i - 1]);
    }
  });

  it("use the immutable owner@id/repo@id prefix when configured", () => {
    const immutable = parseBootstrapConfig({ githubRepository: "contoso/platform", githubSubjectPrefix: "repo:contoso@1234/platform@5678", environments: "prod" });
    expect(federatedSubjects(immutable).map((s) => s.subject)).toEqual([
      "repo:contoso@1234/platform@5678:pull_request",
      "repo:contoso@1234/platform@5678:ref:refs/heads/main",
      "repo:contoso@1234/platform@5678:environment:prod",
    ]);
  });

  it("refuse environment names that would give two credentials one name", () => {
    expect(() => federatedSubjects({ githubSubjectPrefix: "repo:a/b", mainBranch: "main", environments: ["eu.prod", "eu-prod"] })).toThrow(/both be named github-environment-eu-prod/);
  });
});

describe("what the CI identity may do", () => {
  const ciPrincipal = "principal-id-of-id-plat-ci-";

  it("may assign exactly the built-in roles the platform assigns, to service principals only, and delete only those", () => {
    const rbac = assignment("ci-assigns-platform-roles");
    expect(String(rbac["roleDefinitionId"])).toBe(`/subscriptions/${subscriptionId}/providers/Microsoft.Authorization/roleDefinitions/${bootstrapRoles.roleBasedAccessControlAdministrator}`);
    expect(rbac["scope"]).toBe(`/subscriptions/${subscriptionId}`);
    expect(rbac["conditionVersion"]).toBe("2.0");
    expect(String(rbac["principalId"])).toContain(ciPrincipal);
    const condition = String(rbac["condition"]);
    const [write, remove] = condition.split("\nAND\n");
    const platformRoles = Object.values(builtInRoles).map((id) => id.toLowerCase()).sort();
    for (const clause of [write!, remove!]) {
      expect([...new Set(guidsIn(clause))].sort()).toEqual(platformRoles);
      expect(clause).toMatch(/PrincipalType\] ForAnyOfAnyValues:StringEqualsIgnoreCase \{'ServicePrincipal'\}/);
    }
    expect(write).toMatch(/ActionMatches\{'Microsoft\.Authorization\/roleAssignments\/write'\}\)\)\n OR\n \(@Request\[/);
    expect(remove).toMatch(/ActionMatches\{'Microsoft\.Authorization\/roleAssignments\/delete'\}\)\)\n OR\n \(@Resource\[/);
  });

  it("can make every role assignment the platform program makes (role in the condition, principal a service principal)", () => {
    const assignable = new Set(assignableRoleIds());
    const grants = platformResources.filter((r) => r.type === "azure-native:authorization:RoleAssignment");
    expect(grants.length).toBeGreaterThan(5);
    for (const grant of grants) {
      expect(assignable, grant.name).toContain(String(grant.inputs["roleDefinitionId"]).split("/").pop()!.toLowerCase());
      expect(grant.inputs["principalType"], grant.name).toBe("ServicePrincipal");
    }
  });

  it("has a custom role that covers the resource providers of every resource the platform creates, and nothing wider", () => {
    // azure-native module -> ARM resource provider namespace.
    const namespaceOf: Record<string, string> = {
      resources: "Microsoft.Resources",
      storage: "Microsoft.Storage",
      cosmosdb: "Microsoft.DocumentDB",
      servicebus: "Microsoft.ServiceBus",
      webpubsub: "Microsoft.SignalRService",
      web: "Microsoft.Web",
      managedidentity: "Microsoft.ManagedIdentity",
      operationalinsights: "Microsoft.OperationalInsights",
      applicationinsights: "Microsoft.Insights",
      insights: "Microsoft.Insights",
      monitor: "Microsoft.Insights",
      network: "Microsoft.Network",
      privatedns: "Microsoft.Network",
      apimanagement: "Microsoft.ApiManagement",
      keyvault: "Microsoft.KeyVault",
    };
    const actions = platformActions();
    const types = new Set(platformResources.map((r) => r.type).filter((t) => t.startsWith("azure-native:")));
    for (const type of types) {
      const module = type.split(":")[1]!;
      if (type === "azure-native:authorization:RoleAssignment") continue; // the conditioned RBAC Administrator assignment
      const namespace = namespaceOf[module];
      expect(namespace, `map azure-native module "${module}" to its ARM namespace in this test`).toBeDefined();
      expect(actions.some((a) => a.toLowerCase().startsWith(`${namespace!.toLowerCase()}/`)), `${type}: add ${namespace} actions to bootstrap/ci-access.ts`).toBe(true);
    }
    // Nothing that manages access, and no provider the platform does not use.
    expect(actions.filter((a) => a === "*" || /^Microsoft\.Authorization\//i.test(a) || /federatedIdentityCredentials/i.test(a))).toEqual([]);
    const used = new Set([...types].map((t) => namespaceOf[t.split(":")[1]!]?.toLowerCase()));
    const unused = actions.filter((a) => a !== "*/read" && !used.has(a.split("/")[0]!.toLowerCase()));
    expect(unused, "actions for providers the platform does not use").toEqual([]);
  });

  it("lets CI write the ARM resource types of private networking and alerts, not just their providers", () => {
    // The provider check above passes as soon as one type of a provider is covered (Microsoft.Insights
    // had components/* before alerts existed); these types each need their own action.
    const armTypeOf: Record<string, string> = {
      "azure-native:network:VirtualNetwork": "Microsoft.Network/virtualNetworks",
      "azure-native:network:Subnet": "Microsoft.Network/virtualNetworks/subnets",
      "azure-native:network:PrivateEndpoint": "Microsoft.Network/privateEndpoints",
      "azure-native:network:PrivateDnsZoneGroup": "Microsoft.Network/privateEndpoints/privateDnsZoneGroups",
      "azure-native:privatedns:PrivateZone": "Microsoft.Network/privateDnsZones",
      "azure-native:privatedns:VirtualNetworkLink": "Microsoft.Network/privateDnsZones/virtualNetworkLinks",
      "azure-native:monitor:ActionGroup": "Microsoft.Insights/actionGroups",
      "azure-native:monitor:MetricAlert": "Microsoft.Insights/metricAlerts",
      "azure-native:monitor:ScheduledQueryRule": "Microsoft.Insights/scheduledQueryRules",
      "azure-native:applicationinsights:Workbook": "Microsoft.Insights/workbooks",
    };
    const types = new Set(platformResources.map((r) => r.type));
    const wildcards = platformActions().filter((a) => a.endsWith("/*")).map((a) => a.slice(0, -1).toLowerCase());
    for (const [type, armType] of Object.entries(armTypeOf)) {
      expect(types.has(type), `the platform with every option on creates ${type}`).toBe(true);
      expect(wildcards.some((prefix) => `${armType}/write`.toLowerCase().startsWith(prefix)), `${armType}/write: add it to bootstrap/ci-access.ts`).toBe(true);
    }
  });

  it("has the custom role at subscription scope, never able to list storage, Cosmos or Service Bus keys", () => {
    const role = named(stack, "ci-platform-role").inputs;
    expect(role["assignableScopes"]).toEqual([`/subscriptions/${subscriptionId}`]);
    const [permission] = role["permissions"] as { actions: string[]; notActions: string[] }[];
    expect(permission!.actions).toEqual(platformActions());
    expect(permission!.notActions).toEqual(expect.arrayContaining(["Microsoft.Storage/storageAccounts/listKeys/action", "Microsoft.DocumentDB/databaseAccounts/listKeys/action"]));
    expect(platformNotActions.every((a) => /(listKeys|regeneratekey|Sas|listConnectionStrings|listSecrets|listValue|generateToken)/i.test(a))).toBe(true);
    expect(permission!.notActions).toEqual(expect.arrayContaining(["Microsoft.ApiManagement/service/subscriptions/listSecrets/action", "Microsoft.ApiManagement/service/namedValues/listValue/action"]));
    expect(String(assignment("ci-deploys-platform")["roleDefinitionId"])).toContain("ci-platform-role");
  });

  it("reads and writes the state container and uses the secrets key, each at that resource only", () => {
    const state = assignment("ci-state-write");
    expect(String(state["scope"])).toMatch(/ci-state-container$/);
    expect(String(state["roleDefinitionId"])).toMatch(new RegExp(`${bootstrapRoles.storageBlobDataContributor}$`));
    const key = assignment("ci-secrets-key-use");
    expect(String(key["scope"])).toMatch(/ci-secrets-key$/);
    expect(String(key["roleDefinitionId"])).toMatch(new RegExp(`${bootstrapRoles.keyVaultCryptoUser}$`));
    for (const name of ["ci-state-write", "ci-secrets-key-use", "ci-deploys-platform"]) expect(assignment(name)["principalType"]).toBe("ServicePrincipal");
  });

  it("gives the person who ran the bootstrap the state and the key too, as a user", () => {
    for (const name of ["operator-state-write", "operator-secrets-key-use"]) {
      expect(assignment(name)).toMatchObject({ principalId: deployerObjectId, principalType: "User" });
    }
  });
});

describe("the state backend and secrets key", () => {
  it("keep the state keyless and recoverable: shared keys off, versioning and soft delete on, container private", () => {
    expect(named(stack, "ci-state-account").inputs).toMatchObject({ allowSharedKeyAccess: false, allowBlobPublicAccess: false, minimumTlsVersion: "TLS1_2", enableHttpsTrafficOnly: true });
    expect(named(stack, "ci-state-blobs").inputs).toMatchObject({
      isVersioningEnabled: true,
      deleteRetentionPolicy: { enabled: true, days: 30 },
      containerDeleteRetentionPolicy: { enabled: true, days: 30 },
    });
    expect(named(stack, "ci-state-container").inputs).toMatchObject({ containerName: "pulumi-state", publicAccess: "None" });
  });

  it("use an RBAC key vault with purge protection and an RSA key for encrypt/decrypt", () => {
    expect(named(stack, "ci-vault").inputs["properties"]).toMatchObject({ tenantId, enableRbacAuthorization: true, enablePurgeProtection: true, enableSoftDelete: true });
    expect(named(stack, "ci-secrets-key").inputs["properties"]).toMatchObject({ kty: "RSA", keyOps: ["encrypt", "decrypt"] });
  });

  it("lock the resource group against deletion, after what it protects (so destroying the bootstrap removes the lock first)", () => {
    expect(named(stack, "ci-delete-lock").inputs).toMatchObject({ level: "CanNotDelete" });
    expect(dependencyNames("ci-delete-lock")).toEqual(
      expect.arrayContaining(["ci-state-account", "ci-state-container", "ci-vault", "ci-secrets-key", "ci-identity", ...bootstrap.federatedCredentials.map((_, i) => ofType(stack, "azure-native:managedidentity:FederatedIdentityCredential")[i]!.name)]),
    );
  });

  it("pass the policy pack's mandatory rules, apart from the two RBAC rules a bootstrap breaks by design", async () => {
    // The CI identity needs subscription-scope assignments and the RBAC Administrator role (conditioned).
    const byDesign = new Set(["rbac-no-privileged-roles", "rbac-resource-scope"]);
    const violations: string[] = [];
    for (const policy of policies.filter(isResourcePolicy).filter((p) => p.enforcementLevel === "mandatory" && !byDesign.has(p.name))) {
      for (const r of own) {
        const outcome = await evaluateResource(policy, { type: r.type, name: r.name, props: r.inputs });
        if (outcome.kind === "violated") violations.push(`${policy.name} on ${r.name}: ${outcome.messages.join(" ")}`);
      }
    }
    expect(violations).toEqual([]);
  });
});

describe("outputs", () => {
  it("are the repository variables (none a secret) and the exact gh commands that set them", () => {
    const variables = outputs["variables"] as Record<string, string>;
    expect(variables).toEqual({
      AZURE_CLIENT_ID: expect.stringContaining("client-id-of-id-plat-ci-"),
      AZURE_TENANT_ID: tenantId,
      AZURE_SUBSCRIPTION_ID: subscriptionId,
      PULUMI_BACKEND_URL: expect.stringMatching(/^azblob:\/\/pulumi-state\?storage_account=platstate[a-z0-9]{6}$/),
      PULUMI_SECRETS_PROVIDER: expect.stringMatching(/^azurekeyvault:\/\/kv-plat-[a-z0-9]{6}\.vault\.azure\.net\/keys\/pulumi-secrets$/),
    });
    const commands = String(outputs["ghCommands"]).split("\n");
    expect(commands).toContain(`gh variable set AZURE_TENANT_ID --repo contoso/platform --body '${tenantId}'`);
    expect(commands.filter((c) => c.startsWith("gh variable set ")).length).toBe(5);
    expect(commands.some((c) => c.startsWith("gh secret"))).toBe(false);
    expect(commands.slice(-2)).toEqual(["gh api --method PUT repos/contoso/platform/environments/dev", "gh api --method PUT repos/contoso/platform/environments/prod"]);
    expect(findSecrets(outputs)).toEqual([]);
  });

  it("quote values for the shell", () => {
    const line = ghCommands("a/b", { AZURE_CLIENT_ID: "it's", AZURE_TENANT_ID: "t", AZURE_SUBSCRIPTION_ID: "s", PULUMI_BACKEND_URL: "azblob://x?storage_account=y&z", PULUMI_SECRETS_PROVIDER: "p" }, []);
    expect(line).toContain(`--body 'it'\\''s'`);
    expect(line).toContain(`--body 'azblob://x?storage_account=y&z'`);
  });
});

describe("configuration", () => {
  it("names every problem at once", () => {
    try {
      parseBootstrapConfig({ githubSubjectPrefix: "repo:x", namePrefix: "Bad_Prefix", operatorPrincipalType: "Robot", environments: "[1]" });
      expect.unreachable();
    } catch (error) {
      expect(error).toBeInstanceOf(BootstrapConfigError);
      const message = String(error);
      expect(message).toMatch(/githubRepository is required/);
      expect(message).toMatch(/namePrefix = "Bad_Prefix"/);
      expect(message).toMatch(/operatorPrincipalType = "Robot" is invalid; allowed values: User, Group, ServicePrincipal, None/);
      expect(message).toMatch(/environments must be a list of names/);
    }
  });

  it("rejects a subject prefix that is not GitHub's, and more environments than an identity has credentials for", () => {
    expect(() => parseBootstrapConfig({ githubRepository: "contoso/platform", githubSubjectPrefix: "contoso/platform" })).toThrow(/githubSubjectPrefix = "contoso\/platform" must look like repo:owner\/name/);
    const many = JSON.stringify(Array.from({ length: 19 }, (_, i) => `env${i}`));
    expect(() => parseBootstrapConfig({ githubRepository: "contoso/platform", environments: many })).toThrow(/at most 18/);
  });

  it("defaults to the main branch, dev and prod, and the operator as a user", () => {
    expect(parseBootstrapConfig({ githubRepository: "contoso/platform" })).toMatchObject({
      githubSubjectPrefix: "repo:contoso/platform",
      mainBranch: "main",
      environments: ["dev", "prod"],
      operatorPrincipalType: "User",
    });
  });
});

describe("roleAssignmentCondition", () => {
  it("refuses an empty or malformed role list (an empty one would allow nothing, silently)", () => {
    expect(() => roleAssignmentCondition([])).toThrow(/at least one role/);
    expect(() => roleAssignmentCondition(["Owner"])).toThrow(/not a role definition GUID: Owner/);
  });
});
