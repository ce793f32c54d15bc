// Writing a fleet's rules to etcd, each write one etcd transaction guarded
// by compare-and-swap on mod revisions, so no writer overwrites what it has
// not seen:
//
//   - push(): a whole rule file becomes the rule set under the prefix (aclfs
//     push). The rules are read at one revision, compared with the file, and
//     only the differences are written, in one transaction that holds only
//     if no rule key changed since that read.
//   - FleetWriter: a change made through a daemon's admin API with
//     --sync-writable. Each key written must still have the mod revision
//     this host last applied for it (0: absent); the loser of two concurrent
//     writes gets a conflict. The change reaches the local database through
//     the watch, like any other, and the write returns once it has.
import { conflict, forbidden, unavailable } from '../errors';
import type { RuleInput } from '../rules/types';
import type { RuleStore } from '../store/store';
import { deleteOp, describeEtcdError, type EtcdConnection, prefixUnchangedSince, putOp, unchangedSince } from './etcd';
import type { Follower } from './follower';
import { RuleKeys } from './target';
import { ruleValue } from './values';

/** What a push changes (or, dry, would change). */
export interface PushPlan {
  /** The revision the rules were read at. */
  readonly readRevision: number;
  readonly added: readonly { readonly path: string; readonly value: string }[];
  readonly changed: readonly { readonly path: string; readonly value: string; readonly before: string }[];
  readonly removed: readonly { readonly path: string; readonly before: string }[];
  readonly unchanged: number;
  /** Keys under the rules prefix that name no rule path: deleted by a push too. */
  readonly foreign: readonly string[];
}

export interface PushResult extends PushPlan {
  /** The revision of the push's transaction; null when there was nothing to change (or dry). */
  readonly revision: number | null;
}

/** The differences between the rules under `prefix` and `rules` (canonical paths, no duplicates). */
export async function planPush(etcd: EtcdConnection, prefix: string, rules: readonly RuleInput[]): Promise<PushPlan> {
  const keys = new RuleKeys(prefix);
  const read = await etcd.readPrefix(keys.rulesPrefix);
  const current = new Map<string, string>();
  const foreign: string[] = [];
  for (const kv of read.kvs) {
    const path = keys.pathOf(kv.key);
    if (path === null) foreign.push(kv.key);
    else current.set(path, kv.value.toString('utf8'));
  }
  const added: { path: string; value: string }[] = [];
  const changed: { path: string; value: string; before: string }[] = [];
  let unchanged = 0;
  const wanted = new Set<string>();
  for (const rule of rules) {
    wanted.add(rule.path);
    const value = ruleValue(rule);
    const before = current.get(rule.path);
    if (before === undefined) added.push({ path: rule.path, value });
    else if (before !== value) changed.push({ path: rule.path, value, before });
    else unchanged++;
  }
  const removed = [...current].filter(([path]) => !wanted.has(path)).map(([path, before]) => ({ path, before }));
  return { readRevision: read.revision, added, changed, removed, unchanged, foreign };
}

/**
 * Makes `rules` the rule set under `prefix` in one etcd transaction (only
 * the differences are written). Conflict when a rule key changed between
 * the read and the transaction; the push can simply be run again.
 */
export async function push(etcd: EtcdConnection, prefix: string, rules: readonly RuleInput[], dryRun: boolean): Promise<PushResult> {
  const keys = new RuleKeys(prefix);
  let plan: PushPlan;
  try {
    plan = await planPush(etcd, prefix, rules);
  } catch (err) {
    throw etcdRefusal(err, 0);
  }
  const ops = [
    ...plan.added.map((a) => putOp(keys.keyOf(a.path), a.value)),
    ...plan.changed.map((c) => putOp(keys.keyOf(c.path), c.value)),
    ...plan.removed.map((r) => deleteOp(keys.keyOf(r.path))),
    ...plan.foreign.map((key) => deleteOp(key)),
  ];
  if (dryRun || ops.length === 0) return { ...plan, revision: null };
  let res;
  try {
    res = await etcd.txn([prefixUnchangedSince(keys.rulesPrefix, plan.readRevision)], ops);
  } catch (err) {
    throw etcdRefusal(err, ops.length);
  }
  if (!res.succeeded) throw conflict(`the rules under ${keys.rulesPrefix} changed after revision ${plan.readRevision} while pushing: nothing was written; push again`);
  return { ...plan, revision: Number(res.header.revision) };
}

/** One change through the admin API: the rule now at `path`, or none. */
export interface FleetChange {
  readonly path: string;
  readonly rule: RuleInput | null;
}

/** How long a write through the API waits for its change to come back through the watch. */
const APPLY_WAIT_MS = 5000;

export class FleetWriter {
  private readonly keys: RuleKeys;

  constructor(
    private readonly follower: Follower,
    private readonly store: RuleStore,
  ) {
    this.keys = follower.keys;
  }

  /**
   * Writes `changes` in one etcd transaction, each key compared with the
   * mod revision applied here, and waits until the local database has
   * applied it. Conflict when another writer got there first.
   */
  async write(changes: readonly FleetChange[]): Promise<number> {
    const compare = changes.map((c) => unchangedSince(this.keys.keyOf(c.path), this.store.syncRevisionOf(c.path) ?? 0));
    const ops = changes.map((c) => (c.rule === null ? deleteOp(this.keys.keyOf(c.path)) : putOp(this.keys.keyOf(c.path), ruleValue(c.rule))));
    let res;
    try {
      res = await this.follower.etcd.txn(compare, ops);
    } catch (err) {
      throw etcdRefusal(err, ops.length);
    }
    const paths = changes.map((c) => c.path).join(', ');
    if (!res.succeeded) {
      throw conflict(`the rule at ${paths} was changed in etcd by another writer since this host applied it: nothing was written; look at it again (aclfs rule show) and retry`);
    }
    const revision = Number(res.header.revision);
    if (!(await this.follower.waitApplied(revision, APPLY_WAIT_MS))) {
      throw unavailable(`written to etcd at revision ${revision}, but not applied on this host within ${APPLY_WAIT_MS / 1000} s (see aclfs status)`);
    }
    return revision;
  }
}

/** An etcd failure as one line: unreachable, or a transaction over etcd's own limits. */
function etcdRefusal(err: unknown, ops: number): Error {
  const message = err instanceof Error ? err.message : String(err);
  if (/too many operations/i.test(message)) {
    return conflict(`etcd refused a transaction of ${ops} operations (its --max-txn-ops, default 128, bounds how many rules one push may change): raise it on the etcd servers`);
  }
  if (/too large/i.test(message)) {
    return conflict(`etcd refused the transaction as too large (its --max-request-bytes, default 1.5 MiB): raise it on the etcd servers`);
  }
  if (/permission denied|user name is empty|authentication failed|invalid auth token|bad certificate/i.test(message)) {
    return forbidden(`etcd: ${describeEtcdError(err)}`);
  }
  return unavailable(`etcd: ${describeEtcdError(err)}`);
}
