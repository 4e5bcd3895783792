import * as pulumi from "@pulumi/pulumi";
import * as cosmosdb from "@pulumi/azure-native/cosmosdb";
import type { LinkDeclaration } from "../../functions/src/platform/links";
import type { CosmosContainerOptions } from "../../functions/src/platform/resource-kinds";
import { cosmosDataRoleIds, deterministicGuid } from "../roles";
import type { Grantee } from "./grant";
import { GrantsOnce, type Link } from "./link";
import { transformed, type Transform } from "./transform";

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
   * Accept requests from public networks. Off with private networking: the apps reach the account
   * through a private endpoint (control-plane changes through ARM are not affected).
   * @default true
   */
  readonly publicNetworkAccess?: boolean;
  /**
   * Keep the region's replicas in several availability zones. Request units cost 25% more, and
   * Azure sets it only when a region is added to the account: changing it on an existing account
   * fails (the data would have to move to a new account).
   * @default false
   */
  readonly zoneRedundant?: boolean;
  /** SQL database name. */
  readonly databaseName: string;
  /**
   * The containers, by name.
   * @example { jobs: { partitionKey: "/userId" } }
   */
  readonly containers: Readonly<Record<string, CosmosContainerOptions>>;
  /**
   * Changes to the arguments of the account, the database and each container (see transform.ts).
   * @default no changes
   */
  readonly transform?: {
    /** Changes to the account(s). @default unchanged */
    readonly account?: Transform<cosmosdb.DatabaseAccountArgs>;
    /** Changes to the SQL database. @default unchanged */
    readonly database?: Transform<cosmosdb.SqlResourceSqlDatabaseArgs>;
    /** Changes to every container. @default unchanged */
    readonly container?: Transform<cosmosdb.SqlResourceSqlContainerArgs>;
  };
}

/**
 * A serverless Cosmos DB (NoSQL) account (billed per request unit and GB; nothing when idle), with
 * key auth off: the data plane accepts only Entra tokens, granted through Cosmos SQL role
 * assignments that links create.
 *
 * Every control-plane write to the account (each container, each SQL role assignment) waits for the
 * one before it: Cosmos refuses concurrent writes to one account with 412 "another user operation
 * in progress which requires an exclusive lock" (terraform-provider-azurerm 15842, 17233).
 */
export class Database extends pulumi.ComponentResource {
  readonly account: cosmosdb.DatabaseAccount;
  readonly database: cosmosdb.SqlResourceSqlDatabase;
  readonly containers: Readonly<Record<string, cosmosdb.SqlResourceSqlContainer>>;
  /** Account endpoint, e.g. `https://<account>.documents.azure.com:443/`. */
  readonly endpoint: pulumi.Output<string>;
  readonly databaseName: string;
  private readonly name: string;
  private readonly resourceGroupName: pulumi.Input<string>;
  /** The account's last control-plane write so far: the next one waits for it. */
  private lastWrite: pulumi.Resource;
  private readonly grants = new GrantsOnce();

  constructor(name: string, args: DatabaseArgs, opts?: pulumi.ComponentResourceOptions) {
    super("platform:azure:Database", name, {}, opts);
    this.name = name;
    this.resourceGroupName = args.resourceGroupName;
    this.databaseName = args.databaseName;
    this.account = new cosmosdb.DatabaseAccount(
      ...transformed(
        args.transform?.account,
        `${name}-account`,
        {
          accountName: args.accountName,
          resourceGroupName: args.resourceGroupName,
          location: args.location,
          kind: cosmosdb.DatabaseAccountKind.GlobalDocumentDB,
          databaseAccountOfferType: cosmosdb.DatabaseAccountOfferType.Standard,
          capabilities: [{ name: "EnableServerless" }],
          consistencyPolicy: { defaultConsistencyLevel: args.consistency ?? "Session" },
          locations: [{ locationName: args.location, failoverPriority: 0, isZoneRedundant: args.zoneRedundant ?? false }],
          disableLocalAuth: true,
          disableKeyBasedMetadataWriteAccess: true,
          minimalTlsVersion: cosmosdb.MinimalTlsVersion.Tls12,
          // Point-in-time restore for the last 7 days; the 7-day tier has no charge.
          backupPolicy: { type: "Continuous", continuousModeProperties: { tier: cosmosdb.ContinuousTier.Continuous7Days } },
          publicNetworkAccess: (args.publicNetworkAccess ?? true) ? cosmosdb.PublicNetworkAccess.Enabled : cosmosdb.PublicNetworkAccess.Disabled,
        },
        { parent: this },
      ),
    );
    this.endpoint = this.account.documentEndpoint;
    this.database = new cosmosdb.SqlResourceSqlDatabase(
      ...transformed(
        args.transform?.database,
        `${name}-db`,
        {
          accountName: this.account.name,
          resourceGroupName: args.resourceGroupName,
          databaseName: this.databaseName,
          resource: { id: this.databaseName },
        },
        { parent: this },
      ),
    );
    this.lastWrite = this.database;
    const containers: Record<string, cosmosdb.SqlResourceSqlContainer> = {};
    for (const [containerName, options] of Object.entries(args.containers)) {
      const container = new cosmosdb.SqlResourceSqlContainer(
        ...transformed(
          args.transform?.container,
          `${name}-${containerName}`,
          {
            accountName: this.account.name,
            resourceGroupName: args.resourceGroupName,
            databaseName: this.database.name,
            containerName,
            resource: {
              id: containerName,
              partitionKey: { paths: [options.partitionKey], kind: cosmosdb.PartitionKind.Hash, version: 2 },
            },
          },
          { parent: this, dependsOn: [this.lastWrite] },
        ),
      );
      containers[containerName] = container;
      this.lastWrite = container;
    }
    this.containers = containers;
    this.registerOutputs({ endpoint: this.endpoint, databaseName: this.databaseName, containers: Object.keys(containers) });
  }

  /** The database as a Cosmos role-assignment scope. */
  get databaseScope(): pulumi.Output<string> {
    return pulumi.interpolate`${this.account.id}/dbs/${this.databaseName}`;
  }

  /**
   * A container linked for `read` (Cosmos Built-in Data Reader) or `readWrite` (Built-in Data
   * Contributor). Cosmos data-plane roles are Cosmos SQL role assignments, not Azure RBAC. They are
   * scoped to the database, not the container: with a container scope the SDK's metadata reads of
   * the database are refused (403 on readMetadata for `dbs/<db>`, azure-cosmos-dotnet-v3 3638). So a
   * link to one container gives that access to every container of the database; one assignment per
   * identity and level serves all its links.
   *
   * Each assignment waits for the account's previous write and, for a new identity, for its
   * replication through Entra (see {@link Grantee.replicated}).
   */
  link(declaration: LinkDeclaration<"cosmosContainer">): Link {
    if (!this.containers[declaration.name]) {
      throw new Error(`no container "${declaration.name}" in ${this.name}; declared: ${Object.keys(this.containers).join(", ")}`);
    }
    const roleId = cosmosDataRoleIds[declaration.access];
    return {
      declaration,
      family: "cosmos",
      endpoint: this.endpoint,
      grant: (grantee: Grantee) => [this.grants.get(grantee, declaration.access, () => this.assign(grantee, declaration.access, roleId))],
    };
  }

  private assign(grantee: Grantee, access: string, roleId: string): cosmosdb.SqlResourceSqlRoleAssignment {
    const scope = this.databaseScope;
    const assignment = new cosmosdb.SqlResourceSqlRoleAssignment(
      `${this.name}-${grantee.granteeName}-${access.toLowerCase()}`,
      {
        accountName: this.account.name,
        resourceGroupName: this.resourceGroupName,
        principalId: grantee.principalId,
        roleDefinitionId: pulumi.interpolate`${this.account.id}/sqlRoleDefinitions/${roleId}`,
        scope,
        roleAssignmentId: pulumi.all([scope, grantee.principalId]).apply(([s, principal]) => deterministicGuid(s, roleId, principal)),
      },
      { parent: this, dependsOn: [this.lastWrite, ...(grantee.replicated ? [grantee.replicated] : [])] },
    );
    this.lastWrite = assignment;
    return assignment;
  }
}
