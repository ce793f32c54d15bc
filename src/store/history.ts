// The history of the rule set: for every commit that changes it, what
// changed (each path's rule before and after, in the rule file's form),
// when, and by whom. Kept in the store's own environment, written in the
// commit's transaction, so a generation and its record are one. The rule
// set of an earlier generation is the rules now with the changes after it
// undone, newest first; a rollback writes that back as a new commit.
//
// Bounded: the newest `limit` records are kept, and a commit that changes
// more than `maxChanges` paths (a replacing import of a large rule file) is
// recorded by its count only. The floor is the oldest generation the
// records still reach back to: everything after it is recorded, so it and
// every later generation can be restored.
//
// Only what an export shows counts as a change: which file a rule is bound
// to (dev, ino, birth) is this host's state, not the rule set's, so binding
// and unbinding are not recorded.

import type { Rule } from '../rules/types';
import { toRuleFileRule, type RuleFileRule } from '../rules/ruleFile';

/** One path's rule before and after a commit (null: none). */
export interface RuleChange {
  readonly path: string;
  readonly before: RuleFileRule | null;
  readonly after: RuleFileRule | null;
}

/** One commit that changed the rule set. */
export interface HistoryRecord {
  readonly generation: number;
  /** ISO 8601. */
  readonly time: string;
  /** Who made it: "uid 0 over the socket", "local (--db)", "a rename through the mount", ... */
  readonly who: string;
  /** What it was, when it was more than rule writes ("rollback to generation 12"); else null. */
  readonly note: string | null;
  /** Paths whose rule changed; -1: more than the store records per commit. */
  readonly changed: number;
  /** The changes by path; null when there were more than the store records per commit. */
  readonly changes: readonly RuleChange[] | null;
}

/** Records kept by default (the oldest dropped first). */
export const DEFAULT_HISTORY_LIMIT = 1000;
/** Changes recorded per commit by default; a bigger commit is recorded by its count. */
export const DEFAULT_MAX_CHANGES = 100_000;

/** Fields of a rule that are this host's binding, not the rule set's. */
const BINDING = new Set(['id', 'dev', 'ino', 'birth']);

/** Whether two records of the same rule say the same thing in an export (bindings aside). */
export function sameContent(a: Rule, b: Rule): boolean {
  const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
  for (const key of keys) {
    if (BINDING.has(key)) continue;
    const x = (a as unknown as Record<string, unknown>)[key];
    const y = (b as unknown as Record<string, unknown>)[key];
    if (x === y) continue;
    if (key === 'acl' && Array.isArray(x) && Array.isArray(y)) {
      if (JSON.stringify(x) !== JSON.stringify(y)) return false;
      continue;
    }
    // An absent flag and a false one read the same.
    if ((x === undefined || x === false) && (y === undefined || y === false)) continue;
    return false;
  }
  return true;
}

function sameRuleFileRule(a: RuleFileRule | null, b: RuleFileRule | null): boolean {
  return a === null || b === null ? a === b : JSON.stringify(a) === JSON.stringify(b);
}

/**
 * The changes one transaction makes, by path: the first "before" and the
 * last "after" of each path. Stops collecting past `maxChanges` paths.
 */
export class Journal {
  private readonly entries = new Map<string, { before: RuleFileRule | null; after: RuleFileRule | null }>();
  private overflow = false;

  constructor(private readonly maxChanges: number) {}

  /** A rule written (`next`) in place of `previous` (null: a new rule). */
  wrote(previous: Rule | null, next: Rule): void {
    if (this.overflow) return;
    if (previous !== null && previous.path === next.path && sameContent(previous, next)) return;
    if (previous !== null && previous.path !== next.path) this.note(previous.path, toRuleFileRule(previous), null);
    this.note(next.path, previous !== null && previous.path === next.path ? toRuleFileRule(previous) : null, toRuleFileRule(next));
  }

  /** A rule deleted. */
  removed(rule: Rule): void {
    if (!this.overflow) this.note(rule.path, toRuleFileRule(rule), null);
  }

  /** Too many changes to keep: the commit is recorded by its count. */
  giveUp(): void {
    this.overflow = true;
    this.entries.clear();
  }

  get overflowed(): boolean {
    return this.overflow;
  }

  /** The changes, paths whose rule ended as it began left out; null when overflowed. */
  changes(): RuleChange[] | null {
    if (this.overflow) return null;
    const out: RuleChange[] = [];
    for (const [path, { before, after }] of this.entries) {
      if (!sameRuleFileRule(before, after)) out.push({ path, before, after });
    }
    return out;
  }

  private note(path: string, before: RuleFileRule | null, after: RuleFileRule | null): void {
    const entry = this.entries.get(path);
    if (entry !== undefined) entry.after = after;
    else this.entries.set(path, { before, after });
    if (this.entries.size > this.maxChanges) this.giveUp();
  }
}

/**
 * The rule set before the given records (newest first): `now` with each
 * record's changes undone. Changes `now` in place and returns it.
 */
export function undo(now: Map<string, RuleFileRule>, newestFirst: Iterable<HistoryRecord>): Map<string, RuleFileRule> {
  for (const record of newestFirst) {
    if (record.changes === null) throw new Error(`generation ${record.generation} is recorded by its count only`);
    for (const change of record.changes) {
      if (change.before === null) now.delete(change.path);
      else now.set(change.path, change.before);
    }
  }
  return now;
}

/** The net change of consecutive records (oldest first), by path, in path order. */
export function netChanges(oldestFirst: Iterable<HistoryRecord>): RuleChange[] {
  const net = new Map<string, { before: RuleFileRule | null; after: RuleFileRule | null }>();
  for (const record of oldestFirst) {
    if (record.changes === null) throw new Error(`generation ${record.generation} is recorded by its count only`);
    for (const change of record.changes) {
      const entry = net.get(change.path);
      if (entry !== undefined) entry.after = change.after;
      else net.set(change.path, { before: change.before, after: change.after });
    }
  }
  return [...net]
    .filter(([, { before, after }]) => !sameRuleFileRule(before, after))
    .sort(([a], [b]) => (Buffer.compare(Buffer.from(a), Buffer.from(b))))
    .map(([path, { before, after }]) => ({ path, before, after }));
}

/** The changes that turn rule set `from` into rule set `to`, in path order. */
export function difference(from: ReadonlyMap<string, RuleFileRule>, to: ReadonlyMap<string, RuleFileRule>): RuleChange[] {
  const out: RuleChange[] = [];
  for (const [path, before] of from) {
    const after = to.get(path) ?? null;
    if (!sameRuleFileRule(before, after)) out.push({ path, before, after });
  }
  for (const [path, after] of to) if (!from.has(path)) out.push({ path, before: null, after });
  return out.sort((a, b) => Buffer.compare(Buffer.from(a.path), Buffer.from(b.path)));
}
