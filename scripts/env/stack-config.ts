/**
 * Settings copied from one stack's Pulumi.<stack>.yaml to another stack: how a pull-request stack
 * gets the dev stack's (cheap) configuration, every run, since its own file lives only in the CI
 * checkout.
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { parse } from "yaml";

export class StackConfigError extends Error {
  override readonly name = "StackConfigError";
}

/** The plain settings of `Pulumi.<stack>.yaml` in `projectDir`, fully qualified (`project:key`). */
export function readStackSettings(projectDir: string, stack: string): Record<string, string> {
  const file = join(projectDir, `Pulumi.${stack}.yaml`);
  if (!existsSync(file)) throw new StackConfigError(`no Pulumi.${stack}.yaml to take settings from`);
  const document = parse(readFileSync(file, "utf8")) as { config?: Record<string, unknown> } | null;
  const settings: Record<string, string> = {};
  for (const [key, value] of Object.entries(document?.config ?? {})) {
    if (value !== null && typeof value === "object") {
      if ("secure" in value)
        throw new StackConfigError(`Pulumi.${stack}.yaml: ${key} is a secret, encrypted for ${stack} only; set it on the target stack with pulumi config set --secret`);
      throw new StackConfigError(`Pulumi.${stack}.yaml: ${key} is a structured value; only plain values can be copied`);
    }
    settings[key] = String(value);
  }
  return settings;
}

/** `key=value` settings from the command line, qualified with the project for keys without a namespace. */
export function qualify(project: string, settings: Readonly<Record<string, string>>): Record<string, string> {
  return Object.fromEntries(Object.entries(settings).map(([key, value]) => [key.includes(":") ? key : `${project}:${key}`, value]));
}
