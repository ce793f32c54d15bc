import { describe, expect, it } from 'vitest';
import { DecisionCache } from '../../src/rules/cache';
import type { Access, Caller, Decision, Target } from '../../src/rules/types';

/**
 * The identity of a question, as one string: what DecisionCache must
 * compare field by field (two questions share an entry exactly when their
 * keys are equal). Groups sorted ("?" when unknown, which differs from
 * none), the birth time with its length so it cannot run into the next
 * field, the path last since it alone can contain the separators.
 */
function cacheKey(caller: Caller, target: Target, requested: Access): string {
  const groups = caller.groups === null ? '?' : [...caller.groups].sort((a, b) => a - b).join(',');
  const birth = target.birth == null ? '-' : `${target.birth.length}#${target.birth}`;
  return `${caller.uid}:${caller.gid}:${groups}|${target.dev}:${target.ino}:${birth}|${requested}|${target.path}`;
}

const alice: Caller = { uid: 1000, gid: 100, groups: [20, 10], pid: 1 };
const file: Target = { path: '/docs/a', dev: 1, ino: 2 };

function decision(allow: boolean, ruleId: number | null = 1): Decision {
  return { allow, requested: 4, granted: allow ? 4 : 0, ruleId, rulePath: '/docs', match: 'ancestor', source: { kind: 'defaccess' }, revocable: false, auditOnly: false };
}

describe('DecisionCache', () => {
  it('misses, then hits the same question', () => {
    const cache = new DecisionCache();
    expect(cache.get(1, alice, file, 4)).toBeUndefined();
    cache.set(1, alice, file, 4, decision(true));
    expect(cache.get(1, alice, file, 4)).toEqual(decision(true));
    expect(cache.stats()).toMatchObject({ size: 1, hits: 1, misses: 1, hitRate: 0.5, generation: 1 });
  });

  it('keys on every input; group order and pid do not matter', () => {
    const cache = new DecisionCache();
    cache.set(1, alice, file, 4, decision(true));
    expect(cache.get(1, { ...alice, groups: [10, 20], pid: 99 }, file, 4)).toBeDefined();
    expect(cache.get(1, { ...alice, uid: 1001 }, file, 4)).toBeUndefined();
    expect(cache.get(1, { ...alice, gid: 101 }, file, 4)).toBeUndefined();
    expect(cache.get(1, { ...alice, groups: [10] }, file, 4)).toBeUndefined();
    expect(cache.get(1, alice, { ...file, ino: 3 }, 4)).toBeUndefined();
    expect(cache.get(1, alice, { ...file, dev: 9 }, 4)).toBeUndefined();
    expect(cache.get(1, alice, { ...file, path: '/docs/hardlink' }, 4)).toBeUndefined();
    expect(cache.get(1, alice, file, 6)).toBeUndefined();
    // An inode number reused by another file (other birth) is another file.
    expect(cache.get(1, alice, { ...file, birth: '7.000000001' }, 4)).toBeUndefined();
  });

  it('peek answers like get without counting, and at another generation finds nothing and empties nothing', () => {
    const cache = new DecisionCache();
    expect(cache.peek(1, alice, file, 4)).toBeUndefined();
    cache.set(1, alice, file, 4, decision(false));
    expect(cache.peek(1, { ...alice, groups: [10, 20], pid: 7 }, file, 4)).toEqual(decision(false));
    expect(cache.peek(1, alice, file, 6)).toBeUndefined();
    expect(cache.peek(2, alice, file, 4)).toBeUndefined();
    expect(cache.stats()).toMatchObject({ size: 1, hits: 0, misses: 0, generation: 1, invalidations: 0 });
    expect(cache.get(1, alice, file, 4)).toEqual(decision(false));
  });

  it('keys cannot collide through separators in paths or group lists', () => {
    const a = cacheKey({ uid: 1, gid: 2, groups: [3], pid: 0 }, { path: '/x|1:1|4|/y', dev: 1, ino: 1 }, 4);
    const b = cacheKey({ uid: 1, gid: 2, groups: [3], pid: 0 }, { path: '/y', dev: 1, ino: 1 }, 4);
    expect(a).not.toBe(b);
    const c = cacheKey({ uid: 1, gid: 2, groups: [3, 4], pid: 0 }, { path: '/y', dev: 1, ino: 1 }, 4);
    const d = cacheKey({ uid: 1, gid: 2, groups: [34], pid: 0 }, { path: '/y', dev: 1, ino: 1 }, 4);
    expect(c).not.toBe(d);
  });

  it('a new generation empties the cache on get and on set', () => {
    const cache = new DecisionCache();
    cache.set(1, alice, file, 4, decision(true));
    expect(cache.get(2, alice, file, 4)).toBeUndefined();
    expect(cache.stats()).toMatchObject({ size: 0, generation: 2, invalidations: 1 });
    cache.set(2, alice, file, 4, decision(false));
    cache.set(3, alice, { ...file, ino: 5 }, 4, decision(true));
    expect(cache.stats()).toMatchObject({ size: 1, generation: 3, invalidations: 2 });
    // Going back to an older generation is also "different": never serve across.
    expect(cache.get(2, alice, { ...file, ino: 5 }, 4)).toBeUndefined();
  });

  it('stays within its bound, evicting the oldest entries', () => {
    const cache = new DecisionCache(3);
    for (let ino = 1; ino <= 5; ino++) cache.set(1, alice, { ...file, ino }, 4, decision(true, ino));
    expect(cache.stats()).toMatchObject({ size: 3, maxSize: 3, evictions: 2 });
    expect(cache.get(1, alice, { ...file, ino: 1 }, 4)).toBeUndefined();
    expect(cache.get(1, alice, { ...file, ino: 2 }, 4)).toBeUndefined();
    expect(cache.get(1, alice, { ...file, ino: 5 }, 4)?.ruleId).toBe(5);
    // Overwriting an existing key does not evict.
    cache.set(1, alice, { ...file, ino: 5 }, 4, decision(false, 5));
    expect(cache.stats()).toMatchObject({ size: 3, evictions: 2 });
  });

  it('default bound is 65536 and rejects nonsense sizes', () => {
    expect(new DecisionCache().maxSize).toBe(65_536);
    expect(() => new DecisionCache(0)).toThrow(RangeError);
  });

  it('clear() forgets entries and generation but keeps counters', () => {
    const cache = new DecisionCache();
    cache.set(1, alice, file, 4, decision(true));
    cache.get(1, alice, file, 4);
    cache.clear();
    expect(cache.stats()).toMatchObject({ size: 0, generation: null, hits: 1 });
  });
});

describe('DecisionCache identity (field-by-field entries, chained by inode)', () => {
  const base: Caller = { uid: 1000, gid: 100, groups: [10, 20], pid: 1 };
  const target: Target = { path: '/docs/a', dev: 1, ino: 2, birth: '5.000000001' };
  interface Question {
    name: string;
    caller: Caller;
    target: Target;
    requested: number;
  }
  // Each differs from the first in exactly one part of the key.
  const variants: Question[] = [
    { name: 'base', caller: base, target, requested: 4 },
    { name: 'uid', caller: { ...base, uid: 1001 }, target, requested: 4 },
    { name: 'uid = gid swapped', caller: { ...base, uid: 100, gid: 1000 }, target, requested: 4 },
    { name: 'gid', caller: { ...base, gid: 101 }, target, requested: 4 },
    { name: 'groups unknown', caller: { ...base, groups: null }, target, requested: 4 },
    { name: 'no groups', caller: { ...base, groups: [] }, target, requested: 4 },
    { name: 'one group less', caller: { ...base, groups: [10] }, target, requested: 4 },
    { name: 'a repeated group', caller: { ...base, groups: [10, 20, 20] }, target, requested: 4 },
    { name: 'another group', caller: { ...base, groups: [10, 21] }, target, requested: 4 },
    { name: 'digits regrouped', caller: { ...base, groups: [102, 0] }, target, requested: 4 },
    { name: 'dev', caller: base, target: { ...target, dev: 9 }, requested: 4 },
    { name: 'ino', caller: base, target: { ...target, ino: 3 }, requested: 4 },
    { name: 'dev and ino swapped', caller: base, target: { ...target, dev: 2, ino: 1 }, requested: 4 },
    { name: 'birth unknown', caller: base, target: { ...target, birth: null }, requested: 4 },
    { name: 'other birth', caller: base, target: { ...target, birth: '5.000000002' }, requested: 4 },
    { name: 'empty birth', caller: base, target: { ...target, birth: '' }, requested: 4 },
    { name: 'hard link', caller: base, target: { ...target, path: '/docs/b' }, requested: 4 },
    { name: 'path prefix', caller: base, target: { ...target, path: '/docs/a/' }, requested: 4 },
    { name: 'requested', caller: base, target, requested: 6 },
  ];

  it.each(variants.slice(1).map((v) => [v.name, v] as const))('a question differing in %s is another entry', (_name, v) => {
    const cache = new DecisionCache();
    cache.set(1, base, target, 4, decision(true, 1));
    expect(cache.get(1, v.caller, v.target, v.requested)).toBeUndefined();
    cache.set(1, v.caller, v.target, v.requested, decision(false, 2));
    // Both answers live side by side in the same inode chain (or another).
    expect(cache.get(1, base, target, 4)?.ruleId).toBe(1);
    expect(cache.get(1, v.caller, v.target, v.requested)?.ruleId).toBe(2);
    expect(cache.stats().size).toBe(2);
  });

  it('the same question asked with other pid, other group order or birth undefined for null is the same entry', () => {
    const cache = new DecisionCache();
    cache.set(1, base, { ...target, birth: null }, 4, decision(true, 7));
    expect(cache.get(1, { ...base, pid: 99, groups: [20, 10] }, { path: '/docs/a', dev: 1, ino: 2 }, 4)?.ruleId).toBe(7);
    cache.set(1, { ...base, groups: [20, 10] }, { ...target, birth: undefined }, 4, decision(false, 8));
    expect(cache.stats().size).toBe(1);
    expect(cache.get(1, base, { ...target, birth: null }, 4)?.ruleId).toBe(8);
  });

  it('shares an entry exactly when cacheKey() is equal, over every pair of a mixed pool', () => {
    const callers: Caller[] = [
      base,
      { ...base, groups: [20, 10] },
      { ...base, groups: null },
      { ...base, groups: [] },
      { ...base, groups: [10, 10, 20] },
      { ...base, uid: 0 },
      { uid: 100, gid: 1000, groups: [10, 20], pid: 3 },
    ];
    const targets: Target[] = [
      target,
      { ...target, birth: null },
      { ...target, birth: undefined },
      { ...target, birth: '1|4|/x' },
      { ...target, path: '/docs/a|1:2:5.000000001|4|/docs/a' },
      { ...target, ino: 1, dev: 2 },
      { ...target, ino: 2 ** 40 },
      { ...target, path: '/' },
    ];
    const pool: { caller: Caller; target: Target; requested: number }[] = [];
    for (const caller of callers) for (const t of targets) for (const requested of [4, 5]) pool.push({ caller, target: t, requested });
    const cache = new DecisionCache();
    pool.forEach((q, i) => cache.set(1, q.caller, q.target, q.requested, decision(true, i)));
    const keys = pool.map((q) => cacheKey(q.caller, q.target, q.requested));
    expect(cache.stats().size).toBe(new Set(keys).size);
    for (let i = 0; i < pool.length; i++) {
      // The last writer of this key answers it, and nothing else does.
      const last = keys.lastIndexOf(keys[i]!);
      expect(cache.get(1, pool[i]!.caller, pool[i]!.target, pool[i]!.requested)?.ruleId).toBe(last);
      for (let j = 0; j < pool.length; j++) {
        if (keys[j] !== keys[i]) expect(last).not.toBe(j);
      }
    }
  });

  it('cacheKey cannot collide through a birth time or a path holding the separators', () => {
    const q = (birth: string | null, p: string): string => cacheKey(base, { path: p, dev: 1, ino: 2, birth }, 4);
    expect(q('1|4|/x', '/y')).not.toBe(q('1', '/x|4|/y'));
    expect(q(null, '/y')).not.toBe(q('', '/y'));
    expect(q('-', '/y')).not.toBe(q(null, '/y'));
  });

  it('evicts oldest first across inode chains, keeping the rest of a chain', () => {
    const cache = new DecisionCache(3);
    const t = (ino: number, p = '/f'): Target => ({ path: p, dev: 1, ino });
    cache.set(1, alice, t(1, '/a'), 4, decision(true, 1)); // oldest, heads nothing once the next comes
    cache.set(1, alice, t(1, '/b'), 4, decision(true, 2)); // same inode, chain head now
    cache.set(1, alice, t(2), 4, decision(true, 3));
    cache.set(1, alice, t(3), 4, decision(true, 4)); // evicts /a (inside the chain)
    expect(cache.get(1, alice, t(1, '/a'), 4)).toBeUndefined();
    expect(cache.get(1, alice, t(1, '/b'), 4)?.ruleId).toBe(2);
    cache.set(1, alice, t(4), 4, decision(true, 5)); // evicts /b (head and last of its chain)
    expect(cache.get(1, alice, t(1, '/b'), 4)).toBeUndefined();
    cache.set(1, alice, t(2), 4, decision(false, 6)); // overwrite: no eviction, keeps its age
    expect(cache.stats()).toMatchObject({ size: 3, evictions: 2 });
    cache.set(1, alice, t(5), 4, decision(true, 7)); // so t(2) is the oldest and goes now
    expect(cache.get(1, alice, t(2), 4)).toBeUndefined();
    expect([t(3), t(4), t(5)].map((x) => cache.get(1, alice, x, 4)?.ruleId)).toEqual([4, 5, 7]);
    expect(cache.stats()).toMatchObject({ size: 3, evictions: 3 });
  });

  it('stays exact under churn: a model Map keyed by cacheKey agrees on every lookup', () => {
    const cache = new DecisionCache(300);
    const model = new Map<string, Decision>();
    let seed = 42;
    const rand = (n: number): number => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return (seed >>> 12) % n; // the low bits of this generator are not random
    };
    const groupSets: (number[] | null)[] = [null, [], [10], [20, 10], [10, 20], [10, 10]];
    let generation = 1;
    for (let step = 0; step < 20_000; step++) {
      const caller: Caller = { uid: rand(2), gid: rand(2), groups: groupSets[rand(groupSets.length)]!, pid: step };
      const t: Target = { path: `/p${rand(2)}`, dev: rand(2), ino: rand(4), birth: [null, undefined, '1.0'][rand(3)] };
      const requested = rand(2) === 0 ? 4 : 6;
      if (rand(4000) === 0) {
        generation++;
        model.clear();
      }
      const key = cacheKey(caller, t, requested);
      const got = cache.get(generation, caller, t, requested);
      // The cache may have evicted what the model still holds, never the reverse.
      if (got !== undefined) expect(got).toBe(model.get(key));
      if (got === undefined || rand(4) === 0) {
        const d = decision(rand(2) === 0, step);
        cache.set(generation, caller, t, requested, d);
        model.set(key, d);
      }
      expect(cache.stats().size).toBeLessThanOrEqual(300);
    }
    expect(cache.stats().evictions).toBeGreaterThan(0);
    expect(cache.stats().hits).toBeGreaterThan(1000);
  });
});
