// Loaded into every Node process of `npm run test:sanitize`
// (NODE_OPTIONS=--require). The ASan runtime must be preloaded into the Node
// processes that may load the sanitized addon, but preloading it into every
// other program the tests start (hundreds of `cat`, `sh`, `setpriv`) only
// slows each of them down at start, past the tests' time limits. So
// LD_PRELOAD is passed on only to commands that run Node (this Node binary,
// `node`, or bin/aclfs, possibly behind a wrapper such as setpriv, prlimit
// or taskset), and stripped from everything else spawned asynchronously
// (execFile, spawn: every test helper).
'use strict';
const { ChildProcess } = require('node:child_process');

function runsNode(options) {
  const argv = [options.file, ...(Array.isArray(options.args) ? options.args : [])];
  return argv.some((arg) => arg === process.execPath || arg === 'node' || (typeof arg === 'string' && arg.endsWith('/bin/aclfs')));
}

if (process.env.LD_PRELOAD) {
  const spawn = ChildProcess.prototype.spawn;
  ChildProcess.prototype.spawn = function spawnWithoutPreload(options) {
    if (options && Array.isArray(options.envPairs) && !runsNode(options)) {
      options.envPairs = options.envPairs.filter((pair) => !pair.startsWith('LD_PRELOAD='));
    }
    return spawn.call(this, options);
  };
}
