// The one module where TypeScript meets the native addon: the patched
// fuse-native binding, built from source at install together with the
// project's C in native/. Everything else imports the addon from here, so a
// change of binding (or of its loader) touches this file only.
//
// The patch keeps fuse-native's index.js to a few hook points (the caller of
// each request, the loader, mounting over a mountpoint, the addon's
// exports); what the project changes in its JS contract is here, in a
// subclass: every op receives its request's caller first, stat arrays are
// in the project's layout, and the _op_ wrappers whose arguments differ from
// upstream's (fgetattr, opendir, create, utimens, getxattr, listxattr) or
// that build stat arrays (getattr, readdir) are replaced.
import FuseNative from 'fuse-native';
import { STAT, STAT_INTS } from './layout';

type Signal = FuseNative.Signal;
type StatLike = Partial<Omit<FuseNative.StatLike, 'atime' | 'mtime' | 'ctime'>> & {
  atime?: number | Date;
  mtime?: number | Date;
  ctime?: number | Date;
};

/** The addon's own exports; absent on an unpatched build (the patch level then says so). */
const addon: Partial<FuseNative.Addon> = FuseNative.addon ?? {};

function setDoubleInt(ints: Uint32Array, at: number, value: number): void {
  ints[at] = value % 4294967296;
  ints[at + 1] = (value - ints[at]!) / 4294967296;
}

function toDateMs(time: number | Date | undefined): number {
  if (typeof time === 'number') return time;
  if (!time) return Date.now();
  return time.getTime();
}

function setTimeMs(ints: Uint32Array, at: number, ms: number): void {
  const sec = Math.floor(ms / 1000);
  setDoubleInt(ints, at, sec);
  ints[at + 2] = Math.round((ms - sec * 1000) * 1e6);
}

/**
 * A stat in the binding's layout (native/aclfs.h): 64-bit dev/ino/rdev,
 * times as seconds + nanoseconds. A Uint32Array already in that layout
 * (Fuse.native.statAt) passes through.
 */
function statArray(stat?: StatLike | Uint32Array): Uint32Array {
  if (stat instanceof Uint32Array && stat.length >= STAT_INTS) return stat;
  const st = stat instanceof Uint32Array ? undefined : stat;
  const ints = new Uint32Array(STAT_INTS);
  ints[STAT.MODE] = st?.mode || 0;
  ints[STAT.UID] = st?.uid || 0;
  ints[STAT.GID] = st?.gid || 0;
  setDoubleInt(ints, STAT.SIZE, st?.size || 0);
  setDoubleInt(ints, STAT.DEV, st?.dev || 0);
  ints[STAT.NLINK] = st?.nlink || 1;
  setDoubleInt(ints, STAT.INO, st?.ino || 0);
  setDoubleInt(ints, STAT.RDEV, st?.rdev || 0);
  ints[STAT.BLKSIZE] = st?.blksize || 0;
  setDoubleInt(ints, STAT.BLOCKS, st?.blocks || 0);
  setTimeMs(ints, STAT.ATIME, toDateMs(st?.atime));
  setTimeMs(ints, STAT.MTIME, toDateMs(st?.mtime));
  setTimeMs(ints, STAT.CTIME, toDateMs(st?.ctime));
  return ints;
}

/** The root's stat upstream answers when no getattr is given. */
const ROOT_STAT: StatLike = { mtime: new Date(0), atime: new Date(0), ctime: new Date(0), mode: 16877, size: 4096 };

type AnyOp = (caller: FuseNative.RequestCaller, ...args: unknown[]) => void;

/**
 * The ops as index.js's _op_ wrappers call them, each passing the caller of
 * the request being dispatched (the binding's _caller, set by index.js
 * around each wrapper, which calls its op synchronously) before upstream's
 * arguments. Only the ops given are present, so upstream's "is it
 * implemented" checks hold.
 */
function callerFirst(ops: FuseNative.Operations, callerOf: () => FuseNative.RequestCaller | null | undefined): FuseNative.UpstreamOperations {
  const withCaller: Record<string, (...args: unknown[]) => void> = {};
  for (const [name, op] of Object.entries(ops) as [string, unknown][]) {
    if (typeof op !== 'function') continue;
    withCaller[name] = (...args: unknown[]): void => {
      const caller = callerOf();
      if (!caller) throw new Error(`fuse-native: op ${name} called outside its request`);
      (op as AnyOp).call(ops, caller, ...args);
    };
  }
  return withCaller;
}

/** The patched binding with the project's JS contract (see the top of this file). */
class Fuse extends FuseNative {
  /** The largest READ or WRITE the binding lets the kernel send, in bytes. */
  static readonly ACLFS_MAX_REQUEST: number = addon.aclfs_max_request ?? 0;
  static readonly STAT_INTS: number = addon.aclfs_stat_layout?.INTS ?? 0;
  /** Offsets (in uint32 words) of a stat array's fields, and INTS, as the addon was compiled (native/aclfs.h). */
  static readonly STAT_LAYOUT: { readonly [field: string]: number } = addon.aclfs_stat_layout ?? {};
  static readonly UTIME_NOW: number = (1 << 30) - 1;
  static readonly UTIME_OMIT: number = (1 << 30) - 2;
  /** The project's calls (native/calls.c). */
  static readonly native: FuseNative.NativeCalls = addon.aclfs_native as FuseNative.NativeCalls;

  /** libfuse options upstream lacks or drops when 0, added to its own. */
  private readonly ownOptions: string[];
  constructor(mnt: string, ops: FuseNative.Operations, opts: FuseNative.Options = {}) {
    const { entryTimeout, attrTimeout, acAttrTimeout, useIno, readdirIno, atomicOTrunc, extraOptions, ...upstream } = opts;
    const holder: { fuse?: Fuse } = {};
    super(mnt, callerFirst(ops, () => holder.fuse?._caller), upstream);
    holder.fuse = this;
    const own: string[] = [];
    // Timeouts of 0 are passed on too.
    if (entryTimeout !== undefined) own.push(`entry_timeout=${entryTimeout}`);
    if (attrTimeout !== undefined) own.push(`attr_timeout=${attrTimeout}`);
    if (acAttrTimeout !== undefined) own.push(`ac_attr_timeout=${acAttrTimeout}`);
    if (useIno) own.push('use_ino');
    if (readdirIno) own.push('readdir_ino');
    if (atomicOTrunc) own.push('atomic_o_trunc');
    if (Array.isArray(extraOptions)) own.push(...extraOptions);
    this.ownOptions = own;
  }

  protected override _fuseOptions(): string {
    const upstream = super._fuseOptions();
    const options = upstream ? [upstream.slice('-o'.length), ...this.ownOptions] : this.ownOptions;
    return options.length ? `-o${options.join(',')}` : '';
  }

  /** A thread locals buffer lives as long as the native side pools it (native/locals.c); upstream kept each one in a set, which leaked them. */
  protected override _malloc(size: number): Buffer {
    return Buffer.alloc(size);
  }

  // ---- the _op_ wrappers whose contract differs from upstream's -----------------
  // index.js calls them by name with the signal and the binding's arguments.

  protected _op_getattr(signal: Signal, path: string): void {
    if (!this.ops.getattr) {
      if (path !== '/') signal(FuseNative.EPERM);
      else signal(0, statArray(ROOT_STAT));
      return;
    }
    this.ops.getattr(path, ((err: number, stat?: StatLike | Uint32Array) => {
      if (err) return signal(err, statArray());
      return signal(0, statArray(stat));
    }));
  }

  /** The op's own fgetattr (upstream called getattr). */
  protected _op_fgetattr(signal: Signal, path: string, fd: number): void {
    if (!this.ops.fgetattr) {
      if (path !== '/') signal(FuseNative.EPERM);
      else signal(0, statArray(ROOT_STAT));
      return;
    }
    this.ops.fgetattr(path, fd, ((err: number, stat?: StatLike | Uint32Array) => {
      if (err) return signal(err);
      return signal(0, statArray(stat));
    }));
  }

  protected _op_readdir(signal: Signal, path: string): void {
    this.ops.readdir!(path, ((err: number, names?: string[], stats?: (StatLike | Uint32Array)[]) => {
      if (err) return signal(err);
      return signal(0, names, stats ? stats.map((stat) => statArray(stat)) : []);
    }));
  }

  /** The binding passes the handle before the flags. */
  protected _op_opendir(signal: Signal, path: string, _fh: number, flags: number): void {
    this.ops.opendir!(path, flags, ((err: number, fd?: number) => signal(err, fd)));
  }

  /** The binding passes the open flags too. */
  protected _op_create(signal: Signal, path: string, mode: number, flags: number): void {
    this.ops.create!(path, mode, flags, ((err: number, fd?: number) => signal(err, fd)));
  }

  /** Times as { sec, nsec }; nsec may be UTIME_NOW or UTIME_OMIT. */
  protected _op_utimens(signal: Signal, path: string, atimeSec: number, atimeNsec: number, mtimeSec: number, mtimeNsec: number): void {
    const atime: FuseNative.TimeSpec = { sec: atimeSec, nsec: atimeNsec };
    const mtime: FuseNative.TimeSpec = { sec: mtimeSec, nsec: mtimeNsec };
    this.ops.utimens!(path, atime, mtime, ((err: number) => signal(err)));
  }

  /** The op fills the kernel's buffer (empty: a size query) and answers the value's size or -errno (ERANGE when it does not fit). */
  protected _op_getxattr(signal: Signal, path: string, name: string, valueBuf: Buffer, position: number): void {
    this.ops.getxattr!(path, name, valueBuf, position, ((result: number) => signal(result, valueBuf.buffer)));
  }

  /** Likewise for the list of names. */
  protected _op_listxattr(signal: Signal, path: string, listBuf: Buffer): void {
    this.ops.listxattr!(path, listBuf, ((result: number) => signal(result, listBuf.buffer)));
  }
}

// The namespace of fuse-native's types, under the class's name.
// eslint-disable-next-line @typescript-eslint/no-namespace
declare namespace Fuse {
  type RequestCaller = FuseNative.RequestCaller;
  type StatLike = FuseNative.StatLike;
  type StatArray = FuseNative.StatArray;
  type StatfsLike = FuseNative.StatfsLike;
  type TimeSpec = FuseNative.TimeSpec;
  type Errno = FuseNative.Errno;
  type DoneCb = FuseNative.DoneCb;
  type SizeCb = FuseNative.SizeCb;
  type StatCb = FuseNative.StatCb;
  type OpenCb = FuseNative.OpenCb;
  type Operations = FuseNative.Operations;
  type NativeCalls = FuseNative.NativeCalls;
  type Options = FuseNative.Options;
}

export { Fuse };

/** The project's own native calls (native/*.c), as the addon exports them. */
export const native = Fuse.native;

export type Operations = Fuse.Operations;
export type RequestCaller = Fuse.RequestCaller;
export type TimeSpec = Fuse.TimeSpec;
