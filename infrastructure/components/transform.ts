/**
 * Transform hooks, as SST's components offer them: every child resource a component creates can be
 * changed by its user without forking the component. A transform is either a partial set of
 * arguments merged over the component's own (shallowly), or a function that changes the arguments
 * and options in place before the resource is created.
 *
 * @example
 * new Messaging("messaging", { ..., transform: { namespace: { zoneRedundant: true } } })
 * new Messaging("messaging", { ..., transform: { queue: (args, _opts, name) => { if (name.endsWith("-jobs")) args.maxSizeInMegabytes = 5120; } } })
 */
import type * as pulumi from "@pulumi/pulumi";

export type Transform<Args> = Partial<Args> | ((args: Args, opts: pulumi.CustomResourceOptions, name: string) => void);

/** Applies a transform to a child's arguments and options; returns them for the constructor. */
export function transformed<Args extends object>(
  transform: Transform<Args> | undefined,
  name: string,
  args: Args,
  opts: pulumi.CustomResourceOptions,
): [string, Args, pulumi.CustomResourceOptions] {
  if (transform === undefined) return [name, args, opts];
  if (typeof transform === "function") {
    const copy = { ...args };
    const options = { ...opts };
    transform(copy, options, name);
    return [name, copy, options];
  }
  return [name, { ...args, ...transform }, opts];
}
