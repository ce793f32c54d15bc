// What a candidate rule set would have decided for the accesses the audit
// log recorded: each record decided again against the candidate, and those
// whose decision changes, grouped by the candidate's deciding rule. Pure.
//
// A record is decided again by path and by the caller's ids as recorded
// (a candidate's rules are bound to no file). Records that cannot be
// decided again are skipped and counted: changes made over the admin API,
// records without their requested access, and callers whose supplementary
// groups were unknown when a candidate rule has group entries.

import { parseAccessString } from './access';
import type { AuditRecord } from './audit';
import { decide, describeDecision } from './decide';
import type { DefaultPolicy, RuleView } from './types';

/** One recorded access whose decision the candidate changes. */
export interface ReplayedAccess {
  readonly seq: number;
  readonly time: string;
  readonly uid: number;
  readonly op: string;
  readonly path: string;
  readonly access: string;
  readonly was: 'allow' | 'deny';
  readonly now: 'allow' | 'deny';
  /** Why the candidate decides so, as `check` words it. */
  readonly reason: string;
}

/** The changed accesses one candidate rule (or its default policy: rule null) decides. */
export interface ReplayGroup {
  readonly rule: { readonly id: number; readonly path: string } | null;
  /** Denied then, allowed by the candidate. */
  readonly toAllow: number;
  /** Allowed then, denied by the candidate. */
  readonly toDeny: number;
  /** Its changed accesses, oldest first: every one, up to the replay's limit per rule (toAllow + toDeny count them all). */
  readonly accesses: readonly ReplayedAccess[];
}

export interface ReplayResult {
  /** Records decided again. */
  readonly examined: number;
  /** Records that could not be (see the top of this file). */
  readonly skipped: number;
  readonly changed: number;
  /** Most changes first. */
  readonly groups: readonly ReplayGroup[];
}

/** Changed accesses listed per rule unless asked otherwise, and at most. */
export const DEFAULT_REPLAY_LIMIT = 1000;
export const MAX_REPLAY_LIMIT = 100_000;

/** Replays records one at a time (a log can be larger than memory would hold). */
export class Replay {
  private examined = 0;
  private skipped = 0;
  private changed = 0;
  private readonly groups = new Map<string, { rule: ReplayGroup['rule']; toAllow: number; toDeny: number; accesses: ReplayedAccess[] }>();

  constructor(
    private readonly candidate: RuleView,
    private readonly defaultPolicy: DefaultPolicy,
    /** Changed accesses listed per rule (all are counted). */
    private readonly limit: number = DEFAULT_REPLAY_LIMIT,
  ) {}

  add(record: AuditRecord): void {
    const requested = parseAccessString(record.access);
    if (record.op === 'admin' || requested === undefined || requested === 0) {
      this.skipped++;
      return;
    }
    const caller = { uid: record.uid, gid: record.gid, groups: record.groups === undefined ? null : record.groups, pid: record.pid };
    let decision;
    try {
      decision = decide(this.candidate, caller, { path: record.path, dev: 0, ino: 0 }, requested, this.defaultPolicy);
    } catch {
      this.skipped++;
      return;
    }
    this.examined++;
    const was = record.decision ?? 'deny';
    const now = decision.allow ? 'allow' : 'deny';
    if (was === now) return;
    this.changed++;
    const key = decision.ruleId === null ? 'default' : String(decision.ruleId);
    let group = this.groups.get(key);
    if (group === undefined) {
      group = { rule: decision.ruleId === null ? null : { id: decision.ruleId, path: decision.rulePath ?? '' }, toAllow: 0, toDeny: 0, accesses: [] };
      this.groups.set(key, group);
    }
    if (now === 'allow') group.toAllow++;
    else group.toDeny++;
    if (group.accesses.length < this.limit) {
      group.accesses.push({ seq: record.seq, time: record.time, uid: record.uid, op: record.op, path: record.path, access: record.access, was, now, reason: describeDecision(decision) });
    }
  }

  result(): ReplayResult {
    const groups = [...this.groups.values()].sort((a, b) => b.toAllow + b.toDeny - (a.toAllow + a.toDeny));
    return { examined: this.examined, skipped: this.skipped, changed: this.changed, groups };
  }
}
