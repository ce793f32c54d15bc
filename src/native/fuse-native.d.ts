// Types for fuse-native 2.2.6 as carried by patches/fuse-native+2.2.6.patch,
// and for the project's side of it (src/native/binding.ts): the class
// declared here is index.js's, which binding.ts extends so that every
// operation (Fuse.Operations) receives the caller of its request first.

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

    /**
     * A stat in the patched binding's own layout (Fuse.STAT_INTS words, see
     * native/aclfs.h and src/native/layout.ts): filled by Fuse.native.statAt/fstat and
     * handed to the kernel as is, at full (ns, 64-bit) precision.
     */
    type StatArray = Uint32Array;

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

    /** nsec may be Fuse.UTIME_NOW or Fuse.UTIME_OMIT. */
    interface TimeSpec {
      readonly sec: number;
      readonly nsec: number;
    }

    /** Negative errno, or 0 for success. */
    type Errno = number;
    type DoneCb = (err: Errno) => void;
    /** A size (>= 0) or a negative errno. */
    type SizeCb = (sizeOrErrno: number) => void;
    type StatCb = (err: Errno, stat?: StatLike | StatArray) => void;
    type OpenCb = (err: Errno, fd?: number) => void;

    interface Operations {
      init?(caller: RequestCaller, cb: DoneCb): void;
      getattr?(caller: RequestCaller, path: string, cb: StatCb): void;
      fgetattr?(caller: RequestCaller, path: string, fd: number, cb: StatCb): void;
      access?(caller: RequestCaller, path: string, mode: number, cb: DoneCb): void;
      statfs?(caller: RequestCaller, path: string, cb: (err: Errno, statfs?: StatfsLike) => void): void;
      readdir?(caller: RequestCaller, path: string, cb: (err: Errno, names?: string[], stats?: StatLike[]) => void): void;
      readlink?(caller: RequestCaller, path: string, cb: (err: Errno, target?: string) => void): void;
      open?(caller: RequestCaller, path: string, flags: number, cb: OpenCb): void;
      opendir?(caller: RequestCaller, path: string, flags: number, cb: OpenCb): void;
      create?(caller: RequestCaller, path: string, mode: number, flags: number, cb: OpenCb): void;
      read?(caller: RequestCaller, path: string, fd: number, buf: Buffer, len: number, pos: number, cb: SizeCb): void;
      write?(caller: RequestCaller, path: string, fd: number, buf: Buffer, len: number, pos: number, cb: SizeCb): void;
      flush?(caller: RequestCaller, path: string, fd: number, cb: DoneCb): void;
      fsync?(caller: RequestCaller, path: string, datasync: number, fd: number, cb: DoneCb): void;
      fsyncdir?(caller: RequestCaller, path: string, datasync: number, fd: number, cb: DoneCb): void;
      release?(caller: RequestCaller, path: string, fd: number, cb: DoneCb): void;
      releasedir?(caller: RequestCaller, path: string, fd: number, cb: DoneCb): void;
      truncate?(caller: RequestCaller, path: string, size: number, cb: DoneCb): void;
      ftruncate?(caller: RequestCaller, path: string, fd: number, size: number, cb: DoneCb): void;
      chmod?(caller: RequestCaller, path: string, mode: number, cb: DoneCb): void;
      chown?(caller: RequestCaller, path: string, uid: number, gid: number, cb: DoneCb): void;
      utimens?(caller: RequestCaller, path: string, atime: TimeSpec, mtime: TimeSpec, cb: DoneCb): void;
      mknod?(caller: RequestCaller, path: string, mode: number, dev: number, cb: DoneCb): void;
      mkdir?(caller: RequestCaller, path: string, mode: number, cb: DoneCb): void;
      rmdir?(caller: RequestCaller, path: string, cb: DoneCb): void;
      unlink?(caller: RequestCaller, path: string, cb: DoneCb): void;
      /** `target` is the link's contents, `path` the new link. */
      symlink?(caller: RequestCaller, target: string, path: string, cb: DoneCb): void;
      /** `existing` gets the new name `path`. */
      link?(caller: RequestCaller, existing: string, path: string, cb: DoneCb): void;
      rename?(caller: RequestCaller, from: string, to: string, cb: DoneCb): void;
      setxattr?(caller: RequestCaller, path: string, name: string, value: Buffer, position: number, flags: number, cb: DoneCb): void;
      /** Fills `buf` (empty: a size query); answers the size or -errno. */
      getxattr?(caller: RequestCaller, path: string, name: string, buf: Buffer, position: number, cb: SizeCb): void;
      listxattr?(caller: RequestCaller, path: string, buf: Buffer, cb: SizeCb): void;
      removexattr?(caller: RequestCaller, path: string, name: string, cb: DoneCb): void;
    }

    /** Synchronous syscalls of the patched binding: 0 (or a size) or -errno. */
    interface NativeCalls {
      fstat(fd: number, out: StatArray): number;
      /**
       * Hands the backing root directory fd to the binding, before mounting:
       * getattr, fgetattr, fsync, release and releasedir are then answered
       * in C, never in JS (open, opendir, read, write and readdir too where
       * the fast path can, see enableFastPath).
       */
      serveAttributes(rootFd: number): number;
      /** [thread locals ever created, thread locals idle in the pool]. */
      threadStats(): [number, number];
      /** The first page of `path` (created 0600), mapped shared; throws on failure. */
      mapSharedPage(path: string): ArrayBuffer;
      /**
       * Turns on the native fast path (before mounting; with serveAttributes):
       * open, read, write and fsync are then answered in C where JS vouched
       * for them, the commit epoch being the first word of `epochPage`.
       */
      enableFastPath(epochPage: ArrayBuffer): number;
      /**
       * Lets C replay this allow while the epoch stays `epoch`; `flags`
       * (ALLOW_PASSTHROUGH) say how the open may be served. 1 if stored.
       */
      publishAllow(uid: number, gid: number, bits: number, path: string, st: StatArray, epoch: number, flags: number): number;
      /**
       * Lets C serve reads/writes (`bits`) on handle `fd` while the epoch
       * stays `epoch`; `flags` as for publishAllow, read when the open is
       * answered.
       */
      vouchHandle(fd: number, bits: number, epoch: number, flags: number): number;
      /** Before mounting: whether allowed opens are served by FUSE passthrough (1) or through the daemon (0), and the smallest file served by passthrough when opened for reading only (bytes). */
      setDataPath(passthrough: number, minSize: number): number;
      /** After mounting: whether the kernel registers a backing file of the tree; -1 when refused (passthrough is off then). */
      probePassthrough(rootFd: number): number;
      /** [state (0 off, 1 pending, 2 on, 3 refused), why refused, passthrough opens, backing registrations]. */
      dataPath(): [number, string | null, number, number];
      /** [uid, gid, pid, bits] of a handle C opened that JS has no record of, else null. */
      fastOpener(fd: number): [number, number, number, number] | null;
      /** [opens, reads, writes] served by the fast path so far, and directory entries listed with their attributes. */
      fastStats(): [number, number, number, number];
      /** Unmaps (MADV_DONTNEED) this process's shared mappings of `path`; bytes unmapped. */
      releaseMappedFile(path: string): number;

      // The backing tree relative to its root descriptor `dirfd`: `path` is
      // a mount path ("/" or "/a/b"), never followed if it is a symlink.
      // Each returns 0 (or a descriptor, a size) or -errno.
      statAt(dirfd: number, path: string, out: StatArray): number;
      /** O_CLOEXEC and O_NOFOLLOW are added to `flags`. */
      openAt(dirfd: number, path: string, flags: number, mode: number): number;
      mkdirAt(dirfd: number, path: string, mode: number): number;
      mknodAt(dirfd: number, path: string, mode: number, dev: number): number;
      symlinkAt(target: string, dirfd: number, path: string): number;
      linkAt(dirfd: number, existing: string, path: string): number;
      /** `directory` 1: rmdir. */
      unlinkAt(dirfd: number, path: string, directory: number): number;
      renameAt(dirfd: number, from: string, to: string): number;
      chmodAt(dirfd: number, path: string, mode: number): number;
      /** 0xffffffff leaves that id unchanged. */
      chownAt(dirfd: number, path: string, uid: number, gid: number): number;
      utimensAt(dirfd: number, path: string, atimeSec: number, atimeNsec: number, mtimeSec: number, mtimeNsec: number): number;
      getxattrAt(dirfd: number, path: string, name: string, buf: Buffer): number;
      setxattrAt(dirfd: number, path: string, name: string, value: Buffer, flags: number): number;
      listxattrAt(dirfd: number, path: string, buf: Buffer): number;
      removexattrAt(dirfd: number, path: string, name: string): number;
      /** The names the mount shows in a directory (no ".", ".."), or -errno. */
      listAt(dirfd: number, path: string): string[] | number;
      /** At most `perUser` open handles per non-root uid and `total` for all (0: no bound); before mounting. */
      setHandleLimits(perUser: number, total: number): number;
      /** Counts handle `fd` for `uid`: 1 to keep it, 0 to refuse it (EMFILE). */
      holdHandle(fd: number, uid: number): number;
      /** Open handles counted for all users together now (what holdHandle kept and release has not given back). */
      openHandles(): number;
      /**
       * [requests begun, requests ended, milliseconds the oldest request
       * still in flight has been in the daemon (0: none)]: the request
       * loop's progress, which the watchdog is fed by.
       */
      requestProgress(): [number, number, number];
      /**
       * Sends `message` as one datagram to the service manager's socket
       * `socket` (a path, or "@name" for an abstract one); 0 or -errno.
       */
      sdNotify(socket: string, message: string): number;
      /**
       * [pid, uid, gid] of the peer of connected Unix socket `fd`
       * (SO_PEERCRED, as of its connect), or -errno. Absent from an addon
       * built before it.
       */
      peerCredentials?(fd: number): [number, number, number] | number;
    }

    interface Options {
      allowOther?: boolean;
      defaultPermissions?: boolean;
      force?: boolean;
      mkdir?: boolean;
      fsname?: string;
      subtype?: string;
      debug?: boolean;
      /** Seconds libfuse trusts its cached attributes for auto_cache (default: attrTimeout). */
      acAttrTimeout?: number;
      /** Milliseconds before an unanswered request gets ETIMEDOUT; false: never. */
      timeout?: number | false;
      entryTimeout?: number;
      attrTimeout?: number;
      autoCache?: boolean;
      kernelCache?: boolean;
      atomicOTrunc?: boolean;
      useIno?: boolean;
      readdirIno?: boolean;
      /** Mount even where something is mounted already (--in-place). */
      allowMountOver?: boolean;
      extraOptions?: string[];
    }

    /** The ops as index.js calls them: upstream's arguments, no caller. */
    interface UpstreamOperations {
      readonly [name: string]: ((...args: unknown[]) => void) | undefined;
    }

    /** The answer to a request: a result (0, a size, -errno) and its values. */
    type Signal = (result: number, ...values: unknown[]) => void;

    /** The addon's own exports (native/calls.c). */
    interface Addon {
      readonly aclfs_patch_level: number;
      readonly aclfs_max_request: number;
      readonly aclfs_stat_layout: { readonly [field: string]: number; readonly INTS: number };
      readonly aclfs_native: NativeCalls;
    }
  }

  /** index.js of the patched fuse-native, and the members binding.ts adapts. */
  class Fuse {
    constructor(mnt: string, ops: Fuse.UpstreamOperations, opts?: Fuse.Options);
    readonly mnt: string;
    protected readonly opts: Fuse.Options;
    protected readonly ops: Fuse.UpstreamOperations;
    /** The caller of the request being dispatched, while its _op_ wrapper runs. */
    protected _caller: Fuse.RequestCaller | null | undefined;
    /** The -o string handed to libfuse. */
    protected _fuseOptions(): string;
    /** A thread locals buffer for the addon. */
    protected _malloc(size: number): Buffer;
    mount(cb: (err: Error | null) => void): void;
    unmount(cb: (err: Error | null) => void): void;
    static unmount(mnt: string, cb: (err: Error | null) => void): void;
    /** Present only on the binding built from the patched source. */
    static readonly ACLFS_PATCH_LEVEL: number | undefined;
    /** Likewise. */
    static readonly addon: Fuse.Addon | undefined;
    static readonly EPERM: number;
  }

  export = Fuse;
}
