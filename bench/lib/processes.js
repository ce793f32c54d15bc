// The processes a benchmark starts, and the cleanup that stops all of them.
//
// Two kinds of children: loads (short programs whose output is the result)
// and FUSE daemons (started once, stopped by pid at the end). This process
// only waits for mounts with async calls and never reads through a mount
// itself, so a slow or stuck daemon can block a child, never the code that
// cleans up. Everything started is stopped, the mounts lifted and the work
// dir removed, also on error or SIGINT/SIGTERM (see runMain).
//
// State is per process (one benchmark run each): `daemons`, `loads` and the
// work dir below are only touched from the main thread's event loop.
'use strict';

const { spawn } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const MOUNT_TIMEOUT_MS = 20000;
const DAEMON_EXIT_TIMEOUT_MS = 10000;
/** A load child that runs longer than this is treated as hung (daemon stuck). */
const LOAD_TIMEOUT_MS = 300000;

/** Everything this run started and must stop: { child, name, mountpoint, stderr }. */
const daemons = [];
/** Load children currently running (killed on SIGINT). */
const loads = new Set();
/** The run's temp dir, removed by cleanup; null before makeWorkDir. */
let workDir = null;

function log(text) {
  // Progress goes to stderr so stdout stays the table or the JSON alone.
  process.stderr.write(`bench: ${text}\n`);
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * Starts a command; `done` resolves with its stdout when it exits 0 and
 * rejects with its stderr otherwise. With `stdin: 'pipe'` the caller may
 * write to child.stdin; `onStdout` sees the output as it comes.
 */
function start(cmd, args, { timeoutMs = LOAD_TIMEOUT_MS, stdin = 'ignore', onStdout } = {}) {
  const child = spawn(cmd, args, { stdio: [stdin, 'pipe', 'pipe'] });
  loads.add(child);
  // A child that died before we wrote to it must not crash us with EPIPE.
  child.stdin?.on('error', () => {});
  const done = new Promise((resolve, reject) => {
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => {
      stdout += d;
      onStdout?.(stdout);
    });
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
  return { child, done };
}

/** Runs a command to completion; rejects with its stderr on failure. */
function run(cmd, args, options) {
  return start(cmd, args, options).done;
}

function alive(child) {
  return child.exitCode === null && child.signalCode === null;
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

// ---------------------------------------------------------------- daemons

/** Starts a FUSE daemon in the foreground as our child; keeps its stderr for errors. */
function startDaemon(name, cmd, args, mountpoint, env = process.env) {
  const child = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'], env });
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

/** The running daemon started under `name`, if any. */
function findDaemon(name) {
  return daemons.find((d) => d.name === name && alive(d.child));
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

/**
 * Waits until the kernel lists a FUSE mount at the mountpoint AND statfs
 * through it answers: the first alone can precede the daemon's INIT reply.
 */
async function waitForMount(entry, timeoutMs = MOUNT_TIMEOUT_MS) {
  const deadline = Date.now() + timeoutMs;
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
    if (Date.now() > deadline) throw new Error(`${entry.name} did not mount within ${timeoutMs} ms: ${entry.stderr.trim()}`);
    await sleep(50);
  }
}

/**
 * Unmounts one daemon's mount with fusermount -u and waits for the daemon to
 * exit (both bindfs -f and aclfs end with their mount); a daemon that stays
 * is stopped by pid. It is then no longer ours to clean up.
 */
async function unmountDaemon(entry) {
  await run('fusermount', ['-u', entry.mountpoint]);
  if (!(await waitExit(entry.child, DAEMON_EXIT_TIMEOUT_MS))) {
    log(`${entry.name} (pid ${entry.child.pid}) still running after its unmount; stopping it`);
    entry.child.kill('SIGTERM');
    if (!(await waitExit(entry.child, DAEMON_EXIT_TIMEOUT_MS))) {
      entry.child.kill('SIGKILL');
      await waitExit(entry.child, DAEMON_EXIT_TIMEOUT_MS);
    }
  }
  daemons.splice(daemons.indexOf(entry), 1);
}

/** The daemons still running, for affinity changes (see cpus.js). */
function runningDaemons() {
  return daemons.filter((d) => alive(d.child));
}

/** Appends to a load's error what killed it: usually a daemon that died under it. */
function explainLoadFailure(err) {
  const dead = daemons.filter((d) => !alive(d.child)).map((d) => `${d.name} exited (${d.child.signalCode ?? d.child.exitCode}): ${d.stderr.trim()}`);
  if (dead.length > 0) err.message += `\n${dead.join('\n')}`;
  return err;
}

// ---------------------------------------------------------------- cleanup

/** A fresh temp dir for this run, traversable by the benchmark user; cleanup removes it. */
function makeWorkDir(prefix) {
  if (workDir !== null) throw new Error(`work dir already made: ${workDir}`);
  workDir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  // mkdtemp makes the dir 0700; the benchmark user must traverse it.
  fs.chmodSync(workDir, 0o755);
  return workDir;
}

let cleaning = null;
/** The signal that interrupted the run, if any. */
let interrupted = null;

/** Idempotent: stop every load and daemon by pid, make sure nothing stays mounted, remove the work dir. */
function cleanup() {
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
    const tmp = workDir;
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

/**
 * Runs a benchmark's main: on SIGINT/SIGTERM everything is cleaned up and
 * the process exits 130/143; on error the stack is printed with `name` and
 * the exit code is 1; cleanup runs in every case.
 */
function runMain(name, main) {
  const onSignal = (signal) => {
    if (interrupted) return;
    interrupted = signal;
    log(`${signal}: cleaning up`);
    cleanup().finally(() => process.exit(signal === 'SIGINT' ? 130 : 143));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  (async () => {
    try {
      await main();
    } finally {
      await cleanup();
    }
  })().catch((err) => {
    // After SIGINT the killed load's error is expected; onSignal reports and exits.
    if (interrupted) return;
    process.stderr.write(`${name}: ${err.stack ?? err}\n`);
    process.exitCode = 1;
  });
}

module.exports = {
  LOAD_TIMEOUT_MS,
  alive,
  cleanup,
  explainLoadFailure,
  findDaemon,
  log,
  makeWorkDir,
  readMounts,
  run,
  runMain,
  runningDaemons,
  sleep,
  start,
  startDaemon,
  unmountDaemon,
  waitExit,
  waitForMount,
};
