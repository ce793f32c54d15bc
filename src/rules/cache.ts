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
  /**
   * Entries by inode number; entries for the same inode (other callers,
   * other requested bits, hard links, other devices) are chained. A lookup
   * hashes one number and compares fields, instead of building and hashing
   * a string key per question (see find() for what is compared).
   */
  private byIno = new Map<number, Entry>();
  /** Every entry, oldest first from `head` on (a ring once it is full). */
  private order: Entry[] = [];
  private head = 0;
  private lastGroups: readonly number[] | null = null;
  private generation: number | null = null;
  private hits = 0;
  private misses = 0;
  private evictions = 0;
  private invalidations = 0;

  constructor(readonly maxSize: number = DEFAULT_CACHE_SIZE) {
    if (!Number.isInteger(maxSize) || maxSize < 1) throw new RangeError(`cache size must be a positive integer`);
  }

  get(generation: number, caller: Caller, target: Target, requested: Access): Decision | undefined {
    if (generation !== this.generation) this.sync(generation);
    const hit = this.find(caller, target, requested);
    if (hit === undefined) {
      this.misses++;
      return undefined;
    }
    this.hits++;
    return hit.decision;
  }

  /**
   * The cached answer to this question at `generation`, looked at only: not
   * counted as a hit or a miss, and nothing emptied when the generation
   * differs (for an explained check, which must not change the figures of
   * the lookups it explains).
   */
  peek(generation: number, caller: Caller, target: Target, requested: Access): Decision | undefined {
    if (generation !== this.generation) return undefined;
    return this.find(caller, target, requested)?.decision;
  }

  set(generation: number, caller: Caller, target: Target, requested: Access, decision: Decision): void {
    if (generation !== this.generation) this.sync(generation);
    const existing = this.find(caller, target, requested);
    if (existing !== undefined) {
      // Like Map.set on an existing key: replaced in place, keeps its age.
      existing.decision = decision;
      return;
    }
    // Full: the oldest entry goes first (it may head this very chain).
    const full = this.order.length >= this.maxSize;
    if (full) {
      this.unlink(this.order[this.head]!);
      this.evictions++;
    }
    const entry: Entry = {
      ino: target.ino,
      dev: target.dev,
      birth: target.birth ?? null,
      path: target.path,
      uid: caller.uid,
      gid: caller.gid,
      groups: this.groupsOf(caller),
      requested,
      decision,
      next: this.byIno.get(target.ino),
    };
    this.byIno.set(target.ino, entry);
    if (full) {
      this.order[this.head] = entry;
      this.head = this.head + 1 === this.maxSize ? 0 : this.head + 1;
    } else {
      this.order.push(entry);
    }
  }

  clear(): void {
    this.empty();
    this.generation = null;
  }

  stats(): CacheStats {
    const lookups = this.hits + this.misses;
    return {
      size: this.order.length,
      maxSize: this.maxSize,
      generation: this.generation,
      hits: this.hits,
      misses: this.misses,
      hitRate: lookups === 0 ? 0 : this.hits / lookups,
      evictions: this.evictions,
      invalidations: this.invalidations,
    };
  }

  /** The caller's sorted groups, shared with the previous entry when equal (callers repeat). */
  private groupsOf(caller: Caller): readonly number[] | null {
    if (caller.groups === null) return null;
    if (this.lastGroups !== null && sameGroups(this.lastGroups, caller.groups)) return this.lastGroups;
    return (this.lastGroups = sortedGroups(caller.groups));
  }

  /**
   * The entry answering exactly this question: same uid, gid and groups
   * (compared sorted: the kernel's order carries no meaning; unknown groups
   * differ from none at all), same dev, ino and birth (an inode number
   * reused by another file is another file to decide(), see Rule.birth),
   * same path (a hard-linked file has one inode but several paths, and path
   * rules can tell them apart) and same requested bits.
   */
  private find(caller: Caller, target: Target, requested: Access): Entry | undefined {
    const birth = target.birth ?? null;
    for (let e = this.byIno.get(target.ino); e !== undefined; e = e.next) {
      if (
        e.ino === target.ino &&
        e.dev === target.dev &&
        e.uid === caller.uid &&
        e.gid === caller.gid &&
        e.requested === requested &&
        e.birth === birth &&
        e.path === target.path &&
        sameGroups(e.groups, caller.groups)
      ) {
        return e;
      }
    }
    return undefined;
  }

  /** Takes `entry` out of its inode's chain. */
  private unlink(entry: Entry): void {
    const first = this.byIno.get(entry.ino);
    if (first === entry) {
      if (entry.next === undefined) this.byIno.delete(entry.ino);
      else this.byIno.set(entry.ino, entry.next);
      return;
    }
    for (let e = first; e !== undefined; e = e.next) {
      if (e.next === entry) {
        e.next = entry.next;
        return;
      }
    }
  }

  private sync(generation: number): void {
    if (this.order.length > 0) this.invalidations++;
    this.empty();
    this.generation = generation;
  }

  private empty(): void {
    this.byIno = new Map();
    this.order = [];
    this.head = 0;
  }
}

/** One cached question and its answer. */
interface Entry {
  readonly ino: number;
  readonly dev: number;
  readonly birth: string | null;
  readonly path: string;
  readonly uid: number;
  readonly gid: number;
  /** The caller's supplementary groups, sorted (a copy), or null when unknown. */
  readonly groups: readonly number[] | null;
  readonly requested: Access;
  decision: Decision;
  /** The next entry for the same inode number. */
  next: Entry | undefined;
}

function sortedGroups(groups: readonly number[]): number[] {
  return groups.length <= 1 ? [...groups] : [...groups].sort(byNumber);
}

/**
 * Whether `given` holds the same groups (with repeats) as `stored`, which is
 * sorted. The kernel hands groups over sorted, so the first pass usually
 * settles it; only an unsorted list is sorted (a copy) and compared again.
 */
function sameGroups(stored: readonly number[] | null, given: readonly number[] | null): boolean {
  if (stored === null || given === null) return stored === given;
  const n = stored.length;
  if (given.length !== n) return false;
  let i = 0;
  while (i < n && given[i] === stored[i]) i++;
  if (i === n) return true;
  const sorted = sortedGroups(given);
  for (let j = 0; j < n; j++) if (sorted[j] !== stored[j]) return false;
  return true;
}

function byNumber(a: number, b: number): number {
  return a - b;
}
