/**
 * Names the job pipeline's telemetry carries: span names and attributes. The function code sets
 * them, and the alert queries and the job-pipeline workbook (infrastructure/alert-rules.ts) read
 * them from here, so renaming a span cannot silently blind an alert.
 *
 * In Application Insights (workspace-based), consumer and server spans land in AppRequests,
 * producer spans in AppDependencies; attributes land in their `Properties`.
 */
export const jobSpans = {
  /** The api hands a job to the agent: one producer span per accepted job. */
  enqueue: (queue: string) => `${queue} send`,
  /** The agent processes one delivery of a job message (a consumer span). */
  process: "process job",
  /** The agent fails a job whose message was dead-lettered (a consumer span). */
  failDeadLettered: "fail dead-lettered job",
} as const;

export const jobAttributes = {
  id: "job.id",
  /** What the span did to the job: succeeded, failed, already-finished, lost-race, not-found. */
  outcome: "job.outcome",
  /** The machine-readable reason of a failed job (JobError.code). */
  errorCode: "job.error_code",
  deliveryCount: "messaging.servicebus.message.delivery_count",
  deadLetterReason: "servicebus.dead_letter_reason",
} as const;
