/**
 * Fault points: places where the fault-injection suite (tests/faults/) kills this process at the
 * moment it chooses, to show that no job is lost, stuck or doubled whatever process dies when
 * (between the api's create and send, say, which no timing could hit reliably).
 *
 * Not a setting, and inert everywhere else: a point does anything only when the environment
 * variable PLATFORM_FAULT_POINTS_DIR names a directory, which only the local platform sets, and
 * only when a test asks for it (local/platform.ts `faultPointsDirectory`). The bundler replaces the
 * variable with `undefined` (scripts/bundle/build.ts), so in a deployed package every point is an
 * empty function; a test reads the bundles to check it.
 */
import { unlinkSync } from "node:fs";
import { join } from "node:path";

export const faultPoints = {
  /** The api created the job and has not sent its message yet. */
  "api.job-created": "after the job is stored, before its message is sent",
  /** The agent marked the job running and has not analysed it yet. */
  "agent.job-running": "after the job is marked running, before it is analysed",
  /** The agent stored the job's outcome; the host has not completed the message yet. */
  "agent.job-finished": "after the outcome is stored and published, before the message is completed",
} as const;
export type FaultPoint = keyof typeof faultPoints;

/**
 * Kills this process (SIGKILL: no clean-up, as a crash or an out-of-memory kill) if the point is
 * armed: a file named after it in the fault points directory. The file is removed first, so each
 * arming kills once, in whichever process reaches the point first.
 */
export function reachFaultPoint(point: FaultPoint): void {
  if (process.env.PLATFORM_FAULT_POINTS_DIR === undefined) return;
  try {
    unlinkSync(join(process.env.PLATFORM_FAULT_POINTS_DIR, point));
  } catch {
    return; // not armed
  }
  process.kill(process.pid, "SIGKILL");
}
