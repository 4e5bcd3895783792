import * as pulumi from "@pulumi/pulumi";
import * as servicebus from "@pulumi/azure-native/servicebus";
import type { LinkDeclaration } from "../../functions/src/platform/links";
import { queueOnTier, resolveQueue, type QueueOptions, type ResolvedQueue, type ServiceBusTier } from "../../functions/src/platform/resource-kinds";
import { assignRole, type Grantee } from "./grant";
import type { Link } from "./link";
import { transformed, type Transform } from "./transform";

export type { ServiceBusTier };

export interface MessagingArgs {
  /** Resource group that holds the namespace. */
  readonly resourceGroupName: pulumi.Input<string>;
  /** Azure region, e.g. `eastus`. */
  readonly location: pulumi.Input<string>;
  /** Namespace name: 6-50 characters, starts with a letter, globally unique. */
  readonly namespaceName: pulumi.Input<string>;
  /**
   * Namespace tier. Basic has no duplicate detection; Standard adds it (and a monthly base fee);
   * Premium runs on dedicated messaging units and alone offers private endpoints.
   * @default "Standard"
   */
  readonly tier?: ServiceBusTier;
  /**
   * Premium messaging units (1, 2, 4, 8 or 16); ignored on the other tiers.
   * @default 1
   */
  readonly messagingUnits?: number;
  /**
   * Accept connections from public networks. Off with private networking (Premium only): the apps
   * reach the namespace through a private endpoint.
   * @default true
   */
  readonly publicNetworkAccess?: boolean;
  /**
   * The queues, by name, each with dead-lettering (options left out take the defaults of
   * functions/src/platform/resource-kinds.ts).
   * @example { jobs: { maxDeliveryCount: 5 } }
   */
  readonly queues: Readonly<Record<string, QueueOptions>>;
  /**
   * Changes to the arguments of the namespace and of each queue (see transform.ts).
   * @default no changes
   */
  readonly transform?: {
    /** Changes to the namespace. @default unchanged */
    readonly namespace?: Transform<servicebus.NamespaceArgs>;
    /** Changes to every queue. @default unchanged */
    readonly queue?: Transform<servicebus.QueueArgs>;
  };
}

/**
 * A queue's ARM properties on a tier (queueOnTier decides what the tier allows): a pure decision,
 * tested directly.
 */
export function queueProperties(queue: ResolvedQueue, tier: ServiceBusTier = "Standard", queueName = "queue") {
  const { duplicateDetection } = queueOnTier(queueName, queue, tier);
  return {
    maxDeliveryCount: queue.maxDeliveryCount,
    lockDuration: `PT${queue.lockDurationSeconds}S`,
    defaultMessageTimeToLive: `PT${queue.messageTtlHours}H`,
    deadLetteringOnMessageExpiration: true,
    requiresDuplicateDetection: duplicateDetection,
    ...(duplicateDetection ? { duplicateDetectionHistoryTimeWindow: `PT${queue.duplicateDetectionMinutes}M` } : {}),
    requiresSession: queue.sessions,
    enablePartitioning: false,
  };
}

/**
 * A Service Bus namespace with local (SAS key) auth off and the app's queues, each with a
 * dead-letter sub-queue. Access is per queue and per direction: a link for `send` grants Azure
 * Service Bus Data Sender on that queue only, `receive` grants Data Receiver (which covers its
 * dead-letter sub-queue).
 */
export class Messaging extends pulumi.ComponentResource {
  readonly namespace: servicebus.Namespace;
  readonly queues: Readonly<Record<string, servicebus.Queue>>;
  /** `<namespace>.servicebus.windows.net`: what identity-based clients connect to. */
  readonly fullyQualifiedNamespace: pulumi.Output<string>;
  private readonly name: string;

  constructor(name: string, args: MessagingArgs, opts?: pulumi.ComponentResourceOptions) {
    super("platform:azure:Messaging", name, {}, opts);
    this.name = name;
    const tier = args.tier ?? "Standard";
    this.namespace = new servicebus.Namespace(
      ...transformed(
        args.transform?.namespace,
        `${name}-namespace`,
        {
          namespaceName: args.namespaceName,
          resourceGroupName: args.resourceGroupName,
          location: args.location,
          sku: { name: tier, tier, ...(tier === "Premium" ? { capacity: args.messagingUnits ?? 1 } : {}) },
          disableLocalAuth: true,
          minimumTlsVersion: "1.2",
          // Zone redundancy needs no property: Azure makes every namespace zone-redundant in a
          // region with availability zones (the zoneRedundant property is deprecated).
          publicNetworkAccess: (args.publicNetworkAccess ?? true) ? "Enabled" : "Disabled",
        },
        { parent: this },
      ),
    );
    this.fullyQualifiedNamespace = this.namespace.serviceBusEndpoint.apply((endpoint) => new URL(endpoint).hostname);
    const queues: Record<string, servicebus.Queue> = {};
    for (const [queueName, options] of Object.entries(args.queues)) {
      queues[queueName] = new servicebus.Queue(
        ...transformed(
          args.transform?.queue,
          `${name}-${queueName}`,
          {
            queueName,
            namespaceName: this.namespace.name,
            resourceGroupName: args.resourceGroupName,
            ...queueProperties(resolveQueue(options), tier, queueName),
          },
          { parent: this },
        ),
      );
    }
    this.queues = queues;
    this.registerOutputs({ fullyQualifiedNamespace: this.fullyQualifiedNamespace, queues: Object.keys(queues) });
  }

  /** A queue linked for `send` (Data Sender) or `receive` (Data Receiver, dead-letter sub-queue included). */
  link(declaration: LinkDeclaration<"queue">): Link {
    const queue = this.queues[declaration.name];
    if (!queue) throw new Error(`no queue "${declaration.name}" in ${this.name}; declared: ${Object.keys(this.queues).join(", ")}`);
    const role = declaration.access === "send" ? "serviceBusDataSender" : "serviceBusDataReceiver";
    return {
      declaration,
      family: "serviceBus",
      endpoint: this.fullyQualifiedNamespace,
      grant: (grantee: Grantee) => [
        assignRole(this, `${this.name}-${grantee.granteeName}-${declaration.name}-${declaration.access}`, queue.id, role, grantee),
      ],
    };
  }
}
