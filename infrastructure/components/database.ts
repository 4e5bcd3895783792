import * as pulumi from "@pulumi/pulumi";
import * as cosmosdb from "@pulumi/azure-native/cosmosdb";
import { cosmosDataContributorRoleId, deterministicGuid } from "../roles";
import type { Grantee } from "./grant";

export interface DatabaseArgs {
  /** Resource group that holds the account. */
  readonly resourceGroupName: pulumi.Input<string>;
  /** Azure region, e.g. `eastus`. */
  readonly location: pulumi.Input<string>;
  /** Cosmos DB account name: 3-44 lowercase letters, digits and hyphens, globally unique. */
  readonly accountName: pulumi.Input<string>;
  /**
   * Default consistency level of the account.
   * @default "Session"
   */
  readonly consistency?: cosmosdb.DefaultConsistencyLevel;
  /**
   * SQL database name.
   * @default "platform"
   */
  readonly databaseName?: string;
  /**
   * Container of job documents, partitioned by `/userId` (each user's jobs live together, and
   * listing a user's jobs is a single-partition query).
   * @default "jobs"
   */
  readonly jobsContainerName?: string;
}

/**
 * A serverless Cosmos DB (NoSQL) account (billed per request unit and GB; nothing when idle), with
 * key auth off: the data plane accepts only Entra tokens, granted through Cosmos SQL role assignments.
 */
export class Database extends pulumi.ComponentResource {
  readonly account: cosmosdb.DatabaseAccount;
  readonly database: cosmosdb.SqlResourceSqlDatabase;
  readonly jobsContainer: cosmosdb.SqlResourceSqlContainer;
  /** Account endpoint, e.g. `https://<account>.documents.azure.com:443/`. */
  readonly endpoint: pulumi.Output<string>;
  readonly databaseName: string;
  readonly jobsContainerName: string;
  private readonly name: string;
  private readonly resourceGroupName: pulumi.Input<string>;
  /**
   * The account's last control-plane write so far: each new one (container, SQL role assignment)
   * waits for it. Cosmos refuses concurrent writes to one account with 412 "another user operation
   * in progress which requires an exclusive lock" (terraform-provider-azurerm 15842, 17233).
   */
  private lastWrite: pulumi.Resource;

  constructor(name: string, args: DatabaseArgs, opts?: pulumi.ComponentResourceOptions) {
    super("platform:azure:Database", name, {}, opts);
    this.name = name;
    this.resourceGroupName = args.resourceGroupName;
    this.databaseName = args.databaseName ?? "platform";
    this.jobsContainerName = args.jobsContainerName ?? "jobs";
    this.account = new cosmosdb.DatabaseAccount(
      `${name}-account`,
      {
        accountName: args.accountName,
        resourceGroupName: args.resourceGroupName,
        location: args.location,
        kind: cosmosdb.DatabaseAccountKind.GlobalDocumentDB,
        databaseAccountOfferType: cosmosdb.DatabaseAccountOfferType.Standard,
        capabilities: [{ name: "EnableServerless" }],
        consistencyPolicy: { defaultConsistencyLevel: args.consistency ?? "Session" },
        locations: [{ locationName: args.location, failoverPriority: 0, isZoneRedundant: false }],
        disableLocalAuth: true,
        disableKeyBasedMetadataWriteAccess: true,
        minimalTlsVersion: cosmosdb.MinimalTlsVersion.Tls12,
        // Point-in-time restore for the last 7 days; the 7-day tier has no charge.
        backupPolicy: { type: "Continuous", continuousModeProperties: { tier: cosmosdb.ContinuousTier.Continuous7Days } },
        publicNetworkAccess: cosmosdb.PublicNetworkAccess.Enabled,
      },
      { parent: this },
    );
    this.endpoint = this.account.documentEndpoint;
    this.database = new cosmosdb.SqlResourceSqlDatabase(
      `${name}-db`,
      {
        accountName: this.account.name,
        resourceGroupName: args.resourceGroupName,
        databaseName: this.databaseName,
        resource: { id: this.databaseName },
      },
      { parent: this },
    );
    this.jobsContainer = new cosmosdb.SqlResourceSqlContainer(
      `${name}-jobs`,
      {
        accountName: this.account.name,
        resourceGroupName: args.resourceGroupName,
        databaseName: this.database.name,
        containerName: this.jobsContainerName,
        resource: {
          id: this.jobsContainerName,
          partitionKey: { paths: ["/userId"], kind: cosmosdb.PartitionKind.Hash, version: 2 },
        },
      },
      { parent: this, dependsOn: [this.database] },
    );
    this.lastWrite = this.jobsContainer;
    this.registerOutputs({ endpoint: this.endpoint, databaseName: this.databaseName, jobsContainerName: this.jobsContainerName });
  }

  /** The database as a Cosmos role-assignment scope. */
  get databaseScope(): pulumi.Output<string> {
    return pulumi.interpolate`${this.account.id}/dbs/${this.databaseName}`;
  }

  /**
   * Read and write the job documents (after every earlier write to the account, and once a new
   * identity has replicated: see {@link Grantee.replicated}): Cosmos's built-in Data Contributor (Cosmos data-plane roles
   * are Cosmos SQL role assignments, not Azure RBAC), scoped to the database. Cosmos also accepts a
   * container scope, but then the SDK's metadata reads of the database are refused (403 on
   * readMetadata for `dbs/<db>`, azure-cosmos-dotnet-v3 issue 3638); the database holds only the
   * `jobs` container, so the database scope grants nothing more.
   */
  grantReadWrite(grantee: Grantee) {
    const scope = this.databaseScope;
    const roleDefinitionId = pulumi.interpolate`${this.account.id}/sqlRoleDefinitions/${cosmosDataContributorRoleId}`;
    const assignment = new cosmosdb.SqlResourceSqlRoleAssignment(
      `${this.name}-${grantee.granteeName}-readwrite`,
      {
        accountName: this.account.name,
        resourceGroupName: this.resourceGroupName,
        principalId: grantee.principalId,
        roleDefinitionId,
        scope,
        roleAssignmentId: pulumi
          .all([scope, grantee.principalId])
          .apply(([s, principal]) => deterministicGuid(s, cosmosDataContributorRoleId, principal)),
      },
      { parent: this, dependsOn: [this.lastWrite, ...(grantee.replicated ? [grantee.replicated] : [])] },
    );
    this.lastWrite = assignment;
    return assignment;
  }
}
