/**
 * The command line of `npm run env`: parsed into a typed request, or refused with a message that
 * says what is wrong and how it is used.
 */

export const operations = ["up", "preview", "destroy"] as const;
export type Operation = (typeof operations)[number];

export interface EnvironmentRequest {
  readonly operation: Operation;
  readonly stack: string;
  /** Apply this stack's Pulumi.<stack>.yaml config first (the template of pr-<n> stacks is dev). */
  readonly configFrom?: string;
  /** key=value settings applied after configFrom (keys without a namespace are the project's). */
  readonly config: Readonly<Record<string, string>>;
  /** Policy pack directory for preview and up; undefined with --no-policy. */
  readonly policyPack?: string;
  readonly expectNoChanges: boolean;
  readonly refresh: boolean;
  /** destroy: remove the stack and its history afterwards. */
  readonly remove: boolean;
  /** Append the stack outputs as name=value lines to this file (GitHub's $GITHUB_OUTPUT). */
  readonly outputsTo?: string;
}

export class UsageError extends Error {
  override readonly name = "UsageError";
}

export const usage = `Usage: npm run env -- <up|preview|destroy> <stack> [options]

Creates or selects the stack, applies its configuration, runs the operation with progress, and
prints the stack outputs. The backend comes from \`pulumi login\` or PULUMI_BACKEND_URL; a new stack
gets the secrets provider in PULUMI_SECRETS_PROVIDER (the bootstrap prints both).

Options:
  --config-from <stack>   apply Pulumi.<stack>.yaml's settings first (pull-request stacks: dev)
  --config <key>=<value>  set one setting (repeatable), e.g. --config deployerPrincipalType=ServicePrincipal
  --policy-pack <dir>     policy pack for preview and up (default: policy)
  --no-policy             run without the policy pack
  --expect-no-changes     preview: fail if anything would change (the drift check)
  --refresh               preview/up: read the real state from Azure first
  --remove                destroy: also remove the stack and its history
  --outputs-to <file>     append the outputs as name=value lines (GitHub step outputs)
  --help                  show this text`;

/** Stack names as Pulumi accepts them, optionally `org/project/stack`. */
const stackPattern = /^[A-Za-z0-9._-]+(\/[A-Za-z0-9._-]+){0,2}$/;

export function parseArgs(argv: readonly string[]): EnvironmentRequest | "help" {
  if (argv.includes("--help") || argv.includes("-h")) return "help";
  const positional: string[] = [];
  const config: Record<string, string> = {};
  let configFrom: string | undefined;
  let policyPack: string | undefined = "policy";
  let outputsTo: string | undefined;
  let expectNoChanges = false;
  let refresh = false;
  let remove = false;

  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const value = (): string => {
      const next = argv[++i];
      if (next === undefined || next.startsWith("--")) throw new UsageError(`${arg} needs a value`);
      return next;
    };
    switch (arg) {
      case "--config-from":
        configFrom = value();
        if (!stackPattern.test(configFrom)) throw new UsageError(`--config-from ${configFrom}: not a stack name`);
        break;
      case "--config": {
        const setting = value();
        const eq = setting.indexOf("=");
        if (eq <= 0) throw new UsageError(`--config ${setting}: expected key=value`);
        config[setting.slice(0, eq)] = setting.slice(eq + 1);
        break;
      }
      case "--policy-pack":
        policyPack = value();
        break;
      case "--no-policy":
        policyPack = undefined;
        break;
      case "--expect-no-changes":
        expectNoChanges = true;
        break;
      case "--refresh":
        refresh = true;
        break;
      case "--remove":
        remove = true;
        break;
      case "--outputs-to":
        outputsTo = value();
        break;
      default:
        if (arg.startsWith("-")) throw new UsageError(`unknown option ${arg}`);
        positional.push(arg);
    }
  }

  const [operation, stack, ...extra] = positional;
  if (!operation || !stack) throw new UsageError("expected an operation and a stack, e.g. npm run env -- preview dev");
  if (extra.length > 0) throw new UsageError(`unexpected arguments: ${extra.join(" ")}`);
  const op = operations.find((o) => o === operation);
  if (!op) throw new UsageError(`unknown operation "${operation}"; use one of ${operations.join(", ")}`);
  if (!stackPattern.test(stack)) throw new UsageError(`"${stack}" is not a stack name (letters, digits, -, _ and .)`);
  if (expectNoChanges && op !== "preview") throw new UsageError("--expect-no-changes goes with preview");
  if (remove && op !== "destroy") throw new UsageError("--remove goes with destroy");
  return { operation: op, stack, configFrom, config, policyPack, expectNoChanges, refresh, remove, outputsTo };
}
