// A candidate rule set, as decide() sees rules: for deciding what a rule
// file would decide before it is applied (`aclfs check --rules FILE`). Its
// rules are by path only: binding a rule to a file is the store's work, done
// once a rule is in force, so a candidate never governs by inode. Pure.

import type { Rule, RuleInput, RuleView } from './types';

/** A view over `inputs`, numbered 1.. in the file's order (those are the ids decisions name). */
export function candidateView(inputs: readonly RuleInput[]): RuleView {
  const byPath = new Map<string, Rule>();
  inputs.forEach((input, i) => byPath.set(input.path, { ...input, id: i + 1, dev: null, ino: null, birth: null }));
  return { byInode: () => undefined, byPath: (path) => byPath.get(path) };
}
