// The host's systemd unit (packaging/aclfs.service): `systemd-analyze
// verify` accepts it, it has the settings the host conventions need, and its
// ExecStartPre= check (aclfs mount --check) really passes a good database
// (or none yet) and stops a bad one. systemd is installed when systemd-analyze is missing
// (as root); under CI=true nothing here is skipped.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { open } from 'lmdb';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeWithSystemd } from '../helpers/facilities';
import { ensureCommands } from '../helpers/docker';
import { aclfs, ROOT, run, type RunResult } from '../helpers/mounts';

const UNIT = path.join(ROOT, 'packaging', 'aclfs.service');
const DEFAULTS = path.join(ROOT, 'packaging', 'aclfs.default');
let dir = '';

/** `Key=value` lines of a unit (all of them, in order). */
function directives(text: string): [string, string][] {
  return text
    .split('\n')
    .filter((l) => /^[A-Za-z]+=/.test(l))
    .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]);
}

/**
 * Runs the unit's ExecStartPre= as systemd would: "${VAR}" as one word,
 * "$VAR" split at whitespace, "$$" as "$"; with ACLFS_DB set to `db`, the
 * source and mountpoint empty directories of their own, and the admin
 * socket's path moved into the test's directory (no daemon of this machine
 * is asked).
 */
function runPreStart(db: string): Promise<RunResult> {
  const line = directives(readFileSync(UNIT, 'utf8')).find(([k]) => k === 'ExecStartPre')?.[1];
  if (line === undefined) throw new Error('no ExecStartPre=');
  const where = mkdtempSync(path.join(dir, 'prestart-'));
  for (const d of ['src', 'mnt']) mkdirSync(path.join(where, d));
  const env: Record<string, string> = {
    ACLFS_SOURCE: path.join(where, 'src'),
    ACLFS_MOUNTPOINT: path.join(where, 'mnt'),
    ACLFS_DB: db,
    ACLFS_OPTS: '',
  };
  const words = line
    .split(/\s+/)
    .flatMap((word) => {
      const whole = /^\$(?:\{(\w+)\}|(\w+))$/.exec(word);
      if (whole?.[2] !== undefined) return (env[whole[2]] ?? '').split(/\s+/).filter((w) => w !== '');
      return [word.replace(/\$\{(\w+)\}/g, (_, name: string) => env[name] ?? '').replace(/\$\$/g, '$')];
    })
    .map((word) => (word === '/run/aclfs/aclfs.sock' ? path.join(where, 'run', 'aclfs.sock') : word));
  const [program, ...args] = words;
  if (program !== 'aclfs') throw new Error(`ExecStartPre= does not run aclfs: ${line}`);
  return new Promise((resolve) => {
    try {
      const stdout = execFileSync(path.join(ROOT, 'bin', 'aclfs'), args, {
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      resolve({ code: 0, stdout, stderr: '' });
    } catch (err) {
      const e = err as { status: number | null; stdout: string; stderr: string };
      resolve({ code: e.status ?? 1, stdout: e.stdout, stderr: e.stderr });
    }
  });
}

describeWithSystemd('systemd unit packaging/aclfs.service', () => {
  beforeAll(async () => {
    await ensureCommands({ 'systemd-analyze': 'systemd' });
    dir = mkdtempSync(path.join(tmpdir(), 'aclfs-unit-'));
  }, 600_000);

  afterAll(() => {
    if (dir !== '') rmSync(dir, { recursive: true, force: true });
  });

  it('passes systemd-analyze verify', async () => {
    // verify checks that ExecStart='s (and ExecStartPre='s) program exists;
    // aclfs is not installed on this machine, so point that one word at this
    // checkout's bin/aclfs. Everything else is verified as shipped.
    const text = readFileSync(UNIT, 'utf8');
    expect(text).toMatch(/^ExecStart=aclfs mount /m);
    expect(text).toMatch(/^ExecStartPre=aclfs mount --check /m);
    const unit = path.join(dir, 'aclfs.service');
    writeFileSync(unit, text.replace(/^(ExecStart(?:Pre)?)=aclfs /gm, `$1=${path.join(ROOT, 'bin', 'aclfs')} `));
    const r = await run('systemd-analyze', ['verify', unit]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
  });

  it('restarts on failure, has a 0750 runtime directory for the socket, and no mount namespace of its own', () => {
    const d = directives(readFileSync(UNIT, 'utf8'));
    const get = (k: string): string[] => d.filter(([key]) => key === k).map(([, v]) => v);
    expect(get('Restart')).toEqual(['on-failure']);
    // Ready only once it serves; only the daemon notifies; a watchdog.
    expect(get('Type')).toEqual(['notify']);
    expect(get('NotifyAccess')).toEqual(['main']);
    expect(get('WatchdogSec')).toHaveLength(1);
    expect(get('RuntimeDirectory')).toEqual(['aclfs']);
    expect(get('RuntimeDirectoryMode')).toEqual(['0750']);
    expect(get('StateDirectory')).toEqual(['aclfs']);
    expect(get('ExecStartPre')).toHaveLength(1);
    expect(get('ExecStart')[0]).toContain('--socket /run/aclfs/aclfs.sock');
    // Any of these would put the FUSE mount in a namespace nobody else sees.
    for (const k of ['PrivateTmp', 'ProtectSystem', 'ProtectHome', 'ReadWritePaths', 'ReadOnlyPaths', 'PrivateDevices', 'PrivateMounts', 'TemporaryFileSystem', 'BindPaths']) {
      expect(get(k), k).toEqual([]);
    }
    // The example environment file sets what ExecStart uses.
    const defaults = readFileSync(DEFAULTS, 'utf8');
    for (const v of ['ACLFS_SOURCE', 'ACLFS_MOUNTPOINT', 'ACLFS_DB', 'ACLFS_OPTS']) expect(defaults).toMatch(new RegExp(`^${v}=`, 'm'));
  });

  it('ExecStartPre= passes a database that does not exist yet and a good one', async () => {
    const none = await runPreStart(path.join(dir, 'none'));
    expect(none).toMatchObject({ code: 0, stderr: '' });

    const db = path.join(dir, 'good');
    const add = await aclfs(['rule', 'add', '/docs', '--recursive', '--owner', '0', '--default', 'r-x', '--db', db]);
    expect(add.code, add.stderr).toBe(0);
    const good = await runPreStart(db);
    expect(good).toMatchObject({ code: 0, stdout: '', stderr: '' });
  });

  it('ExecStartPre= stops a database holding a rule that does not read back, with a one-line reason', async () => {
    const db = path.join(dir, 'bad');
    const add = await aclfs(['rule', 'add', '/docs', '--owner', '0', '--default', 'r--', '--db', db]);
    expect(add.code, add.stderr).toBe(0);
    // Damage the stored rule behind the store's back (as a bad disk or a
    // buggy older version might): an access value out of range.
    const env = open({ path: db, noSubdir: false, maxDbs: 8 });
    const rules = env.openDB<Buffer, number>({ name: 'rules', keyEncoding: 'uint32', encoding: 'binary' });
    const rule = rules.get(1);
    expect(rule).toBeDefined();
    // Byte 2 of a rule record is its defaccess (src/store/codec.ts).
    const damaged = Buffer.from(rule!);
    damaged[2] = 99;
    await rules.put(1, damaged);
    await env.close();

    const bad = await runPreStart(db);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr.trim().split('\n')).toHaveLength(1);
    expect(bad.stderr).toMatch(/^aclfs: /);
  });
});
