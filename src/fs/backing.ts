// The backing tree: every syscall the filter makes on it, relative to the
// root directory's descriptor (the binding's *at calls). Paths are mount
// paths ("/" or "/a/b"); the tree serves exactly the paths the directory
// serves, up to PATH_MAX below its root, whatever the length of the
// directory's own path. Symlinks are never followed. Each call throws a
// Refusal carrying the syscall's errno.
import { Fuse, native } from '../native/binding';
import { STAT_INTS } from '../native/layout';
import type { FileIdentity } from '../rules/types';
import { Refusal } from './errno';
import { identityOf } from './stat';

/** 0 or a non-negative result, or throws the Refusal of a negative errno. */
function check(rc: number): number {
  if (rc < 0) throw new Refusal(rc);
  return rc;
}

export class BackingTree {
  /** `rootFd`: a descriptor of the root directory, kept open by the caller. */
  constructor(readonly rootFd: number) {}

  /** lstat into a new stat array (STAT_INTS words, src/native/layout.ts). */
  stat(path: string): Uint32Array {
    const st = new Uint32Array(STAT_INTS);
    check(native.statAt(this.rootFd, path, st));
    return st;
  }

  /** stat(), or null when the file does not exist (or cannot be seen). */
  statIfExists(path: string): Uint32Array | null {
    const st = new Uint32Array(STAT_INTS);
    return native.statAt(this.rootFd, path, st) === 0 ? st : null;
  }

  /** A new descriptor (O_NOFOLLOW and O_CLOEXEC added). */
  open(path: string, flags: number, mode = 0): number {
    return check(native.openAt(this.rootFd, path, flags, mode));
  }

  mkdir(path: string, mode: number): void {
    check(native.mkdirAt(this.rootFd, path, mode));
  }

  mknod(path: string, mode: number, dev: number): void {
    check(native.mknodAt(this.rootFd, path, mode, dev));
  }

  symlink(target: string, path: string): void {
    check(native.symlinkAt(target, this.rootFd, path));
  }

  link(existing: string, path: string): void {
    check(native.linkAt(this.rootFd, existing, path));
  }

  unlink(path: string): void {
    check(native.unlinkAt(this.rootFd, path, 0));
  }

  rmdir(path: string): void {
    check(native.unlinkAt(this.rootFd, path, 1));
  }

  rename(from: string, to: string): void {
    check(native.renameAt(this.rootFd, from, to));
  }

  chmod(path: string, mode: number): void {
    check(native.chmodAt(this.rootFd, path, mode));
  }

  /** -1 leaves that id unchanged. */
  chown(path: string, uid: number, gid: number): void {
    check(native.chownAt(this.rootFd, path, uid >>> 0, gid >>> 0));
  }

  utimens(path: string, atime: Fuse.TimeSpec, mtime: Fuse.TimeSpec): void {
    check(native.utimensAt(this.rootFd, path, atime.sec, atime.nsec, mtime.sec, mtime.nsec));
  }

  /** The value's size (an empty buffer asks for the size only). */
  getxattr(path: string, name: string, buf: Buffer): number {
    return check(native.getxattrAt(this.rootFd, path, name, buf));
  }

  setxattr(path: string, name: string, value: Buffer, flags: number): void {
    check(native.setxattrAt(this.rootFd, path, name, value, flags));
  }

  /** The list's size (an empty buffer asks for the size only). */
  listxattr(path: string, buf: Buffer): number {
    return check(native.listxattrAt(this.rootFd, path, buf));
  }

  removexattr(path: string, name: string): void {
    check(native.removexattrAt(this.rootFd, path, name));
  }

  /**
   * The names the mount shows in directory `path`: valid UTF-8, regular
   * files, directories and symlinks (see "what the mount shows" in the
   * binding); no "." or "..".
   */
  list(path: string): string[] {
    const names = native.listAt(this.rootFd, path);
    if (typeof names === 'number') throw new Refusal(names);
    return names;
  }
}

/** The parent directory of a mount path ("/a/b" -> "/a", "/a" -> "/"). */
export function parentOf(path: string): string {
  const i = path.lastIndexOf('/');
  return i <= 0 ? '/' : path.slice(0, i);
}

/**
 * Identity lookups in the backing tree, for binding rules to files (the
 * same dev/ino/birth the filter decides with), or null when absent.
 */
export function identityLookup(tree: BackingTree): (path: string) => FileIdentity | null {
  return (path) => {
    const st = tree.statIfExists(path);
    return st === null ? null : identityOf(st);
  };
}
