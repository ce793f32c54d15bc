// Explained decisions: decide() with every step it takes, for `aclfs check
// --explain` and the API's check with "explain": true. The steps come from
// decide()'s own code (traceDecision), so an explanation cannot disagree
// with the decision it explains; this module only collects and words them.
import { formatAccess } from './access';
import { describeDecision, traceDecision, type DecisionStep, type RuleRef } from './decide';
import type { Access, Caller, Decision, DefaultPolicy, RuleView, Target } from './types';

export type { DecisionStep, RuleRef } from './decide';

/**
 * A step of an explanation: a decision step, or one the caller of
 * explainDecision knows of and decide() does not (whether the daemon's
 * decision cache holds an answer to the same question).
 */
export type ExplainStep = DecisionStep | { readonly kind: 'cache'; readonly hit: boolean };

export interface Explanation {
  /** Exactly what decide() returns for the same arguments. */
  readonly decision: Decision;
  /** In the order taken. */
  readonly steps: readonly DecisionStep[];
}

/** decide(), with its steps. Throws where decide() throws. */
export function explainDecision(
  view: RuleView,
  caller: Caller,
  target: Target,
  requested: Access,
  defaultPolicy: DefaultPolicy,
): Explanation {
  const steps: DecisionStep[] = [];
  const decision = traceDecision(view, caller, target, requested, defaultPolicy, (step) => steps.push(step));
  return { decision, steps };
}

function named(rule: RuleRef): string {
  return `rule ${rule.id} (${rule.path}${rule.recursive ? ', recursive' : ''}${rule.auditOnly ? ', audit-only' : ''})`;
}

/** One line per step, e.g. `ancestor /docs: rule 3 (/docs, recursive): governs`. */
export function describeStep(step: ExplainStep): string {
  switch (step.kind) {
    case 'cache':
      return step.hit
        ? 'decision cache: hit (the daemon holds an answer to this very question, made at the current commit)'
        : 'decision cache: miss (the daemon holds no answer to this very question yet)';
    case 'inode':
      if (!step.file && step.result === 'miss') return 'inode index: no file known at this path (none yet, or no mount to look in): nothing to look up by inode';
      switch (step.result) {
        case 'hit':
          return `inode index: dev ${step.dev} ino ${step.ino}: hit, ${named(step.rule!)} is bound to this file: governs`;
        case 'miss':
          return `inode index: dev ${step.dev} ino ${step.ino}: miss, no rule is bound to this file`;
        case 'stale':
          return `inode index: dev ${step.dev} ino ${step.ino}: points to ${named(step.rule!)}, bound to another file: ignored`;
        case 'reused':
          return `inode index: dev ${step.dev} ino ${step.ino}: ${named(step.rule!)} was bound to an earlier file with this inode number (birth time differs): ignored`;
      }
      break;
    case 'path':
      return step.rule === null ? `path ${step.path}: no rule` : `path ${step.path}: ${named(step.rule)}: governs`;
    case 'ancestor':
      if (step.rule === null) return `ancestor ${step.path}: no rule`;
      return step.rule.recursive
        ? `ancestor ${step.path}: ${named(step.rule)}: governs`
        : `ancestor ${step.path}: ${named(step.rule)}: not recursive, governs only ${step.path}: skipped`;
    case 'default':
      return `no rule governs: the default policy (${step.policy}) decides`;
    case 'grant':
      return `${named(step.rule)} grants ${formatAccess(step.granted)} through ${grantWords(step)}`;
  }
}

function grantWords(step: Extract<DecisionStep, { kind: 'grant' }>): string {
  switch (step.source.kind) {
    case 'owner':
      return 'its owner (the caller is the owner: rwx)';
    case 'user':
      return `its entry for user ${step.source.uid}`;
    case 'groups':
      return `its ${step.source.gids.length === 1 ? 'entry for group' : 'entries for groups'} ${step.source.gids.join(',')}`;
    case 'defaccess':
      return 'its default access (no entry names the caller)';
    case 'default-policy':
      return `the default policy ${step.source.policy}`;
  }
}

/** The last line of an explanation: the decision as check words it, and what an audit-only rule makes of a denial. */
export function describeOutcome(decision: Decision): string {
  const line = describeDecision(decision);
  return !decision.allow && decision.auditOnly ? `${line} (audit-only rule: let through and recorded as "would deny")` : line;
}
