/**
 * The agent's function handlers: map a Service Bus trigger invocation to the domain functions
 * (process-job.ts, dead-letter.ts), with the trace continued from the message and every log line
 * tagged with the job id. Dependencies come from a factory so index.ts can create them lazily on the
 * first invocation and tests can hand in their own.
 */
import type { InvocationContext } from "@azure/functions";
import { JobMessage } from "../shared/job.js";
import { jobAttributes, jobSpans } from "../shared/job-telemetry.js";
import { messageBody, messageMetadata } from "../shared/service-bus-message.js";
import { extractTraceContext, SpanKind, withSpan } from "../shared/telemetry.js";
import { failDeadLetteredJob, type DeadLetterReason } from "./dead-letter.js";
import { processJob, type AgentDependencies, type Delivery, type JobLog } from "./process-job.js";

/** The message body as the host hands it over (parsed JSON, a JSON string, or raw bytes), if it is a job message. */
export function parseJobMessage(body: unknown): JobMessage | undefined {
  const parsed = JobMessage.safeParse(messageBody(body));
  return parsed.success ? parsed.data : undefined;
}

/** A log that prefixes every line with the job id, so every trace line of a job can be found. */
export function jobLog(context: InvocationContext, jobId: string): JobLog {
  const tag = `[job ${jobId}]`;
  return {
    info: (message) => context.info(`${tag} ${message}`),
    warn: (message) => context.warn(`${tag} ${message}`),
    error: (message) => context.error(`${tag} ${message}`),
  };
}

/**
 * The delivery's identity for the job lease: the sequence number, which the Service Bus trigger
 * always passes. Without one (a caller that is not the host) the message id stands in: every copy
 * of a job's message then counts as the same delivery, so a copy may run the job again (events
 * doubled) but can never leave it stranded.
 */
export function deliveryOf(metadata: ReturnType<typeof messageMetadata>, jobId: string): Delivery {
  if (metadata.sequenceNumber !== undefined) return { holder: String(metadata.sequenceNumber) };
  return { holder: `message ${metadata.messageId ?? jobId}` };
}

export interface AgentHandlers {
  processJobMessage(message: unknown, context: InvocationContext): Promise<void>;
  failDeadLetteredJobMessage(message: unknown, context: InvocationContext): Promise<void>;
}

/** First and longest wait before a failed delivery gives its message back. */
export const REDELIVERY_BACKOFF = { initialMs: 1_000, maxMs: 30_000 } as const;

/**
 * How long a failed delivery waits before it throws (and the host abandons the message). Service Bus
 * redelivers an abandoned message at once and the Functions Service Bus trigger has no retry
 * policy, so without a wait every delivery would be spent within a second and a short outage
 * (Cosmos throttling, a storage blip) would dead-letter, i.e. fail, the job. Exponential in the
 * 1-based delivery count, capped, with jitter (50-100%) so failed deliveries do not return in
 * lockstep; the host renews the message lock meanwhile (host.json maxAutoLockRenewalDuration).
 */
export function redeliveryDelayMs(deliveryCount: number | undefined, random: () => number = Math.random): number {
  const attempt = Math.max(1, Math.min(deliveryCount ?? 1, 16));
  const ceiling = Math.min(REDELIVERY_BACKOFF.maxMs, REDELIVERY_BACKOFF.initialMs * 2 ** (attempt - 1));
  return Math.round(ceiling * (0.5 + random() / 2));
}

export interface AgentHandlerOptions {
  /** @default redeliveryDelayMs */
  redeliveryDelayMs?: (deliveryCount: number | undefined) => number;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export function createAgentHandlers(dependencies: () => Promise<AgentDependencies>, options: AgentHandlerOptions = {}): AgentHandlers {
  const delayBeforeRedelivery = options.redeliveryDelayMs ?? redeliveryDelayMs;
  return {
    async processJobMessage(message, context) {
      const metadata = messageMetadata(context);
      const job = parseJobMessage(message);
      if (!job) {
        // No job can be identified, so none can be helped by a retry; the api never sends this.
        context.error(`message ${metadata.messageId ?? "(no id)"} is not a job message; discarded`);
        return;
      }
      const log = jobLog(context, job.jobId);
      const deps = await dependencies();
      await withSpan(
        jobSpans.process,
        {
          kind: SpanKind.CONSUMER,
          parent: extractTraceContext(metadata.applicationProperties),
          attributes: {
            [jobAttributes.id]: job.jobId,
            "messaging.system": "servicebus",
            "messaging.operation.type": "process",
            ...(metadata.messageId ? { "messaging.message.id": metadata.messageId } : {}),
            ...(metadata.deliveryCount !== undefined ? { [jobAttributes.deliveryCount]: metadata.deliveryCount } : {}),
          },
        },
        async (span) => {
          try {
            const outcome = await processJob(deps, job, deliveryOf(metadata, job.jobId), log);
            span.setAttribute(jobAttributes.outcome, outcome.outcome);
            if (outcome.outcome === "failed") span.setAttribute(jobAttributes.errorCode, outcome.error.code);
            if (outcome.outcome === "succeeded") {
              span.setAttribute("analysis.engine", outcome.engine);
              if (outcome.fallbackReason) span.setAttribute("analysis.fallback_reason", outcome.fallbackReason);
            }
          } catch (error) {
            // Thrown on purpose, after a backoff: the host abandons the message and Service Bus
            // redelivers it (or dead-letters it after maxDeliveryCount).
            const delayMs = delayBeforeRedelivery(metadata.deliveryCount);
            log.error(
              `attempt failed (delivery ${metadata.deliveryCount ?? "?"}), handing the message back for redelivery in ${delayMs} ms: ${(error as Error).message}`,
            );
            await sleep(delayMs);
            throw error;
          }
        },
      );
    },

    async failDeadLetteredJobMessage(message, context) {
      const metadata = messageMetadata(context);
      const job = parseJobMessage(message);
      if (!job) {
        context.error(`dead-lettered message ${metadata.messageId ?? "(no id)"} is not a job message; discarded`);
        return;
      }
      const log = jobLog(context, job.jobId);
      const deps = await dependencies();
      const reason: DeadLetterReason = {};
      if (metadata.deadLetterReason) reason.reason = metadata.deadLetterReason;
      if (metadata.deadLetterDescription) reason.description = metadata.deadLetterDescription;
      await withSpan(
        jobSpans.failDeadLettered,
        {
          kind: SpanKind.CONSUMER,
          parent: extractTraceContext(metadata.applicationProperties),
          attributes: { [jobAttributes.id]: job.jobId, "messaging.system": "servicebus", [jobAttributes.deadLetterReason]: reason.reason ?? "unknown" },
        },
        async (span) => {
          span.setAttribute(jobAttributes.outcome, await failDeadLetteredJob(deps, job, deliveryOf(metadata, job.jobId), reason, log));
        },
      );
    },
  };
}
