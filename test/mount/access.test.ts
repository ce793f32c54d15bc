// `aclfs access` on a real mount: over a generated tree and rule set (rules
// bound to the files' inodes by the daemon, as always), the listing of who
// gets which bits on each file, read back for each test user, equals what
// `check` decides for them, and what the user's own listing (`access
// --uid`) says for each file equals it too; the read bit agrees with a real
// open through the mount. The listings are read back here by a reader of
// this test's own, independent of src/rules/reach.ts.
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { AdminClient } from '../../src/admin/client';
import type { AccessResponse, ReachResponse } from '../../src/admin/protocol';
import { describeWithFuse } from '../helpers/facilities';
import { ALICE, BOB, CAROL_IN_TEAM, TEAM, aclfs, Daemon, makeWorkspace, pyAs, requireFuse, type Identity, type Workspace } from '../helpers/mounts';

const USERS: readonly Identity[] = [ALICE, BOB, CAROL_IN_TEAM];

/** A small deterministic generator (the tree and rules are the same every run). */
function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

const DIRS = ['/a', '/a/b', '/a/b/c', '/d', '/d/e'];
const FILES = DIRS.flatMap((d) => [`${d}/f1`, `${d}/f2`]).concat(['/top1', '/top2']);
const BITS = ['---', 'r--', 'rw-', 'r-x', 'rwx', '--x', '-w-'];

function generatedRules(seed: number): unknown[] {
  const random = lcg(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)]!;
  const places = [...DIRS, ...FILES].filter(() => random() < 0.45);
  return places.map((p) => {
    const acl: unknown[] = [];
    for (const u of USERS) if (random() < 0.4) acl.push({ user: u.uid, access: pick(BITS) });
    if (random() < 0.5) acl.push({ group: TEAM, access: pick(BITS) });
    return { path: p, recursive: DIRS.includes(p) && random() < 0.7, owner: random() < 0.15 ? BOB.uid : 0, defaccess: pick(BITS), acl };
  });
}

function bitsOf(text: string): number {
  return (text[0] === 'r' ? 4 : 0) | (text[1] === 'w' ? 2 : 0) | (text[2] === 'x' ? 1 : 0);
}

/** The bits a file's listing gives `who`: owner, user, union of groups, else everyone else. */
function fromListing(listing: AccessResponse, who: Identity): number {
  let union = 0;
  let member = false;
  for (const e of listing.entries) {
    if ((e.kind === 'owner' || e.kind === 'user') && e.uid === who.uid) return bitsOf(e.access);
    if (e.kind === 'group' && (e.gid === who.gid || (who.groups ?? []).includes(e.gid))) {
      union |= bitsOf(e.access);
      member = true;
    }
    if (e.kind === 'other') return member ? union : bitsOf(e.access);
  }
  throw new Error('a listing ends with everyone else');
}

/** The bits a user's listing gives at `file`: its own area, else the nearest tree area above, else what is inherited. */
function fromReach(reach: ReachResponse, file: string): number {
  const exact = reach.areas.find((a) => a.path === file);
  if (exact !== undefined) return bitsOf(exact.access);
  const above = reach.areas.filter((a) => a.scope === 'tree' && file.startsWith(`${a.path}/`)).sort((x, y) => y.path.length - x.path.length)[0];
  return bitsOf(above?.access ?? reach.inherited.access);
}

const OPEN_READ = `
import errno, os, sys
try:
    os.close(os.open(sys.argv[1], os.O_RDONLY))
    print('ok')
except OSError as e:
    print(errno.errorcode[e.errno])
`;

describeWithFuse('aclfs access: listings agree with decisions', () => {
  let ws: Workspace;
  let daemon: Daemon;
  let client: AdminClient;

  beforeAll(async () => {
    requireFuse();
    ws = makeWorkspace();
    chmodSync(ws.src, 0o777);
    for (const d of DIRS) {
      mkdirSync(path.join(ws.src, d));
      chmodSync(path.join(ws.src, d), 0o777);
    }
    for (const f of FILES) writeFileSync(path.join(ws.src, f), 'x', { mode: 0o666 });
    for (const f of FILES) chmodSync(path.join(ws.src, f), 0o666);
    daemon = await Daemon.start([ws.src, ws.mnt, '--db', ws.db, '--socket', ws.socket, '--default', 'deny'], ws.mnt);
    client = new AdminClient(ws.socket);
  });

  afterAll(async () => {
    await daemon?.ensureStopped();
    ws?.cleanup();
  });

  for (const seed of [1, 2, 3]) {
    it(`rule set ${seed}: every file, every user: access PATH and access --uid equal check; r agrees with a real open`, async () => {
      const rules = generatedRules(seed);
      const res = await aclfs(['import', '-', '--replace', '--socket', ws.socket], { input: JSON.stringify({ version: 1, rules }) });
      expect(res.code, res.stderr).toBe(0);
      const reaches = new Map<number, ReachResponse>();
      for (const who of USERS) reaches.set(who.uid, await client.reach({ uid: who.uid, gid: who.gid, groups: [...(who.groups ?? [])] }));
      let opened = 0;
      for (const file of [...DIRS, ...FILES]) {
        const listing = await client.access(file);
        for (const who of USERS) {
          const checked = await client.check({ uid: who.uid, gid: who.gid, groups: [...(who.groups ?? [])], path: file, access: 'rwx' });
          const want = bitsOf(checked.granted);
          expect(fromListing(listing, who), `${file} for uid ${who.uid}: ${JSON.stringify(listing)}`).toBe(want);
          expect(fromReach(reaches.get(who.uid)!, file), `${file} in the listing of uid ${who.uid}`).toBe(want);
          if (FILES.includes(file) && opened++ % 3 === 0) {
            expect(await pyAs(who, OPEN_READ, path.join(ws.mnt, file)), `${file} opened by uid ${who.uid}`).toBe(want & 4 ? 'ok' : 'EACCES');
          }
        }
      }
      // At least one file is governed by a rule bound to its inode.
      expect((await client.access(String((rules[0] as { path: string }).path))).match).not.toBe('default');
    });
  }

  it('prints both listings, under the mountpoint too', async () => {
    const res = await aclfs(['import', '-', '--replace', '--socket', ws.socket], {
      input: JSON.stringify({ version: 1, rules: [{ path: '/a', recursive: true, owner: 0, defaccess: '---', acl: [{ user: ALICE.uid, access: 'r--' }, { group: TEAM, access: 'r-x' }] }] }),
    });
    expect(res.code, res.stderr).toBe(0);
    const one = await aclfs(['access', path.join(ws.mnt, 'a', 'f1'), '--socket', ws.socket]);
    expect(one.code, one.stderr).toBe(0);
    expect(one.stdout).toMatch(/^\/a\/f1: rule \d+ \(\/a, by recursive ancestor\)$/m);
    expect(one.stdout).toMatch(/r-- {2}user uid 2001/);
    expect(one.stdout).toMatch(/r-x {2}group gid 3001/);
    expect(one.stdout).toMatch(/--- {2}everyone else/);
    const mine = await aclfs(['access', '--uid', String(ALICE.uid), '--gid', String(ALICE.gid), '--groups', '', '--socket', ws.socket]);
    expect(mine.code, mine.stderr).toBe(0);
    expect(mine.stdout).toMatch(/--- {2}\/ and below, where no rule below says otherwise: no rule, default policy deny/);
    expect(mine.stdout).toMatch(/r-- {2}\/a and below: rule \d+, user entry/);
    const usage = await aclfs(['access', '--socket', ws.socket]);
    expect(usage.code).toBe(2);
  });
});
