// Names never widen access: whether a link or a rename made through the
// mount may happen, given the rules. Pure: everything comes from the view.
//
// A file is governed by the rule bound to its inode, else the rule at its
// exact path, else the nearest recursive rule above it, else the default
// policy (decide.ts). A new name, or a new place, must leave every object
// it touches governed by the same rule as before:
//
//  - The object's own rule (bound to its inode, or at its exact path) comes
//    along: an inode rule follows the file anyway, a path rule and every
//    rule below the old path move to the new path with a rename.
//  - An object without a rule of its own is governed from above; the
//    nearest recursive rule above the new name must be the same as above
//    the old one. For a directory the same holds unless its own rule is
//    recursive: otherwise what lies inside it is governed from above too.
//    A link needs a rule bound to the inode for the new name to share it
//    (a path rule stays with its path).
//  - Nothing may be governed by a rule at or below the new name already:
//    the moved rules could not take their paths, and the object would
//    fall under that rule instead.
//
// Anything else is refused with EXDEV, which tools read as "another
// filesystem": `mv` copies and deletes instead (the copy reads the data,
// which the rules decide), `ln` reports it. A rename whose rules would get
// a path longer than the store accepts fails with ENAMETOOLONG.
import { findGoverningRule } from './decide';
import { normalizePath, parentPath } from './path';
import type { Rule, RuleView, Target } from './types';
import { MAX_RULE_PATH_BYTES } from './validate';

/** The lookups checkMove needs beyond a decision's. */
export interface MoveView extends RuleView {
  /** Whether some rule's path is `path` or lies below it. */
  anyRuleAtOrBelow(path: string): boolean;
  /** Byte length of the longest rule path at or below `path`; 0 when none. */
  longestRulePathAtOrBelow(path: string): number;
}

export interface Move {
  readonly kind: 'link' | 'rename';
  /** The object's current name, and its identity. */
  readonly file: Target;
  readonly directory: boolean;
  /** The new name. */
  readonly to: string;
}

export type MoveCheck =
  | { readonly ok: true }
  | { readonly ok: false; readonly errno: 'EXDEV' | 'ENAMETOOLONG'; readonly reason: string };

const OK: MoveCheck = { ok: true };

export function checkMove(view: MoveView, move: Move): MoveCheck {
  const from = normalizePath(move.file.path);
  const to = normalizePath(move.to);
  if (from === to) return OK;
  const refuse = (reason: string): MoveCheck => ({ ok: false, errno: 'EXDEV', reason });
  if (view.anyRuleAtOrBelow(to)) return refuse(`${to} has a rule at or below it`);

  const governing = findGoverningRule(view, { ...move.file, path: from });
  const inodeRule = governing?.match === 'inode' ? governing.rule : undefined;
  const pathRule = view.byPath(from);
  const above = recursiveAbove(view, from);
  const aboveNew = recursiveAbove(view, to);
  const sameAbove = above?.id === aboveNew?.id;
  const describe = (rule: Rule | undefined): string => (rule === undefined ? 'the default policy' : `rule ${rule.id} (${rule.path})`);
  const crossing = `from under ${describe(above)} to under ${describe(aboveNew)}`;

  if (move.kind === 'link') {
    if (inodeRule !== undefined) return OK;
    if (pathRule !== undefined) return refuse(`${from} has a rule by path only (rule ${pathRule.id}); a new name would not share it`);
    return sameAbove ? OK : refuse(`a new name would take ${from} ${crossing}`);
  }

  if (inodeRule === undefined && pathRule === undefined && !sameAbove) return refuse(`${from} would move ${crossing}`);
  if (move.directory && !(pathRule?.recursive ?? false) && !sameAbove) {
    return refuse(`what lies in ${from} would move ${crossing}`);
  }
  const longest = view.longestRulePathAtOrBelow(from);
  if (longest > 0 && longest - Buffer.byteLength(from) + Buffer.byteLength(to) > MAX_RULE_PATH_BYTES) {
    return { ok: false, errno: 'ENAMETOOLONG', reason: `a rule moving with ${from} would get a path over ${MAX_RULE_PATH_BYTES} bytes` };
  }
  return OK;
}

/** The nearest recursive rule strictly above `path`, or undefined (default policy). */
function recursiveAbove(view: RuleView, path: string): Rule | undefined {
  for (let dir = parentPath(path); dir !== null; dir = parentPath(dir)) {
    const rule = view.byPath(dir);
    if (rule !== undefined && rule.recursive) return rule;
  }
  return undefined;
}
