// Memoised decisions. A decision depends only on the rule snapshot, the
// caller's identity, the target and the requested bits; the snapshot is named
// by the commit epoch (epoch.ts), so the cache is emptied as a whole whenever the
// epoch it was filled at differs from the one a lookup presents. That
// makes revocation exact: no entry outlives the commit that changed a rule.

import type { Access, Caller, Decision, Target } from './types';

export const DEFAULT_CACHE_SIZE = 65_536;

export interface CacheStats {
  readonly size: number;
  readonly maxSize: number;
  readonly generation: number | null;
  readonly hits: number;
  readonly misses: number;
  /** hits / (hits + misses), 0 before the first lookup. */
  readonly hitRate: number;
  /** Entries dropped to stay within maxSize. */
  readonly evictions: number;
  /** Times the cache was emptied because the generation changed. */
  readonly invalidations: number;
}

export class DecisionCache {
  private readonly entries = new Map<string, Decision>();
  private generation: number | null = null;
  private hits = 0;
  private misses = 0;
  private evictions = 0;
  private invalidations = 0;

  constructor(readonly maxSize: number = DEFAULT_CACHE_SIZE) {
    if (!Number.isInteger(maxSize) || maxSize < 1) throw new RangeError(`cache size must be a positive integer`);
  }

  get(generation: number, caller: Caller, target: Target, requested: Access): Decision | undefined {
    this.sync(generation);
    const hit = this.entries.get(cacheKey(caller, target, requested));
    if (hit === undefined) this.misses++;
    else this.hits++;
    return hit;
  }

  set(generation: number, caller: Caller, target: Target, requested: Access, decision: Decision): void {
    this.sync(generation);
    const key = cacheKey(caller, target, requested);
    if (!this.entries.has(key) && this.entries.size >= this.maxSize) this.evictOldest();
    this.entries.set(key, decision);
  }

  clear(): void {
    this.entries.clear();
    this.generation = null;
  }

  stats(): CacheStats {
    const lookups = this.hits + this.misses;
    return {
      size: this.entries.size,
      maxSize: this.maxSize,
      generation: this.generation,
      hits: this.hits,
      misses: this.misses,
      hitRate: lookups === 0 ? 0 : this.hits / lookups,
      evictions: this.evictions,
      invalidations: this.invalidations,
    };
  }

  private sync(generation: number): void {
    if (generation === this.generation) return;
    if (this.entries.size > 0) this.invalidations++;
    this.entries.clear();
    this.generation = generation;
  }

  // A Map iterates in insertion order, so its first key is the oldest entry:
  // FIFO eviction at O(1), without the bookkeeping an LRU would need on
  // every hit in the hot path.
  private evictOldest(): void {
    const oldest = this.entries.keys().next();
    if (!oldest.done) {
      this.entries.delete(oldest.value);
      this.evictions++;
    }
  }
}

/**
 * uid:gid:sortedGroups|dev:ino:birth|requested|path. Groups are sorted
 * because the kernel's order carries no meaning; the path is last since it
 * alone can contain the separators. Path is part of the key because a
 * hard-linked file has one inode but several paths, and path rules can tell
 * them apart; birth because an inode number reused by another file is
 * another file to decide() (see Rule.birth).
 */
export function cacheKey(caller: Caller, target: Target, requested: Access): string {
  const groups =
    caller.groups === null
      ? '?'
      : caller.groups.length <= 1
        ? caller.groups.join(',')
        : [...caller.groups].sort(byNumber).join(',');
  return `${caller.uid}:${caller.gid}:${groups}|${target.dev}:${target.ino}:${target.birth ?? ''}|${requested}|${target.path}`;
}

function byNumber(a: number, b: number): number {
  return a - b;
}
