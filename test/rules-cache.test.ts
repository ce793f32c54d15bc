import { describe, expect, it } from 'vitest';
import { cacheKey, DecisionCache } from '../src/rules/cache';
import type { Caller, Decision, Target } from '../src/rules/types';

const alice: Caller = { uid: 1000, gid: 100, groups: [20, 10], pid: 1 };
const file: Target = { path: '/docs/a', dev: 1, ino: 2 };

function decision(allow: boolean, ruleId: number | null = 1): Decision {
  return { allow, requested: 4, granted: allow ? 4 : 0, ruleId, rulePath: '/docs', match: 'ancestor', source: { kind: 'defaccess' } };
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
