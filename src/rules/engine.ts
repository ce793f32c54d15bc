// The policy engine the filesystem consults: decide() over the live store,
// with the decision cache in front, keyed by the commit epoch so any commit
// (from this process or another) invalidates every cached answer.
import type { DecisionCache } from './cache';
import { decide } from './decide';
import { checkMove, type Move, type MoveCheck, type MoveView } from './moves';
import type { Access, Caller, Decision, DefaultPolicy, Target } from './types';

/** A store as the engine sees it: lookups plus the commit epoch. */
export interface PolicySource extends MoveView {
  /**
   * The commit epoch, read before the lookups that follow see their
   * snapshot (RuleStore.snapshot, src/store/epoch.ts).
   */
  snapshot(): number;
}

/** A decision and the commit epoch it was made at. */
export interface Verdict {
  readonly decision: Decision;
  readonly epoch: number;
}

export interface DecisionCounters {
  allowed: number;
  denied: number;
  errors: number;
}

export class PolicyEngine {
  readonly counters: DecisionCounters = { allowed: 0, denied: 0, errors: 0 };

  constructor(
    private readonly source: PolicySource,
    private readonly cache: DecisionCache,
    readonly defaultPolicy: DefaultPolicy,
  ) {}

  epoch(): number {
    return this.source.snapshot();
  }

  /** Throws when it cannot decide; the caller must then deny. */
  check(caller: Caller, target: Target, requested: Access): Verdict {
    let decision: Decision;
    let epoch: number;
    try {
      epoch = this.source.snapshot();
      const cached = this.cache.get(epoch, caller, target, requested);
      if (cached !== undefined) {
        decision = cached;
      } else {
        decision = decide(this.source, caller, target, requested, this.defaultPolicy);
        this.cache.set(epoch, caller, target, requested, decision);
      }
    } catch (err) {
      this.counters.errors++;
      throw err;
    }
    if (decision.allow) this.counters.allowed++;
    else this.counters.denied++;
    return { decision, epoch };
  }

  /**
   * Whether the cache holds an answer to this question at the current
   * commit epoch, so that check() would not decide it again; looked at
   * without counting (an explained `check` reports it).
   */
  cached(caller: Caller, target: Target, requested: Access): boolean {
    return this.cache.peek(this.source.snapshot(), caller, target, requested) !== undefined;
  }

  /** Whether a link or rename keeps every object under the rule that governs it (moves.ts); throws when it cannot tell. */
  checkMove(move: Move): MoveCheck {
    return checkMove(this.source, move);
  }

  /**
   * Whether `decision` (just made by check() for this caller) holds for
   * every process with the caller's uid and gid, whatever its supplementary
   * groups. Only such allows may be replayed by the binding's fast path,
   * which knows a caller's uid and gid but not its groups. decide() with
   * the groups unknown throws exactly when a group entry could change the
   * answer; otherwise its answer is the same for any groups.
   */
  holdsForAnyGroups(caller: Caller, target: Target, requested: Access, decision: Decision): boolean {
    const kind = decision.source.kind;
    if (kind === 'owner' || kind === 'user' || kind === 'default-policy') return true;
    try {
      return decide(this.source, { ...caller, groups: null }, target, requested, this.defaultPolicy).allow === decision.allow;
    } catch {
      return false;
    }
  }
}
