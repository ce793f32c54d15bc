// Scenario: `find DIR -type f -print0 | xargs -0 stat > /dev/null` over the
// metadata tree on a cold mount, seconds: before every run that variant is
// unmounted and mounted again (a fresh daemon: nothing in its caches or
// libfuse's node table) and the caches dropped (no dentries, inodes or pages
// in the kernel).
'use strict';

const path = require('node:path');

const { BENCH_UID } = require('../lib/env');
const { dropCaches } = require('../lib/cold');
const { load } = require('../lib/loads');
const { remount } = require('../lib/variants');

module.exports = {
  name: 'metadata-walk',
  metrics: {
    metaSec: { label: 'find|xargs stat, cold mount, s', better: 'lower', unit: 's' },
  },
  // Ratios of aclfs's median to another variant's median in the same CPU
  // mode. Not to be tuned to the results. (aclfs-passthrough is measured
  // too: passthrough changes nothing of a walk, which opens no file.)
  goals: [
    { n: 4, metric: 'metaSec', pin: 'pinned', vs: 'bindfs', op: '<=', target: 1.0 },
    { n: 4, metric: 'metaSec', pin: 'unpinned', vs: 'bindfs', op: '<=', target: 1.0 },
  ],
  async measure({ tmp, roots, specs, order, pinCpu, daemonCpus, record }) {
    for (const v of order) {
      if (v !== 'plain') await remount(v, specs, daemonCpus);
      dropCaches();
      const r = await load(tmp, BENCH_UID, pinCpu, ['meta', path.join(roots[v], 'meta')]);
      record(v, 'metaSec', r.seconds);
    }
  },
};
