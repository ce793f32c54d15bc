// The decision function of docs/product.md ("Decisions"). Pure and
// synchronous: everything it knows comes from its arguments, and the only
// lookups go through the RuleView (LMDB's memory map, or maps in tests).
// Callers treat a throw as "deny" (fail closed), so every malformed input
// throws rather than guessing.

import { invalid } from '../errors';
import { accessLetters, formatAccess, isAccess } from './access';
import { normalizePath, parentPath } from './path';
import type {
  Access,
  Caller,
  Decision,
  DefaultPolicy,
  GrantSource,
  MatchKind,
  Rule,
  RuleView,
  Target,
} from './types';

export { normalizePath } from './path';

const ALL: Access = 7;

export interface GoverningRule {
  readonly rule: Rule;
  readonly match: Exclude<MatchKind, 'default'>;
}

export interface Grant {
  readonly granted: Access;
  readonly source: GrantSource;
}

/**
 * One step of a decision, in the order decide() takes it (see
 * explainDecision in explain.ts, which words them). Made only when a
 * decision is traced: decide() itself builds none.
 */
export type DecisionStep =
  | {
      /** The rule index by dev:ino. `file` false: the target has no identity yet (dev and ino 0, a file that does not exist). */
      readonly kind: 'inode';
      readonly dev: number;
      readonly ino: number;
      readonly file: boolean;
      /** hit: the indexed rule is bound to this very file; stale: the index points to a rule bound elsewhere; reused: same dev:ino, another birth time (the inode number was reused). */
      readonly result: 'hit' | 'miss' | 'stale' | 'reused';
      readonly rule: RuleRef | null;
    }
  | { readonly kind: 'path'; readonly path: string; readonly rule: RuleRef | null }
  | {
      /** One ancestor walked: its rule governs when recursive; a non-recursive one is skipped. */
      readonly kind: 'ancestor';
      readonly path: string;
      readonly rule: RuleRef | null;
    }
  | { readonly kind: 'default'; readonly policy: DefaultPolicy }
  | {
      /** What the governing rule grants this caller, and from which part of it. */
      readonly kind: 'grant';
      readonly rule: RuleRef;
      readonly source: GrantSource;
      readonly granted: Access;
    };

/** A rule as a step names it. */
export interface RuleRef {
  readonly id: number;
  readonly path: string;
  readonly recursive: boolean;
  readonly auditOnly: boolean;
}

/** Receives each step of a traced decision. */
export type DecisionTrace = (step: DecisionStep) => void;

export function decide(
  view: RuleView,
  caller: Caller,
  target: Target,
  requested: Access,
  defaultPolicy: DefaultPolicy,
  now?: number,
): Decision {
  return traceDecision(view, caller, target, requested, defaultPolicy, undefined, now);
}

/**
 * decide(), telling `trace` each step as it is taken (none when it is
 * undefined). decide() is this function without a trace, so a traced
 * decision is the decision itself, not a reconstruction of it.
 */
export function traceDecision(
  view: RuleView,
  caller: Caller,
  target: Target,
  requested: Access,
  defaultPolicy: DefaultPolicy,
  trace: DecisionTrace | undefined,
  now?: number,
): Decision {
  checkRequested(requested);
  checkCaller(caller);
  const path = normalizePath(target.path);
  const governing = governingRule(view, path === target.path ? target : { ...target, path }, trace);
  if (governing === null) {
    const decision = defaultDecision(requested, defaultPolicy);
    if (trace !== undefined && decision.source.kind === 'default-policy') trace({ kind: 'default', policy: decision.source.policy });
    return decision;
  }
  const { granted, source } = grantedBits(governing.rule, caller, now);
  if (trace !== undefined) trace({ kind: 'grant', rule: ruleRef(governing.rule), source, granted });
  return {
    allow: (granted & requested) === requested,
    requested,
    granted,
    ruleId: governing.rule.id,
    rulePath: governing.rule.path,
    match: governing.match,
    source,
    revocable: governing.rule.revocable === true,
    auditOnly: governing.rule.auditOnly === true,
  };
}

/**
 * Step 1: the rule bound to the target's dev:ino, else the rule for its exact
 * path, else the nearest recursive ancestor (non-recursive ancestors are
 * skipped, they govern only themselves). Null means "default policy".
 * `target.path` must already be canonical.
 */
export function findGoverningRule(view: RuleView, target: Target): GoverningRule | null {
  return governingRule(view, target, undefined);
}

function governingRule(view: RuleView, target: Target, trace: DecisionTrace | undefined): GoverningRule | null {
  const byInode = view.byInode(target.dev, target.ino);
  // The index is only a pointer; the rule's own binding must agree, so a
  // stale index entry can never hand a file another file's rule.
  const bound = byInode !== undefined && byInode.dev === target.dev && byInode.ino === target.ino;
  const governs = bound && sameBirth(byInode, target);
  if (trace !== undefined) {
    trace({
      kind: 'inode',
      dev: target.dev,
      ino: target.ino,
      file: target.dev !== 0 || target.ino !== 0,
      result: byInode === undefined ? 'miss' : governs ? 'hit' : bound ? 'reused' : 'stale',
      rule: byInode === undefined ? null : ruleRef(byInode),
    });
  }
  if (governs) return { rule: byInode, match: 'inode' };
  const exact = view.byPath(target.path);
  if (trace !== undefined) trace({ kind: 'path', path: target.path, rule: exact === undefined ? null : ruleRef(exact) });
  if (exact !== undefined) return { rule: exact, match: 'path' };
  for (let dir = parentPath(target.path); dir !== null; dir = parentPath(dir)) {
    const rule = view.byPath(dir);
    if (trace !== undefined) trace({ kind: 'ancestor', path: dir, rule: rule === undefined ? null : ruleRef(rule) });
    if (rule !== undefined && rule.recursive) return { rule, match: 'ancestor' };
  }
  return null;
}

function ruleRef(rule: Rule): RuleRef {
  return { id: rule.id, path: rule.path, recursive: rule.recursive, auditOnly: rule.auditOnly === true };
}

/**
 * A rule bound to a dev:ino applies only to the file it was bound to: when
 * both birth times are known they must agree, or the inode number has been
 * reused by another file.
 */
function sameBirth(rule: Rule, target: Target): boolean {
  const a = rule.birth ?? null;
  const b = target.birth ?? null;
  return a === null || b === null || a === b;
}

/**
 * Step 2: owner → rwx; else own user entry; else union of group entries;
 * else defaccess. An entry past its expiry counts as absent: `now` (ms
 * since the epoch; the clock when not given) is read only for a rule that
 * has an expiring entry.
 */
export function grantedBits(rule: Rule, caller: Caller, now?: number): Grant {
  if (caller.uid === rule.owner) return { granted: ALL, source: { kind: 'owner' } };
  // No closure per decision: this runs for every decision the cache misses.
  let at = now;
  for (const entry of rule.acl) {
    if ('user' in entry && entry.user === caller.uid && (entry.expires === undefined || entry.expires > (at ??= Date.now()))) {
      return { granted: entry.access, source: { kind: 'user', uid: entry.user } };
    }
  }
  let union = 0;
  const gids: number[] = [];
  for (const entry of rule.acl) {
    if (!('group' in entry) || (entry.expires !== undefined && entry.expires <= (at ??= Date.now()))) continue;
    if (caller.groups === null && entry.group !== caller.gid) {
      // An unknown supplementary group might match this entry, and that
      // would change the answer either way: refuse to guess.
      throw invalid(`rule ${rule.id} has group entries and the caller's supplementary groups are unknown`);
    }
    if (inGroup(caller, entry.group)) {
      union |= entry.access;
      gids.push(entry.group);
    }
  }
  if (gids.length > 0) return { granted: union, source: { kind: 'groups', gids } };
  return { granted: rule.defaccess, source: { kind: 'defaccess' } };
}

function inGroup(caller: Caller, gid: number): boolean {
  return caller.gid === gid || (caller.groups?.includes(gid) ?? false);
}

function defaultDecision(requested: Access, policy: DefaultPolicy): Decision {
  // Anything but an explicit 'allow' is deny: a typo must not open the mount.
  const effective: DefaultPolicy = policy === 'allow' ? 'allow' : 'deny';
  const granted = effective === 'allow' ? ALL : 0;
  return {
    allow: (granted & requested) === requested,
    requested,
    granted,
    ruleId: null,
    rulePath: null,
    match: 'default',
    source: { kind: 'default-policy', policy: effective },
    revocable: false,
    auditOnly: false,
  };
}

function checkRequested(requested: Access): void {
  // 0 would be allowed by every rule, which hides a caller bug; refuse it.
  if (!isAccess(requested) || requested === 0) {
    throw invalid(`requested access must be 1-7, got ${String(requested)}`);
  }
}

function checkCaller(caller: Caller): void {
  if (!isId(caller.uid) || !isId(caller.gid) || !(caller.groups === null || Array.isArray(caller.groups))) {
    throw invalid('caller identity is missing or malformed');
  }
}

function isId(n: unknown): boolean {
  return typeof n === 'number' && Number.isInteger(n) && n >= 0;
}

const MATCH_WORDS: Record<Exclude<MatchKind, 'default'>, string> = {
  inode: 'by inode',
  path: 'by path',
  ancestor: 'by recursive ancestor',
};

/**
 * One line, e.g.
 * `deny: rule 7 (/docs/secret.txt, by path): defaccess --- lacks r` or
 * `allow: rule 3 (/docs, by recursive ancestor): groups 100,200 r-x grants r`.
 */
export function describeDecision(d: Decision): string {
  const verdict = d.allow ? 'allow' : 'deny';
  const governing =
    d.match === 'default' ? 'no rule' : `rule ${String(d.ruleId)} (${String(d.rulePath)}, ${MATCH_WORDS[d.match]})`;
  const outcome = d.allow
    ? `grants ${accessLetters(d.requested)}`
    : `lacks ${accessLetters(d.requested & ~d.granted)}`;
  return `${verdict}: ${governing}: ${describeSource(d.source)} ${formatAccess(d.granted)} ${outcome}`;
}

function describeSource(source: GrantSource): string {
  switch (source.kind) {
    case 'owner':
      return 'owner';
    case 'user':
      return `user ${source.uid}`;
    case 'groups':
      return `${source.gids.length === 1 ? 'group' : 'groups'} ${source.gids.join(',')}`;
    case 'defaccess':
      return 'defaccess';
    case 'default-policy':
      return `default policy ${source.policy}`;
  }
}
