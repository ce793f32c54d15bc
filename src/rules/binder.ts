// Binding: a path rule is tied to the identity (dev, ino) of the file at its
// path as soon as that file is seen to exist, so the rule then follows the
// file through renames and hard links. The file lookup is injected: the
// rules area does no filesystem I/O of its own.
import type { RuleStore } from './store';
import type { FileIdentity } from './types';

export type IdentityLookup = (rulePath: string) => FileIdentity | null;

/**
 * Binds every unbound rule whose file exists, in one commit (one generation
 * bump however many rules, which matters at mount start with a large
 * database); returns how many were bound.
 */
export function bindPendingRules(store: RuleStore, lookup: IdentityLookup): number {
  const bindings: { id: number; dev: number; ino: number; birth: string | null }[] = [];
  for (const rule of store.unboundRules()) {
    const found = lookup(rule.path);
    if (found !== null) bindings.push({ id: rule.id, ...found });
  }
  return bindings.length === 0 ? 0 : store.bindMany(bindings);
}
