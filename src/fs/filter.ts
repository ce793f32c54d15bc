// The FUSE passthrough filter: one small handler per FUSE op over the source
// directory. Each handler turns a request into a decision (through the
// Gatekeeper) and a syscall on the backing tree; errno from the backing
// filesystem passes through untouched. Backing calls are synchronous on
// purpose: they never touch the mount (the source is checked not to lie
// under it), and a synchronous call answers the request without another
// thread hop.
import * as fs from 'node:fs';
import type Fuse from 'fuse-native';
import type { Logger } from 'pino';
import { describeDecision } from '../rules/decide';
import { R, W, type Access, type Caller, type Decision, type Target } from '../rules/types';
import type { CallerResolver } from './callers';
import { EACCES, EBADF, OK, toErrno } from './errno';

const { O_RDONLY, O_WRONLY, O_RDWR, O_TRUNC, O_CREAT, O_EXCL, O_NOFOLLOW, O_NONBLOCK, O_NOCTTY } = fs.constants;
// Linux's mask of the access mode bits; Node does not export it.
const O_ACCMODE = 3;

/** What the filter needs from the rules side. */
export interface Gatekeeper {
  /** Current rule generation (sees commits by other processes). */
  generation(): number;
  /** The decision for this caller and file; throws when it cannot decide. */
  check(caller: Caller, target: Target, requested: Access): Decision;
}

export interface FilterOptions {
  /** Absolute path of the directory served (the backing tree). */
  readonly source: string;
  readonly gatekeeper: Gatekeeper;
  readonly callers: CallerResolver;
  readonly log: Logger;
}

/** An open file: its backing descriptor is the FUSE file handle. */
interface OpenFile {
  readonly fd: number;
  readonly target: Target;
  readonly caller: Caller;
  readonly requested: Access;
  /** Rule generation the last allow was decided at. */
  generation: number;
}

/** Bits an open with these flags needs (spec: read r, write w, O_TRUNC w). */
export function accessForOpenFlags(flags: number): Access {
  const mode = flags & O_ACCMODE;
  let bits = mode === O_RDONLY ? R : mode === O_WRONLY ? W : mode === O_RDWR ? R | W : R | W;
  if (flags & O_TRUNC) bits |= W;
  return bits;
}

function toStatLike(st: fs.Stats): Fuse.StatLike {
  return {
    mode: st.mode,
    uid: st.uid,
    gid: st.gid,
    size: st.size,
    dev: st.dev,
    nlink: st.nlink,
    ino: st.ino,
    rdev: st.rdev,
    blksize: st.blksize,
    blocks: st.blocks,
    atime: Math.floor(st.atimeMs),
    mtime: Math.floor(st.mtimeMs),
    ctime: Math.floor(st.ctimeMs),
  };
}

export class Filter {
  private readonly files = new Map<number, OpenFile>();
  private readonly source: string;
  private readonly gatekeeper: Gatekeeper;
  private readonly callers: CallerResolver;
  private readonly log: Logger;

  constructor(options: FilterOptions) {
    this.source = options.source;
    this.gatekeeper = options.gatekeeper;
    this.callers = options.callers;
    this.log = options.log;
  }

  /** Number of files currently open through the mount. */
  get openFiles(): number {
    return this.files.size;
  }

  private backing(path: string): string {
    return path === '/' ? this.source : this.source + path;
  }

  /**
   * Allow or deny; never throws. Any failure while deciding (caller identity
   * missing, store unreadable, bad record) denies and is logged: fail closed.
   */
  private allowed(req: Fuse.RequestCaller, op: string, target: Target, requested: Access): Caller | null {
    let caller: Caller;
    try {
      caller = this.callers.resolve(req);
    } catch (err) {
      this.log.error({ op, path: target.path, caller: req, err: String(err) }, 'denied: caller identity unavailable');
      return null;
    }
    return this.decide(caller, op, target, requested) ? caller : null;
  }

  private decide(caller: Caller, op: string, target: Target, requested: Access): boolean {
    let decision: Decision;
    try {
      decision = this.gatekeeper.check(caller, target, requested);
    } catch (err) {
      this.log.error({ op, path: target.path, uid: caller.uid, err: String(err) }, 'denied: error while deciding');
      return false;
    }
    if (!decision.allow) {
      this.log.info(
        { op, path: target.path, uid: caller.uid, gid: caller.gid, pid: caller.pid, reason: describeDecision(decision) },
        'denied',
      );
    }
    return decision.allow;
  }

  readonly ops: Fuse.Operations = {
    init: (_req, cb) => cb(OK),

    getattr: (_req, path, cb) => {
      try {
        cb(OK, toStatLike(fs.lstatSync(this.backing(path))));
      } catch (err) {
        cb(toErrno(err));
      }
    },

    fgetattr: (_req, path, fd, cb) => {
      try {
        const file = this.files.get(fd);
        cb(OK, toStatLike(file ? fs.fstatSync(file.fd) : fs.lstatSync(this.backing(path))));
      } catch (err) {
        cb(toErrno(err));
      }
    },

    statfs: (_req, _path, cb) => {
      try {
        const s = fs.statfsSync(this.source);
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

    access: (req, path, mode, cb) => {
      try {
        const st = fs.lstatSync(this.backing(path));
        const requested = mode & 7;
        // F_OK asks only whether the file exists.
        if (requested === 0) return cb(OK);
        const ok = this.allowed(req, 'access', { path, dev: st.dev, ino: st.ino }, requested);
        cb(ok ? OK : EACCES);
      } catch (err) {
        cb(toErrno(err));
      }
    },

    opendir: (req, path, _flags, cb) => {
      try {
        const st = fs.statSync(this.backing(path));
        cb(this.allowed(req, 'opendir', { path, dev: st.dev, ino: st.ino }, R) ? OK : EACCES, 0);
      } catch (err) {
        cb(toErrno(err));
      }
    },

    readdir: (req, path, cb) => {
      try {
        const dir = this.backing(path);
        const st = fs.statSync(dir);
        if (!this.allowed(req, 'readdir', { path, dev: st.dev, ino: st.ino }, R)) return cb(EACCES);
        cb(OK, ['.', '..', ...fs.readdirSync(dir)]);
      } catch (err) {
        cb(toErrno(err));
      }
    },

    releasedir: (_req, _path, _fd, cb) => cb(OK),

    open: (req, path, flags, cb) => {
      const requested = accessForOpenFlags(flags);
      let fd: number;
      try {
        // O_TRUNC waits for the decision; O_NOFOLLOW and O_NONBLOCK keep a
        // backing path swapped for a symlink or FIFO from redirecting or
        // blocking us. O_CREAT/O_EXCL belong to create, never to open.
        const backingFlags = (flags & ~(O_TRUNC | O_CREAT | O_EXCL)) | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY;
        fd = fs.openSync(this.backing(path), backingFlags);
      } catch (err) {
        return cb(toErrno(err));
      }
      try {
        // Decide on the file actually opened, so a path swapped between a
        // check and the open cannot hand out a denied file.
        const st = fs.fstatSync(fd);
        if (!st.isFile()) {
          this.log.warn({ op: 'open', path }, 'denied: backing file is not a regular file (tree changed under us)');
          fs.closeSync(fd);
          return cb(EACCES);
        }
        const target: Target = { path, dev: st.dev, ino: st.ino };
        const generation = this.gatekeeper.generation();
        const caller = this.allowed(req, 'open', target, requested);
        if (caller === null) {
          fs.closeSync(fd);
          return cb(EACCES);
        }
        if (flags & O_TRUNC) fs.ftruncateSync(fd, 0);
        this.files.set(fd, { fd, target, caller, requested, generation });
        cb(OK, fd);
      } catch (err) {
        fs.closeSync(fd);
        cb(toErrno(err));
      }
    },

    read: (_req, _path, fd, buf, len, pos, cb) => {
      const file = this.files.get(fd);
      if (file === undefined) return cb(EBADF);
      if (!this.stillAllowed(file, R, 'read')) return cb(EACCES);
      try {
        cb(fs.readSync(fd, buf, 0, len, pos));
      } catch (err) {
        cb(toErrno(err));
      }
    },

    release: (_req, _path, fd, cb) => {
      const file = this.files.get(fd);
      if (file === undefined) return cb(EBADF);
      this.files.delete(fd);
      try {
        fs.closeSync(fd);
        cb(OK);
      } catch (err) {
        cb(toErrno(err));
      }
    },
  };

  /**
   * Revocation: an open file is re-decided, for the identity that opened it,
   * whenever the rule generation moved since its last allow.
   */
  private stillAllowed(file: OpenFile, requested: Access, op: string): boolean {
    let generation: number;
    try {
      generation = this.gatekeeper.generation();
    } catch (err) {
      this.log.error({ op, path: file.target.path, err: String(err) }, 'denied: rule generation unreadable');
      return false;
    }
    if (generation === file.generation) return true;
    if (!this.decide(file.caller, op, file.target, requested)) return false;
    file.generation = generation;
    return true;
  }
}
