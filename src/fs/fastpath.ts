// Publishing allow decisions to the binding's fast path: an open the rules
// allow is stored in C (caller uid and gid, path, access mode, the very
// file, the commit epoch), and the binding replays it for the next such
// open by itself, without a round trip to JS, while the epoch stays put. A
// commit (or a mode switch) advances the epoch and every stored allow lapses
// at once. Only allows are published, and only those no supplementary group
// could change: the binding knows a caller's uid and gid, not its groups.
// Nothing is published while allows are audited: every open must then reach
// JS to be recorded (the cost: each open is a round trip to the daemon).
import * as fs from 'node:fs';
import { native } from '../native/binding';
import type { Verdict } from '../rules/engine';
import { R, type Caller, type Target } from '../rules/types';
import type { BackingTree } from './backing';
import type { Gatekeeper } from './gate';
import { accessModeOf, allowFlags } from './handles';
import { identityOf, modeOf } from './stat';

const { O_RDONLY, O_TRUNC, S_IFMT, S_IFDIR } = fs.constants;
/** At most this many subdirectories are decided ahead per opendir. */
const PREDECIDED_SUBDIRECTORIES = 256;
/** ...of which this many per event-loop turn. */
const PREDECIDED_PER_TURN = 16;

export class FastPath {
  constructor(
    private readonly gatekeeper: Gatekeeper,
    private readonly tree: BackingTree,
    /** false while allows are audited: nothing is published (read at every open). */
    private readonly enabled: () => boolean = () => true,
  ) {}

  /**
   * Lets the binding replay this open's allow by itself (uid, gid, path,
   * access mode, and this very file), while the epoch stays the one it was
   * decided at. Only allows that no supplementary group could change: the
   * binding knows a caller's uid and gid, not its groups. Opens that
   * truncate always come to JS, and so do opens that only permissive mode
   * or an audit-only rule let through (the rules deny them: nothing to
   * replay, and each such open must be recorded). Returns whether
   * the allow was published.
   */
  publishOpen(caller: Caller, target: Target, st: Uint32Array, flags: number, grant: Verdict): boolean {
    if (!grant.decision.allow) return false;
    if (flags & O_TRUNC) return false;
    if (!this.enabled()) return false;
    const access = accessModeOf(flags);
    if (!this.gatekeeper.holdsForAnyGroups(caller, target, access, grant.decision)) return false;
    return native.publishAllow(caller.uid, caller.gid, access, target.path, st, grant.epoch, allowFlags(grant)) === 1;
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
  predecideSubdirectories(caller: Caller, dir: string): void {
    if (!this.enabled()) return;
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
      // Straight to the gatekeeper, not through the gate: nobody asked, so
      // a denial is neither logged nor audited, and permissive mode does
      // not apply (only the rules' own allows are published).
      const verdict = this.gatekeeper.check(caller, target, R);
      this.publishOpen(caller, target, st, O_RDONLY, verdict);
    } catch {
      // Decided (and logged) if and when it is opened.
    }
  }
}

/**
 * Opens, reads and writes the binding answered by replaying allows, and the
 * directory entries it listed with their attributes (READDIRPLUS).
 */
export function fastPathStats(): { opens: number; reads: number; writes: number; listedAttributes: number } {
  const [opens, reads, writes, listedAttributes] = native.fastStats();
  return { opens, reads, writes, listedAttributes };
}
