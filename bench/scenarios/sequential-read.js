// Scenario: sequential read of the big file, MB/s (10^6 bytes/s): cold
// (after drop_caches, set up alike for every variant: see lib/cold.js;
// opts.coldReads times per variant and round, the noisiest figure, all
// samples of one median), then re-read from what the last cold read cached.
'use strict';

const path = require('node:path');

const { BENCH_UID, READ_BUF } = require('../lib/env');
const { coldRead } = require('../lib/cold');
const { load } = require('../lib/loads');

module.exports = {
  name: 'sequential-read',
  metrics: {
    seqColdMBps: { label: 'seq read cold MB/s', better: 'higher', unit: 'MB/s (1e6 B/s)' },
    seqWarmMBps: { label: 'seq re-read MB/s', better: 'higher', unit: 'MB/s (1e6 B/s)' },
  },
  // Ratios of aclfs's median (aclfs-passthrough's where `of` says so) to
  // another variant's median in the same CPU mode. Not to be tuned to the
  // results.
  goals: [
    { n: 3, metric: 'seqColdMBps', pin: 'pinned', vs: 'bindfs', op: '>=', target: 1.0 },
    { n: 3, metric: 'seqColdMBps', pin: 'unpinned', vs: 'bindfs', op: '>=', target: 1.0 },
    { n: 3, metric: 'seqWarmMBps', pin: 'pinned', vs: 'bindfs', op: '>=', target: 1.0 },
    { n: 3, metric: 'seqWarmMBps', pin: 'unpinned', vs: 'bindfs', op: '>=', target: 1.0 },
    { n: 3, metric: 'seqWarmMBps', pin: 'pinned', vs: 'plain', op: '>=', target: 0.8 },
    { n: 3, metric: 'seqWarmMBps', pin: 'unpinned', vs: 'plain', op: '>=', target: 0.8 },
    // With passthrough the kernel reads the backing file itself: within 10%
    // of the plain directory, cold and from the page cache.
    { n: 8, metric: 'seqColdMBps', pin: 'pinned', of: 'aclfs-passthrough', vs: 'plain', op: '>=', target: 0.9 },
    { n: 8, metric: 'seqColdMBps', pin: 'unpinned', of: 'aclfs-passthrough', vs: 'plain', op: '>=', target: 0.9 },
    { n: 8, metric: 'seqWarmMBps', pin: 'pinned', of: 'aclfs-passthrough', vs: 'plain', op: '>=', target: 0.9 },
    { n: 8, metric: 'seqWarmMBps', pin: 'unpinned', of: 'aclfs-passthrough', vs: 'plain', op: '>=', target: 0.9 },
  ],
  async measure({ tmp, roots, opts, order, pinCpu, record }) {
    for (let k = 0; k < opts.coldReads; k++) {
      for (const v of order) {
        const big = path.join(roots[v], 'big.bin');
        const cold = await coldRead(tmp, BENCH_UID, pinCpu, big);
        const reads = [cold];
        record(v, 'seqColdMBps', cold.mbps);
        // The re-read right after the last cold read, from what it cached.
        if (k === opts.coldReads - 1) {
          const warm = await load(tmp, BENCH_UID, pinCpu, ['seq', big, String(READ_BUF)]);
          reads.push(warm);
          record(v, 'seqWarmMBps', warm.mbps);
        }
        for (const r of reads) {
          if (r.bytes !== opts.bigMiB * 1024 * 1024) throw new Error(`${v}: read ${r.bytes} bytes of ${big}`);
        }
      }
    }
  },
};
