// The rule set's history (src/store/history.ts, RuleStore.history/diff/
// rollback): generated sequences of every kind of rule write, with the
// export kept after each commit as the model. Every generation still in
// reach rolls back to its export byte for byte, diff equals the difference
// of the two exports, bindings are not history, and the bounds hold.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AclfsError } from '../../src/errors';
import { native } from '../../src/native/binding';
import { serializeRuleFile, type RuleFileRule } from '../../src/rules/ruleFile';
import type { RuleInput } from '../../src/rules/types';
import { RuleStore } from '../../src/store/store';

let dir: string;
let store: RuleStore;

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'aclfs-history-'));
  store = RuleStore.open(path.join(dir, 'db'), native);
});

afterEach(() => {
  store.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

const exportText = (): string => serializeRuleFile(store.exportRules());

function rule(p: string, defaccess: number, extra: Partial<RuleInput> = {}): RuleInput {
  return { path: p, owner: 0, defaccess, acl: [], recursive: false, ...extra };
}

const PATHS = ['/a', '/a/b', '/a/c', '/d', '/d/e', '/f'];

type Step =
  | { kind: 'set'; path: string; defaccess: number; recursive: boolean; user: number | null }
  | { kind: 'delete'; path: string }
  | { kind: 'import'; paths: string[]; defaccess: number; replace: boolean }
  | { kind: 'move'; from: string; to: string }
  | { kind: 'bind'; path: string; ino: number };

const step: fc.Arbitrary<Step> = fc.oneof(
  fc.record({
    kind: fc.constant('set' as const),
    path: fc.constantFrom(...PATHS),
    defaccess: fc.integer({ min: 0, max: 7 }),
    recursive: fc.boolean(),
    user: fc.option(fc.integer({ min: 1000, max: 1003 })),
  }),
  fc.record({ kind: fc.constant('delete' as const), path: fc.constantFrom(...PATHS) }),
  fc.record({
    kind: fc.constant('import' as const),
    paths: fc.uniqueArray(fc.constantFrom(...PATHS), { maxLength: 4 }),
    defaccess: fc.integer({ min: 0, max: 7 }),
    replace: fc.boolean(),
  }),
  fc.record({ kind: fc.constant('move' as const), from: fc.constantFrom('/a', '/d'), to: fc.constantFrom('/g', '/h') }),
  fc.record({ kind: fc.constant('bind' as const), path: fc.constantFrom(...PATHS), ino: fc.integer({ min: 1, max: 50 }) }),
);

function apply(s: Step): void {
  switch (s.kind) {
    case 'set':
      store.setByPath(rule(s.path, s.defaccess, { recursive: s.recursive, acl: s.user === null ? [] : [{ user: s.user, access: 4 }] }));
      return;
    case 'delete': {
      const r = store.byPath(s.path);
      if (r !== undefined) store.take(r.id);
      return;
    }
    case 'import':
      store.importRules(s.paths.map((p) => rule(p, s.defaccess)), { replace: s.replace });
      return;
    case 'move':
      if (store.byPath(s.to) === undefined && ![...PATHS].some((p) => store.byPath(`${s.to}${p.slice(2)}`) !== undefined)) store.movePaths(s.from, s.to);
      return;
    case 'bind': {
      const r = store.byPath(s.path);
      if (r !== undefined) store.bind(r.id, 1, s.ino);
      return;
    }
  }
}

describe('rule set history', () => {
  it('rolls every generation in reach back to its export, byte for byte; diff is the difference of the exports', () => {
    fc.assert(
      fc.property(fc.array(step, { minLength: 1, maxLength: 25 }), fc.nat(), (steps, pick) => {
        store.close();
        fs.rmSync(path.join(dir, 'db'), { recursive: true, force: true });
        store = RuleStore.open(path.join(dir, 'db'), native);
        const exports = new Map<number, string>([[store.generation(), exportText()]]);
        for (const s of steps) {
          const before = exportText();
          const generation = store.generation();
          apply(s);
          // A commit that changed only bindings is not history: the export is the same.
          if (store.generation() !== generation && exportText() === before) {
            expect(store.history(1)[0]?.generation ?? 0).toBeLessThan(store.generation());
          }
          exports.set(store.generation(), exportText());
        }
        const generations = [...exports.keys()];
        const target = generations[pick % generations.length]!;
        const now = store.generation();
        // diff: the changed paths are exactly those whose rule differs between the exports.
        const { changes } = store.diff(target);
        const rulesOf = (text: string): Map<string, RuleFileRule> =>
          new Map((JSON.parse(text) as { rules: RuleFileRule[] }).rules.map((r) => [r.path, r] as const));
        const [was, is] = [rulesOf(exports.get(target)!), rulesOf(exports.get(now)!)];
        const differing = [...new Set([...was.keys(), ...is.keys()])].filter((p) => JSON.stringify(was.get(p)) !== JSON.stringify(is.get(p))).sort();
        expect(changes.map((c) => c.path).sort()).toEqual(differing);
        for (const c of changes) {
          expect(c.before).toEqual(was.get(c.path) ?? null);
          expect(c.after).toEqual(is.get(c.path) ?? null);
        }
        // rollback: byte-identical export, as a new generation unless nothing differs.
        const result = store.rollback(target);
        expect(exportText()).toBe(exports.get(target));
        expect(result.changes.length).toBe(differing.length);
        expect(store.generation()).toBe(differing.length === 0 ? now : now + 1);
        if (differing.length > 0) expect(store.history(1)[0]).toMatchObject({ generation: now + 1, note: `rollback to generation ${target}` });
        // And back again: the rollback itself is history.
        store.rollback(now);
        expect(exportText()).toBe(exports.get(now));
        expect(store.verifyIndexes()).toEqual([]);
      }),
      { numRuns: 60 },
    );
  });

  it('names who made each commit and keeps bindings of rules a rollback leaves alone', () => {
    const g0 = store.generation();
    store.asActor('uid 1000 over the socket', () => store.add(rule('/x', 4)));
    const y = store.add(rule('/y', 4));
    store.bind(y.id, 7, 70);
    store.asActor('uid 0 over the socket', () => store.setByPath(rule('/x', 0)));
    const records = store.history(10);
    expect(records.map((r) => r.who)).toEqual(['uid 0 over the socket', 'local (--db)', 'uid 1000 over the socket']);
    expect(records[0]!.changes).toEqual([
      { path: '/x', before: expect.objectContaining({ defaccess: 'r--' }), after: expect.objectContaining({ defaccess: '---' }) },
    ]);
    store.rollback(g0 + 1);
    expect(store.byPath('/y')).toBeUndefined();
    expect(store.byPath('/x')?.defaccess).toBe(4);
    store.rollback(g0 + 2);
    // /y is back, a new rule (its binding was this host's state, not history).
    expect(store.byPath('/y')).toMatchObject({ defaccess: 4, dev: null });
  });

  it('keeps at most the bound of records: the floor moves, and older generations are refused', () => {
    store.setHistoryBounds({ limit: 3, maxChanges: 100 });
    const g0 = store.generation();
    for (let i = 0; i < 6; i++) store.setByPath(rule('/x', i));
    expect(store.history(100)).toHaveLength(3);
    expect(store.historyFloor()).toBe(g0 + 3);
    expect(() => store.rollback(g0 + 2)).toThrow(AclfsError);
    expect(() => store.diff(g0)).toThrow(/reaches back to generation/);
    store.rollback(g0 + 3);
    expect(store.byPath('/x')?.defaccess).toBe(2);
    expect(() => store.rollback(store.generation() + 1)).toThrow(/from 0 to/);
  });

  it('records a commit of more changes than the bound by its count; nothing before it can be restored', () => {
    store.setHistoryBounds({ limit: 100, maxChanges: 3 });
    store.importRules(PATHS.slice(0, 2).map((p) => rule(p, 4)));
    const g1 = store.generation();
    store.importRules(PATHS.map((p) => rule(p, 5)));
    expect(store.history(1)[0]).toMatchObject({ changed: -1, changes: null });
    expect(store.historyFloor()).toBe(g1 + 1);
    expect(() => store.rollback(g1)).toThrow(/reaches back/);
    // A replacing import of more rules than the bound is recorded by its count too.
    store.importRules([rule('/z', 1)], { replace: true });
    expect(store.history(1)[0]).toMatchObject({ changed: -1 });
  });
});
