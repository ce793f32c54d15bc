#!/usr/bin/env node
// Benchmark of fleet sync (docs/fleet.md):
//
//   node bench/sync.js [--changes N] [--rules N] [--json]
//
// Root only, and etcd/etcdctl on PATH (Debian's etcd-server, etcd-client).
// Starts a real etcd on loopback (free ports, a temp data dir, raised
// --max-txn-ops and --max-request-bytes so that one push may hold every
// rule) and an aclfs daemon mounted with --sync on it, then measures:
//   - propagation latency: N changes (default 1,000), one at a time, each a
//     put of one rule key from this process; the latency is from just
//     before the put until the daemon's log line saying it applied that
//     revision arrives here (so it includes the put's round trip, the watch,
//     the LMDB transaction and the log pipe): p50, p99, max;
//   - loading N rules (default 100,000): `aclfs push` of a rule file of N
//     rules (validation, one etcd transaction), then a fresh daemon (empty
//     database) started on the prefix: the daemon's own figure for the full
//     load (paged read at one revision + one LMDB transaction) and the time
//     from its start to the log line.
// Not part of the test run. Everything it starts is stopped by pid and the
// temp dir removed, also on error or SIGINT/SIGTERM.
'use strict';

const { spawn, execFile } = require('node:child_process');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const { createInterface } = require('node:readline');
const { parseArgs } = require('node:util');
const { Etcd3 } = require('etcd3');

const { ACLFS_BIN } = require('./lib/env');

const { values: args } = parseArgs({
  options: {
    changes: { type: 'string', default: '1000' },
    rules: { type: 'string', default: '100000' },
    json: { type: 'boolean', default: false },
  },
});
const CHANGES = Number(args.changes);
const RULES = Number(args.rules);
const PREFIX = '/bench';

function log(...parts) {
  if (!args.json) console.log(...parts);
}

let tmp;
const children = new Set();

function stopChild(child) {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    const t = setTimeout(() => child.kill('SIGKILL'), 10_000);
    child.once('exit', () => {
      clearTimeout(t);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

async function cleanup() {
  // Daemons first (they unmount), etcd last.
  for (const child of [...children].reverse()) await stopChild(child);
  if (tmp) {
    for (const m of ['mnt1', 'mnt2']) await new Promise((resolve) => execFile('fusermount', ['-uz', path.join(tmp, m)], () => resolve()));
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

for (const sig of ['SIGINT', 'SIGTERM']) {
  process.once(sig, () => {
    void cleanup().then(() => process.exit(130));
  });
}

function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

function run(cmd, argv) {
  return new Promise((resolve, reject) => {
    execFile(cmd, argv, { encoding: 'utf8', maxBuffer: 64 << 20 }, (err, stdout, stderr) =>
      err ? reject(new Error(`${cmd} ${argv.join(' ')}: ${stderr || err.message}`)) : resolve(stdout),
    );
  });
}

async function startEtcd() {
  const client = await freePort();
  const peer = await freePort();
  const child = spawn(
    'etcd',
    [
      '--name', 'bench',
      '--data-dir', path.join(tmp, 'etcd'),
      '--listen-client-urls', `http://127.0.0.1:${client}`,
      '--advertise-client-urls', `http://127.0.0.1:${client}`,
      '--listen-peer-urls', `http://127.0.0.1:${peer}`,
      '--initial-advertise-peer-urls', `http://127.0.0.1:${peer}`,
      '--initial-cluster', `bench=http://127.0.0.1:${peer}`,
      '--max-txn-ops', String(Math.max(RULES * 2, 128)),
      '--max-request-bytes', String(256 << 20),
      '--quota-backend-bytes', String(4 << 30),
    ],
    { stdio: ['ignore', 'ignore', 'ignore'] },
  );
  children.add(child);
  const endpoint = `127.0.0.1:${client}`;
  for (let i = 0; ; i++) {
    try {
      await run('etcdctl', ['--endpoints', endpoint, 'endpoint', 'health']);
      return endpoint;
    } catch (err) {
      if (i > 100 || child.exitCode !== null) throw err;
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}

/** Starts a daemon on its own tree; returns it and a line reader of its log. */
async function startDaemon(name, endpoint) {
  const src = path.join(tmp, `src-${name}`);
  const mnt = path.join(tmp, name);
  fs.mkdirSync(src, { recursive: true });
  fs.mkdirSync(mnt, { recursive: true });
  const started = process.hrtime.bigint();
  const child = spawn(
    ACLFS_BIN,
    ['mount', src, mnt, '--db', path.join(tmp, `db-${name}`), '--socket', path.join(tmp, `run-${name}`, 'a.sock'), '--sync', `etcd://${endpoint}${PREFIX}`],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  children.add(child);
  const lines = createInterface({ input: child.stderr });
  const waiters = [];
  // The daemon's last lines, for an error that says what it did instead.
  const recent = [];
  lines.on('line', (line) => {
    const at = process.hrtime.bigint();
    recent.push(line);
    if (recent.length > 10) recent.shift();
    let rec;
    try {
      rec = JSON.parse(line);
    } catch {
      return;
    }
    for (const w of [...waiters]) {
      if (w.match(rec)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve({ rec, at });
        return;
      }
    }
    // A line no one waits for yet: the daemon can apply a put and log it
    // before the put's own answer reaches this process. Kept for the
    // waiter that comes next.
    unclaimed.push({ rec, at });
    if (unclaimed.length > 100) unclaimed.shift();
  });
  const unclaimed = [];
  const next = (match, timeoutMs = 600_000) =>
    new Promise((resolve, reject) => {
      const early = unclaimed.findIndex(({ rec }) => match(rec));
      if (early >= 0) {
        resolve(unclaimed.splice(early, 1)[0]);
        return;
      }
      const w = { match, resolve };
      waiters.push(w);
      setTimeout(() => reject(new Error(`daemon ${name}: no log line in ${timeoutMs} ms; its last lines:\n${recent.join('\n')}`)), timeoutMs).unref();
    });
  return { child, started, next };
}

function percentile(sorted, p) {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

async function main() {
  if (process.getuid() !== 0) throw new Error('run as root (it mounts FUSE)');
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'aclfs-bench-sync-'));
  const endpoint = await startEtcd();
  const etcd = new Etcd3({ hosts: `http://${endpoint}` });
  const results = { date: new Date().toISOString(), host: os.cpus()[0].model, cpus: os.cpus().length };

  // ---- propagation latency ----
  await etcd.put(`${PREFIX}/rules/`).value(JSON.stringify({ path: '/', recursive: true, owner: 0, defaccess: 'r-x' }));
  const d1 = await startDaemon('mnt1', endpoint);
  await d1.next((r) => r.msg === 'fleet sync: following etcd');
  const latencies = [];
  for (let i = 0; i < CHANGES; i++) {
    const value = JSON.stringify({ path: '/docs', owner: 0, defaccess: 'r--', acl: [{ user: 1000 + (i % 100), access: 'rw-' }] });
    const t0 = process.hrtime.bigint();
    const put = await etcd.put(`${PREFIX}/rules/docs`).value(value).exec();
    const revision = Number(put.header.revision);
    const { at } = await d1.next((r) => r.msg === 'fleet sync: applied a revision' && r.revision === revision, 10_000);
    latencies.push(Number(at - t0) / 1e6);
  }
  latencies.sort((a, b) => a - b);
  results.propagation = {
    changes: CHANGES,
    p50Ms: +percentile(latencies, 50).toFixed(2),
    p99Ms: +percentile(latencies, 99).toFixed(2),
    maxMs: +latencies[latencies.length - 1].toFixed(2),
  };
  log(`propagation over ${CHANGES} changes: p50 ${results.propagation.p50Ms} ms, p99 ${results.propagation.p99Ms} ms, max ${results.propagation.maxMs} ms`);
  await stopChild(d1.child);

  // ---- loading many rules ----
  const rules = [{ path: '/', recursive: true, owner: 0, defaccess: 'r-x' }];
  for (let i = 1; i < RULES; i++) {
    rules.push({ path: `/d${Math.floor(i / 1000)}/f${i}`, owner: 0, defaccess: 'r--', acl: [{ user: 1000 + (i % 50), access: 'rw-' }, { group: 100, access: 'r--' }] });
  }
  const file = path.join(tmp, 'rules.json');
  fs.writeFileSync(file, JSON.stringify({ version: 1, rules }));
  const p0 = process.hrtime.bigint();
  const pushed = await run(ACLFS_BIN, ['push', file, '--sync', `etcd://${endpoint}${PREFIX}`]);
  const pushMs = Number(process.hrtime.bigint() - p0) / 1e6;
  log(`aclfs push of ${RULES} rules: ${(pushMs / 1000).toFixed(2)} s (${pushed.trim()})`);
  const d2 = await startDaemon('mnt2', endpoint);
  const { rec, at } = await d2.next((r) => r.msg === 'fleet sync: rule set loaded');
  results.load = {
    rules: rec.rules,
    pushSeconds: +(pushMs / 1000).toFixed(2),
    fullLoadSeconds: +(rec.ms / 1000).toFixed(2),
    fromStartSeconds: +(Number(at - d2.started) / 1e9).toFixed(2),
  };
  log(`full load of ${rec.rules} rules by a fresh daemon: ${results.load.fullLoadSeconds} s (read + one LMDB transaction); ${results.load.fromStartSeconds} s from its start`);
  etcd.close();
  if (args.json) console.log(JSON.stringify(results, null, 2));
}

main()
  .catch((err) => {
    console.error(err.stack || String(err));
    process.exitCode = 1;
  })
  .finally(() => cleanup());
