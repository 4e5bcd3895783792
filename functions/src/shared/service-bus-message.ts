/**
 * A Service Bus trigger's message as the Functions host hands it to a handler: the body (parsed
 * JSON, a JSON string, or raw bytes) and the trigger metadata (the host's names, camelCased by
 * @azure/functions). Free of @azure/functions at run time, so every queue-triggered service shares it.
 */
import type { InvocationContext } from "@azure/functions";

/** The body as a value: bytes and strings are parsed as JSON when they hold JSON, anything else is returned as it came. */
export function messageBody(body: unknown): unknown {
  let value = body;
  if (value instanceof Uint8Array) value = Buffer.from(value).toString("utf8");
  if (typeof value !== "string") return value;
  try {
    return JSON.parse(value) as unknown;
  } catch {
    return value;
  }
}

function record(value: unknown): Record<string, unknown> | undefined {
  return typeof value === "object" && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
}
const stringOf = (value: unknown) => (typeof value === "string" && value.length > 0 ? value : undefined);
const numberOf = (value: unknown) => (typeof value === "number" && Number.isFinite(value) ? value : typeof value === "string" && /^\d+$/.test(value) ? Number(value) : undefined);

/** What the trigger metadata tells about the message (the host's names, camelCased in Node). */
export function messageMetadata(context: InvocationContext) {
  const metadata = context.triggerMetadata ?? {};
  const applicationProperties = record(metadata.applicationProperties) ?? {};
  return {
    messageId: stringOf(metadata.messageId),
    deliveryCount: numberOf(metadata.deliveryCount),
    /** Service Bus's number for the message: the same on every redelivery, different for a copy sent again. */
    sequenceNumber: numberOf(metadata.sequenceNumber),
    applicationProperties,
    // Service Bus carries the dead-letter reason as application properties (DeadLetterReason,
    // DeadLetterErrorDescription). @azure/functions camelCases trigger metadata recursively, nested
    // keys included, so in a real invocation they arrive as deadLetterReason / ...; the PascalCase
    // names are read too for callers that pass the SDK's properties unchanged.
    deadLetterReason: stringOf(applicationProperties.deadLetterReason) ?? stringOf(applicationProperties.DeadLetterReason),
    deadLetterDescription:
      stringOf(applicationProperties.deadLetterErrorDescription) ?? stringOf(applicationProperties.DeadLetterErrorDescription),
  };
}
