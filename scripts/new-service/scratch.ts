/**
 * A scratch copy of the repository to try the generator on: its files as git knows them (tracked,
 * plus new files not ignored), without node_modules, dist/ or anything else ignored; node_modules is
 * linked to the original's, so the copy runs with the same installed packages.
 */
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { cp, mkdtemp, symlink } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { resources } from "../../functions/src/resources";
import { serviceNames } from "../../functions/src/services";

const run = promisify(execFile);

/**
 * The repository's files, relative to `root`; with `under`, only those in these folders (and the
 * root's own files).
 */
export async function scratchFiles(root: string, under?: readonly string[]): Promise<string[]> {
  let listed: string;
  try {
    listed = (await run("git", ["ls-files", "--cached", "--others", "--exclude-standard", "-z"], { cwd: root, maxBuffer: 64 * 1024 * 1024 })).stdout;
  } catch (error) {
    throw new Error(`cannot list the repository's files with git in ${root}: ${(error as Error).message}`);
  }
  const files = listed.split("\0").filter(Boolean);
  if (!under) return files;
  return files.filter((file) => !file.includes("/") || under.some((folder) => file.startsWith(`${folder}/`)));
}

/** Copies the repository (or the folders `under`) into a new temporary folder and links node_modules; returns the folder. */
export async function scratchCopy(root: string, under?: readonly string[]): Promise<string> {
  const scratch = await mkdtemp(path.join(tmpdir(), "new-service-scratch-"));
  await Promise.all((await scratchFiles(root, under)).map((file) => cp(path.join(root, file), path.join(scratch, file))));
  await symlink(path.join(root, "node_modules"), path.join(scratch, "node_modules"), "dir");
  return scratch;
}

/**
 * `base`, or `base2`, `base3`, ... when the repository at `root` already has a service, a queue or a
 * functions/src folder of that name (a fork may have generated it already).
 */
export function unusedServiceName(root: string, base: string): string {
  const taken = (name: string) => (serviceNames as readonly string[]).includes(name) || name in resources.queues || existsSync(path.join(root, "functions", "src", name));
  for (let n = 1; n < 100; n += 1) {
    const name = n === 1 ? base : `${base}${n}`;
    if (!taken(name)) return name;
  }
  throw new Error(`no free service name from ${base} to ${base}99`);
}
