// A damaged rule database, as the built `aclfs` meets it: every command that
// opens the store (--db) and `aclfs mount` exit 8 with one line on stderr
// naming the damage, never die by a signal, and the mount refuses to start.
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { inspectDataFile } from '../../src/store/dataFile';
import { describeWithFuse } from '../helpers/facilities';
import { ACLFS, isMounted, makeWorkspace, requireFuse, run, type Workspace } from '../helpers/mounts';

const PAGE = 4096;
const RULES = 3000;

interface Outcome {
  readonly status: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** `aclfs ARGS` through its shebang, as installed; the exit status or the signal that ended it. */
function aclfsSync(args: readonly string[]): Outcome {
  const res = spawnSync(ACLFS, [...args], { encoding: 'utf8', timeout: 60_000 });
  if (res.error !== undefined) throw res.error;
  return { status: res.status, signal: res.signal, stdout: res.stdout, stderr: res.stderr };
}

/** `aclfs mount ...` in the foreground until it exits (a daemon that mounted is stopped and reported). */
function mountOutcome(args: readonly string[], mnt: string): Promise<Outcome & { mounted: boolean }> {
  return new Promise((resolve, reject) => {
    const child = spawn(ACLFS, ['mount', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let mounted = false;
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const watch = setInterval(() => {
      if (!isMounted(mnt)) return;
      // It must not get this far: end it (by its pid) and let the test fail.
      mounted = true;
      child.kill('SIGTERM');
    }, 20);
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.once('error', reject);
    child.once('exit', (status, signal) => {
      clearInterval(watch);
      clearTimeout(timer);
      resolve({ status, signal, stdout, stderr, mounted: mounted || isMounted(mnt) });
    });
  });
}

function expectDamagedExit(res: Outcome, db: string): void {
  expect(res.signal).toBeNull();
  expect(res.status).toBe(8);
  expect(res.stdout).toBe('');
  const lines = res.stderr.split('\n').filter((l) => l !== '');
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatch(new RegExp(`^aclfs: database ${db} is damaged: .+ \\(restore it from a backup or export/import\\)$`));
}

/**
 * Rewrites, in place, the root page of the main tree (the tree that names the
 * store's databases; opening any of them searches it) as a branch page with
 * no nodes, keeping its page number and txnid. In mdb_page_search_root() of
 * the LMDB that lmdb-js bundles, a branch page of any tree but the free-page
 * one must hold at least two nodes: `mdb_cassert(mc, !mc->mc_dbi ||
 * NUMKEYS(mp) > 1)`. Its prebuilt binaries keep assertions (no NDEBUG), and
 * lmdb-js sets no assert callback, so the failed assertion calls abort(): the
 * process that opens the store dies by SIGABRT at its first search of the
 * main tree (when it opens its first named database).
 * No page-number or flag check comes first: mdb_page_search() only takes the
 * root from the meta and maps the page.
 *
 * Page header (PAGEHDRSZ 24, PAGEBASE = PAGEHDRSZ in this LMDB): mp_pgno u64
 * @0, mp_txnid u64 @8, mp_pad u16 @16, mp_flags u16 @18 (P_BRANCH 0x01,
 * P_LEAF 0x02), mp_lower u16 @20, mp_upper u16 @22; mp_lower and mp_upper
 * count from the end of the header, NUMKEYS = mp_lower >> 1.
 */
function makeMainRootAnEmptyBranch(file: string): void {
  const found = inspectDataFile(file);
  if (found.state !== 'sound') throw new Error(`${file} is not a sound data file: ${JSON.stringify(found)}`);
  const { pageSize, mainRoot } = found.meta;
  const at = Number(mainRoot) * pageSize;
  const header = Buffer.alloc(24);
  const fd = fs.openSync(file, 'r+');
  try {
    expect(fs.readSync(fd, header, 0, header.length, at)).toBe(header.length);
    // The page is the root LMDB will read: it names itself, and is the one leaf of a small main tree.
    expect(header.readBigUInt64LE(0)).toBe(mainRoot);
    expect(header.readUInt16LE(18)).toBe(0x02);
    expect(header.readUInt16LE(20)).toBeGreaterThan(0);
    header.writeUInt16LE(0x01, 18); // P_BRANCH
    header.writeUInt16LE(0, 20); // mp_lower: no nodes
    header.writeUInt16LE(pageSize - header.length, 22); // mp_upper: all the page free, as in an empty page
    fs.writeSync(fd, header, 0, header.length, at);
  } finally {
    fs.closeSync(fd);
  }
}

let ws: Workspace;
/** A copy of the intact data file, put back before each damage. */
let intact: Buffer;

const dataFile = (): string => path.join(ws.db, 'data.mdb');

beforeAll(async () => {
  ws = makeWorkspace('aclfs-damaged-');
  const rules = Array.from({ length: RULES }, (_, i) => ({ path: `/docs/d${i % 30}/f${i}`, owner: 0, defaccess: 'r--', acl: [{ user: 1000 + (i % 9), access: 'rw-' }] }));
  const res = await run(process.execPath, [ACLFS, 'import', '-', '--db', ws.db], { input: JSON.stringify({ version: 1, rules }) });
  expect(res).toMatchObject({ code: 0, stderr: '' });
  intact = fs.readFileSync(dataFile());
  // Big enough that half of it cuts B-tree pages off, not just free space.
  expect(intact.length).toBeGreaterThan(64 * PAGE);
});

afterAll(() => {
  if (ws !== undefined && isMounted(ws.mnt)) spawnSync('fusermount', ['-uz', ws.mnt]);
  ws?.cleanup();
});

afterEach(() => {
  fs.writeFileSync(dataFile(), intact);
});

const DAMAGES: [string, () => void, RegExp][] = [
  ['cut to half', () => fs.truncateSync(dataFile(), Math.floor(intact.length / 2)), /data\.mdb is \d+ bytes, its last page needs \d+/],
  ['cut to one page', () => fs.truncateSync(dataFile(), PAGE), /data\.mdb is 4096 bytes, too short for its two meta pages/],
  ['cut to zero bytes', () => fs.truncateSync(dataFile(), 0), /data\.mdb is empty/],
  [
    'garbage over the meta pages',
    () => {
      const fd = fs.openSync(dataFile(), 'r+');
      fs.writeSync(fd, Buffer.from(Array.from({ length: 2 * PAGE }, (_, i) => (i * 131 + 7) & 0xff)), 0, 2 * PAGE, 0);
      fs.closeSync(fd);
    },
    /meta page 0 is not an LMDB meta page/,
  ],
];

describe('the CLI on a damaged database (--db)', () => {
  it.each(DAMAGES)('%s: rule ls and export exit 8 with one line, not by a signal', (_what, damage, problem) => {
    damage();
    for (const args of [
      ['rule', 'ls', '--db', ws.db],
      ['export', '--db', ws.db],
    ]) {
      const res = aclfsSync(args);
      expectDamagedExit(res, ws.db);
      expect(res.stderr).toMatch(problem);
    }
  });

  it('every other command that opens the store says the same, and none changes the file', () => {
    DAMAGES[0]![1]();
    const before = fs.readFileSync(dataFile());
    const ruleFile = path.join(ws.dir, 'one.json');
    fs.writeFileSync(ruleFile, JSON.stringify({ version: 1, rules: [{ path: '/new', owner: 0, defaccess: 'r--' }] }));
    for (const args of [
      ['rule', 'show', '/docs/d1/f1', '--db', ws.db],
      ['rule', 'show', '1', '--db', ws.db],
      ['rule', 'add', '/new', '--owner', '0', '--default', 'r--', '--db', ws.db],
      ['rule', 'set', '/new', '--owner', '0', '--default', 'r--', '--db', ws.db],
      ['rule', 'rm', '1', '--db', ws.db],
      ['import', ruleFile, '--db', ws.db],
      ['check', '/docs/d1/f1', '--uid', '1000', '--gid', '1000', '--groups', '', '--access', 'r', '--db', ws.db],
    ]) {
      expectDamagedExit(aclfsSync(args), ws.db);
    }
    expect(fs.readFileSync(dataFile()).equals(before)).toBe(true);
  });

  it('damage deep inside the file: never a signal, always one line where anything is found, even when reading it kills the reader', () => {
    const pages = intact.length / PAGE;
    const outcomes: string[] = [];
    // Two garbage fills, taken in turn: what LMDB makes of a page depends on
    // the node sizes the fill puts where it looks, so one fill alone may,
    // with the file's layout of the day, only ever give damage the store's
    // reads report (or only faults).
    const fills = [(i: number): number => (i * 131 + 7) & 0xff, (i: number): number => (i * 37 + 201) & 0xff];
    // Every 7th page of the file's second half (where its B-tree pages lie).
    for (let page = 3 + 7 * Math.floor(pages / 14), n = 0; page < pages; page += 7, n++) {
      fs.writeFileSync(dataFile(), intact);
      const fd = fs.openSync(dataFile(), 'r+');
      fs.writeSync(fd, Buffer.from(Array.from({ length: PAGE }, (_, i) => fills[n % fills.length]!(i))), 0, PAGE, page * PAGE);
      fs.closeSync(fd);
      const res = aclfsSync(['rule', 'ls', '--db', ws.db]);
      expect(res.signal).toBeNull();
      // A page LMDB does not reach (free, or of an old version) is no damage.
      if (res.status === 0) {
        outcomes.push('unread');
        continue;
      }
      expectDamagedExit(res, ws.db);
      outcomes.push(/ended the reading process with SIG/.test(res.stderr) ? 'killed the reader' : 'found');
    }
    expect(outcomes).toContain('found');

    // Whether garbage makes LMDB fault depends on the page, so the sweep alone
    // may never kill the reader: one damage that certainly does, every run.
    fs.writeFileSync(dataFile(), intact);
    makeMainRootAnEmptyBranch(dataFile());
    const killed = aclfsSync(['rule', 'ls', '--db', ws.db]);
    // The reader was the checking child, never the command itself.
    expect(killed.signal).toBeNull();
    expectDamagedExit(killed, ws.db);
    expect(killed.stderr).toMatch(/: reading it ended the reading process with SIGABRT \(/);
    outcomes.push(/ended the reading process with SIG/.test(killed.stderr) ? 'killed the reader' : 'found');
    expect(outcomes).toContain('killed the reader');
  });

  it('the intact database still opens, and a new directory still gets a new database', () => {
    const ls = aclfsSync(['rule', 'ls', '--db', ws.db]);
    expect(ls).toMatchObject({ status: 0, signal: null, stderr: '' });
    expect(ls.stdout.trim().split('\n')).toHaveLength(RULES);
    const exported = aclfsSync(['export', '--db', ws.db]);
    expect(exported.status).toBe(0);
    expect(JSON.parse(exported.stdout).rules).toHaveLength(RULES);
    const fresh = path.join(ws.dir, 'fresh-db');
    expect(aclfsSync(['rule', 'add', '/a', '--owner', '0', '--default', 'r--', '--db', fresh])).toMatchObject({ status: 0, stderr: '' });
    expect(aclfsSync(['rule', 'ls', '--db', fresh]).stdout).toMatch(/ \/a\n$/);
  });
});

describeWithFuse('aclfs mount on a damaged database', () => {
  it.each(DAMAGES)('%s: exits 8 without mounting', async (_what, damage, problem) => {
    requireFuse();
    damage();
    const res = await mountOutcome([ws.src, ws.mnt, '--db', ws.db, '--socket', ws.socket], ws.mnt);
    expect(res.mounted).toBe(false);
    expect(res.signal).toBeNull();
    expect(res.status).toBe(8);
    expect(res.stdout).toBe('');
    // The daemon may log (JSON lines) before it opens the store; the refusal is one line of its own.
    const refusals = res.stderr.split('\n').filter((l) => l.startsWith('aclfs: '));
    expect(refusals).toHaveLength(1);
    expect(refusals[0]).toMatch(new RegExp(`^aclfs: database ${ws.db} is damaged: `));
    expect(refusals[0]).toMatch(problem);
    expect(res.stderr).not.toMatch(/\n\s+at /);
    expect(isMounted(ws.mnt)).toBe(false);
    expect(fs.existsSync(ws.socket)).toBe(false);
  });
});
