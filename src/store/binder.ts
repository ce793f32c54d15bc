// Binding: a path rule is tied to the identity (dev, ino, birth) of the file
// at its path as soon as that file is seen to exist, so the rule then
// follows the file through renames and hard links. The file lookup is
// injected: the store does no filesystem I/O of its own but its database's.
import type { FileIdentity } from '../rules/types';
import type { RuleStore } from './store';

export type IdentityLookup = (rulePath: string) => FileIdentity | null;

/**
 * Binds every unbound rule whose file exists, in one commit (one generation
 * bump however many rules, which matters at mount start with a large
 * database); returns how many were bound.
 */
export function bindPendingRules(store: RuleStore, lookup: IdentityLookup): number {
  // Paged, so that a million waiting rules are never all in memory at once.
  const bindings: Binding[] = [];
  let after: string | undefined;
  for (;;) {
    const page = store.unboundPage(after, STARTUP_PAGE);
    bindings.push(...findFiles(page, lookup));
    // A scan maps much of a large database into our RSS; let each page go.
    store.releaseMappedPages();
    if (page.length < STARTUP_PAGE) break;
    after = page[page.length - 1]!.path;
  }
  return bindings.length === 0 ? 0 : store.bindMany(bindings);
}

const STARTUP_PAGE = 10_000;

interface Binding {
  id: number;
  dev: number;
  ino: number;
  birth: string | null;
}

function findFiles(rules: readonly { id: number; path: string }[], lookup: IdentityLookup): Binding[] {
  const bindings: Binding[] = [];
  for (const rule of rules) {
    const found = lookup(rule.path);
    if (found !== null) bindings.push({ id: rule.id, ...found });
  }
  return bindings;
}

function bindAll(store: RuleStore, rules: readonly { id: number; path: string }[], lookup: IdentityLookup): number {
  const bindings = findFiles(rules, lookup);
  return bindings.length === 0 ? 0 : store.bindMany(bindings);
}

/**
 * The daemon's binder after mount start: each commit (by anyone) starts a
 * sweep over the rules still waiting for their file, done in slices of
 * `slice` rules per step, so that many waiting rules never stall the event
 * loop that also serves the mount (a step costs one lstat per rule). A
 * commit during a sweep restarts it from the beginning once it is done.
 */
export class Binder {
  private seenGeneration: number;
  /** Path to resume after; undefined: no sweep under way. */
  private cursor: string | undefined;
  private sweeping = false;
  private pending = false;

  constructor(
    private readonly store: RuleStore,
    private readonly lookup: IdentityLookup,
    private readonly slice = 2000,
  ) {
    this.seenGeneration = store.generation();
  }

  /** One step; returns how many rules it bound. */
  step(): number {
    const generation = this.store.generation();
    if (generation !== this.seenGeneration) {
      this.seenGeneration = generation;
      if (this.sweeping) this.pending = true;
      else this.startSweep();
    }
    if (!this.sweeping) return 0;
    const page = this.store.unboundPage(this.cursor, this.slice);
    const bound = bindAll(this.store, page, this.lookup);
    this.store.releaseMappedPages();
    // Our own commit (at most one) must not start another sweep; anything
    // more was someone else's, and its rules may sort before the cursor.
    const after = this.store.generation();
    if (after - generation > (bound > 0 ? 1 : 0)) this.pending = true;
    this.seenGeneration = after;
    if (page.length < this.slice) {
      this.sweeping = false;
      if (this.pending) {
        this.pending = false;
        this.startSweep();
      }
    } else {
      this.cursor = page[page.length - 1]!.path;
    }
    return bound;
  }

  private startSweep(): void {
    this.sweeping = true;
    this.cursor = undefined;
  }
}
