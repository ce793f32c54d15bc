// Attacks through the mount, each as a regression test on a real mount:
// names never widen access (hard links, renames, onto ruled targets, rule
// paths that would grow too long), every object the mount shows is decided
// (FIFOs, sockets and devices hidden, xattrs need r), cached data is
// trusted only for the file it came from, names that are not UTF-8 are
// refused rather than confused, --rules-only keeps POSIX's powers where
// they belong, one user cannot exhaust the daemon's descriptors, and paths
// longer than PATH_MAX from the host's root but not from the mount's work.
// The attacker is uid 65534; root sets things up behind the mount.
import { execFileSync, spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeWithFuse } from '../helpers/facilities';
import { ACLFS, ALICE, Daemon, importRules, makeWorkspace, pyAs, requireFuse, run, runAs, setprivArgs, type Identity, type Workspace } from '../helpers/mounts';

const OP_PY = path.join(__dirname, '..', 'fixtures', 'op.py');
const ATTACKER: Identity = { uid: 65534, gid: 65534 };
const ROOT: Identity = { uid: 0, gid: 0 };

async function op(who: Identity, ...args: string[]): Promise<string> {
  const res = await runAs(who, '/usr/bin/python3', [OP_PY, ...args]);
  if (res.stderr !== '') throw new Error(`op.py ${args.join(' ')}: ${res.stderr}`);
  return res.stdout.trim().split(/\s+/).pop() ?? '';
}

const py = pyAs;

/** Reads a file as `who`: its contents, or the errno name. */
const READ = `
import errno, sys
try:
    print(open(sys.argv[1], 'rb').read().decode(errors='replace'))
except OSError as e:
    print(errno.errorcode[e.errno])
`;

async function readAs(who: Identity, file: string): Promise<string> {
  return py(who, READ, file);
}

/**
 * A process of `who` holding as many opens of `file` as it can get (up to
 * `most`): its report ("COUNT ERRNO", ERRNO "none" if it got them all), and
 * release() to close them all and wait for it to end.
 */
async function holdOpens(who: Identity, file: string, most: number): Promise<{ report: string; release(): Promise<void> }> {
  const hold = `
import errno, os, sys
fds = []
err = 'none'
for i in range(int(sys.argv[2])):
    try:
        fds.append(os.open(sys.argv[1], os.O_RDONLY))
    except OSError as e:
        err = errno.errorcode[e.errno]
        break
print(len(fds), err, flush=True)
sys.stdin.read()
`;
  const holder = spawn('setpriv', [...setprivArgs(who), '/usr/bin/python3', '-c', hold, file, String(most)], { stdio: ['pipe', 'pipe', 'pipe'] });
  const exited = new Promise<void>((resolve) => holder.once('exit', () => resolve()));
  const release = async (): Promise<void> => {
    holder.stdin.end();
    await exited;
  };
  const report = await new Promise<string>((resolve, reject) => {
    let out = '';
    holder.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('\n')) resolve(out.trim());
    });
    void exited.then(() => reject(new Error(`holder of ${file} ended early: ${out}`)));
  });
  return { report, release };
}

/** A daemon serving one describe block: the source prepared and the rules imported before its tests, all gone after. */
interface Served {
  readonly ws: Workspace;
  readonly daemon: Daemon;
  /** The source directory the daemon serves. */
  readonly src: string;
  /** A path in the source, and the same path in the mount. */
  s(p: string): string;
  m(p: string): string;
}

function served(options: {
  rules: unknown[];
  prepare?: (s: (p: string) => string) => void;
  args?: readonly string[];
  /** A command line the daemon runs under (prlimit's). */
  wrapper?: readonly string[];
  /** The source directory, when not the workspace's own. */
  source?: (ws: Workspace) => string;
  /** Before the workspace is removed. */
  teardown?: (src: string) => void;
}): Served {
  let ws: Workspace | undefined;
  let daemon: Daemon | undefined;
  let src = '';
  beforeAll(async () => {
    requireFuse();
    ws = makeWorkspace();
    src = options.source?.(ws) ?? ws.src;
    options.prepare?.((p) => path.join(src, p));
    await importRules(ws.db, options.rules);
    daemon = await Daemon.start([src, ws.mnt, '--db', ws.db, '--socket', ws.socket, ...(options.args ?? [])], ws.mnt, {
      wrapper: options.wrapper ?? [],
    });
  });
  afterAll(async () => {
    await daemon?.ensureStopped();
    if (ws !== undefined) options.teardown?.(src);
    ws?.cleanup();
  });
  const must = <T>(value: T | undefined, what: string): T => {
    if (value === undefined) throw new Error(`${what} is not set up`);
    return value;
  };
  return {
    get ws() {
      return must(ws, 'workspace');
    },
    get daemon() {
      return must(daemon, 'daemon');
    },
    get src() {
      return src;
    },
    s: (p) => path.join(src, p),
    m: (p) => path.join(must(ws, 'workspace').mnt, p),
  };
}

const DEEP_RULE = `/pub/ld/${['x', 'y', 'z', 'w', 'v', 'u', 't', 'r'].map((c) => c.repeat(200)).join('/')}/${'q'.repeat(170)}`;

describeWithFuse('names never widen access', () => {
  const { s, m } = served({
    prepare: (s) => {
      for (const d of ['secret', 'pub', 'pub/secretdir', 'pub/inbox', 'pub/ld', 'wo', 'pub/sub', 'pub/owned']) {
        mkdirSync(s(d));
        chmodSync(s(d), 0o777);
      }
      for (const [f, text] of [
        ['secret/s.txt', 'SECRET'],
        ['pub/secretdir/s.txt', 'SECRETDIR'],
        ['wo/drop.txt', 'DROPPED'],
        ['pub/own.txt', 'OWN'],
        ['pub/plain.txt', 'PLAIN'],
        ['pub/owned/in.txt', 'INSIDE'],
      ] as const) {
        writeFileSync(s(f), text);
        chmodSync(s(f), 0o666);
      }
    },
    rules: [
      { path: '/', recursive: true, owner: 0, defaccess: 'rwx', acl: [] },
      { path: '/secret', recursive: true, owner: 0, defaccess: '---', acl: [] },
      { path: '/pub/secretdir', recursive: true, owner: 0, defaccess: '---', acl: [] },
      { path: '/pub/inbox', recursive: true, owner: 0, defaccess: 'rwx', acl: [] },
      // A drop box: anyone may write into it, nobody but root may read.
      { path: '/wo', recursive: true, owner: 0, defaccess: '-wx', acl: [] },
      { path: '/pub/own.txt', owner: 0, defaccess: '-w-', acl: [] },
      { path: '/pub/owned', recursive: true, owner: 0, defaccess: '-wx', acl: [] },
      { path: DEEP_RULE, owner: 0, defaccess: '---', acl: [] },
    ],
  });

  it('refuses a hard link that would take a file out of its denied tree (EXDEV), for anyone', async () => {
    expect(await readAs(ATTACKER, m('secret/s.txt'))).toBe('EACCES');
    expect(await op(ATTACKER, 'link', m('secret/s.txt'), m('pub/x'))).toBe('EXDEV');
    expect(await op(ROOT, 'link', m('secret/s.txt'), m('pub/x'))).toBe('EXDEV');
    expect(existsSync(s('pub/x'))).toBe(false);
    expect(await readAs(ATTACKER, m('pub/x'))).toBe('ENOENT');
    expect(await op(ATTACKER, 'append', m('secret/s.txt'), 'X')).toBe('EACCES');
    expect(readFileSync(s('secret/s.txt'), 'utf8')).toBe('SECRET');
  });

  it('links within one rule, and links of a file with its own rule (the rule follows the inode)', async () => {
    expect(await op(ATTACKER, 'link', m('pub/plain.txt'), m('pub/sub/plain-link'))).toBe('OK');
    expect(await readAs(ATTACKER, m('pub/sub/plain-link'))).toBe('PLAIN');
    expect(await op(ATTACKER, 'link', m('pub/own.txt'), m('pub/sub/own-link'))).toBe('OK');
    expect(await readAs(ATTACKER, m('pub/sub/own-link'))).toBe('EACCES');
    expect(await readAs(ATTACKER, m('pub/own.txt'))).toBe('EACCES');
  });

  it('refuses a rename onto a target that has a rule of its own, and mv cannot copy the secret either', async () => {
    expect(await op(ATTACKER, 'rename', m('pub/secretdir'), m('pub/inbox'))).toBe('EXDEV');
    expect(existsSync(s('pub/secretdir/s.txt'))).toBe(true);
    const mv = await runAs(ATTACKER, 'mv', ['-T', m('pub/secretdir'), m('pub/inbox')]);
    expect(mv.code).not.toBe(0);
    expect(await readAs(ATTACKER, m('pub/inbox/s.txt'))).toMatch(/^(ENOENT|EACCES)$/);
    expect(await readAs(ATTACKER, m('pub/secretdir/s.txt'))).toBe('EACCES');
  });

  it('refuses a rename out of a write-only drop box into a readable tree', async () => {
    expect(await readAs(ATTACKER, m('wo/drop.txt'))).toBe('EACCES');
    expect(await op(ATTACKER, 'rename', m('wo/drop.txt'), m('pub/drop.txt'))).toBe('EXDEV');
    expect(await readAs(ATTACKER, m('pub/drop.txt'))).toBe('ENOENT');
    // A directory without a rule of its own cannot leave its rule either.
    expect(await op(ATTACKER, 'mkdir', m('wo/d'))).toBe('OK');
    expect(await op(ATTACKER, 'rename', m('wo/d'), m('pub/d'))).toBe('EXDEV');
  });

  it('moves a directory with its own recursive rule, the rule along with it', async () => {
    expect(await readAs(ATTACKER, m('pub/owned/in.txt'))).toBe('EACCES');
    expect(await op(ATTACKER, 'rename', m('pub/owned'), m('pub/sub/owned'))).toBe('OK');
    expect(await readAs(ATTACKER, m('pub/sub/owned/in.txt'))).toBe('EACCES');
    expect(await readAs(ROOT, m('pub/sub/owned/in.txt'))).toBe('INSIDE');
  });

  it('refuses a rename whose rules would get a path longer than the store takes (ENAMETOOLONG)', async () => {
    expect(await op(ATTACKER, 'rename', m('pub/ld'), m(`pub/ld${'L'.repeat(120)}`))).toBe('ENAMETOOLONG');
    expect(existsSync(s('pub/ld'))).toBe(true);
  });

  it('refuses RENAME_EXCHANGE and RENAME_NOREPLACE through the mount (EINVAL)', async () => {
    const renameat2 = `
import ctypes, errno, os, sys
libc = ctypes.CDLL(None, use_errno=True)
rc = libc.renameat2(-100, sys.argv[1].encode(), -100, sys.argv[2].encode(), int(sys.argv[3]))
print('OK' if rc == 0 else errno.errorcode[ctypes.get_errno()])
`;
    expect(await py(ATTACKER, renameat2, m('secret/s.txt'), m('pub/plain.txt'), '2')).toBe('EINVAL');
    expect(await py(ATTACKER, renameat2, m('pub/plain.txt'), m('pub/new-name'), '1')).toBe('EINVAL');
    expect(readFileSync(s('secret/s.txt'), 'utf8')).toBe('SECRET');
  });
});

describeWithFuse('every object the mount shows is decided', () => {
  const mounted = served({
    prepare: (s) => {
      mkdirSync(s('d'));
      chmodSync(s('d'), 0o777);
      writeFileSync(s('d/denied.txt'), 'DENIED');
      chmodSync(s('d/denied.txt'), 0o666);
      execFileSync('/usr/bin/python3', ['-c', 'import os,sys; os.setxattr(sys.argv[1], "user.note", b"hidden")', s('d/denied.txt')]);
      execFileSync('mkfifo', ['-m', '0666', s('d/fifo')]);
      execFileSync('mknod', ['-m', '0666', s('d/null'), 'c', '1', '3']);
      execFileSync('/usr/bin/python3', ['-c', 'import socket,sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])', s('d/sock')]);
    },
    rules: [
      { path: '/', recursive: true, owner: 0, defaccess: 'rwx', acl: [] },
      { path: '/d/denied.txt', owner: 0, defaccess: '---', acl: [] },
      { path: '/d/fifo', owner: 0, defaccess: '---', acl: [] },
    ],
  });
  const { m } = mounted;

  it('hides FIFOs, sockets and device nodes: not listed, not found, not opened', async () => {
    const listed = await py(ATTACKER, 'import os,sys; print(",".join(sorted(os.listdir(sys.argv[1]))))', m('d'));
    expect(listed).toBe('denied.txt');
    for (const name of ['fifo', 'null', 'sock']) {
      expect(await op(ATTACKER, 'read', m(`d/${name}`))).toBe('ENOENT');
      expect(await py(ATTACKER, 'import os,sys,errno\ntry:\n os.lstat(sys.argv[1]); print("OK")\nexcept OSError as e: print(errno.errorcode[e.errno])', m(`d/${name}`))).toBe('ENOENT');
    }
  });

  it('needs r on a file to read or list its extended attributes', async () => {
    expect(await op(ATTACKER, 'getxattr', m('d/denied.txt'), 'user.note')).toBe('EACCES');
    expect(await op(ATTACKER, 'listxattr', m('d/denied.txt'))).toBe('EACCES');
    expect(await py(ROOT, 'import os,sys; print(os.getxattr(sys.argv[1], "user.note").decode())', m('d/denied.txt'))).toBe('hidden');
    expect(mounted.daemon.stderr).toContain('"op":"getxattr"');
  });
});

describeWithFuse('cached data is trusted only for the file it came from', () => {
  const { s, m } = served({
    prepare: (s) => {
      mkdirSync(s('d'));
      chmodSync(s('d'), 0o777);
      // Same size, same mtime, different contents.
      writeFileSync(s('d/sec.txt'), 'AAAA-secret');
      writeFileSync(s('d/pub.txt'), 'BBBB-public');
      for (const f of ['d/sec.txt', 'd/pub.txt']) {
        chmodSync(s(f), 0o644);
        utimesSync(s(f), 1_700_000_000, 1_700_000_000);
      }
    },
    rules: [
      { path: '/', recursive: true, owner: 0, defaccess: 'r-x', acl: [{ user: ATTACKER.uid, access: '--x' }] },
      // Bound to the file now at /d/pub.txt: the attacker may read that file.
      { path: '/d/pub.txt', owner: 0, defaccess: 'r--', acl: [] },
    ],
  });

  it('drops the cached data of a path when another file is swapped in behind the mount', async () => {
    expect(await readAs(ATTACKER, m('d/sec.txt'))).toBe('EACCES');
    // Root reads the secret through the mount: its data is now cached there.
    expect(await readAs(ROOT, m('d/sec.txt'))).toBe('AAAA-secret');
    expect(await readAs(ROOT, m('d/pub.txt'))).toBe('BBBB-public');
    // Someone with write access to SRC exchanges the two files.
    const exchange = 'import ctypes,sys; libc=ctypes.CDLL(None, use_errno=True); assert libc.renameat2(-100, sys.argv[1].encode(), -100, sys.argv[2].encode(), 2) == 0';
    execFileSync('/usr/bin/python3', ['-c', exchange, s('d/sec.txt'), s('d/pub.txt')]);
    // The file now at /d/sec.txt is the one the attacker may read; it must
    // get that file's data, never the cached secret.
    expect(await readAs(ATTACKER, m('d/sec.txt'))).toBe('BBBB-public');
    expect(await readAs(ROOT, m('d/pub.txt'))).toBe('AAAA-secret');
    expect(await readAs(ATTACKER, m('d/sec.txt'))).toBe('BBBB-public');
  });
});

describeWithFuse('names that are not UTF-8 are refused, never confused', () => {
  const { s, m } = served({
    prepare: (s) => {
      mkdirSync(s('u'));
      chmodSync(s('u'), 0o777);
      // "a\\xff" and its look-alike "a\\xef\\xbf\\xbd" (U+FFFD), side by side.
      execFileSync('/usr/bin/python3', [
        '-c',
        'import os,sys; d=sys.argv[1].encode(); open(d+b"/a\\xff","wb").write(b"RAW-BYTE"); open(d+b"/a\\xef\\xbf\\xbd","wb").write(b"LOOK-ALIKE-LONGER"); [os.chmod(d+n, 0o666) for n in (b"/a\\xff", b"/a\\xef\\xbf\\xbd")]; os.mkdir(d+b"/dir\\xfd", 0o777); open(d+b"/dir\\xfd/inner","wb").write(b"INNER")',
        s('u'),
      ]);
    },
    rules: [{ path: '/', recursive: true, owner: 0, defaccess: 'rwx', acl: [] }],
  });

  it('lists only the valid name, answers EILSEQ for the other, and never touches the look-alike', async () => {
    const code = `
import errno, os, sys
d = sys.argv[1].encode()
def attempt(f):
    try:
        r = f()
        return 'OK' if r is None else r
    except OSError as e:
        return errno.errorcode[e.errno]
print(repr(sorted(os.listdir(d))))
print(attempt(lambda: open(d + b'/a\\xff', 'rb').read().decode()))
print(attempt(lambda: (lambda fd: (os.write(fd, b'X'), os.close(fd)))(os.open(d + b'/a\\xff', os.O_WRONLY)) and None))
print(attempt(lambda: os.close(os.open(d + b'/new\\xfe', os.O_CREAT | os.O_WRONLY, 0o644))))
print(attempt(lambda: os.mkdir(d + b'/dir\\xfe')))
print(attempt(lambda: os.symlink(b'to\\xfe', d + b'/link')))
print(attempt(lambda: open(d + b'/a\\xef\\xbf\\xbd', 'rb').read().decode()))
print(attempt(lambda: open(d + b'/dir\\xfd/inner', 'rb').read().decode()))
`;
    const out = (await py(ATTACKER, code, m('u'))).split('\n');
    expect(out).toEqual(["[b'a\\xef\\xbf\\xbd']", 'EILSEQ', 'EILSEQ', 'EILSEQ', 'EILSEQ', 'EILSEQ', 'LOOK-ALIKE-LONGER', 'EILSEQ']);
    const raw = execFileSync('/usr/bin/python3', ['-c', 'import sys; print(open(sys.argv[1].encode()+b"/a\\xff","rb").read().decode())', s('u')], { encoding: 'utf8' });
    expect(raw.trim()).toBe('RAW-BYTE');
    expect(readFileSync(s('u/a\ufffd'), 'utf8')).toBe('LOOK-ALIKE-LONGER');
  });
});

describeWithFuse('--rules-only keeps POSIX powers over metadata where POSIX puts them', () => {
  const { s, m } = served({
    prepare: (s) => {
      mkdirSync(s('w'), { mode: 0o700 });
      writeFileSync(s('w/roots.sh'), '#!/bin/sh\n');
      chmodSync(s('w/roots.sh'), 0o755);
    },
    rules: [{ path: '/', recursive: true, owner: 0, defaccess: 'rwx', acl: [] }],
    args: ['--rules-only'],
  });

  it("gives new files to their maker, never to root", async () => {
    expect(await op(ATTACKER, 'create', m('w/mine'))).toBe('OK');
    expect(await op(ATTACKER, 'mkdir', m('w/minedir'))).toBe('OK');
    for (const f of ['w/mine', 'w/minedir']) expect(statSync(s(f))).toMatchObject({ uid: ATTACKER.uid, gid: ATTACKER.gid });
  });

  it('refuses chmod and chown of a file the caller does not own, and a group the caller is not in', async () => {
    expect(await op(ATTACKER, 'chmod', m('w/roots.sh'), '4755')).toBe('EPERM');
    expect(statSync(s('w/roots.sh')).mode & 0o7777).toBe(0o755);
    expect(await op(ATTACKER, 'chown', m('w/roots.sh'), String(ATTACKER.uid), '-1')).toBe('EPERM');
    expect(statSync(s('w/roots.sh')).uid).toBe(0);
    expect(await op(ATTACKER, 'chown', m('w/mine'), '0', '-1')).toBe('EPERM');
    expect(await op(ATTACKER, 'chown', m('w/mine'), '-1', '0')).toBe('EPERM');
    expect(await op(ATTACKER, 'utime', m('w/roots.sh'), '1000')).toBe('EPERM');
    // Its own file, as POSIX allows: mode bits (setuid to itself only).
    expect(await op(ATTACKER, 'chmod', m('w/mine'), '4755')).toBe('OK');
    expect(statSync(s('w/mine'))).toMatchObject({ uid: ATTACKER.uid, mode: expect.any(Number) });
    // Root keeps root's powers.
    expect(await op(ROOT, 'chown', m('w/mine'), String(ALICE.uid), String(ALICE.gid))).toBe('OK');
    expect(statSync(s('w/mine')).uid).toBe(ALICE.uid);
  });
});

/** One file, f.txt ("data"), that every user may read: what the descriptor floods open. */
const ONE_READABLE_FILE = {
  prepare: (s: (p: string) => string): void => {
    writeFileSync(s('f.txt'), 'data');
    chmodSync(s('f.txt'), 0o644);
  },
  rules: [{ path: '/', recursive: true, owner: 0, defaccess: 'r-x', acl: [] }],
};

describeWithFuse("one user cannot take the daemon's descriptors", () => {
  const mounted = served({
    ...ONE_READABLE_FILE,
    args: ['--max-open-per-user', '200'],
  });
  const { m } = mounted;

  it('fails opens past the per-user bound with EMFILE, for that user only, and gives them back at close', async () => {
    const holder = await holdOpens(ATTACKER, m('f.txt'), 1000);
    try {
      expect(holder.report).toBe('200 EMFILE');
      // Another user, and the same user's next open, while the opens are held.
      expect(await readAs(ALICE, m('f.txt'))).toBe('data');
      expect(await readAs(ATTACKER, m('f.txt'))).toBe('EMFILE');
    } finally {
      await holder.release();
    }
    expect(await readAs(ATTACKER, m('f.txt'))).toBe('data');
    expect(mounted.daemon.child.exitCode).toBe(null);
  });
});

describeWithFuse('all users together cannot take the descriptors the daemon needs', () => {
  // 1,400 descriptors: 1,024 kept for the daemon's own work, 376 for handles.
  const mounted = served({
    ...ONE_READABLE_FILE,
    args: ['--max-open-per-user', '0'],
    wrapper: ['prlimit', '--nofile=1400:1400'],
  });
  const { m } = mounted;

  it('refuses opens past what the descriptor limit leaves (EMFILE), keeps serving, and recovers at close', async () => {
    const first = await holdOpens(ATTACKER, m('f.txt'), 1000);
    const second = await holdOpens(ALICE, m('f.txt'), 1000).catch(async (err: unknown) => {
      await first.release();
      throw err;
    });
    try {
      expect(first.report).toBe('376 EMFILE');
      expect(second.report).toBe('0 EMFILE');
      expect(await readAs(ROOT, m('f.txt'))).toBe('EMFILE');
      // The daemon itself still has descriptors: its admin socket answers.
      const status = await runAs(ROOT, ACLFS, ['status', '--socket', mounted.ws.socket, '--json']);
      expect(status.code).toBe(0);
      expect(mounted.daemon.stderr).toContain('"maxOpen":376');
    } finally {
      await first.release();
      await second.release();
    }
    expect(await readAs(ALICE, m('f.txt'))).toBe('data');
    expect(mounted.daemon.child.exitCode).toBe(null);
  });
});

describeWithFuse('paths are resolved from the root descriptor', () => {
  const mounted = served({
    // A source directory with a long path of its own.
    source: (ws) => {
      const src = path.join(ws.dir, 'p'.repeat(150));
      mkdirSync(src, { mode: 0o755 });
      return src;
    },
    rules: [{ path: '/', recursive: true, owner: 0, defaccess: 'rwx', acl: [] }],
    // Too deep for a path-based removal; shutil.rmtree walks by descriptor.
    teardown: (src) => execFileSync('/usr/bin/python3', ['-c', 'import shutil,sys; shutil.rmtree(sys.argv[1], ignore_errors=True)', src]),
  });

  it('serves a file whose path from the host root is longer than PATH_MAX, as the directory does', async () => {
    // 16 levels of 250-byte names: about 4,020 bytes below the mount root,
    // well over 4,096 with the source directory's own path in front.
    const code = `
import errno, os, sys
os.chdir(sys.argv[1])
for i in range(16):
    name = chr(ord('a') + i) * 250
    if not os.path.isdir(name):
        os.mkdir(name)
    os.chdir(name)
def attempt(f):
    try:
        r = f()
        return 'OK' if r is None else str(r)
    except OSError as e:
        return errno.errorcode[e.errno]
out = []
out.append(attempt(lambda: open('f', 'w').write('deep') and None))
out.append(attempt(lambda: open('f').read()))
out.append(attempt(lambda: os.rename('f', 'g')))
out.append(attempt(lambda: os.link('g', 'h')))
out.append(attempt(lambda: os.chmod('g', 0o600)))
out.append(attempt(lambda: os.setxattr('g', 'user.k', b'v')))
out.append(attempt(lambda: os.getxattr('g', 'user.k').decode()))
out.append(attempt(lambda: os.symlink('g', 's')))
out.append(attempt(lambda: os.readlink('s')))
out.append(attempt(lambda: ','.join(sorted(os.listdir('.')))))
out.append(attempt(lambda: os.unlink('h')))
out.append(attempt(lambda: os.unlink('s')))
out.append(attempt(lambda: os.unlink('g')))
print(' '.join(out))
`;
    const out = await py(ROOT, code, mounted.m('.'));
    expect(out).toBe('OK deep OK OK OK OK v OK g g,h,s OK OK OK');
    expect(Buffer.byteLength(mounted.src) + 16 * 251 + 2).toBeGreaterThan(4096);
  });
});

describeWithFuse('a symlink swapped in behind the mount is never followed by the daemon', () => {
  const mounted = served({
    prepare: (s) => {
      mkdirSync(s('d'));
      chmodSync(s('d'), 0o777);
      writeFileSync(s('d/f'), 'INSIDE');
    },
    rules: [{ path: '/', recursive: true, owner: 0, defaccess: 'rwx', acl: [] }],
  });

  it('refuses to follow a directory turned into a symlink out of the tree, while the kernel still has it cached', async () => {
    // Outside the source: only root may reach it directly.
    const outside = path.join(mounted.ws.dir, 'outside');
    mkdirSync(outside, { mode: 0o700 });
    writeFileSync(path.join(outside, 'victim'), 'VICTIM');
    chmodSync(path.join(outside, 'victim'), 0o666);
    const probe = `
import errno, os, sys
d = sys.argv[1]
def attempt(f):
    try:
        r = f()
        return 'OK' if r is None else r
    except OSError as e:
        return errno.errorcode[e.errno]
print(attempt(lambda: open(d + '/victim').read()), attempt(lambda: os.unlink(d + '/victim')), attempt(lambda: os.mkdir(d + '/made')), attempt(lambda: open(d + '/new', 'w').close()))
`;
    // Root looks the directory up through the mount (the kernel caches it
    // for a second), swaps it for a symlink behind the mount, and the
    // attacker acts through the cached name at once.
    const swap = `
import os, subprocess, sys
mnt, src, outside = sys.argv[1:4]
os.stat(mnt + '/d')
os.rename(src + '/d', src + '/d.old')
os.symlink(outside, src + '/d')
out = subprocess.run(sys.argv[4:] + [mnt + '/d'], capture_output=True, text=True)
print(out.stdout.strip(), out.stderr.strip())
`;
    const res = await run('/usr/bin/python3', [
      '-c',
      swap,
      mounted.m('.'),
      mounted.src,
      outside,
      'setpriv',
      ...setprivArgs(ATTACKER),
      '/usr/bin/python3',
      '-c',
      probe,
    ]);
    expect(res.stderr).toBe('');
    const [read, unlink, mkdir, create] = res.stdout.trim().split(/\s+/);
    // Whatever the errno (ELOOP from the daemon, EACCES if the kernel already
    // saw the symlink and followed it with the attacker's own rights), the
    // outside tree is untouched.
    expect(read).not.toBe('VICTIM');
    for (const r of [unlink, mkdir, create]) expect(r).not.toBe('OK');
    expect(readFileSync(path.join(outside, 'victim'), 'utf8')).toBe('VICTIM');
    expect(existsSync(path.join(outside, 'made'))).toBe(false);
    expect(existsSync(path.join(outside, 'new'))).toBe(false);
  });
});
