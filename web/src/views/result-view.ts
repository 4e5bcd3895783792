/** The selected job in full: its counts and top-words chart, its failure reason, or its progress. */
import type { Job } from "../api-types";
import { h } from "./dom";
import { describeInput, failureReason, formatCount, formatReadingTime, formatTime, statusLabels } from "./format";
import { wordChart } from "./word-chart";

function outcome(job: Job): Node[] {
  switch (job.status) {
    case "queued":
      return [h("p", { class: "waiting" }, "Waiting for the agent to pick the job up…")];
    case "running":
      return [h("p", { class: "waiting" }, `The agent is analysing it (attempt ${job.attempts})…`)];
    case "failed":
      return [h("p", { class: "failure" }, h("strong", {}, "Why it failed: "), failureReason(job))];
    case "succeeded": {
      const result = job.result;
      if (!result) return [h("p", { class: "failure" }, "The job succeeded but carries no result.")];
      const stat = (label: string, value: string) => h("div", { class: "stat" }, h("dt", {}, label), h("dd", {}, value));
      return [
        h(
          "dl",
          { class: "stats" },
          stat("Characters", formatCount(result.characters)),
          stat("Words", formatCount(result.words)),
          stat("Lines", formatCount(result.lines)),
          stat("Reading time", formatReadingTime(result.readingTimeSeconds)),
        ),
        h("h3", {}, "Top words"),
        result.topWords.length > 0 ? wordChart(result.topWords) : h("p", {}, "The text has no words."),
      ];
    }
  }
}

export function renderResult(section: HTMLElement, body: HTMLElement, job: Job | undefined): void {
  section.hidden = job === undefined;
  if (!job) {
    body.replaceChildren();
    return;
  }
  section.dataset.jobId = job.id;
  section.dataset.status = job.status;
  body.replaceChildren(
    h("p", { class: "result-summary" }, h("span", { class: `job-status status-${job.status}` }, statusLabels[job.status]), ` ${describeInput(job)}, submitted ${formatTime(job.createdAt)}`),
    ...outcome(job),
  );
}
