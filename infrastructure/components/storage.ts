import * as pulumi from "@pulumi/pulumi";
import * as storage from "@pulumi/azure-native/storage";
import type * as types from "@pulumi/azure-native/types";
import type { LinkDeclaration } from "../../functions/src/platform/links";
import type { ResolvedBlobContainer } from "../../functions/src/platform/resource-kinds";
import { assignRole, type Grantee } from "./grant";
import { GrantsOnce, type Link } from "./link";
import { transformed, type Transform } from "./transform";

export interface StorageArgs {
  /** Resource group that holds both accounts. */
  readonly resourceGroupName: pulumi.Input<string>;
  /** Azure region, e.g. `eastus`. */
  readonly location: pulumi.Input<string>;
  /** Name of the data account (uploads + static website): 3-24 lowercase letters and digits, globally unique. */
  readonly dataAccountName: pulumi.Input<string>;
  /** Name of the Functions host account (AzureWebJobsStorage + deployment packages), same rules. */
  readonly hostAccountName: pulumi.Input<string>;
  /**
   * Replication of both accounts.
   * @default "Standard_LRS"
   */
  readonly sku?: pulumi.Input<string>;
  /**
   * Days deleted blobs and containers stay recoverable (blob soft delete).
   * @default 7
   */
  readonly softDeleteDays?: number;
  /**
   * Deployment containers to create in the host account, one per function app, keyed by service.
   * @example { api: "api-package", agent: "agent-package" }
   */
  readonly deploymentContainers: Readonly<Record<string, string>>;
  /**
   * The data account's containers, by name, with the stack configuration applied
   * (resolveBlobContainer). Those with `browserUploads` get CORS PUT from the web origin (the
   * account's CORS rule covers its whole blob service); those with `deleteAfterDays` a rule of the
   * account's lifecycle-management policy that deletes their blobs that much after creation.
   * @example { uploads: { browserUploads: true, deleteAfterDays: 7 } }
   */
  readonly containers: Readonly<Record<string, ResolvedBlobContainer>>;
  /**
   * The host account refuses every request from a public network (public network access off,
   * firewall default deny, no trusted-service bypass): the apps reach it through a private
   * endpoint. The data account stays public either way, since browsers load the website from it
   * and upload into it.
   * @default false
   */
  readonly privateHostAccount?: boolean;
  /**
   * How long browsers may cache the CORS preflight answer of the upload endpoint, in seconds.
   * @default 3600
   */
  readonly corsMaxAgeSeconds?: number;
  /**
   * Changes to the arguments of both accounts and of each container (see transform.ts).
   * @default no changes
   */
  readonly transform?: {
    /** Changes to the account(s). @default unchanged */
    readonly account?: Transform<storage.StorageAccountArgs>;
    /** Changes to every container. @default unchanged */
    readonly container?: Transform<storage.BlobContainerArgs>;
    /** Changes to the data account's lifecycle-management policy. @default unchanged */
    readonly lifecycle?: Transform<storage.ManagementPolicyArgs>;
  };
}

/** The `$web` container the static website serves from. */
export const websiteContainerName = "$web";

/**
 * One lifecycle rule per container with `deleteAfterDays`: delete its block and append blobs (the
 * blob types lifecycle rules act on) and their snapshots that many days after creation. Pure.
 */
export function lifecycleRules(containers: Readonly<Record<string, ResolvedBlobContainer>>): types.input.storage.ManagementPolicyRuleArgs[] {
  return Object.entries(containers).flatMap(([containerName, options]) =>
    options.deleteAfterDays === undefined
      ? []
      : [
          {
            // Rule names are alphanumeric.
            name: `delete${containerName.replace(/[^A-Za-z0-9]/g, "")}afterdays`,
            enabled: true,
            type: "Lifecycle",
            definition: {
              filters: { blobTypes: ["blockBlob", "appendBlob"], prefixMatch: [`${containerName}/`] },
              actions: {
                baseBlob: { delete: { daysAfterCreationGreaterThan: options.deleteAfterDays } },
                snapshot: { delete: { daysAfterCreationGreaterThan: options.deleteAfterDays } },
                version: { delete: { daysAfterCreationGreaterThan: options.deleteAfterDays } },
              },
            },
          },
        ],
  );
}

/**
 * Two storage accounts, both keyless (shared-key access off), HTTPS-only, TLS 1.2, no public blob
 * access, with blob and container soft delete:
 *
 * - the data account holds what users touch: the app's containers (those browsers upload into
 *   directly, through user-delegation SAS URLs, make its blob service allow CORS PUT from the web
 *   origin) and the static website (`$web`);
 * - the host account holds the Functions runtime's own state (AzureWebJobsStorage) and the
 *   deployment packages.
 *
 * Why two: the Functions host needs Storage Blob Data Owner on its account (it creates its own
 * containers for leases and keys). Granted on a shared account, that role would let either app read,
 * overwrite or delete every user upload and the website. Separate accounts keep the host's broad
 * grant away from user data at no extra cost (storage bills per GB and per operation, not per account).
 */
export class Storage extends pulumi.ComponentResource {
  readonly dataAccount: storage.StorageAccount;
  readonly hostAccount: storage.StorageAccount;
  readonly containers: Readonly<Record<string, storage.BlobContainer>>;
  readonly website: storage.StorageAccountStaticWebsite;
  readonly deploymentContainers: Readonly<Record<string, storage.BlobContainer>>;
  /** The data account's lifecycle rules; absent when no container asks for deletion by age. */
  readonly lifecycle: storage.ManagementPolicy | undefined;
  /** Blob endpoint of the data account, e.g. `https://<account>.blob.core.windows.net/`. */
  readonly dataBlobEndpoint: pulumi.Output<string>;
  /** Blob endpoint of the host account. */
  readonly hostBlobEndpoint: pulumi.Output<string>;
  /** Static website URL, e.g. `https://<account>.z13.web.core.windows.net/`. */
  readonly websiteUrl: pulumi.Output<string>;
  /** The website's origin (no trailing slash): what CORS rules allow. */
  readonly webOrigin: pulumi.Output<string>;
  /** `<host blob endpoint><container>` of each deployment container, keyed by service. */
  readonly deploymentContainerUrls: Readonly<Record<string, pulumi.Output<string>>>;
  private readonly name: string;
  private readonly grants = new GrantsOnce();

  constructor(name: string, args: StorageArgs, opts?: pulumi.ComponentResourceOptions) {
    super("platform:azure:Storage", name, {}, opts);
    this.name = name;
    const softDelete = { enabled: true, days: args.softDeleteDays ?? 7 };
    const account = (suffix: string, accountName: pulumi.Input<string>, isPrivate: boolean) =>
      new storage.StorageAccount(
        ...transformed(args.transform?.account, `${name}-${suffix}`, {
          accountName,
          resourceGroupName: args.resourceGroupName,
          location: args.location,
          kind: storage.Kind.StorageV2,
          sku: { name: args.sku ?? "Standard_LRS" },
          accessTier: storage.AccessTier.Hot,
          enableHttpsTrafficOnly: true,
          minimumTlsVersion: storage.MinimumTlsVersion.TLS1_2,
          allowBlobPublicAccess: false,
          allowSharedKeyAccess: false,
          defaultToOAuthAuthentication: true,
          allowCrossTenantReplication: false,
          // Private: as Microsoft's VNET_ENABLED Flex quickstart locks its host storage (the
          // deployment container included; the platform writes packages over the app's network path).
          ...(isPrivate
            ? { publicNetworkAccess: storage.PublicNetworkAccess.Disabled, networkRuleSet: { defaultAction: storage.DefaultAction.Deny, bypass: storage.Bypass.None } }
            : { publicNetworkAccess: storage.PublicNetworkAccess.Enabled }),
        }, { parent: this }),
      );

    this.dataAccount = account("data", args.dataAccountName, false);
    this.hostAccount = account("host", args.hostAccountName, args.privateHostAccount ?? false);
    this.dataBlobEndpoint = this.dataAccount.primaryEndpoints.apply((e) => e.blob);
    this.hostBlobEndpoint = this.hostAccount.primaryEndpoints.apply((e) => e.blob);
    this.websiteUrl = this.dataAccount.primaryEndpoints.apply((e) => e.web ?? "");
    this.webOrigin = this.websiteUrl.apply((url) => url.replace(/\/+$/, ""));

    new storage.BlobServiceProperties(
      `${name}-data-blobs`,
      {
        accountName: this.dataAccount.name,
        resourceGroupName: args.resourceGroupName,
        blobServicesName: "default",
        deleteRetentionPolicy: softDelete,
        containerDeleteRetentionPolicy: softDelete,
        cors: {
          corsRules: Object.values(args.containers).some((c) => c.browserUploads)
            ? [
                {
                  // Browsers PUT files straight to Blob Storage with the SAS URLs a service hands out.
                  allowedOrigins: [this.webOrigin],
                  allowedMethods: ["PUT"],
                  allowedHeaders: ["content-type", "x-ms-*"],
                  exposedHeaders: ["etag", "x-ms-request-id"],
                  maxAgeInSeconds: args.corsMaxAgeSeconds ?? 3600,
                },
              ]
            : [],
        },
      },
      { parent: this },
    );
    new storage.BlobServiceProperties(
      `${name}-host-blobs`,
      {
        accountName: this.hostAccount.name,
        resourceGroupName: args.resourceGroupName,
        blobServicesName: "default",
        deleteRetentionPolicy: softDelete,
        containerDeleteRetentionPolicy: softDelete,
      },
      { parent: this },
    );

    const dataContainers: Record<string, storage.BlobContainer> = {};
    for (const containerName of Object.keys(args.containers)) {
      dataContainers[containerName] = this.blobContainer(args, `${name}-${containerName}`, containerName, this.dataAccount);
    }
    this.containers = dataContainers;
    const rules = lifecycleRules(args.containers);
    this.lifecycle =
      rules.length === 0
        ? undefined
        : new storage.ManagementPolicy(
            ...transformed(
              args.transform?.lifecycle,
              `${name}-data-lifecycle`,
              // Azure allows one policy per account, named "default"; it applies once a day.
              { accountName: this.dataAccount.name, resourceGroupName: args.resourceGroupName, managementPolicyName: "default", policy: { rules } },
              // The prefix names the container: it must exist first.
              { parent: this, dependsOn: Object.values(dataContainers) },
            ),
          );
    this.website = new storage.StorageAccountStaticWebsite(
      `${name}-website`,
      {
        accountName: this.dataAccount.name,
        resourceGroupName: args.resourceGroupName,
        indexDocument: "index.html",
        error404Document: "index.html",
      },
      { parent: this },
    );

    const containers: Record<string, storage.BlobContainer> = {};
    const urls: Record<string, pulumi.Output<string>> = {};
    for (const [service, containerName] of Object.entries(args.deploymentContainers)) {
      const container = this.blobContainer(args, `${name}-${service}-package`, containerName, this.hostAccount);
      // From the container's own name output, so the app (and its code deployment) depend on the
      // container existing: OneDeploy into a missing container fails with 404.
      containers[service] = container;
      urls[service] = pulumi.interpolate`${this.hostBlobEndpoint}${container.name}`;
    }
    this.deploymentContainers = containers;
    this.deploymentContainerUrls = urls;

    this.registerOutputs({
      dataAccountName: this.dataAccount.name,
      hostAccountName: this.hostAccount.name,
      websiteUrl: this.websiteUrl,
      deploymentContainerUrls: urls,
    });
  }

  private blobContainer(args: StorageArgs, resourceName: string, containerName: string, account: storage.StorageAccount): storage.BlobContainer {
    return new storage.BlobContainer(
      ...transformed(
        args.transform?.container,
        resourceName,
        { containerName, accountName: account.name, resourceGroupName: args.resourceGroupName, publicAccess: storage.PublicAccess.None },
        { parent: this },
      ),
    );
  }

  /** The `$web` container's resource ID (the static website resource creates the container). */
  get websiteContainerId(): pulumi.Output<string> {
    return pulumi.interpolate`${this.dataAccount.id}/blobServices/default/containers/${websiteContainerName}`;
  }

  /**
   * A data container linked for `read` (Storage Blob Data Reader on the container), `readWrite`
   * (Storage Blob Data Contributor on it), or `delegatedWrite`: handing out write-only
   * user-delegation SAS URLs for it, which needs Storage Blob Delegator on the account (user
   * delegation keys are an account-level operation, the narrowest scope Azure offers for it) and
   * Data Contributor on the container (a SAS cannot exceed its signer's own rights).
   */
  link(declaration: LinkDeclaration<"blobContainer">): Link {
    const container = this.containers[declaration.name];
    if (!container) throw new Error(`no container "${declaration.name}" in ${this.name}; declared: ${Object.keys(this.containers).join(", ")}`);
    const grant = (grantee: Grantee): pulumi.Resource[] => {
      switch (declaration.access) {
        case "read":
          return [assignRole(this, `${this.name}-${grantee.granteeName}-${declaration.name}-read`, container.id, "storageBlobDataReader", grantee)];
        case "readWrite":
          return [assignRole(this, `${this.name}-${grantee.granteeName}-${declaration.name}-write`, container.id, "storageBlobDataContributor", grantee)];
        case "delegatedWrite":
          return [
            this.grants.get(grantee, "delegator", () => assignRole(this, `${this.name}-${grantee.granteeName}-delegator`, this.dataAccount.id, "storageBlobDelegator", grantee)),
            assignRole(this, `${this.name}-${grantee.granteeName}-${declaration.name}-write`, container.id, "storageBlobDataContributor", grantee),
          ];
      }
    };
    return { declaration, family: "blob", endpoint: this.dataBlobEndpoint, grant };
  }

  /**
   * What the Functions host needs on its own storage (AzureWebJobsStorage, and reading its package
   * from the deployment container): Storage Blob Data Owner on the host account. HTTP and Service Bus
   * triggers use no queues or tables there, and a timer trigger only blobs (its schedule status and
   * the lease that runs one schedule per app; Microsoft's Flex timer quickstart grants the same), so
   * no queue/table roles.
   */
  grantFunctionsHost(grantee: Grantee) {
    return assignRole(this, `${this.name}-${grantee.granteeName}-host-owner`, this.hostAccount.id, "storageBlobDataOwner", grantee);
  }

  /** Upload access to the static website's `$web` container. */
  grantWebsiteWrite(grantee: Grantee) {
    // `$web` exists only once the static website is enabled.
    return assignRole(this, `${this.name}-${grantee.granteeName}-website-write`, this.websiteContainerId, "storageBlobDataContributor", grantee, [
      this.website,
    ]);
  }
}
