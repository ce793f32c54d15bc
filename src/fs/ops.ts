// The FUSE operations of the filter: one handler per op over the backing
// tree, wired in one table (`Filter.ops`, as libfuse's lo_oper in
// passthrough_ll.c). Each handler turns a request into a decision (the
// gate), a syscall on the backing tree and, for opens, an entry in the
// open-file table and an allow published to the fast path; errno from the
// backing filesystem passes through untouched. The binding is the loopback
// underneath: what needs no decision (getattr, fgetattr, readlink, fsync,
// release, releasedir) it answers in C and is not in the table, and the
// reads, writes and opens it may replay reach JS only when it cannot.
//
// Backing calls are synchronous on purpose: they never touch the mount (the
// backing root is checked not to lie under it, or is reached through a
// descriptor opened before mounting), and a synchronous call answers the
// request without another thread hop.
import * as fs from 'node:fs';
import type { Logger } from 'pino';
import { Fuse, type RequestCaller, type TimeSpec } from '../native/binding';
import { auditsAllows, type AuditLevel } from '../rules/audit';
import type { Verdict } from '../rules/engine';
import { R, W, type Access, type Caller, type FileIdentity, type Target } from '../rules/types';
import { parentOf, type BackingTree } from './backing';
import type { CallerResolver } from './callers';
import { EACCES, EBADF, EEXIST, EPERM, OK, Refusal, toErrno } from './errno';
import { FastPath } from './fastpath';
import { Gate, type AuditSink, type Gatekeeper } from './gate';
import { accessForOpenFlags, OpenFiles } from './handles';
import type { FilterMeters } from './meters';
import { gidOf, identityOf, modeOf, nlinkOf, sameFile, statOfDescriptor, uidOf } from './stat';

export type { AuditSink, Gatekeeper } from './gate';

const { O_RDONLY, O_WRONLY, O_TRUNC, O_CREAT, O_EXCL, O_NOFOLLOW, O_NONBLOCK, O_NOCTTY, O_DIRECTORY } = fs.constants;
const { S_IFMT, S_IFDIR, S_IFREG } = fs.constants;
// Set-group-ID bit of a mode; Node does not export it.
const S_ISGID = 0o2000;
/** chown's "leave this id alone". */
const UNCHANGED_ID = 0xffff_ffff;

/** Keeps the rule indexes in step with changes made through the mount. */
export interface RuleIndex {
  /** A file now exists at `path`: a rule waiting on that path binds to it. */
  created(path: string, file: FileIdentity): void;
  /** `from` was renamed to `to`: rules at and below it move along. */
  renamed(from: string, to: string): void;
  /** The last link of `file` is gone: its rule lets go of the inode. */
  removed(file: FileIdentity): void;
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
  /** Every refusal, and every denial permissive mode or an audit-only rule lets through, is recorded here. */
  readonly audit: AuditSink;
  /**
   * Permissive mode: a request the rules deny is let through (and recorded)
   * instead of refused. Read at every decision; the daemon advances the
   * commit epoch when it changes, so nothing decided before is replayed.
   */
  readonly permissive: () => boolean;
  /** Where decisions are counted and timed, for the daemon's metrics (default: counted for nobody). */
  readonly meters?: FilterMeters;
  /**
   * Which decisions the audit log records (read at every decision). While
   * allows are, no allow is published to the fast path: every open reaches
   * JS and is recorded. Absent: denials only.
   */
  readonly auditLevel?: () => AuditLevel;
}

/** Who a new file is given to. */
interface Owner {
  readonly uid: number;
  readonly gid: number;
}

/** Whether a (non-root) caller is in group `gid`. */
function inGroup(caller: Caller, gid: number): boolean {
  return caller.gid === gid || (caller.groups?.includes(gid) ?? false);
}

function closeQuietly(fd: number): void {
  try {
    fs.closeSync(fd);
  } catch {
    /* already closed */
  }
}

/** Runs a handler body, answering OK, or the errno of whatever it threw. */
function answer(cb: Fuse.DoneCb, body: () => void): void {
  try {
    body();
    cb(OK);
  } catch (err) {
    cb(toErrno(err));
  }
}

export class Filter {
  private readonly root: string;
  private readonly tree: BackingTree;
  private readonly index: RuleIndex;
  private readonly log: Logger;
  private readonly rulesOnly: boolean;
  private readonly gate: Gate;
  private readonly files: OpenFiles;
  private readonly fastPath: FastPath;

  constructor(options: FilterOptions) {
    this.root = options.backingRoot;
    this.tree = options.tree;
    this.index = options.index;
    this.log = options.log;
    this.rulesOnly = options.rulesOnly;
    this.gate = new Gate(options);
    this.files = new OpenFiles(this.gate, options.callers, options.log);
    const auditLevel = options.auditLevel;
    this.fastPath = new FastPath(options.gatekeeper, options.tree, auditLevel === undefined ? undefined : () => !auditsAllows(auditLevel()));
  }

  /**
   * The operations, one handler each. Not here, answered by the binding in
   * C: getattr, fgetattr and readlink (Mount.start hands it the backing
   * root), fsync (it needs no decision), release and releasedir (it closes
   * the descriptor). No flush: there is nothing to do at close() before
   * release, and an unimplemented flush makes the kernel stop sending FLUSH
   * at all, which saves a round trip on every close.
   */
  readonly ops: Fuse.Operations = {
    init: this.init.bind(this),
    // Not gated: metadata.
    statfs: this.statfs.bind(this),
    // Gated: r.
    getxattr: this.getxattr.bind(this),
    listxattr: this.listxattr.bind(this),
    access: this.access.bind(this),
    opendir: this.opendir.bind(this),
    readdir: this.readdir.bind(this),
    open: this.open.bind(this),
    create: this.create.bind(this),
    read: this.read.bind(this),
    // Gated: w on the file.
    write: this.write.bind(this),
    truncate: this.truncate.bind(this),
    ftruncate: this.ftruncate.bind(this),
    chmod: this.chmod.bind(this),
    chown: this.chown.bind(this),
    utimens: this.utimens.bind(this),
    setxattr: this.setxattr.bind(this),
    removexattr: this.removexattr.bind(this),
    // Handles.
    fsyncdir: this.fsyncdir.bind(this),
    // Gated: w on the parent directory.
    mkdir: this.mkdir.bind(this),
    mknod: this.mknod.bind(this),
    symlink: this.symlink.bind(this),
    link: this.link.bind(this),
    unlink: this.unlink.bind(this),
    rmdir: this.rmdir.bind(this),
    rename: this.rename.bind(this),
  };

  // ---- not gated: metadata --------------------------------------------------

  private init(_req: RequestCaller, cb: Fuse.DoneCb): void {
    cb(OK);
  }

  private statfs(_req: RequestCaller, _path: string, cb: (err: Fuse.Errno, statfs?: Fuse.StatfsLike) => void): void {
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
  }

  // ---- gated: r ---------------------------------------------------------------

  // Extended attributes are the file's data too: reading or listing them
  // needs r on the file.
  private getxattr(req: RequestCaller, path: string, name: string, buf: Buffer, _position: number, cb: Fuse.SizeCb): void {
    try {
      this.gate.require(req, 'getxattr', path, R);
      cb(this.tree.getxattr(path, name, buf));
    } catch (err) {
      cb(toErrno(err));
    }
  }

  private listxattr(req: RequestCaller, path: string, buf: Buffer, cb: Fuse.SizeCb): void {
    try {
      this.gate.require(req, 'listxattr', path, R);
      cb(this.tree.listxattr(path, buf));
    } catch (err) {
      cb(toErrno(err));
    }
  }

  private access(req: RequestCaller, path: string, mode: number, cb: Fuse.DoneCb): void {
    answer(cb, () => {
      const st = this.tree.stat(path);
      // F_OK asks only whether the file exists.
      if ((mode & 7) !== 0) this.gate.require(req, 'access', path, mode & 7, st);
    });
  }

  // The directory is opened and decided on the descriptor, like a file:
  // the binding then lists it in C (readdir) while the epoch holds, and
  // replays the allow for the next opendir of the same path.
  private opendir(req: RequestCaller, path: string, _flags: number, cb: Fuse.OpenCb): void {
    let fd = -1;
    try {
      const caller = this.gate.caller(req, 'opendir', path);
      fd = this.openBacking(path, O_RDONLY | O_DIRECTORY);
      const { target, st, grant } = this.allowOpen(caller, 'opendir', path, fd, R, S_IFDIR);
      this.files.register(fd, target, caller, O_RDONLY, grant);
      const predecide = this.fastPath.publishOpen(caller, target, st, O_RDONLY, grant);
      this.files.hold(fd, caller);
      cb(OK, fd);
      if (predecide) this.fastPath.predecideSubdirectories(caller, path);
    } catch (err) {
      if (fd >= 0) closeQuietly(fd);
      cb(toErrno(err));
    }
  }

  private readdir(req: RequestCaller, path: string, cb: (err: Fuse.Errno, names?: string[]) => void): void {
    try {
      this.gate.require(req, 'readdir', path, R);
      cb(OK, ['.', '..', ...this.tree.list(path)]);
    } catch (err) {
      cb(toErrno(err));
    }
  }

  private open(req: RequestCaller, path: string, flags: number, cb: Fuse.OpenCb): void {
    let fd = -1;
    try {
      const caller = this.gate.caller(req, 'open', path);
      fd = this.openBacking(path, flags & ~(O_TRUNC | O_CREAT | O_EXCL));
      const { target, st, grant } = this.allowOpen(caller, 'open', path, fd, accessForOpenFlags(flags));
      if (flags & O_TRUNC) fs.ftruncateSync(fd, 0);
      this.files.register(fd, target, caller, flags, grant);
      this.fastPath.publishOpen(caller, target, st, flags, grant);
      this.files.hold(fd, caller);
      cb(OK, fd);
    } catch (err) {
      if (fd >= 0) fs.closeSync(fd);
      cb(toErrno(err));
    }
  }

  private create(req: RequestCaller, path: string, mode: number, flags: number, cb: Fuse.OpenCb): void {
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
        return this.open(req, path, flags & ~O_CREAT, cb);
      }
      const openedFd = fd;
      const file = this.adopt(path, owner, () => {
        fs.closeSync(openedFd);
        this.tree.unlink(path);
      });
      this.files.register(fd, { path, ...file }, caller, flags, grant);
      this.files.hold(fd, caller);
      cb(OK, fd);
    } catch (err) {
      if (fd >= 0) closeQuietly(fd);
      cb(toErrno(err));
    }
  }

  // read and write reach JS only when the binding cannot serve them: the
  // epoch moved since the handle's allow (see OpenFiles.stillAllowed).
  private read(_req: RequestCaller, path: string, fd: number, buf: Buffer, len: number, pos: number, cb: Fuse.SizeCb): void {
    const file = this.files.lookup(fd, path);
    if (file === undefined) return cb(EBADF);
    if (!this.files.stillAllowed(file, R, 'read')) return cb(EACCES);
    try {
      cb(fs.readSync(fd, buf, 0, len, pos));
    } catch (err) {
      cb(toErrno(err));
    }
  }

  // ---- gated: w on the file -----------------------------------------------------

  private write(_req: RequestCaller, path: string, fd: number, buf: Buffer, len: number, pos: number, cb: Fuse.SizeCb): void {
    const file = this.files.lookup(fd, path);
    if (file === undefined) return cb(EBADF);
    if (!this.files.stillAllowed(file, W, 'write')) return cb(EACCES);
    try {
      cb(fs.writeSync(fd, buf, 0, len, pos));
    } catch (err) {
      cb(toErrno(err));
    }
  }

  private truncate(req: RequestCaller, path: string, size: number, cb: Fuse.DoneCb): void {
    let fd = -1;
    try {
      const caller = this.gate.caller(req, 'truncate', path);
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
  }

  private ftruncate(_req: RequestCaller, path: string, fd: number, size: number, cb: Fuse.DoneCb): void {
    const file = this.files.lookup(fd, path);
    if (file === undefined) return cb(EBADF);
    if (!this.files.stillAllowed(file, W, 'ftruncate')) return cb(EACCES);
    answer(cb, () => fs.ftruncateSync(fd, size));
  }

  // In layered mode the kernel has already applied POSIX's rules for
  // chmod, chown and utimens (default_permissions); in rules-only mode it
  // has not, and the daemon, acting as root, applies them itself: the
  // rules decide who may touch a file, never who gets root's powers.
  private chmod(req: RequestCaller, path: string, mode: number, cb: Fuse.DoneCb): void {
    answer(cb, () => {
      const st = this.tree.stat(path);
      const caller = this.gate.require(req, 'chmod', path, W, st);
      this.tree.chmod(path, this.permittedMode(caller, st, mode & 0o7777));
    });
  }

  private chown(req: RequestCaller, path: string, uid: number, gid: number, cb: Fuse.DoneCb): void {
    answer(cb, () => {
      const st = this.tree.stat(path);
      const caller = this.gate.require(req, 'chown', path, W, st);
      this.assertChownPermitted(caller, st, uid, gid);
      this.tree.chown(path, uid, gid);
    });
  }

  private utimens(req: RequestCaller, path: string, atime: TimeSpec, mtime: TimeSpec, cb: Fuse.DoneCb): void {
    answer(cb, () => {
      const st = this.tree.stat(path);
      const caller = this.gate.require(req, 'utimens', path, W, st);
      // POSIX: only the owner (or root) sets times other than "now".
      const onlyNow = atime.nsec === Fuse.UTIME_NOW && mtime.nsec === Fuse.UTIME_NOW;
      if (this.rulesOnly && caller.uid !== 0 && caller.uid !== uidOf(st) && !onlyNow) throw new Refusal(EPERM);
      this.tree.utimens(path, atime, mtime);
    });
  }

  private setxattr(req: RequestCaller, path: string, name: string, value: Buffer, _position: number, flags: number, cb: Fuse.DoneCb): void {
    answer(cb, () => {
      this.gate.require(req, 'setxattr', path, W);
      this.tree.setxattr(path, name, value, flags);
    });
  }

  private removexattr(req: RequestCaller, path: string, name: string, cb: Fuse.DoneCb): void {
    answer(cb, () => {
      this.gate.require(req, 'removexattr', path, W);
      this.tree.removexattr(path, name);
    });
  }

  // ---- handles ------------------------------------------------------------------

  private fsyncdir(_req: RequestCaller, path: string, datasync: number, _fd: number, cb: Fuse.DoneCb): void {
    answer(cb, () => {
      const fd = this.tree.open(path, O_RDONLY | O_DIRECTORY);
      try {
        if (datasync) fs.fdatasyncSync(fd);
        else fs.fsyncSync(fd);
      } finally {
        fs.closeSync(fd);
      }
    });
  }

  // ---- gated: w on the parent directory ---------------------------------------

  private mkdir(req: RequestCaller, path: string, mode: number, cb: Fuse.DoneCb): void {
    answer(cb, () => {
      const { owner } = this.beginCreate(req, 'mkdir', path, W);
      this.tree.mkdir(path, mode & 0o7777);
      this.adopt(path, owner, () => this.tree.rmdir(path));
    });
  }

  // Regular files only: FIFOs, sockets and device nodes are not shown by
  // the mount (the kernel would open them without asking the daemon).
  private mknod(req: RequestCaller, path: string, mode: number, dev: number, cb: Fuse.DoneCb): void {
    answer(cb, () => {
      if ((mode & S_IFMT) !== S_IFREG) throw new Refusal(EPERM);
      const { owner } = this.beginCreate(req, 'mknod', path, W);
      this.tree.mknod(path, mode, dev);
      this.adopt(path, owner, () => this.tree.unlink(path));
    });
  }

  private symlink(req: RequestCaller, target: string, path: string, cb: Fuse.DoneCb): void {
    answer(cb, () => {
      const { owner } = this.beginCreate(req, 'symlink', path, W);
      this.tree.symlink(target, path);
      this.adopt(path, owner, () => this.tree.unlink(path));
    });
  }

  // A new name for an old file: its ownership stays, and it must stay
  // under the rule that governs it (see src/rules/moves.ts).
  private link(req: RequestCaller, existing: string, path: string, cb: Fuse.DoneCb): void {
    answer(cb, () => {
      const caller = this.gate.requireParent(req, 'link', path);
      const st = this.tree.stat(existing);
      this.gate.allowMove(caller, 'link', { kind: 'link', file: { path: existing, ...identityOf(st) }, directory: false, to: path });
      this.tree.link(existing, path);
      const file = identityOf(this.tree.stat(path));
      this.upkeep('link', () => this.index.created(path, file));
    });
  }

  private unlink(req: RequestCaller, path: string, cb: Fuse.DoneCb): void {
    answer(cb, () => {
      this.gate.requireParent(req, 'unlink', path);
      const st = this.tree.stat(path);
      this.tree.unlink(path);
      if (nlinkOf(st) <= 1) this.upkeep('unlink', () => this.index.removed(identityOf(st)));
    });
  }

  private rmdir(req: RequestCaller, path: string, cb: Fuse.DoneCb): void {
    answer(cb, () => {
      this.gate.requireParent(req, 'rmdir', path);
      const st = this.tree.stat(path);
      this.tree.rmdir(path);
      this.upkeep('rmdir', () => this.index.removed(identityOf(st)));
    });
  }

  // Rules move with the file (src/rules/moves.ts); a rename they could
  // not follow is refused before anything moves.
  private rename(req: RequestCaller, from: string, to: string, cb: Fuse.DoneCb): void {
    answer(cb, () => {
      const caller = this.gate.requireParent(req, 'rename', from);
      if (parentOf(to) !== parentOf(from)) this.gate.requireParent(req, 'rename', to);
      const moved = this.tree.stat(from);
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
      this.gate.allowMove(caller, 'rename', { kind: 'rename', file: { path: from, ...movedId }, directory, to });
      this.tree.rename(from, to);
      this.upkeep('rename', () => {
        this.index.renamed(from, to);
        if (replaced !== null) {
          const lastLink = (modeOf(replaced) & S_IFMT) === S_IFDIR || nlinkOf(replaced) <= 1;
          if (lastLink) this.index.removed(identityOf(replaced));
        }
        this.index.created(to, movedId);
      });
    });
  }

  // ---- shared by the handlers -------------------------------------------------

  /**
   * Opens the backing file. O_NOFOLLOW and O_NONBLOCK keep a backing path
   * swapped for a symlink or a FIFO behind our back from redirecting or
   * blocking the daemon.
   */
  private openBacking(path: string, flags: number, mode = 0): number {
    return this.tree.open(path, flags | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY, mode);
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
    const st = statOfDescriptor(fd);
    if ((modeOf(st) & S_IFMT) !== type) {
      this.log.warn({ op, path }, 'denied: backing file is not of the type opened (tree changed under us)');
      throw new Refusal(EACCES);
    }
    const target: Target = { path, ...identityOf(st) };
    return { target, st, grant: this.gate.demand(caller, op, target, requested) };
  }

  /**
   * Before creating `path`: w on its directory, and `requested` on the new
   * file itself (no file yet, so no inode rule: a rule waiting on its path
   * or an ancestor's decides). Returns the caller, the grant for the file
   * and who will own the file; the directory is looked at once.
   */
  private beginCreate(req: RequestCaller, op: string, path: string, requested: Access): { caller: Caller; grant: Verdict; owner: Owner } {
    const dir = parentOf(path);
    const parent = this.tree.stat(dir);
    const caller = this.gate.require(req, op, dir, W, parent);
    const grant = this.gate.demand(caller, op, { path, dev: 0, ino: 0, birth: null }, requested);
    return { caller, grant, owner: ownerFor(caller, parent) };
  }

  /** After a create: give the file to its owner and bind a waiting rule. */
  private adopt(path: string, owner: Owner, undo: () => void): FileIdentity {
    try {
      this.tree.chown(path, owner.uid, owner.gid);
    } catch (err) {
      // A file the caller does not own would mislead the kernel's checks.
      undo();
      throw err;
    }
    const file = identityOf(this.tree.stat(path));
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

  /**
   * The mode a chmod may set. Rules-only mode, non-root caller: only the
   * file's owner changes its mode (EPERM otherwise), and the set-group-ID
   * bit stays off unless the owner is in the file's group, as POSIX has it.
   */
  private permittedMode(caller: Caller, st: Uint32Array, mode: number): number {
    if (!this.rulesOnly || caller.uid === 0) return mode;
    if (caller.uid !== uidOf(st)) throw new Refusal(EPERM);
    return inGroup(caller, gidOf(st)) ? mode : mode & ~S_ISGID;
  }

  /**
   * Rules-only mode, non-root caller: chown as POSIX permits it: no change
   * of owner, and a change of group only by the owner, to a group of its own.
   */
  private assertChownPermitted(caller: Caller, st: Uint32Array, uid: number, gid: number): void {
    if (!this.rulesOnly || caller.uid === 0) return;
    const owner = uidOf(st);
    if (uid !== UNCHANGED_ID && uid !== -1 && uid !== owner) throw new Refusal(EPERM);
    if (gid !== UNCHANGED_ID && gid !== -1 && gid !== gidOf(st)) {
      if (caller.uid !== owner || !inGroup(caller, gid)) throw new Refusal(EPERM);
    }
  }
}

/**
 * Ownership of a new file: the caller's uid, and its gid unless the parent
 * directory is set-group-ID (then the parent's group), exactly as a local
 * filesystem would do it. In rules-only mode too: a file made by a user
 * must never be root's (the daemon's), or any user could make root-owned
 * executables.
 */
function ownerFor(caller: Caller, parent: Uint32Array): Owner {
  const gid = modeOf(parent) & S_ISGID ? gidOf(parent) : caller.gid;
  return { uid: caller.uid, gid };
}
