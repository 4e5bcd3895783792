/**
 * Dependency health: each dependency is probed with a bounded wait and reported only as
 * "ok" or "unreachable". Failure details go to the log, never into the answer (they can carry
 * endpoints, account names or SDK internals).
 */
export type DependencyName = "cosmos" | "blob" | "serviceBus" | "webPubSub";
export type DependencyStatus = "ok" | "unreachable";

export interface HealthReport {
  readonly status: "ok" | "degraded";
  readonly checks: Record<DependencyName, DependencyStatus>;
}

export type Probe = () => Promise<void>;

/** How long one probe may take before it counts as unreachable. */
export const PROBE_TIMEOUT_MS = 5_000;

class ProbeTimeout extends Error {
  constructor(ms: number) {
    super(`no answer within ${ms} ms`);
    this.name = "ProbeTimeout";
  }
}

async function withTimeout(probe: Probe, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([probe(), new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new ProbeTimeout(ms)), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

export async function checkHealth(
  probes: Record<DependencyName, Probe>,
  log: (dependency: DependencyName, error: unknown) => void,
  timeoutMs = PROBE_TIMEOUT_MS,
): Promise<HealthReport> {
  const names = Object.keys(probes) as DependencyName[];
  const outcomes = await Promise.all(
    names.map(async (name): Promise<DependencyStatus> => {
      try {
        await withTimeout(probes[name], timeoutMs);
        return "ok";
      } catch (error) {
        log(name, error);
        return "unreachable";
      }
    }),
  );
  const checks = Object.fromEntries(names.map((name, index) => [name, outcomes[index]])) as Record<DependencyName, DependencyStatus>;
  return { status: outcomes.every((outcome) => outcome === "ok") ? "ok" : "degraded", checks };
}
