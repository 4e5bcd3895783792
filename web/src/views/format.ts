/** How numbers, times and job states read on the page (the browser's language). */
import type { Job } from "../api-types";

const number = new Intl.NumberFormat();

export function formatCount(value: number): string {
  return number.format(value);
}

/** Reading time in words: "12 seconds", "about 3 minutes". */
export function formatReadingTime(seconds: number): string {
  if (seconds < 60) return `${Math.round(seconds)} second${Math.round(seconds) === 1 ? "" : "s"}`;
  const minutes = Math.round(seconds / 60);
  return `about ${minutes} minute${minutes === 1 ? "" : "s"}`;
}

export const statusLabels: Record<Job["status"], string> = {
  queued: "Queued",
  running: "Running",
  succeeded: "Done",
  failed: "Failed",
};

/** What the job analyses, in a few words. */
export function describeInput(job: Job): string {
  return job.input.kind === "text" ? `Text, ${formatCount(job.input.characters)} characters` : "Uploaded file";
}

export function formatTime(iso: string): string {
  return new Date(iso).toLocaleString(undefined, { dateStyle: "short", timeStyle: "medium" });
}

/** A failed job's reason as the page shows it. */
export function failureReason(job: Job): string {
  return job.error ? `${job.error.message} (${job.error.code})` : "The job failed.";
}
