/**
 * Everything a deploying pipeline needs, created once per subscription, keyless:
 * - the state backend: a storage account (shared keys off, versioning, soft delete) and a container;
 * - the secrets provider: a Key Vault key (`azurekeyvault://`), so no passphrase is a secret;
 * - a user-assigned identity for CI, trusted through federated credentials for the repository's
 *   pull requests, its main branch and each deploy environment;
 * - that identity's access: the state and the key, a custom role limited to what the platform
 *   program manages, and the right to assign only the platform's roles (ci-access.ts);
 * - a delete lock on the resource group, so a pipeline cannot remove its own backend.
 * `createBootstrap` is the whole program apart from reading configuration, so tests build it under mocks.
 * Destroying it on purpose: purge protection keeps the deleted vault, and its name, for 90 days.
 */
import * as pulumi from "@pulumi/pulumi";
import * as authorization from "@pulumi/azure-native/authorization";
import * as keyvault from "@pulumi/azure-native/keyvault";
import * as managedidentity from "@pulumi/azure-native/managedidentity";
import * as resources from "@pulumi/azure-native/resources";
import * as storage from "@pulumi/azure-native/storage";
import { deterministicGuid } from "../infrastructure/roles";
import { stackHash } from "../infrastructure/naming";
import { assignableRoleIds, bootstrapRoles, platformActionGroups, platformActions, platformNotActions, roleAssignmentCondition } from "./ci-access";
import { bootstrapProjectName, type BootstrapConfig } from "./config";

export const githubIssuer = "https://token.actions.githubusercontent.com";
export const federatedAudience = "api://AzureADTokenExchange";
export const stateContainerName = "pulumi-state";
export const secretsKeyName = "pulumi-secrets";
/** Days deleted state blobs, their versions and containers stay recoverable. */
export const stateRetentionDays = 30;

export interface ClientConfig {
  readonly subscriptionId: string;
  readonly tenantId: string;
  readonly objectId: string;
}

export interface BootstrapContext {
  readonly stack: string;
  /** Who runs the bootstrap (authorization.getClientConfig). */
  readonly client: pulumi.Input<ClientConfig>;
}

/** One federated identity credential: its name on the identity and the subject it trusts. */
export interface FederatedSubject {
  readonly name: string;
  readonly subject: string;
}

/** The subjects the workflows' tokens carry: pull requests, the main branch, each environment. */
export function federatedSubjects(config: Pick<BootstrapConfig, "githubSubjectPrefix" | "mainBranch" | "environments">): FederatedSubject[] {
  // Credential names: 3-120 characters, letters, digits, hyphens and underscores.
  const slug = (value: string) => value.replace(/[^A-Za-z0-9_-]+/g, "-");
  const subjects = [
    { name: "github-pull-request", subject: `${config.githubSubjectPrefix}:pull_request` },
    { name: `github-branch-${slug(config.mainBranch)}`, subject: `${config.githubSubjectPrefix}:ref:refs/heads/${config.mainBranch}` },
    ...config.environments.map((env) => ({ name: `github-environment-${slug(env)}`, subject: `${config.githubSubjectPrefix}:environment:${env}` })),
  ];
  const names = subjects.map((s) => s.name);
  const clash = names.find((name, i) => names.indexOf(name) !== i);
  if (clash) throw new Error(`two federated credentials would both be named ${clash}; rename an environment`);
  return subjects;
}

/** Names of the bootstrap's resources: readable prefix plus a hash of subscription and stack (global names must not collide). */
export function bootstrapNames(prefix: string, stack: string, subscriptionId: string) {
  const hash = stackHash({ project: bootstrapProjectName, stack, subscriptionId });
  return {
    resourceGroup: `rg-${prefix}-ci-${hash}`,
    stateAccount: `${prefix}state${hash}`,
    vault: `kv-${prefix}-${hash}`,
    identity: `id-${prefix}-ci-${hash}`,
    ciRole: `${prefix} platform deployer (${hash})`,
  };
}

/** What a repository needs to deploy: GitHub variables (none of them a secret). */
export interface PipelineVariables {
  readonly AZURE_CLIENT_ID: string;
  readonly AZURE_TENANT_ID: string;
  readonly AZURE_SUBSCRIPTION_ID: string;
  readonly PULUMI_BACKEND_URL: string;
  readonly PULUMI_SECRETS_PROVIDER: string;
}

/** The exact commands that store the variables in the repository and create its environments. */
export function ghCommands(repository: string, variables: PipelineVariables, environments: readonly string[]): string {
  const quote = (value: string) => `'${value.replace(/'/g, `'\\''`)}'`;
  return [
    ...Object.entries(variables).map(([name, value]) => `gh variable set ${name} --repo ${repository} --body ${quote(value)}`),
    ...environments.map((env) => `gh api --method PUT repos/${repository}/environments/${env}`),
  ].join("\n");
}

export interface BootstrapOutputs {
  readonly resourceGroupName: pulumi.Output<string>;
  readonly ciClientId: pulumi.Output<string>;
  readonly ciPrincipalId: pulumi.Output<string>;
  readonly federatedSubjects: string[];
  readonly variables: pulumi.Output<PipelineVariables>;
  /** Run these once (gh CLI, logged in to GitHub); then add required reviewers to the production environment. */
  readonly ghCommands: pulumi.Output<string>;
}

export interface Bootstrap {
  readonly resourceGroup: resources.ResourceGroup;
  readonly stateAccount: storage.StorageAccount;
  readonly stateContainer: storage.BlobContainer;
  readonly vault: keyvault.Vault;
  readonly secretsKey: keyvault.Key;
  readonly identity: managedidentity.UserAssignedIdentity;
  /** In creation order: each waits for the one before (Azure refuses concurrent writes on one identity). */
  readonly federatedCredentials: managedidentity.FederatedIdentityCredential[];
  readonly ciRole: authorization.RoleDefinition;
  readonly outputs: BootstrapOutputs;
}

export function createBootstrap(config: BootstrapConfig, context: BootstrapContext): Bootstrap {
  const client = pulumi.output(context.client);
  const names = client.apply((c) => bootstrapNames(config.namePrefix, context.stack, c.subscriptionId));
  const subscriptionScope = pulumi.interpolate`/subscriptions/${client.subscriptionId}`;
  const builtInRole = (guid: string) => pulumi.interpolate`${subscriptionScope}/providers/Microsoft.Authorization/roleDefinitions/${guid}`;
  const location = config.location;

  const resourceGroup = new resources.ResourceGroup("ci-resource-group", { resourceGroupName: names.resourceGroup, location });
  const resourceGroupName = resourceGroup.name;
  const stateAccount = new storage.StorageAccount("ci-state-account", {
    accountName: names.stateAccount,
    resourceGroupName,
    location,
    kind: storage.Kind.StorageV2,
    sku: { name: storage.SkuName.Standard_LRS },
    accessTier: storage.AccessTier.Hot,
    enableHttpsTrafficOnly: true,
    minimumTlsVersion: storage.MinimumTlsVersion.TLS1_2,
    allowBlobPublicAccess: false,
    allowSharedKeyAccess: false,
    defaultToOAuthAuthentication: true,
    allowCrossTenantReplication: false,
  });
  const retention = { enabled: true, days: stateRetentionDays };
  new storage.BlobServiceProperties("ci-state-blobs", {
    accountName: stateAccount.name,
    resourceGroupName,
    blobServicesName: "default",
    // Every write of a stack's checkpoint keeps the previous one as a version.
    isVersioningEnabled: true,
    deleteRetentionPolicy: retention,
    containerDeleteRetentionPolicy: retention,
  });
  const stateContainer = new storage.BlobContainer("ci-state-container", {
    containerName: stateContainerName,
    accountName: stateAccount.name,
    resourceGroupName,
    publicAccess: storage.PublicAccess.None,
  });

  const vault = new keyvault.Vault("ci-vault", {
    vaultName: names.vault,
    resourceGroupName,
    location,
    properties: {
      tenantId: client.tenantId,
      sku: { family: keyvault.SkuFamily.A, name: keyvault.SkuName.Standard },
      enableRbacAuthorization: true,
      enableSoftDelete: true,
      softDeleteRetentionInDays: 90,
      enablePurgeProtection: true,
    },
  });
  const secretsKey = new keyvault.Key("ci-secrets-key", {
    vaultName: vault.name,
    resourceGroupName,
    keyName: secretsKeyName,
    // The azurekeyvault secrets provider wraps each stack's data key with RSA-OAEP-256.
    properties: { kty: keyvault.JsonWebKeyType.RSA, keySize: 3072, keyOps: [keyvault.JsonWebKeyOperation.Encrypt, keyvault.JsonWebKeyOperation.Decrypt] },
  });

  const identity = new managedidentity.UserAssignedIdentity("ci-identity", { resourceName: names.identity, resourceGroupName, location });
  const subjects = federatedSubjects(config);
  const federatedCredentials: managedidentity.FederatedIdentityCredential[] = [];
  for (const { name, subject } of subjects) {
    const previous = federatedCredentials[federatedCredentials.length - 1];
    federatedCredentials.push(
      new managedidentity.FederatedIdentityCredential(
        `ci-credential-${name}`,
        {
          resourceGroupName,
          resourceName: identity.name,
          federatedIdentityCredentialResourceName: name,
          issuer: githubIssuer,
          subject,
          audiences: [federatedAudience],
        },
        // Azure answers 409 to concurrent credential writes on one identity: one after another.
        { dependsOn: previous ? [previous] : [] },
      ),
    );
  }

  const ciRole = new authorization.RoleDefinition("ci-platform-role", {
    scope: subscriptionScope,
    roleDefinitionId: pulumi.all([subscriptionScope, names]).apply(([scope, n]) => deterministicGuid(scope, n.ciRole)),
    roleName: names.ciRole,
    description: `Deploys the ${bootstrapProjectName.replace(/-bootstrap$/, "")} platform: ${platformActionGroups.map((g) => g.why).join("; ")}.`,
    permissions: [{ actions: platformActions(), notActions: [...platformNotActions] }],
    assignableScopes: [subscriptionScope],
  });

  const assign = (
    resourceName: string,
    scope: pulumi.Input<string>,
    roleDefinitionId: pulumi.Input<string>,
    principal: { id: pulumi.Input<string>; type: "ServicePrincipal" | "User" | "Group" },
    extra: Pick<authorization.RoleAssignmentArgs, "condition" | "conditionVersion" | "description"> = {},
  ) =>
    new authorization.RoleAssignment(resourceName, {
      scope,
      roleDefinitionId,
      principalId: principal.id,
      principalType: principal.type,
      roleAssignmentName: pulumi.all([scope, roleDefinitionId, principal.id]).apply(([s, role, id]) => deterministicGuid(s, role, id)),
      ...extra,
    });
  const ci = { id: identity.principalId, type: "ServicePrincipal" as const };
  assign("ci-deploys-platform", subscriptionScope, ciRole.id, ci, { description: "Create, change and delete the platform's resources." });
  assign("ci-assigns-platform-roles", subscriptionScope, builtInRole(bootstrapRoles.roleBasedAccessControlAdministrator), ci, {
    condition: roleAssignmentCondition(assignableRoleIds()),
    conditionVersion: "2.0",
    description: "Assign only the built-in roles the platform grants, only to service principals.",
  });
  assign("ci-state-write", stateContainer.id, builtInRole(bootstrapRoles.storageBlobDataContributor), ci);
  assign("ci-secrets-key-use", secretsKey.id, builtInRole(bootstrapRoles.keyVaultCryptoUser), ci);
  if (config.operatorPrincipalType !== "None") {
    const operator = { id: client.objectId, type: config.operatorPrincipalType };
    assign("operator-state-write", stateContainer.id, builtInRole(bootstrapRoles.storageBlobDataContributor), operator);
    assign("operator-secrets-key-use", secretsKey.id, builtInRole(bootstrapRoles.keyVaultCryptoUser), operator);
  }

  // The pipeline may manage storage accounts and identities anywhere in the subscription; the lock
  // keeps it (and anyone) from deleting the state, the key and its own identity. It depends on what
  // it protects, so `pulumi destroy` of the bootstrap removes the lock first.
  new authorization.ManagementLockAtResourceGroupLevel(
    "ci-delete-lock",
    {
      resourceGroupName,
      lockName: "keep-ci-backend",
      level: authorization.LockLevel.CanNotDelete,
      notes: "Holds the Pulumi state, the secrets key and the CI identity. Remove the lock first to delete on purpose.",
    },
    { dependsOn: [stateAccount, stateContainer, vault, secretsKey, identity, ...federatedCredentials] },
  );

  const variables = pulumi
    .all([identity.clientId, client, stateAccount.name, vault.name])
    .apply(([clientId, c, account, vaultName]): PipelineVariables => ({
      AZURE_CLIENT_ID: clientId,
      AZURE_TENANT_ID: c.tenantId,
      AZURE_SUBSCRIPTION_ID: c.subscriptionId,
      PULUMI_BACKEND_URL: `azblob://${stateContainerName}?storage_account=${account}`,
      PULUMI_SECRETS_PROVIDER: `azurekeyvault://${vaultName}.vault.azure.net/keys/${secretsKeyName}`,
    }));
  const outputs: BootstrapOutputs = {
    resourceGroupName,
    ciClientId: identity.clientId,
    ciPrincipalId: identity.principalId,
    federatedSubjects: subjects.map((s) => s.subject),
    variables,
    ghCommands: variables.apply((v) => ghCommands(config.githubRepository, v, config.environments)),
  };
  return { resourceGroup, stateAccount, stateContainer, vault, secretsKey, identity, federatedCredentials, ciRole, outputs };
}
