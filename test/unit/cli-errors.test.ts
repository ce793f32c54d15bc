// A new user's first mistakes with the built `aclfs`, none of which needs a
// mount or a daemon: each is one line on stderr with its documented exit
// code (docs/product.md, "Exit codes"), and nothing is created before the
// arguments are checked.
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const ROOT = path.resolve(__dirname, '..', '..');
const ACLFS = path.join(ROOT, 'bin', 'aclfs');

interface Result {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

function run(cmd: string, args: readonly string[], input?: string): Promise<Result> {
  return new Promise((resolve) => {
    const child = execFile(cmd, [...args], { timeout: 30_000, encoding: 'utf8' }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof err.code === 'number' ? err.code : -1;
      resolve({ code, stdout, stderr });
    });
    if (input !== undefined) child.stdin?.end(input);
  });
}

const aclfs = (args: readonly string[], input?: string): Promise<Result> => run(process.execPath, [ACLFS, ...args], input);

function expectOneLineError(res: Result, code: number, message: RegExp): void {
  expect(res.stderr).toMatch(/^aclfs: [^\n]*\n$/);
  expect(res.stderr).toMatch(message);
  expect(res.stdout).toBe('');
  expect(res.code).toBe(code);
}

let dir: string;
let src: string;
let mnt: string;
let db: string;
let socket: string;

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'aclfs-cli-errors-'));
  src = path.join(dir, 'src');
  mnt = path.join(dir, 'mnt');
  db = path.join(dir, 'db');
  socket = path.join(dir, 'run', 'aclfs.sock');
  fs.mkdirSync(src);
  fs.mkdirSync(mnt);
});

afterAll(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

/** Neither the database nor the socket's directory was created. */
function expectNothingCreated(): void {
  expect(fs.existsSync(db)).toBe(false);
  expect(fs.existsSync(path.dirname(socket))).toBe(false);
}

describe('aclfs mount: the paths are checked before anything is created', () => {
  it('a missing SRC is not found (exit 3)', async () => {
    expectOneLineError(await aclfs(['mount', path.join(dir, 'nosrc'), mnt, '--db', db, '--socket', socket]), 3, /^aclfs: source \S+\/nosrc does not exist\n$/);
    expectNothingCreated();
  });

  it('a missing MNT is not found (exit 3), with how to make it', async () => {
    const nomnt = path.join(dir, 'nomnt');
    expectOneLineError(await aclfs(['mount', src, nomnt, '--db', db, '--socket', socket]), 3, new RegExp(`mountpoint ${nomnt} does not exist \\(create it: mkdir -p ${nomnt}\\)`));
    expectNothingCreated();
  });

  it('a SRC or MNT that is a file is a usage error (exit 2); a non-empty MNT is in the way (exit 4)', async () => {
    const file = path.join(dir, 'file');
    fs.writeFileSync(file, 'x');
    expectOneLineError(await aclfs(['mount', file, mnt, '--db', db, '--socket', socket]), 2, /source \S+ is not a directory/);
    expectOneLineError(await aclfs(['mount', src, file, '--db', db, '--socket', socket]), 2, /mountpoint \S+ is not a directory/);
    const full = path.join(dir, 'full');
    fs.mkdirSync(full);
    fs.writeFileSync(path.join(full, 'kept'), 'x');
    expectOneLineError(await aclfs(['mount', src, full, '--db', db, '--socket', socket]), 4, /mountpoint \S+ is not empty .*--in-place/);
    expectOneLineError(await aclfs(['mount', src, mnt, '--db', file, '--socket', socket]), 2, /--db \S+ is not a directory/);
    expectNothingCreated();
    fs.rmSync(file);
  });

  it('a socket in a shared directory is refused with advice that keeps the directory as it is (exit 2)', async () => {
    const res = await aclfs(['mount', src, mnt, '--db', db, '--socket', '/tmp/aclfs-cli-errors.sock']);
    expectOneLineError(res, 2, /socket directory \/tmp .*a directory of its own, e\.g\. \/tmp\/aclfs\/aclfs-cli-errors\.sock \(created 0750 if missing\)/);
    expect(res.stderr).not.toMatch(/chmod/);
    expectNothingCreated();
    expect(fs.statSync('/tmp').mode & 0o7777).toBe(0o1777);
  });
});

describe('aclfs mount --metrics-listen', () => {
  it('an address that is not PORT, IPV4:PORT or [IPV6]:PORT is a usage error (exit 2), before anything is created', async () => {
    for (const bad of ['localhost:9464', '70000', '1.2.3:9464', '::1:9464', 'x']) {
      expectOneLineError(
        await aclfs(['mount', src, mnt, '--db', db, '--socket', socket, '--metrics-listen', bad]),
        2,
        /^aclfs: option '--metrics-listen <\[host:\]port>' argument '[^']*' is invalid\. .*expected PORT, IPV4:PORT or \[IPV6\]:PORT/,
      );
      expectNothingCreated();
    }
  });
});

describe('aclfs unmount', () => {
  it('of a directory that is not mounted says so (exit 3); of a missing one, that it does not exist (exit 3)', async () => {
    expectOneLineError(await aclfs(['unmount', mnt]), 3, new RegExp(`^aclfs: ${mnt} is not mounted\\n$`));
    expectOneLineError(await aclfs(['unmount', path.join(dir, 'gone')]), 3, /gone does not exist/);
  });

  it('ends only FUSE mounts (exit 2), never calling fusermount on another filesystem', async () => {
    expectOneLineError(await aclfs(['unmount', '/']), 2, /^aclfs: \/ holds a mount of type \S+, not an aclfs \(FUSE\) mount/);
  });
});

describe('usage', () => {
  it('a misspelled required option is reported as unknown, with a suggestion, before the required one it left missing', async () => {
    expectOneLineError(
      await aclfs(['check', '--uid', '1001', '--acess', 'r', '/docs/a.txt']),
      2,
      /^aclfs: unknown option '--acess' \(Did you mean --access\?\) \(see aclfs help\)\n$/,
    );
    expectOneLineError(await aclfs(['rule', 'add', '/x', '--owner', '0', '--defualt', 'r--']), 2, /unknown option '--defualt' \(Did you mean --default\?\)/);
    // Left out, it is still reported as missing; help still wins over an unknown option.
    expectOneLineError(await aclfs(['check', '--uid', '1001', '/docs/a.txt']), 2, /required option '--access <access>' not specified/);
    expect((await aclfs(['check', '--bogus', '--help'])).code).toBe(0);
  });

  it('an unbuilt checkout says what to run, without a stack trace (exit 7)', async () => {
    const checkout = path.join(dir, 'checkout');
    fs.mkdirSync(path.join(checkout, 'bin'), { recursive: true });
    fs.copyFileSync(ACLFS, path.join(checkout, 'bin', 'aclfs'));
    const res = await run(process.execPath, [path.join(checkout, 'bin', 'aclfs'), 'status']);
    expectOneLineError(res, 7, new RegExp(`^aclfs: not built \\(\\S+ is missing\\): run \`npm ci && npm run build\` in ${checkout}\\n$`));
  });
});

describe('listings and counts (--db, no daemon)', () => {
  const rule = (p: string): object => ({ path: p, owner: 0, defaccess: 'r--', acl: [] });

  it('counts in the right number', async () => {
    const one = await aclfs(['import', '-', '--db', db], JSON.stringify({ version: 1, rules: [rule('/a')] }));
    expect(one).toMatchObject({ code: 0, stderr: '' });
    expect(one.stdout).toMatch(/^imported 1 rule \(1 created, 0 updated\), 1 in total, generation \d+\n$/);
    const two = await aclfs(['import', '-', '--db', db], JSON.stringify({ version: 1, rules: [rule('/b c'), rule('/d')] }));
    expect(two.stdout).toMatch(/^imported 2 rules \(2 created, 0 updated\), 3 in total/);
  });

  it('rule ls --limit tells a person on a terminal how to get the next page; a pipe gets the rules alone', async () => {
    const piped = await aclfs(['rule', 'ls', '--limit', '2', '--db', db]);
    expect(piped).toMatchObject({ code: 0, stderr: '' });
    expect(piped.stdout.split('\n').filter(Boolean)).toHaveLength(2);
    // script(1) gives the command a terminal (its output arrives merged, with CRLF).
    const command = (limit: string): string => [process.execPath, ACLFS, 'rule', 'ls', '--limit', limit, '--db', db].join(' ');
    const more = await run('script', ['-qec', command('2'), '/dev/null']);
    expect(more.code).toBe(0);
    expect(more.stdout.replace(/\r/g, '')).toMatch(/\/b c\naclfs: more rules follow: add --cursor '\/b c' for the next page\n$/);
    const all = await run('script', ['-qec', command('3'), '/dev/null']);
    expect(all.stdout).not.toMatch(/more rules follow/);
  });

  it('a --db that is a file, or lies below one, is a usage error (exit 2), for reads and writes alike', async () => {
    const file = path.join(dir, 'not-a-db');
    fs.writeFileSync(file, 'x');
    expectOneLineError(await aclfs(['rule', 'ls', '--db', file]), 2, /--db \S+ is not a directory/);
    expectOneLineError(await aclfs(['rule', 'add', '/x', '--owner', '0', '--default', 'r--', '--db', path.join(file, 'sub')]), 2, /--db \S+: a part of the path is not a directory/);
  });

  it('a write with --db that fails leaves no new database behind; one that succeeds keeps it', async () => {
    const fresh = path.join(dir, 'fresh', 'db');
    expectOneLineError(await aclfs(['import', '-', '--db', fresh], JSON.stringify({ version: 1, rules: [{ path: 'x' }] })), 2, /^aclfs: rule 0 \(x\)/);
    expectOneLineError(await aclfs(['rule', 'add', '/x', '--owner', 'no-such-user-x', '--default', 'r--', '--db', fresh]), 2, /unknown user/);
    expectOneLineError(await aclfs(['rule', 'rm', '/x', '--db', fresh]), 3, /no rule for \/x/);
    expect(fs.existsSync(path.join(dir, 'fresh'))).toBe(false);
    expect(await aclfs(['import', '-', '--db', fresh], JSON.stringify({ version: 1, rules: [] }))).toMatchObject({ code: 0, stderr: '' });
    expect(fs.existsSync(path.join(fresh, 'data.mdb'))).toBe(true);
  });

  it('check without a mount says the decision is by path only, and why', async () => {
    const res = await aclfs(['check', '--uid', '0', '--gid', '0', '--groups', '', '--access', 'r', '/a', '--db', db]);
    expect(res.code).toBe(0);
    expect(res.stdout.split('\n')[1]).toBe(`  for uid 0 gid 0 groups none, /a (by path only: no mount to look the file up in), generation 2`);
  });
});
