// Preloaded into the first aclfs daemon of a run (NODE_OPTIONS=--require; see
// variants.js) to record the libfuse option string fuse-native mounts with,
// so bindfs-cache can be given the same cache options. It wraps that one
// function and changes nothing else; any failure leaves the daemon as it was.
'use strict';
const fs = require('node:fs');
try {
  const Fuse = require(require.resolve('fuse-native', { paths: [process.env.ACLFS_BENCH_ROOT] }));
  const original = Fuse.prototype._fuseOptions;
  if (typeof original === 'function') {
    Fuse.prototype._fuseOptions = function (...args) {
      const options = original.apply(this, args);
      try { fs.writeFileSync(process.env.ACLFS_BENCH_FUSE_OPTS, String(options)); } catch {}
      return options;
    };
  }
} catch {}
