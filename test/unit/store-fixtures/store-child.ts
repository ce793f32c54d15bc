// Run in a separate process by test/unit/store.test.ts (through vite-node):
// writes to the store directory given on the command line, then prints the
// resulting generation as JSON on stdout.
//
//   store-child.ts DIR add PATH          add one rule
//   store-child.ts DIR import N PREFIX   import N rules PREFIX/f0 .. in one txn

import { RuleStore } from '../../../src/store/store';
import { native } from '../../../src/native/binding';

function main(argv: string[]): void {
  const [dir, command, arg, prefix] = argv;
  if (dir === undefined || command === undefined || arg === undefined) throw new Error('usage: DIR add PATH | DIR import N PREFIX');
  const store = RuleStore.open(dir, native);
  try {
    if (command === 'add') {
      store.add({ path: arg, owner: 0, defaccess: 4, acl: [{ user: 1000, access: 6 }], recursive: false });
    } else if (command === 'import') {
      const n = Number(arg);
      const rules = Array.from({ length: n }, (_, i) => ({ path: `${prefix ?? '/bulk'}/f${i}`, owner: 0, defaccess: 4, acl: [], recursive: false }));
      store.importRules(rules);
    } else {
      throw new Error(`unknown command ${command}`);
    }
    process.stdout.write(JSON.stringify({ generation: store.generation(), count: store.count() }));
  } finally {
    store.close();
  }
}

main(process.argv.slice(2));
