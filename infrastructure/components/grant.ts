/**
 * The shared mechanics of the components' grant methods: who receives access, and one role
 * assignment at a given scope.
 */
import * as pulumi from "@pulumi/pulumi";
import * as authorization from "@pulumi/azure-native/authorization";
import { deterministicGuid, roleDefinitionId, builtInRoles, type BuiltInRole } from "../roles";

/** A principal that can be granted access: a function app's identity, or the deploying user/CI principal. */
export interface Grantee {
  /** Short, stable name used in the role assignments' resource names, e.g. `api`, `deployer`. */
  readonly granteeName: string;
  /** The Entra object ID of the principal. */
  readonly principalId: pulumi.Input<string>;
  /**
   * Managed identities are `ServicePrincipal`: stating it avoids PrincipalNotFound while a fresh
   * identity replicates through Entra.
   */
  readonly principalType: "ServicePrincipal" | "User" | "Group";
  /**
   * Completes once a newly created principal is visible to services that cannot be told its type
   * (Cosmos DB SQL role assignments): their grants depend on it. Absent for principals that exist
   * before the deployment (the deployer).
   */
  readonly replicated?: pulumi.Resource;
}

/**
 * One Azure RBAC role assignment of `role` to `grantee` at `scope`, named deterministically from
 * scope + role + principal, created as a child of the component that owns the scope.
 */
export function assignRole(
  owner: pulumi.ComponentResource,
  resourceName: string,
  scope: pulumi.Input<string>,
  role: BuiltInRole,
  grantee: Grantee,
  dependsOn: pulumi.Resource[] = [],
): authorization.RoleAssignment {
  return new authorization.RoleAssignment(
    resourceName,
    {
      scope,
      roleDefinitionId: pulumi.output(scope).apply((s) => roleDefinitionId(s, role)),
      principalId: grantee.principalId,
      principalType: grantee.principalType,
      roleAssignmentName: pulumi
        .all([scope, grantee.principalId])
        .apply(([s, principal]) => deterministicGuid(s, builtInRoles[role], principal)),
    },
    { parent: owner, dependsOn },
  );
}
