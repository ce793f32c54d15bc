// Types for fuse-native 2.2.6 as carried by patches/fuse-native+2.2.6.patch:
// every operation receives the caller of that request first.

declare module 'fuse-native' {
  namespace Fuse {
    interface RequestCaller {
      readonly uid: number;
      readonly gid: number;
      readonly pid: number;
    }

    /** The shape fuse-native serialises into `struct stat` (times in ms). */
    interface StatLike {
      mode: number;
      uid: number;
      gid: number;
      size: number;
      dev: number;
      nlink: number;
      ino: number;
      rdev: number;
      blksize: number;
      blocks: number;
      atime: number;
      mtime: number;
      ctime: number;
    }

    interface StatfsLike {
      bsize: number;
      frsize: number;
      blocks: number;
      bfree: number;
      bavail: number;
      files: number;
      ffree: number;
      favail: number;
      fsid: number;
      flag: number;
      namemax: number;
    }

    /** Negative errno, or 0 for success. */
    type Errno = number;
    type DoneCb = (err: Errno) => void;

    interface Operations {
      init?(caller: RequestCaller, cb: DoneCb): void;
      getattr?(caller: RequestCaller, path: string, cb: (err: Errno, stat?: StatLike) => void): void;
      fgetattr?(caller: RequestCaller, path: string, fd: number, cb: (err: Errno, stat?: StatLike) => void): void;
      access?(caller: RequestCaller, path: string, mode: number, cb: DoneCb): void;
      statfs?(caller: RequestCaller, path: string, cb: (err: Errno, statfs?: StatfsLike) => void): void;
      readdir?(caller: RequestCaller, path: string, cb: (err: Errno, names?: string[], stats?: StatLike[]) => void): void;
      readlink?(caller: RequestCaller, path: string, cb: (err: Errno, target?: string) => void): void;
      open?(caller: RequestCaller, path: string, flags: number, cb: (err: Errno, fd?: number, openFlags?: number) => void): void;
      opendir?(caller: RequestCaller, path: string, flags: number, cb: (err: Errno, fd?: number, openFlags?: number) => void): void;
      read?(
        caller: RequestCaller,
        path: string,
        fd: number,
        buf: Buffer,
        len: number,
        pos: number,
        cb: (bytesOrErr: number) => void,
      ): void;
      release?(caller: RequestCaller, path: string, fd: number, cb: DoneCb): void;
      releasedir?(caller: RequestCaller, path: string, fd: number, cb: DoneCb): void;
    }

    interface Options {
      allowOther?: boolean;
      defaultPermissions?: boolean;
      force?: boolean;
      mkdir?: boolean;
      fsname?: string;
      subtype?: string;
      debug?: boolean;
      /** Milliseconds before an unanswered request gets ETIMEDOUT; false: never. */
      timeout?: number | false;
      entryTimeout?: number;
      attrTimeout?: number;
      negativeTimeout?: number;
      autoCache?: boolean;
      kernelCache?: boolean;
      atomicOTrunc?: boolean;
      useIno?: boolean;
      extraOptions?: string[];
    }
  }

  class Fuse {
    constructor(mnt: string, ops: Fuse.Operations, opts?: Fuse.Options);
    readonly mnt: string;
    mount(cb: (err: Error | null) => void): void;
    unmount(cb: (err: Error | null) => void): void;
    static unmount(mnt: string, cb: (err: Error | null) => void): void;
    /** Present only on the binding built from the patched source. */
    static readonly ACLFS_PATCH_LEVEL: number | undefined;
    static readonly OPEN_DIRECT_IO: number;
    static readonly OPEN_KEEP_CACHE: number;
  }

  export = Fuse;
}
