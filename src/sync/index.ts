// Fleet sync: the rules of many hosts kept in etcd (docs/fleet.md). What
// main.ts wires: the daemon's follower and writer, and `aclfs push`.
import type { RuleInput } from '../rules/types';
import { EtcdConnection } from './etcd';
import { push, type PushResult } from './publish';
import { syncTarget, type SyncArgs } from './target';

export { Follower, type FollowerStatus, type SyncLog, type SyncState } from './follower';
export { FleetWriter, type FleetChange, type PushPlan, type PushResult } from './publish';
export { RuleKeys, syncTarget, type SyncArgs, type SyncTarget } from './target';

/** `aclfs push`: `rules` (validated) become the rule set under the prefix of `args`. */
export async function pushRules(args: SyncArgs, rules: readonly RuleInput[], dryRun: boolean): Promise<PushResult> {
  const target = syncTarget(args);
  const etcd = new EtcdConnection(target);
  try {
    return await push(etcd, target.prefix, rules, dryRun);
  } finally {
    etcd.close();
  }
}
