#!/usr/bin/env node
// Benchmark: what does an aclfs mount cost compared with the plain directory
// and with bindfs, the closest stock FUSE passthrough?
//
//   node scripts/bench.js [--runs N] [--quick] [--json]
//
// Root only (it mounts, drops the page cache and switches uid). It builds a
// fresh tree under a temp dir, mounts it with bindfs (default options and
// with kernel-cache options) and with aclfs (deny by default, one recursive
// rule granting the benchmark user r--, so every open through aclfs is a real
// allowed decision), and measures, interleaving the variants in every round:
//   - open + 4 KiB read + close of small files, µs/op, unpinned and with the
//     daemon and the load sharing one CPU;
//   - sequential read of one big file, MB/s (10^6 bytes/s), cold (after
//     drop_caches) and re-read.
// It prints medians over the rounds (--json: one object with medians and raw
// samples). Everything it starts is stopped and the temp dir removed, also on
// error or SIGINT/SIGTERM.
//
// Every load runs in a child process as the benchmark user. This process only
// waits for mounts with async calls and never reads through a mount itself,
// so a slow or stuck daemon can block a child, never the code that cleans up.
'use strict';

const { spawn } = require('node:child_process');
const crypto = require('node:crypto');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { parseArgs } = require('node:util');

const ROOT = path.resolve(__dirname, '..');
const ACLFS_BIN = path.join(ROOT, 'bin', 'aclfs');

/** Benchmark user: owns nothing, has no groups, is named in exactly one ACL entry. */
const BENCH_UID = 2500;
/** A second uid that no rule names: must be refused by aclfs (sanity check). */
const OTHER_UID = 2501;

const SMALL_FILES = 1000;
const SMALL_SIZE = 4096;
const READ_BUF = 128 * 1024;

const FULL = { bigMiB: 256, ops: 20000, runs: 5 };
// --quick: the same shape at a fraction of the cost, to check the harness.
const QUICK = { bigMiB: 32, ops: 2000, runs: 1 };

const VARIANTS = ['plain', 'bindfs', 'bindfs-cache', 'aclfs'];
const PIN_MODES = ['unpinned', 'pinned'];
const METRICS = {
  openReadCloseUs: { label: 'open+read 4K+close µs/op', better: 'lower' },
  seqColdMBps: { label: 'seq read cold MB/s', better: 'higher' },
  seqWarmMBps: { label: 'seq re-read MB/s', better: 'higher' },
};

// bindfs 1.14.7 (libfuse 2.9) accepts all three options below: they are libfuse
// options it passes through (checked: the mount comes up with them, and with
// auto_cache a re-read is served from the kernel's page cache without READ
// requests). attr_timeout/entry_timeout let the kernel keep lookups and
// attributes for 60 s instead of the 1 s bindfs gets by default (checked with
// bindfs -d: stats 1.5 s apart reach the daemon by default, not with these).
const BINDFS_CACHE_OPTS = 'allow_other,auto_cache,attr_timeout=60,entry_timeout=60';

const MOUNT_TIMEOUT_MS = 20000;
const DAEMON_EXIT_TIMEOUT_MS = 10000;
/** A load child that runs longer than this is treated as hung (daemon stuck). */
const LOAD_TIMEOUT_MS = 300000;

// The load program. Written to the temp dir (not run from scripts/) so the
// unprivileged benchmark user can read it whatever the checkout's permissions.
const LOAD_JS = String.raw`'use strict';
const fs = require('node:fs');
const [mode, target, a, b] = process.argv.slice(2);
function out(o) { process.stdout.write(JSON.stringify({ uid: process.getuid(), ...o }) + '\n'); }
if (mode === 'ops') {
  // open + one 4 KiB read + close, cycling over the small files. One untimed
  // pass first so every variant is measured warm (dentries, lookups cached).
  const ops = Number(a);
  const names = fs.readdirSync(target).sort().map((n) => target + '/' + n);
  const buf = Buffer.alloc(Number(b));
  const one = (file) => {
    const fd = fs.openSync(file, 'r');
    const n = fs.readSync(fd, buf, 0, buf.length, 0);
    fs.closeSync(fd);
    if (n !== buf.length) throw new Error(file + ': short read ' + n);
  };
  for (const f of names) one(f);
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < ops; i++) one(names[i % names.length]);
  const ns = Number(process.hrtime.bigint() - t0);
  out({ ops, ns, usPerOp: ns / 1000 / ops });
} else if (mode === 'seq') {
  const buf = Buffer.alloc(Number(a));
  const fd = fs.openSync(target, 'r');
  let bytes = 0;
  const t0 = process.hrtime.bigint();
  for (;;) {
    const n = fs.readSync(fd, buf, 0, buf.length, null);
    if (n === 0) break;
    bytes += n;
  }
  const ns = Number(process.hrtime.bigint() - t0);
  fs.closeSync(fd);
  out({ bytes, ns, mbps: bytes / 1e6 / (ns / 1e9) });
} else if (mode === 'try-open') {
  // Sanity check: prints the error code of one open, or "ok".
  try { fs.closeSync(fs.openSync(target, 'r')); out({ result: 'ok' }); }
  catch (err) { out({ result: err.code }); }
} else {
  throw new Error('unknown mode ' + mode);
}
`;

// ---------------------------------------------------------------- options

function parseOptions(argv) {
  const { values } = parseArgs({
    args: argv,
    options: {
      json: { type: 'boolean', default: false },
      quick: { type: 'boolean', default: false },
      runs: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write('usage: node scripts/bench.js [--runs N] [--quick] [--json]\n');
    process.exit(0);
  }
  const base = values.quick ? QUICK : FULL;
  let runs = base.runs;
  if (values.runs !== undefined) {
    runs = Number(values.runs);
    if (!Number.isInteger(runs) || runs < 1) throw new Error(`--runs must be a positive integer, got ${values.runs}`);
  }
  return { json: values.json, quick: values.quick, runs, bigMiB: base.bigMiB, ops: base.ops };
}

// ---------------------------------------------------------------- processes

/** Everything this run started and must stop: { child, name, mountpoint }. */
const daemons = [];
/** Load children currently running (killed on SIGINT). */
const loads = new Set();

function log(text) {
  // Progress goes to stderr so stdout stays the table or the JSON alone.
  process.stderr.write(`bench: ${text}\n`);
}

/** Runs a command to completion; rejects with its stderr on failure. */
function run(cmd, args, { timeoutMs = LOAD_TIMEOUT_MS } = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    loads.add(child);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', (err) => {
      clearTimeout(timer);
      loads.delete(child);
      reject(err);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      loads.delete(child);
      if (code === 0) resolve(stdout);
      else reject(new Error(`${cmd} ${args.join(' ')} failed (${signal ?? `exit ${code}`}): ${stderr.trim()}`));
    });
  });
}

function alive(child) {
  return child.exitCode === null && child.signalCode === null;
}

/** Starts a FUSE daemon in the foreground as our child; keeps its stderr for errors. */
function startDaemon(name, cmd, args, mountpoint) {
  const child = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  const entry = { name, child, mountpoint, stderr: '' };
  child.stderr.on('data', (d) => {
    entry.stderr = (entry.stderr + d).slice(-8192);
  });
  child.on('error', (err) => {
    entry.stderr += String(err);
  });
  daemons.push(entry);
  return entry;
}

/** Mount points in our namespace, with their filesystem type. */
function readMounts() {
  const mounts = new Map();
  for (const line of fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    if (!line) continue;
    const [left, right] = line.split(' - ');
    const mnt = left.split(' ')[4].replace(/\\([0-7]{3})/g, (_, o) => String.fromCharCode(parseInt(o, 8)));
    mounts.set(mnt, right.split(' ')[0]);
  }
  return mounts;
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * Waits until the kernel lists a FUSE mount at the mountpoint AND statfs
 * through it answers: the first alone can precede the daemon's INIT reply.
 */
async function waitForMount(entry) {
  const deadline = Date.now() + MOUNT_TIMEOUT_MS;
  for (;;) {
    if (!alive(entry.child)) {
      throw new Error(`${entry.name} exited before mounting: ${entry.stderr.trim()}`);
    }
    const type = readMounts().get(entry.mountpoint);
    if (type !== undefined && type.startsWith('fuse')) {
      try {
        await fs.promises.statfs(entry.mountpoint);
        return;
      } catch {
        // not answering yet
      }
    }
    if (Date.now() > deadline) throw new Error(`${entry.name} did not mount within ${MOUNT_TIMEOUT_MS} ms: ${entry.stderr.trim()}`);
    await sleep(50);
  }
}

function waitExit(child, ms) {
  if (!alive(child)) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), ms);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}

/** Moves every thread of every daemon onto the given CPU list. */
async function setDaemonAffinity(cpus) {
  for (const { child } of daemons) {
    if (alive(child)) await run('taskset', ['-a', '-p', '-c', cpus, String(child.pid)]);
  }
}

/** The CPUs this process may run on, as taskset prints them ("0,1" / "0-3"). */
async function ownAffinity() {
  const out = await run('taskset', ['-c', '-p', String(process.pid)]);
  return out.trim().split(': ').pop();
}

function expandCpuList(list) {
  const cpus = [];
  for (const part of list.split(',')) {
    const [lo, hi] = part.split('-').map(Number);
    for (let c = lo; c <= (hi ?? lo); c++) cpus.push(c);
  }
  return cpus;
}

// ---------------------------------------------------------------- setup

function writeTree(dir, opts) {
  const small = path.join(dir, 'src', 'small');
  fs.mkdirSync(small, { recursive: true, mode: 0o755 });
  for (let i = 0; i < SMALL_FILES; i++) {
    // Random bytes: nothing in the stack can shortcut the content.
    fs.writeFileSync(path.join(small, `f${String(i).padStart(4, '0')}`), crypto.randomBytes(SMALL_SIZE), { mode: 0o644 });
  }
  const chunk = crypto.randomBytes(1024 * 1024);
  const fd = fs.openSync(path.join(dir, 'src', 'big.bin'), 'w', 0o644);
  try {
    for (let i = 0; i < opts.bigMiB; i++) fs.writeSync(fd, chunk);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

async function setup(tmp, opts) {
  // mkdtemp makes the dir 0700; the benchmark user must traverse it.
  fs.chmodSync(tmp, 0o755);
  writeTree(tmp, opts);
  fs.writeFileSync(path.join(tmp, 'load.js'), LOAD_JS, { mode: 0o644 });
  // One recursive rule on "/": root owns it, nobody else gets anything by
  // default, the benchmark user gets r-- through its own ACL entry.
  const rules = {
    version: 1,
    rules: [{ path: '/', recursive: true, owner: 0, defaccess: '---', acl: [{ user: BENCH_UID, access: 'r--' }] }],
  };
  fs.writeFileSync(path.join(tmp, 'rules.json'), JSON.stringify(rules));
  await run(process.execPath, [ACLFS_BIN, 'import', path.join(tmp, 'rules.json'), '--db', path.join(tmp, 'db')]);
  for (const m of ['mnt-bindfs', 'mnt-bindfs-cache', 'mnt-aclfs']) fs.mkdirSync(path.join(tmp, m), { mode: 0o755 });
  // Written data must be on disk, or drop_caches cannot evict it.
  await run('sync', []);
}

async function mountAll(tmp) {
  const src = path.join(tmp, 'src');
  const db = path.join(tmp, 'db');
  // -f keeps bindfs in the foreground as our child, so it is stopped by pid.
  const b = startDaemon('bindfs', 'bindfs', ['-f', '-o', 'allow_other', src, path.join(tmp, 'mnt-bindfs')], path.join(tmp, 'mnt-bindfs'));
  const bc = startDaemon('bindfs-cache', 'bindfs', ['-f', '-o', BINDFS_CACHE_OPTS, src, path.join(tmp, 'mnt-bindfs-cache')], path.join(tmp, 'mnt-bindfs-cache'));
  // bin/aclfs directly, as installed (its shebang carries the daemon's V8
  // flags; env execs node, so the pid we hold is the daemon's); a private
  // socket in a directory the daemon creates 0750 keeps clear of any other
  // aclfs on the machine.
  const a = startDaemon(
    'aclfs',
    ACLFS_BIN,
    ['mount', src, path.join(tmp, 'mnt-aclfs'), '--db', db, '--default', 'deny', '--log-level', 'warn', '--socket', path.join(tmp, 'run', 'aclfs.sock')],
    path.join(tmp, 'mnt-aclfs'),
  );
  await Promise.all([waitForMount(b), waitForMount(bc), waitForMount(a)]);
  return {
    plain: src,
    bindfs: b.mountpoint,
    'bindfs-cache': bc.mountpoint,
    aclfs: a.mountpoint,
  };
}

// ---------------------------------------------------------------- measuring

/** Runs the load program as the benchmark user (uid/gid, no groups), optionally pinned. */
async function load(tmp, uid, pinCpu, args) {
  const cmd = [];
  if (pinCpu !== null) cmd.push('taskset', '-c', String(pinCpu));
  cmd.push('setpriv', '--reuid', String(uid), '--regid', String(uid), '--clear-groups', process.execPath, path.join(tmp, 'load.js'), ...args);
  let result;
  try {
    result = JSON.parse(await run(cmd[0], cmd.slice(1)));
  } catch (err) {
    // A load usually fails because a daemon died under it; say which.
    const dead = daemons.filter((d) => !alive(d.child)).map((d) => `${d.name} exited (${d.child.signalCode ?? d.child.exitCode}): ${d.stderr.trim()}`);
    if (dead.length > 0) err.message += `\n${dead.join('\n')}`;
    throw err;
  }
  if (result.uid !== uid) throw new Error(`load ran as uid ${result.uid}, expected ${uid}`);
  return result;
}

/** Proves the aclfs mount decides: the benchmark user is let in, an unnamed user is not. */
async function sanityCheck(tmp, roots) {
  const file = (root) => path.join(root, 'small', 'f0000');
  const checks = [
    [roots.plain, OTHER_UID, 'ok'],
    [roots.bindfs, OTHER_UID, 'ok'],
    [roots.aclfs, BENCH_UID, 'ok'],
    [roots.aclfs, OTHER_UID, 'EACCES'],
  ];
  for (const [root, uid, want] of checks) {
    const { result } = await load(tmp, uid, null, ['try-open', file(root)]);
    if (result !== want) throw new Error(`sanity: uid ${uid} opening ${file(root)} gave ${result}, expected ${want}`);
  }
}

function dropCaches() {
  // Dirty pages survive drop_caches; setup synced, and the loads only read.
  fs.writeFileSync('/proc/sys/vm/drop_caches', '3');
}

function median(xs) {
  const s = [...xs].sort((x, y) => x - y);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

async function measure(tmp, roots, opts, cpus) {
  const samples = {};
  for (const pin of PIN_MODES) {
    samples[pin] = {};
    for (const v of VARIANTS) samples[pin][v] = { openReadCloseUs: [], seqColdMBps: [], seqWarmMBps: [] };
  }
  for (let round = 0; round < opts.runs; round++) {
    // Rotate who goes first each round, so drift (thermal, noisy neighbours,
    // leftover cache state) does not always fall on the same variant.
    const order = VARIANTS.map((_, i) => VARIANTS[(i + round) % VARIANTS.length]);
    for (const pin of PIN_MODES) {
      const pinCpu = pin === 'pinned' ? cpus.pinCpu : null;
      // Pinned: daemon and load compete for one CPU, so every request costs
      // the full context-switch round trip; unpinned: they may overlap.
      await setDaemonAffinity(pin === 'pinned' ? String(cpus.pinCpu) : cpus.all);
      log(`round ${round + 1}/${opts.runs} ${pin}: ${order.join(', ')}`);
      for (const v of order) {
        const r = await load(tmp, BENCH_UID, pinCpu, ['ops', path.join(roots[v], 'small'), String(opts.ops), String(SMALL_SIZE)]);
        samples[pin][v].openReadCloseUs.push(r.usPerOp);
      }
      for (const v of order) {
        const big = path.join(roots[v], 'big.bin');
        dropCaches();
        const cold = await load(tmp, BENCH_UID, pinCpu, ['seq', big, String(READ_BUF)]);
        const warm = await load(tmp, BENCH_UID, pinCpu, ['seq', big, String(READ_BUF)]);
        for (const r of [cold, warm]) {
          if (r.bytes !== opts.bigMiB * 1024 * 1024) throw new Error(`${v}: read ${r.bytes} bytes of ${big}`);
        }
        samples[pin][v].seqColdMBps.push(cold.mbps);
        samples[pin][v].seqWarmMBps.push(warm.mbps);
      }
    }
  }
  return samples;
}

// ---------------------------------------------------------------- report

function summarize(samples) {
  const medians = {};
  const ratios = {};
  for (const pin of PIN_MODES) {
    medians[pin] = {};
    ratios[pin] = {};
    for (const v of VARIANTS) {
      medians[pin][v] = {};
      for (const m of Object.keys(METRICS)) medians[pin][v][m] = median(samples[pin][v][m]);
    }
    for (const m of Object.keys(METRICS)) {
      ratios[pin][m] = {
        'aclfs/bindfs': medians[pin].aclfs[m] / medians[pin].bindfs[m],
        'aclfs/bindfs-cache': medians[pin].aclfs[m] / medians[pin]['bindfs-cache'][m],
        better: METRICS[m].better,
      };
    }
  }
  return { medians, ratios };
}

function fmt(x) {
  if (x >= 1000) return x.toFixed(0);
  if (x >= 100) return x.toFixed(1);
  return x.toFixed(2);
}

/** Aligned text columns: the first two and the last left-aligned, numbers right-aligned. */
function grid(header, rows) {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells) =>
    cells.map((c, i) => (i < 2 || i === cells.length - 1 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ').trimEnd();
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)];
}

function table(meta, summary, samples) {
  const rows = [];
  const ranges = [];
  for (const m of Object.keys(METRICS)) {
    for (const pin of PIN_MODES) {
      const med = summary.medians[pin];
      const r = summary.ratios[pin][m];
      rows.push([
        METRICS[m].label,
        pin,
        ...VARIANTS.map((v) => fmt(med[v][m])),
        `${r['aclfs/bindfs'].toFixed(2)}x`,
        `${r['aclfs/bindfs-cache'].toFixed(2)}x`,
        METRICS[m].better,
      ]);
      // The spread shows which medians can be trusted: on a VM a few metrics
      // are bimodal from one round to the next.
      ranges.push([
        METRICS[m].label,
        pin,
        ...VARIANTS.map((v) => `${fmt(Math.min(...samples[pin][v][m]))}-${fmt(Math.max(...samples[pin][v][m]))}`),
        '',
      ]);
    }
  }
  return [
    `aclfs benchmark, ${meta.date}`,
    `command: ${meta.command}`,
    `host: ${meta.host.cpus} CPUs (${meta.host.cpuModel}), kernel ${meta.host.kernel}, node ${meta.host.node}, ${meta.host.bindfs}`,
    `setup: ${SMALL_FILES} x ${SMALL_SIZE} B files, ${meta.config.bigMiB} MiB file, ${meta.config.ops} ops/sample, ` +
      `${READ_BUF / 1024} KiB reads, uid ${BENCH_UID}, medians of ${meta.config.runs} interleaved round(s)`,
    `pinned = daemon (all threads) and load on CPU ${meta.config.pinCpu}; unpinned = CPUs ${meta.config.allCpus}`,
    `bindfs-cache = bindfs -o ${BINDFS_CACHE_OPTS}; aclfs = --default deny, access granted by one recursive ACL rule`,
    '',
    'medians',
    ...grid(['metric', 'cpus', ...VARIANTS, 'aclfs/bindfs', 'aclfs/bindfs-cache', 'better'], rows),
    '',
    'ratio = aclfs median / bindfs median, raw: for µs/op above 1 means aclfs is slower, for MB/s below 1 means aclfs is slower',
    '',
    'range over rounds (min-max)',
    ...grid(['metric', 'cpus', ...VARIANTS, ''], ranges),
    '',
    `total time ${meta.durationSec.toFixed(1)} s`,
  ].join('\n');
}

function shellQuote(s) {
  return /^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

// ---------------------------------------------------------------- cleanup

let cleaning = null;
/** The signal that interrupted the run, if any. */
let interrupted = null;

/** Idempotent: stop every daemon by pid, make sure nothing stays mounted, remove the temp dir. */
function cleanup(tmp) {
  if (cleaning) return cleaning;
  cleaning = (async () => {
    for (const child of loads) child.kill('SIGKILL');
    for (const d of daemons) {
      // SIGTERM: aclfs unmounts and exits 0; bindfs (libfuse) unmounts too.
      if (alive(d.child)) d.child.kill('SIGTERM');
    }
    for (const d of daemons) {
      if (!(await waitExit(d.child, DAEMON_EXIT_TIMEOUT_MS))) {
        log(`${d.name} (pid ${d.child.pid}) ignored SIGTERM; killing it`);
        d.child.kill('SIGKILL');
        await waitExit(d.child, DAEMON_EXIT_TIMEOUT_MS);
      }
    }
    if (!tmp) return;
    // A daemon killed hard leaves its mount behind; lift it lazily.
    for (const [mnt] of readMounts()) {
      if (mnt.startsWith(tmp + path.sep)) await run('fusermount', ['-uz', mnt]).catch((e) => log(String(e.message)));
    }
    // Never recurse into a live mount: rm would delete through it.
    const left = [...readMounts().keys()].filter((m) => m.startsWith(tmp + path.sep));
    if (left.length > 0) {
      log(`still mounted, leaving ${tmp} in place: ${left.join(', ')}`);
      return;
    }
    fs.rmSync(tmp, { recursive: true, force: true });
  })();
  return cleaning;
}

// ---------------------------------------------------------------- main

async function main() {
  const started = Date.now();
  const opts = parseOptions(process.argv.slice(2));
  if (process.getuid() !== 0) throw new Error('must run as root (mounts, drop_caches, setpriv)');
  if (!fs.existsSync(path.join(ROOT, 'dist', 'main.js'))) throw new Error('dist/ is missing: run npm run build first');

  const meta = {
    date: new Date().toISOString(),
    command: process.argv.map(shellQuote).join(' '),
    cwd: process.cwd(),
    host: {
      cpus: os.cpus().length,
      cpuModel: os.cpus()[0]?.model.trim() ?? 'unknown',
      kernel: os.release(),
      node: process.version,
      bindfs: (await run('bindfs', ['--version'])).trim(),
    },
  };

  let tmp = null;
  const onSignal = (signal) => {
    if (interrupted) return;
    interrupted = signal;
    log(`${signal}: cleaning up`);
    cleanup(tmp).finally(() => process.exit(signal === 'SIGINT' ? 130 : 143));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  try {
    const allCpus = await ownAffinity();
    const cpuList = expandCpuList(allCpus);
    // CPU 1 when there is one (CPU 0 takes more interrupts); else the last allowed.
    const pinCpu = cpuList.includes(1) ? 1 : cpuList[cpuList.length - 1];

    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'aclfs-bench-'));
    log(`setting up in ${tmp} (${SMALL_FILES} small files, ${opts.bigMiB} MiB file)`);
    await setup(tmp, opts);
    log('mounting bindfs, bindfs-cache, aclfs');
    const roots = await mountAll(tmp);
    await sanityCheck(tmp, roots);

    const samples = await measure(tmp, roots, opts, { all: allCpus, pinCpu });
    const summary = summarize(samples);
    meta.config = {
      runs: opts.runs,
      quick: opts.quick,
      ops: opts.ops,
      smallFiles: SMALL_FILES,
      smallSize: SMALL_SIZE,
      bigMiB: opts.bigMiB,
      readBuf: READ_BUF,
      uid: BENCH_UID,
      pinCpu,
      allCpus,
      bindfsCacheOpts: BINDFS_CACHE_OPTS,
      units: { openReadCloseUs: 'µs/op', seqColdMBps: 'MB/s (1e6 B/s)', seqWarmMBps: 'MB/s (1e6 B/s)' },
    };
    await cleanup(tmp);
    meta.durationSec = (Date.now() - started) / 1000;
    if (opts.json) {
      process.stdout.write(`${JSON.stringify({ ...meta, ...summary, samples }, null, 2)}\n`);
    } else {
      process.stdout.write(`${table(meta, summary, samples)}\n`);
    }
  } finally {
    await cleanup(tmp);
  }
}

main().catch((err) => {
  // After SIGINT the killed load's error is expected; onSignal reports and exits.
  if (interrupted) return;
  process.stderr.write(`bench: ${err.stack ?? err}\n`);
  process.exitCode = 1;
});
