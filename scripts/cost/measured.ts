/**
 * The file `npm run bench:ops` writes and `npm run cost` reads (scripts/cost/measured.json): the
 * operations of one job by kind, counted on the local platform, with when and at which commit.
 */
import { readFileSync } from "node:fs";
import type { Tally } from "./operations.js";

export interface MeasuredFile {
  $comment?: string;
  /** YYYY-MM-DD. */
  measuredAt: string;
  commit: string;
  jobsPerKind: number;
  /** Average operations of one text job and one upload job (POST /api/uploads + PUT + POST /api/jobs). */
  perJob: { text: Tally; upload: Tally };
  /** One browser session: negotiate, the Web PubSub connection, the first page of jobs. */
  perSession: Tally;
  /** Average duration of a sweeper (timer) run seen during the measurement, if one ran. */
  timerRunMs: number | null;
}

export class MeasuredFileError extends Error {
  override readonly name = "MeasuredFileError";
}

/** Reads and checks a measured file: a clear error for a file that is not one. */
export function readMeasured(file: string): MeasuredFile {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(file, "utf8"));
  } catch (error) {
    throw new MeasuredFileError(`cannot read ${file}: ${(error as Error).message}`);
  }
  const m = parsed as Partial<MeasuredFile>;
  const isTally = (t: unknown): t is Tally => typeof t === "object" && t !== null && ["cosmos", "blob", "serviceBus", "webPubSub", "functions"].every((k) => k in t);
  if (typeof m.measuredAt !== "string" || typeof m.commit !== "string" || !isTally(m.perJob?.text) || !isTally(m.perJob?.upload) || !isTally(m.perSession)) {
    throw new MeasuredFileError(`${file} is not a measurement written by npm run bench:ops (measuredAt, commit, perJob.text, perJob.upload, perSession)`);
  }
  return m as MeasuredFile;
}

const n = (value: number): string => (Number.isInteger(value) ? String(value) : value.toFixed(2));

/** The counts of one window, one line per service. */
export function describeTally(tally: Tally): string[] {
  const cosmos = Object.entries(tally.cosmos)
    .filter(([, e]) => e.requests > 0)
    .map(([kind, e]) => `${kind} ${n(e.requests)} (${n(e.requests > 0 ? e.requestBytes / e.requests : 0)} B out, ${n(e.requests > 0 ? e.responseBytes / e.requests : 0)} B back)`);
  const blob = Object.entries(tally.blob)
    .filter(([, count]) => count > 0)
    .map(([kind, count]) => `${kind} ${n(count)}`);
  const sb = tally.serviceBus;
  const management = Object.entries(sb.management).map(([op, count]) => `${op} ${n(count)}`);
  const functions = Object.entries(tally.functions).map(([name, f]) => `${name} ${n(f.executions)} × ${n(f.executions > 0 ? f.ms / f.executions : 0)} ms`);
  return [
    `Cosmos DB:    ${cosmos.join(", ") || "none"}`,
    `Blob Storage: ${blob.join(", ") || "none"}`,
    `Service Bus:  ${n(sb.billedOperations)} billed (sends ${n(sb.sends)}, receives ${n(sb.receives)}, settlements ${n(sb.settles)}${management.length ? `, ${management.join(", ")}` : ""}; tokens ${n(sb.tokens)}, not billed)`,
    `Web PubSub:   ${n(tally.webPubSub.outboundMessages)} outbound messages (${n(tally.webPubSub.outboundMessages > 0 ? tally.webPubSub.outboundBytes / tally.webPubSub.outboundMessages : 0)} B each, ${n(tally.webPubSub.billedMessages)} billed), ${n(tally.webPubSub.restCalls)} REST calls`,
    `Functions:    ${functions.join(", ") || "none"}`,
  ];
}

export function formatTally(measured: MeasuredFile): string {
  const section = (title: string, tally: Tally) => [title, ...describeTally(tally).map((line) => `  ${line}`)].join("\n");
  return [
    `Measured ${measured.measuredAt} at ${measured.commit}, ${measured.jobsPerKind} jobs of each kind:`,
    section("Per text job:", measured.perJob.text),
    section("Per upload job:", measured.perJob.upload),
    section("Per browser session (negotiate, connect, first page):", measured.perSession),
  ].join("\n");
}
