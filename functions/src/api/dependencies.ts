/** What the api's handlers need, as interfaces: production wiring in clients.ts, fakes in tests. */
import type { JobQueue } from "../shared/job-queue.js";
import type { JobStore } from "../shared/job-store.js";
import type { IdentityOptions } from "./identity.js";
import type { Quotas } from "./quotas.js";
import type { Realtime } from "./realtime.js";
import type { Uploads } from "./uploads.js";

export interface ApiDependencies {
  readonly jobs: JobStore;
  readonly queue: JobQueue;
  readonly uploads: Uploads;
  readonly realtime: Realtime;
  readonly quotas: Quotas;
  readonly identity: IdentityOptions;
  readonly uploadMaxBytes: number;
  readonly uploadUrlTtlSeconds: number;
  /** How long a job may sit queued (or running past its lease) before the sweeper re-sends it (requeue.ts). */
  readonly requeueAfterMs: number;
  /** Requests one instance serves at once; more get 503 (overload.ts). */
  readonly maxConcurrentRequests: number;
  /** How long a health probe may take. @default PROBE_TIMEOUT_MS (health.ts) */
  readonly healthProbeTimeoutMs?: number;
}

/** Resolved on first use (settings and SDK clients are created lazily, not at registration). */
export type DependencyProvider = () => Promise<ApiDependencies>;
