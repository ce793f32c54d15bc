// Cold reads: the page cache emptied before the timed read, set up alike for
// every variant.
'use strict';

const fs = require('node:fs');

const { READ_BUF } = require('./env');
const { gatedLoads } = require('./loads');

function dropCaches() {
  // Dirty pages survive drop_caches; setup synced, and the loads only read.
  fs.writeFileSync('/proc/sys/vm/drop_caches', '3');
}

// Cold sequential reads on a VM with free page reporting (a virtio-balloon
// feature, on in this development VM): 2-4 s after memory is freed, the
// guest hands the free pages back to the host, and a page cache filled from
// pages handed back costs a host fault per page, so any reader, the plain
// directory too, then reads at 0.5-1 GB/s instead of 2-3. Which level a cold
// read met used to depend on how much memory the last drop_caches had freed
// and on when the last reporting pass ran: each round's first cold read was
// slow, whatever the variant. So every cold read is set up alike: the load
// opens the file and reads it once (the file's pages, through that variant,
// are then what drop_caches frees), reporting is let go quiet for longer
// than its delay (no pass pending from earlier frees), the caches are
// dropped and the timed read starts at once, on pages not yet handed back.
const PAGE_REPORTED_KIB = '/sys/module/page_reporting/parameters/reported_kib';
const PAGE_REPORTING_QUIET_MS = 2500;
const PAGE_REPORTING_WAIT_MAX_MS = 15000;

/** One cold sequential read of `file` by `uid`: the "seq" load's result ({ bytes, ns, mbps }). */
async function coldRead(tmp, uid, pinCpu, file) {
  const [result] = await gatedLoads(tmp, uid, pinCpu, [['seq', file, String(READ_BUF), 'cold']], {
    onGo: async () => {
      await settlePageReporting();
      dropCaches();
    },
  });
  return result;
}

async function settlePageReporting() {
  const reported = () => {
    try {
      return fs.readFileSync(PAGE_REPORTED_KIB, 'utf8').trim();
    } catch {
      return null; // no such counter on this kernel: nothing to wait for
    }
  };
  let last = reported();
  if (last === null) return;
  const deadline = Date.now() + PAGE_REPORTING_WAIT_MAX_MS;
  let quietSince = Date.now();
  while (Date.now() - quietSince < PAGE_REPORTING_QUIET_MS && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 100));
    const now = reported();
    if (now !== last) {
      last = now;
      quietSince = Date.now();
    }
  }
}

module.exports = { coldRead, dropCaches };
