// Helpers for the Docker and host-packaging tests: Debian packages installed
// when missing (as root; a fresh CI machine has none of them), a Docker
// engine started by hand when none answers and stopped by its pid at the
// end, and small wrappers around the docker CLI.
import { spawn, spawnSync } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync } from 'node:fs';
import { run, waitFor, type RunResult } from './mounts';

/** Whether `cmd` is on PATH. */
export function have(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
}

/**
 * Installs the Debian packages whose command is missing ({command: package}).
 * Needs root; fails (never skips) otherwise.
 */
export async function ensureCommands(wanted: Readonly<Record<string, string>>): Promise<string[]> {
  const missing = [...new Set(Object.entries(wanted).filter(([cmd]) => !have(cmd)).map(([, pkg]) => pkg))];
  if (missing.length === 0) return [];
  if (process.getuid?.() !== 0) {
    throw new Error(`missing Debian packages ${missing.join(' ')}; run the tests as root so they can be installed`);
  }
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const apt = (args: string[]): RunResult => {
    const r = spawnSync('apt-get', args, { env, encoding: 'utf8', timeout: 600_000 });
    return { code: r.status ?? 1, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
  };
  const update = apt(['update', '-qq']);
  if (update.code !== 0) throw new Error(`apt-get update failed: ${update.stderr}`);
  const install = apt(['install', '-y', '-qq', '--no-install-recommends', ...missing]);
  if (install.code !== 0) throw new Error(`apt-get install ${missing.join(' ')} failed: ${install.stderr}`);
  return missing;
}

export function docker(args: readonly string[], opts: { timeoutMs?: number; input?: string; env?: NodeJS.ProcessEnv } = {}): Promise<RunResult> {
  if (opts.env === undefined) return run('docker', args, { timeoutMs: opts.timeoutMs ?? 120_000, input: opts.input });
  return new Promise((resolve) => {
    const child = spawn('docker', [...args], { env: opts.env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 120_000);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? 1, stdout, stderr });
    });
    child.stdin.end(opts.input ?? '');
  });
}

/** Runs `docker ARGS`, throwing with its output if it fails. */
export async function dockerOk(args: readonly string[], opts: { timeoutMs?: number; env?: NodeJS.ProcessEnv } = {}): Promise<string> {
  const r = await docker(args, opts);
  if (r.code !== 0) throw new Error(`docker ${args.join(' ')} exited ${r.code}: ${r.stderr.trim() || r.stdout.trim()}`);
  return r.stdout;
}

/**
 * An exclusive lock (flock(1) on `file`) held until release() or until this
 * process ends (the holder is a `cat` reading our pipe). Test runs on one
 * machine that would share, start or stop the same Docker engine take turns.
 */
export async function holdLock(file: string, timeoutMs: number): Promise<() => void> {
  const child = spawn('flock', ['-x', '-w', String(Math.ceil(timeoutMs / 1000)), file, 'sh', '-c', 'echo locked; exec cat >/dev/null'], {
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let err = '';
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  await new Promise<void>((resolve, reject) => {
    child.stdout.once('data', () => resolve());
    child.once('exit', (code) => reject(new Error(`could not lock ${file} (flock exited ${String(code)}): ${err}`)));
  });
  return () => {
    child.stdin.end();
  };
}

async function engineAnswers(): Promise<boolean> {
  return (await docker(['info', '--format', '{{.ServerVersion}}'], { timeoutMs: 15_000 })).code === 0;
}

/**
 * The Docker engine for a test file: the running one if it answers, else a
 * dockerd started here (in the background, its log in `logFile`) and
 * stopped by its pid in stop(). Never touches an engine it did not start.
 */
export class Engine {
  private pid: number | null = null;

  constructor(private readonly logFile: string) {}

  get startedHere(): boolean {
    return this.pid !== null;
  }

  async ensure(): Promise<void> {
    if (await engineAnswers()) return;
    const fd = openSync(this.logFile, 'a');
    const child = spawn('dockerd', [], { detached: true, stdio: ['ignore', fd, fd] });
    closeSync(fd);
    if (child.pid === undefined) throw new Error('dockerd did not start');
    this.pid = child.pid;
    let exited: number | null | undefined;
    child.once('exit', (code) => (exited = code));
    child.unref();
    try {
      await waitFor(async () => exited !== undefined || (await engineAnswers()), 90_000, 'the Docker engine to answer');
    } catch (err) {
      await this.stop();
      throw err;
    }
    if (exited !== undefined) {
      this.pid = null;
      throw new Error(`dockerd exited ${String(exited)}: ${this.logTail()}`);
    }
  }

  logTail(): string {
    try {
      return readFileSync(this.logFile, 'utf8').split('\n').slice(-20).join('\n');
    } catch {
      return '(no log)';
    }
  }

  /** SIGTERM to the dockerd started here (only), then SIGKILL after 30 s. */
  async stop(): Promise<void> {
    const pid = this.pid;
    if (pid === null) return;
    this.pid = null;
    const alive = (): boolean => existsSync(`/proc/${pid}`) && !/^State:\s+Z/m.test(safeRead(`/proc/${pid}/status`));
    try {
      process.kill(pid, 'SIGTERM');
    } catch {
      return;
    }
    try {
      await waitFor(() => !alive(), 30_000, `dockerd (pid ${pid}) to exit`);
    } catch {
      process.kill(pid, 'SIGKILL');
    }
  }
}

function safeRead(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}

export interface MountEntry {
  readonly mountpoint: string;
  readonly fsType: string;
}

/** Mounts listed in a mountinfo text. */
export function parseMountinfo(text: string): MountEntry[] {
  return text
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((line) => {
      const fields = line.split(' ');
      const sep = fields.indexOf('-');
      return { mountpoint: (fields[4] ?? '').replace(/\\040/g, ' '), fsType: fields[sep + 1] ?? '' };
    });
}

export function hostMounts(): MountEntry[] {
  return parseMountinfo(readFileSync('/proc/self/mountinfo', 'utf8'));
}

