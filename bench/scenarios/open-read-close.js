// Scenario: open + one 4 KiB read + close of the small files, one process,
// µs per operation (after one untimed pass, so every variant is measured
// warm: dentries and lookups cached).
'use strict';

const path = require('node:path');

const { BENCH_UID, SMALL_SIZE } = require('../lib/env');
const { load } = require('../lib/loads');

module.exports = {
  name: 'open-read-close',
  metrics: {
    openReadCloseUs: { label: 'open+read 4K+close µs/op', better: 'lower', unit: 'µs/op' },
  },
  // Ratios of aclfs's median (aclfs-passthrough's where `of` says so) to
  // another variant's median in the same CPU mode. Not to be tuned to the
  // results.
  goals: [
    { n: 1, metric: 'openReadCloseUs', pin: 'pinned', vs: 'bindfs', op: '<=', target: 0.8 },
    { n: 1, metric: 'openReadCloseUs', pin: 'unpinned', vs: 'bindfs', op: '<=', target: 1.0 },
    { n: 1, metric: 'openReadCloseUs', pin: 'pinned', vs: 'bindfs-cache', op: '<=', target: 1.2 },
    { n: 1, metric: 'openReadCloseUs', pin: 'unpinned', vs: 'bindfs-cache', op: '<=', target: 1.2 },
    // Passthrough registers the backing file at every open: that must not
    // cost back what the fast path saves.
    { n: 6, metric: 'openReadCloseUs', pin: 'pinned', of: 'aclfs-passthrough', vs: 'bindfs', op: '<=', target: 0.7 },
  ],
  async measure({ tmp, roots, opts, order, pinCpu, record }) {
    for (const v of order) {
      const r = await load(tmp, BENCH_UID, pinCpu, ['ops', path.join(roots[v], 'small'), String(opts.ops), String(SMALL_SIZE)]);
      record(v, 'openReadCloseUs', r.usPerOp);
    }
  },
};
