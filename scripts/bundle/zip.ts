import { zipSync, type ZipAttributes, type ZipOptions } from "fflate";

/** One file of a package: its path inside the zip (forward slashes) and its bytes. */
export interface PackageFile {
  readonly path: string;
  readonly bytes: Uint8Array;
}

// fflate writes DOS timestamps from the Date's LOCAL fields, so a Date built from local fields
// gives the same bytes in every time zone. 1980-01-01 is the earliest DOS time.
const fixedMtime = () => new Date(1980, 0, 1, 0, 0, 0);
const unixHost = 3;
// Regular file, rw-r--r--: the package is data, never executable.
const regularFileMode = 0o100644;

/**
 * Zips files so that identical inputs give identical bytes: entries sorted by path, fixed
 * timestamps, fixed permissions, fixed compression level. The content hash of the zip is then
 * a key for "did the code change".
 */
export function deterministicZip(files: readonly PackageFile[]): Uint8Array {
  const seen = new Set<string>();
  const entries: Record<string, [Uint8Array, ZipOptions & ZipAttributes]> = {};
  for (const file of [...files].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0))) {
    if (file.path === "" || file.path.startsWith("/") || file.path.includes("\\") || file.path.split("/").includes("..")) {
      throw new Error(`zip entry path must be relative with forward slashes and no "..": ${JSON.stringify(file.path)}`);
    }
    if (seen.has(file.path)) throw new Error(`duplicate zip entry: ${file.path}`);
    seen.add(file.path);
    // Multiplication, not <<: the mode shifted by 16 does not fit a signed 32-bit int.
    entries[file.path] = [file.bytes, { level: 9, mtime: fixedMtime(), os: unixHost, attrs: regularFileMode * 0x10000 }];
  }
  // fflate keeps insertion order for string keys that are not integer-like; an all-digit file
  // name would be reordered by the JS engine, which is still deterministic.
  return zipSync(entries);
}
