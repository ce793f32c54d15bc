// Binding: a path rule is tied to the identity (dev, ino) of the file at its
// path as soon as that file is seen to exist, so the rule then follows the
// file through renames and hard links. The file lookup is injected: the
// rules area does no filesystem I/O of its own.
import type { RuleStore } from './store';

export type IdentityLookup = (rulePath: string) => { dev: number; ino: number } | null;

/** Binds every unbound rule whose file exists; returns how many were bound. */
export function bindPendingRules(store: RuleStore, lookup: IdentityLookup): number {
  let bound = 0;
  for (const rule of store.unboundRules()) {
    const id = lookup(rule.path);
    if (id === null) continue;
    if (store.bind(rule.id, id.dev, id.ino)) bound++;
  }
  return bound;
}
