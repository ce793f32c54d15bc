// The daemon's metrics on a real mount: scraped over the admin socket and
// over --metrics-listen, read by a real Prometheus text parser; every family
// is there, and the counters move with what users do through the mount (a
// denied open raises the deny counter, allowed opens raise the allows or the
// fast path's hits, FUSE requests by op rise, an open file shows as a handle).
import http from 'node:http';
import net from 'node:net';
import { chmodSync, existsSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { httpUnix } from '../helpers/admin';
import { describeWithFuse } from '../helpers/facilities';
import { ALICE, BOB, aclfs, Daemon, FileHolder, importRules, isMounted, makeWorkspace, requireFuse, runAs, waitFor, type Workspace } from '../helpers/mounts';
import { DAEMON_FAMILIES, parseScrape, sampleSum, sampleValue, type Family } from '../helpers/prometheus';

/** A TCP port free on the loopback now (the kernel's pick, released at once). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

function httpGet(port: number, urlPath: string): Promise<{ status: number; type: string; text: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: urlPath, agent: false }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type']), text }));
    });
    req.on('error', reject);
  });
}

describeWithFuse('metrics', () => {
  let ws: Workspace;
  let daemon: Daemon;
  let port: number;

  const overSocket = async (): Promise<Map<string, Family>> => {
    const res = await httpUnix(ws.socket, 'GET', '/metrics');
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/);
    return parseScrape(res.text);
  };
  const overTcp = async (): Promise<Map<string, Family>> => {
    const res = await httpGet(port, '/metrics');
    expect(res.status).toBe(200);
    expect(res.type).toMatch(/^text\/plain; version=0\.0\.4/);
    return parseScrape(res.text);
  };

  beforeAll(async () => {
    requireFuse();
    ws = makeWorkspace('aclfs-metrics-');
    for (const f of ['open.txt', 'secret.txt']) {
      writeFileSync(path.join(ws.src, f), `${f}\n`);
      chmodSync(path.join(ws.src, f), 0o644);
    }
    await importRules(ws.db, [
      { path: '/', recursive: true, owner: 0, defaccess: 'r-x', acl: [] },
      { path: '/secret.txt', owner: 0, defaccess: '---', acl: [{ user: BOB.uid, access: 'r--' }] },
    ]);
    port = await freePort();
    daemon = await Daemon.start([ws.src, ws.mnt, '--db', ws.db, '--socket', ws.socket, '--metrics-listen', String(port)], ws.mnt);
  });

  afterAll(async () => {
    await daemon?.ensureStopped();
    ws?.cleanup();
  });

  it('every family is served, over the admin socket and over --metrics-listen (127.0.0.1 for a port alone)', async () => {
    expect(daemon.stderr).toMatch(new RegExp(`"host":"127\\.0\\.0\\.1","port":${port}.*metrics listening`));
    for (const families of [await overSocket(), await overTcp()]) {
      for (const [name, type] of Object.entries(DAEMON_FAMILIES)) expect(families.get(name)?.type, name).toBe(type);
      expect(families.get('process_resident_memory_bytes')?.type).toBe('GAUGE');
      expect(sampleValue(families, 'aclfs_rules')).toBe(2);
      expect(sampleValue(families, 'aclfs_permissive')).toBe(0);
      expect(sampleValue(families, 'aclfs_open_handles_limit')).toBeGreaterThan(0);
      expect(sampleValue(families, 'aclfs_audit_queue_depth')).toBe(0);
    }
  });

  it('a denied open raises the deny counter and the audit log\'s; allowed opens raise the allows or the fast path\'s hits; requests by op rise', async () => {
    const before = await overSocket();
    const denied = await runAs(ALICE, 'cat', [path.join(ws.mnt, 'secret.txt')]);
    expect(denied.stderr).toMatch(/Permission denied/);
    for (let i = 0; i < 5; i++) expect((await runAs(ALICE, 'cat', [path.join(ws.mnt, 'open.txt')])).stdout).toBe('open.txt\n');
    // The audit log writes its queue every 100 ms: scrape until the denial's record is written.
    let after = await overTcp();
    const delta = (name: string, labels: Record<string, string> = {}): number => sampleSum(after, name, labels) - sampleSum(before, name, labels);
    await waitFor(
      async () => {
        after = await overTcp();
        return delta('aclfs_audit_written_total') >= 1;
      },
      5000,
      "the denial's audit record written",
    );
    expect(delta('aclfs_decisions_total', { result: 'deny', op: 'open' })).toBeGreaterThanOrEqual(1);
    expect(delta('aclfs_audit_written_total')).toBeGreaterThanOrEqual(1);
    // The first allowed open is decided in JS; the rest may be replayed in C.
    expect(delta('aclfs_decisions_total', { result: 'allow', op: 'open' })).toBeGreaterThanOrEqual(1);
    expect(delta('aclfs_decisions_total', { result: 'allow', op: 'open' }) + delta('aclfs_fast_path_hits_total', { op: 'open' })).toBeGreaterThanOrEqual(5);
    expect(delta('aclfs_fuse_requests_total', { op: 'open' })).toBeGreaterThanOrEqual(2);
    expect(delta('aclfs_fuse_requests_received_total')).toBeGreaterThan(delta('aclfs_fuse_requests_total'));
    expect(delta('aclfs_decision_cache_hits_total') + delta('aclfs_decision_cache_misses_total')).toBeGreaterThanOrEqual(2);
    const latency = (f: Map<string, Family>): number => Number(f.get('aclfs_decision_duration_seconds')!.metrics[0]!.count);
    expect(latency(after) - latency(before)).toBeGreaterThanOrEqual(2);
  });

  it('an open file shows as an open handle until it is closed', async () => {
    const base = sampleValue(await overSocket(), 'aclfs_open_handles')!;
    const { holder, first } = await FileHolder.open(ALICE, path.join(ws.mnt, 'open.txt'), 'r');
    try {
      expect(first.ok).toBe(true);
      expect(sampleValue(await overSocket(), 'aclfs_open_handles')).toBe(base + 1);
    } finally {
      holder.close();
    }
    await waitFor(async () => sampleValue(await overSocket(), 'aclfs_open_handles') === base, 5000, 'the handle released');
  });

  it('/metrics takes GET and HEAD only; the TCP listener serves nothing but /metrics', async () => {
    const head = await httpUnix(ws.socket, 'HEAD', '/metrics');
    expect(head.status).toBe(200);
    expect(head.text).toBe('');
    const post = await httpUnix(ws.socket, 'POST', '/metrics', { body: 'x' });
    expect(post.status).toBe(405);
    expect(post.headers.allow).toBe('GET');
    expect((await httpGet(port, '/v1/status')).status).toBe(404);
    expect((await httpGet(port, '/v1/rules')).status).toBe(404);
  });

  it('a second daemon given the address in use is refused before it mounts anything (exit 4, one line), and so is its --check', async () => {
    const other = makeWorkspace('aclfs-metrics-busy-');
    try {
      const res = await aclfs(['mount', other.src, other.mnt, '--db', other.db, '--socket', other.socket, '--metrics-listen', String(port)]);
      expect(res.code).toBe(4);
      expect(res.stderr.split('\n').filter((l) => l.startsWith('aclfs: '))).toEqual([
        `aclfs: --metrics-listen 127.0.0.1:${port}: the address is in use (another process listens there)`,
      ]);
      expect(isMounted(other.mnt)).toBe(false);
      expect(existsSync(other.socket)).toBe(false);
      // mount --check says so too, mounting nothing.
      const check = await aclfs(['mount', '--check', other.src, other.mnt, '--db', other.db, '--socket', other.socket, '--metrics-listen', String(port)]);
      expect(check).toMatchObject({ code: 4, stdout: '', stderr: `aclfs: --metrics-listen 127.0.0.1:${port}: the address is in use (another process listens there)\n` });
      expect(isMounted(other.mnt)).toBe(false);
      // The first daemon's listener is untouched.
      expect((await httpGet(port, '/metrics')).status).toBe(200);
    } finally {
      other.cleanup();
    }
  });
});
