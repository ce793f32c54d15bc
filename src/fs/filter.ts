// The FUSE passthrough filter: one small handler per FUSE op over the backing
// tree. Each handler turns a request into a decision (through the
// Gatekeeper) and a syscall on the backing tree; errno from the backing
// filesystem passes through untouched. Backing calls are synchronous on
// purpose: they never touch the mount (the backing root is checked not to
// lie under it, or is reached through a descriptor opened before mounting),
// and a synchronous call answers the request without another thread hop.
import * as fs from 'node:fs';
import { Fuse } from '../native/binding';
import type { Logger } from 'pino';
import { formatAccess } from '../rules/access';
import { describeDecision } from '../rules/decide';
import type { Verdict } from '../rules/engine';
import type { Move, MoveCheck } from '../rules/moves';
import { R, W, type Access, type Caller, type Decision, type FileIdentity, type Target } from '../rules/types';
import type { AuditEntry } from './audit';
import type { BackingTree } from './backing';
import type { CallerResolver } from './callers';
import { EACCES, EBADF, EEXIST, EMFILE, EPERM, EXDEV, ENAMETOOLONG, OK, Refusal, toErrno } from './errno';

const { O_RDONLY, O_WRONLY, O_RDWR, O_TRUNC, O_CREAT, O_EXCL, O_NOFOLLOW, O_NONBLOCK, O_NOCTTY, O_DIRECTORY } =
  fs.constants;
const { S_IFMT, S_IFDIR, S_IFREG } = fs.constants;
// Set-group-ID bit of a mode; Node does not export it.
const S_ISGID = 0o2000;
/** chown's "leave this id alone". */
const UNCHANGED_ID = 0xffff_ffff;
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
  /** Whether a link or rename keeps every object under its rule; throws when it cannot tell. */
  checkMove(move: Move): MoveCheck;
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
  /** Path of the backing tree's root (the source, or /proc/self/fd/N); statfs only. */
  readonly backingRoot: string;
  /** The backing tree, reached through its root descriptor. */
  readonly tree: BackingTree;
  readonly gatekeeper: Gatekeeper;
  readonly index: RuleIndex;
  readonly callers: CallerResolver;
  readonly log: Logger;
  /**
   * Rules-only mode: the rules are the sole authority over access (no Unix
   * permission check by the kernel); the daemon keeps POSIX's powers over
   * metadata where POSIX puts them (see chmod, chown, utimens). In either
   * mode new files are owned by the caller, as on a local filesystem.
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

function sameFile(a: FileIdentity, b: FileIdentity): boolean {
  return a.dev === b.dev && a.ino === b.ino;
}

/** Whether a (non-root) caller is in group `gid`. */
function inGroup(caller: Caller, gid: number): boolean {
  return caller.gid === gid || (caller.groups?.includes(gid) ?? false);
}

export class Filter {
  private readonly files = new Map<number, OpenFile>();
  private readonly root: string;
  private readonly tree: BackingTree;
  private readonly gatekeeper: Gatekeeper;
  private readonly index: RuleIndex;
  private readonly callers: CallerResolver;
  private readonly log: Logger;
  private readonly rulesOnly: boolean;
  private readonly audit: AuditSink;
  private readonly permissive: () => boolean;

  constructor(options: FilterOptions) {
    this.root = options.backingRoot;
    this.tree = options.tree;
    this.gatekeeper = options.gatekeeper;
    this.index = options.index;
    this.callers = options.callers;
    this.log = options.log;
    this.rulesOnly = options.rulesOnly;
    this.audit = options.audit;
    this.permissive = options.permissive;
  }

  private stat(path: string): Uint32Array {
    return this.tree.stat(path);
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
   * Ownership of a new file: the caller's uid, and its gid unless the
   * parent directory is set-group-ID (then the parent's group), exactly as
   * a local filesystem would do it. In rules-only mode too: a file made by
   * a user must never be root's (the daemon's), or any user could make
   * root-owned executables.
   */
  private ownerFor(caller: Caller, parent: Uint32Array): Owner | null {
    const gid = modeOf(parent) & S_ISGID ? parent[2]! : caller.gid;
    return { uid: caller.uid, gid };
  }

  /** After a create: give the file to its owner and bind a waiting rule. */
  private adopt(path: string, owner: Owner | null, undo: () => void): FileIdentity {
    try {
      if (owner !== null) this.tree.chown(path, owner.uid, owner.gid);
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
          // predecide() skips what is not a directory.
          names = this.tree.list(dir).slice(0, PREDECIDED_SUBDIRECTORIES);
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
    const st = this.tree.statIfExists(path);
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
    // getattr, fgetattr and readlink are answered by the binding in C
    // (Mount.start hands it the backing root), never here.

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

    // ---- gated: r ---------------------------------------------------------------

    // Extended attributes are the file's data too: reading or listing them
    // needs r on the file.
    getxattr: (req, path, name, buf, _position, cb) => {
      try {
        this.require(req, 'getxattr', path, R);
        cb(this.tree.getxattr(path, name, buf));
      } catch (err) {
        cb(toErrno(err));
      }
    },

    listxattr: (req, path, buf, cb) => {
      try {
        this.require(req, 'listxattr', path, R);
        cb(this.tree.listxattr(path, buf));
      } catch (err) {
        cb(toErrno(err));
      }
    },

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
        this.hold(fd, caller);
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
        cb(OK, ['.', '..', ...this.tree.list(path)]);
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
        this.hold(fd, caller);
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
          this.tree.unlink(path);
        });
        this.registerOpen(fd, { path, ...file }, caller, flags, grant);
        this.hold(fd, caller);
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

    // In layered mode the kernel has already applied POSIX's rules for
    // chmod, chown and utimens (default_permissions); in rules-only mode it
    // has not, and the daemon, acting as root, applies them itself: the
    // rules decide who may touch a file, never who gets root's powers.
    chmod: (req, path, mode, cb) =>
      this.answer(cb, () => {
        const st = this.stat(path);
        const caller = this.require(req, 'chmod', path, W, st);
        this.tree.chmod(path, this.permittedMode(caller, st, mode & 0o7777));
      }),

    chown: (req, path, uid, gid, cb) =>
      this.answer(cb, () => {
        const st = this.stat(path);
        const caller = this.require(req, 'chown', path, W, st);
        this.assertChownPermitted(caller, st, uid, gid);
        this.tree.chown(path, uid, gid);
      }),

    utimens: (req, path, atime, mtime, cb) =>
      this.answer(cb, () => {
        const st = this.stat(path);
        const caller = this.require(req, 'utimens', path, W, st);
        // POSIX: only the owner (or root) sets times other than "now".
        const onlyNow = atime.nsec === Fuse.UTIME_NOW && mtime.nsec === Fuse.UTIME_NOW;
        if (this.rulesOnly && caller.uid !== 0 && caller.uid !== st[1]! && !onlyNow) throw new Refusal(EPERM);
        this.tree.utimens(path, atime, mtime);
      }),

    setxattr: (req, path, name, value, _position, flags, cb) =>
      this.answer(cb, () => {
        this.require(req, 'setxattr', path, W);
        this.tree.setxattr(path, name, value, flags);
      }),

    removexattr: (req, path, name, cb) =>
      this.answer(cb, () => {
        this.require(req, 'removexattr', path, W);
        this.tree.removexattr(path, name);
      }),

    // ---- handles ------------------------------------------------------------------

    // No flush: there is nothing to do at close() before release, and an
    // unimplemented flush makes the kernel stop sending FLUSH at all, which
    // saves a round trip on every close.

    // fsync is answered by the binding in C: it needs no decision.

    fsyncdir: (_req, path, datasync, _fd, cb) =>
      this.answer(cb, () => {
        const fd = this.tree.open(path, O_RDONLY | O_DIRECTORY);
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
        this.tree.mkdir(path, mode & 0o7777);
        this.adopt(path, owner, () => this.tree.rmdir(path));
      }),

    // Regular files only: FIFOs, sockets and device nodes are not shown by
    // the mount (the kernel would open them without asking the daemon).
    mknod: (req, path, mode, dev, cb) =>
      this.answer(cb, () => {
        if ((mode & S_IFMT) !== S_IFREG) throw new Refusal(EPERM);
        const { owner } = this.beginCreate(req, 'mknod', path, W);
        this.tree.mknod(path, mode, dev);
        this.adopt(path, owner, () => this.tree.unlink(path));
      }),

    symlink: (req, target, path, cb) =>
      this.answer(cb, () => {
        const { owner } = this.beginCreate(req, 'symlink', path, W);
        this.tree.symlink(target, path);
        this.adopt(path, owner, () => this.tree.unlink(path));
      }),

    // A new name for an old file: its ownership stays, and it must stay
    // under the rule that governs it (see src/rules/moves.ts).
    link: (req, existing, path, cb) =>
      this.answer(cb, () => {
        const caller = this.requireParent(req, 'link', path);
        const st = this.stat(existing);
        this.allowMove(caller, 'link', { kind: 'link', file: { path: existing, ...identityOf(st) }, directory: false, to: path });
        this.tree.link(existing, path);
        const file = identityOf(this.stat(path));
        this.upkeep('link', () => this.index.created(path, file));
      }),

    unlink: (req, path, cb) =>
      this.answer(cb, () => {
        this.requireParent(req, 'unlink', path);
        const st = this.stat(path);
        this.tree.unlink(path);
        if (nlinkOf(st) <= 1) this.upkeep('unlink', () => this.index.removed(identityOf(st)));
      }),

    rmdir: (req, path, cb) =>
      this.answer(cb, () => {
        this.requireParent(req, 'rmdir', path);
        const st = this.stat(path);
        this.tree.rmdir(path);
        this.upkeep('rmdir', () => this.index.removed(identityOf(st)));
      }),

    // Rules move with the file (src/rules/moves.ts); a rename they could
    // not follow is refused before anything moves.
    rename: (req, from, to, cb) =>
      this.answer(cb, () => {
        const caller = this.requireParent(req, 'rename', from);
        if (parentOf(to) !== parentOf(from)) this.requireParent(req, 'rename', to);
        const moved = this.stat(from);
        const movedId = identityOf(moved);
        const replaced = this.tree.statIfExists(to);
        // Two names of one file (the kernel sees two inodes: libfuse 2
        // gives every name its own): POSIX renames nothing, and no rule
        // moves. The backing rename does the same nothing.
        if (replaced !== null && sameFile(identityOf(replaced), movedId)) {
          this.tree.rename(from, to);
          return;
        }
        const directory = (modeOf(moved) & S_IFMT) === S_IFDIR;
        this.allowMove(caller, 'rename', { kind: 'rename', file: { path: from, ...movedId }, directory, to });
        this.tree.rename(from, to);
        this.upkeep('rename', () => {
          this.index.renamed(from, to);
          if (replaced !== null) {
            const lastLink = (modeOf(replaced) & S_IFMT) === S_IFDIR || nlinkOf(replaced) <= 1;
            if (lastLink) this.index.removed(identityOf(replaced));
          }
          this.index.created(to, movedId);
        });
      }),
  };

  /**
   * Opens the backing file. O_NOFOLLOW and O_NONBLOCK keep a backing path
   * swapped for a symlink or a FIFO behind our back from redirecting or
   * blocking the daemon.
   */
  private openBacking(path: string, flags: number, mode = 0): number {
    return this.tree.open(path, flags | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY, mode);
  }

  /**
   * Counts open handle `fd` against its caller's bound (the binding keeps
   * the counts; release gives the handle back). Over the bound, or when the
   * descriptor is beyond what the binding can count, the open fails EMFILE.
   * Called last, once nothing else can fail: the handle is then the
   * caller's until release.
   */
  private hold(fd: number, caller: Caller): void {
    if (native.holdHandle(fd, caller.uid) === 1) return;
    native.vouchHandle(fd, 0, 0);
    this.log.warn({ uid: caller.uid, fd }, 'open refused: the caller holds as many open handles as it may');
    throw new Refusal(EMFILE);
  }

  /** Refuses (and records) a link or rename its rules could not follow. */
  private allowMove(caller: Caller, op: string, move: Move): void {
    const target: Target = move.file;
    let check: MoveCheck;
    try {
      check = this.gatekeeper.checkMove(move);
    } catch (err) {
      this.log.error({ op, path: target.path, to: move.to, err: String(err) }, 'denied: error while deciding');
      this.record(caller, op, target, W, true, null, `deny: error while deciding: ${String(err)}`);
      throw new Refusal(EACCES);
    }
    if (check.ok) return;
    const reason = `refused: ${check.reason}`;
    this.log.info({ op, path: target.path, to: move.to, uid: caller.uid, reason }, `${op} refused: the rules cannot follow it`);
    this.record(caller, op, target, W, true, null, reason);
    throw new Refusal(check.errno === 'EXDEV' ? EXDEV : ENAMETOOLONG);
  }

  /**
   * The mode a chmod may set. Rules-only mode, non-root caller: only the
   * file's owner changes its mode (EPERM otherwise), and the set-group-ID
   * bit stays off unless the owner is in the file's group, as POSIX has it.
   */
  private permittedMode(caller: Caller, st: Uint32Array, mode: number): number {
    if (!this.rulesOnly || caller.uid === 0) return mode;
    if (caller.uid !== st[1]!) throw new Refusal(EPERM);
    return inGroup(caller, st[2]!) ? mode : mode & ~S_ISGID;
  }

  /**
   * Rules-only mode, non-root caller: chown as POSIX permits it: no change
   * of owner, and a change of group only by the owner, to a group of its own.
   */
  private assertChownPermitted(caller: Caller, st: Uint32Array, uid: number, gid: number): void {
    if (!this.rulesOnly || caller.uid === 0) return;
    const owner = st[1]!;
    if (uid !== UNCHANGED_ID && uid !== -1 && uid !== owner) throw new Refusal(EPERM);
    if (gid !== UNCHANGED_ID && gid !== -1 && gid !== st[2]!) {
      if (caller.uid !== owner || !inGroup(caller, gid)) throw new Refusal(EPERM);
    }
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
