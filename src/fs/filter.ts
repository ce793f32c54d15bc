// The FUSE passthrough filter: one small handler per FUSE op over the backing
// tree. Each handler turns a request into a decision (through the
// Gatekeeper) and a syscall on the backing tree; errno from the backing
// filesystem passes through untouched. Backing calls are synchronous on
// purpose: they never touch the mount (the backing root is checked not to
// lie under it, or is reached through a descriptor opened before mounting),
// and a synchronous call answers the request without another thread hop.
import * as fs from 'node:fs';
import Fuse from 'fuse-native';
import type { Logger } from 'pino';
import { formatAccess } from '../rules/access';
import { describeDecision } from '../rules/decide';
import type { Verdict } from '../rules/engine';
import { R, W, type Access, type Caller, type Decision, type FileIdentity, type Target } from '../rules/types';
import type { AuditEntry } from './audit';
import type { CallerResolver } from './callers';
import { EACCES, EBADF, EEXIST, OK, Refusal, toErrno } from './errno';

const { O_RDONLY, O_WRONLY, O_RDWR, O_TRUNC, O_CREAT, O_EXCL, O_NOFOLLOW, O_NONBLOCK, O_NOCTTY, O_DIRECTORY } =
  fs.constants;
const { S_IFMT, S_IFDIR, S_IFREG } = fs.constants;
// Set-group-ID bit of a mode; Node does not export it.
const S_ISGID = 0o2000;
// Linux's mask of the access mode bits; Node does not export it.
const O_ACCMODE = 3;
const native = Fuse.native;
/** At most this many subdirectories are decided ahead per opendir. */
const PREDECIDED_SUBDIRECTORIES = 256;
/** ...of which this many per event-loop turn. */
const PREDECIDED_PER_TURN = 16;

/** What the filter needs from the rules side. */
export interface Gatekeeper {
  /** The commit epoch now (moves with commits by any process). */
  epoch(): number;
  /** The decision for this caller and file; throws when it cannot decide. */
  check(caller: Caller, target: Target, requested: Access): Verdict;
  /** Whether this allow holds whatever the caller's supplementary groups. */
  holdsForAnyGroups(caller: Caller, target: Target, requested: Access, decision: Decision): boolean;
}

/** Keeps the rule indexes in step with changes made through the mount. */
export interface RuleIndex {
  /** A file now exists at `path`: a rule waiting on that path binds to it. */
  created(path: string, file: FileIdentity): void;
  /** `from` was renamed to `to`: rules at and below it move along. */
  renamed(from: string, to: string): void;
  /** The last link of `file` is gone: its rule lets go of the inode. */
  removed(file: FileIdentity): void;
}

/** Where the filter records what it refuses (the daemon's audit log). */
export interface AuditSink {
  append(entry: AuditEntry): void;
}

export interface FilterOptions {
  /** Path of the backing tree's root (the source, or /proc/self/fd/N). */
  readonly backingRoot: string;
  readonly gatekeeper: Gatekeeper;
  readonly index: RuleIndex;
  readonly callers: CallerResolver;
  readonly log: Logger;
  /**
   * Rules-only mode: the rules are the sole authority; the daemon acts with
   * its own rights and new files stay owned by it. Otherwise (layered) new
   * files are owned by the caller, as on a local filesystem.
   */
  readonly rulesOnly: boolean;
  /** Every refusal, and every denial permissive mode lets through, is recorded here. */
  readonly audit: AuditSink;
  /**
   * Permissive mode: a request the rules deny is let through (and recorded)
   * instead of refused. Read at every decision; the daemon advances the
   * commit epoch when it changes, so nothing decided before is replayed.
   */
  readonly permissive: () => boolean;
}

/** Who a new file is given to (layered mode). */
interface Owner {
  readonly uid: number;
  readonly gid: number;
}

/** An open file: its backing descriptor is the FUSE file handle. */
interface OpenFile {
  readonly fd: number;
  readonly target: Target;
  readonly caller: Caller;
  /** What reads and writes on it may do: the open's access mode (r, w, rw). */
  readonly access: Access;
  /** Commit epoch the last allow was decided at (-1: never, decide first). */
  epoch: number;
}

/** r, w or rw: what an open with these flags lets reads and writes do. */
function accessModeOf(flags: number): Access {
  const mode = flags & O_ACCMODE;
  return mode === O_RDONLY ? R : mode === O_WRONLY ? W : R | W;
}

/** Bits an open with these flags needs (spec: read r, write w, O_TRUNC w). */
export function accessForOpenFlags(flags: number): Access {
  return flags & O_TRUNC ? accessModeOf(flags) | W : accessModeOf(flags);
}

/** The parent directory of a mount path ("/a/b" -> "/a", "/a" -> "/"). */
export function parentOf(path: string): string {
  const i = path.lastIndexOf('/');
  return i <= 0 ? '/' : path.slice(0, i);
}

/** Reads the fields the rules need out of the binding's stat layout. */
export function identityOf(st: Uint32Array): FileIdentity {
  const u64 = (i: number): number => st[i]! + st[i + 1]! * 0x1_0000_0000;
  const birthSec = u64(24);
  const birthNsec = st[26]!;
  return {
    dev: u64(5),
    ino: u64(8),
    // 0.0 means the filesystem reports no birth time.
    birth: birthSec === 0 && birthNsec === 0 ? null : `${birthSec}.${String(birthNsec).padStart(9, '0')}`,
  };
}

function modeOf(st: Uint32Array): number {
  return st[0]!;
}

function nlinkOf(st: Uint32Array): number {
  return st[7]!;
}

/** stat through the binding: 0 or a negative errno. */
function lstatInto(path: string, out: Uint32Array): number {
  return native.lstat(path, out);
}

/**
 * Where a mount path lives in the backing tree. The root is named with a
 * trailing "/." so that a root given as /proc/self/fd/N (--in-place) is
 * followed to the directory, not looked at as the magic link it is.
 */
export function backingPath(root: string, path: string): string {
  return path === '/' ? `${root}/.` : root + path;
}

/**
 * Identity lookups under a backing root, for binding rules to files (the
 * same dev/ino/birth the filter decides with), or null when absent.
 */
export function identityLookup(backingRoot: string): (path: string) => FileIdentity | null {
  return (path) => {
    const st = new Uint32Array(Fuse.STAT_INTS);
    return lstatInto(backingPath(backingRoot, path), st) === 0 ? identityOf(st) : null;
  };
}

export class Filter {
  private readonly files = new Map<number, OpenFile>();
  private readonly root: string;
  private readonly gatekeeper: Gatekeeper;
  private readonly index: RuleIndex;
  private readonly callers: CallerResolver;
  private readonly log: Logger;
  private readonly rulesOnly: boolean;
  private readonly audit: AuditSink;
  private readonly permissive: () => boolean;

  constructor(options: FilterOptions) {
    this.root = options.backingRoot;
    this.gatekeeper = options.gatekeeper;
    this.index = options.index;
    this.callers = options.callers;
    this.log = options.log;
    this.rulesOnly = options.rulesOnly;
    this.audit = options.audit;
    this.permissive = options.permissive;
  }

  private backing(path: string): string {
    return backingPath(this.root, path);
  }

  private stat(path: string): Uint32Array {
    const st = new Uint32Array(Fuse.STAT_INTS);
    const rc = lstatInto(this.backing(path), st);
    if (rc !== 0) throw new Refusal(rc);
    return st;
  }

  private fstat(fd: number): Uint32Array {
    const st = new Uint32Array(Fuse.STAT_INTS);
    const rc = native.fstat(fd, st);
    if (rc !== 0) throw new Refusal(rc);
    return st;
  }

  // ---- deciding ------------------------------------------------------------

  /** The full caller, or a Refusal(EACCES) when it cannot be established. */
  private caller(req: Fuse.RequestCaller, op: string, path: string): Caller {
    try {
      return this.callers.resolve(req);
    } catch (err) {
      this.log.error({ op, path, caller: req, err: String(err) }, 'denied: caller identity unavailable');
      // Refused before the requested access is worked out: recorded as ---.
      const who: Caller = { uid: req.uid, gid: req.gid, pid: req.pid, groups: null };
      this.record(who, op, { path, dev: 0, ino: 0 }, 0, true, null, `deny: error while deciding: caller identity unavailable: ${String(err)}`);
      throw new Refusal(EACCES);
    }
  }

  /**
   * The verdict of an allow, or null for a deny; never throws. The one place
   * requests are refused: every denial is logged and recorded in the audit
   * log here. In permissive mode a denial by the rules is let through: its
   * verdict is returned although its decision denies (callers never publish
   * or vouch for such a verdict, see publishOpen and vouch), still logged
   * and recorded. Any failure while deciding (store unreadable, bad record)
   * denies, in either mode, and is logged: fail closed.
   */
  private allowedAt(caller: Caller, op: string, target: Target, requested: Access): Verdict | null {
    let verdict: Verdict;
    try {
      verdict = this.gatekeeper.check(caller, target, requested);
    } catch (err) {
      this.log.error({ op, path: target.path, uid: caller.uid, err: String(err) }, 'denied: error while deciding');
      this.record(caller, op, target, requested, true, null, `deny: error while deciding: ${String(err)}`);
      return null;
    }
    const { decision } = verdict;
    if (decision.allow) return verdict;
    const reason = describeDecision(decision);
    const letThrough = this.permissive();
    this.log.info(
      { op, path: target.path, uid: caller.uid, gid: caller.gid, pid: caller.pid, reason, enforced: !letThrough },
      letThrough ? 'denied by the rules, let through (permissive mode)' : 'denied',
    );
    this.record(caller, op, target, requested, !letThrough, decision.ruleId, reason);
    return letThrough ? verdict : null;
  }

  private record(caller: Caller, op: string, target: Target, requested: Access, enforced: boolean, rule: number | null, reason: string): void {
    try {
      this.audit.append({
        op,
        path: target.path,
        uid: caller.uid,
        gid: caller.gid,
        pid: caller.pid,
        access: formatAccess(requested),
        enforced,
        rule,
        reason,
      });
    } catch (err) {
      // The decision stands whether or not it could be recorded.
      this.log.error({ op, path: target.path, err: String(err) }, 'audit record failed');
    }
  }

  /** allowedAt(), or a Refusal(EACCES). */
  private demand(caller: Caller, op: string, target: Target, requested: Access): Verdict {
    const grant = this.allowedAt(caller, op, target, requested);
    if (grant === null) throw new Refusal(EACCES);
    return grant;
  }

  /** Requires `requested` on the existing file at `path`; returns the caller. */
  private require(req: Fuse.RequestCaller, op: string, path: string, requested: Access, st?: Uint32Array): Caller {
    const caller = this.caller(req, op, path);
    this.demand(caller, op, { path, ...identityOf(st ?? this.stat(path)) }, requested);
    return caller;
  }

  /** Requires w on the directory that holds `path` (create, unlink, ...). */
  private requireParent(req: Fuse.RequestCaller, op: string, path: string): Caller {
    return this.require(req, op, parentOf(path), W);
  }

  /**
   * Before creating `path`: w on its directory, and `requested` on the new
   * file itself (no file yet, so no inode rule: a rule waiting on its path
   * or an ancestor's decides). Returns the caller, the grant for the file
   * and who will own the file; the directory is looked at once.
   */
  private beginCreate(
    req: Fuse.RequestCaller,
    op: string,
    path: string,
    requested: Access,
  ): { caller: Caller; grant: Verdict; owner: Owner | null } {
    const dir = parentOf(path);
    const parent = this.stat(dir);
    const caller = this.require(req, op, dir, W, parent);
    const grant = this.demand(caller, op, { path, dev: 0, ino: 0, birth: null }, requested);
    return { caller, grant, owner: this.ownerFor(caller, parent) };
  }

  /**
   * Revocation: an open file is re-decided, for the identity that opened
   * it, whenever the commit epoch moved since its last allow. The binding
   * serves reads and writes itself while the epoch stays put, so this runs
   * once per handle after each commit; an allow hands the handle back to it.
   * A permissive let-through does not: the handle's reads and writes keep
   * coming here, and the mode switch (which advances the epoch) re-decides it.
   */
  private stillAllowed(file: OpenFile, requested: Access, op: string): boolean {
    let epoch: number;
    try {
      epoch = this.gatekeeper.epoch();
    } catch (err) {
      this.log.error({ op, path: file.target.path, err: String(err) }, 'denied: commit epoch unreadable');
      this.record(file.caller, op, file.target, requested, true, null, `deny: error while deciding: commit epoch unreadable: ${String(err)}`);
      return false;
    }
    if (epoch === file.epoch) return true;
    const grant = this.allowedAt(file.caller, op, file.target, requested);
    if (grant === null) return false;
    file.epoch = grant.epoch;
    this.vouch(file.fd, file.access, grant);
    return true;
  }

  /**
   * The record of open handle `fd`. A handle the binding opened by itself
   * (a replayed allow) has none until its first read or write that reaches
   * JS, i.e. after a commit: it is made then, for the uid, gid and pid that
   * opened it, and marked for a fresh decision.
   */
  private fileFor(fd: number, path: string): OpenFile | undefined {
    const opener = native.fastOpener(fd);
    if (opener === null) return this.files.get(fd);
    const [uid, gid, pid, access] = opener;
    // Until re-decided, nothing on this handle is served in C.
    native.vouchHandle(fd, 0, 0);
    const st = new Uint32Array(Fuse.STAT_INTS);
    if (native.fstat(fd, st) !== 0) return undefined;
    let caller: Caller;
    try {
      caller = this.callers.resolve({ uid, gid, pid });
    } catch {
      caller = { uid, gid, pid, groups: null };
    }
    const file: OpenFile = { fd, target: { path, ...identityOf(st) }, caller, access, epoch: -1 };
    this.files.set(fd, file);
    return file;
  }

  // ---- creating ------------------------------------------------------------

  /**
   * Ownership of a new file in layered mode: the caller's uid, and its gid
   * unless the parent directory is set-group-ID (then the parent's group),
   * exactly as a local filesystem would do it.
   */
  private ownerFor(caller: Caller, parent: Uint32Array): Owner | null {
    if (this.rulesOnly) return null;
    const gid = modeOf(parent) & S_ISGID ? parent[2]! : caller.gid;
    return { uid: caller.uid, gid };
  }

  /** After a create: give the file to its owner and bind a waiting rule. */
  private adopt(path: string, owner: Owner | null, undo: () => void): FileIdentity {
    const backing = this.backing(path);
    try {
      if (owner !== null) fs.lchownSync(backing, owner.uid, owner.gid);
    } catch (err) {
      // A file the caller does not own would mislead the kernel's checks.
      undo();
      throw err;
    }
    const file = identityOf(this.stat(path));
    this.upkeep('created', () => this.index.created(path, file));
    return file;
  }

  /** Index upkeep must not fail the operation that already happened. */
  private upkeep(what: string, fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.log.error({ what, err: String(err) }, 'rule index upkeep failed');
    }
  }

  /** Runs a handler body, turning any throw into its errno. */
  private answer(cb: (errno: number) => void, body: () => void): void {
    try {
      body();
      cb(OK);
    } catch (err) {
      cb(toErrno(err));
    }
  }

  /**
   * Records an open handle, for the re-check of its reads and writes, and
   * lets the binding serve them while the epoch stays `epoch`. The binding
   * closes released handles itself (see the patch's aclfs_release) and
   * leaves their records here: the kernel sends nothing more for them, and
   * the next open given the same descriptor number records over it.
   */
  private registerOpen(fd: number, target: Target, caller: Caller, flags: number, grant: Verdict): void {
    const access = accessModeOf(flags);
    this.files.set(fd, { fd, target, caller, access, epoch: grant.epoch });
    this.vouch(fd, access, grant);
  }

  /**
   * Lets the binding serve reads and writes of handle `fd` in C while the
   * epoch stays the grant's; a permissive let-through (a grant whose
   * decision denies) is never vouched for (access 0: nothing is served in
   * C, every op comes here).
   */
  private vouch(fd: number, access: Access, grant: Verdict): void {
    if (!grant.decision.allow) native.vouchHandle(fd, 0, 0);
    else native.vouchHandle(fd, access, grant.epoch);
  }

  /**
   * Lets the binding replay this open's allow by itself (uid, gid, path,
   * access mode, and this very file), while the epoch stays the one it was
   * decided at. Only allows that no supplementary group could change: the
   * binding knows a caller's uid and gid, not its groups. Opens that
   * truncate always come here, and so do opens that only permissive mode
   * let through (the rules deny them: nothing to replay).
   */
  private publishOpen(caller: Caller, target: Target, st: Uint32Array, flags: number, grant: Verdict): boolean {
    if (!grant.decision.allow) return false;
    if (flags & O_TRUNC) return false;
    const access = accessModeOf(flags);
    if (!this.gatekeeper.holdsForAnyGroups(caller, target, access, grant.decision)) return false;
    return native.publishAllow(caller.uid, caller.gid, access, target.path, st, grant.epoch) === 1;
  }

  /**
   * Opening a directory is usually followed by opening its subdirectories
   * (find, ls -R, du, cp -r): their opendir is decided ahead, for the same
   * caller, and the allows published for the binding to replay. Decisions
   * like any other, only made earlier; the binding still checks the
   * identity and the epoch at the open. Denials are simply not published
   * (and not logged: nobody asked yet). The work runs after the reply, a
   * few subdirectories per event-loop turn: the opendir that asked is not
   * held up, and an opendir arriving meanwhile is answered in between.
   */
  private predecideSubdirectories(caller: Caller, dir: string): void {
    let names: string[] | null = null;
    const step = (from: number): void => {
      if (names === null) {
        try {
          names = fs
            .readdirSync(this.backing(dir), { withFileTypes: true })
            .filter((entry) => entry.isDirectory())
            .slice(0, PREDECIDED_SUBDIRECTORIES)
            .map((entry) => entry.name);
        } catch {
          return;
        }
      }
      const until = Math.min(from + PREDECIDED_PER_TURN, names.length);
      for (let i = from; i < until; i++) this.predecide(caller, dir === '/' ? `/${names[i]!}` : `${dir}/${names[i]!}`);
      if (until < names.length) setImmediate(step, until);
    };
    setImmediate(step, 0);
  }

  private predecide(caller: Caller, path: string): void {
    const st = this.statIfExists(path);
    if (st === null || (modeOf(st) & S_IFMT) !== S_IFDIR) return;
    const target: Target = { path, ...identityOf(st) };
    try {
      // Straight to the gatekeeper, not through allowedAt: nobody asked, so
      // a denial is neither logged nor audited, and permissive mode does
      // not apply (only the rules' own allows are published).
      const verdict = this.gatekeeper.check(caller, target, R);
      this.publishOpen(caller, target, st, O_RDONLY, verdict);
    } catch {
      // Decided (and logged) if and when it is opened.
    }
  }

  readonly ops: Fuse.Operations = {
    init: (_req, cb) => cb(OK),

    // ---- not gated: metadata ------------------------------------------------
    // getattr and fgetattr are answered by the binding in C (Mount.start
    // hands it the backing root), never here.

    statfs: (_req, _path, cb) => {
      try {
        const s = fs.statfsSync(this.root);
        cb(OK, {
          bsize: s.bsize,
          frsize: s.bsize,
          blocks: s.blocks,
          bfree: s.bfree,
          bavail: s.bavail,
          files: s.files,
          ffree: s.ffree,
          favail: s.ffree,
          fsid: 0,
          flag: 0,
          namemax: 255,
        });
      } catch (err) {
        cb(toErrno(err));
      }
    },

    readlink: (_req, path, cb) => {
      try {
        cb(OK, fs.readlinkSync(this.backing(path)));
      } catch (err) {
        cb(toErrno(err));
      }
    },

    getxattr: (_req, path, name, buf, _position, cb) => cb(native.lgetxattr(this.backing(path), name, buf)),

    listxattr: (_req, path, buf, cb) => cb(native.llistxattr(this.backing(path), buf)),

    // ---- gated: r ---------------------------------------------------------------

    access: (req, path, mode, cb) =>
      this.answer(cb, () => {
        const st = this.stat(path);
        // F_OK asks only whether the file exists.
        if ((mode & 7) !== 0) this.require(req, 'access', path, mode & 7, st);
      }),

    // The directory is opened and decided on the descriptor, like a file:
    // the binding then lists it in C (readdir) while the epoch holds, and
    // replays the allow for the next opendir of the same path.
    opendir: (req, path, _flags, cb) => {
      let fd = -1;
      try {
        const caller = this.caller(req, 'opendir', path);
        fd = this.openBacking(path, O_RDONLY | O_DIRECTORY);
        const { target, st, grant } = this.allowOpen(caller, 'opendir', path, fd, R, S_IFDIR);
        this.registerOpen(fd, target, caller, O_RDONLY, grant);
        const predecide = this.publishOpen(caller, target, st, O_RDONLY, grant);
        cb(OK, fd);
        if (predecide) this.predecideSubdirectories(caller, path);
      } catch (err) {
        if (fd >= 0) closeQuietly(fd);
        cb(toErrno(err));
      }
    },

    readdir: (req, path, cb) => {
      try {
        this.require(req, 'readdir', path, R);
        cb(OK, ['.', '..', ...fs.readdirSync(this.backing(path))]);
      } catch (err) {
        cb(toErrno(err));
      }
    },

    // releasedir is answered by the binding in C (it closes the descriptor).

    open: (req, path, flags, cb) => {
      let fd = -1;
      try {
        const caller = this.caller(req, 'open', path);
        fd = this.openBacking(path, flags & ~(O_TRUNC | O_CREAT | O_EXCL));
        const { target, st, grant } = this.allowOpen(caller, 'open', path, fd, accessForOpenFlags(flags));
        if (flags & O_TRUNC) fs.ftruncateSync(fd, 0);
        this.registerOpen(fd, target, caller, flags, grant);
        this.publishOpen(caller, target, st, flags, grant);
        cb(OK, fd);
      } catch (err) {
        if (fd >= 0) fs.closeSync(fd);
        cb(toErrno(err));
      }
    },

    create: (req, path, mode, flags, cb) => {
      let fd = -1;
      try {
        // The new file must also be openable as asked, decided before
        // anything is created.
        const { caller, grant, owner } = this.beginCreate(req, 'create', path, accessForOpenFlags(flags));
        try {
          // O_EXCL always: if a file appeared behind the mount's back, it is
          // opened as an existing file and decided on its own identity.
          fd = this.openBacking(path, (flags & ~O_TRUNC) | O_CREAT | O_EXCL, mode & 0o7777);
        } catch (err) {
          if (toErrno(err) !== EEXIST || flags & O_EXCL) throw err;
          return this.ops.open?.(req, path, flags & ~O_CREAT, cb);
        }
        const openedFd = fd;
        const file = this.adopt(path, owner, () => {
          fs.closeSync(openedFd);
          fs.unlinkSync(this.backing(path));
        });
        this.registerOpen(fd, { path, ...file }, caller, flags, grant);
        cb(OK, fd);
      } catch (err) {
        if (fd >= 0) closeQuietly(fd);
        cb(toErrno(err));
      }
    },

    // read and write reach JS only when the binding cannot serve them: the
    // epoch moved since the handle's allow (see stillAllowed).
    read: (_req, path, fd, buf, len, pos, cb) => {
      const file = this.fileFor(fd, path);
      if (file === undefined) return cb(EBADF);
      if (!this.stillAllowed(file, R, 'read')) return cb(EACCES);
      try {
        cb(fs.readSync(fd, buf, 0, len, pos));
      } catch (err) {
        cb(toErrno(err));
      }
    },

    // ---- gated: w on the file -----------------------------------------------------

    write: (_req, path, fd, buf, len, pos, cb) => {
      const file = this.fileFor(fd, path);
      if (file === undefined) return cb(EBADF);
      if (!this.stillAllowed(file, W, 'write')) return cb(EACCES);
      try {
        cb(fs.writeSync(fd, buf, 0, len, pos));
      } catch (err) {
        cb(toErrno(err));
      }
    },

    truncate: (req, path, size, cb) => {
      let fd = -1;
      try {
        const caller = this.caller(req, 'truncate', path);
        // Decide on the file actually opened, as open() does.
        fd = this.openBacking(path, O_WRONLY);
        this.allowOpen(caller, 'truncate', path, fd, W);
        fs.ftruncateSync(fd, size);
        fs.closeSync(fd);
        cb(OK);
      } catch (err) {
        if (fd >= 0) closeQuietly(fd);
        cb(toErrno(err));
      }
    },

    ftruncate: (_req, path, fd, size, cb) => {
      const file = this.fileFor(fd, path);
      if (file === undefined) return cb(EBADF);
      if (!this.stillAllowed(file, W, 'ftruncate')) return cb(EACCES);
      this.answer(cb, () => fs.ftruncateSync(fd, size));
    },

    chmod: (req, path, mode, cb) =>
      this.answer(cb, () => {
        this.require(req, 'chmod', path, W);
        fs.chmodSync(this.backing(path), mode & 0o7777);
      }),

    chown: (req, path, uid, gid, cb) =>
      this.answer(cb, () => {
        this.require(req, 'chown', path, W);
        fs.lchownSync(this.backing(path), uid, gid);
      }),

    utimens: (req, path, atime, mtime, cb) =>
      this.answer(cb, () => {
        this.require(req, 'utimens', path, W);
        const rc = native.utimensat(this.backing(path), atime.sec, atime.nsec, mtime.sec, mtime.nsec);
        if (rc !== 0) throw new Refusal(rc);
      }),

    setxattr: (req, path, name, value, _position, flags, cb) =>
      this.answer(cb, () => {
        this.require(req, 'setxattr', path, W);
        const rc = native.lsetxattr(this.backing(path), name, value, flags);
        if (rc !== 0) throw new Refusal(rc);
      }),

    removexattr: (req, path, name, cb) =>
      this.answer(cb, () => {
        this.require(req, 'removexattr', path, W);
        const rc = native.lremovexattr(this.backing(path), name);
        if (rc !== 0) throw new Refusal(rc);
      }),

    // ---- handles ------------------------------------------------------------------

    // No flush: there is nothing to do at close() before release, and an
    // unimplemented flush makes the kernel stop sending FLUSH at all, which
    // saves a round trip on every close.

    // fsync is answered by the binding in C: it needs no decision.

    fsyncdir: (_req, path, datasync, _fd, cb) =>
      this.answer(cb, () => {
        const fd = fs.openSync(this.backing(path), O_RDONLY | O_DIRECTORY);
        try {
          if (datasync) fs.fdatasyncSync(fd);
          else fs.fsyncSync(fd);
        } finally {
          fs.closeSync(fd);
        }
      }),

    // release is answered by the binding in C (see registerOpen).

    // ---- gated: w on the parent directory ---------------------------------------

    mkdir: (req, path, mode, cb) =>
      this.answer(cb, () => {
        const { owner } = this.beginCreate(req, 'mkdir', path, W);
        fs.mkdirSync(this.backing(path), mode & 0o7777);
        this.adopt(path, owner, () => fs.rmdirSync(this.backing(path)));
      }),

    mknod: (req, path, mode, dev, cb) =>
      this.answer(cb, () => {
        const { owner } = this.beginCreate(req, 'mknod', path, W);
        const rc = native.mknod(this.backing(path), mode, dev);
        if (rc !== 0) throw new Refusal(rc);
        this.adopt(path, owner, () => fs.unlinkSync(this.backing(path)));
      }),

    symlink: (req, target, path, cb) =>
      this.answer(cb, () => {
        const { owner } = this.beginCreate(req, 'symlink', path, W);
        fs.symlinkSync(target, this.backing(path));
        this.adopt(path, owner, () => fs.unlinkSync(this.backing(path)));
      }),

    link: (req, existing, path, cb) =>
      this.answer(cb, () => {
        this.requireParent(req, 'link', path);
        fs.linkSync(this.backing(existing), this.backing(path));
        // A new name for an old file: its ownership stays, its rule (bound
        // to the inode) comes along; a rule waiting on the new path may bind.
        const file = identityOf(this.stat(path));
        this.upkeep('link', () => this.index.created(path, file));
      }),

    unlink: (req, path, cb) =>
      this.answer(cb, () => {
        this.requireParent(req, 'unlink', path);
        const st = this.stat(path);
        fs.unlinkSync(this.backing(path));
        if (nlinkOf(st) <= 1) this.upkeep('unlink', () => this.index.removed(identityOf(st)));
      }),

    rmdir: (req, path, cb) =>
      this.answer(cb, () => {
        this.requireParent(req, 'rmdir', path);
        const st = this.stat(path);
        fs.rmdirSync(this.backing(path));
        this.upkeep('rmdir', () => this.index.removed(identityOf(st)));
      }),

    rename: (req, from, to, cb) =>
      this.answer(cb, () => {
        this.requireParent(req, 'rename', from);
        if (parentOf(to) !== parentOf(from)) this.requireParent(req, 'rename', to);
        const moved = this.stat(from);
        const replaced = this.statIfExists(to);
        fs.renameSync(this.backing(from), this.backing(to));
        const movedId = identityOf(moved);
        this.upkeep('rename', () => {
          this.index.renamed(from, to);
          if (replaced !== null) {
            const gone = identityOf(replaced);
            const sameFile = gone.dev === movedId.dev && gone.ino === movedId.ino;
            const lastLink = (modeOf(replaced) & S_IFMT) === S_IFDIR || nlinkOf(replaced) <= 1;
            if (!sameFile && lastLink) this.index.removed(gone);
          }
          this.index.created(to, movedId);
        });
      }),
  };

  private statIfExists(path: string): Uint32Array | null {
    const st = new Uint32Array(Fuse.STAT_INTS);
    return lstatInto(this.backing(path), st) === 0 ? st : null;
  }

  /**
   * Opens the backing file. O_NOFOLLOW and O_NONBLOCK keep a backing path
   * swapped for a symlink or a FIFO behind our back from redirecting or
   * blocking the daemon.
   */
  private openBacking(path: string, flags: number, mode?: number): number {
    return fs.openSync(this.backing(path), flags | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY, mode);
  }

  /**
   * Decides an open on the file actually opened (fstat of the descriptor),
   * so a path swapped between a check and the open cannot hand out a denied
   * file. `type` is what the op opens (S_IFREG, or S_IFDIR for opendir).
   * Returns the file, its stat and the grant.
   */
  private allowOpen(
    caller: Caller,
    op: string,
    path: string,
    fd: number,
    requested: Access,
    type: number = S_IFREG,
  ): { target: Target; st: Uint32Array; grant: Verdict } {
    const st = this.fstat(fd);
    if ((modeOf(st) & S_IFMT) !== type) {
      this.log.warn({ op, path }, 'denied: backing file is not of the type opened (tree changed under us)');
      throw new Refusal(EACCES);
    }
    const target: Target = { path, ...identityOf(st) };
    return { target, st, grant: this.demand(caller, op, target, requested) };
  }
}

function closeQuietly(fd: number): void {
  try {
    fs.closeSync(fd);
  } catch {
    /* already closed */
  }
}
