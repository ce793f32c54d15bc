// Names never widen access, tested adversarially: random sequences of
// operations by three users on a small tree, through a real mount, with
// rule changes at random points; after every step each user's read, write
// and getxattr of every name is compared with a reference model written
// from the product definition (docs/product.md; test/model/model.ts, independent of src/rules). Plus a few
// fixed sequences for the cases the product definition names. Every test here mounts, so
// under CI (root, /dev/fuse) none may be skipped.
//
// The random test's 10,000 steps take about 40-45 s on an idle 2-core
// machine (some 240 steps a second: each step is ~37 probes, nearly all of
// them decided by the daemon, which is what the time goes to); its timeout
// allows for a quarter of that speed, and for shrinking a divergence.
//
// Environment (see also `npm run fuzz`):
//   FUZZ_STEPS    steps of the random test (default 10000)
//   FUZZ_SEED     fast-check seed (default: random, printed)
//   FUZZ_TIME     stop the random test after this many seconds instead
//   FUZZ_PER_RUN  operations per sequence (default 250)
//   FUZZ_REPLAY   a JSON array of concrete operations (printed with a
//                 divergence) to run instead of the random test
//   FUZZ_DEFAULT  the daemon's default policy, deny (default) or allow
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeWithFuse } from '../helpers/facilities';
import { requireFuse } from '../helpers/mounts';
import { describe as describeRun, fuzz, Harness, type RunReport } from '../model/harness';
import { BAD_NAME_NEW, FIFO_NAME, type Op, type RuleSpec } from '../model/model';

const STEPS = Number(process.env.FUZZ_STEPS ?? 10_000);
const TIME_S = process.env.FUZZ_TIME === undefined ? undefined : Number(process.env.FUZZ_TIME);
const SEED = process.env.FUZZ_SEED === undefined ? Math.floor(Math.random() * 0x7fffffff) : Number(process.env.FUZZ_SEED);
const PER_RUN = Number(process.env.FUZZ_PER_RUN ?? 250);
const REPLAY = process.env.FUZZ_REPLAY;
/** Room for the steps at 60 a second (or FUZZ_TIME), and 2 minutes for shrinking what they find (60 s) and replaying it. */
const FUZZ_TIMEOUT_MS = (TIME_S ?? Math.max(60, STEPS / 60)) * 1000 + 120_000;

const U1 = 0;
const U2 = 1;
const U3 = 2;
const UID1 = 60001;
const TEAM = 60100;

const deny = (extra: Partial<RuleSpec> = {}): RuleSpec => ({ owner: 0, defaccess: 0, acl: [], recursive: true, ...extra });
const allow = (extra: Partial<RuleSpec> = {}): RuleSpec => ({ owner: 0, defaccess: 7, acl: [], recursive: true, ...extra });

let h: Harness;

beforeAll(async () => {
  requireFuse();
  h = await Harness.start({ defaultPolicy: process.env.FUZZ_DEFAULT === 'allow' ? 'allow' : 'deny' });
});

afterAll(async () => {
  await h?.stop();
});

/** Runs a fixed sequence; a divergence fails the test with the whole trace. */
async function agree(ops: Op[]): Promise<RunReport> {
  const report = await h.run(ops);
  if (report.divergence !== null) expect.fail(['the mount diverged from the model:', ...describeRun(report)].join('\n'));
  return report;
}

describeWithFuse('names never widen access: the mount agrees with the model', () => {
  // One test either way (CI counts a skipped test as a failure); `npm run fuzz` selects it by "random steps".
  const title =
    REPLAY !== undefined
      ? 'random steps: replays FUZZ_REPLAY'
      : `over ${TIME_S === undefined ? `${STEPS} random steps` : `${TIME_S} s of random steps`} (seed ${SEED})`;
  it(
    title,
    async () => {
      if (REPLAY !== undefined) {
        const replayed = await h.run(JSON.parse(REPLAY) as Op[]);
        console.log(describeRun(replayed).join('\n'));
        expect(replayed.divergence).toBeNull();
        return;
      }
      const report = await fuzz(h, {
        seed: SEED,
        steps: TIME_S === undefined ? STEPS : Number.MAX_SAFE_INTEGER,
        timeLimitMs: TIME_S === undefined ? undefined : TIME_S * 1000,
        perRun: PER_RUN,
        log: (line) => console.log(line),
      });
      const s = (ms: number): string => `${(ms / 1000).toFixed(1)} s`;
      console.log(
        `adversarial: ${report.steps} steps in ${report.runs} sequences (${report.skipped} skipped as open in the product definition), ` +
          `${s(report.ms)}, ${((report.steps / report.ms) * 1000).toFixed(0)} steps/s, seed ${SEED}; time in operations ` +
          `${s(report.timing.op)}, waiting for the binder ${s(report.timing.binding)}, probes ${s(report.timing.probe)}`,
      );
      console.log(`results: ${[...h.results].sort().map(([k, n]) => `${k} ${n}`).join(', ')}`);
      if (report.failure !== null) {
        console.error(report.failure);
        expect.fail(report.failure);
      }
      if (TIME_S === undefined) expect(report.steps).toBeGreaterThanOrEqual(STEPS);
    },
    FUZZ_TIMEOUT_MS,
  );
});

describeWithFuse('fixed sequences for the cases the product definition names', () => {
  it('a hard link cannot take a file out of a tree that denies it', async () => {
    await agree([
      { kind: 'mkdir', user: U1, path: '/x' },
      { kind: 'create', user: U1, path: '/x/a' },
      { kind: 'mkdir', user: U1, path: '/y' },
      // /x: nobody but u1 reads; the root's rule lets everyone write everywhere.
      { kind: 'rule-add', path: '/x', rule: deny({ defaccess: 2, acl: [{ user: UID1, access: 7 }] }) },
      { kind: 'link', user: U1, path: '/x/a', to: '/a' }, // EXDEV: no rule of its own, other rule above
      { kind: 'link', user: U1, path: '/x/a', to: '/y/a' },
      { kind: 'rename', user: U1, path: '/x/a', to: '/y/a' },
      { kind: 'link', user: U1, path: '/x/a', to: '/x/b' }, // same tree: fine
    ]);
  });

  it('a file with a rule of its own takes the rule along to a new name and a new place', async () => {
    await agree([
      { kind: 'mkdir', user: U1, path: '/x' },
      { kind: 'create', user: U2, path: '/x/a' },
      { kind: 'rule-set', path: '/x/a', rule: deny({ recursive: false, acl: [{ group: TEAM, access: 4 }] }) },
      // Bound to the file at once: the new name shares it.
      { kind: 'link', user: U2, path: '/x/a', to: '/b' },
      { kind: 'rename', user: U2, path: '/x/a', to: '/c' },
      { kind: 'unlink', user: U2, path: '/b' },
      { kind: 'rule-rm', path: '/c' },
    ]);
  });

  it('nothing is linked or renamed onto a path that has a rule, or above one', async () => {
    await agree([
      { kind: 'create', user: U1, path: '/a' },
      { kind: 'rule-add', path: '/b', rule: deny() },
      { kind: 'link', user: U1, path: '/a', to: '/b' },
      { kind: 'rename', user: U1, path: '/a', to: '/b' },
      { kind: 'mkdir', user: U1, path: '/x' },
      { kind: 'rule-add', path: '/x/c', rule: allow() },
      { kind: 'mkdir', user: U1, path: '/y' },
      { kind: 'rename', user: U1, path: '/y', to: '/x' },
      { kind: 'create', user: U1, path: '/c' },
      { kind: 'rule-add', path: '/c', rule: allow({ recursive: false }) },
      { kind: 'rename', user: U1, path: '/a', to: '/c' },
    ]);
  });

  it('a directory moves with a recursive rule of its own, not with a plain one, across rules', async () => {
    await agree([
      { kind: 'mkdir', user: U3, path: '/x' },
      { kind: 'mkdir', user: U3, path: '/y' },
      { kind: 'rule-add', path: '/y', rule: allow({ acl: [{ user: 60003, access: 4 }] }) },
      { kind: 'mkdir', user: U3, path: '/x/a' },
      { kind: 'create', user: U3, path: '/x/a/b' },
      { kind: 'rule-add', path: '/x/a', rule: deny({ recursive: false }) },
      { kind: 'rename', user: U3, path: '/x/a', to: '/y/a' }, // EXDEV: b would change hands
      { kind: 'rule-set', path: '/x/a', rule: deny({ recursive: true, defaccess: 6 }) },
      { kind: 'rename', user: U3, path: '/x/a', to: '/y/a' },
      { kind: 'rename', user: U3, path: '/y/a', to: '/a' },
    ]);
  });

  it('renames onto another name of the same file follow POSIX: nothing happens, even with a rule at the target', async () => {
    await agree([
      { kind: 'create', user: U1, path: '/a' },
      { kind: 'link', user: U1, path: '/a', to: '/b' },
      { kind: 'rule-set', path: '/a', rule: deny({ recursive: false }) },
      { kind: 'rename', user: U1, path: '/b', to: '/a' },
      { kind: 'rename', user: U1, path: '/a', to: '/a' },
    ]);
  });

  it('renames onto another name of the same file follow POSIX: nothing happens, the rule stays where it is', async () => {
    await agree([
      { kind: 'create', user: U1, path: '/a' },
      { kind: 'link', user: U1, path: '/a', to: '/b' },
      { kind: 'rule-set', path: '/b', rule: deny({ recursive: false }) },
      { kind: 'rename', user: U1, path: '/b', to: '/a' },
      { kind: 'rule-rm', path: '/b' },
    ]);
  });

  it('a rule added for a file with several names governs all of them at once', async () => {
    // Written through the API: bound at once, the harness waits for nothing.
    await agree([
      { kind: 'create', user: U2, path: '/c' },
      { kind: 'link', user: U2, path: '/c', to: '/a' },
      { kind: 'rule-set', path: '/c', rule: deny({ recursive: false }) },
      { kind: 'link', user: U2, path: '/a', to: '/b' },
    ]);
  });

  it('creating asks w of the parent and, of the new path itself, the access it is made with', async () => {
    await agree([
      // Rules waiting on /a and /c that let nobody write there; the root's rule lets everyone write /.
      { kind: 'rule-add', path: '/a', rule: deny({ recursive: false, defaccess: 4 }) },
      { kind: 'mkdir', user: U1, path: '/a' }, // EACCES: w on the new directory too
      { kind: 'create', user: U1, path: '/b' },
      { kind: 'rule-add', path: '/c', rule: deny({ recursive: false, defaccess: 4 }) },
      { kind: 'create', user: U1, path: '/c' }, // opened for writing: w on the new file too
      { kind: 'mkdir', user: U1, path: '/x' },
      { kind: 'mkdir', user: U1, path: '/x/y' },
      // /x/y's own rule lets everyone write it; the recursive rule above lets nobody write below /x.
      { kind: 'rule-add', path: '/x/y', rule: allow({ recursive: false }) },
      { kind: 'rule-add', path: '/x', rule: deny({ defaccess: 4 }) },
      { kind: 'mkdir', user: U1, path: '/x/y/a' }, // EACCES: w on /x/y, not on /x/y/a (from /x)
      { kind: 'create', user: U2, path: '/x/y/b' }, // EACCES likewise
      { kind: 'rule-add', path: '/x/y/c', rule: allow({ recursive: false }) },
      { kind: 'mkdir', user: U3, path: '/x/y/c' }, // the rule waiting there gives it
      { kind: 'rule-add', path: '/x/y/d', rule: allow({ recursive: false }) },
      { kind: 'create', user: U3, path: '/x/y/d' },
    ]);
  });

  it('RENAME_EXCHANGE and RENAME_NOREPLACE give EINVAL', async () => {
    await agree([
      { kind: 'create', user: U1, path: '/a' },
      { kind: 'mkdir', user: U1, path: '/x' },
      { kind: 'exchange', user: U1, path: '/a', to: '/x' },
      { kind: 'noreplace', user: U1, path: '/a', to: '/b' },
      { kind: 'exchange', user: U1, path: '/a', to: '/b' }, // ENOENT before the filesystem
      { kind: 'noreplace', user: U1, path: '/a', to: '/x' }, // EEXIST before the filesystem
    ]);
  });

  it('FIFOs are hidden and cannot be made; names that are not UTF-8 are refused', async () => {
    await agree([
      { kind: 'mkfifo', user: U1, path: '/p' },
      { kind: 'mkfifo', user: U2, path: `/${FIFO_NAME}` }, // hidden there already: still EPERM
      { kind: 'mkdir', user: U1, path: '/x' },
      { kind: 'badname', user: U1, path: `/x/${BAD_NAME_NEW}` },
    ]);
  });

  it('getxattr needs r and setxattr w, by the rule of the inode', async () => {
    await agree([
      { kind: 'create', user: U2, path: '/a' },
      { kind: 'setxattr', user: U2, path: '/a' },
      { kind: 'rule-add', path: '/a', rule: deny({ recursive: false, acl: [{ user: 60002, access: 6 }] }) },
      { kind: 'setxattr', user: U1, path: '/a' },
      { kind: 'link', user: U2, path: '/a', to: '/b' },
      { kind: 'setxattr', user: U2, path: '/b' },
      { kind: 'rule-set', path: '/', rule: deny({ acl: [{ group: TEAM, access: 6 }] }) },
      { kind: 'setxattr', user: U3, path: '/' },
      { kind: 'setxattr', user: U1, path: '/' },
    ]);
  });

  it('Unix permissions come first: chmod is the owner\'s, then needs w', async () => {
    await agree([
      { kind: 'create', user: U1, path: '/a' },
      { kind: 'chmod', user: U2, path: '/a', mode: 0o600 },
      { kind: 'chmod', user: U1, path: '/a', mode: 0o640 },
      { kind: 'link', user: U3, path: '/a', to: '/b' }, // protected_hardlinks: EPERM
      { kind: 'link', user: U2, path: '/a', to: '/b' },
      { kind: 'rule-add', path: '/a', rule: deny({ recursive: false, defaccess: 4 }) },
      { kind: 'chmod', user: U1, path: '/b', mode: 0o666 },
    ]);
  });
});
