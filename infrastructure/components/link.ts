/**
 * What a component hands a Function App for one link of the service registry: the endpoint the
 * link's connection setting holds in Azure, and the role assignments the link stands for. The
 * FunctionApp derives its settings and its grants from the same Link objects, so a setting without
 * its grant, or a grant without its setting, cannot be written.
 */
import type * as pulumi from "@pulumi/pulumi";
import type { AnyLinkDeclaration, ConnectionFamily } from "../../functions/src/platform/links";
import type { Grantee } from "./grant";

export interface Link {
  /** The registry's declaration this link fulfils. */
  readonly declaration: AnyLinkDeclaration;
  readonly family: ConnectionFamily;
  /** The family's endpoint: namespace FQDN, account endpoint, blob service URI or service URI. */
  readonly endpoint: pulumi.Input<string>;
  /** The role assignments at the narrowest scope that give the grantee this link's access. */
  grant(grantee: Grantee): pulumi.Resource[];
}

/**
 * One role assignment per grantee and key, made on first use: two links that need the same role at
 * the same scope (two Cosmos containers of one database, two hubs of one service) share it.
 */
export class GrantsOnce {
  private readonly made = new Map<string, pulumi.Resource>();

  get(grantee: Grantee, key: string, make: () => pulumi.Resource): pulumi.Resource {
    const id = `${grantee.granteeName}/${key}`;
    let grant = this.made.get(id);
    if (!grant) {
      grant = make();
      this.made.set(id, grant);
    }
    return grant;
  }
}
