import * as pulumi from "@pulumi/pulumi";
import * as storage from "@pulumi/azure-native/storage";
import { assignRole, type Grantee } from "./grant";

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
   * Name of the container browsers upload into.
   * @default "uploads"
   */
  readonly uploadsContainerName?: string;
  /**
   * How long browsers may cache the CORS preflight answer of the uploads endpoint, in seconds.
   * @default 3600
   */
  readonly corsMaxAgeSeconds?: number;
}

/** The `$web` container the static website serves from. */
export const websiteContainerName = "$web";

/**
 * Two storage accounts, both keyless (shared-key access off), HTTPS-only, TLS 1.2, no public blob
 * access, with blob and container soft delete:
 *
 * - the data account holds what users touch: the `uploads` container (written directly by browsers
 *   through user-delegation SAS URLs, so its blob service allows CORS PUT from the web origin) and
 *   the static website (`$web`);
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
  readonly uploadsContainer: storage.BlobContainer;
  readonly website: storage.StorageAccountStaticWebsite;
  readonly deploymentContainers: Readonly<Record<string, storage.BlobContainer>>;
  /** Blob endpoint of the data account, e.g. `https://<account>.blob.core.windows.net/`. */
  readonly dataBlobEndpoint: pulumi.Output<string>;
  /** Blob endpoint of the host account. */
  readonly hostBlobEndpoint: pulumi.Output<string>;
  /** Static website URL, e.g. `https://<account>.z13.web.core.windows.net/`. */
  readonly websiteUrl: pulumi.Output<string>;
  /** The website's origin (no trailing slash): what CORS rules allow. */
  readonly webOrigin: pulumi.Output<string>;
  readonly uploadsContainerName: string;
  /** `<host blob endpoint><container>` of each deployment container, keyed by service. */
  readonly deploymentContainerUrls: Readonly<Record<string, pulumi.Output<string>>>;
  private readonly name: string;

  constructor(name: string, args: StorageArgs, opts?: pulumi.ComponentResourceOptions) {
    super("platform:azure:Storage", name, {}, opts);
    this.name = name;
    const softDelete = { enabled: true, days: args.softDeleteDays ?? 7 };
    const account = (suffix: string, accountName: pulumi.Input<string>) =>
      new storage.StorageAccount(
        `${name}-${suffix}`,
        {
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
          publicNetworkAccess: "Enabled",
        },
        { parent: this },
      );

    this.dataAccount = account("data", args.dataAccountName);
    this.hostAccount = account("host", args.hostAccountName);
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
          corsRules: [
            {
              // Browsers PUT the file straight to Blob Storage with the SAS URL the api hands out.
              allowedOrigins: [this.webOrigin],
              allowedMethods: ["PUT"],
              allowedHeaders: ["content-type", "x-ms-*"],
              exposedHeaders: ["etag", "x-ms-request-id"],
              maxAgeInSeconds: args.corsMaxAgeSeconds ?? 3600,
            },
          ],
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

    this.uploadsContainerName = args.uploadsContainerName ?? "uploads";
    this.uploadsContainer = new storage.BlobContainer(
      `${name}-uploads`,
      {
        containerName: this.uploadsContainerName,
        accountName: this.dataAccount.name,
        resourceGroupName: args.resourceGroupName,
        publicAccess: storage.PublicAccess.None,
      },
      { parent: this },
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
      const container = new storage.BlobContainer(
        `${name}-${service}-package`,
        {
          containerName,
          accountName: this.hostAccount.name,
          resourceGroupName: args.resourceGroupName,
          publicAccess: storage.PublicAccess.None,
        },
        { parent: this },
      );
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

  /** The `$web` container's resource ID (the static website resource creates the container). */
  get websiteContainerId(): pulumi.Output<string> {
    return pulumi.interpolate`${this.dataAccount.id}/blobServices/default/containers/${websiteContainerName}`;
  }

  /**
   * What a service needs to hand out write-only user-delegation SAS URLs for `uploads`: Storage Blob
   * Delegator on the account (user delegation keys are an account-level operation, the narrowest
   * scope Azure offers for it) and Storage Blob Data Contributor on the container (a SAS cannot
   * exceed its signer's own rights, so the signer needs write there).
   */
  grantUploadDelegation(grantee: Grantee) {
    return [
      assignRole(this, `${this.name}-${grantee.granteeName}-delegator`, this.dataAccount.id, "storageBlobDelegator", grantee),
      assignRole(this, `${this.name}-${grantee.granteeName}-uploads-write`, this.uploadsContainer.id, "storageBlobDataContributor", grantee),
    ];
  }

  /** Read access to the uploaded files (Storage Blob Data Reader on the `uploads` container). */
  grantUploadsRead(grantee: Grantee) {
    return assignRole(this, `${this.name}-${grantee.granteeName}-uploads-read`, this.uploadsContainer.id, "storageBlobDataReader", grantee);
  }

  /**
   * What the Functions host needs on its own storage (AzureWebJobsStorage, and reading its package
   * from the deployment container): Storage Blob Data Owner on the host account. HTTP and Service Bus
   * triggers use no queues or tables there, so no queue/table roles.
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
