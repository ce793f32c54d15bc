// Running the load program (load-child.js) as the benchmark user: one at a
// time, or several released together once all of them are ready.
'use strict';

const fs = require('node:fs');
const path = require('node:path');

const { SMALL_SIZE } = require('./env');
const { LOAD_TIMEOUT_MS, explainLoadFailure, run, start } = require('./processes');

/** The parallel readers warm up first; all of them must be ready within this. */
const PAR_READY_TIMEOUT_MS = 120000;
const LOAD_PROGRAM = 'load.js';

/** Copies the load program into the work dir, readable by the benchmark user. */
function installLoadProgram(tmp) {
  fs.writeFileSync(path.join(tmp, LOAD_PROGRAM), fs.readFileSync(path.join(__dirname, 'load-child.js')), { mode: 0o644 });
}

/** The command that runs the load program as the benchmark user (uid/gid, no groups), optionally pinned. */
function loadCommand(tmp, uid, pinCpu, args) {
  const cmd = [];
  if (pinCpu !== null) cmd.push('taskset', '-c', String(pinCpu));
  cmd.push('setpriv', '--reuid', String(uid), '--regid', String(uid), '--clear-groups', process.execPath, path.join(tmp, LOAD_PROGRAM), ...args);
  return cmd;
}

/** The result line a load printed last, checked to come from the right uid. */
function loadResult(stdout, uid) {
  const result = JSON.parse(stdout.trim().split('\n').pop());
  if (result.uid !== uid) throw new Error(`load ran as uid ${result.uid}, expected ${uid}`);
  return result;
}

/** Runs the load program once and returns its result. */
async function load(tmp, uid, pinCpu, args) {
  const cmd = loadCommand(tmp, uid, pinCpu, args);
  let stdout;
  try {
    stdout = await run(cmd[0], cmd.slice(1));
  } catch (err) {
    throw explainLoadFailure(err);
  }
  return loadResult(stdout, uid);
}

/**
 * Runs `readers` load programs in "par" mode at once (see gatedLoads).
 */
function parallelLoad(tmp, uid, pinCpu, { dir, seconds, readers, onGo }) {
  const argsList = [];
  for (let i = 0; i < readers; i++) argsList.push(['par', dir, String(seconds), String(SMALL_SIZE), String(i), String(readers)]);
  return gatedLoads(tmp, uid, pinCpu, argsList, { timeoutMs: seconds * 1000 + LOAD_TIMEOUT_MS, onGo });
}

/**
 * Starts one load program per entry of `argsList`, waits until every one has
 * set itself up and printed "ready", calls `onGo`, then releases them
 * together (a byte on stdin each). Returns their results; if one fails, the
 * others are killed.
 */
async function gatedLoads(tmp, uid, pinCpu, argsList, { timeoutMs = LOAD_TIMEOUT_MS, onGo } = {}) {
  const kids = [];
  const ready = [];
  for (const args of argsList) {
    const cmd = loadCommand(tmp, uid, pinCpu, args);
    let signal;
    ready.push(new Promise((resolve) => (signal = resolve)));
    const kid = start(cmd[0], cmd.slice(1), {
      stdin: 'pipe',
      timeoutMs: PAR_READY_TIMEOUT_MS + timeoutMs,
      onStdout: (text) => text.startsWith('ready\n') && signal(),
    });
    kids.push(kid);
  }
  try {
    let released = false;
    let timer;
    // Not ready in time, or a load ended before the start: give up.
    const stopped = new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`loads not ready within ${PAR_READY_TIMEOUT_MS} ms`)), PAR_READY_TIMEOUT_MS);
      for (const k of kids) {
        k.done.then(
          () => released || reject(new Error('a load exited before the start')),
          (err) => released || reject(err),
        );
      }
    });
    try {
      await Promise.race([Promise.all(ready), stopped]);
    } finally {
      released = true;
      clearTimeout(timer);
    }
    await onGo?.();
    for (const k of kids) k.child.stdin.end('g');
    const outs = await Promise.all(kids.map((k) => k.done));
    return outs.map((o) => loadResult(o, uid));
  } catch (err) {
    for (const k of kids) k.child.kill('SIGKILL');
    await Promise.allSettled(kids.map((k) => k.done));
    throw explainLoadFailure(err);
  }
}

module.exports = { installLoadProgram, load, gatedLoads, parallelLoad };
