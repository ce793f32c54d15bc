// The policy engine the filesystem consults: decide() over the live store,
// with the decision cache in front, keyed by the rule generation so any
// commit (from this process or another) invalidates every cached answer.
import type { DecisionCache } from './cache';
import { decide } from './decide';
import type { Access, Caller, Decision, DefaultPolicy, RuleView, Target } from './types';

/** A store as the engine sees it: lookups plus the commit generation. */
export interface PolicySource extends RuleView {
  generation(): number;
}

/** A decision and the rule generation it was made at. */
export interface Verdict {
  readonly decision: Decision;
  readonly generation: number;
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

  generation(): number {
    return this.source.generation();
  }

  /** Throws when it cannot decide; the caller must then deny. */
  check(caller: Caller, target: Target, requested: Access): Verdict {
    let decision: Decision;
    let generation: number;
    try {
      generation = this.source.generation();
      const cached = this.cache.get(generation, caller, target, requested);
      if (cached !== undefined) {
        decision = cached;
      } else {
        decision = decide(this.source, caller, target, requested, this.defaultPolicy);
        this.cache.set(generation, caller, target, requested, decision);
      }
    } catch (err) {
      this.counters.errors++;
      throw err;
    }
    if (decision.allow) this.counters.allowed++;
    else this.counters.denied++;
    return { decision, generation };
  }
}
