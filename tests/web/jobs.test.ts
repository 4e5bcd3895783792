/** The page's view of the caller's jobs, and the chart's geometry: pure parts of the web app. */
import { describe, expect, it } from "vitest";
import type { Job, JobEvent } from "../../web/src/api-types";
import { KnownJobs } from "../../web/src/jobs";
import { jobEventOf } from "../../web/src/live-updates";
import { chartDescription, defaultGeometry, wordChartLayout } from "../../web/src/views/word-chart-layout";

function job(id: string, status: Job["status"], createdAt: string, updatedAt = createdAt): Job {
  return { id, status, input: { kind: "text", characters: 3 }, attempts: 0, createdAt, updatedAt };
}

describe("KnownJobs", () => {
  it("lists newest first and never lets an older read replace a newer one", () => {
    const jobs = new KnownJobs();
    jobs.put(job("a", "queued", "2026-01-01T00:00:00.000Z"));
    jobs.put(job("b", "queued", "2026-01-02T00:00:00.000Z"));
    jobs.put(job("a", "succeeded", "2026-01-01T00:00:00.000Z", "2026-01-01T00:00:05.000Z"));
    jobs.put(job("a", "running", "2026-01-01T00:00:00.000Z", "2026-01-01T00:00:02.000Z"));
    expect(jobs.all().map((j) => [j.id, j.status])).toEqual([
      ["b", "queued"],
      ["a", "succeeded"],
    ]);
  });

  it("after a reconnect, re-reads the first page and names the unfinished jobs it did not cover", () => {
    const jobs = new KnownJobs();
    jobs.appendPage({ items: [job("new", "queued", "2026-01-03T00:00:00.000Z")], continuationToken: "t1" });
    jobs.appendPage({ items: [job("old-running", "running", "2026-01-01T00:00:00.000Z"), job("old-done", "succeeded", "2026-01-01T00:00:00.000Z")] });
    const reread = jobs.refreshFirstPage({ items: [job("newest", "queued", "2026-01-04T00:00:00.000Z"), job("new", "succeeded", "2026-01-03T00:00:00.000Z", "2026-01-03T00:01:00.000Z")] });
    expect(reread.map((j) => j.id)).toEqual(["old-running"]);
    expect(jobs.get("new")?.status).toBe("succeeded");
    expect(jobs.all().map((j) => j.id)).toEqual(["newest", "new", "old-done", "old-running"]);
    // The older pages stay loaded: the token of the last one is kept.
    expect(jobs.continuationToken).toBeUndefined();
  });

  it("keeps the first page's continuation token on the first load only", () => {
    const jobs = new KnownJobs();
    jobs.refreshFirstPage({ items: [], continuationToken: "t1" });
    expect(jobs.continuationToken).toBe("t1");
    jobs.refreshFirstPage({ items: [], continuationToken: "t-other" });
    expect(jobs.continuationToken).toBe("t1");
    jobs.clear();
    expect([jobs.all(), jobs.loaded, jobs.continuationToken]).toEqual([[], false, undefined]);
  });
});

describe("job events", () => {
  const t = (second: number) => `2026-01-01T00:00:${String(second).padStart(2, "0")}.000Z`;
  const running: JobEvent = { type: "job.running", status: "running", jobId: "a", attempts: 1, at: t(2), updatedAt: t(2), startedAt: t(2) };
  const result = { characters: 3, words: 1, lines: 1, topWords: [{ word: "abc", count: 1 }], readingTimeSeconds: 1 };
  const succeeded: JobEvent = { type: "job.succeeded", status: "succeeded", jobId: "a", attempts: 1, result, at: t(5), updatedAt: t(5), startedAt: t(2), finishedAt: t(5) };

  it("takes the agent's events and ignores anything else in the group", () => {
    expect(jobEventOf(running)).toEqual(running);
    expect(jobEventOf(succeeded)).toEqual(succeeded);
    expect(jobEventOf({ type: "job.failed", status: "failed", jobId: "a", attempts: 2, error: { code: "X", message: "no" }, at: t(5), updatedAt: t(5) })).toBeDefined();
    expect(jobEventOf({ type: "chat", jobId: "j1" })).toBeUndefined();
    expect(jobEventOf({ ...succeeded, result: undefined })).toBeUndefined();
    expect(jobEventOf({ ...running, status: "succeeded" })).toBeUndefined();
    expect(jobEventOf({ ...running, updatedAt: "yesterday" })).toBeUndefined();
    expect(jobEventOf({ ...running, attempts: -1 })).toBeUndefined();
    expect(jobEventOf({ type: "job.succeeded", jobId: "j1", status: "succeeded" })).toBeUndefined();
    expect(jobEventOf("job.succeeded")).toBeUndefined();
    expect(jobEventOf(null)).toBeUndefined();
  });

  it("applies an event to the job the page knows as a read would, without reading it", () => {
    const jobs = new KnownJobs();
    jobs.put(job("a", "queued", t(0)));
    expect(jobs.applyEvent(running)).toBe(true);
    expect(jobs.get("a")).toMatchObject({ status: "running", attempts: 1, startedAt: t(2), updatedAt: t(2), createdAt: t(0), input: { kind: "text", characters: 3 } });
    expect(jobs.applyEvent(succeeded)).toBe(true);
    expect(jobs.get("a")).toMatchObject({ status: "succeeded", result, finishedAt: t(5), updatedAt: t(5) });
    // A late or repeated push changes nothing: the running event is older than what the page shows.
    expect(jobs.applyEvent(running)).toBe(true);
    expect(jobs.get("a")).toMatchObject({ status: "succeeded", result, finishedAt: t(5), updatedAt: t(5) });
    expect(jobs.applyEvent(succeeded)).toBe(true);
    expect(jobs.get("a")).toMatchObject({ status: "succeeded", result, updatedAt: t(5) });
  });

  it("says when the page does not know the job, so the caller reads it", () => {
    const jobs = new KnownJobs();
    expect(jobs.applyEvent(running)).toBe(false);
    expect(jobs.get("a")).toBeUndefined();
  });
});

describe("wordChartLayout", () => {
  const words = [
    { word: "the", count: 10 },
    { word: "supercalifragilistic", count: 5 },
    { word: "a", count: 1 },
  ];

  it("draws one bar per word, the most frequent filling the plot, the others in proportion", () => {
    const layout = wordChartLayout(words);
    const plot = defaultGeometry.width - defaultGeometry.labelWidth - defaultGeometry.countWidth;
    expect(layout.bars.map((b) => b.barWidth)).toEqual([plot, plot / 2, Math.round(plot / 10)]);
    expect(layout.bars.map((b) => b.y)).toEqual([0, 30, 60]);
    expect(layout.height).toBe(3 * defaultGeometry.barHeight + 2 * defaultGeometry.gap);
  });

  it("shortens long labels but keeps the word whole for its tooltip and the text alternative", () => {
    const bar = wordChartLayout(words).bars[1]!;
    expect(bar.label).toBe("supercalifrag…");
    expect([...bar.label]).toHaveLength(14);
    expect(bar.word).toBe("supercalifragilistic");
    expect(chartDescription(words)).toBe("Most frequent words: the (10), supercalifragilistic (5), a (1).");
  });

  it("draws nothing for no words", () => {
    expect(wordChartLayout([])).toEqual({ width: defaultGeometry.width, height: 0, bars: [] });
    expect(chartDescription([])).toBe("No words were found.");
  });
});
