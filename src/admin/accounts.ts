// Who a user is, for `check`: names to ids, the primary group and the
// supplementary groups a login of that user would get. The account files
// are read in one place, the system's name resolver; this is what the admin
// service needs of it.
import type { NameResolver } from '../rules/names';

export interface Accounts extends NameResolver {
  /** Primary gid of uid from /etc/passwd; undefined if uid has no entry. */
  primaryGid(uid: number): number | undefined;
  /** gids of the groups whose member list names uid's user (empty if none or unknown). */
  memberGroups(uid: number): number[];
}

export { SystemNameResolver as SystemAccounts } from '../system/names';
