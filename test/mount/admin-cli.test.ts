// The built `aclfs` binary against a running daemon (and against a database
// with --db): output, --json shapes and exit codes. Every error is one line
// on stderr without a stack trace.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeWithFuse } from '../helpers/facilities';
import { aclfs, ACLFS, Daemon, makeWorkspace, requireFuse, run, type RunResult, type Workspace } from '../helpers/mounts';

let ws: Workspace;
let daemon: Daemon;
let S: string[];

beforeAll(async () => {
  requireFuse();
  ws = makeWorkspace('aclfs-cli-');
  fs.mkdirSync(path.join(ws.src, 'docs'));
  fs.writeFileSync(path.join(ws.src, 'docs', 'a.txt'), 'alpha\n', { mode: 0o644 });
  daemon = await Daemon.start([ws.src, ws.mnt, '--db', ws.db, '--socket', ws.socket, '--log-level', 'warn'], ws.mnt);
  S = ['--socket', ws.socket];
});

afterAll(async () => {
  await daemon?.ensureStopped();
  ws?.cleanup();
});

function expectOneLineError(res: RunResult, code: number, message?: RegExp): void {
  expect(res.code).toBe(code);
  expect(res.stdout).toBe('');
  const lines = res.stderr.split('\n').filter((l) => l !== '');
  expect(lines).toHaveLength(1);
  expect(res.stderr).toMatch(/^aclfs: /);
  expect(res.stderr).not.toMatch(/\n\s+at /);
  if (message) expect(res.stderr).toMatch(message);
}

async function ok(args: string[], input?: string): Promise<string> {
  const res = await aclfs(args, input === undefined ? {} : { input });
  expect(res.stderr).toBe('');
  expect(res.code).toBe(0);
  return res.stdout;
}

describeWithFuse('aclfs status', () => {
  it('prints the daemon status, and --json gives every field', async () => {
    const text = await ok(['status', ...S]);
    expect(text).toMatch(/^aclfs \d+\.\d+\.\d+, pid \d+, up /);
    expect(text).toContain(`source       ${fs.realpathSync(ws.src)}\n`);
    expect(text).toContain(`mountpoint   ${ws.mnt}\n`);
    expect(text).toContain(`socket       ${ws.socket}\n`);
    expect(text).toMatch(/\ndecisions    \d+ allowed, \d+ denied, \d+ errors\n/);
    expect(text).toMatch(/\ncache        [\d.]+% hits/);
    expect(text).toMatch(/\nfast path    \d+ opens, \d+ reads, \d+ writes replayed in C\n/);
    const st = JSON.parse(await ok(['status', '--json', ...S]));
    expect(st).toMatchObject({
      pid: daemon.pid,
      source: fs.realpathSync(ws.src),
      mountpoint: ws.mnt,
      mounted: true,
      db: ws.db,
      socket: ws.socket,
      defaultPolicy: 'deny',
      options: { rulesOnly: false, revoke: 'page-cache', inPlace: false, defaultPermissions: true },
      decisions: { allowed: expect.any(Number), denied: expect.any(Number), errors: 0 },
      cache: { hitRate: expect.any(Number), hits: expect.any(Number), misses: expect.any(Number), size: expect.any(Number) },
      workerLocals: { created: expect.any(Number), idle: expect.any(Number) },
      fastPath: { opens: expect.any(Number), reads: expect.any(Number), writes: expect.any(Number), listedAttributes: expect.any(Number) },
    });
    expect(st.version).toBe(JSON.parse(fs.readFileSync(path.join(__dirname, '..', '..', 'package.json'), 'utf8')).version);
    expect(typeof st.uptimeSeconds).toBe('number');
    expect(Number.isNaN(Date.parse(st.startedAt))).toBe(false);
  });
});

describeWithFuse('aclfs rule', () => {
  it('add creates a rule (names and ids, repeatable entries); a second add for the path exits 4', async () => {
    expect(await ok(['rule', 'add', '/docs', '--owner', 'root', '--default', 'r--', '--user', '1000:rw-', '--group', '100:4', '--recursive', ...S])).toMatch(
      /^created rule \d+: \/docs\n$/,
    );
    const json = JSON.parse(await ok(['rule', 'add', '/docs/b.txt', '--owner', '0', '--default', '0', '--user', 'root:r--', '--json', ...S]));
    expect(json).toEqual({
      id: expect.any(Number),
      path: '/docs/b.txt',
      dev: null,
      ino: null,
      birth: null,
      owner: 0,
      defaccess: '---',
      acl: [{ user: 0, access: 'r--' }],
      recursive: false,
      revocable: false,
      auditOnly: false,
    });
    expectOneLineError(await aclfs(['rule', 'add', '/docs', '--owner', '0', '--default', 'r--', ...S]), 4, /already governs \/docs/);
  });

  it('add rejects bad input with exit 2 and a one-line message', async () => {
    expectOneLineError(await aclfs(['rule', 'add', '/x', '--owner', '0', '--default', 'rwz', ...S]), 2, /defaccess: "rwz" is not an access/);
    expectOneLineError(await aclfs(['rule', 'add', '/x', '--owner', '0', '--default', 'r--', '--user', 'alice', ...S]), 2, /--user expects USER:ACCESS/);
    expectOneLineError(await aclfs(['rule', 'add', '/x', '--owner', 'no-such-user-here', '--default', 'r--', ...S]), 2, /unknown user/);
    expectOneLineError(await aclfs(['rule', 'add', '/x', '--default', 'r--', ...S]), 2, /required option '--owner <user>'/);
    expectOneLineError(await aclfs(['rule', 'add', 'relative/x', '--owner', '0', '--default', 'r--', ...S]), 2, /not absolute/);
    expectOneLineError(await aclfs(['rule', 'add', '/../x', '--owner', '0', '--default', 'r--', ...S]), 2, /escapes the root/);
  });

  it('show by path or id, human and --json; a missing rule exits 3', async () => {
    const byPath = JSON.parse(await ok(['rule', 'show', '/docs', '--json', ...S]));
    expect(byPath).toMatchObject({ path: '/docs', owner: 0, defaccess: 'r--', recursive: true, acl: [{ user: 1000, access: 'rw-' }, { group: 100, access: 'r--' }] });
    // The daemon binds a rule to its file (within its 250 ms binding poll).
    const deadline = Date.now() + 5000;
    let bound = byPath;
    while (bound.dev === null && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 100));
      bound = JSON.parse(await ok(['rule', 'show', String(byPath.id), '--json', ...S]));
    }
    expect(bound.ino).toBe(fs.statSync(path.join(ws.src, 'docs')).ino);
    const text = await ok(['rule', 'show', String(byPath.id), ...S]);
    expect(text).toBe(
      [
        `rule ${byPath.id}: /docs`,
        '  owner      0',
        '  default    r--',
        '  recursive  yes',
        '  revocable  no',
        '  audit-only no',
        '  acl        user 1000 rw-',
        '             group 100 r--',
        `  bound to   dev ${bound.dev} ino ${bound.ino}${bound.birth ? ` (born ${bound.birth})` : ''}`,
        '',
      ].join('\n'),
    );
    expectOneLineError(await aclfs(['rule', 'show', '/nope', ...S]), 3, /no rule for \/nope/);
    expectOneLineError(await aclfs(['rule', 'show', '999999', ...S]), 3, /no rule with id 999999/);
    expectOneLineError(await aclfs(['rule', 'show', 'docs', ...S]), 2, /neither a rule id nor an absolute path/);
  });

  it('set replaces the whole rule or creates it', async () => {
    expect(await ok(['rule', 'set', '/docs/b.txt', '--owner', '0', '--default', 'rw-', ...S])).toMatch(/^replaced rule \d+: \/docs\/b.txt\n$/);
    const replaced = JSON.parse(await ok(['rule', 'show', '/docs/b.txt', '--json', ...S]));
    expect(replaced).toMatchObject({ defaccess: 'rw-', acl: [], recursive: false });
    expect(await ok(['rule', 'set', '/docs/c.txt', '--owner', '0', '--default', '---', ...S])).toMatch(/^created rule \d+: \/docs\/c.txt\n$/);
    const json = JSON.parse(await ok(['rule', 'set', '/docs/c.txt', '--owner', '0', '--default', 'r--', '--group', '0:rwx', '--json', ...S]));
    expect(json).toMatchObject({ path: '/docs/c.txt', defaccess: 'r--', acl: [{ group: 0, access: 'rwx' }] });
  });

  it('--revocable marks a rule revocable: add, show, ls and --json say so; set without it clears it', async () => {
    const made = JSON.parse(await ok(['rule', 'add', '/rev', '--owner', '0', '--default', 'r--', '--recursive', '--revocable', '--json', ...S]));
    expect(made).toMatchObject({ path: '/rev', recursive: true, revocable: true });
    expect(await ok(['rule', 'show', '/rev', ...S])).toContain('\n  recursive  yes\n  revocable  yes\n');
    expect(await ok(['rule', 'add', '/rev/f', '--owner', '0', '--default', 'r--', '--revocable', ...S])).toMatch(/^created rule \d+: \/rev\/f\n$/);
    expect(await ok(['rule', 'add', '/rev/g', '--owner', '0', '--default', 'r--', ...S])).toMatch(/^created rule \d+: \/rev\/g\n$/);
    expect((await ok(['rule', 'ls', '/rev', ...S])).split('\n').filter(Boolean)).toEqual([
      `${String(made.id).padStart(6)}  r--  rec rev  owner 0       /rev`,
      expect.stringMatching(/^\s*\d+  r--      rev  owner 0       \/rev\/f$/),
      expect.stringMatching(/^\s*\d+  r--           owner 0       \/rev\/g$/),
    ]);
    const listed = JSON.parse(await ok(['rule', 'ls', '/rev', '--json', ...S]));
    expect(listed.rules.map((r: { path: string; revocable: boolean }) => [r.path, r.revocable])).toEqual([
      ['/rev', true],
      ['/rev/f', true],
      ['/rev/g', false],
    ]);
    expect(await ok(['rule', 'set', '/rev/g', '--owner', '0', '--default', 'r--', '--revocable', ...S])).toMatch(/^replaced rule \d+: \/rev\/g\n$/);
    expect(JSON.parse(await ok(['rule', 'show', '/rev/g', '--json', ...S])).revocable).toBe(true);
    // set replaces the whole rule: without --revocable the rule is no longer revocable.
    expect(JSON.parse(await ok(['rule', 'set', '/rev/f', '--owner', '0', '--default', 'r--', '--json', ...S]))).toMatchObject({ path: '/rev/f', revocable: false });
    expect(await ok(['rule', 'show', '/rev/f', ...S])).toContain('\n  revocable  no\n');
  });

  it('rm by id or path prints what it removed; a missing rule exits 3', async () => {
    const c = JSON.parse(await ok(['rule', 'show', '/docs/c.txt', '--json', ...S]));
    expect(await ok(['rule', 'rm', String(c.id), ...S])).toBe(`removed rule ${c.id}: /docs/c.txt\n`);
    expectOneLineError(await aclfs(['rule', 'rm', String(c.id), ...S]), 3);
    expect(JSON.parse(await ok(['rule', 'rm', '/docs/b.txt', '--json', ...S])).path).toBe('/docs/b.txt');
    expectOneLineError(await aclfs(['rule', 'rm', '/docs/b.txt', ...S]), 3, /no rule for \/docs\/b.txt/);
  });

  it('ls follows the cursor through every page, or stops at --limit', async () => {
    const rules = Array.from({ length: 10_050 }, (_, i) => ({ path: `/bulk/${String(i).padStart(5, '0')}`, owner: 0, defaccess: 'r--' }));
    const file = path.join(ws.dir, 'bulk.json');
    fs.writeFileSync(file, JSON.stringify({ version: 1, rules }));
    // Not a terminal: no progress bar, just the summary.
    const imported = await aclfs(['import', file, ...S]);
    expect(imported).toMatchObject({ code: 0, stderr: '' });
    expect(imported.stdout).toMatch(/^imported 10050 rules \(10050 created, 0 updated\), \d+ in total, generation \d+\n$/);

    const lines = (await ok(['rule', 'ls', '/bulk', ...S])).split('\n').filter(Boolean);
    expect(lines).toHaveLength(10_050);
    expect(lines[0]).toMatch(/^\s*\d+  r--           owner 0       \/bulk\/00000$/);
    expect(lines[10_049]).toMatch(/\/bulk\/10049$/);
    const all = JSON.parse(await ok(['rule', 'ls', '/bulk', '--json', ...S]));
    expect(all.rules).toHaveLength(10_050);
    expect(all.nextCursor).toBeNull();
    expect(all.rules[5]).toMatchObject({ path: '/bulk/00005', defaccess: 'r--', acl: [] });

    const first = JSON.parse(await ok(['rule', 'ls', '/bulk', '--limit', '3', '--json', ...S]));
    expect(first.rules.map((r: { path: string }) => r.path)).toEqual(['/bulk/00000', '/bulk/00001', '/bulk/00002']);
    expect(first.nextCursor).toBe('/bulk/00002');
    const second = JSON.parse(await ok(['rule', 'ls', '/bulk', '--limit', '2', '--cursor', first.nextCursor, '--json', ...S]));
    expect(second.rules.map((r: { path: string }) => r.path)).toEqual(['/bulk/00003', '/bulk/00004']);
    expect((await ok(['rule', 'ls', '--limit', '4', ...S])).split('\n').filter(Boolean)).toHaveLength(4);
    expect(JSON.parse(await ok(['rule', 'ls', '/nothing-here', '--json', ...S]))).toEqual({ rules: [], nextCursor: null });
    expectOneLineError(await aclfs(['rule', 'ls', '--limit', '0', ...S]), 2, /--limit/);
  });
});

describeWithFuse('aclfs import / export', () => {
  it('imports from standard input; a file with one bad rule changes nothing and names the rule and field', async () => {
    const before = await ok(['export', ...S]);
    const bad = { version: 1, rules: [{ path: '/imp/a', owner: 0, defaccess: 'r--' }, { path: '/imp/b', owner: 0, defaccess: 'r--', acl: [{ user: 1, access: 9 }] }] };
    expectOneLineError(await aclfs(['import', '-', ...S], { input: JSON.stringify(bad) }), 2, /rule 1 \(\/imp\/b\): acl\[0\]\.access/);
    expect(await ok(['export', ...S])).toBe(before);
    const summary = JSON.parse(await ok(['import', '-', '--json', ...S], JSON.stringify({ version: 1, rules: [bad.rules[0]] })));
    expect(summary).toEqual({ created: 1, updated: 0, rules: expect.any(Number), generation: expect.any(Number) });
    expectOneLineError(await aclfs(['import', path.join(ws.dir, 'missing.json'), ...S]), 3, /no such file/);
    expectOneLineError(await aclfs(['import', '-', ...S], { input: '{not json' }), 2, /not valid JSON/);
  });

  it('export prints the rule file, which round-trips through import --replace', async () => {
    const text = await ok(['export', ...S]);
    const file = JSON.parse(text);
    expect(file.version).toBe(1);
    expect(file.rules.find((r: { path: string }) => r.path === '/docs')).toEqual({
      path: '/docs',
      recursive: true,
      owner: 0,
      defaccess: 'r--',
      acl: [{ user: 1000, access: 'rw-' }, { group: 100, access: 'r--' }],
    });
    expect(await ok(['export', '--json', ...S])).toBe(text);
    const res = JSON.parse(await ok(['import', '-', '--replace', '--json', ...S], text));
    expect(res.rules).toBe(file.rules.length);
    expect(await ok(['export', ...S])).toBe(text);
  });

  it('--audit-only marks a rule audit-only: add, show, ls and --json say so; set without it clears it', async () => {
    const made = JSON.parse(await ok(['rule', 'add', '/aud', '--owner', '0', '--default', '---', '--recursive', '--audit-only', '--json', ...S]));
    expect(made).toMatchObject({ path: '/aud', recursive: true, revocable: false, auditOnly: true });
    expect(await ok(['rule', 'show', '/aud', ...S])).toContain('\n  recursive  yes\n  revocable  no\n  audit-only yes\n');
    expect(await ok(['rule', 'add', '/aud/f', '--owner', '0', '--default', 'r--', '--revocable', '--audit-only', ...S])).toMatch(/^created rule \d+: \/aud\/f\n$/);
    expect(await ok(['rule', 'add', '/aud/g', '--owner', '0', '--default', 'r--', ...S])).toMatch(/^created rule \d+: \/aud\/g\n$/);
    expect((await ok(['rule', 'ls', '/aud', ...S])).split('\n').filter(Boolean)).toEqual([
      `${String(made.id).padStart(6)}  ---  rec      owner 0       /aud  audit-only`,
      expect.stringMatching(/^\s*\d+  r--      rev  owner 0       \/aud\/f  audit-only$/),
      expect.stringMatching(/^\s*\d+  r--           owner 0       \/aud\/g$/),
    ]);
    const listed = JSON.parse(await ok(['rule', 'ls', '/aud', '--json', ...S]));
    expect(listed.rules.map((r: { path: string; auditOnly: boolean }) => [r.path, r.auditOnly])).toEqual([
      ['/aud', true],
      ['/aud/f', true],
      ['/aud/g', false],
    ]);
    // set replaces the whole rule: without --audit-only the rule is enforced again.
    expect(JSON.parse(await ok(['rule', 'set', '/aud/f', '--owner', '0', '--default', 'r--', '--json', ...S]))).toMatchObject({ path: '/aud/f', auditOnly: false });
    expect(await ok(['rule', 'show', '/aud/f', ...S])).toContain('\n  audit-only no\n');
    // Export writes it for the audit-only rule only; an import into a fresh database keeps it.
    const text = await ok(['export', ...S]);
    const rules = JSON.parse(text).rules as { path: string }[];
    expect(rules.find((r) => r.path === '/aud')).toEqual({ path: '/aud', recursive: true, auditOnly: true, owner: 0, defaccess: '---', acl: [] });
    expect(rules.find((r) => r.path === '/aud/f')).toEqual({ path: '/aud/f', recursive: false, owner: 0, defaccess: 'r--', acl: [] });
    const copy = path.join(ws.dir, 'aud-copy');
    await ok(['import', '-', '--db', copy], text);
    expect(await ok(['export', '--db', copy])).toBe(text);
    expect(JSON.parse(await ok(['rule', 'show', '/aud', '--json', '--db', copy])).auditOnly).toBe(true);
    expectOneLineError(await aclfs(['import', '-', ...S], { input: JSON.stringify({ version: 1, rules: [{ path: '/aud/bad', owner: 0, defaccess: 'r--', auditOnly: 'yes' }] }) }), 2, /rule 0 \(\/aud\/bad\): auditOnly: must be true or false/);
  });

  it('export writes revocable for a revocable rule only; export, import --replace and export again keeps it', async () => {
    await ok(['rule', 'set', '/exp/rev', '--owner', '0', '--default', 'r--', '--revocable', ...S]);
    await ok(['rule', 'set', '/exp/plain', '--owner', '0', '--default', 'r--', ...S]);
    const text = await ok(['export', ...S]);
    const rules = JSON.parse(text).rules as { path: string }[];
    expect(rules.find((r) => r.path === '/exp/rev')).toEqual({ path: '/exp/rev', recursive: false, revocable: true, owner: 0, defaccess: 'r--', acl: [] });
    expect(rules.find((r) => r.path === '/exp/plain')).toEqual({ path: '/exp/plain', recursive: false, owner: 0, defaccess: 'r--', acl: [] });
    await ok(['import', '-', '--replace', ...S], text);
    expect(await ok(['export', ...S])).toBe(text);
    expect(JSON.parse(await ok(['rule', 'show', '/exp/rev', '--json', ...S])).revocable).toBe(true);
    expect(JSON.parse(await ok(['rule', 'show', '/exp/plain', '--json', ...S])).revocable).toBe(false);
    // The same file into a fresh database (--db): the mark goes with the rule.
    const copy = path.join(ws.dir, 'rev-copy');
    await ok(['import', '-', '--db', copy], text);
    expect(await ok(['export', '--db', copy])).toBe(text);
    expect(await ok(['rule', 'ls', '/exp', '--db', copy])).toMatch(/^\s*\d+  r--           owner 0       \/exp\/plain\n\s*\d+  r--      rev  owner 0       \/exp\/rev\n$/);
    expectOneLineError(await aclfs(['import', '-', ...S], { input: JSON.stringify({ version: 1, rules: [{ path: '/exp/bad', owner: 0, defaccess: 'r--', revocable: 'yes' }] }) }), 2, /rule 0 \(\/exp\/bad\): revocable: must be true or false/);
  });

  it('draws a progress bar for 10,000+ rules on a terminal, and none for fewer', async () => {
    const mk = (n: number, dirName: string): string => {
      const f = path.join(ws.dir, `${dirName}.json`);
      fs.writeFileSync(f, JSON.stringify({ version: 1, rules: Array.from({ length: n }, (_, i) => ({ path: `/${dirName}/${i}`, owner: 0, defaccess: 'r--' })) }));
      return f;
    };
    const onTty = async (file: string): Promise<RunResult> =>
      run('script', ['-qefc', `${process.execPath} ${ACLFS} import ${file} --socket ${ws.socket}`, '/dev/null']);
    const big = await onTty(mk(20_000, 'tty-big'));
    expect(big.code).toBe(0);
    expect(big.stdout).toMatch(/uploading +\|[░█]+\| 100% \| [\d.]+\/[\d.]+ MiB \| sent; the daemon is validating and committing/);
    expect(big.stdout).toMatch(/imported 20000 rules \(20000 created, 0 updated\)/);
    // With --db the daemon is not involved: the bar follows validation.
    const direct = await run('script', ['-qefc', `${process.execPath} ${ACLFS} import ${mk(12_000, 'tty-db')} --db ${path.join(ws.dir, 'tty-db')}`, '/dev/null']);
    expect(direct.code).toBe(0);
    expect(direct.stdout).toMatch(/validating +\|[░█]+\| 100% \| 12000\/12000 rules/);
    expect(direct.stdout).toMatch(/imported 12000 rules/);
    const small = await onTty(mk(50, 'tty-small'));
    expect(small.code).toBe(0);
    expect(small.stdout).not.toContain('uploading');
    expect(small.stdout).toMatch(/^imported 50 rules/);
  });

  it('draws a bar on a terminal stderr for export and rule ls of 10,000+ rules sent elsewhere; nothing without a terminal', async () => {
    const db = path.join(ws.dir, 'bars-db');
    const rules = Array.from({ length: 12_000 }, (_, i) => ({ path: `/bars/${String(i).padStart(5, '0')}`, owner: 0, defaccess: 'r--' }));
    const text = JSON.stringify({ version: 1, rules });
    await ok(['import', '-', '--db', db], text);
    await ok(['import', '-', ...S], text);
    // stderr on a terminal, stdout to a file: a bar, and the file as without one.
    const onTty = (command: string): Promise<RunResult> => run('script', ['-qefc', command, '/dev/null']);
    const cli = `${process.execPath} ${ACLFS}`;
    const plain = await ok(['export', '--db', db]);
    const exported = path.join(ws.dir, 'bars-export.json');
    const viaDb = await onTty(`${cli} export --db ${db} > ${exported}`);
    expect(viaDb.code).toBe(0);
    expect(viaDb.stdout).toMatch(/reading +\|[░█]+\| 100% \| 12000\/12000 rules/);
    expect(fs.readFileSync(exported, 'utf8')).toBe(plain);
    const viaSocket = await onTty(`${cli} export ${S.join(' ')} > ${exported}`);
    expect(viaSocket.code).toBe(0);
    expect(viaSocket.stdout).toMatch(/downloading +\|[░█]+\| 100% \| [\d.]+\/[\d.]+ MiB/);
    expect(fs.readFileSync(exported, 'utf8')).toBe(await ok(['export', ...S]));
    const listed = path.join(ws.dir, 'bars-ls.txt');
    const ls = await onTty(`${cli} rule ls --db ${db} > ${listed}`);
    expect(ls.code).toBe(0);
    expect(ls.stdout).toMatch(/listing +\|[░█]+\| 100% \| 12000\/12000 rules/);
    expect(fs.readFileSync(listed, 'utf8')).toBe(await ok(['rule', 'ls', '--db', db]));
    const lsJson = await onTty(`${cli} rule ls /bars --json ${S.join(' ')} > ${listed}`);
    expect(lsJson.code).toBe(0);
    expect(lsJson.stdout).toMatch(/listing +\|[░█]+\| 100% \| 12000\/12000 rules/);
    expect(JSON.parse(fs.readFileSync(listed, 'utf8')).rules).toHaveLength(12_000);
    // stdout on the terminal too: the rules are the progress; no bar among them.
    const toTerminal = await onTty(`${cli} export --db ${db}`);
    expect(toTerminal.code).toBe(0);
    expect(toTerminal.stdout).not.toMatch(/reading|\x1b\[/);
    expect(JSON.parse(toTerminal.stdout.replace(/\r\n/g, '\n')).rules).toHaveLength(12_000);
    // import's bar too follows stderr alone: drawn with stdout in a file,
    // never drawn with stderr in one.
    const rulesFile = path.join(ws.dir, 'bars.json');
    fs.writeFileSync(rulesFile, text);
    const summary = path.join(ws.dir, 'bars-summary.txt');
    const imported = await onTty(`${cli} import ${rulesFile} --db ${db} > ${summary}`);
    expect(imported.stdout).toMatch(/validating +\|[░█]+\| 100% \| 12000\/12000 rules/);
    expect(fs.readFileSync(summary, 'utf8')).toMatch(/^imported 12000 rules \(0 created, 12000 updated\)/);
    const errors = path.join(ws.dir, 'bars-stderr.txt');
    const quiet = await onTty(`${cli} import ${rulesFile} --db ${db} 2> ${errors}`);
    expect(quiet.stdout).toMatch(/^imported 12000 rules/);
    expect(fs.readFileSync(errors, 'utf8')).toBe('');
    expect((await onTty(`${cli} export ${S.join(' ')} 2> ${errors} > ${exported}`)).stdout).toBe('');
    expect(fs.readFileSync(errors, 'utf8')).toBe('');
    // No terminal (ok() checks stderr is empty): the output alone.
    expect(JSON.parse(await ok(['rule', 'ls', '--json', '--db', db])).rules).toHaveLength(12_000);
    expect(JSON.parse(await ok(['export', ...S])).rules.length).toBeGreaterThanOrEqual(12_000);
  });
});

describeWithFuse('aclfs check', () => {
  it('exits 0 on allow and 1 on deny, with the reason; --json has the full decision', async () => {
    const allow = await aclfs(['check', '--uid', '1000', '--gid', '1000', '--access', 'rw', '/docs/a.txt', ...S]);
    expect(allow.code).toBe(0);
    expect(allow.stderr).toBe('');
    expect(allow.stdout.split('\n')[0]).toMatch(/^allow: rule \d+ \(\/docs, by recursive ancestor\): user 1000 rw- grants rw$/);
    expect(allow.stdout.split('\n')[1]).toMatch(/^  for uid 1000 gid 1000 groups none, \/docs\/a.txt \(file dev \d+ ino \d+\), generation \d+$/);
    const deny = await aclfs(['check', '--uid', '1001', '--gid', '1001', '--groups', '100', '--access', 'w', '/docs/a.txt', ...S]);
    expect(deny.code).toBe(1);
    expect(deny.stderr).toBe('');
    expect(deny.stdout.split('\n')[0]).toMatch(/^deny: rule \d+ \(\/docs, by recursive ancestor\): group 100 r-- lacks w$/);
    const json = await aclfs(['check', '--uid', 'root', '--access', 'r', '/unruled', '--json', ...S]);
    expect(json.code).toBe(1);
    expect(JSON.parse(json.stdout)).toEqual({
      allow: false,
      decision: 'deny',
      reason: 'deny: no rule: default policy deny --- lacks r',
      caller: { uid: 0, gid: 0, groups: expect.any(Array) },
      path: '/unruled',
      file: null,
      requested: 'r--',
      granted: '---',
      rule: null,
      match: 'default',
      source: { kind: 'default-policy', policy: 'deny' },
      defaultPolicy: 'deny',
      generation: expect.any(Number),
      auditOnly: false,
    });
  });

  it('rejects bad arguments with exit 2', async () => {
    expectOneLineError(await aclfs(['check', '--uid', '1000', '--gid', '1000', '/docs', ...S]), 2, /--access/);
    expectOneLineError(await aclfs(['check', '--uid', '1000', '--gid', '1000', '--access', 'q', '/docs', ...S]), 2, /requested access/);
    expectOneLineError(await aclfs(['check', '--uid', '54321', '--access', 'r', '/docs', ...S]), 2, /give a gid/);
  });
});

describeWithFuse('aclfs mount and its admin socket', () => {
  it('refuses a second daemon on a live socket (exit 4) and leaves the first serving', async () => {
    const other = path.join(ws.dir, 'other');
    fs.mkdirSync(path.join(other, 'src'), { recursive: true });
    fs.mkdirSync(path.join(other, 'mnt'), { recursive: true });
    const res = await aclfs(['mount', path.join(other, 'src'), path.join(other, 'mnt'), '--db', path.join(other, 'db'), ...S]);
    expectOneLineError(res, 4, /another aclfs daemon is serving the admin socket/);
    expect(JSON.parse(await ok(['status', '--json', ...S])).pid).toBe(daemon.pid);
  });

  it('refuses a socket inside the mountpoint or the source, an unknown admin group, and a too-open socket directory (exit 2)', async () => {
    const base = [ws.src, path.join(ws.dir, 'mnt2'), '--db', path.join(ws.dir, 'db2')];
    fs.mkdirSync(path.join(ws.dir, 'mnt2'), { recursive: true });
    expectOneLineError(await aclfs(['mount', ...base, '--socket', path.join(ws.dir, 'mnt2', 'run', 's.sock')]), 2, /must not be inside the mountpoint/);
    expectOneLineError(await aclfs(['mount', ...base, '--socket', path.join(ws.src, 'run', 's.sock')]), 2, /must not be inside the source/);
    expectOneLineError(await aclfs(['mount', ...base, '--socket', path.join(ws.dir, 'r2', 's.sock'), '--admin-group', 'no-such-group-x']), 2, /unknown group/);
    // The workspace directory is 0755: no place for the socket, and left as it is.
    expectOneLineError(await aclfs(['mount', ...base, '--socket', path.join(ws.dir, 's.sock')]), 2, /0750 or tighter/);
    expect(fs.statSync(ws.dir).mode & 0o777).toBe(0o755);
    expect(fs.existsSync(path.join(ws.dir, 's.sock'))).toBe(false);
  });

  it('gives the socket to --admin-group by name', async () => {
    const group = fs.readFileSync('/etc/group', 'utf8').split('\n').map((l) => l.split(':')).find((f) => f[0] && f[2] && f[2] !== '0');
    expect(group).toBeDefined();
    const [name, , gid] = group!;
    const other = path.join(ws.dir, 'grp');
    fs.mkdirSync(path.join(other, 'src'), { recursive: true });
    fs.mkdirSync(path.join(other, 'mnt'), { recursive: true });
    const sock = path.join(other, 'run', 'aclfs.sock');
    const d = await Daemon.start([path.join(other, 'src'), path.join(other, 'mnt'), '--db', path.join(other, 'db'), '--socket', sock, '--admin-group', name!], path.join(other, 'mnt'));
    try {
      expect(fs.lstatSync(sock).gid).toBe(Number(gid));
      expect(fs.statSync(path.dirname(sock)).gid).toBe(Number(gid));
      expect(fs.lstatSync(sock).mode & 0o7777).toBe(0o660);
    } finally {
      await d.ensureStopped();
    }
    expect(fs.existsSync(sock)).toBe(false);
  });
});

describeWithFuse('aclfs without a daemon, and usage', () => {
  it('exits 6 when no daemon answers the socket (missing or stale)', async () => {
    const missing = path.join(ws.dir, 'nowhere', 'aclfs.sock');
    for (const args of [['status'], ['rule', 'ls'], ['rule', 'show', '/docs'], ['export'], ['check', '--uid', '0', '--access', 'r', '/x']]) {
      expectOneLineError(await aclfs([...args, '--socket', missing]), 6, /cannot reach the aclfs daemon at .*nowhere\/aclfs\.sock/);
    }
    const stale = path.join(ws.dir, 'stale.sock');
    await run(process.execPath, ['-e', `require('net').createServer().listen(${JSON.stringify(stale)}, () => process.kill(process.pid, 'SIGKILL'))`]);
    expect(fs.lstatSync(stale).isSocket()).toBe(true);
    expectOneLineError(await aclfs(['status', '--socket', stale]), 6, /connection refused/);
  });

  it('works on a database directly with --db', async () => {
    const db = path.join(ws.dir, 'direct-db');
    expectOneLineError(await aclfs(['rule', 'ls', '--db', db]), 3, /no rule database/);
    expect(await ok(['rule', 'add', '/d', '--owner', '0', '--default', 'r--', '--recursive', '--db', db])).toBe('created rule 1: /d\n');
    expect(await ok(['rule', 'set', '/d/x', '--owner', '0', '--default', '---', '--user', '7:r--', '--db', db])).toBe('created rule 2: /d/x\n');
    expect(JSON.parse(await ok(['rule', 'ls', '--json', '--db', db])).rules.map((r: { path: string }) => r.path)).toEqual(['/d', '/d/x']);
    const check = await aclfs(['check', '--uid', '7', '--gid', '7', '--access', 'r', '/d/x', '--json', '--db', db]);
    expect(check.code).toBe(0);
    expect(JSON.parse(check.stdout)).toMatchObject({ allow: true, match: 'path', file: null });
    expect(JSON.parse(await ok(['export', '--db', db])).rules).toHaveLength(2);
    expect(await ok(['rule', 'rm', '/d/x', '--db', db])).toBe('removed rule 2: /d/x\n');
    expectOneLineError(await aclfs(['rule', 'ls', '--db', db, ...S]), 2, /--socket or --db, not both/);
  });

  it('exits 2 for usage errors with one line, 0 for help', async () => {
    expectOneLineError(await aclfs(['bogus']), 2, /unknown command 'bogus'/);
    expectOneLineError(await aclfs(['rule', 'add', '/x', '--owner', '0', '--default', 'r--', '--bogus', ...S]), 2, /unknown option '--bogus'/);
    expectOneLineError(await aclfs(['status', 'extra', ...S]), 2, /too many arguments/);
    const help = await aclfs(['rule', '--help']);
    expect(help.code).toBe(0);
    // Every subcommand is listed (whatever the help layout).
    for (const sub of ['add', 'set', 'rm', 'show', 'ls']) expect(help.stdout).toMatch(new RegExp(`^\\s*${sub}\\b`, 'm'));
    expect((await aclfs([])).code).toBe(2);
  });
});
