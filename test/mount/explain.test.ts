// `aclfs check --explain` on a real mount: each kind of governing rule
// (inode-bound, exact path, recursive ancestor, default policy) is named by
// the step that decides, for a file that exists and one that does not yet;
// the daemon's decision cache is a miss until the mount has decided the same
// question, then a hit; a path pasted from under the mountpoint is taken,
// and one that does not exist in the source gets a warning on stderr. The
// daemon is a child process; the test stops only what it started.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeWithFuse } from '../helpers/facilities';
import { ALICE, aclfs, Daemon, importRules, makeWorkspace, requireFuse, runAs, type RunResult, type Workspace } from '../helpers/mounts';

let ws: Workspace;
let daemon: Daemon;
const ids: Record<string, number> = {};

const S = (): string[] => ['--socket', ws.socket];
const AS_ALICE = ['--uid', String(ALICE.uid), '--gid', String(ALICE.gid), '--groups', ''];

async function explain(target: string, access = 'r'): Promise<RunResult> {
  return aclfs(['check', target, ...AS_ALICE, '--access', access, '--explain', ...S()]);
}

/** The numbered explain lines of a check's output, without their numbers. */
function steps(res: RunResult): string[] {
  const lines = res.stdout.split('\n');
  const from = lines.indexOf('explain:');
  expect(from).toBeGreaterThan(0);
  return lines.slice(from + 1).filter((l) => l !== '').map((l) => l.replace(/^ +\d+\. /, ''));
}

beforeAll(async () => {
  requireFuse();
  ws = makeWorkspace('aclfs-explain-');
  fs.mkdirSync(path.join(ws.src, 'docs'));
  fs.mkdirSync(path.join(ws.src, 'docs', 'sub'));
  fs.mkdirSync(path.join(ws.src, 'other'));
  fs.mkdirSync(path.join(ws.src, 'elsewhere'));
  for (const f of ['docs/a.txt', 'docs/sub/b.txt', 'docs/cached.txt', 'docs/bound.txt', 'elsewhere/x.txt']) fs.writeFileSync(path.join(ws.src, f), `${f}\n`, { mode: 0o644 });
  // The bound file, reached by a second name no rule has: only its inode leads to its rule.
  fs.linkSync(path.join(ws.src, 'docs', 'bound.txt'), path.join(ws.src, 'other', 'link.txt'));
  await importRules(ws.db, [
    { path: '/', owner: 0, defaccess: 'r-x', acl: [] },
    { path: '/docs', recursive: true, owner: 0, defaccess: 'r-x', acl: [] },
    { path: '/docs/sub', owner: 0, defaccess: 'r-x', acl: [] },
    { path: '/other', owner: 0, defaccess: 'r-x', acl: [] },
    { path: '/elsewhere', owner: 0, defaccess: 'r-x', acl: [] },
    { path: '/docs/bound.txt', owner: 0, defaccess: '---', acl: [{ user: ALICE.uid, access: 'r--' }] },
    // For a file that does not exist yet: decided by its path.
    { path: '/docs/planned.txt', owner: 0, defaccess: '---', acl: [], auditOnly: true },
  ]);
  daemon = await Daemon.start([ws.src, ws.mnt, '--db', ws.db, '--socket', ws.socket, '--default', 'deny', '--log-level', 'warn'], ws.mnt);
  for (const r of JSON.parse((await aclfs(['rule', 'ls', '--json', ...S()])).stdout).rules as { id: number; path: string }[]) ids[r.path] = r.id;
  // Every rule whose file exists is bound at mount start.
  const bound = JSON.parse((await aclfs(['rule', 'show', '/docs/bound.txt', '--json', ...S()])).stdout) as { dev: number | null };
  expect(bound.dev).not.toBeNull();
});

afterAll(async () => {
  await daemon?.ensureStopped();
  ws?.cleanup();
});

describeWithFuse('aclfs check --explain', () => {
  it('an inode-bound rule: reached by a hard link no rule names, the inode index decides', async () => {
    const st = fs.statSync(path.join(ws.src, 'other', 'link.txt'));
    const res = await explain('/other/link.txt');
    expect(res.stderr).toBe('');
    expect(res.code).toBe(0);
    expect(res.stdout.split('\n')[0]).toBe(`allow: rule ${ids['/docs/bound.txt']} (/docs/bound.txt, by inode): user ${ALICE.uid} r-- grants r`);
    expect(steps(res)).toEqual([
      expect.stringMatching(/^decision cache: (hit|miss) /),
      `inode index: dev ${st.dev} ino ${st.ino}: hit, rule ${ids['/docs/bound.txt']} (/docs/bound.txt) is bound to this file: governs`,
      `rule ${ids['/docs/bound.txt']} (/docs/bound.txt) grants r-- through its entry for user ${ALICE.uid}`,
    ]);
  });

  it('an exact path rule, for a file that does not exist yet: nothing to look up by inode, a warning on stderr', async () => {
    const res = await explain('/docs/planned.txt');
    expect(res.code).toBe(1);
    expect(res.stderr).toBe(`aclfs: warning: ${path.join(ws.src, 'docs', 'planned.txt')} does not exist in the source: decided by path only\n`);
    const rule = ids['/docs/planned.txt'];
    expect(res.stdout).toContain(`\n  the deciding rule is audit-only: the mount lets this through and records it as "would deny"\n`);
    expect(steps(res)).toEqual([
      'decision cache: miss (the daemon holds no answer to this very question yet)',
      'inode index: no file known at this path (none yet, or no mount to look in): nothing to look up by inode',
      `path /docs/planned.txt: rule ${rule} (/docs/planned.txt, audit-only): governs`,
      `rule ${rule} (/docs/planned.txt, audit-only) grants --- through its default access (no entry names the caller)`,
    ]);
  });

  it('a recursive ancestor, past a non-recursive one, for a file that exists and one that does not', async () => {
    const st = fs.statSync(path.join(ws.src, 'docs', 'sub', 'b.txt'));
    const walk = (file: string): string[] => [
      `path /docs/sub/${file}: no rule`,
      `ancestor /docs/sub: rule ${ids['/docs/sub']} (/docs/sub): not recursive, governs only /docs/sub: skipped`,
      `ancestor /docs: rule ${ids['/docs']} (/docs, recursive): governs`,
      `rule ${ids['/docs']} (/docs, recursive) grants r-x through its default access (no entry names the caller)`,
    ];
    const existing = await explain('/docs/sub/b.txt');
    expect(existing.code).toBe(0);
    expect(existing.stderr).toBe('');
    expect(steps(existing).slice(1)).toEqual([`inode index: dev ${st.dev} ino ${st.ino}: miss, no rule is bound to this file`, ...walk('b.txt')]);
    const missing = await explain('/docs/sub/new.txt');
    expect(missing.code).toBe(0);
    expect(missing.stderr).toMatch(/^aclfs: warning: .*\/src\/docs\/sub\/new\.txt does not exist in the source: decided by path only\n$/);
    expect(steps(missing).slice(1)).toEqual(['inode index: no file known at this path (none yet, or no mount to look in): nothing to look up by inode', ...walk('new.txt')]);
  });

  it('the default policy: every ancestor walked, none governs', async () => {
    const st = fs.statSync(path.join(ws.src, 'elsewhere', 'x.txt'));
    const res = await explain('/elsewhere/x.txt');
    expect(res.code).toBe(1);
    expect(res.stdout.split('\n')[0]).toBe('deny: no rule: default policy deny --- lacks r');
    expect(steps(res).slice(1)).toEqual([
      `inode index: dev ${st.dev} ino ${st.ino}: miss, no rule is bound to this file`,
      'path /elsewhere/x.txt: no rule',
      `ancestor /elsewhere: rule ${ids['/elsewhere']} (/elsewhere): not recursive, governs only /elsewhere: skipped`,
      `ancestor /: rule ${ids['/']} (/): not recursive, governs only /: skipped`,
      'no rule governs: the default policy (deny) decides',
    ]);
  });

  it("the decision cache: a miss until the mount decided the same question, then a hit; --json carries the steps", async () => {
    // Given as pasted from under the mountpoint: taken as the path inside the mount.
    const before = await explain(path.join(ws.mnt, 'docs', 'cached.txt'));
    expect(before.stderr).toBe('');
    expect(before.stdout).toMatch(/^allow: rule \d+ \(\/docs, by recursive ancestor\): defaccess r-x grants r\n  for uid \d+ gid \d+ groups none, \/docs\/cached\.txt \(file dev \d+ ino \d+\), generation \d+\nexplain:\n/);
    expect(steps(before)[0]).toBe('decision cache: miss (the daemon holds no answer to this very question yet)');
    expect((await runAs(ALICE, 'cat', [path.join(ws.mnt, 'docs', 'cached.txt')])).stdout).toBe('docs/cached.txt\n');
    const after = await explain(path.join(ws.mnt, 'docs', 'cached.txt'));
    expect(steps(after)[0]).toBe('decision cache: hit (the daemon holds an answer to this very question, made at the current commit)');
    // Other bits are another question.
    expect(steps(await explain('/docs/cached.txt', 'rx'))[0]).toMatch(/^decision cache: miss /);
    const json = await aclfs(['check', '/docs/cached.txt', ...AS_ALICE, '--access', 'r', '--explain', '--json', ...S()]);
    const parsed = JSON.parse(json.stdout) as { path: string; steps: { kind: string; hit?: boolean; result?: string }[] };
    expect(parsed.path).toBe('/docs/cached.txt');
    expect(parsed.steps.map((s) => s.kind)).toEqual(['cache', 'inode', 'path', 'ancestor', 'grant']);
    expect(parsed.steps[0]).toMatchObject({ kind: 'cache', hit: true });
    // Without --explain, no steps.
    const plain = await aclfs(['check', '/docs/cached.txt', ...AS_ALICE, '--access', 'r', '--json', ...S()]);
    expect(JSON.parse(plain.stdout).steps).toBeUndefined();
    expect((await aclfs(['check', '/docs/cached.txt', ...AS_ALICE, '--access', 'r', ...S()])).stdout).not.toContain('explain:');
  });
});
