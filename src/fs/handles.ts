// The open-file table: what each open handle was decided for, so its reads
// and writes can be decided again once the rules change (revocation). The
// binding serves a handle's reads and writes in C while JS vouches for it
// at the current commit epoch; after a commit they reach JS, which decides
// the handle afresh (stillAllowed) and, on an allow, vouches for it again.
// Open handles are also counted against their caller's bound (hold).
//
// Threads: the table (`files`) and each OpenFile's `epoch` are read and
// written on the JS thread only. The binding's own per-handle state (what is
// vouched for, who opened a replayed handle, the per-user counts) lives in
// C and is reached only through the native calls here.
import * as fs from 'node:fs';
import type { Logger } from 'pino';
import { native } from '../native/binding';
import type { Verdict } from '../rules/engine';
import { R, W, type Access, type Caller, type Target } from '../rules/types';
import type { CallerResolver } from './callers';
import { EMFILE, Refusal } from './errno';
import type { Gate } from './gate';
import { identityOf, statOfDescriptor } from './stat';

const { O_RDONLY, O_WRONLY, O_TRUNC } = fs.constants;
// Linux's mask of the access mode bits; Node does not export it.
const O_ACCMODE = 3;

/** r, w or rw: what an open with these flags lets reads and writes do. */
export function accessModeOf(flags: number): Access {
  const mode = flags & O_ACCMODE;
  return mode === O_RDONLY ? R : mode === O_WRONLY ? W : R | W;
}

/** Bits an open with these flags needs (read r, write w, O_TRUNC w). */
export function accessForOpenFlags(flags: number): Access {
  return flags & O_TRUNC ? accessModeOf(flags) | W : accessModeOf(flags);
}

/** An open file: its backing descriptor is the FUSE file handle. */
export interface OpenFile {
  readonly fd: number;
  readonly target: Target;
  readonly caller: Caller;
  /** What reads and writes on it may do: the open's access mode (r, w, rw). */
  readonly access: Access;
  /** Commit epoch the last allow was decided at (-1: never, decide first). */
  epoch: number;
}

export class OpenFiles {
  /** By descriptor. JS thread only. */
  private readonly files = new Map<number, OpenFile>();

  constructor(
    private readonly gate: Gate,
    private readonly callers: CallerResolver,
    private readonly log: Logger,
  ) {}

  /**
   * Records an open handle, for the re-check of its reads and writes, and
   * lets the binding serve them while the epoch stays the grant's. The
   * binding closes released handles itself (see aclfs_release in native/fastpath.c)
   * and leaves their records here: the kernel sends nothing more for them,
   * and the next open given the same descriptor number records over it.
   */
  register(fd: number, target: Target, caller: Caller, flags: number, grant: Verdict): void {
    const access = accessModeOf(flags);
    this.files.set(fd, { fd, target, caller, access, epoch: grant.epoch });
    this.vouch(fd, access, grant);
  }

  /**
   * The record of open handle `fd`. A handle the binding opened by itself
   * (a replayed allow) has none until its first read or write that reaches
   * JS, i.e. after a commit: it is made then, for the uid, gid and pid that
   * opened it, and marked for a fresh decision.
   */
  lookup(fd: number, path: string): OpenFile | undefined {
    const opener = native.fastOpener(fd);
    if (opener === null) return this.files.get(fd);
    const [uid, gid, pid, access] = opener;
    // Until re-decided, nothing on this handle is served in C.
    native.vouchHandle(fd, 0, 0, 0);
    let st: Uint32Array;
    try {
      st = statOfDescriptor(fd);
    } catch {
      return undefined;
    }
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

  /**
   * Revocation: an open file is re-decided, for the identity that opened
   * it, whenever the commit epoch moved since its last allow. The binding
   * serves reads and writes itself while the epoch stays put, so this runs
   * once per handle after each commit; an allow hands the handle back to it.
   * A let-through (of permissive mode, or of an audit-only rule) does not:
   * the handle's reads and writes keep coming here, and the next commit or
   * mode switch (which advance the epoch) re-decides it, and records it
   * again if the rules still deny it.
   */
  stillAllowed(file: OpenFile, requested: Access, op: string): boolean {
    const epoch = this.gate.epochFor(file.caller, op, file.target, requested);
    if (epoch === null) return false;
    if (epoch === file.epoch) return true;
    const grant = this.gate.allowedAt(file.caller, op, file.target, requested);
    if (grant === null) return false;
    file.epoch = grant.epoch;
    this.vouch(file.fd, file.access, grant);
    return true;
  }

  /**
   * Counts open handle `fd` against its caller's bound (the binding keeps
   * the counts; release gives the handle back). Over the bound, or when the
   * descriptor is beyond what the binding can count, the open fails EMFILE.
   * Called last, once nothing else can fail: the handle is then the
   * caller's until release.
   */
  hold(fd: number, caller: Caller): void {
    if (native.holdHandle(fd, caller.uid) === 1) return;
    native.vouchHandle(fd, 0, 0, 0);
    this.log.warn({ uid: caller.uid, fd }, 'open refused: the caller holds as many open handles as it may');
    throw new Refusal(EMFILE);
  }

  /**
   * Lets the binding serve reads and writes of handle `fd` in C while the
   * epoch stays the grant's; a let-through of permissive mode or of an
   * audit-only rule (a grant whose decision denies) is never vouched for
   * (access 0: nothing is served in C, every op comes here).
   */
  private vouch(fd: number, access: Access, grant: Verdict): void {
    if (!grant.decision.allow) native.vouchHandle(fd, 0, 0, 0);
    else native.vouchHandle(fd, access, grant.epoch, allowFlags(grant));
  }
}

/** How the binding may serve an open of a file (native ACLFS_ALLOW_*). */
export const ALLOW_PASSTHROUGH = 1;

/**
 * The flags an allow is handed to the binding with: FUSE passthrough (the
 * kernel reads and writes the backing file itself, so the daemon never sees
 * the handle again) only for an allow of the rules themselves (never a
 * let-through of permissive mode or of an audit-only rule, whose reads and
 * writes must each be recorded), and never for a revocable rule's, whose
 * open handles must keep reaching the daemon for a revoke to stop them.
 */
export function allowFlags(grant: Verdict): number {
  return grant.decision.allow && !grant.decision.revocable ? ALLOW_PASSTHROUGH : 0;
}
