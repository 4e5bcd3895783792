/**
 * The caller's jobs as the page knows them: merged from pages of GET /api/jobs, single re-reads,
 * the jobs the page itself created and the job events pushed to it, newest first, each job by its
 * updatedAt (an older state never replaces a newer one). The api stays the source of truth; this
 * only decides what to show and what to re-read.
 */
import type { Job, JobEvent, JobList } from "./api-types";

const terminal = new Set<Job["status"]>(["succeeded", "failed"]);

export function isFinished(job: Job): boolean {
  return terminal.has(job.status);
}

export class KnownJobs {
  private readonly byId = new Map<string, Job>();
  /** Where the next older page starts; undefined when the last page is loaded (or none yet). */
  continuationToken: string | undefined;
  /** Whether any page was loaded yet (the list says "no jobs yet" only after one was). */
  loaded = false;

  /** Newest first, as the api lists them. */
  all(): Job[] {
    return [...this.byId.values()].sort((a, b) => b.createdAt.localeCompare(a.createdAt) || a.id.localeCompare(b.id));
  }

  get(id: string): Job | undefined {
    return this.byId.get(id);
  }

  /** A job read or created now; an older copy (by updatedAt) never replaces a newer one. */
  put(job: Job): void {
    const known = this.byId.get(job.id);
    if (!known || known.updatedAt <= job.updatedAt) this.byId.set(job.id, job);
  }

  /**
   * A pushed event applied to the job it names, as a read of the job would be (put: a late or
   * repeated event changes nothing). False when the page does not know the job (created in
   * another tab or before a sign-in): the caller reads it.
   */
  applyEvent(event: JobEvent): boolean {
    const known = this.byId.get(event.jobId);
    if (!known) return false;
    const { result, error, ...rest } = known;
    const next: Job = {
      ...rest,
      status: event.status,
      attempts: event.attempts,
      updatedAt: event.updatedAt,
      ...(event.startedAt ? { startedAt: event.startedAt } : {}),
      ...(event.finishedAt ? { finishedAt: event.finishedAt } : {}),
      ...(event.type === "job.succeeded" ? { result: event.result } : {}),
      ...(event.type === "job.failed" ? { error: event.error } : {}),
    };
    this.put(next);
    return true;
  }

  /**
   * The newest page, read again (after a (re)connect). Returns the jobs it did not cover that are
   * still unfinished: an update to them may have been missed too, so the caller re-reads each.
   */
  refreshFirstPage(page: JobList): Job[] {
    const covered = new Set(page.items.map((job) => job.id));
    for (const job of page.items) this.put(job);
    if (!this.loaded) this.continuationToken = page.continuationToken;
    this.loaded = true;
    return [...this.byId.values()].filter((job) => !covered.has(job.id) && !isFinished(job));
  }

  /** An older page ("Load more"). */
  appendPage(page: JobList): void {
    for (const job of page.items) this.put(job);
    this.continuationToken = page.continuationToken;
    this.loaded = true;
  }

  clear(): void {
    this.byId.clear();
    this.continuationToken = undefined;
    this.loaded = false;
  }
}
