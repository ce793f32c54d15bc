// The one errno mapping of the filesystem edge: anything thrown while serving
// a FUSE request becomes the negative errno libfuse expects. Errors from the
// backing filesystem keep their own errno untouched.
import { constants } from 'node:os';

const errno = constants.errno;

export const OK = 0;
export const EACCES = -errno.EACCES;
export const EBADF = -errno.EBADF;
export const EEXIST = -errno.EEXIST;
export const EIO = -errno.EIO;
export const EMFILE = -errno.EMFILE;
export const ENAMETOOLONG = -errno.ENAMETOOLONG;
export const EPERM = -errno.EPERM;
export const EXDEV = -errno.EXDEV;

/** Thrown inside a handler to answer with this (negative) errno. */
export class Refusal {
  constructor(readonly errno: number) {}
}

/** Negative errno for a thrown value (a Refusal too); EIO when it carries none. */
export function toErrno(err: unknown): number {
  if (typeof err === 'object' && err !== null) {
    const { errno: n, code } = err as { errno?: unknown; code?: unknown };
    // Node reports system errors with a negative errno on Linux.
    if (typeof n === 'number' && Number.isInteger(n) && n !== 0) return n < 0 ? n : -n;
    if (typeof code === 'string' && code in errno) return -errno[code as keyof typeof errno];
  }
  return EIO;
}
