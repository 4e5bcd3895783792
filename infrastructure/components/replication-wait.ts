/**
 * A pause after a new managed identity is created, for services that look a principal up in Entra
 * without being told its type. Azure RBAC role assignments take `principalType: ServicePrincipal`
 * and accept a principal Entra has not replicated yet; Cosmos DB SQL role assignments have no such
 * hint and fail with "principal ID ... was not found in the AAD tenant" for an identity created
 * seconds earlier (pulumi-azure-native 2816). Microsoft's guidance for new identities is to wait
 * 30-60 s or retry.
 *
 * A Pulumi dynamic resource whose create only waits: `pulumi up` shows it as
 * `<app>-entra-replication-wait  creating (Ns)`. It is created once per identity (a replaced identity
 * waits again) and costs nothing later. On a fresh stack it overlaps the Cosmos account's creation,
 * which takes minutes, so it rarely adds to the total time.
 */
import * as pulumi from "@pulumi/pulumi";

/** Seconds waited after an identity is created; the upper end of Microsoft's 30-60 s advice. */
export const entraReplicationSeconds = 60;

// Plain code only: Pulumi serialises these methods as closures and runs them in another process.
const replicationWaitProvider: pulumi.dynamic.ResourceProvider = {
  async create(inputs) {
    await new Promise((resolve) => setTimeout(resolve, Number(inputs["seconds"]) * 1000));
    return { id: String(inputs["principalId"]), outs: inputs };
  },
  async diff(_id, olds, news) {
    const replaced = olds["principalId"] !== news["principalId"];
    return { changes: replaced || olds["seconds"] !== news["seconds"], replaces: replaced ? ["principalId"] : [], deleteBeforeReplace: false };
  },
  async update(_id, _olds, news) {
    return { outs: news };
  },
};

export interface ReplicationWaitArgs {
  /** The new principal's object ID: a new principal waits again. */
  readonly principalId: pulumi.Input<string>;
  /** @default entraReplicationSeconds */
  readonly seconds?: number;
}

export class ReplicationWait extends pulumi.dynamic.Resource {
  declare readonly principalId: pulumi.Output<string>;

  constructor(name: string, args: ReplicationWaitArgs, opts?: pulumi.CustomResourceOptions) {
    super(replicationWaitProvider, name, { principalId: args.principalId, seconds: args.seconds ?? entraReplicationSeconds }, opts, "platform", "ReplicationWait");
  }
}
