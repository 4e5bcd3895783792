/**
 * `npm run cost`: what the dev and prod stacks cost a month, idle and at N jobs a month.
 *
 *   npm run cost -- --jobs-per-month N [--stack dev|prod|both] [--measured <file>]
 *                   [--upload-share 0.5] [--jobs-per-session 10]
 *
 * The stacks' configuration comes from Pulumi.<stack>.yaml through infrastructure/config.ts, the
 * prices from scripts/cost/prices.ts, the operations of one job from scripts/cost/measured.json
 * (npm run bench:ops writes it). Bad arguments exit with code 2.
 */
import { join } from "node:path";
import { parseArgs } from "node:util";
import { parseConfig, projectName, type PlatformConfig } from "../../infrastructure/config.js";
import { repoRoot } from "../bundle/services.js";
import { readStackSettings } from "../env/stack-config.js";
import { defaultWorkload, estimateStack, totals, type CostLine, type Workload } from "./estimate.js";
import { readMeasured } from "./measured.js";
import { pricesAsOf, region } from "./prices.js";

export class UsageError extends Error {
  override readonly name = "UsageError";
}

export interface CostOptions {
  stacks: ("dev" | "prod")[];
  measured: string;
  workload: Workload;
}

export const USAGE = "usage: npm run cost -- --jobs-per-month N [--stack dev|prod|both] [--measured <file>] [--upload-share 0..1] [--jobs-per-session N]";

export function parseCostArgs(argv: string[]): CostOptions {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      strict: true,
      options: {
        "jobs-per-month": { type: "string" },
        stack: { type: "string", default: "both" },
        measured: { type: "string", default: join(repoRoot, "scripts", "cost", "measured.json") },
        "upload-share": { type: "string", default: String(defaultWorkload.uploadShare) },
        "jobs-per-session": { type: "string", default: String(defaultWorkload.jobsPerSession) },
      },
    }));
  } catch (error) {
    throw new UsageError(`${(error as Error).message}\n${USAGE}`);
  }
  const raw = values["jobs-per-month"];
  if (raw === undefined) throw new UsageError(`--jobs-per-month is required\n${USAGE}`);
  const jobsPerMonth = Number(raw.replaceAll("_", ""));
  if (!Number.isInteger(jobsPerMonth) || jobsPerMonth < 0 || jobsPerMonth > 1e12) throw new UsageError(`--jobs-per-month must be a whole number from 0 to 1e12 (got ${raw})`);
  const stack = values.stack;
  if (stack !== "dev" && stack !== "prod" && stack !== "both") throw new UsageError(`--stack must be dev, prod or both (got ${stack})`);
  const uploadShare = Number(values["upload-share"]);
  if (!(uploadShare >= 0 && uploadShare <= 1)) throw new UsageError(`--upload-share must be a number from 0 to 1 (got ${values["upload-share"]})`);
  const jobsPerSession = Number(values["jobs-per-session"]);
  if (!(jobsPerSession >= 1 && Number.isFinite(jobsPerSession))) throw new UsageError(`--jobs-per-session must be a number of at least 1 (got ${values["jobs-per-session"]})`);
  return {
    stacks: stack === "both" ? ["dev", "prod"] : [stack],
    measured: values.measured,
    workload: { ...defaultWorkload, jobsPerMonth, uploadShare, jobsPerSession },
  };
}

/** A stack's configuration as `pulumi up` would read it (its Pulumi.<stack>.yaml, defaults applied). */
export function stackConfig(stack: string): PlatformConfig {
  const prefix = `${projectName}:`;
  const settings = readStackSettings(repoRoot, stack);
  return parseConfig(Object.fromEntries(Object.entries(settings).filter(([key]) => key.startsWith(prefix)).map(([key, value]) => [key.slice(prefix.length), value])));
}

const usd = (value: number): string => `$${value < 10 ? value.toFixed(2) : Math.round(value).toLocaleString("en-US")}`;

/** A table of a stack's lines: service, item, idle, at N, and what each assumes. */
export function formatTable(stack: string, lines: readonly CostLine[], jobsPerMonth: number): string {
  const header = ["Service", "Item", "Idle", `At ${jobsPerMonth.toLocaleString("en-US")} jobs`];
  const rows = lines.map((l) => [l.service, l.item, usd(l.idle), usd(l.atN)]);
  const total = totals(lines);
  rows.push(["Total", "", usd(total.idle), usd(total.atN)]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i >= 2 ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join("  ");
  return [
    `${stack} stack, USD a month:`,
    line(header),
    line(widths.map((w) => "-".repeat(w))),
    ...rows.slice(0, -1).map(line),
    line(widths.map((w) => "-".repeat(w))),
    line(rows.at(-1)!),
    "",
    ...lines.filter((l) => l.note).map((l) => `  ${l.service}, ${l.item}: ${l.note}`),
  ].join("\n");
}

export function run(argv: string[], print: (text: string) => void): void {
  const options = parseCostArgs(argv);
  const measured = readMeasured(options.measured);
  const w = options.workload;
  print(
    `Prices as of ${pricesAsOf} (${region}, pay-as-you-go; scripts/cost/prices.ts says which are verified); operations per job measured ${measured.measuredAt} at ${measured.commit} (npm run bench:ops).\n` +
      `Workload: ${w.jobsPerMonth.toLocaleString("en-US")} jobs a month, ${Math.round(w.uploadShare * 100)}% with an upload, ${w.jobsPerSession} jobs per browser session.\n`,
  );
  for (const stack of options.stacks) print(`${formatTable(stack, estimateStack(stackConfig(stack), measured, w), w.jobsPerMonth)}\n`);
}

if (process.argv[1]?.endsWith(join("cost", "cli.ts"))) {
  try {
    run(process.argv.slice(2), (text) => console.log(text));
  } catch (error) {
    console.error(error instanceof Error ? error.message : String(error));
    process.exit(error instanceof UsageError ? 2 : 1);
  }
}
