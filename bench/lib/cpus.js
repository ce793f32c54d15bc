// CPU placement with taskset: which CPUs this run may use, the one CPU the
// pinned measurements share, and moving daemons between the two.
'use strict';

const { run, runningDaemons } = require('./processes');

/** The CPUs this process may run on, as taskset prints them ("0,1" / "0-3"). */
async function ownAffinity() {
  const out = await run('taskset', ['-c', '-p', String(process.pid)]);
  return out.trim().split(': ').pop();
}

function expandCpuList(list) {
  const cpus = [];
  for (const part of list.split(',')) {
    const [lo, hi] = part.split('-').map(Number);
    for (let c = lo; c <= (hi ?? lo); c++) cpus.push(c);
  }
  return cpus;
}

/**
 * { all, pinCpu }: the allowed CPU list as taskset takes it, and the CPU the
 * pinned measurements run daemon and load on: CPU 1 when there is one (CPU 0
 * takes more interrupts), else the last allowed.
 */
async function cpuPlan() {
  const all = await ownAffinity();
  const list = expandCpuList(all);
  return { all, pinCpu: list.includes(1) ? 1 : list[list.length - 1] };
}

/** Moves every thread of one process onto the given CPU list. */
function setAffinity(pid, cpus) {
  return run('taskset', ['-a', '-p', '-c', cpus, String(pid)]);
}

/** Moves every thread of every running daemon onto the given CPU list. */
async function setDaemonAffinity(cpus) {
  for (const { child } of runningDaemons()) await setAffinity(child.pid, cpus);
}

module.exports = { cpuPlan, setAffinity, setDaemonAffinity };
