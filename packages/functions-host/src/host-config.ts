/**
 * The parts of host.json the local host honours, with the Functions host's defaults: the HTTP route
 * prefix and the Service Bus trigger's concurrency, prefetch, lock renewal and client retries.
 */
import { readFileSync } from "node:fs";
import { availableParallelism } from "node:os";

export interface HostConfig {
  /** `extensions.http.routePrefix`. @default "api" */
  routePrefix: string;
  serviceBus: {
    /** `extensions.serviceBus.maxConcurrentCalls`. @default 16 × processors (the v5 extension's default) */
    maxConcurrentCalls: number;
    /** `extensions.serviceBus.maxAutoLockRenewalDuration` in ms. @default 300000 (00:05:00) */
    maxAutoLockRenewalDurationMs: number;
    /** `extensions.serviceBus.autoCompleteMessages`. @default true */
    autoCompleteMessages: boolean;
    /**
     * `extensions.serviceBus.clientRetryOptions`: how the trigger's client retries and reconnects.
     * @default the extension's: exponential, 0.8 s first delay, 1 min at most, 3 retries, 1 min per try
     */
    clientRetry: { mode: "exponential" | "fixed"; delayMs: number; maxDelayMs: number; maxRetries: number; tryTimeoutMs: number };
  };
}

/** A .NET TimeSpan as host.json writes it: `[d.]hh:mm:ss[.fff]`. */
export function parseTimeSpan(value: string, what: string): number {
  const match = /^(?:(\d+)\.)?(\d{1,2}):(\d{1,2}):(\d{1,2})(?:\.(\d{1,7}))?$/.exec(value.trim());
  if (!match) throw new Error(`${what} must be a TimeSpan like "00:05:00", got ${JSON.stringify(value)}`);
  const [, days = "0", hours = "0", minutes = "0", seconds = "0", fraction = ""] = match;
  const ms = fraction ? Number(`0.${fraction}`) * 1000 : 0;
  return ((Number(days) * 24 + Number(hours)) * 60 + Number(minutes)) * 60_000 + Number(seconds) * 1000 + Math.round(ms);
}

function objectAt(value: unknown, what: string): Record<string, unknown> {
  if (value === undefined) return {};
  if (typeof value !== "object" || value === null || Array.isArray(value)) throw new Error(`${what} must be an object`);
  return value as Record<string, unknown>;
}

function integerAt(value: unknown, what: string, min: number): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < min) throw new Error(`${what} must be an integer of at least ${min}, got ${JSON.stringify(value)}`);
  return value;
}

/** Validates a parsed host.json and applies the host's defaults. */
export function hostConfigFrom(hostJson: unknown): HostConfig {
  const root = objectAt(hostJson, "host.json");
  const extensions = objectAt(root.extensions, "host.json extensions");
  const http = objectAt(extensions.http, "host.json extensions.http");
  const serviceBus = objectAt(extensions.serviceBus, "host.json extensions.serviceBus");
  const routePrefix = http.routePrefix ?? "api";
  if (typeof routePrefix !== "string") throw new Error("host.json extensions.http.routePrefix must be a string");
  const renewal = serviceBus.maxAutoLockRenewalDuration;
  if (renewal !== undefined && typeof renewal !== "string") throw new Error("host.json extensions.serviceBus.maxAutoLockRenewalDuration must be a TimeSpan string");
  const autoComplete = serviceBus.autoCompleteMessages;
  if (autoComplete !== undefined && typeof autoComplete !== "boolean") throw new Error("host.json extensions.serviceBus.autoCompleteMessages must be true or false");
  const retry = objectAt(serviceBus.clientRetryOptions, "host.json extensions.serviceBus.clientRetryOptions");
  const timeSpanAt = (key: string, fallbackMs: number) => {
    const value = retry[key];
    if (value === undefined) return fallbackMs;
    if (typeof value !== "string") throw new Error(`host.json extensions.serviceBus.clientRetryOptions.${key} must be a TimeSpan string`);
    return parseTimeSpan(value, `host.json extensions.serviceBus.clientRetryOptions.${key}`);
  };
  const mode = retry.mode ?? "exponential";
  if (mode !== "exponential" && mode !== "fixed") throw new Error('host.json extensions.serviceBus.clientRetryOptions.mode must be "exponential" or "fixed"');
  return {
    routePrefix: routePrefix.replace(/^\/+|\/+$/g, ""),
    serviceBus: {
      maxConcurrentCalls: integerAt(serviceBus.maxConcurrentCalls, "host.json extensions.serviceBus.maxConcurrentCalls", 1) ?? 16 * availableParallelism(),
      maxAutoLockRenewalDurationMs: renewal === undefined ? 300_000 : parseTimeSpan(renewal, "host.json extensions.serviceBus.maxAutoLockRenewalDuration"),
      autoCompleteMessages: autoComplete ?? true,
      clientRetry: {
        mode,
        delayMs: timeSpanAt("delay", 800),
        maxDelayMs: timeSpanAt("maxDelay", 60_000),
        maxRetries: integerAt(retry.maxRetries, "host.json extensions.serviceBus.clientRetryOptions.maxRetries", 0) ?? 3,
        tryTimeoutMs: timeSpanAt("tryTimeout", 60_000),
      },
    },
  };
}

export function readHostConfig(file: string): HostConfig {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(file, "utf8"));
  } catch (error) {
    throw new Error(`cannot read ${file}: ${(error as Error).message}`);
  }
  return hostConfigFrom(parsed);
}

/**
 * Resolves `%NAME%` app-setting expressions in a binding value, as the host does for queueName and
 * friends; a missing setting is an error that names it (the host refuses to index the function).
 */
export function resolveAppSettingExpressions(value: string, env: NodeJS.ProcessEnv, what: string): string {
  return value.replace(/%([^%]+)%/g, (_, name: string) => {
    const resolved = env[name];
    if (resolved === undefined || resolved === "") throw new Error(`${what}: "${value}" names the app setting ${name}, which is not set`);
    return resolved;
  });
}
