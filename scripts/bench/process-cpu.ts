/**
 * CPU time of the processes a benchmark runs: the services' host processes and Azurite (children
 * of this process) from /proc/<pid>/stat, and this process itself (the in-process emulators and
 * the benchmark's client) from process.cpuUsage(). Linux only: elsewhere {@link cpuTimesMs}
 * returns undefined for the other processes and the benchmark says so.
 */
import { readFileSync, readdirSync } from "node:fs";

/** USER_HZ: the unit of utime and stime in /proc/<pid>/stat; 100 on every Linux architecture Node runs on. */
const CLOCK_TICKS_PER_SECOND = 100;

/** User plus system CPU milliseconds of a process, or undefined when /proc cannot tell (not Linux, process gone). */
export function processCpuMs(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // The command name (field 2) may hold spaces and parentheses: count fields after its last ")".
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const utime = Number(fields[11]);
    const stime = Number(fields[12]);
    return Number.isFinite(utime) && Number.isFinite(stime) ? ((utime + stime) * 1000) / CLOCK_TICKS_PER_SECOND : undefined;
  } catch {
    return undefined;
  }
}

/** This process's children, read from /proc (each thread's `children` list); empty where /proc cannot tell. */
export function childPids(): number[] {
  try {
    return readdirSync("/proc/self/task").flatMap((task) =>
      readFileSync(`/proc/self/task/${task}/children`, "utf8").split(" ").filter(Boolean).map(Number),
    );
  } catch {
    return [];
  }
}

/** The command line of a process, or "" when /proc cannot tell. */
export function commandLine(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").replaceAll("\0", " ");
  } catch {
    return "";
  }
}

/** Named processes whose CPU time a benchmark compares before and after a batch. */
export type CpuProbes = Record<string, () => number | undefined>;

/** CPU milliseconds of each probe now. */
export function cpuTimesMs(probes: CpuProbes): Record<string, number | undefined> {
  return Object.fromEntries(Object.entries(probes).map(([name, probe]) => [name, probe()]));
}

/** CPU milliseconds each probe spent between two readings, divided by `jobs`. */
export function cpuPerJob(before: Record<string, number | undefined>, after: Record<string, number | undefined>, jobs: number): Record<string, number | undefined> {
  return Object.fromEntries(
    Object.keys(after).map((name) => {
      const [from, to] = [before[name], after[name]];
      return [name, from === undefined || to === undefined ? undefined : (to - from) / jobs];
    }),
  );
}

/** The CPU time of this process (user plus system) in milliseconds. */
export const ownCpuMs = (): number => {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1000;
};
