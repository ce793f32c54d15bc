// Random operations for the adversarial test. fast-check generates abstract
// operations (a kind, a user, and numbers); resolve() turns each into a
// concrete operation against the model's tree at the moment it runs (the
// numbers pick among the names that exist then), so that every sequence is
// meaningful whatever came before it, and a sequence with steps removed
// still is.
import fc from 'fast-check';
import { atOrBelow, BAD_NAME_NEW, FILE_MODES, join, type AclEntry, type Model, type Op, type RuleSpec } from './model';

/** Names an operation may give (files and directories alike, so kinds collide). */
export const NAMES = ['a', 'b', 'c'] as const;
/** The tree stays this small: at most so many names besides the root, of which so many directories. */
export const MAX_NAMES = 6;
export const MAX_DIRS = 3;

export type AbstractKind =
  | 'create'
  | 'mkdir'
  | 'link'
  | 'rename'
  | 'exchange'
  | 'noreplace'
  | 'unlink'
  | 'rmdir'
  | 'chmod'
  | 'setxattr'
  | 'mkfifo'
  | 'badname'
  | 'rule-add'
  | 'rule-set'
  | 'rule-rm';

export interface AbstractOp {
  readonly kind: AbstractKind;
  readonly user: number;
  readonly a: number;
  readonly b: number;
  readonly c: number;
  readonly rule: RuleSpec;
}

/** Principals rules name: the test users' uids, their shared group, and one user's own group. */
export interface Principals {
  readonly uids: readonly number[];
  readonly gids: readonly number[];
}

const WEIGHTS: readonly [AbstractKind, number][] = [
  ['create', 12],
  ['mkdir', 6],
  ['link', 12],
  ['rename', 16],
  ['exchange', 2],
  ['noreplace', 1],
  ['unlink', 7],
  ['rmdir', 4],
  ['chmod', 4],
  ['setxattr', 5],
  ['mkfifo', 2],
  ['badname', 1],
  ['rule-add', 7],
  ['rule-set', 7],
  ['rule-rm', 5],
];

/** Access bits, w more often than not (so the tree can change), r about half the time (so names matter). */
const accessArb = fc.constantFrom(7, 7, 7, 6, 6, 3, 2, 2, 4, 0, 5, 1);

export function ruleArb(p: Principals): fc.Arbitrary<RuleSpec> {
  const principal = fc.oneof(
    fc.constantFrom(...p.uids).map((user) => ({ user })),
    fc.constantFrom(...p.gids).map((group) => ({ group })),
  );
  const acl = fc
    .uniqueArray(principal, { maxLength: 3, selector: (e) => ('user' in e ? `u${e.user}` : `g${e.group}`) })
    .chain((ps) => fc.tuple(...ps.map(() => accessArb)).map((as) => ps.map((e, i) => ({ ...e, access: as[i]! }) as AclEntry)));
  return fc.record({
    owner: fc.oneof({ arbitrary: fc.constant(0), weight: 3 }, { arbitrary: fc.constantFrom(...p.uids), weight: 1 }),
    defaccess: accessArb,
    acl,
    recursive: fc.boolean(),
  });
}

export function opArb(users: number, p: Principals): fc.Arbitrary<AbstractOp> {
  return fc.record({
    kind: fc.oneof(...WEIGHTS.map(([kind, weight]) => ({ arbitrary: fc.constant(kind), weight }))),
    user: fc.nat(users - 1),
    a: fc.nat(9999),
    b: fc.nat(9999),
    c: fc.nat(9999),
    rule: ruleArb(p),
  });
}

const pick = <T>(xs: readonly T[], n: number): T | undefined => (xs.length === 0 ? undefined : xs[n % xs.length]);

/** Mostly (8 times in 10, by `odds`) one of `preferred`, else one of `rest`; either when the other is empty. */
function prefer<T>(preferred: readonly T[], rest: readonly T[], n: number, odds: number): T | undefined {
  const first = odds % 10 < 8 ? preferred : rest;
  return pick(first.length > 0 ? first : preferred.length > 0 ? preferred : rest, n);
}

/**
 * The concrete operation `a` stands for in the model's present state, or a
 * skip (with the reason) when it would need a part of the semantics the
 * product definition leaves open. The choices lean towards what can succeed (a free name
 * to create, a file to unlink), so the tree keeps changing.
 */
export function resolve(m: Model, a: AbstractOp): Op | { skip: string } {
  const all = m.paths();
  const existing = all.filter((p) => p !== '/');
  const dirs = all.filter((p) => m.obj(p)!.kind === 'dir');
  const files = existing.filter((p) => m.obj(p)!.kind === 'file');
  const slots = dirs.flatMap((d) => NAMES.map((n) => join(d, n)));
  const free = slots.filter((s) => m.obj(s) === undefined);
  const dirCount = dirs.length - 1;
  const full = existing.length >= MAX_NAMES;
  const u = a.user;

  // Too many names: the creating operations give way to removals.
  const unlinkInstead = (): Op => ({ kind: 'unlink', user: u, path: prefer(files, existing, a.b, a.c)! });
  const createInstead = (): Op => ({ kind: 'create', user: u, path: prefer(free, slots, a.b, a.c)! });

  switch (a.kind) {
    case 'create':
    case 'mkdir':
    case 'mkfifo': {
      const p = prefer(free, slots, a.a, a.c)!;
      if (m.obj(p) === undefined && a.kind !== 'mkfifo') {
        if (a.kind === 'mkdir' && dirCount >= MAX_DIRS) return { kind: 'rmdir', user: u, path: pick(dirs.slice(1), a.b)! };
        if (full) return unlinkInstead();
      }
      return { kind: a.kind, user: u, path: p };
    }
    case 'badname':
      return { kind: 'badname', user: u, path: join(pick(dirs, a.a)!, BAD_NAME_NEW) };
    case 'unlink':
    case 'rmdir': {
      const p = a.kind === 'unlink' ? prefer(files, existing, a.a, a.c) : prefer(dirs.slice(1), existing, a.a, a.c);
      if (p === undefined) return createInstead();
      return { kind: a.kind, user: u, path: p };
    }
    case 'setxattr':
      return { kind: 'setxattr', user: u, path: pick(all, a.a)! };
    case 'chmod': {
      const own = files.filter((p) => m.obj(p)!.uid === m.users[u]!.uid);
      const p = prefer(own, files, a.a, a.c);
      if (p === undefined) return createInstead();
      return { kind: 'chmod', user: u, path: p, mode: FILE_MODES[a.b % FILE_MODES.length]! };
    }
    case 'link':
    case 'rename':
    case 'exchange':
    case 'noreplace': {
      // Links mostly of files (a directory only shows EPERM); new names
      // mostly free (a rule may wait there), renames also onto existing
      // names, rarely into the moved directory itself.
      const from = a.kind === 'link' ? prefer(files, existing, a.a, a.c) : pick(existing, a.a);
      if (from === undefined) return createInstead();
      const outside = slots.filter((s) => !atOrBelow(s, from));
      const to =
        a.kind === 'link'
          ? prefer(free, slots, a.b, a.c)!
          : a.c % 10 < 5
            ? prefer(free.filter((s) => outside.includes(s)), slots, a.b, a.c >> 4)!
            : prefer(outside, slots, a.b, a.c >> 4)!;
      if (a.kind === 'link' && m.obj(to) === undefined && full) return unlinkInstead();
      if (a.kind === 'link' || a.kind === 'rename') {
        const skip = ambiguousMove(m, a.kind, from);
        if (skip !== null) return { skip };
      }
      return { kind: a.kind, user: u, path: from, to };
    }
    case 'rule-add':
    case 'rule-set': {
      const places = all.concat(free);
      const p = a.kind === 'rule-add' ? prefer(places.filter((q) => m.ruleAt(q) === undefined), places, a.a, a.c)! : pick(places, a.a)!;
      const skip = ambiguousRule(m, a.kind, p);
      if (skip !== null) return { skip };
      // The root's rule mostly keeps the tree writable, or little would change.
      const rule = p === '/' && a.b % 4 !== 0 ? { ...a.rule, recursive: true, defaccess: a.rule.defaccess | 2 } : a.rule;
      return { kind: a.kind, path: p, rule };
    }
    case 'rule-rm': {
      // The root's rule goes only now and then (everything falls to the default).
      const ruled = m.rules.map((r) => r.path).filter((p) => p !== '/' || a.b % 8 === 0);
      return { kind: 'rule-rm', path: prefer(ruled.sort(), all, a.a, a.c)! };
    }
  }
}

/**
 * A link or rename whose "own rule" the product definition leaves open: a rule at the old
 * path that is bound to another file (left behind when that file lost the
 * name), or, for a rename, a rule bound to the file under another of its
 * names (which path would it move to?).
 */
export function ambiguousMove(m: Model, kind: 'link' | 'rename', from: string): string | null {
  const id = m.names.get(from);
  if (id === undefined) return null;
  const atPath = m.ruleAt(from);
  if (atPath !== undefined && atPath.bound !== id) return `the rule at ${from} is bound to another file`;
  const bound = m.boundRule(id);
  if (kind === 'rename' && bound !== undefined && bound.path !== from) return `the file's rule sits at another of its names (${bound.path})`;
  return null;
}

/** A rule change whose binding the product definition leaves open. */
export function ambiguousRule(m: Model, kind: 'rule-add' | 'rule-set', p: string): string | null {
  const id = m.names.get(p);
  if (id !== undefined) {
    const bound = m.boundRule(id);
    if (bound !== undefined && bound.path !== p) return `${p} is a name of a file bound to the rule at ${bound.path} (two rules for one file)`;
  }
  const r = m.ruleAt(p);
  if (kind === 'rule-set' && r !== undefined && r.bound !== null && r.bound !== id) return `the rule at ${p} is bound to a file no longer there`;
  return null;
}
