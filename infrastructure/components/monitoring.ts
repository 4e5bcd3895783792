import * as pulumi from "@pulumi/pulumi";
import * as operationalinsights from "@pulumi/azure-native/operationalinsights";
import * as applicationinsights from "@pulumi/azure-native/applicationinsights";
import { assignRole, type Grantee } from "./grant";

export interface MonitoringArgs {
  /** Resource group that holds the workspace and the Application Insights component. */
  readonly resourceGroupName: pulumi.Input<string>;
  /** Azure region, e.g. `eastus`. */
  readonly location: pulumi.Input<string>;
  /** Log Analytics workspace name (4-63 characters). */
  readonly workspaceName: pulumi.Input<string>;
  /** Application Insights component name. */
  readonly applicationInsightsName: pulumi.Input<string>;
  /**
   * Days the workspace keeps logs. 30 is the shortest Azure allows on PerGB2018 and the cheapest;
   * the first 31 days are included in the ingestion price.
   * @default 30
   */
  readonly retentionInDays?: number;
}

/**
 * Log Analytics + workspace-based Application Insights with local (instrumentation-key) auth off:
 * telemetry is accepted only with an Entra token, so the connection string the apps get is an
 * endpoint, not a credential.
 */
export class Monitoring extends pulumi.ComponentResource {
  readonly workspace: operationalinsights.Workspace;
  readonly applicationInsights: applicationinsights.Component;
  /** Ingestion endpoint and component ID; useless without an Entra token (local auth is disabled). */
  readonly connectionString: pulumi.Output<string>;
  private readonly name: string;

  constructor(name: string, args: MonitoringArgs, opts?: pulumi.ComponentResourceOptions) {
    super("platform:azure:Monitoring", name, {}, opts);
    this.name = name;
    this.workspace = new operationalinsights.Workspace(
      `${name}-logs`,
      {
        workspaceName: args.workspaceName,
        resourceGroupName: args.resourceGroupName,
        location: args.location,
        sku: { name: "PerGB2018" },
        retentionInDays: args.retentionInDays ?? 30,
        features: { disableLocalAuth: true },
      },
      { parent: this },
    );
    this.applicationInsights = new applicationinsights.Component(
      `${name}-insights`,
      {
        resourceName: args.applicationInsightsName,
        resourceGroupName: args.resourceGroupName,
        location: args.location,
        kind: "web",
        applicationType: "web",
        workspaceResourceId: this.workspace.id,
        ingestionMode: "LogAnalytics",
        disableLocalAuth: true,
      },
      { parent: this },
    );
    this.connectionString = this.applicationInsights.connectionString;
    this.registerOutputs({ connectionString: this.connectionString, workspaceId: this.workspace.id });
  }

  /** Lets the grantee send telemetry with its Entra identity (Monitoring Metrics Publisher on the component). */
  grantPublish(grantee: Grantee) {
    return assignRole(this, `${this.name}-${grantee.granteeName}-publish`, this.applicationInsights.id, "monitoringMetricsPublisher", grantee);
  }
}
