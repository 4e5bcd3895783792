import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from "vitest";
import { SpanKind } from "@opentelemetry/api";
import { analyzeStream, analyzeText } from "../../functions/src/shared/analysis.js";
import {
  analyzeWithFallback,
  ExternalProcessor,
  type ExternalProcessorOptions,
  type ReopenableInput,
} from "../../functions/src/shared/external-processor.js";
import type { AnalysisResult } from "../../functions/src/shared/job.js";
import { formatTraceparent, withSpan } from "../../functions/src/shared/telemetry.js";
import { recordSpans } from "./telemetry-recorder.js";

/** What the fake external service does with one request. */
interface Answer {
  status?: number;
  json?: unknown;
  raw?: string;
  delayMs?: number;
}
interface Received {
  headers: IncomingHttpHeaders;
  body: string;
}

const externalResult: AnalysisResult = {
  characters: 1,
  words: 1,
  lines: 1,
  topWords: [{ word: "external", count: 1 }],
  readingTimeSeconds: 1,
};
const text = "alpha beta beta gamma\nsecond line";
const builtinResult = analyzeText(text);

let server: Server;
let url: string;
let answers: Answer[] = [];
let received: Received[] = [];
const recorder = recordSpans();

beforeAll(async () => {
  server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on("data", (chunk: Buffer) => chunks.push(chunk));
    request.on("end", () => {
      received.push({ headers: request.headers, body: Buffer.concat(chunks).toString("utf8") });
      const answer = answers.shift() ?? { json: externalResult };
      const send = () => {
        if (response.destroyed) return;
        response.writeHead(answer.status ?? 200, { "content-type": "application/json" });
        response.end(answer.raw ?? JSON.stringify(answer.json ?? {}));
      };
      if (answer.delayMs) setTimeout(send, answer.delayMs);
      else send();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/analyse`;
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
  await recorder.stop();
});
beforeEach(() => {
  answers = [];
  received = [];
});

/** The input as a re-openable stream in small chunks, counting how often it was opened. */
function inputOf(value: string): ReopenableInput & { opened: number } {
  const open = Object.assign(
    async function* () {
      open.opened += 1;
      const bytes = new TextEncoder().encode(value);
      for (let i = 0; i < bytes.length; i += 7) yield bytes.subarray(i, i + 7);
    },
    { opened: 0 },
  );
  return open;
}

const builtin = async (input: ReopenableInput) => analyzeStream(await input(), { maxBytes: 1024 });
const fast: Partial<ExternalProcessorOptions> = { timeoutMs: 1000, retries: 2, initialBackoffMs: 5, maxBackoffMs: 20, breakAfterFailures: 10 };
const processorWith = (options: Partial<ExternalProcessorOptions> = {}) => new ExternalProcessor({ url, maxBytes: 1024, ...fast, ...options });

describe("external processor", () => {
  it("streams the whole input with the job id and the trace context, and returns the service's result", async () => {
    const processor = processorWith();
    let traceparent = "";
    const outcome = await withSpan("process job", { kind: SpanKind.CONSUMER }, async (span) => {
      traceparent = formatTraceparent(span.spanContext());
      return analyzeWithFallback(processor, "job-1", inputOf(text), builtin);
    });
    expect(outcome).toEqual({ result: externalResult, engine: "external" });
    expect(received).toHaveLength(1);
    expect(received[0]?.body).toBe(text);
    expect(received[0]?.headers).toMatchObject({
      "content-type": "text/plain; charset=utf-8",
      "x-job-id": "job-1",
      traceparent,
    });
  });

  it("retries 5xx, 429 and 408 with backoff, re-sending the complete input each time", async () => {
    answers = [{ status: 503 }, { status: 429 }];
    const input = inputOf(text);
    const outcome = await analyzeWithFallback(processorWith(), "job-2", input, builtin);
    expect(outcome.engine).toBe("external");
    expect(received.map((request) => request.body)).toEqual([text, text, text]);
    expect(input.opened).toBe(3);

    received = [];
    answers = [{ status: 408 }];
    await expect(processorWith().analyze("job-2b", inputOf(text))).resolves.toEqual(externalResult);
    expect(received).toHaveLength(2);
  });

  it("falls back to the built-in analysis when the retries are exhausted", async () => {
    answers = [{ status: 500 }, { status: 502 }, { status: 503 }, { status: 503 }];
    const outcome = await analyzeWithFallback(processorWith(), "job-3", inputOf(text), builtin);
    expect(outcome).toMatchObject({ result: builtinResult, engine: "builtin", fallbackReason: "unavailable" });
    expect(received).toHaveLength(3); // 1 attempt + 2 retries, not more
  });

  it("gives up on a slow answer at the per-attempt timeout, retries, then falls back", async () => {
    // The service would answer after 20 s: only the 150 ms timeout can end each attempt.
    answers = [{ delayMs: 20_000 }, { delayMs: 20_000 }];
    const started = Date.now();
    const outcome = await analyzeWithFallback(processorWith({ timeoutMs: 150, retries: 1 }), "job-4", inputOf(text), builtin);
    const elapsed = Date.now() - started;
    expect(outcome).toMatchObject({ engine: "builtin", fallbackReason: "unavailable" });
    expect(received).toHaveLength(2);
    // Two attempts, each ended by its timeout: not before, and long before the answers were due.
    expect(elapsed).toBeGreaterThanOrEqual(2 * 150 - 2);
    expect(elapsed).toBeLessThan(20_000);
  });

  it("does not retry a rejection or a malformed answer, and falls back", async () => {
    for (const answer of [{ status: 422 }, { raw: "not json" }, { json: { characters: -1 } }, { status: 204 }]) {
      received = [];
      answers = [answer];
      const outcome = await analyzeWithFallback(processorWith(), "job-5", inputOf(text), builtin);
      expect(outcome).toMatchObject({ result: builtinResult, engine: "builtin", fallbackReason: "rejected" });
      expect(received).toHaveLength(1);
    }
  });

  it("falls back when the service cannot be reached at all", async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, "127.0.0.1", resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));
    const processor = new ExternalProcessor({ url: `http://127.0.0.1:${port}/`, maxBytes: 1024, ...fast });
    const outcome = await analyzeWithFallback(processor, "job-6", inputOf(text), builtin);
    expect(outcome).toMatchObject({ engine: "builtin", fallbackReason: "unavailable" });
    expect(outcome.fallbackDetail).toMatch(/unreachable/);
  });

  it("fails the job input, not the service, when the input passes the byte cap", async () => {
    const processor = processorWith({ breakAfterFailures: 1 });
    const rejection = await analyzeWithFallback(processor, "job-7", inputOf("x".repeat(5000)), builtin).catch((error: unknown) => error);
    expect(rejection).toMatchObject({ name: "InputRejected", code: "InputTooLarge" });
    expect(processor.circuitState).toBe("closed");
  });

  it("lets an error reading the input surface as itself: no retry, no fallback, no breaker count", async () => {
    class StorageDown extends Error {}
    const processor = processorWith({ breakAfterFailures: 1 });
    const failingOpen: ReopenableInput = () => {
      throw new StorageDown("blob service unavailable");
    };
    await expect(analyzeWithFallback(processor, "job-7b", failingOpen, builtin)).rejects.toBeInstanceOf(StorageDown);
    const failingMidStream: ReopenableInput = async function* () {
      yield new TextEncoder().encode("first chunk ");
      throw new StorageDown("connection reset while downloading");
    };
    await expect(analyzeWithFallback(processor, "job-7c", failingMidStream, builtin)).rejects.toBeInstanceOf(StorageDown);
    expect(processor.circuitState).toBe("closed");
  });

  it("uses only the built-in analysis when no external processor is configured", async () => {
    await expect(analyzeWithFallback(undefined, "job-8", inputOf(text), builtin)).resolves.toEqual({ result: builtinResult, engine: "builtin" });
    expect(received).toHaveLength(0);
  });
});

describe("circuit breaker", () => {
  it("opens after consecutive failures; while open no request is made and the built-in analysis answers", async () => {
    const processor = processorWith({ retries: 0, breakAfterFailures: 3, halfOpenAfterMs: 60_000 });
    answers = [{ status: 503 }, { status: 503 }, { status: 503 }];
    for (let i = 0; i < 3; i += 1) {
      expect((await analyzeWithFallback(processor, `job-${i}`, inputOf(text), builtin)).fallbackReason).toBe("unavailable");
    }
    expect(processor.circuitState).toBe("open");
    const input = inputOf(text);
    const outcome = await analyzeWithFallback(processor, "job-open", input, builtin);
    expect(outcome).toMatchObject({ result: builtinResult, engine: "builtin", fallbackReason: "circuit-open" });
    expect(received).toHaveLength(3); // nothing reached the service while open
    expect(input.opened).toBe(1); // only the built-in analysis read the input
  });

  it("an open breaker cuts the remaining retries short", async () => {
    const processor = processorWith({ retries: 5, breakAfterFailures: 2, halfOpenAfterMs: 60_000 });
    answers = Array.from({ length: 6 }, () => ({ status: 503 }));
    const outcome = await analyzeWithFallback(processor, "job-9", inputOf(text), builtin);
    expect(outcome.fallbackReason).toBe("circuit-open");
    expect(received).toHaveLength(2);
  });

  it("lets one trial request through after halfOpenAfter, and closes when it succeeds", async () => {
    // The breaker reads the clock (Date): only Date is faked, so HTTP and its timers stay real.
    vi.useFakeTimers({ toFake: ["Date"] });
    try {
      const processor = processorWith({ retries: 0, breakAfterFailures: 1, halfOpenAfterMs: 60_000 });
      answers = [{ status: 500 }];
      await analyzeWithFallback(processor, "job-10", inputOf(text), builtin);
      expect(processor.circuitState).toBe("open");
      vi.setSystemTime(Date.now() + 59_999);
      expect((await analyzeWithFallback(processor, "job-10b", inputOf(text), builtin)).fallbackReason).toBe("circuit-open");
      vi.setSystemTime(Date.now() + 1);
      const outcome = await analyzeWithFallback(processor, "job-11", inputOf(text), builtin);
      expect(outcome.engine).toBe("external");
      expect(processor.circuitState).toBe("closed");
      expect(received).toHaveLength(2); // the failure and the trial, nothing while open
    } finally {
      vi.useRealTimers();
    }
  });

  it("does not count rejections against the service", async () => {
    const processor = processorWith({ retries: 0, breakAfterFailures: 1 });
    answers = [{ status: 400 }, { raw: "{" }];
    await analyzeWithFallback(processor, "job-12", inputOf(text), builtin);
    await analyzeWithFallback(processor, "job-13", inputOf(text), builtin);
    expect(processor.circuitState).toBe("closed");
  });
});
