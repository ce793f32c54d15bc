// Scenario: the same open + 4 KiB read + close by PAR_READERS processes at
// once over the same interval, ops/s summed over the readers.
'use strict';

const path = require('node:path');

const { BENCH_UID, PAR_READERS } = require('../lib/env');
const { parallelLoad } = require('../lib/loads');

module.exports = {
  name: 'parallel-readers',
  metrics: {
    parOpsPerSec: { label: `${PAR_READERS} readers open+read 4K+close ops/s`, better: 'higher', unit: 'ops/s, all readers' },
  },
  // Ratios of aclfs's median (aclfs-passthrough's where `of` says so) to
  // another variant's median in the same CPU mode. Not to be tuned to the
  // results.
  goals: [
    { n: 2, metric: 'parOpsPerSec', pin: 'pinned', vs: 'bindfs', op: '>=', target: 1.0 },
    { n: 2, metric: 'parOpsPerSec', pin: 'unpinned', vs: 'bindfs', op: '>=', target: 1.0 },
    { n: 7, metric: 'parOpsPerSec', pin: 'pinned', of: 'aclfs-passthrough', vs: 'bindfs', op: '>=', target: 1.5 },
    { n: 7, metric: 'parOpsPerSec', pin: 'unpinned', of: 'aclfs-passthrough', vs: 'bindfs', op: '>=', target: 1.5 },
  ],
  async measure({ tmp, roots, opts, order, pinCpu, record }) {
    for (const v of order) {
      // The readers' rates add up: they run over the same interval.
      const rs = await parallelLoad(tmp, BENCH_UID, pinCpu, { dir: path.join(roots[v], 'small'), seconds: opts.parSeconds, readers: PAR_READERS });
      record(v, 'parOpsPerSec', rs.reduce((sum, r) => sum + r.opsPerSec, 0));
    }
  },
};
