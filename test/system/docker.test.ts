// The Docker image, for real: Debian's docker.io engine (installed and
// started here when missing, stopped by its pid at the end), a stand-in for
// node:20-bookworm-slim made with debootstrap plus this machine's Node
// (scripts/docker-standin-base.sh, cached between runs), the image built
// from docker/Dockerfile with --build-arg BASE=<stand-in>, and containers run
// with /dev/fuse and CAP_SYS_ADMIN only. Needs root; under CI nothing here
// may be skipped, so a missing prerequisite fails.
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeWithDocker } from '../helpers/facilities';
import { docker, dockerOk, Engine, ensureCommands, holdLock, hostMounts, parseMountinfo } from '../helpers/docker';
import { aclfs, ROOT, run, waitFor } from '../helpers/mounts';

const IMAGE = 'aclfs-test:latest';
const tag = `aclfs-test-${process.pid}`;
const MAIN = `${tag}-main`;
const EXPOSED = `${tag}-exposed`;
const NO_INIT = `${tag}-noinit`;
const DB_VOLUME = `${tag}-db`;
const PROJECT = tag.replace(/-/g, '');
const SECRET = 'top secret\n';

const INITIAL_RULES = {
  version: 1,
  rules: [{ path: '/', recursive: true, owner: 0, defaccess: 'r-x', acl: [] }],
};

let dir = '';
let engine: Engine;
let releaseLock: (() => void) | undefined;
let viewBound = false;
const started = Date.now();
const timings: Record<string, number> = {};

function ws(...parts: string[]): string {
  return path.join(dir, ...parts);
}

async function timed<T>(what: string, fn: () => Promise<T>): Promise<T> {
  const t0 = Date.now();
  try {
    return await fn();
  } finally {
    timings[what] = (Date.now() - t0) / 1000;
  }
}

interface Status {
  readonly mounted: boolean;
  readonly source: string;
  readonly mountpoint: string;
  readonly db: string;
  readonly rules: number;
}

/** The daemon's status through a socket on the host, or null if it does not answer. */
async function hostStatus(socket: string): Promise<Status | null> {
  const r = await aclfs(['status', '--json', '--socket', socket]);
  return r.code === 0 ? (JSON.parse(r.stdout) as Status) : null;
}

async function waitServing(socket: string, container: string): Promise<Status> {
  let st: Status | null = null;
  try {
    await waitFor(async () => (st = await hostStatus(socket))?.mounted === true, 30_000, `aclfs in ${container} to serve`);
  } catch (err) {
    const logs = await docker(['logs', '--tail', '20', container]);
    throw new Error(`${(err as Error).message}; container logs:\n${logs.stdout}${logs.stderr}`);
  }
  return st as unknown as Status;
}

async function execCat(container: string, user: string | null, file: string): Promise<{ code: number; out: string; err: string }> {
  const r = await docker(['exec', ...(user === null ? [] : ['--user', user]), container, 'cat', file]);
  return { code: r.code, out: r.stdout, err: r.stderr };
}

async function inspect(container: string, format: string): Promise<string> {
  return (await dockerOk(['inspect', '-f', format, container])).trim();
}

/** `docker stop`, timed; returns seconds and the container's exit code. */
async function stopTimed(container: string): Promise<{ seconds: number; stopCode: number; exitCode: number; oom: string }> {
  const t0 = Date.now();
  const r = await docker(['stop', '-t', '10', container], { timeoutMs: 30_000 });
  const seconds = (Date.now() - t0) / 1000;
  return {
    seconds,
    stopCode: r.code,
    exitCode: Number(await inspect(container, '{{.State.ExitCode}}')),
    oom: await inspect(container, '{{.State.OOMKilled}}'),
  };
}

const fuseRun = ['--init', '--device', '/dev/fuse', '--cap-add', 'SYS_ADMIN'];

describeWithDocker('Docker image (docker/Dockerfile) on a stand-in base', () => {
  beforeAll(async () => {
    if (process.getuid?.() !== 0 || !existsSync('/dev/fuse')) {
      throw new Error('the Docker tests need root and /dev/fuse');
    }
    // Another run of this file on the machine (another checkout, another
    // session) could stop an engine this one is using: take turns.
    releaseLock = await timed('waiting for other runs', () =>
      holdLock(existsSync('/run/lock') ? '/run/lock/aclfs-docker-test.lock' : path.join(tmpdir(), 'aclfs-docker-test.lock'), 1_800_000),
    );
    dir = mkdtempSync(path.join(tmpdir(), 'aclfs-docker-'));
    chmodSync(dir, 0o755);
    engine = new Engine(ws('dockerd.log'));
    await timed('install packages', () =>
      ensureCommands({ dockerd: 'docker.io', docker: 'docker.io', debootstrap: 'debootstrap', 'docker-compose': 'docker-compose', curl: 'curl' }),
    );
    await timed('engine', () => engine.ensure());
  }, 2_700_000);

  afterAll(async () => {
    for (const c of [MAIN, EXPOSED, NO_INIT]) await docker(['rm', '-f', '-v', c]);
    await run('docker-compose', ['-f', path.join(ROOT, 'docker', 'compose.yaml'), '-p', PROJECT, 'down', '-v', '-t', '10'], { timeoutMs: 60_000 });
    await docker(['volume', 'rm', '-f', DB_VOLUME]);
    if (viewBound) await run('umount', ['-l', ws('view')]);
    const startedHere = engine?.startedHere ?? false;
    await engine?.stop();
    if (dir !== '') rmSync(dir, { recursive: true, force: true });
    releaseLock?.();
    timings['whole file'] = (Date.now() - started) / 1000;
    console.log(`docker test timings (s), engine ${startedHere ? 'started and stopped by this test' : 'already running'}: ${JSON.stringify(timings)}`);
  }, 180_000);

  it('builds from a debootstrap stand-in base: BASE plus fuse and libfuse2, aclfs on PATH, no toolchain, a HEALTHCHECK', async () => {
    const base = await timed('stand-in base', async () => {
      const r = await run(path.join(ROOT, 'scripts', 'docker-standin-base.sh'), [], { timeoutMs: 600_000 });
      if (r.code !== 0) throw new Error(`docker-standin-base.sh exited ${r.code}: ${r.stderr}`);
      return r.stdout.trim();
    });
    expect(base).toMatch(/^aclfs-standin-base:bookworm-node20\./);

    await timed('image build', () =>
      dockerOk(['build', '-f', path.join(ROOT, 'docker', 'Dockerfile'), '--build-arg', `BASE=${base}`, '-t', IMAGE, ROOT], {
        timeoutMs: 900_000,
        // The classic builder: this engine's BuildKit needs the buildx plugin, which Debian's docker.io lacks.
        env: { ...process.env, DOCKER_BUILDKIT: '0' },
      }),
    );
    // Earlier builds of this image, now untagged.
    await docker(['image', 'prune', '-f', '--filter', 'label=org.opencontainers.image.title=aclfs']);

    const version = (await dockerOk(['run', '--rm', IMAGE, 'aclfs', '--version'])).trim();
    expect(version).toBe((JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string }).version);
    const probe = await dockerOk([
      'run',
      '--rm',
      '--entrypoint',
      'sh',
      IMAGE,
      '-c',
      'command -v aclfs; for p in fuse libfuse2 g++ make python3; do dpkg-query -W -f="$p=\\${Status}\\n" $p 2>/dev/null | grep -q "install ok installed" && echo "$p yes" || echo "$p no"; done; stat -c "%a %U" /run/aclfs /var/lib/aclfs',
    ]);
    expect(probe).toContain('/usr/local/bin/aclfs');
    expect(probe).toContain('fuse yes');
    expect(probe).toContain('libfuse2 yes');
    expect(probe).toContain('g++ no');
    expect(probe).toContain('make no');
    expect(probe).toContain('750 root');
    expect(probe).toContain('700 root');
    const health = await inspect(IMAGE, '{{json .Config.Healthcheck}}');
    expect(health).toContain('aclfs status');
    expect(await inspect(IMAGE, '{{json .Config.Volumes}}')).toMatch(/\/data.*\/run\/aclfs|\/run\/aclfs.*\/data/);
  }, 1_200_000);

  it('serves /data at /protected; a rule added from the host through the socket volume denies uid 65534 and allows root', async () => {
    for (const d of ['data', 'run']) mkdirSync(ws(d));
    chmodSync(ws('data'), 0o755);
    chmodSync(ws('run'), 0o750); // aclfs wants its socket directory root's and 0750
    writeFileSync(ws('data', 'secret.txt'), SECRET, { mode: 0o644 });
    writeFileSync(ws('rules.json'), JSON.stringify(INITIAL_RULES), { mode: 0o644 });

    await timed('first start', async () => {
      await dockerOk([
        'run',
        '-d',
        '--name',
        MAIN,
        ...fuseRun,
        '--health-interval',
        '2s',
        '-v',
        `${ws('data')}:/data`,
        '-v',
        `${DB_VOLUME}:/var/lib/aclfs`,
        '-v',
        `${ws('run')}:/run/aclfs`,
        '-v',
        `${ws('rules.json')}:/etc/aclfs/rules.json:ro`,
        IMAGE,
      ]);
      const st = await waitServing(ws('run', 'aclfs.sock'), MAIN);
      expect(st).toMatchObject({ mounted: true, source: '/data', mountpoint: '/protected', db: '/var/lib/aclfs', rules: 1 });
    });
    expect((await docker(['logs', MAIN])).stderr).toContain('importing initial rules from /etc/aclfs/rules.json');

    // The initial rule lets everyone read; Unix permissions allow it too.
    expect(await execCat(MAIN, '65534', '/protected/secret.txt')).toMatchObject({ code: 0, out: SECRET });

    // From the host, through the socket in the shared volume.
    const add = await aclfs(['rule', 'add', '/secret.txt', '--owner', '0', '--default', '---', '--socket', ws('run', 'aclfs.sock')]);
    expect(add.stderr).toBe('');
    expect(add.code).toBe(0);

    const nobody = await execCat(MAIN, '65534', '/protected/secret.txt');
    expect(nobody.code).not.toBe(0);
    expect(nobody.err).toContain('Permission denied');
    expect(await execCat(MAIN, null, '/protected/secret.txt')).toMatchObject({ code: 0, out: SECRET });

    // The daemon logged the denial with its reason.
    expect((await docker(['logs', MAIN])).stderr).toMatch(/deny: rule 2 \(\/secret\.txt[^)]*\): defaccess --- lacks r/);

    // Plain HTTP on the same socket works too (curl --unix-socket).
    const curl = await run('curl', ['-sf', '--unix-socket', ws('run', 'aclfs.sock'), 'http://aclfs/v1/status']);
    expect(curl.code).toBe(0);
    expect(JSON.parse(curl.stdout)).toMatchObject({ mounted: true, rules: 2 });
  }, 120_000);

  it('is healthy by its HEALTHCHECK (aclfs status)', async () => {
    await waitFor(async () => (await inspect(MAIN, '{{.State.Health.Status}}')) === 'healthy', 60_000, `${MAIN} to be healthy`);
  }, 90_000);

  it('docker stop unmounts cleanly and the container exits 0 within 10 s', async () => {
    // A change made through the socket, to see after the restart that the
    // initial rules were not imported over it.
    const set = await aclfs(['rule', 'set', '/', '--recursive', '--owner', '0', '--default', 'r-x', '--user', '1000:rw-', '--socket', ws('run', 'aclfs.sock')]);
    expect(set.code, set.stderr).toBe(0);

    const inside = parseMountinfo(await dockerOk(['exec', MAIN, 'cat', '/proc/self/mountinfo']));
    expect(inside.filter((m) => m.fsType.startsWith('fuse'))).toEqual([{ mountpoint: '/protected', fsType: 'fuse.aclfs' }]);

    const stop = await timed('docker stop', () => stopTimed(MAIN));
    expect(stop.stopCode).toBe(0);
    expect(stop.seconds).toBeLessThan(10);
    expect(stop.exitCode).toBe(0);
    expect(stop.oom).toBe('false');
    const logs = (await docker(['logs', MAIN])).stderr;
    expect(logs).toContain('"signal":"SIGTERM"');
    expect(logs).toContain('"msg":"unmounted"');
    // The daemon removed its socket from the shared volume on the way out.
    expect(existsSync(ws('run', 'aclfs.sock'))).toBe(false);
  }, 60_000);

  it('docker start: the rules are still there and enforced; the initial rules are not imported again', async () => {
    await timed('restart', async () => {
      await dockerOk(['start', MAIN]);
      await waitServing(ws('run', 'aclfs.sock'), MAIN);
    });
    const logs = (await docker(['logs', MAIN])).stderr;
    expect(logs).toContain('has rules; /etc/aclfs/rules.json not imported');

    const ls = await aclfs(['rule', 'ls', '--json', '--socket', ws('run', 'aclfs.sock')]);
    expect(ls.code, ls.stderr).toBe(0);
    const rules = (JSON.parse(ls.stdout) as { rules: { path: string; defaccess: string; acl: unknown[] }[] }).rules;
    expect(rules.map((r) => r.path)).toEqual(['/', '/secret.txt']);
    expect(rules[0]?.acl).toEqual([{ user: 1000, access: 'rw-' }]);
    expect(rules[1]?.defaccess).toBe('---');

    expect((await execCat(MAIN, '65534', '/protected/secret.txt')).code).not.toBe(0);
    expect(await execCat(MAIN, null, '/protected/secret.txt')).toMatchObject({ code: 0, out: SECRET });
    const inside = parseMountinfo(await dockerOk(['exec', MAIN, 'cat', '/proc/self/mountinfo']));
    expect(inside.filter((m) => m.fsType.startsWith('fuse'))).toEqual([{ mountpoint: '/protected', fsType: 'fuse.aclfs' }]);

    // Stopped again, the database volume alone holds the rules: a one-off
    // container with a command instead of options runs it (aclfs export).
    const stop = await stopTimed(MAIN);
    expect(stop).toMatchObject({ stopCode: 0, exitCode: 0 });
    expect(stop.seconds).toBeLessThan(10);
    const exported = JSON.parse(await dockerOk(['run', '--rm', '-v', `${DB_VOLUME}:/var/lib/aclfs`, IMAGE, 'aclfs', 'export', '--db', '/var/lib/aclfs'])) as {
      rules: { path: string }[];
    };
    expect(exported.rules.map((r) => r.path)).toEqual(['/', '/secret.txt']);
  }, 120_000);

  it('exposes the filtered view on the host through :rshared propagation (host callers need --pid host); stop removes it there', async () => {
    // Docker needs the bind source on a shared mount: make the directory one.
    mkdirSync(ws('view'));
    mkdirSync(ws('run2'), { mode: 0o750 });
    chmodSync(ws('run2'), 0o750);
    await run('mount', ['--bind', ws('view'), ws('view')]);
    viewBound = true;
    expect((await run('mount', ['--make-rshared', ws('view')])).code).toBe(0);

    await dockerOk([
      'run',
      '-d',
      '--name',
      EXPOSED,
      ...fuseRun,
      // The caller's pid in a FUSE request is translated into the daemon's
      // pid namespace; a host process has none in the container's, and aclfs
      // denies a caller whose groups it cannot read (fail closed).
      '--pid',
      'host',
      '-v',
      `${ws('data')}:/data`,
      '-v',
      `${DB_VOLUME}:/var/lib/aclfs`,
      '-v',
      `${ws('run2')}:/run/aclfs`,
      '-v',
      `${ws('view')}:/exposed:rshared`,
      '-e',
      'ACLFS_MOUNTPOINT=/exposed/protected',
      IMAGE,
    ]);
    const st = await waitServing(ws('run2', 'aclfs.sock'), EXPOSED);
    expect(st.mountpoint).toBe('/exposed/protected');
    const onHost = ws('view', 'protected');
    expect(hostMounts().filter((m) => m.mountpoint === onHost)).toEqual([{ mountpoint: onHost, fsType: 'fuse.aclfs' }]);

    const asRoot = await run('cat', [path.join(onHost, 'secret.txt')]);
    expect(asRoot).toMatchObject({ code: 0, stdout: SECRET });
    const asNobody = await run('setpriv', ['--reuid', '65534', '--regid', '65534', '--clear-groups', 'cat', path.join(onHost, 'secret.txt')]);
    expect(asNobody.code).not.toBe(0);
    expect(asNobody.stderr).toContain('Permission denied');

    const stop = await stopTimed(EXPOSED);
    expect(stop).toMatchObject({ stopCode: 0, exitCode: 0 });
    expect(stop.seconds).toBeLessThan(10);
    expect(hostMounts().filter((m) => m.mountpoint === onHost)).toEqual([]);
  }, 120_000);

  it('without --init, aclfs is PID 1 and still unmounts and exits 0 on docker stop', async () => {
    mkdirSync(ws('run3'), { mode: 0o750 });
    chmodSync(ws('run3'), 0o750);
    await dockerOk(['run', '-d', '--name', NO_INIT, '--device', '/dev/fuse', '--cap-add', 'SYS_ADMIN', '-v', `${ws('data')}:/data`, '-v', `${ws('run3')}:/run/aclfs`, IMAGE]);
    await waitServing(ws('run3', 'aclfs.sock'), NO_INIT);
    expect((await dockerOk(['exec', NO_INIT, 'cat', '/proc/1/cmdline'])).split('\0')).toContain('mount');
    const stop = await stopTimed(NO_INIT);
    expect(stop).toMatchObject({ stopCode: 0, exitCode: 0 });
    expect(stop.seconds).toBeLessThan(10);
    expect((await docker(['logs', NO_INIT])).stderr).toContain('"msg":"unmounted"');
  }, 60_000);

  it('docker/compose.yaml validates and serves with named volumes (docker-compose)', async () => {
    const compose = (args: string[]): ReturnType<typeof run> =>
      run('docker-compose', ['-f', path.join(ROOT, 'docker', 'compose.yaml'), '-p', PROJECT, ...args], { timeoutMs: 120_000 });
    process.env.ACLFS_IMAGE = IMAGE;
    try {
      const config = await compose(['config']);
      expect(config.code, config.stderr).toBe(0);
      expect(config.stdout).toContain('/dev/fuse');
      expect(config.stdout).toContain('SYS_ADMIN');
      expect(config.stdout).toMatch(/init: true/);

      const up = await compose(['up', '-d', '--no-build']);
      expect(up.code, up.stderr).toBe(0);
      const runVolume = (await dockerOk(['volume', 'inspect', '-f', '{{.Mountpoint}}', `${PROJECT}_run`])).trim();
      // The named volume starts as a copy of the image's 0750 /run/aclfs.
      expect((await run('stat', ['-c', '%a %U', runVolume])).stdout.trim()).toBe('750 root');
      const st = await waitServing(path.join(runVolume, 'aclfs.sock'), `${PROJECT}_aclfs_1`);
      expect(st).toMatchObject({ mounted: true, mountpoint: '/protected' });

      const stop = await compose(['stop']);
      expect(stop.code, stop.stderr).toBe(0);
      expect(await inspect(`${PROJECT}_aclfs_1`, '{{.State.ExitCode}}')).toBe('0');
      const down = await compose(['down', '-v']);
      expect(down.code, down.stderr).toBe(0);
    } finally {
      delete process.env.ACLFS_IMAGE;
    }
  }, 180_000);
});
