/**
 * The resource tree as the program built it. Pulumi keeps each resource's parent and children on
 * the resource object (`__parentResource`, `__childResources`, `__name`, internal since the SDK's
 * first releases); mocks do not report parents, so the tests read the tree from there.
 */
import * as pulumi from "@pulumi/pulumi";
import { valueOf } from "./mocks";

interface ResourceInternals {
  readonly __name?: string;
  readonly __childResources?: Set<pulumi.Resource>;
}

export function logicalName(resource: pulumi.Resource): string {
  const name = (resource as unknown as ResourceInternals).__name;
  if (name === undefined) throw new Error("resource has no name: the Pulumi SDK's internals changed");
  return name;
}

export function childrenOf(resource: pulumi.Resource): pulumi.Resource[] {
  return [...((resource as unknown as ResourceInternals).__childResources ?? [])];
}

/** Every resource under the roots, roots included. */
export function descendants(roots: pulumi.Resource[]): pulumi.Resource[] {
  const all: pulumi.Resource[] = [];
  const visit = (r: pulumi.Resource) => {
    all.push(r);
    childrenOf(r).forEach(visit);
  };
  roots.forEach(visit);
  return all;
}

/** Resolves once every resource under the roots is registered (its URN known). */
export async function registered(roots: pulumi.Resource[]): Promise<string[]> {
  return Promise.all(descendants(roots).map((r) => valueOf(r.urn)));
}
