// Mount and unmount of the filter, and the checks an administrator expects
// before a daemon takes over a directory: refuse a layout that would loop
// the daemon into its own mount, clear a mount left by a crashed daemon,
// name the processes an in-place mount cannot cover. Every FUSE request is
// served inside the guard (see guard.ts): a fault in one request is that
// request's errno, never the daemon's end.
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { Fuse, native } from '../native/binding';
import { AclfsError } from '../errors';
import { MAX_OPEN_HANDLES } from '../rules/validate';
import { guardOperations, type RequestFault } from './guard';
import type { RequestCounter } from './meters';

const execFileAsync = promisify(execFile);

/** The patch level this code is written against (patches/fuse-native+*.patch). */
export const REQUIRED_PATCH_LEVEL = 16;

/**
 * Refuse to run on a binding without our patch: it would serve every request
 * with no caller identity, and every decision would be made for nobody.
 */
export function assertPatchedBinding(): void {
  if (Fuse.ACLFS_PATCH_LEVEL !== REQUIRED_PATCH_LEVEL) {
    throw new AclfsError(
      'unavailable',
      `fuse-native is not the patched build (patch level ${String(Fuse.ACLFS_PATCH_LEVEL)}, need ${REQUIRED_PATCH_LEVEL}); run npm ci`,
    );
  }
}

/** Whether `child` is `parent` or lies below it (lexically). */
export function isInside(child: string, parent: string): boolean {
  const rel = path.relative(parent, child);
  return rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel));
}

/**
 * Resolves and checks SRC and MNT; returns their real absolute paths. With
 * `inPlace` they must be the same directory (the mount covers SRC itself).
 */
export function checkLayout(source: string, mountpoint: string, inPlace = false): { source: string; mountpoint: string } {
  const src = fs.realpathSync(source);
  if (!fs.statSync(src).isDirectory()) throw new AclfsError('invalid', `source ${source} is not a directory`);
  const mnt = path.resolve(mountpoint);
  if (inPlace) {
    if (mnt !== src) throw new AclfsError('invalid', `--in-place mounts over the source itself: give ${src} twice`);
    return { source: src, mountpoint: mnt };
  }
  // The daemon reaches the backing tree synchronously; if either path lay
  // inside the other, a backing call could come back through the mount and
  // deadlock the daemon on itself.
  if (isInside(mnt, src) || isInside(src, mnt)) {
    throw new AclfsError('invalid', `source ${src} and mountpoint ${mnt} must not contain each other`);
  }
  return { source: src, mountpoint: mnt };
}

/**
 * Whether `mountpoint` is a FUSE mount whose daemon is gone. statfs is
 * asked, not stat: the kernel answers stat from its attribute cache for a
 * while after the daemon died, but always forwards statfs, which then fails
 * ENOTCONN.
 */
export async function isStaleMount(mountpoint: string): Promise<boolean> {
  try {
    await fs.promises.statfs(mountpoint);
    return false;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ENOTCONN';
  }
}

/** Lazily unmounts a FUSE mount whose daemon is gone; true if there was one. */
export async function clearStaleMount(mountpoint: string): Promise<boolean> {
  if (!(await isStaleMount(mountpoint))) return false;
  await execFileAsync('fusermount', ['-uz', mountpoint]);
  return true;
}

/**
 * Refuses a mountpoint where a FUSE filesystem is mounted already (a live
 * aclfs, or another FUSE daemon's). Any other mount there (a bind mount made
 * shared for the host to see the view, a volume) may be covered, as mount(8)
 * would: the filtered view goes on top of it.
 */
export async function assertMountpointFree(mountpoint: string): Promise<void> {
  const st = await fs.promises.stat(mountpoint);
  if (!st.isDirectory()) throw new AclfsError('invalid', `mountpoint ${mountpoint} is not a directory`);
  const fsType = mountTypeAt(mountpoint);
  if (fsType !== null && fsType.startsWith('fuse')) {
    throw new AclfsError('conflict', `${mountpoint} is already a FUSE mountpoint (${fsType})`);
  }
}

/** Filesystem type of the topmost mount exactly at `mountpoint`, or null. */
export function mountTypeAt(mountpoint: string): string | null {
  return topMountAt(mountpoint)?.type ?? null;
}

/**
 * The topmost mount exactly at `mountpoint` in /proc/self/mountinfo: its
 * filesystem type and device ("major:minor"). Read from the kernel's table,
 * so it never touches the mount itself.
 */
export function topMountAt(mountpoint: string): { type: string; device: string } | null {
  const escaped = escapeMountPath(mountpoint);
  let top: { type: string; device: string } | null = null;
  for (const line of fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const fields = line.split(' ');
    if (fields[4] !== escaped) continue;
    // Optional fields end at "-"; the filesystem type follows it.
    const dash = fields.indexOf('-', 6);
    const type = dash > 0 ? fields[dash + 1] : undefined;
    if (type !== undefined && fields[2] !== undefined) top = { type, device: fields[2] };
  }
  return top;
}

/**
 * Raises the readahead of the FUSE mount at `mountpoint` to twice the
 * binding's largest request (2 x 512 KiB), so a sequential read keeps two
 * large READs in flight instead of one of the kernel's default 128 KiB: the
 * kernel offers a FUSE daemon no more than its default at INIT, and only
 * root can raise it, in sysfs. Returns the readahead now in KiB, or null
 * where sysfs is read-only (a container) or not ours; the mount works
 * either way, with smaller reads.
 */
export async function raiseReadahead(mountpoint: string): Promise<number | null> {
  const mount = topMountAt(mountpoint);
  if (mount === null || !mount.type.startsWith('fuse')) return null;
  const kib = (2 * Fuse.ACLFS_MAX_REQUEST) / 1024;
  try {
    await fs.promises.writeFile(`/sys/class/bdi/${mount.device}/read_ahead_kb`, `${kib}\n`);
    return kib;
  } catch {
    return null;
  }
}

function escapeMountPath(p: string): string {
  // mountinfo escapes blanks, tabs, newlines and backslashes as octal.
  return p.replace(/[ \t\n\\]/g, (c) => `\\${c.charCodeAt(0).toString(8).padStart(3, '0')}`);
}

export interface MountOptions {
  readonly mountpoint: string;
  readonly ops: Fuse.Operations;
  /** Layered mode: the kernel checks Unix permissions before the rules. */
  readonly defaultPermissions: boolean;
  /**
   * File data may stay in the kernel page cache across opens (the default
   * revocation mode); false for --revoke immediate.
   */
  readonly pageCache: boolean;
  /**
   * How allowed opens of regular files are served: 'passthrough', the
   * kernel reads and writes the backing file itself (FUSE passthrough,
   * Linux 6.9+: decided at open, a revoke stops new opens only, except for
   * revocable rules, which are always served through the daemon), or
   * 'daemon', every uncached read and write reaches the daemon. Falls back
   * to 'daemon' where the kernel refuses (see dataPath()).
   */
  readonly dataPath: DataPathMode;
  /**
   * With passthrough: a file smaller than this (bytes) opened for reading
   * only is served through the daemon, from the page cache it keeps across
   * opens, unless it is open by passthrough already (see
   * native/passthrough.c). 0: never.
   */
  readonly passthroughMinSize: number;
  /** --in-place: the mountpoint is the source, full of files on purpose. */
  readonly overMount: boolean;
  /**
   * The backing root as an open directory descriptor: the binding answers
   * getattr from it on the libfuse threads (getattr is never gated).
   */
  readonly backingRootFd: number;
  /**
   * The binding's fast path: it replays published allows and serves
   * vouched-for handles by itself while the commit epoch, the first word of
   * `epochPage` (the store's shared epoch page), stays put. null: off, every
   * open, read and write is decided in JS.
   */
  readonly fastPath: { readonly epochPage: ArrayBuffer } | null;
  /** Told of every request fault the guard contained (see guardOperations). */
  readonly onFault: (fault: RequestFault) => void;
  /** The bounds on open handles (see handleCapacity for what the daemon can hold). */
  readonly handleLimits: HandleLimits;
  /** Where the requests that reach JS are counted, by operation (FilterMeters.requestCounter); none: not counted. */
  readonly requestCounter?: (op: string) => RequestCounter;
}

/** The most open handles the binding can count (its handle table); defined with the other limits, where the CLI reads it too. */
export { MAX_OPEN_HANDLES };
/** Descriptors kept for the daemon's own work: the database, the admin socket and its clients, /proc reads. */
const RESERVED_DESCRIPTORS = 1024;

/**
 * How many open handles all users together may hold: what the daemon's
 * descriptor limit (its soft limit in /proc/self/limits, raised to the hard
 * limit at start) leaves after the reserve, at most the binding's table,
 * at least 64.
 */
export function handleCapacity(limits: string = fs.readFileSync('/proc/self/limits', 'utf8')): number {
  const soft = /^Max open files\s+(\S+)/m.exec(limits)?.[1];
  const descriptors = soft === undefined || soft === 'unlimited' ? Number.POSITIVE_INFINITY : Number(soft);
  if (!Number.isFinite(descriptors)) return MAX_OPEN_HANDLES;
  return Math.max(64, Math.min(MAX_OPEN_HANDLES, descriptors - RESERVED_DESCRIPTORS));
}

export type DataPathMode = 'passthrough' | 'daemon';

/** How a mount serves file data, as negotiated with the kernel. */
export interface DataPath {
  /** What the mount was asked for. */
  readonly requested: DataPathMode;
  /** What it does. */
  readonly mode: DataPathMode;
  /** Why passthrough was refused (requested passthrough, mode daemon), else null. */
  readonly refusal: string | null;
  /** Opens answered by passthrough so far. */
  readonly passthroughOpens: number;
  /** Backing files registered with the kernel so far. */
  readonly registrations: number;
  /** Files smaller than this, opened for reading only, are served through the daemon (passthrough only). */
  readonly passthroughMinSize: number;
}

const PASSTHROUGH_ON = 2;

/** The binding's data path now (see native/passthrough.c). */
export function dataPathNow(requested: DataPathMode, passthroughMinSize: number): DataPath {
  const [state, refusal, passthroughOpens, registrations] = native.dataPath();
  return { requested, mode: state === PASSTHROUGH_ON ? 'passthrough' : 'daemon', refusal, passthroughOpens, registrations, passthroughMinSize };
}

/** The bounds on open handles a mount runs with. */
export interface HandleLimits {
  /** Per non-root uid; 0: no bound. */
  readonly perUser: number;
  /** All users together. */
  readonly total: number;
}

export class Mount {
  private lastMounted = true;

  private constructor(
    private readonly fuse: Fuse,
    /** Readahead of the mount in KiB once raised, null if sysfs refused (see raiseReadahead). */
    readonly readaheadKiB: number | null,
    /** The bounds on open handles it serves with. */
    readonly handleLimits: HandleLimits,
    private readonly requestedDataPath: DataPathMode,
    private readonly passthroughMinSize: number,
  ) {}

  /** How file data is served: passthrough or through the daemon, and why. */
  dataPath(): DataPath {
    return dataPathNow(this.requestedDataPath, this.passthroughMinSize);
  }

  /** Mounts; clear a stale mount first (clearStaleMount) where one may be. */
  static async start(options: MountOptions): Promise<Mount> {
    assertPatchedBinding();
    await assertMountpointFree(options.mountpoint);
    native.serveAttributes(options.backingRootFd);
    if (options.fastPath !== null) native.enableFastPath(options.fastPath.epochPage);
    const { handleLimits } = options;
    native.setHandleLimits(handleLimits.perUser, handleLimits.total);
    // Passthrough bypasses the page-cache-free mode of --revoke immediate.
    const passthrough = options.dataPath === 'passthrough' && options.pageCache;
    native.setDataPath(passthrough ? 1 : 0, options.passthroughMinSize);
    const fuse = new Fuse(options.mountpoint, guardOperations(options.ops, options.onFault, options.requestCounter), {
      allowOther: true,
      defaultPermissions: options.defaultPermissions,
      fsname: 'aclfs',
      subtype: 'aclfs',
      // Handlers answer synchronously; a per-request timer only costs.
      timeout: false,
      // O_TRUNC reaches open() so it is decided before anything is cut.
      atomicOTrunc: true,
      // Not libfuse's auto_cache, which trusts a name's cached data while
      // the size and mtime it sees are unchanged, whatever file is behind
      // the name now: the binding keeps a file's cached data across opens
      // only when the open finds the very same file, unchanged (see
      // native/keepcache.c).
      autoCache: false,
      // Names and attributes are cached for a second, as libfuse and bindfs
      // do by default (getattr does not depend on the caller, so the cache
      // cannot leak anything): without it, every open costs a GETATTR round
      // trip per path component for the kernel's permission checks. libfuse
      // 2 gives every name its own node and attribute cache, so a change
      // through one hard link would not show through another: the binding
      // answers attributes of files with several links uncached (see
      // native/requests.c).
      entryTimeout: 1,
      attrTimeout: 1,
      // Inode numbers of the backing files, so hard links look like hard
      // links (cp -a, tar, rsync -H preserve them).
      useIno: true,
      readdirIno: true,
      // assertMountpointFree() decided what may be covered.
      allowMountOver: true,
      extraOptions: [
        // Writes reach us in pieces of up to 512 KiB (the binding's largest
        // request) instead of 4 KiB pages.
        'big_writes',
        // Large reads are answered by splicing the backing file into
        // /dev/fuse (the binding's read_buf): one copy of the data less.
        'splice_write',
        // --in-place covers a directory with files in it, on purpose.
        ...(options.overMount ? ['nonempty'] : []),
        // --revoke immediate: no page cache for file data, so every read
        // and write reaches the daemon (libfuse sets it on every open).
        ...(options.pageCache ? [] : ['direct_io']),
      ],
    });
    await new Promise<void>((resolve, reject) => fuse.mount((err) => (err ? reject(err) : resolve())));
    if (passthrough) {
      // The kernel answers a request only after INIT, where passthrough is
      // negotiated; getattr of the root is served on a libfuse thread, so
      // waiting for it here cannot deadlock. Then one registration, so that
      // a refusal shows now rather than at the first open.
      await fs.promises.stat(options.mountpoint);
      native.probePassthrough(options.backingRootFd);
    }
    return new Mount(fuse, await raiseReadahead(options.mountpoint), handleLimits, options.dataPath, options.passthroughMinSize);
  }

  get mountpoint(): string {
    return this.fuse.mnt;
  }

  /**
   * Resolves once a request made through the mount has come back from this
   * daemon: statfs, which the kernel always forwards (never answered from a
   * cache), asked off the JS thread (the JS thread serves it).
   */
  async answers(): Promise<void> {
    await fs.promises.statfs(this.fuse.mnt);
  }

  /**
   * Whether the kernel still has this mount (someone may have unmounted it),
   * or the error that kept the mount table from being read (descriptors or
   * memory exhausted): no answer, never "unmounted".
   */
  probeMounted(): { readonly mounted: boolean } | { readonly error: unknown } {
    try {
      this.lastMounted = isMountpoint(this.fuse.mnt);
      return { mounted: this.lastMounted };
    } catch (error) {
      return { error };
    }
  }

  /** Whether the kernel still has this mount; the last answer known if the table cannot be read now. */
  isMounted(): boolean {
    this.probeMounted();
    return this.lastMounted;
  }

  /**
   * Unmounts (lazily if busy, so the directory is freed at once). A mount
   * already taken away by someone else (fusermount -u) counts as stopped.
   */
  async stop(): Promise<void> {
    try {
      await new Promise<void>((resolve, reject) => this.fuse.unmount((err) => (err ? reject(err) : resolve())));
    } catch (err) {
      if (this.isMounted()) throw err;
    }
  }
}

/** Whether `mountpoint` is a mountpoint now, from /proc/self/mountinfo. */
export function isMountpoint(mountpoint: string): boolean {
  return mountTypeAt(mountpoint) !== null;
}

/**
 * The backing tree's root, as a path for JS and a descriptor for the
 * binding. Normally SRC itself; with --in-place the mount covers SRC, so the
 * tree is reached through the descriptor, opened before mounting
 * (/proc/self/fd/N resolves to the directory under the mount).
 */
export function openBackingRoot(source: string, inPlace: boolean): { root: string; fd: number; close: () => void } {
  const fd = fs.openSync(source, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY);
  return { root: inPlace ? `/proc/self/fd/${fd}` : source, fd, close: () => fs.closeSync(fd) };
}

/** Open handles counted for all users together now (against HandleLimits.total). */
export function openHandleCount(): number {
  return native.openHandles();
}

/**
 * The binding's request loop: requests received (every operation, answered
 * in C or in JS) and answered so far.
 */
export function requestLoopStats(): { started: number; finished: number } {
  const [started, finished] = native.requestProgress();
  return { started, finished };
}

/** The binding's worker-thread state (see StatusResponse.workerLocals). */
export function workerThreadStats(): { created: number; idle: number } {
  const [created, idle] = native.threadStats();
  return { created, idle };
}

/** `aclfs unmount MNT` for a mount served by another process. */
export async function unmountPath(mountpoint: string): Promise<void> {
  await execFileAsync('fusermount', ['-u', path.resolve(mountpoint)]);
}

// ---- processes inside a directory --------------------------------------------

/** A process holding a place inside a directory. */
export interface Holder {
  readonly pid: number;
  /** Its command name (/proc/PID/comm). */
  readonly command: string;
  /** What it holds: "cwd PATH", "root PATH", "fd N PATH". */
  readonly holds: readonly string[];
}

function readlinkQuietly(link: string): string | null {
  try {
    return fs.readlinkSync(link);
  } catch {
    // The process is gone, or the link is not ours to read.
    return null;
  }
}

/**
 * The processes whose working directory, root directory or open files
 * (/proc/PID/cwd, root, fd/*) lie inside `dir`, but those in `exclude`.
 * A mount over `dir` cannot cover them: they keep reaching the tree beneath
 * it directly, unfiltered, through what they hold.
 */
export function processesInside(dir: string, exclude: ReadonlySet<number>): Holder[] {
  const holders: Holder[] = [];
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const pid = Number(name);
    if (exclude.has(pid)) continue;
    const holds: string[] = [];
    for (const what of ['cwd', 'root'] as const) {
      const target = readlinkQuietly(`/proc/${pid}/${what}`);
      if (target !== null && target.startsWith('/') && isInside(target, dir)) holds.push(`${what} ${target}`);
    }
    let fds: string[] = [];
    try {
      fds = fs.readdirSync(`/proc/${pid}/fd`);
    } catch {
      // Gone since the listing, or not ours to read.
    }
    for (const fd of fds) {
      const target = readlinkQuietly(`/proc/${pid}/fd/${fd}`);
      // Sockets, pipes and anonymous inodes read "socket:[N]" and the like.
      if (target !== null && target.startsWith('/') && isInside(target, dir)) holds.push(`fd ${fd} ${target}`);
    }
    if (holds.length === 0) continue;
    let command = '?';
    try {
      command = fs.readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
    } catch {
      // Gone meanwhile: still named by its pid.
    }
    holders.push({ pid, command, holds });
  }
  return holders;
}

/** Holders on one line: "pid 12 (sleep) cwd /srv/data; pid 40 (vim) fd 3 /srv/data/a.txt, ...". */
export function describeHolders(holders: readonly Holder[], maxPids = 10, maxHolds = 3): string {
  // Names may hold any byte but "/" and NUL: the line stays one line.
  const printable = (s: string): string => s.replace(/[\x00-\x1f\x7f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
  const shown = holders.slice(0, maxPids).map((h) => {
    const holds = h.holds.slice(0, maxHolds).map(printable).join(', ');
    const more = h.holds.length > maxHolds ? ` and ${h.holds.length - maxHolds} more` : '';
    return `pid ${h.pid} (${printable(h.command)}) ${holds}${more}`;
  });
  const rest = holders.length > maxPids ? `; and ${holders.length - maxPids} more processes` : '';
  return `${shown.join('; ')}${rest}`;
}
