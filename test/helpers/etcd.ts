// A real etcd for the fleet sync tests: one member on loopback, on free
// ports, with its data in a temporary directory, stopped by its pid (never
// by name). Restarts keep the data and the ports.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { run, waitFor, type RunResult } from './mounts';

/** A TCP port on 127.0.0.1 that nothing listens on right now. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address !== null ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

export class EtcdServer {
  private child: ChildProcess | null = null;
  private exited: Promise<void> = Promise.resolve();
  log = '';

  private constructor(
    readonly dir: string,
    readonly clientPort: number,
    readonly peerPort: number,
    private readonly extraArgs: readonly string[],
  ) {}

  static async start(extraArgs: readonly string[] = []): Promise<EtcdServer> {
    const dir = mkdtempSync(path.join(tmpdir(), 'aclfs-etcd-'));
    const server = new EtcdServer(dir, await freePort(), await freePort(), extraArgs);
    await server.resume();
    return server;
  }

  /** host:port of the client endpoint. */
  get endpoint(): string {
    return `127.0.0.1:${this.clientPort}`;
  }

  /** The --sync URL of `prefix` on this server. */
  url(prefix: string): string {
    return `etcd://${this.endpoint}${prefix}`;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** Starts the member (again, on its data and ports) and waits until it answers. */
  async resume(): Promise<void> {
    const client = `http://${this.endpoint}`;
    const peer = `http://127.0.0.1:${this.peerPort}`;
    const child = spawn(
      'etcd',
      [
        '--name', 'test',
        '--data-dir', path.join(this.dir, 'data'),
        '--listen-client-urls', client,
        '--advertise-client-urls', client,
        '--listen-peer-urls', peer,
        '--initial-advertise-peer-urls', peer,
        '--initial-cluster', `test=${peer}`,
        ...this.extraArgs,
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    child.stderr?.on('data', (d: Buffer) => (this.log = (this.log + d.toString()).slice(-20_000)));
    this.child = child;
    this.exited = new Promise((resolve) => child.once('exit', () => resolve()));
    await waitFor(async () => child.exitCode === null && (await this.ctl(['endpoint', 'health'])).code === 0, 20_000, `etcd on ${this.endpoint}: ${this.log.slice(-2000)}`);
  }

  /** SIGTERM to the member (by pid), and waits for it to exit. */
  async pause(): Promise<void> {
    const child = this.child;
    if (child === null) return;
    this.child = null;
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    await this.exited;
  }

  /** etcdctl against this member. */
  ctl(args: readonly string[], input?: string): Promise<RunResult> {
    return run('etcdctl', ['--endpoints', this.endpoint, '--dial-timeout', '1s', '--command-timeout', '3s', ...args], input === undefined ? {} : { input });
  }

  /** The store's current revision. */
  async revision(): Promise<number> {
    const res = await this.ctl(['endpoint', 'status', '-w', 'json']);
    if (res.code !== 0) throw new Error(`etcdctl endpoint status: ${res.stderr}`);
    return Number((JSON.parse(res.stdout) as { Status: { header: { revision: number } } }[])[0]!.Status.header.revision);
  }

  async stop(): Promise<void> {
    await this.pause();
    rmSync(this.dir, { recursive: true, force: true });
  }
}
