// The binding's stat layout, as the filesystem edge reads it: a stat is
// Fuse.STAT_INTS 32-bit words, filled by the binding (statAt, fstat) and
// handed to the kernel as it is. 64-bit values take two words, low first;
// a time is a 64-bit second and a word of nanoseconds. Only the fields the
// filter reads are named here.
import { Fuse, native } from '../native/binding';
import type { FileIdentity } from '../rules/types';
import { Refusal } from './errno';

/** Word offsets in the binding's stat layout. */
export const STAT = {
  mode: 0,
  uid: 1,
  gid: 2,
  /** 64-bit. */
  dev: 5,
  nlink: 7,
  /** 64-bit. */
  ino: 8,
  /** Birth time: a 64-bit second, then its nanoseconds (0.0: not reported). */
  birthSec: 24,
  birthNsec: 26,
} as const;

function u64(st: Uint32Array, i: number): number {
  return st[i]! + st[i + 1]! * 0x1_0000_0000;
}

/** The fields the rules need: device, inode and birth time. */
export function identityOf(st: Uint32Array): FileIdentity {
  const birthSec = u64(st, STAT.birthSec);
  const birthNsec = st[STAT.birthNsec]!;
  return {
    dev: u64(st, STAT.dev),
    ino: u64(st, STAT.ino),
    // 0.0 means the filesystem reports no birth time.
    birth: birthSec === 0 && birthNsec === 0 ? null : `${birthSec}.${String(birthNsec).padStart(9, '0')}`,
  };
}

export function modeOf(st: Uint32Array): number {
  return st[STAT.mode]!;
}

export function uidOf(st: Uint32Array): number {
  return st[STAT.uid]!;
}

export function gidOf(st: Uint32Array): number {
  return st[STAT.gid]!;
}

export function nlinkOf(st: Uint32Array): number {
  return st[STAT.nlink]!;
}

/** Whether two identities name the same file (device and inode). */
export function sameFile(a: FileIdentity, b: FileIdentity): boolean {
  return a.dev === b.dev && a.ino === b.ino;
}

/** fstat of descriptor `fd` into a new stat; throws the Refusal of its errno. */
export function statOfDescriptor(fd: number): Uint32Array {
  const st = new Uint32Array(Fuse.STAT_INTS);
  const rc = native.fstat(fd, st);
  if (rc !== 0) throw new Refusal(rc);
  return st;
}
