// What a test needs from the machine beyond Node (root, /dev/fuse, a loop
// device, a Docker engine, systemd), and what happens where it is missing.
//
// Outside CI a suite whose facility is missing is skipped, and the file says
// why once on stderr, so a newcomer can run any tier on any machine. Under
// CI=true nothing is skipped: the suite runs and fails on what is missing
// (requireFuse() and the suites' own checks throw), and .ci/run counts a
// skipped test as a failure anyway.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { describe } from 'vitest';

export const IN_CI = process.env.CI === 'true';

/** `describe` for a suite that needs a facility: run, or skipped with the reason. */
export type FacilityDescribe = (name: string, body: () => void) => void;

function onPath(cmd: string): boolean {
  return spawnSync('sh', ['-c', 'command -v "$1"', 'sh', cmd], { stdio: 'ignore' }).status === 0;
}

/** Why a test that needs root cannot run here, or null when it can. */
export function missingRoot(): string | null {
  const uid = process.getuid?.();
  return uid === 0 ? null : `running as uid ${String(uid)}, not root`;
}

/** Why a test that mounts FUSE cannot run here, or null when it can. */
export function missingFuse(): string | null {
  return missingRoot() ?? (existsSync('/dev/fuse') ? null : 'no /dev/fuse');
}

/** Why a test that loop-mounts an ext4 image cannot run here, or null when it can. */
export function missingLoopDevice(): string | null {
  const notRoot = missingRoot();
  if (notRoot !== null) return notRoot;
  if (!existsSync('/dev/loop-control')) return 'no /dev/loop-control';
  if (!onPath('mkfs.ext4')) return 'no mkfs.ext4 (Debian package e2fsprogs)';
  const free = spawnSync('losetup', ['--find'], { encoding: 'utf8' });
  if (free.status !== 0) return `no free loop device (losetup --find: ${(free.stderr || String(free.error)).trim()})`;
  return null;
}

/**
 * Why the Docker tests cannot run here, or null when they can. An engine
 * that is installed but not running is started by the test itself; under
 * CI=true the test also installs docker.io when it is missing.
 */
export function missingDocker(): string | null {
  return missingFuse() ?? (onPath('dockerd') ? null : 'no Docker engine (dockerd, Debian package docker.io) installed');
}

/** Why the systemd unit tests cannot run here: no systemd-analyze, and not root to install it. */
export function missingSystemd(): string | null {
  if (onPath('systemd-analyze')) return null;
  const notRoot = missingRoot();
  return notRoot === null ? null : `no systemd-analyze (Debian package systemd), and ${notRoot} to install it`;
}

/**
 * Why the fleet sync tests cannot run here: they mount FUSE and run a real
 * etcd (Debian's etcd-server and etcd-client, which scripts/setup.sh
 * installs as root).
 */
export function missingEtcd(): string | null {
  return missingFuse() ?? (onPath('etcd') && onPath('etcdctl') ? null : 'no etcd and etcdctl (Debian packages etcd-server, etcd-client)');
}

function facilityDescribe(needs: string, missing: () => string | null): FacilityDescribe {
  // Asked once per file (each test file runs in its own module registry).
  let reason: string | null | undefined;
  return (name, body) => {
    if (reason === undefined) {
      reason = missing();
      if (reason !== null && !IN_CI) console.warn(`skipped: these tests need ${needs}; here: ${reason}`);
    }
    if (reason === null || IN_CI) describe(name, body);
    else describe.skip(name, body);
  };
}

/** Suites that need root (e.g. to hand a socket to an admin group). */
export const describeAsRoot = facilityDescribe('root', missingRoot);
/** Suites that mount FUSE filesystems: root and /dev/fuse. */
export const describeWithFuse = facilityDescribe('root and /dev/fuse', missingFuse);
/** Suites that loop-mount a filesystem image: root, a free loop device, mkfs.ext4. */
export const describeWithLoopDevice = facilityDescribe('root and a free loop device', missingLoopDevice);
/** Suites that build and run the Docker image: root, /dev/fuse and a Docker engine. */
export const describeWithDocker = facilityDescribe('root, /dev/fuse and a Docker engine', missingDocker);
/** Suites that follow a real etcd through FUSE mounts: root, /dev/fuse, etcd and etcdctl. */
export const describeWithEtcd = facilityDescribe('root, /dev/fuse and etcd', missingEtcd);
/** Suites that check the systemd unit: systemd-analyze (or root to install it). */
export const describeWithSystemd = facilityDescribe('systemd-analyze', missingSystemd);
