import * as pulumi from "@pulumi/pulumi";
import * as servicebus from "@pulumi/azure-native/servicebus";
import { assignRole, type Grantee } from "./grant";

export type ServiceBusTier = "Basic" | "Standard";

export interface MessagingArgs {
  /** Resource group that holds the namespace. */
  readonly resourceGroupName: pulumi.Input<string>;
  /** Azure region, e.g. `eastus`. */
  readonly location: pulumi.Input<string>;
  /** Namespace name: 6-50 characters, starts with a letter, globally unique. */
  readonly namespaceName: pulumi.Input<string>;
  /**
   * Namespace tier. Basic has no duplicate detection; Standard adds it (and a monthly base fee).
   * @default "Standard"
   */
  readonly tier?: ServiceBusTier;
  /**
   * Name of the queue that carries jobs from the api to the agent.
   * @default "jobs"
   */
  readonly jobsQueueName?: string;
  /**
   * Deliveries before a message goes to the dead-letter queue (where the agent marks the job failed).
   * @default 5
   */
  readonly maxDeliveryCount?: number;
  /**
   * How long a receiver holds a message before it is redelivered, in seconds (5-300).
   * @default 60
   */
  readonly lockDurationSeconds?: number;
  /**
   * Time to live of a job message, in hours; an expired message is dead-lettered, not dropped.
   * @default 24
   */
  readonly messageTtlHours?: number;
  /**
   * Window in which a second message with the same messageId (the job ID) is discarded (Standard only).
   * @default 10
   */
  readonly duplicateDetectionMinutes?: number;
}

/** The queue's properties for a tier: a pure decision, so it is tested directly. */
export function jobsQueueProperties(args: Pick<MessagingArgs, "tier" | "maxDeliveryCount" | "lockDurationSeconds" | "messageTtlHours" | "duplicateDetectionMinutes">) {
  const tier = args.tier ?? "Standard";
  const duplicateDetection = tier !== "Basic";
  return {
    maxDeliveryCount: args.maxDeliveryCount ?? 5,
    lockDuration: `PT${args.lockDurationSeconds ?? 60}S`,
    defaultMessageTimeToLive: `PT${args.messageTtlHours ?? 24}H`,
    deadLetteringOnMessageExpiration: true,
    requiresDuplicateDetection: duplicateDetection,
    ...(duplicateDetection ? { duplicateDetectionHistoryTimeWindow: `PT${args.duplicateDetectionMinutes ?? 10}M` } : {}),
    requiresSession: false,
    enablePartitioning: false,
  };
}

/**
 * A Service Bus namespace with local (SAS key) auth off and one `jobs` queue with dead-lettering.
 * Access is per queue: the api may only send, the agent may only receive.
 */
export class Messaging extends pulumi.ComponentResource {
  readonly namespace: servicebus.Namespace;
  readonly jobsQueue: servicebus.Queue;
  /** `<namespace>.servicebus.windows.net`: what identity-based clients connect to. */
  readonly fullyQualifiedNamespace: pulumi.Output<string>;
  readonly jobsQueueName: string;
  private readonly name: string;

  constructor(name: string, args: MessagingArgs, opts?: pulumi.ComponentResourceOptions) {
    super("platform:azure:Messaging", name, {}, opts);
    this.name = name;
    const tier = args.tier ?? "Standard";
    this.jobsQueueName = args.jobsQueueName ?? "jobs";
    this.namespace = new servicebus.Namespace(
      `${name}-namespace`,
      {
        namespaceName: args.namespaceName,
        resourceGroupName: args.resourceGroupName,
        location: args.location,
        sku: { name: tier, tier },
        disableLocalAuth: true,
        minimumTlsVersion: "1.2",
        publicNetworkAccess: "Enabled",
      },
      { parent: this },
    );
    this.fullyQualifiedNamespace = this.namespace.serviceBusEndpoint.apply((endpoint) => new URL(endpoint).hostname);
    this.jobsQueue = new servicebus.Queue(
      `${name}-jobs`,
      {
        queueName: this.jobsQueueName,
        namespaceName: this.namespace.name,
        resourceGroupName: args.resourceGroupName,
        ...jobsQueueProperties(args),
      },
      { parent: this },
    );
    this.registerOutputs({ fullyQualifiedNamespace: this.fullyQualifiedNamespace, jobsQueueName: this.jobsQueueName });
  }

  /** Send to the `jobs` queue (Azure Service Bus Data Sender on the queue). */
  grantSend(grantee: Grantee) {
    return assignRole(this, `${this.name}-${grantee.granteeName}-send`, this.jobsQueue.id, "serviceBusDataSender", grantee);
  }

  /**
   * Receive from the `jobs` queue and its dead-letter sub-queue (Azure Service Bus Data Receiver on
   * the queue; the sub-queue inherits the queue's assignments).
   */
  grantReceive(grantee: Grantee) {
    return assignRole(this, `${this.name}-${grantee.granteeName}-receive`, this.jobsQueue.id, "serviceBusDataReceiver", grantee);
  }
}
