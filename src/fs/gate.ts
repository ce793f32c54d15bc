// The gate: where a request meets the rules. It establishes who is asking,
// asks the gatekeeper (the policy engine) for a decision, and is the one
// place requests are refused: every denial is logged and recorded in the
// audit log here, and permissive mode, or an audit-only deciding rule, lets
// a denial by the rules through (still logged and recorded). Any failure
// while deciding denies, in either mode: fail closed.
import type { Logger } from 'pino';
import type { RequestCaller } from '../native/binding';
import { formatAccess } from '../rules/access';
import { auditsDecision, matchedEntry, type AuditEntry, type AuditLevel } from '../rules/audit';
import { describeDecision } from '../rules/decide';
import type { Verdict } from '../rules/engine';
import type { Move, MoveCheck } from '../rules/moves';
import { W, type Access, type Caller, type Decision, type Target } from '../rules/types';
import { parentOf, type BackingTree } from './backing';
import type { CallerResolver } from './callers';
import { EACCES, ENAMETOOLONG, EXDEV, Refusal } from './errno';
import { FilterMeters } from './meters';
import { identityOf } from './stat';

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

/** Where the filter records what it refuses (the daemon's audit log). */
export interface AuditSink {
  append(entry: AuditEntry): void;
}

export interface GateOptions {
  /** The backing tree: the files decided on are looked at here. */
  readonly tree: BackingTree;
  readonly gatekeeper: Gatekeeper;
  readonly callers: CallerResolver;
  readonly log: Logger;
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
   * Which decisions are recorded (deny, allow or all); read at every
   * decision. Absent: denials only.
   */
  readonly auditLevel?: () => AuditLevel;
}

/** What one audit record says of the decision, besides who asked and what. */
interface Outcome {
  readonly requested: Access;
  readonly allow: boolean;
  /** Refused (an allow, or a denial let through, is not). */
  readonly enforced: boolean;
  readonly decision: Decision | null;
  readonly epoch: number | null;
  readonly reason: string;
}

export class Gate {
  private readonly tree: BackingTree;
  private readonly gatekeeper: Gatekeeper;
  private readonly callers: CallerResolver;
  private readonly log: Logger;
  private readonly audit: AuditSink;
  private readonly permissive: () => boolean;
  private readonly meters: FilterMeters;
  private readonly auditLevel: () => AuditLevel;

  constructor(options: GateOptions) {
    this.tree = options.tree;
    this.gatekeeper = options.gatekeeper;
    this.callers = options.callers;
    this.log = options.log;
    this.audit = options.audit;
    this.permissive = options.permissive;
    this.meters = options.meters ?? new FilterMeters();
    this.auditLevel = options.auditLevel ?? (() => 'deny');
  }

  /** The full caller, or a Refusal(EACCES) when it cannot be established. */
  caller(req: RequestCaller, op: string, path: string): Caller {
    try {
      return this.callers.resolve(req);
    } catch (err) {
      this.log.error({ op, path, caller: req, err: String(err) }, 'denied: caller identity unavailable');
      // Refused before the requested access is worked out: recorded as ---.
      const who: Caller = { uid: req.uid, gid: req.gid, pid: req.pid, groups: null };
      this.meters.decided(op, 'deny', Number.NaN);
      this.record(who, op, { path, dev: 0, ino: 0 }, failure(0, `deny: error while deciding: caller identity unavailable: ${String(err)}`));
      throw new Refusal(EACCES);
    }
  }

  /**
   * The verdict of an allow, or null for a deny; never throws. The one place
   * requests are refused: every denial is logged and recorded in the audit
   * log here. A denial by the rules is let through in permissive mode, and
   * when its deciding rule is audit-only (recorded as "would deny: ..."): its
   * verdict is returned although its decision denies (callers never publish
   * or vouch for such a verdict, so the fast path never replays it and
   * passthrough never serves it: every later open is decided, and recorded,
   * here; see FastPath.publishOpen and OpenFiles.register), still
   * logged and recorded. Any failure while deciding (store unreadable, bad
   * record) denies, in either mode, and is logged: fail closed.
   */
  allowedAt(caller: Caller, op: string, target: Target, requested: Access): Verdict | null {
    let verdict: Verdict;
    // Timed with the monotonic clock of performance.now(): two reads cost
    // about 0.1 µs (see FilterMeters for what else a decision costs here).
    const started = performance.now();
    try {
      verdict = this.gatekeeper.check(caller, target, requested);
    } catch (err) {
      this.meters.decided(op, 'deny', (performance.now() - started) / 1000);
      this.log.error({ op, path: target.path, uid: caller.uid, err: String(err) }, 'denied: error while deciding');
      this.record(caller, op, target, failure(requested, `deny: error while deciding: ${String(err)}`));
      return null;
    }
    const seconds = (performance.now() - started) / 1000;
    const { decision, epoch } = verdict;
    if (decision.allow) {
      this.meters.decided(op, 'allow', seconds);
      if (auditsDecision(this.auditLevel(), true)) {
        this.record(caller, op, target, { requested, allow: true, enforced: false, decision, epoch, reason: describeDecision(decision) });
      }
      return verdict;
    }
    // An audit-only rule's denial is worded as what enforcing it would do.
    const reason = decision.auditOnly ? `would ${describeDecision(decision)}` : describeDecision(decision);
    const letThrough = decision.auditOnly || this.permissive();
    this.meters.decided(op, letThrough ? 'letthrough' : 'deny', seconds);
    // The caller's pid is callerPid: pino's own `pid` is the daemon's.
    this.log.info(
      { op, path: target.path, uid: caller.uid, gid: caller.gid, callerPid: caller.pid, reason, enforced: !letThrough },
      decision.auditOnly
        ? 'denied by an audit-only rule, let through'
        : letThrough
          ? 'denied by the rules, let through (permissive mode)'
          : 'denied',
    );
    this.record(caller, op, target, { requested, allow: false, enforced: !letThrough, decision, epoch, reason });
    return letThrough ? verdict : null;
  }

  /** allowedAt(), or a Refusal(EACCES). */
  demand(caller: Caller, op: string, target: Target, requested: Access): Verdict {
    const grant = this.allowedAt(caller, op, target, requested);
    if (grant === null) throw new Refusal(EACCES);
    return grant;
  }

  /** Requires `requested` on the existing file at `path` (of stat `st`, if known); returns the caller. */
  require(req: RequestCaller, op: string, path: string, requested: Access, st?: Uint32Array): Caller {
    const caller = this.caller(req, op, path);
    this.demand(caller, op, { path, ...identityOf(st ?? this.tree.stat(path)) }, requested);
    return caller;
  }

  /** Requires w on the directory that holds `path` (create, unlink, ...). */
  requireParent(req: RequestCaller, op: string, path: string): Caller {
    return this.require(req, op, parentOf(path), W);
  }

  /**
   * The commit epoch now, for re-deciding `requested` on `target` for
   * `caller`; null, a denial logged and recorded, when it cannot be read.
   */
  epochFor(caller: Caller, op: string, target: Target, requested: Access): number | null {
    try {
      return this.gatekeeper.epoch();
    } catch (err) {
      this.meters.decided(op, 'deny', Number.NaN);
      this.log.error({ op, path: target.path, err: String(err) }, 'denied: commit epoch unreadable');
      this.record(caller, op, target, failure(requested, `deny: error while deciding: commit epoch unreadable: ${String(err)}`));
      return null;
    }
  }

  /** Refuses (and records) a link or rename its rules could not follow. */
  allowMove(caller: Caller, op: string, move: Move): void {
    const target: Target = move.file;
    let check: MoveCheck;
    try {
      check = this.gatekeeper.checkMove(move);
    } catch (err) {
      this.log.error({ op, path: target.path, to: move.to, err: String(err) }, 'denied: error while deciding');
      this.record(caller, op, target, failure(W, `deny: error while deciding: ${String(err)}`));
      throw new Refusal(EACCES);
    }
    if (check.ok) return;
    const reason = `refused: ${check.reason}`;
    this.log.info({ op, path: target.path, to: move.to, uid: caller.uid, reason }, `${op} refused: the rules cannot follow it`);
    this.record(caller, op, target, failure(W, reason));
    throw new Refusal(check.errno === 'EXDEV' ? EXDEV : ENAMETOOLONG);
  }

  /** Records one decision; denials always (at the levels that record them), allows at "allow" and "all". */
  private record(caller: Caller, op: string, target: Target, outcome: Outcome): void {
    if (!auditsDecision(this.auditLevel(), outcome.allow)) return;
    const d = outcome.decision;
    const entry: AuditEntry = {
      op,
      path: target.path,
      uid: caller.uid,
      gid: caller.gid,
      groups: caller.groups,
      pid: caller.pid,
      file: target.dev === 0 && target.ino === 0 ? null : { dev: target.dev, ino: target.ino },
      access: formatAccess(outcome.requested),
      decision: outcome.allow ? 'allow' : 'deny',
      enforced: outcome.enforced,
      rule: d?.ruleId ?? null,
      rulePath: d?.rulePath ?? null,
      entry: d === null ? null : matchedEntry(d, caller),
      epoch: outcome.epoch,
      reason: outcome.reason,
    };
    try {
      this.audit.append(entry);
    } catch (err) {
      // The decision stands whether or not it could be recorded.
      this.log.error({ op, path: target.path, err: String(err) }, 'audit record failed');
    }
  }
}

/** A refusal no rule decided (an error while deciding, a move the rules cannot follow). */
function failure(requested: Access, reason: string): Outcome {
  return { requested, allow: false, enforced: true, decision: null, epoch: null, reason };
}
