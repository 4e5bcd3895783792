/**
 * The job list: one row per job, newest first, each a button that shows the job's result. Rebuilt
 * on every change (a page holds at most a few pages of jobs); focus stays on the row it was on.
 */
import type { Job } from "../api-types";
import { h } from "./dom";
import { describeInput, failureReason, formatTime, statusLabels } from "./format";

export function renderJobList(list: HTMLOListElement, jobs: readonly Job[], selectedId: string | undefined, onSelect: (id: string) => void): void {
  const focusedId = document.activeElement instanceof HTMLElement && list.contains(document.activeElement) ? document.activeElement.closest("li")?.dataset.jobId : undefined;
  list.replaceChildren(
    ...jobs.map((job) => {
      const button = h(
        "button",
        { type: "button", class: "job", "aria-current": job.id === selectedId ? "true" : undefined},
        h("span", { class: `job-status status-${job.status}` }, statusLabels[job.status]),
        h("span", { class: "job-input" }, describeInput(job)),
        h("time", { class: "job-time", datetime: job.createdAt }, formatTime(job.createdAt)),
      );
      button.addEventListener("click", () => onSelect(job.id));
      return h("li", { "data-job-id": job.id, "data-status": job.status }, button, job.status === "failed" ? h("p", { class: "job-reason" }, failureReason(job)) : null);
    }),
  );
  if (focusedId) list.querySelector<HTMLButtonElement>(`li[data-job-id="${CSS.escape(focusedId)}"] button`)?.focus();
}
