// Every mutating FUSE op, allowed for the right user and denied (EACCES,
// nothing changed on disk, the reason logged) for the wrong one; the rule
// indexes following files through the mount; group entries; and the mount
// modes --rules-only, --revoke immediate and --in-place.
import { execFileSync } from 'node:child_process';
import {
  chmodSync,
  chownSync,
  existsSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  statSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, beforeEach, expect, it } from 'vitest';
import { RuleStore } from '../../src/store/store';
import { native } from '../../src/native/binding';
import { describeWithFuse, describeWithLoopDevice } from '../helpers/facilities';
import {
  ALICE,
  BOB,
  CAROL,
  CAROL_IN_TEAM,
  aclfs,
  Daemon,
  importRules,
  FileHolder,
  isMounted,
  makeWorkspace,
  requireFuse,
  run,
  runAs,
  type Identity,
  type RunResult,
  type Workspace,
} from '../helpers/mounts';

const OP_PY = path.join(__dirname, '..', 'fixtures', 'op.py');

/** Runs one op (fixtures/op.py) as `who`; returns "OK" or the errno name. */
async function op(who: Identity, ...args: string[]): Promise<string> {
  const res = await runAs(who, '/usr/bin/python3', [OP_PY, ...args]);
  if (res.stderr !== '') throw new Error(`op.py ${args.join(' ')}: ${res.stderr}`);
  return res.stdout.trim().split(/\s+/).pop() ?? '';
}


/** Everything under `dir` (names, types, sizes, modes, owners, contents). */
function snapshot(dir: string): string {
  const out: string[] = [];
  const walk = (d: string): void => {
    for (const name of readdirSync(d).sort()) {
      const p = path.join(d, name);
      const st = lstatSync(p);
      let extra = '';
      if (st.isFile()) extra = readFileSync(p).toString('hex');
      else if (st.isSymbolicLink()) extra = readlinkSync(p);
      out.push(`${path.relative(dir, p)} ${st.mode.toString(8)} ${st.uid}:${st.gid} ${st.size} ${st.mtimeMs} ${extra}`);
      if (st.isDirectory()) walk(p);
    }
  };
  walk(dir);
  return out.join('\n');
}

function xattrs(file: string): string {
  return execFileSync('/usr/bin/python3', ['-c', 'import os,sys; print(",".join(sorted(os.listxattr(sys.argv[1]))))', file], {
    encoding: 'utf8',
  }).trim();
}

function setXattr(file: string, name: string, value: string): void {
  execFileSync('/usr/bin/python3', ['-c', 'import os,sys; os.setxattr(sys.argv[1], sys.argv[2], sys.argv[3].encode())', file, name, value]);
}

function withStore<T>(db: string, fn: (store: RuleStore) => T): T {
  const store = RuleStore.open(db, native);
  try {
    store.generation();
    return fn(store);
  } finally {
    store.close();
  }
}

describeWithFuse('mutations through the mount (layered mode)', () => {
  let ws: Workspace;
  let daemon: Daemon;
  let privMounted = false;
  /** How making and loop-mounting the private ext4 went: only the inode-reuse tests need it. */
  let privSetup: { mkfs: RunResult; mount: RunResult | null } | null = null;
  const s = (p: string): string => path.join(ws.src, p);
  const m = (p: string): string => path.join(ws.mnt, p);

  beforeAll(async () => {
    requireFuse();
    ws = makeWorkspace();
    // World-writable directories: Unix permissions let everyone through, so
    // what is denied below is denied by the rules.
    for (const d of ['w', 'ro']) {
      mkdirSync(s(d));
      chmodSync(s(d), 0o777);
    }
    // A private ext4 filesystem for the inode-reuse tests: ext4 hands a
    // freed inode number to the next new file, and here no other process
    // can take it first. Where it cannot be made (no loop device), those
    // tests fail and every other test here still runs.
    mkdirSync(s('w/priv'));
    const image = path.join(ws.dir, 'priv.ext4');
    await run('truncate', ['-s', '16M', image]);
    const mkfs = await run('mkfs.ext4', ['-q', '-F', image]);
    const loop = mkfs.code === 0 ? await run('mount', ['-o', 'loop', image, s('w/priv')]) : null;
    privSetup = { mkfs, mount: loop };
    privMounted = loop?.code === 0;
    chmodSync(s('w/priv'), 0o777);
    await importRules(ws.db, [
      { path: '/', recursive: true, owner: 0, defaccess: 'r-x', acl: [] },
      { path: '/w', recursive: true, owner: 0, defaccess: 'r-x', acl: [{ user: ALICE.uid, access: 'rwx' }] },
      { path: '/ro', recursive: true, owner: 0, defaccess: 'r-x', acl: [] },
    ]);
    daemon = await Daemon.start([ws.src, ws.mnt, '--db', ws.db, '--socket', ws.socket], ws.mnt);
  });

  afterAll(async () => {
    await daemon?.ensureStopped();
    if (privMounted) await run('umount', [s('w/priv')]);
    ws?.cleanup();
  });

  const file = (name: string, owner?: Identity, content = 'orig'): string => {
    writeFileSync(s(name), content);
    chmodSync(s(name), 0o666);
    if (owner) chownSync(s(name), owner.uid, owner.gid);
    return m(name);
  };

  interface Case {
    readonly op: string;
    /** The daemon's name for the FUSE op (in its denial log). */
    readonly logged: string;
    /** Creates the fixture for `who` in SRC and returns op.py's arguments. */
    prepare(who: Identity, tag: string): string[];
    /** Whether the change is on disk. */
    done(tag: string): boolean;
  }

  const cases: Case[] = [
    { op: 'create', logged: 'create', prepare: (_w, t) => [m(`w/new-${t}`)], done: (t) => existsSync(s(`w/new-${t}`)) },
    // libfuse 2 turns mknod of a regular file into create.
    { op: 'mknod', logged: 'create', prepare: (_w, t) => [m(`w/node-${t}`)], done: (t) => existsSync(s(`w/node-${t}`)) },
    {
      op: 'write',
      logged: 'open',
      prepare: (_w, t) => [file(`w/data-${t}`), 'NEW!'],
      done: (t) => readFileSync(s(`w/data-${t}`), 'utf8') === 'NEW!',
    },
    {
      op: 'truncate',
      logged: 'truncate',
      prepare: (_w, t) => [file(`w/trunc-${t}`), '1'],
      done: (t) => statSync(s(`w/trunc-${t}`)).size === 1,
    },
    { op: 'unlink', logged: 'unlink', prepare: (_w, t) => [file(`w/victim-${t}`)], done: (t) => !existsSync(s(`w/victim-${t}`)) },
    {
      op: 'rename',
      logged: 'rename',
      prepare: (_w, t) => [file(`w/ren-${t}`), m(`w/renamed-${t}`)],
      done: (t) => existsSync(s(`w/renamed-${t}`)) && !existsSync(s(`w/ren-${t}`)),
    },
    { op: 'mkdir', logged: 'mkdir', prepare: (_w, t) => [m(`w/dir-${t}`)], done: (t) => existsSync(s(`w/dir-${t}`)) },
    {
      op: 'rmdir',
      logged: 'rmdir',
      prepare: (_w, t) => {
        mkdirSync(s(`w/rmd-${t}`));
        return [m(`w/rmd-${t}`)];
      },
      done: (t) => !existsSync(s(`w/rmd-${t}`)),
    },
    { op: 'symlink', logged: 'symlink', prepare: (_w, t) => ['target', m(`w/sym-${t}`)], done: (t) => readdirSync(s('w')).includes(`sym-${t}`) },
    {
      op: 'link',
      logged: 'link',
      prepare: (_w, t) => [file(`w/lsrc-${t}`), m(`w/ldst-${t}`)],
      done: (t) => existsSync(s(`w/ldst-${t}`)),
    },
    {
      // Unix lets only the owner chmod, so each user owns its fixture.
      op: 'chmod',
      logged: 'chmod',
      prepare: (w, t) => [file(`w/mode-${t}`, w), '600'],
      done: (t) => (statSync(s(`w/mode-${t}`)).mode & 0o777) === 0o600,
    },
    {
      // The owner may give the file to its own group; it starts in group 0.
      op: 'chown',
      logged: 'chown',
      prepare: (w, t) => {
        const p = file(`w/own-${t}`);
        chownSync(s(`w/own-${t}`), w.uid, 0);
        return [p, String(w.uid), String(w.gid)];
      },
      done: (t) => statSync(s(`w/own-${t}`)).gid !== 0,
    },
    {
      op: 'utime',
      logged: 'utimens',
      prepare: (w, t) => [file(`w/time-${t}`, w), '1000000'],
      done: (t) => statSync(s(`w/time-${t}`)).mtimeMs === 1_000_000_000,
    },
    {
      op: 'setxattr',
      logged: 'setxattr',
      prepare: (_w, t) => [file(`w/xa-${t}`), 'user.k', 'v'],
      done: (t) => xattrs(s(`w/xa-${t}`)) === 'user.k',
    },
    {
      op: 'removexattr',
      logged: 'removexattr',
      prepare: (_w, t) => {
        const p = file(`w/xr-${t}`);
        setXattr(s(`w/xr-${t}`), 'user.k', 'v');
        return [p, 'user.k'];
      },
      done: (t) => xattrs(s(`w/xr-${t}`)) === '',
    },
  ];

  it.each(cases.map((c) => [c.op, c] as const))('%s: allowed for the user the rule grants w', async (_name, c) => {
    const args = c.prepare(ALICE, `alice-${c.op}`);
    expect(await op(ALICE, c.op, ...args)).toBe('OK');
    expect(c.done(`alice-${c.op}`)).toBe(true);
  });

  it.each(cases.map((c) => [c.op, c] as const))('%s: denied with EACCES, nothing changed, reason logged', async (_name, c) => {
    const args = c.prepare(BOB, `bob-${c.op}`);
    const before = snapshot(ws.src);
    const logBefore = daemon.stderr.length;
    expect(await op(BOB, c.op, ...args)).toBe('EACCES');
    expect(c.done(`bob-${c.op}`)).toBe(false);
    expect(snapshot(ws.src)).toBe(before);
    await new Promise((r) => setTimeout(r, 50));
    const denial = daemon.stderr
      .slice(logBefore)
      .split('\n')
      .filter((l) => l.includes('"msg":"denied"'))
      .map((l) => JSON.parse(l) as { op: string; uid: number; reason: string });
    expect(denial).toContainEqual(expect.objectContaining({ op: c.logged, uid: BOB.uid, reason: expect.stringMatching(/^deny: .* lacks w$/) }));
  });

  it('makes no FIFOs: the kernel would open them without asking the daemon', async () => {
    expect(await op(ALICE, 'mkfifo', m('w/fifo-alice'))).toBe('EPERM');
    expect(await op(BOB, 'mkfifo', m('w/fifo-bob'))).toBe('EPERM');
    expect(existsSync(s('w/fifo-alice'))).toBe(false);
    expect(existsSync(s('w/fifo-bob'))).toBe(false);
  });

  it('needs w on both parents for a rename', async () => {
    const a = file('w/cross-a');
    expect(await op(ALICE, 'rename', a, m('ro/cross-a'))).toBe('EACCES');
    expect(existsSync(s('w/cross-a'))).toBe(true);
    expect(existsSync(s('ro/cross-a'))).toBe(false);
  });

  it('does not gate reading attributes; xattrs need r, which bob has here', async () => {
    const p = file('w/xread');
    setXattr(s('w/xread'), 'user.seen', 'yes');
    expect(await op(BOB, 'getxattr', p, 'user.seen')).toBe('OK');
    expect(await op(BOB, 'listxattr', p)).toBe('OK');
  });

  it('creates files, directories, nodes and links owned by the caller', async () => {
    expect(await op(ALICE, 'create', m('w/mine'))).toBe('OK');
    expect(await op(ALICE, 'mkdir', m('w/minedir'))).toBe('OK');
    expect(await op(ALICE, 'mknod', m('w/minenode'))).toBe('OK');
    expect(await op(ALICE, 'symlink', 'mine', m('w/minelink'))).toBe('OK');
    for (const name of ['mine', 'minedir', 'minenode', 'minelink']) {
      const st = lstatSync(s(`w/${name}`));
      expect([name, st.uid, st.gid]).toEqual([name, ALICE.uid, ALICE.gid]);
    }
    // A set-group-ID directory hands its group down, as on a local filesystem.
    mkdirSync(s('w/sgid'));
    chmodSync(s('w/sgid'), 0o2777);
    chownSync(s('w/sgid'), 0, 4242);
    expect(await op(ALICE, 'create', m('w/sgid/f'))).toBe('OK');
    expect(statSync(s('w/sgid/f'))).toMatchObject({ uid: ALICE.uid, gid: 4242 });
  });

  it('honours group entries through supplementary groups for writes', async () => {
    await importRules(ws.db, [{ path: '/w/team.txt', owner: 0, defaccess: 'r--', acl: [{ group: 3001, access: 'rw-' }] }]);
    const p = file('w/team.txt');
    expect(await op(CAROL, 'write', p, 'carol')).toBe('EACCES');
    expect(await op(CAROL_IN_TEAM, 'write', p, 'team')).toBe('OK');
    expect(readFileSync(s('w/team.txt'), 'utf8')).toBe('team');
  });

  it('keeps the rule with a file renamed and linked through the mount', async () => {
    file('w/sec.txt', undefined, 'secret');
    await importRules(ws.db, [{ path: '/w/sec.txt', owner: 0, defaccess: '---', acl: [{ user: ALICE.uid, access: 'rw-' }] }]);
    await new Promise((r) => setTimeout(r, 600)); // the daemon binds new rules within 250 ms
    expect(await op(ALICE, 'rename', m('w/sec.txt'), m('w/sec2.txt'))).toBe('OK');
    expect(await op(BOB, 'read', m('w/sec2.txt'))).toBe('EACCES');
    expect(await op(ALICE, 'read', m('w/sec2.txt'))).toBe('OK');
    expect(await op(ALICE, 'link', m('w/sec2.txt'), m('w/sec-link.txt'))).toBe('OK');
    expect(await op(BOB, 'read', m('w/sec-link.txt'))).toBe('EACCES');
    withStore(ws.db, (store) => {
      expect(store.findByPath('/w/sec.txt')).toBeUndefined();
      const rule = store.findByPath('/w/sec2.txt');
      expect(rule?.ino).toBe(statSync(s('w/sec2.txt')).ino);
    });
  });

  it('moves the rules below a directory renamed through the mount', async () => {
    mkdirSync(s('w/d1'));
    chmodSync(s('w/d1'), 0o777);
    file('w/d1/f.txt');
    await importRules(ws.db, [
      { path: '/w/d1', recursive: true, owner: 0, defaccess: '---', acl: [{ user: ALICE.uid, access: 'rwx' }] },
      { path: '/w/d1/f.txt', owner: 0, defaccess: '---', acl: [{ user: ALICE.uid, access: 'rw-' }] },
    ]);
    expect(await op(ALICE, 'rename', m('w/d1'), m('w/d2'))).toBe('OK');
    withStore(ws.db, (store) => {
      expect(store.findByPath('/w/d1')).toBeUndefined();
      expect(store.findByPath('/w/d2')?.recursive).toBe(true);
      expect(store.findByPath('/w/d2/f.txt')).toBeDefined();
    });
    // A new file in the renamed directory is governed by its moved rule.
    writeFileSync(s('w/d2/new.txt'), 'x');
    chmodSync(s('w/d2/new.txt'), 0o666);
    expect(await op(BOB, 'read', m('w/d2/new.txt'))).toBe('EACCES');
  });

  it('binds a rule waiting on a path when the file is created through the mount', async () => {
    await importRules(ws.db, [{ path: '/w/later.txt', owner: 0, defaccess: '---', acl: [{ user: ALICE.uid, access: 'rw-' }] }]);
    expect(await op(ALICE, 'create', m('w/later.txt'))).toBe('OK');
    withStore(ws.db, (store) => expect(store.findByPath('/w/later.txt')?.ino).toBe(statSync(s('w/later.txt')).ino));
    expect(await op(ALICE, 'rename', m('w/later.txt'), m('w/later2.txt'))).toBe('OK');
    expect(await op(BOB, 'read', m('w/later2.txt'))).toBe('EACCES');
  });

  describeWithLoopDevice('on a private ext4, loop-mounted (needs a loop device)', () => {
    beforeEach(() => {
      expect(privSetup?.mkfs.code, `mkfs.ext4: ${privSetup?.mkfs.stderr.trim() ?? 'not run'}`).toBe(0);
      expect(privSetup?.mount?.code, `mount -o loop: ${privSetup?.mount?.stderr.trim() ?? 'not run'}`).toBe(0);
    });

    it('does not let a new file that reuses an unlinked inode number inherit its rule', async () => {
      file('w/priv/gone.txt');
      await importRules(ws.db, [{ path: '/w/priv/gone.txt', owner: 0, defaccess: '---', acl: [{ user: ALICE.uid, access: 'rw-' }] }]);
      await new Promise((r) => setTimeout(r, 600));
      const ino = statSync(s('w/priv/gone.txt')).ino;
      withStore(ws.db, (store) => expect(store.findByPath('/w/priv/gone.txt')?.ino).toBe(ino));
      expect(await op(ALICE, 'unlink', m('w/priv/gone.txt'))).toBe('OK');
      let reused: string | null = null;
      for (let i = 0; i < 20 && reused === null; i++) {
        expect(await op(ALICE, 'create', m(`w/priv/fresh-${i}`))).toBe('OK');
        if (statSync(s(`w/priv/fresh-${i}`)).ino === ino) reused = `w/priv/fresh-${i}`;
      }
      expect(reused).not.toBeNull();
      expect(await op(BOB, 'read', m(reused!))).toBe('OK');
      withStore(ws.db, (store) => expect(store.findByPath('/w/priv/gone.txt')).toMatchObject({ dev: null, ino: null }));
    });

    it('does not let a file that reuses an inode number behind the mount inherit its rule', async () => {
      file('w/priv/behind.txt');
      await importRules(ws.db, [{ path: '/w/priv/behind.txt', owner: 0, defaccess: '---', acl: [] }]);
      await new Promise((r) => setTimeout(r, 600));
      const ino = statSync(s('w/priv/behind.txt')).ino;
      expect(await op(BOB, 'read', m('w/priv/behind.txt'))).toBe('EACCES');
      unlinkSync(s('w/priv/behind.txt'));
      writeFileSync(s('w/priv/other.txt'), 'other');
      expect(statSync(s('w/priv/other.txt')).ino).toBe(ino);
      expect(await op(BOB, 'read', m('w/priv/other.txt'))).toBe('OK');
    });
  });
});

describeWithFuse('--revoke immediate', () => {
  let ws: Workspace;
  let daemon: Daemon;

  beforeAll(async () => {
    requireFuse();
    ws = makeWorkspace();
    writeFileSync(path.join(ws.src, 'f.bin'), Buffer.alloc(64 * 1024, 0x62));
    chmodSync(path.join(ws.src, 'f.bin'), 0o666);
    writeFileSync(path.join(ws.src, 'g.bin'), Buffer.alloc(64 * 1024, 0x63));
    chmodSync(path.join(ws.src, 'g.bin'), 0o666);
    await importRules(ws.db, [
      { path: '/f.bin', owner: 0, defaccess: '---', acl: [{ user: ALICE.uid, access: 'rw-' }] },
      { path: '/g.bin', owner: 0, defaccess: '---', acl: [{ user: ALICE.uid, access: 'rw-' }] },
    ]);
    daemon = await Daemon.start([ws.src, ws.mnt, '--db', ws.db, '--socket', ws.socket, '--revoke', 'immediate'], ws.mnt);
  });

  afterAll(async () => {
    await daemon?.ensureStopped();
    ws?.cleanup();
  });

  it('keeps a held handle (and what it was opened for) while other handles come and go', async () => {
    // Released handles are closed by the binding on its own threads and the
    // numbers recycled by later opens: the daemon's record of a handle that
    // is still open must survive all of that, or its re-check could not run.
    const { holder, first } = await FileHolder.open(ALICE, path.join(ws.mnt, 'g.bin'), 'r');
    try {
      expect(first).toEqual({ ok: true, bytes: 4096 });
      const churn = await runAs(ALICE, 'sh', ['-c', `for i in $(seq 300); do cat "${path.join(ws.mnt, 'f.bin')}" > /dev/null; done`]);
      expect(churn).toMatchObject({ code: 0, stderr: '' });
      expect(await holder.send('8192')).toEqual({ ok: true, bytes: 4096 });
      await importRules(ws.db, [{ path: '/g.bin', owner: 0, defaccess: '---', acl: [] }]);
      expect(await holder.send('0')).toEqual({ ok: false, code: 'EACCES' });
    } finally {
      holder.close();
    }
  });

  it('stops a reader and a writer holding the file open at their next read or write', async () => {
    const { holder: reader, first } = await FileHolder.open(ALICE, path.join(ws.mnt, 'f.bin'), 'r');
    const { holder: writer } = await FileHolder.open(ALICE, path.join(ws.mnt, 'f.bin'), 'w');
    try {
      expect(first).toEqual({ ok: true, bytes: 4096 });
      expect(await reader.send('0')).toEqual({ ok: true, bytes: 4096 });
      expect(await writer.send('w0')).toEqual({ ok: true, bytes: 4096 });
      await importRules(ws.db, [{ path: '/f.bin', owner: 0, defaccess: '---', acl: [] }]);
      // The very bytes read a moment ago: no page cache serves them now.
      expect(await reader.send('0')).toEqual({ ok: false, code: 'EACCES' });
      expect(await writer.send('w4096')).toEqual({ ok: false, code: 'EACCES' });
      expect(readFileSync(path.join(ws.src, 'f.bin')).subarray(4096, 8192).every((b) => b === 0x62)).toBe(true);
    } finally {
      reader.close();
      writer.close();
    }
  });
});

describeWithFuse('--rules-only', () => {
  let ws: Workspace;
  let daemon: Daemon;

  beforeAll(async () => {
    requireFuse();
    ws = makeWorkspace();
    writeFileSync(path.join(ws.src, 'private.txt'), 'root only by mode');
    chmodSync(path.join(ws.src, 'private.txt'), 0o600);
    writeFileSync(path.join(ws.src, 'open.txt'), 'open by mode');
    chmodSync(path.join(ws.src, 'open.txt'), 0o644);
    mkdirSync(path.join(ws.src, 'w'));
    await importRules(ws.db, [
      { path: '/', recursive: true, owner: 0, defaccess: 'r-x', acl: [] },
      { path: '/open.txt', owner: 0, defaccess: '---', acl: [] },
      { path: '/w', recursive: true, owner: 0, defaccess: 'r-x', acl: [{ user: BOB.uid, access: 'rwx' }] },
    ]);
    daemon = await Daemon.start([ws.src, ws.mnt, '--db', ws.db, '--socket', ws.socket, '--rules-only'], ws.mnt);
  });

  afterAll(async () => {
    await daemon?.ensureStopped();
    ws?.cleanup();
  });

  it('lets the rules alone decide, whatever the mode bits say', async () => {
    expect(await op(BOB, 'read', path.join(ws.mnt, 'private.txt'))).toBe('OK');
    expect(await op(BOB, 'read', path.join(ws.mnt, 'open.txt'))).toBe('EACCES');
    // /w is root's 0755 directory, yet the rule lets bob write in it; the
    // new file is bob's, never the daemon's (root's).
    expect(await op(BOB, 'create', path.join(ws.mnt, 'w', 'made-by-bob'))).toBe('OK');
    expect(statSync(path.join(ws.src, 'w', 'made-by-bob')).uid).toBe(BOB.uid);
    expect(await op(ALICE, 'create', path.join(ws.mnt, 'w', 'made-by-alice'))).toBe('EACCES');
  });
});

describeWithFuse('--in-place', () => {
  let ws: Workspace;
  let daemon: Daemon;

  beforeAll(async () => {
    requireFuse();
    ws = makeWorkspace();
    writeFileSync(path.join(ws.src, 'secret.txt'), 'in place secret');
    writeFileSync(path.join(ws.src, 'public.txt'), 'in place public');
    for (const f of ['secret.txt', 'public.txt']) chmodSync(path.join(ws.src, f), 0o644);
    await importRules(ws.db, [
      { path: '/', recursive: true, owner: 0, defaccess: 'r-x', acl: [] },
      { path: '/secret.txt', owner: 0, defaccess: '---', acl: [{ user: ALICE.uid, access: 'r--' }] },
    ]);
    daemon = await Daemon.start([ws.src, ws.src, '--db', ws.db, '--socket', ws.socket, '--in-place'], ws.src);
  });

  afterAll(async () => {
    await daemon?.ensureStopped();
    ws?.cleanup();
  });

  it("shows the filtered view at SRC's own path", async () => {
    expect(isMounted(ws.src)).toBe(true);
    expect(await op(BOB, 'read', path.join(ws.src, 'public.txt'))).toBe('OK');
    expect(await op(BOB, 'read', path.join(ws.src, 'secret.txt'))).toBe('EACCES');
    expect(await op(ALICE, 'read', path.join(ws.src, 'secret.txt'))).toBe('OK');
    const listing = await runAs(BOB, 'ls', [ws.src]);
    expect(listing.stdout.split('\n').filter(Boolean).sort()).toEqual(['public.txt', 'secret.txt']);
  });

  it('leaves a denied user no other path to the file', async () => {
    const viaParent = path.join(ws.src, '..', path.basename(ws.src), 'secret.txt');
    expect(await op(BOB, 'read', viaParent)).toBe('EACCES');
    // The daemon's descriptor to the covered directory is the one way
    // around the mount; another user cannot use it.
    const fds = readdirSync(`/proc/${daemon.pid}/fd`).filter((fd) => {
      try {
        return readlinkSync(`/proc/${daemon.pid}/fd/${fd}`) === ws.src;
      } catch {
        return false;
      }
    });
    expect(fds.length).toBeGreaterThan(0);
    for (const fd of fds) {
      expect(await op(BOB, 'read', `/proc/${daemon.pid}/fd/${fd}/secret.txt`)).toBe('EACCES');
      expect(await op(BOB, 'read', `/proc/${daemon.pid}/root${ws.src}/secret.txt`)).toBe('EACCES');
    }
  });

  it('unmounts back to the untouched directory', async () => {
    expect(await daemon.stop()).toBe(0);
    expect(isMounted(ws.src)).toBe(false);
    expect(readFileSync(path.join(ws.src, 'secret.txt'), 'utf8')).toBe('in place secret');
    rmSync(path.join(ws.src, 'public.txt'));
    expect((await run('ls', [ws.src])).stdout.trim()).toBe('secret.txt');
  });
});
