/**
 * How many jobs one agent instance runs at once, derived from the instance's memory. Pure and free
 * of imports: the service registry hands the result to the Functions host as
 * `AzureFunctionsJobHost__extensions__serviceBus__maxConcurrentCalls` (it overrides host.json),
 * in Azure and on the local platform alike.
 *
 * The numbers (measured on 2 shared cores):
 * - a job's memory is bounded by the analysis (shared/analysis.ts: at most 50,000 tracked words,
 *   one download chunk at a time). Eight concurrent jobs of the worst input within the 10 MiB
 *   limit (1.9 million distinct words) raised the local agent process from 140 to a peak of 403 MB
 *   (`npm run bench:abuse-memory`: downloads, SDKs and garbage not yet collected included), about
 *   33 MB a job; the analysis alone, 19 MB a job. Before the bound the same eight took the agent
 *   from 149 to 1,066 MB. {@link JOB_MEMORY_BUDGET_MB} allows for the 33 with margin.
 * - {@link INSTANCE_RESERVED_MB} is what an instance holds before any job: the Functions host
 *   (.NET) and the Node worker with its SDKs (the local agent process alone: about 150 MB after its
 *   first job). Not measured on Flex; 512 MB is a deliberate overestimate.
 */

/** Memory one job may use at worst, in MB (about 33 measured on the worst input). */
export const JOB_MEMORY_BUDGET_MB = 48;
/** Memory an instance needs before any job, in MB. */
export const INSTANCE_RESERVED_MB = 512;
/**
 * The most jobs per instance whatever its memory: the analysis is CPU-bound, and a job waiting for
 * the CPU holds its message lock and its memory without getting done sooner.
 */
export const MAX_CONCURRENT_JOBS = 16;

/** Jobs one instance of `instanceMemoryMb` runs at once: as many as fit its memory, 1 to MAX_CONCURRENT_JOBS. */
export function concurrentJobsFor(instanceMemoryMb: number): number {
  const fit = Math.floor((instanceMemoryMb - INSTANCE_RESERVED_MB) / JOB_MEMORY_BUDGET_MB);
  return Math.max(1, Math.min(MAX_CONCURRENT_JOBS, fit));
}
