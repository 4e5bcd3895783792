/**
 * Client permissions, as Web PubSub models them: a connection may join/leave or send to groups
 * only when its roles allow it. Roles come from the access token's `role` claim, from a connect
 * handler's reply, and from the REST grant/revoke calls.
 *   webpubsub.joinLeaveGroup        every group
 *   webpubsub.joinLeaveGroup.<g>    group <g> only
 *   webpubsub.sendToGroup / webpubsub.sendToGroup.<g>   likewise for sending
 */

export const permissions = ["joinLeaveGroup", "sendToGroup"] as const;
export type Permission = (typeof permissions)[number];

export function isPermission(value: string): value is Permission {
  return (permissions as readonly string[]).includes(value);
}

/** The permissions one connection holds: a grant for every group, or for named groups. */
export class PermissionSet {
  private readonly allGroups = new Set<Permission>();
  private readonly perGroup = new Map<Permission, Set<string>>();

  /** Builds the set from role strings; roles that are not permissions are ignored. */
  static fromRoles(roles: Iterable<string>): PermissionSet {
    const set = new PermissionSet();
    for (const role of roles) {
      for (const permission of permissions) {
        const prefix = `webpubsub.${permission}`;
        if (role === prefix) set.grant(permission);
        else if (role.startsWith(`${prefix}.`)) set.grant(permission, role.slice(prefix.length + 1));
      }
    }
    return set;
  }

  grant(permission: Permission, group?: string): void {
    if (group === undefined) {
      this.allGroups.add(permission);
      return;
    }
    let groups = this.perGroup.get(permission);
    if (!groups) this.perGroup.set(permission, (groups = new Set()));
    groups.add(group);
  }

  /** Without a group, removes the permission for every group, including per-group grants. */
  revoke(permission: Permission, group?: string): void {
    if (group === undefined) {
      this.allGroups.delete(permission);
      this.perGroup.delete(permission);
      return;
    }
    this.perGroup.get(permission)?.delete(group);
  }

  /** Without a group, true only for a grant that covers every group. */
  has(permission: Permission, group?: string): boolean {
    if (this.allGroups.has(permission)) return true;
    return group !== undefined && (this.perGroup.get(permission)?.has(group) ?? false);
  }
}
