/**
 * The optional external analysis service (EXTERNAL_PROCESSOR_URL), called through cockatiel
 * policies: a timeout per attempt, retries with exponential backoff, and a circuit breaker shared by
 * every invocation in this process.
 *
 * Wire contract: `POST <url>` with the input as the body (`text/plain; charset=utf-8`, streamed,
 * never buffered whole), headers `x-job-id` and the W3C `traceparent`; the service answers
 * `200 application/json` with an AnalysisResult. Each attempt re-opens the input, so a retry sends
 * the complete body again.
 *
 * DECISION: the external processor never fails a job and never makes Service Bus retry it. When
 * it cannot answer, the built-in analysis answers instead (see {@link analyzeWithFallback}):
 * - breaker OPEN: no request is made at all; the built-in analysis runs at once. Throwing instead
 *   would not help: Service Bus redelivers an abandoned message immediately (no backoff), so every
 *   delivery would meet the same open breaker and the job would be dead-lettered, i.e. failed,
 *   while the service is down. Users would lose jobs to an optional dependency.
 * - retries exhausted (timeouts, 5xx, 429, connection errors): same fallback, same reason.
 * - the service rejects the input (other 4xx) or answers with a malformed body: fallback, logged
 *   as a warning; these do not count against the breaker (the service is up, the exchange is wrong).
 * Errors reading the input (the byte cap's {@link InputRejected}, a missing blob, a storage error)
 * propagate as they are: they are not the service's fault, and the agent decides (a bad input fails
 * the job, a storage error is retried by Service Bus).
 * Both engines produce the same AnalysisResult, so a fallback is invisible in the result; it is
 * visible in the logs and on the span (`analysis.engine`, `analysis.fallback_reason`).
 */
import {
  BrokenCircuitError,
  circuitBreaker,
  CircuitBreakerPolicy,
  CircuitState,
  ConsecutiveBreaker,
  ExponentialBackoff,
  handleWhen,
  retry,
  TaskCancelledError,
  timeout,
  TimeoutStrategy,
  wrap,
  type IPolicy,
} from "cockatiel";
import { AnalysisResult } from "./job.js";
import { InputRejected } from "./analysis.js";
import { traceContextProperties } from "./telemetry.js";

/** An input that can be read more than once: each call starts a fresh read from the beginning. */
export type ReopenableInput = () => Promise<AsyncIterable<Uint8Array>> | AsyncIterable<Uint8Array>;

export interface ExternalProcessorOptions {
  /** The service's endpoint (EXTERNAL_PROCESSOR_URL). */
  url: string;
  /** Largest input sent, in bytes; the same cap the built-in analysis applies. */
  maxBytes: number;
  /** Per attempt. @default 10000 */
  timeoutMs?: number;
  /** Retries after the first attempt. @default 2 */
  retries?: number;
  /** First backoff delay; later ones grow exponentially (decorrelated jitter). @default 200 */
  initialBackoffMs?: number;
  /** @default 2000 */
  maxBackoffMs?: number;
  /** Consecutive failed attempts that open the breaker. @default 5 */
  breakAfterFailures?: number;
  /** How long the breaker stays open before one trial request (half-open). @default 30000 */
  halfOpenAfterMs?: number;
}

/** The service answered, but not with a result: a 4xx other than 408/429, or a malformed body. */
export class ExternalProcessorRejected extends Error {
  constructor(
    message: string,
    readonly status?: number,
  ) {
    super(message);
    this.name = "ExternalProcessorRejected";
  }
}

/** A failure worth retrying: 5xx, 408, 429, a timeout, or a connection error. */
export class ExternalProcessorTransientFailure extends Error {
  constructor(
    message: string,
    readonly status?: number,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = "ExternalProcessorTransientFailure";
  }
}

// Not cockatiel's isTaskCancelledError: in 3.2.1 it tests for `isBulkheadRejectedError` and so
// never matches a timeout (tests/functions/external-processor.test.ts catches a regression).
const isTimeout = (error: unknown): error is TaskCancelledError => error instanceof TaskCancelledError;
const isTransient = (error: Error) => error instanceof ExternalProcessorTransientFailure || isTimeout(error);

/**
 * Marks an error raised while reading the input (not by the service), so that it surfaces as itself
 * (a missing blob, a storage hiccup, the byte cap) rather than as an outage of the external
 * processor: it must neither count against the breaker nor trigger a fallback.
 */
class InputReadFailure extends Error {
  constructor(readonly original: unknown) {
    super("reading the input failed", { cause: original });
    this.name = "InputReadFailure";
  }
}

function findInputReadFailure(error: unknown): InputReadFailure | undefined {
  for (let current = error, depth = 0; current instanceof Error && depth < 5; current = current.cause, depth += 1) {
    if (current instanceof InputReadFailure) return current;
  }
  return undefined;
}

/** Streams `source`, failing with InputRejected once it passes `maxBytes`. */
async function* capped(source: AsyncIterable<Uint8Array>, maxBytes: number): AsyncGenerator<Uint8Array> {
  let bytes = 0;
  const iterator = source[Symbol.asyncIterator]();
  try {
    for (;;) {
      let next: IteratorResult<Uint8Array>;
      try {
        next = await iterator.next();
      } catch (error) {
        throw new InputReadFailure(error);
      }
      if (next.done) return;
      bytes += next.value.byteLength;
      if (bytes > maxBytes) throw new InputReadFailure(new InputRejected("InputTooLarge", `the input is larger than the limit of ${maxBytes} bytes`));
      yield next.value;
    }
  } finally {
    await iterator.return?.();
  }
}

function requestBody(source: AsyncIterable<Uint8Array>, maxBytes: number): ReadableStream<Uint8Array> {
  const iterator = capped(source, maxBytes);
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        const next = await iterator.next();
        if (next.done) controller.close();
        else controller.enqueue(next.value);
      } catch (error) {
        controller.error(error);
      }
    },
    async cancel() {
      await iterator.return(undefined);
    },
  });
}

export class ExternalProcessor {
  private readonly policy: IPolicy;
  private readonly breaker: CircuitBreakerPolicy;
  private readonly options: Required<ExternalProcessorOptions>;

  constructor(options: ExternalProcessorOptions) {
    this.options = {
      timeoutMs: 10_000,
      retries: 2,
      initialBackoffMs: 200,
      maxBackoffMs: 2_000,
      breakAfterFailures: 5,
      halfOpenAfterMs: 30_000,
      ...options,
    };
    const o = this.options;
    // Order matters: retry outermost, so each attempt passes the breaker (an open breaker stops the
    // remaining retries at once) and gets its own timeout.
    const retryPolicy = retry(handleWhen(isTransient), {
      maxAttempts: o.retries,
      backoff: new ExponentialBackoff({ initialDelay: o.initialBackoffMs, maxDelay: o.maxBackoffMs }),
    });
    this.breaker = circuitBreaker(handleWhen(isTransient), {
      halfOpenAfter: o.halfOpenAfterMs,
      breaker: new ConsecutiveBreaker(o.breakAfterFailures),
    });
    // Aggressive: the attempt fails at the deadline even if the server is still trickling a body;
    // the signal also aborts the request so the socket is released.
    const timeoutPolicy = timeout(o.timeoutMs, TimeoutStrategy.Aggressive);
    this.policy = wrap(retryPolicy, this.breaker, timeoutPolicy);
  }

  /** closed | open | half-open | isolated: for logs, health and tests. */
  get circuitState(): "closed" | "open" | "half-open" | "isolated" {
    const names = { [CircuitState.Closed]: "closed", [CircuitState.Open]: "open", [CircuitState.HalfOpen]: "half-open", [CircuitState.Isolated]: "isolated" } as const;
    return names[this.breaker.state];
  }

  /**
   * The external analysis of the input. Throws BrokenCircuitError when the breaker is open,
   * {@link ExternalProcessorTransientFailure} / TaskCancelledError when the retries are exhausted,
   * {@link ExternalProcessorRejected}, or the input's own error (e.g. {@link InputRejected} past the cap).
   */
  async analyze(jobId: string, input: ReopenableInput): Promise<AnalysisResult> {
    return this.policy.execute(({ signal }) => this.attempt(jobId, input, signal));
  }

  private async attempt(jobId: string, input: ReopenableInput, signal: AbortSignal): Promise<AnalysisResult> {
    const headers: Record<string, string> = {
      "content-type": "text/plain; charset=utf-8",
      accept: "application/json",
      "x-job-id": jobId,
      ...traceContextProperties(),
    };
    // Opening the input is not the service's business: its errors propagate as they are.
    const body = requestBody(await input(), this.options.maxBytes);
    let response: Response;
    try {
      response = await fetch(this.options.url, { method: "POST", headers, body, signal, duplex: "half" } as RequestInit);
    } catch (error) {
      const inputFailure = findInputReadFailure(error);
      if (inputFailure) throw inputFailure.original;
      if (signal.aborted) throw error; // timed out: the timeout policy already reports TaskCancelledError
      throw new ExternalProcessorTransientFailure(`external processor unreachable: ${(error as Error).message}`, undefined, { cause: error });
    }
    const status = response.status;
    if (status >= 500 || status === 408 || status === 429) {
      await response.body?.cancel();
      throw new ExternalProcessorTransientFailure(`external processor answered ${status}`, status);
    }
    if (status !== 200) {
      await response.body?.cancel();
      throw new ExternalProcessorRejected(`external processor answered ${status}`, status);
    }
    let parsed: unknown;
    try {
      parsed = await response.json();
    } catch (error) {
      if (signal.aborted) throw error;
      throw new ExternalProcessorRejected("external processor answered with a body that is not JSON", status);
    }
    const result = AnalysisResult.safeParse(parsed);
    if (!result.success) {
      throw new ExternalProcessorRejected(`external processor answered with an invalid result: ${result.error.issues[0]?.message ?? "invalid"}`, status);
    }
    return result.data;
  }
}

export type AnalysisEngine = "external" | "builtin";
export interface EngineResult {
  result: AnalysisResult;
  engine: AnalysisEngine;
  /** Why the built-in analysis answered although an external processor is configured. */
  fallbackReason?: "circuit-open" | "unavailable" | "rejected";
  fallbackDetail?: string;
}

/**
 * The analysis of one input: the external processor's when configured and able to answer, the
 * built-in one otherwise (the decision and its reasons are documented at the top of this module).
 */
export async function analyzeWithFallback(
  processor: ExternalProcessor | undefined,
  jobId: string,
  input: ReopenableInput,
  builtin: (input: ReopenableInput) => Promise<AnalysisResult>,
): Promise<EngineResult> {
  if (!processor) return { result: await builtin(input), engine: "builtin" };
  let fallbackReason: NonNullable<EngineResult["fallbackReason"]>;
  let fallbackDetail: string;
  try {
    return { result: await processor.analyze(jobId, input), engine: "external" };
  } catch (error) {
    if (error instanceof BrokenCircuitError) fallbackReason = "circuit-open";
    else if (error instanceof ExternalProcessorRejected) fallbackReason = "rejected";
    else if (error instanceof ExternalProcessorTransientFailure || isTimeout(error)) fallbackReason = "unavailable";
    else throw error; // the input's own error, or a bug: not an outage of the service
    fallbackDetail = (error as Error).message;
  }
  return { result: await builtin(input), engine: "builtin", fallbackReason, fallbackDetail };
}
