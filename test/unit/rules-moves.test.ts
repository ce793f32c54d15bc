// checkMove() over plain maps: which links and renames keep every object
// under the rule that governs it, and which are refused, and why.
import { describe, expect, it } from 'vitest';
import { checkMove, type Move, type MoveView } from '../../src/rules/moves';
import type { Rule } from '../../src/rules/types';
import { MAX_RULE_PATH_BYTES } from '../../src/rules/validate';

class MapView implements MoveView {
  private readonly paths = new Map<string, Rule>();
  private readonly inodes = new Map<string, Rule>();

  constructor(rules: readonly Rule[]) {
    for (const r of rules) {
      this.paths.set(r.path, r);
      if (r.dev !== null) this.inodes.set(`${r.dev}:${r.ino}`, r);
    }
  }

  byInode(dev: number, ino: number): Rule | undefined {
    return this.inodes.get(`${dev}:${ino}`);
  }

  byPath(path: string): Rule | undefined {
    return this.paths.get(path);
  }

  anyRuleAtOrBelow(path: string): boolean {
    return [...this.paths.keys()].some((p) => p === path || p.startsWith(`${path}/`));
  }

  longestRulePathAtOrBelow(path: string): number {
    return Math.max(0, ...[...this.paths.keys()].filter((p) => p === path || p.startsWith(`${path}/`)).map((p) => Buffer.byteLength(p)));
  }
}

function rule(r: Partial<Rule> & Pick<Rule, 'id' | 'path'>): Rule {
  return { dev: null, ino: null, owner: 0, defaccess: 0, acl: [], recursive: false, ...r };
}

const ROOT = rule({ id: 1, path: '/', recursive: true, defaccess: 7 });
const SECRET = rule({ id: 2, path: '/secret', recursive: true, defaccess: 0 });
const PUB = rule({ id: 3, path: '/pub', recursive: true, defaccess: 7 });
const INBOX = rule({ id: 4, path: '/pub/inbox', recursive: true, defaccess: 7 });
// A file rule bound to its inode, and one by path only (not bound yet).
const BOUND = rule({ id: 5, path: '/secret/bound.txt', dev: 1, ino: 50, defaccess: 0 });
const BY_PATH = rule({ id: 6, path: '/secret/by-path.txt', defaccess: 0 });
// A directory with a recursive rule of its own, and one with a flat rule.
const OWN_TREE = rule({ id: 7, path: '/secret/tree', recursive: true, defaccess: 0 });
const FLAT_DIR = rule({ id: 8, path: '/secret/flat', recursive: false, defaccess: 7 });
const DEEP = rule({ id: 9, path: `/pub/long/${'x'.repeat(MAX_RULE_PATH_BYTES - 20)}`, defaccess: 0 });

const view = new MapView([ROOT, SECRET, PUB, INBOX, BOUND, BY_PATH, OWN_TREE, FLAT_DIR, DEEP]);
const noRules = new MapView([]);

const file = (path: string, ino = 99): Move['file'] => ({ path, dev: 1, ino, birth: null });
const link = (from: string, to: string, ino?: number): Move => ({ kind: 'link', file: file(from, ino), directory: false, to });
const rename = (from: string, to: string, directory = false, ino?: number): Move => ({ kind: 'rename', file: file(from, ino), directory, to });

describe('checkMove', () => {
  const cases: [string, MoveView, Move, 'OK' | 'EXDEV' | 'ENAMETOOLONG'][] = [
    // Links.
    ['link within one recursive rule', view, link('/pub/a', '/pub/sub/b'), 'OK'],
    ['link out of a denied tree', view, link('/secret/s.txt', '/pub/x'), 'EXDEV'],
    ['link into a denied tree', view, link('/pub/a', '/secret/x'), 'EXDEV'],
    ['link of a file whose rule is bound to its inode, anywhere', view, link('/secret/bound.txt', '/pub/x', 50), 'OK'],
    ['link of a file whose rule is by path only', view, link('/secret/by-path.txt', '/secret/other'), 'EXDEV'],
    ['link onto a path that has a (waiting) rule', view, link('/pub/a', '/pub/inbox'), 'EXDEV'],
    ['link with no rules at all (default policy both sides)', noRules, link('/a', '/b/c'), 'OK'],
    ['link from the default policy into a rule', new MapView([PUB]), link('/a', '/pub/x'), 'EXDEV'],
    // Renames of files.
    ['rename within one rule', view, rename('/pub/a', '/pub/b'), 'OK'],
    ['rename out of a denied tree', view, rename('/secret/s.txt', '/pub/s.txt'), 'EXDEV'],
    ['rename of a file with its own path rule (the rule moves)', view, rename('/secret/by-path.txt', '/pub/p.txt'), 'OK'],
    ['rename of a file bound by inode', view, rename('/secret/bound.txt', '/pub/b.txt', false, 50), 'OK'],
    ['rename onto a target with a rule of its own', view, rename('/pub/a', '/pub/inbox'), 'EXDEV'],
    ['rename of a ruled file onto a ruled target', view, rename('/secret/by-path.txt', '/pub/inbox'), 'EXDEV'],
    ['rename onto itself', view, rename('/pub/a', '/pub/a'), 'OK'],
    // Renames of directories.
    ['directory with its own recursive rule, across rules', view, rename('/secret/tree', '/pub/tree', true), 'OK'],
    ['directory with a flat rule: its contents would change rule', view, rename('/secret/flat', '/pub/flat', true), 'EXDEV'],
    ['directory without a rule, within one rule', view, rename('/pub/d', '/pub/sub/d', true), 'OK'],
    ['directory without a rule, across rules', view, rename('/pub/d', '/secret/d', true), 'EXDEV'],
    ['directory onto a ruled directory', view, rename('/secret/tree', '/pub/inbox', true), 'EXDEV'],
    // Rule paths that would grow past the store's limit.
    ['rename whose rules would get too long a path', view, rename('/pub/long', '/pub/longer-by-far-than-twenty-bytes', true), 'ENAMETOOLONG'],
    ['rename whose rules still fit', view, rename('/pub/long', '/pub/lon', true), 'OK'],
  ];

  it.each(cases)('%s', (_name, v, move, expected) => {
    const result = checkMove(v, move);
    expect(result.ok ? 'OK' : result.errno).toBe(expected);
    if (!result.ok) expect(result.reason.length).toBeGreaterThan(0);
  });

  it('names the rules a refused move would cross', () => {
    const result = checkMove(view, rename('/secret/s.txt', '/pub/s.txt'));
    expect(result).toEqual({ ok: false, errno: 'EXDEV', reason: '/secret/s.txt would move from under rule 2 (/secret) to under rule 3 (/pub)' });
  });

  it('throws on a path it cannot read (the filter then denies)', () => {
    expect(() => checkMove(view, rename('relative', '/pub/x'))).toThrow();
  });
});
