import type { ServiceBundle } from "./build";

export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KB`;
  return `${(bytes / (1024 * 1024)).toFixed(2)} MB`;
}

/** The per-service lines `npm run bundle` prints, so size regressions show in every build log. */
export function formatBundleReport(bundle: ServiceBundle, topInputs = 8): string {
  const lines = [
    `${bundle.name}: bundle ${formatBytes(bundle.bundleBytes)} (map ${formatBytes(bundle.mapBytes)}), ` +
      `zip ${formatBytes(bundle.zipBytes)}, sha256 ${bundle.sha256}${bundle.fromCache ? " (unchanged inputs: reused)" : ""}`,
    `  ${bundle.zipPath}`,
    ...(bundle.deferredPackages.length > 0
      ? [`  deferred.js ${formatBytes(bundle.deferredBytes)}, loaded on first use: ${bundle.deferredPackages.join(", ")}`]
      : []),
    ...(bundle.duplicatedPackages.length > 0 ? [`  in both main.js and deferred.js: ${bundle.duplicatedPackages.join(", ")}`] : []),
    "  largest inputs:",
  ];
  for (const input of bundle.largestInputs.slice(0, topInputs)) {
    const share = ((100 * input.bytes) / (bundle.bundleBytes + bundle.deferredBytes)).toFixed(1);
    lines.push(`    ${formatBytes(input.bytes).padStart(10)}  ${share.padStart(5)}%  ${input.name}`);
  }
  return lines.join("\n");
}
