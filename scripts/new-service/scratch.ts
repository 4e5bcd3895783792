/**
 * A scratch copy of the repository to try the generator on: its files as git knows them (tracked,
 * plus new files not ignored), without node_modules, dist/ or anything else ignored; node_modules is
 * linked to the original's, so the copy runs with the same installed packages.
 */
import { execFile } from "node:child_process";
import { cp, mkdtemp, symlink } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";

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
