#!/usr/bin/env node
// Benchmark of the admin API (the user-mode API on the Unix socket):
//
//   node bench/admin.js [--writes N] [--import N] [--checks N] [--million] [--quick] [--json]
//
// Root only (it starts a real mount daemon: `aclfs mount` over a temp tree,
// with its admin socket in a temp 0750 runtime directory). Measures, against
// that daemon, over its socket, with one keep-alive connection:
//   - rule writes one by one: N sequential POST /v1/rules (default 2,000);
//   - one bulk import of N rules (default 100,000) as a single
//     POST /v1/rules/import: seconds and rules/s (upload, validation and
//     the one LMDB commit), and, with --million, also 1,000,000 rules;
//   - check calls: N sequential POST /v1/check (default 5,000), and the same
//     with 8 requests in flight;
//   - for scale: `aclfs rule add` through the CLI binary, one process per
//     write (50 writes; that is mostly Node start-up).
// --quick: 100 writes, an import of 1,000 rules, 200 checks and 5 CLI
// writes, to check the harness (the figures then say little).
// Everything it starts is stopped and the temp dir removed, also on error or
// SIGINT/SIGTERM.
'use strict';

const { spawn, execFile } = require('node:child_process');
const fs = require('node:fs');
const http = require('node:http');
const os = require('node:os');
const path = require('node:path');
const { parseArgs } = require('node:util');

const { ACLFS_BIN, ROOT } = require('./lib/env');

const FULL = { writes: '2000', import: '100000', checks: '5000', cliWrites: 50 };
/** --quick: a harness check, not a measurement. */
const QUICK = { writes: '100', import: '1000', checks: '200', cliWrites: 5 };

const { values: args } = parseArgs({
  options: {
    writes: { type: 'string' },
    import: { type: 'string' },
    checks: { type: 'string' },
    million: { type: 'boolean', default: false },
    quick: { type: 'boolean', default: false },
    json: { type: 'boolean', default: false },
  },
});
const sizes = args.quick ? QUICK : FULL;
args.writes ??= sizes.writes;
args.import ??= sizes.import;
args.checks ??= sizes.checks;

function log(...parts) {
  if (!args.json) console.log(...parts);
}

let tmp;
let daemon;

async function cleanup() {
  if (daemon && daemon.exitCode === null && daemon.signalCode === null) {
    daemon.kill('SIGTERM');
    await new Promise((resolve) => {
      const t = setTimeout(() => {
        daemon.kill('SIGKILL');
        resolve();
      }, 10_000);
      daemon.once('exit', () => {
        clearTimeout(t);
        resolve();
      });
    });
  }
  if (tmp) {
    await new Promise((resolve) => execFile('fusermount', ['-uz', path.join(tmp, 'mnt')], () => resolve()));
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

for (const sig of ['SIGINT', 'SIGTERM']) {
  process.once(sig, () => {
    void cleanup().then(() => process.exit(130));
  });
}

const agent = new http.Agent({ keepAlive: true, maxSockets: 8 });

function request(socketPath, method, urlPath, body) {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : Buffer.from(typeof body === 'string' ? body : JSON.stringify(body));
    const req = http.request(
      {
        socketPath,
        agent,
        method,
        path: urlPath,
        headers: payload === undefined ? {} : { 'Content-Type': 'application/json', 'Content-Length': payload.length },
      },
      (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          if (res.statusCode >= 300) reject(new Error(`${method} ${urlPath}: HTTP ${res.statusCode} ${text.slice(0, 200)}`));
          else resolve(JSON.parse(text));
        });
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}

async function waitForSocket(socketPath, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await request(socketPath, 'GET', '/v1/status');
    } catch (err) {
      if (Date.now() > deadline) throw new Error(`daemon did not answer on ${socketPath}: ${err.message}`);
      if (daemon.exitCode !== null) throw new Error(`daemon exited ${daemon.exitCode}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

function run(cmd, argv) {
  return new Promise((resolve, reject) => {
    execFile(cmd, argv, { encoding: 'utf8' }, (err, stdout, stderr) => (err ? reject(new Error(`${cmd} ${argv.join(' ')}: ${stderr || err.message}`)) : resolve(stdout)));
  });
}

function ruleFile(n, prefix) {
  const rules = new Array(n);
  for (let i = 0; i < n; i++) {
    rules[i] = { path: `${prefix}/d${Math.floor(i / 1000)}/f${i}`, owner: 0, defaccess: 'r--', acl: [{ user: 1000 + (i % 50), access: 'rw-' }, { group: 100, access: 'r--' }] };
  }
  return JSON.stringify({ version: 1, rules });
}

async function timed(fn) {
  const t0 = process.hrtime.bigint();
  const result = await fn();
  return { seconds: Number(process.hrtime.bigint() - t0) / 1e9, result };
}

async function main() {
  if (process.getuid() !== 0 || !fs.existsSync('/dev/fuse')) throw new Error('bench-admin needs root and /dev/fuse (it starts a real mount daemon)');
  if (!fs.existsSync(path.join(ROOT, 'dist', 'main.js'))) throw new Error('build first: npm run build');
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'aclfs-bench-admin-'));
  const src = path.join(tmp, 'src');
  const mnt = path.join(tmp, 'mnt');
  fs.mkdirSync(path.join(src, 'docs'), { recursive: true });
  fs.mkdirSync(mnt);
  fs.writeFileSync(path.join(src, 'docs', 'a.txt'), 'a\n');
  const socket = path.join(tmp, 'run', 'aclfs.sock');
  daemon = spawn(process.execPath, [ACLFS_BIN, 'mount', src, mnt, '--db', path.join(tmp, 'db'), '--socket', socket, '--log-level', 'warn'], {
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  await waitForSocket(socket, 20_000);
  const results = { node: process.version, cpus: os.cpus().length, cpu: os.cpus()[0]?.model ?? 'unknown' };

  // 1. Rule writes one by one.
  const writes = Number(args.writes);
  const w = await timed(async () => {
    for (let i = 0; i < writes; i++) {
      await request(socket, 'POST', '/v1/rules', { path: `/w/f${i}`, owner: 0, defaccess: 'r--', acl: [{ user: 1000, access: 'rw-' }] });
    }
  });
  results.writesOneByOne = { count: writes, seconds: round(w.seconds), perSecond: Math.round(writes / w.seconds), msEach: round((w.seconds * 1000) / writes) };
  log(`rule writes one by one (POST /v1/rules): ${writes} in ${round(w.seconds)} s = ${results.writesOneByOne.perSecond}/s (${results.writesOneByOne.msEach} ms each)`);

  // 2. check calls.
  await request(socket, 'POST', '/v1/rules', { path: '/docs', owner: 0, defaccess: 'r--', recursive: true, acl: [{ user: 1000, access: 'rw-' }, { group: 100, access: 'r--' }] });
  const checks = Number(args.checks);
  const body = { uid: 1001, gid: 1001, groups: [100], path: '/docs/a.txt', access: 'r' };
  const c = await timed(async () => {
    for (let i = 0; i < checks; i++) await request(socket, 'POST', '/v1/check', body);
  });
  results.checksOneByOne = { count: checks, seconds: round(c.seconds), perSecond: Math.round(checks / c.seconds) };
  log(`check calls one by one (POST /v1/check): ${checks} in ${round(c.seconds)} s = ${results.checksOneByOne.perSecond}/s`);
  const inFlight = 8;
  const c8 = await timed(async () => {
    let next = 0;
    await Promise.all(
      Array.from({ length: inFlight }, async () => {
        while (next++ < checks) await request(socket, 'POST', '/v1/check', body);
      }),
    );
  });
  results.checksConcurrent = { count: checks, inFlight, seconds: round(c8.seconds), perSecond: Math.round(checks / c8.seconds) };
  log(`check calls, ${inFlight} in flight: ${checks} in ${round(c8.seconds)} s = ${results.checksConcurrent.perSecond}/s`);

  // 3. CLI, one process per write (for scale).
  const cliWrites = sizes.cliWrites;
  const cw = await timed(async () => {
    for (let i = 0; i < cliWrites; i++) await run(process.execPath, [ACLFS_BIN, 'rule', 'add', `/cli/f${i}`, '--owner', '0', '--default', 'r--', '--socket', socket]);
  });
  results.cliWrites = { count: cliWrites, seconds: round(cw.seconds), perSecond: round(cliWrites / cw.seconds) };
  log(`aclfs rule add (a process each): ${cliWrites} in ${round(cw.seconds)} s = ${results.cliWrites.perSecond}/s`);

  // 4. Bulk imports.
  const importSizes = [Number(args.import), ...(args.million ? [1_000_000] : [])];
  results.imports = [];
  for (const n of importSizes) {
    const text = ruleFile(n, `/imp${n}`);
    const r = await timed(() => request(socket, 'POST', '/v1/rules/import', text));
    if (r.result.created !== n) throw new Error(`import created ${r.result.created}, expected ${n}`);
    const entry = { rules: n, bodyMiB: round(Buffer.byteLength(text) / 1048576), seconds: round(r.seconds), rulesPerSecond: Math.round(n / r.seconds) };
    results.imports.push(entry);
    log(`import of ${n} rules in one POST /v1/rules/import (${entry.bodyMiB} MiB): ${entry.seconds} s = ${entry.rulesPerSecond} rules/s`);
  }
  const st = await request(socket, 'GET', '/v1/status');
  results.finalRuleCount = st.rules;
  log(`rules in the database at the end: ${st.rules}`);
  if (args.json) console.log(JSON.stringify(results));
}

function round(x) {
  return Math.round(x * 1000) / 1000;
}

main()
  .then(cleanup, async (err) => {
    console.error(`bench-admin: ${err.message}`);
    await cleanup();
    process.exitCode = 1;
  })
  .finally(() => agent.destroy());
