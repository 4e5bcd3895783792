import type { ServiceBundle } from "./build";

export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KB`;
  return `${(bytes / (1024 * 1024)).toFixed(2)} MB`;
}

/** The per-service lines `npm run bundle` prints, so size regressions show in every build log. */
export function formatBundleReport(bundle: ServiceBundle, topInputs = 8): string {
  const codeBytes = bundle.chunks.reduce((sum, c) => sum + c.bytes, 0);
  const lines = [
    `${bundle.name}: zip ${formatBytes(bundle.zipBytes)}, code ${formatBytes(codeBytes)} (at start ${formatBytes(bundle.startBytes)}, on first use ${formatBytes(bundle.deferredBytes)}), ` +
      `maps ${formatBytes(bundle.mapBytes)} (the zip carries own code's only), sha256 ${bundle.sha256}${bundle.fromCache ? " (unchanged inputs: reused)" : ""}`,
    `  ${bundle.zipPath}`,
    "  files:",
    ...bundle.chunks.map((c) => {
      const when = c.loadedWith === "start" ? "at start" : `with ${c.loadedWith.join(", ")}`;
      const what = c.packages.length === 0 ? "own code" : c.packages.length <= 4 ? c.packages.join(", ") : `${c.packages.slice(0, 4).join(", ")} and ${c.packages.length - 4} more`;
      return `    ${formatBytes(c.bytes).padStart(10)}  ${c.file}  ${when}: ${what}`;
    }),
    ...(bundle.duplicatedModules.length > 0 ? [`  in more than one file: ${bundle.duplicatedModules.join(", ")}`] : []),
    "  largest inputs:",
  ];
  for (const input of bundle.largestInputs.slice(0, topInputs)) {
    const share = ((100 * input.bytes) / codeBytes).toFixed(1);
    lines.push(`    ${formatBytes(input.bytes).padStart(10)}  ${share.padStart(5)}%  ${input.name}`);
  }
  return lines.join("\n");
}
