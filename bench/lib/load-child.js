// The load program: what every benchmark load runs, in a child process as the
// benchmark user (see loads.js). Copied into the run's temp dir first, not
// run from the checkout, so the unprivileged user can read it whatever the
// checkout's permissions.
//
//   node load-child.js MODE TARGET [ARGS...]
//
// Prints one JSON line with the result (and the uid it ran as); the gated
// modes print "ready" first and wait for a byte on stdin.
'use strict';
const fs = require('node:fs');
const [mode, target, a, b, c, d] = process.argv.slice(2);
function out(o) { process.stdout.write(JSON.stringify({ uid: process.getuid(), ...o }) + '\n'); }
// Prints "ready" and blocks until the bench writes a byte to stdin.
function readyThenWaitForGo() {
  process.stdout.write('ready\n');
  const go = Buffer.alloc(1);
  for (;;) {
    try {
      if (fs.readSync(0, go, 0, 1, null) !== 1) process.exit(3); // bench gone
      return;
    } catch (err) {
      if (err.code !== 'EAGAIN') throw err;
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 1);
    }
  }
}
function smallFiles(dir, size) {
  const names = fs.readdirSync(dir).sort().map((n) => dir + '/' + n);
  const buf = Buffer.alloc(size);
  const one = (file) => {
    const fd = fs.openSync(file, 'r');
    const n = fs.readSync(fd, buf, 0, buf.length, 0);
    fs.closeSync(fd);
    if (n !== buf.length) throw new Error(file + ': short read ' + n);
  };
  return { names, one };
}
if (mode === 'ops') {
  // open + one 4 KiB read + close, cycling over the small files. One untimed
  // pass first so every variant is measured warm (dentries, lookups cached).
  const ops = Number(a);
  const { names, one } = smallFiles(target, Number(b));
  for (const f of names) one(f);
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < ops; i++) one(names[i % names.length]);
  const ns = Number(process.hrtime.bigint() - t0);
  out({ ops, ns, usPerOp: ns / 1000 / ops });
} else if (mode === 'par') {
  // One of several readers: the same operation as "ops", for a fixed time,
  // starting at its own share of the files (reader c of d). Warms up like
  // "ops", prints "ready", and starts when the bench writes a byte to stdin,
  // so that all readers run over the same interval.
  const seconds = Number(a);
  const { names, one } = smallFiles(target, Number(b));
  for (const f of names) one(f);
  readyThenWaitForGo();
  const start = Math.floor((Number(c) * names.length) / Number(d));
  const t0 = process.hrtime.bigint();
  const end = t0 + BigInt(Math.round(seconds * 1e9));
  let ops = 0;
  let now = t0;
  while (now < end) {
    // The clock is read every 8 operations: it would cost a few % of a
    // plain-directory operation.
    for (let k = 0; k < 8; k++, ops++) one(names[(start + ops) % names.length]);
    now = process.hrtime.bigint();
  }
  const ns = Number(now - t0);
  out({ ops, ns, opsPerSec: ops / (ns / 1e9) });
} else if (mode === 'meta') {
  // The metadata walk, exactly as a user would type it; the pipeline's
  // status says whether every stat succeeded.
  const { spawnSync } = require('node:child_process');
  const script = 'set -o pipefail; find "$1" -type f -print0 | xargs -0 stat > /dev/null';
  const t0 = process.hrtime.bigint();
  const r = spawnSync('bash', ['-c', script, 'bash', target], { stdio: ['ignore', 'ignore', 'pipe'] });
  const ns = Number(process.hrtime.bigint() - t0);
  if (r.status !== 0) throw new Error('find | xargs stat: ' + (r.error || 'exit ' + r.status) + ' ' + r.stderr);
  out({ ns, seconds: ns / 1e9 });
} else if (mode === 'count') {
  // Sanity check: how many regular files find sees under the target.
  const { spawnSync } = require('node:child_process');
  const r = spawnSync('find', [target, '-type', 'f', '-printf', '.'], { maxBuffer: 1 << 26 });
  if (r.status !== 0) throw new Error('find: ' + (r.error || 'exit ' + r.status) + ' ' + r.stderr);
  out({ files: r.stdout.length });
} else if (mode === 'seq') {
  // With b = 'cold': reads the file once untimed, then waits for the go;
  // the bench drops the caches and gives the go (see coldRead there), and
  // the timed read starts at once.
  const buf = Buffer.alloc(Number(a));
  const fd = fs.openSync(target, 'r');
  const readAll = () => {
    let bytes = 0;
    for (;;) {
      const n = fs.readSync(fd, buf, 0, buf.length, bytes);
      if (n === 0) return bytes;
      bytes += n;
    }
  };
  if (b === 'cold') {
    readAll();
    readyThenWaitForGo();
  }
  const t0 = process.hrtime.bigint();
  const bytes = readAll();
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
