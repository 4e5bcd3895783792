/**
 * The queue that carries jobs from the api to the agent, behind a thin interface so handlers are
 * tested without a broker. The Service Bus implementation sets messageId = job id: with duplicate
 * detection on the queue (Standard and Premium namespaces), a retried send cannot enqueue the job
 * twice. Nothing depends on it: a Basic namespace has no duplicate detection, and the agent runs a
 * job once however many copies of its message arrive (the job lease, agent/process-job.ts).
 */
import type { ServiceBusClient, ServiceBusSender } from "@azure/service-bus";
import type { JobMessage } from "./job.js";
import { jobAttributes, jobSpans } from "./job-telemetry.js";
import { injectTraceContext, SpanKind, withSpan } from "./telemetry.js";

export interface SendOptions {
  /**
   * The Service Bus message id. @default the job id. The stuck-job sweeper gives each re-send its
   * own, so duplicate detection does not drop a re-send of a message that was lost.
   */
  readonly messageId?: string;
}

export interface JobQueue {
  /** Enqueues the job for the agent; the W3C trace context of the active span travels along. */
  send(message: JobMessage, options?: SendOptions): Promise<void>;
  /** Cheap reachability probe for health checks (opens the link, sends nothing). */
  ping(): Promise<void>;
  close(): Promise<void>;
}

/** The subject every job message carries, so a consumer can tell it from anything else. */
export const JOB_MESSAGE_SUBJECT = "job";

export class ServiceBusJobQueue implements JobQueue {
  private sender: ServiceBusSender | undefined;

  constructor(
    private readonly client: ServiceBusClient,
    private readonly queueName: string,
  ) {}

  private senderFor(): ServiceBusSender {
    this.sender ??= this.client.createSender(this.queueName);
    return this.sender;
  }

  async send(message: JobMessage, options: SendOptions = {}): Promise<void> {
    await withSpan(
      jobSpans.enqueue(this.queueName),
      { kind: SpanKind.PRODUCER, attributes: { "messaging.system": "servicebus", "messaging.destination.name": this.queueName, [jobAttributes.id]: message.jobId } },
      async () => {
        await this.senderFor().sendMessages({
          messageId: options.messageId ?? message.jobId,
          contentType: "application/json",
          subject: JOB_MESSAGE_SUBJECT,
          body: message,
          // Injected inside the producer span, so the agent's span is its child.
          applicationProperties: injectTraceContext({}),
        });
      },
    );
  }

  async ping(): Promise<void> {
    // createMessageBatch attaches the sender link (authorisation included) without sending.
    await this.senderFor().createMessageBatch();
  }

  async close(): Promise<void> {
    await this.sender?.close();
    this.sender = undefined;
  }
}
