/**
 * The parts of host.json the local host honours, with the Functions host's defaults: the HTTP route
 * prefix and the Service Bus trigger's concurrency, prefetch, lock renewal and client retries; app
 * settings named `AzureFunctionsJobHost__<path>` override host.json values as they do in Azure; and
 * the request body limit (`FUNCTIONS_REQUEST_BODY_SIZE_LIMIT`).
 */
import { readFileSync } from "node:fs";
import { availableParallelism } from "node:os";

export interface HostConfig {
  /** `extensions.http.routePrefix`. @default "api" */
  routePrefix: string;
  /** The app setting FUNCTIONS_REQUEST_BODY_SIZE_LIMIT, in bytes. @default 104857600 (the host's 100 MB) */
  maxRequestBytes: number;
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

/** The Functions host's request size limit when FUNCTIONS_REQUEST_BODY_SIZE_LIMIT is not set (100 MB). */
export const DEFAULT_MAX_REQUEST_BYTES = 100 * 1024 * 1024;
const OVERRIDE_PREFIX = "AzureFunctionsJobHost__";

/**
 * host.json with the `AzureFunctionsJobHost__a__b` app settings applied: each sets the value at
 * path a.b (case-insensitive, as the host's configuration is), a number or true/false where the
 * text is one, as the host's configuration binder reads it.
 */
export function withAppSettingOverrides(hostJson: unknown, env: NodeJS.ProcessEnv): unknown {
  const overrides = Object.entries(env).filter(([name, value]) => name.startsWith(OVERRIDE_PREFIX) && value !== undefined);
  if (overrides.length === 0) return hostJson;
  const root = structuredClone(objectAt(hostJson, "host.json"));
  for (const [name, raw] of overrides) {
    const path = name.slice(OVERRIDE_PREFIX.length).split("__");
    let node: Record<string, unknown> = root;
    for (const [index, segment] of path.entries()) {
      // host.json's own spelling when the key exists; else host.json's convention, camelCase.
      const key = Object.keys(node).find((k) => k.toLowerCase() === segment.toLowerCase()) ?? segment.charAt(0).toLowerCase() + segment.slice(1);
      if (index === path.length - 1) {
        node[key] = /^-?\d+$/.test(raw!) ? Number(raw) : raw === "true" || raw === "false" ? raw === "true" : raw;
      } else {
        const next = node[key];
        node = typeof next === "object" && next !== null && !Array.isArray(next) ? (next as Record<string, unknown>) : (node[key] = {});
      }
    }
  }
  return root;
}

/** Validates a parsed host.json (with the app settings' overrides) and applies the host's defaults. */
export function hostConfigFrom(hostJson: unknown, env: NodeJS.ProcessEnv = {}): HostConfig {
  const root = objectAt(withAppSettingOverrides(hostJson, env), "host.json");
  const extensions = objectAt(root.extensions, "host.json extensions");
  const http = objectAt(extensions.http, "host.json extensions.http");
  const serviceBus = objectAt(extensions.serviceBus, "host.json extensions.serviceBus");
  const routePrefix = http.routePrefix ?? "api";
  if (typeof routePrefix !== "string") throw new Error("host.json extensions.http.routePrefix must be a string");
  const renewal = serviceBus.maxAutoLockRenewalDuration;
  if (renewal !== undefined && typeof renewal !== "string") throw new Error("host.json extensions.serviceBus.maxAutoLockRenewalDuration must be a TimeSpan string");
  const autoComplete = serviceBus.autoCompleteMessages;
  if (autoComplete !== undefined && typeof autoComplete !== "boolean") throw new Error("host.json extensions.serviceBus.autoCompleteMessages must be true or false");
  const bodyLimit = env.FUNCTIONS_REQUEST_BODY_SIZE_LIMIT;
  if (bodyLimit !== undefined && !/^\d+$/.test(bodyLimit)) throw new Error(`the app setting FUNCTIONS_REQUEST_BODY_SIZE_LIMIT must be a number of bytes, got ${JSON.stringify(bodyLimit)}`);
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
    maxRequestBytes: bodyLimit === undefined ? DEFAULT_MAX_REQUEST_BYTES : Number(bodyLimit),
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

export function readHostConfig(file: string, env: NodeJS.ProcessEnv = {}): HostConfig {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(file, "utf8"));
  } catch (error) {
    throw new Error(`cannot read ${file}: ${(error as Error).message}`);
  }
  return hostConfigFrom(parsed, env);
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
