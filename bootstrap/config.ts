/**
 * The bootstrap's configuration: read once, validated by a pure function, handed on as one typed
 * object. bootstrap/Pulumi.yaml declares the same keys with descriptions and defaults.
 */
import * as pulumi from "@pulumi/pulumi";

/** The bootstrap's Pulumi project name (bootstrap/Pulumi.yaml `name`), the namespace of its keys. */
export const bootstrapProjectName = "azure-serverless-platform-bootstrap";

export const operatorPrincipalTypes = ["User", "Group", "ServicePrincipal", "None"] as const;
export type OperatorPrincipalType = (typeof operatorPrincipalTypes)[number];

export interface BootstrapConfig {
  /** `owner/name` of the GitHub repository whose workflows deploy. */
  readonly githubRepository: string;
  /**
   * The start of every OIDC subject the repository's tokens carry: `repo:<owner>/<name>` by default,
   * `repo:<owner>@<ownerId>/<name>@<repoId>` for repositories using GitHub's immutable subjects.
   */
  readonly githubSubjectPrefix: string;
  /** The branch whose pushes deploy (and on which scheduled drift checks run). */
  readonly mainBranch: string;
  /** GitHub environments the deploy jobs run in, one federated credential each. */
  readonly environments: readonly string[];
  readonly location: string;
  /** Readable prefix of the bootstrap's resource names. */
  readonly namePrefix: string;
  /**
   * The principal running the bootstrap also gets the state and the secrets key (to run
   * `npm run env` by hand); its kind, or None.
   */
  readonly operatorPrincipalType: OperatorPrincipalType;
}

export class BootstrapConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid bootstrap configuration:\n  - ${problems.join("\n  - ")}`);
    this.name = "BootstrapConfigError";
  }
}

/** Federated credentials an identity may have (Entra ID's limit). */
export const maxFederatedCredentials = 20;

const repositoryPattern = /^[A-Za-z0-9-]+\/[A-Za-z0-9._-]+$/;
// `repo:owner/name` or the immutable `repo:owner@123/name@456`.
const subjectPrefixPattern = /^repo:[A-Za-z0-9-]+(@\d+)?\/[A-Za-z0-9._-]+(@\d+)?$/;
const environmentPattern = /^[A-Za-z0-9._-]{1,255}$/;
const branchPattern = /^[A-Za-z0-9._/-]+$/;

/** Validates raw values (as Pulumi stores them) and applies the defaults; names every problem. */
export function parseBootstrapConfig(raw: Readonly<Record<string, unknown>>): BootstrapConfig {
  const problems: string[] = [];
  const text = (key: string, fallback: string): string => {
    const value = raw[key];
    if (value === undefined || value === "") return fallback;
    if (typeof value !== "string") {
      problems.push(`${key} must be a string`);
      return fallback;
    }
    return value.trim();
  };

  const githubRepository = text("githubRepository", "");
  if (!githubRepository) problems.push("githubRepository is required: the owner/name of the GitHub repository, e.g. contoso/platform");
  else if (!repositoryPattern.test(githubRepository)) problems.push(`githubRepository = "${githubRepository}" is not owner/name`);

  const githubSubjectPrefix = text("githubSubjectPrefix", `repo:${githubRepository}`);
  if (githubRepository && !subjectPrefixPattern.test(githubSubjectPrefix))
    problems.push(
      `githubSubjectPrefix = "${githubSubjectPrefix}" must look like repo:owner/name or repo:owner@<id>/name@<id> (gh api repos/${githubRepository}/actions/oidc/customization/sub)`,
    );

  const mainBranch = text("mainBranch", "main");
  if (!branchPattern.test(mainBranch)) problems.push(`mainBranch = "${mainBranch}" is not a branch name`);

  const environments = parseList(raw["environments"], ["dev", "prod"], problems);
  for (const env of environments) if (!environmentPattern.test(env)) problems.push(`environments: "${env}" is not a GitHub environment name`);
  if (new Set(environments).size !== environments.length) problems.push("environments: names must be unique");
  // One credential for pull requests, one for the main branch, one per environment.
  if (environments.length + 2 > maxFederatedCredentials)
    problems.push(`environments: at most ${maxFederatedCredentials - 2} (an identity takes ${maxFederatedCredentials} federated credentials)`);

  const location = text("location", "eastus");
  if (!/^[a-z0-9]+$/.test(location)) problems.push(`location = "${location}" must be a region name such as eastus`);

  const namePrefix = text("namePrefix", "plat");
  if (!/^[a-z][a-z0-9]{1,9}$/.test(namePrefix)) problems.push(`namePrefix = "${namePrefix}" must be 2-10 lowercase letters or digits, starting with a letter`);

  const operatorValue = text("operatorPrincipalType", "User");
  const operatorPrincipalType = operatorPrincipalTypes.find((type) => type === operatorValue);
  if (!operatorPrincipalType) problems.push(`operatorPrincipalType = "${operatorValue}" is invalid; allowed values: ${operatorPrincipalTypes.join(", ")}`);

  if (problems.length > 0 || !operatorPrincipalType) throw new BootstrapConfigError(problems);
  return {
    githubRepository,
    githubSubjectPrefix,
    mainBranch,
    environments,
    location,
    namePrefix,
    operatorPrincipalType,
  };
}

/** A list given as a YAML array or as the JSON string Pulumi config stores for one. */
function parseList(value: unknown, fallback: string[], problems: string[]): string[] {
  if (value === undefined || value === "") return fallback;
  let list: unknown = value;
  if (typeof value === "string") {
    try {
      list = JSON.parse(value);
    } catch {
      list = value.split(",").map((v) => v.trim());
    }
  }
  if (!Array.isArray(list) || !list.every((v): v is string => typeof v === "string")) {
    problems.push("environments must be a list of names, e.g. [dev, prod]");
    return fallback;
  }
  return list;
}

export function readBootstrapConfig(): BootstrapConfig {
  const prefix = `${bootstrapProjectName}:`;
  const raw: Record<string, string> = {};
  for (const [key, value] of Object.entries(pulumi.runtime.allConfig())) {
    if (key.startsWith(prefix)) raw[key.slice(prefix.length)] = value;
  }
  return parseBootstrapConfig(raw);
}
