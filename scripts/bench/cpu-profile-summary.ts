/**
 * Sums a V8 .cpuprofile (what node --cpu-prof writes, e.g. through `npm run bench:jobs -- --cpu-prof <dir>`)
 * by self time: the top functions and the top packages (node_modules/<name>, our functions/src,
 * Node's internals), so a profile reads as "where the CPU went" without a browser.
 *
 *   npx tsx scripts/bench/cpu-profile-summary.ts <file.cpuprofile> [--top 25] [--after-ms 0]
 *
 * `--after-ms` skips the samples of the first milliseconds (start-up and the first requests' loading).
 */
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

/** The package a script belongs to: node_modules/<name> (scoped too), functions/src/<dir>, packages/<name>, or node:internal. */
export function packageOf(url: string): string {
  if (url === "") return "(native: GC, I/O, program)";
  if (url.startsWith("node:")) return "node:internal";
  const modules = url.lastIndexOf("node_modules/");
  if (modules >= 0) {
    const [first, second] = url.slice(modules + "node_modules/".length).split("/");
    return first?.startsWith("@") ? `${first}/${second}` : (first ?? url);
  }
  const ours = /(functions\/src\/[^/]+|packages\/[^/]+|scripts\/[^/]+|local)\//.exec(url);
  return ours ? ours[1]! : url;
}

function main(): void {
  const { values, positionals } = parseArgs({ allowPositionals: true, options: { top: { type: "string", default: "25" }, "after-ms": { type: "string", default: "0" } } });
  const file = positionals[0];
  if (!file) throw new Error("usage: cpu-profile-summary.ts <file.cpuprofile> [--top 25] [--after-ms 0]");
  const top = Number(values.top);
  const afterUs = Number(values["after-ms"]) * 1000;
  const profile = JSON.parse(readFileSync(file, "utf8")) as CpuProfile;
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));

  const selfByFunction = new Map<string, number>();
  const selfByPackage = new Map<string, number>();
  let elapsed = 0;
  let total = 0;
  let idle = 0;
  profile.samples.forEach((id, index) => {
    const delta = profile.timeDeltas[index] ?? 0;
    elapsed += delta;
    if (elapsed < afterUs) return;
    const node = byId.get(id);
    if (!node) return;
    const { functionName, url, lineNumber } = node.callFrame;
    if (functionName === "(idle)") {
      idle += delta;
      return;
    }
    total += delta;
    const name = `${functionName || "(anonymous)"} ${url.replace(/^.*node_modules\//, "").replace(/^file:\/\/.*?\/(functions|packages|local|scripts)\//, "$1/")}:${lineNumber + 1}`;
    selfByFunction.set(name, (selfByFunction.get(name) ?? 0) + delta);
    const pkg = packageOf(url);
    selfByPackage.set(pkg, (selfByPackage.get(pkg) ?? 0) + delta);
  });

  const table = (title: string, map: Map<string, number>) => {
    console.log(`${title}:`);
    for (const [name, us] of [...map].sort((a, b) => b[1] - a[1]).slice(0, top)) {
      console.log(`  ${(us / 1000).toFixed(0).padStart(7)} ms ${((100 * us) / total).toFixed(1).padStart(5)}%  ${name}`);
    }
  };
  console.log(`${file}: ${(total / 1000).toFixed(0)} ms on CPU, ${(idle / 1000).toFixed(0)} ms idle`);
  table("Self time by package", selfByPackage);
  table("Self time by function", selfByFunction);
}

if (require.main === module) main();
