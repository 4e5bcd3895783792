/**
 * A random suffix chosen when the resource is created and kept in the stack's state: the same on
 * every later `pulumi up`, a new one after `pulumi destroy` (the state is gone) or when one of its
 * `keepers` changes. For names Azure keeps reserved after deletion, such as API Management's,
 * which stays soft-deleted (and its name taken) for 48 hours.
 *
 * A Pulumi dynamic resource, like replication-wait.ts, so no extra provider plugin is needed.
 */
import * as pulumi from "@pulumi/pulumi";

const ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789";

/** `length` random lowercase letters and digits from a cryptographic source (unbiased: 256 % 36 rejected). */
export function randomSuffix(length: number): string {
  // Required here, not imported: Pulumi serialises the provider's methods with what they close over.
  const { randomBytes } = require("node:crypto") as typeof import("node:crypto");
  let result = "";
  while (result.length < length) {
    for (const byte of randomBytes(length * 2)) {
      if (byte < 252 && result.length < length) result += ALPHABET.charAt(byte % 36);
    }
  }
  return result;
}

// Plain code only: Pulumi serialises these methods as closures and runs them in another process.
export const uniqueSuffixProvider: pulumi.dynamic.ResourceProvider = {
  async create(inputs) {
    const suffix = randomSuffix(Number(inputs["length"]));
    return { id: suffix, outs: { ...inputs, suffix } };
  },
  async diff(_id, olds, news) {
    const replaces = ["length", "keepers"].filter((key) => JSON.stringify(olds[key] ?? null) !== JSON.stringify(news[key] ?? null));
    return { changes: replaces.length > 0, replaces, deleteBeforeReplace: false };
  },
};

export interface UniqueSuffixArgs {
  /** Number of characters. */
  readonly length: number;
  /**
   * Values whose change must give a new suffix (and so a new name), e.g. the location: a resource
   * that Azure can only replace gets a free name for its replacement.
   * @default {}
   */
  readonly keepers?: pulumi.Input<Record<string, pulumi.Input<string>>>;
}

export class UniqueSuffix extends pulumi.dynamic.Resource {
  declare readonly suffix: pulumi.Output<string>;

  constructor(name: string, args: UniqueSuffixArgs, opts?: pulumi.CustomResourceOptions) {
    super(uniqueSuffixProvider, name, { length: args.length, keepers: args.keepers ?? {}, suffix: undefined }, opts, "platform", "UniqueSuffix");
  }
}
