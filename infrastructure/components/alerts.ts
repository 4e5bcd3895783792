import * as pulumi from "@pulumi/pulumi";
import * as monitor from "@pulumi/azure-native/monitor";
import * as applicationinsights from "@pulumi/azure-native/applicationinsights";
import * as managedidentity from "@pulumi/azure-native/managedidentity";
import type { LogAlertRule, MetricAlertRule, MetricTarget } from "../alert-rules";
import { deterministicGuid } from "../roles";
import { assignRole, type Grantee } from "./grant";
import { ReplicationWait } from "./replication-wait";
import { transformed, type Transform } from "./transform";

/** A log alert rule whose query may depend on values known only during the deployment (site names). */
export type LogAlert = Omit<LogAlertRule, "query"> & { readonly query: pulumi.Input<string> };

/** A shared Azure Monitor workbook. */
export interface WorkbookDefinition {
  /** Title shown in the portal; also what makes its GUID name. */
  readonly displayName: string;
  /** The workbook itself: JSON, Notebook/1.0. */
  readonly serializedData: pulumi.Input<string>;
}

/** An action group to create, e-mailing one address. */
export interface EmailActionGroup {
  /** Action group name. */
  readonly name: pulumi.Input<string>;
  /** Short name shown in notifications: at most 12 characters. */
  readonly shortName: pulumi.Input<string>;
  /** Where alerts are e-mailed (common alert schema). */
  readonly address: string;
}

export interface AlertsArgs {
  /** Resource group that holds the action group, the rules, their identity and the workbook. */
  readonly resourceGroupName: pulumi.Input<string>;
  /** Region of the log alert rules and the workbook (the workspace's region). */
  readonly location: pulumi.Input<string>;
  /**
   * Create an action group that e-mails this address, and send every alert to it.
   * @default undefined (none created)
   */
  readonly email?: EmailActionGroup;
  /**
   * Existing action groups (resource IDs) that also receive every alert.
   * @default []
   */
  readonly existingActionGroupIds?: readonly pulumi.Input<string>[];
  /** The Log Analytics workspace the log alerts query (workspace-based App Insights writes to it). */
  readonly workspaceId: pulumi.Input<string>;
  /** Name of the user-assigned identity the log alert rules query the workspace with. */
  readonly identityName: pulumi.Input<string>;
  /** The resource each metric alert target stands for. */
  readonly metricTargets: Readonly<Record<MetricTarget, pulumi.Input<string>>>;
  /** Metric alert rules (infrastructure/alert-rules.ts). */
  readonly metricAlerts: readonly MetricAlertRule[];
  /** Log alert rules (infrastructure/alert-rules.ts); a query may still wait for a resource name. */
  readonly logAlerts: readonly LogAlert[];
  /** The Azure name of a rule, from its key. */
  readonly ruleName: (key: string) => pulumi.Input<string>;
  /**
   * A workbook to create beside the rules (its definition is JSON, Notebook/1.0).
   * @default undefined (none)
   */
  readonly workbook?: WorkbookDefinition;
  /**
   * Changes to the arguments of the children (see transform.ts).
   * @default no changes
   */
  readonly transform?: {
    /** Changes to the log alerts' identity. @default unchanged */
    readonly identity?: Transform<managedidentity.UserAssignedIdentityArgs>;
    /** Changes to the action group. @default unchanged */
    readonly actionGroup?: Transform<monitor.ActionGroupArgs>;
    /** Changes to every metric alert rule. @default unchanged */
    readonly metricAlert?: Transform<monitor.MetricAlertArgs>;
    /** Changes to every log alert rule. @default unchanged */
    readonly logAlert?: Transform<monitor.ScheduledQueryRuleArgs>;
    /** Changes to the workbook. @default unchanged */
    readonly workbook?: Transform<applicationinsights.WorkbookArgs>;
  };
}

/**
 * Alerts on the platform and a workbook, all sent to one or more action groups:
 *
 * - metric alerts on platform metrics (Service Bus, Cosmos DB): no identity or data export needed;
 * - log alerts (scheduled query rules) on the Log Analytics workspace, each querying with a
 *   user-assigned identity that holds Reader on the workspace only. Without an identity a rule
 *   runs with the rights of whoever last deployed it (Azure Monitor's log alert docs), which breaks
 *   the day that principal loses access; keys are not involved either way (local auth is off on
 *   the workspace and Application Insights);
 * - a shared workbook with the job pipeline at a glance.
 */
export class Alerts extends pulumi.ComponentResource {
  readonly actionGroup?: monitor.ActionGroup;
  /** Every action group the rules notify. */
  readonly actionGroupIds: pulumi.Output<string>[];
  readonly identity: managedidentity.UserAssignedIdentity;
  readonly metricAlerts: Readonly<Record<string, monitor.MetricAlert>>;
  readonly logAlerts: Readonly<Record<string, monitor.ScheduledQueryRule>>;
  readonly workbook?: applicationinsights.Workbook;

  constructor(name: string, args: AlertsArgs, opts?: pulumi.ComponentResourceOptions) {
    super("platform:azure:Alerts", name, {}, opts);
    if (!args.email && (args.existingActionGroupIds ?? []).length === 0) {
      throw new Error(`${name}: alerts need an action group to go to: give an e-mail address or an existing action group`);
    }

    if (args.email) {
      this.actionGroup = new monitor.ActionGroup(
        ...transformed(
          args.transform?.actionGroup,
          `${name}-action-group`,
          {
            resourceGroupName: args.resourceGroupName,
            actionGroupName: args.email.name,
            location: "global",
            groupShortName: args.email.shortName,
            enabled: true,
            emailReceivers: [{ name: "email", emailAddress: args.email.address, useCommonAlertSchema: true }],
          },
          { parent: this },
        ),
      );
    }
    this.actionGroupIds = [...(this.actionGroup ? [this.actionGroup.id] : []), ...(args.existingActionGroupIds ?? []).map((id) => pulumi.output(id))];

    this.identity = new managedidentity.UserAssignedIdentity(
      ...transformed(
        args.transform?.identity,
        `${name}-identity`,
        { resourceName: args.identityName, resourceGroupName: args.resourceGroupName, location: args.location },
        { parent: this },
      ),
    );
    // A rule validates its query with its identity when it is created: Reader must be in place, and
    // the identity known to Entra, first.
    const replicated = new ReplicationWait(`${name}-entra-replication-wait`, { principalId: this.identity.principalId }, { parent: this });
    const grantee: Grantee = { granteeName: name, principalId: this.identity.principalId, principalType: "ServicePrincipal", replicated };
    const workspaceRead = assignRole(this, `${name}-workspace-read`, args.workspaceId, "reader", grantee);

    const metricAlerts: Record<string, monitor.MetricAlert> = {};
    for (const rule of args.metricAlerts) {
      metricAlerts[rule.key] = new monitor.MetricAlert(
        ...transformed(
          args.transform?.metricAlert,
          `${name}-${rule.key}`,
          {
            resourceGroupName: args.resourceGroupName,
            ruleName: args.ruleName(rule.key),
            location: "global",
            description: rule.description,
            severity: rule.severity,
            enabled: true,
            scopes: [args.metricTargets[rule.target]],
            evaluationFrequency: rule.evaluationFrequency,
            windowSize: rule.windowSize,
            autoMitigate: true,
            criteria: {
              odataType: "Microsoft.Azure.Monitor.SingleResourceMultipleMetricCriteria",
              allOf: [
                {
                  criterionType: "StaticThresholdCriterion",
                  name: rule.key,
                  metricNamespace: rule.metricNamespace,
                  metricName: rule.metricName,
                  timeAggregation: rule.timeAggregation,
                  operator: rule.operator,
                  threshold: rule.threshold,
                  dimensions: rule.dimensions.map((d) => ({ name: d.name, operator: "Include", values: [...d.values] })),
                },
              ],
            },
            actions: this.actionGroupIds.map((actionGroupId) => ({ actionGroupId })),
          },
          { parent: this },
        ),
      );
    }
    this.metricAlerts = metricAlerts;

    const logAlerts: Record<string, monitor.ScheduledQueryRule> = {};
    for (const rule of args.logAlerts) {
      logAlerts[rule.key] = new monitor.ScheduledQueryRule(
        ...transformed(
          args.transform?.logAlert,
          `${name}-${rule.key}`,
          {
            resourceGroupName: args.resourceGroupName,
            ruleName: args.ruleName(rule.key),
            location: args.location,
            kind: "LogAlert",
            description: rule.description,
            severity: rule.severity,
            enabled: true,
            scopes: [args.workspaceId],
            evaluationFrequency: rule.evaluationFrequency,
            windowSize: rule.windowSize,
            autoMitigate: true,
            identity: { type: monitor.IdentityType.UserAssigned, userAssignedIdentities: [this.identity.id] },
            criteria: {
              allOf: [
                {
                  query: rule.query,
                  timeAggregation: rule.timeAggregation,
                  ...(rule.metricMeasureColumn ? { metricMeasureColumn: rule.metricMeasureColumn } : {}),
                  operator: rule.operator,
                  threshold: rule.threshold,
                  failingPeriods: { numberOfEvaluationPeriods: 1, minFailingPeriodsToAlert: 1 },
                },
              ],
            },
            actions: { actionGroups: this.actionGroupIds },
          },
          { parent: this, dependsOn: [workspaceRead, replicated] },
        ),
      );
    }
    this.logAlerts = logAlerts;

    if (args.workbook) {
      const workbook = args.workbook;
      this.workbook = new applicationinsights.Workbook(
        ...transformed(
          args.transform?.workbook,
          `${name}-workbook`,
          {
            resourceGroupName: args.resourceGroupName,
            // Workbook names are GUIDs: one per resource group and title, stable across updates.
            resourceName: pulumi.output(args.resourceGroupName).apply((group) => deterministicGuid(group, "workbook", workbook.displayName)),
            location: args.location,
            kind: "shared",
            category: "workbook",
            displayName: workbook.displayName,
            serializedData: workbook.serializedData,
            version: "Notebook/1.0",
            sourceId: args.workspaceId,
          },
          { parent: this },
        ),
      );
    }

    this.registerOutputs({
      actionGroupIds: this.actionGroupIds,
      metricAlerts: Object.keys(metricAlerts),
      logAlerts: Object.keys(logAlerts),
      workbookId: this.workbook?.id,
    });
  }
}
