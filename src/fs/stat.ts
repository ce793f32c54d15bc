// The stat fields the filesystem edge reads, from a stat array in the
// layout shared with the native core (src/native/layout.ts, defined once in
// native/aclfs.h): filled by the binding (statAt, fstat) and handed to the
// kernel as it is.
import { native } from '../native/binding';
import { STAT, STAT_INTS, statU64, statWord } from '../native/layout';
import type { FileIdentity } from '../rules/types';
import { Refusal } from './errno';

/** The fields the rules need: device, inode and birth time. */
export function identityOf(st: Uint32Array): FileIdentity {
  // The birth second as an unsigned 64-bit value, as it has always been
  // written into rule bindings (no object allocated on the open path).
  const birthSec = statU64(st, STAT.BIRTHTIME);
  const birthNsec = statWord(st, STAT.BIRTHTIME + 2);
  return {
    dev: statU64(st, STAT.DEV),
    ino: statU64(st, STAT.INO),
    // 0.0 means the filesystem reports no birth time.
    birth: birthSec === 0 && birthNsec === 0 ? null : `${birthSec}.${String(birthNsec).padStart(9, '0')}`,
  };
}

export function modeOf(st: Uint32Array): number {
  return statWord(st, STAT.MODE);
}

export function uidOf(st: Uint32Array): number {
  return statWord(st, STAT.UID);
}

export function gidOf(st: Uint32Array): number {
  return statWord(st, STAT.GID);
}

export function nlinkOf(st: Uint32Array): number {
  return statWord(st, STAT.NLINK);
}

/** Whether two identities name the same file (device and inode). */
export function sameFile(a: FileIdentity, b: FileIdentity): boolean {
  return a.dev === b.dev && a.ino === b.ino;
}

/** fstat of descriptor `fd` into a new stat; throws the Refusal of its errno. */
export function statOfDescriptor(fd: number): Uint32Array {
  const st = new Uint32Array(STAT_INTS);
  const rc = native.fstat(fd, st);
  if (rc !== 0) throw new Refusal(rc);
  return st;
}
