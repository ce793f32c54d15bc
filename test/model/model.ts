// A reference model of an aclfs mount, written from the product
// definition alone (docs/product.md, "Decisions" and "Rules"), for the
// adversarial test: it shares no code with src/rules, so a mistake there is
// not copied here to agree with itself.
//
// It models the tree the mount shows (names -> object ids, so it knows
// which names are hard links of one file), the objects (owner, mode,
// content, one user xattr), the rules with their bindings, and, for every
// operation, the outcome that POSIX, the kernel's Unix permission check
// (the mount is layered: default_permissions comes first) and the rules
// give together. An outcome is a set of acceptable results only where the
// product definition leaves the order of two refusals open (EACCES or EXDEV, ...).
//
// Semantics, from the product definition:
// - Governing rule of an object: the rule bound to its inode; else the rule
//   at its exact path; else the nearest ancestor path whose rule is
//   recursive; else the default policy.
// - Granted bits: owner -> rwx; else the caller's user entry; else the union
//   of the matching group entries (primary or supplementary), if any; else
//   defaccess. Allowed iff every requested bit is granted.
// - Requested bits: read r, write w (open O_WRONLY, no truncate), getxattr
//   and listxattr r, setxattr and chmod w on the object; create, mkdir,
//   link, unlink, rmdir, rename w on the parent (rename: both). Creating an
//   object also asks, of the new path itself, the access it is made with:
//   w for mkdir, the open's access for create (O_WRONLY here: w), as the
//   rule waiting at that path or the nearest recursive one above gives it
//   (docs/security.md: create decides both w on the parent and the new
//   file's own access).
// - A rule on a path binds to the object there as soon as it exists (a rule
//   written through the admin API binds to its existing file at once), an
//   inode-bound rule follows its file through renames and hard links, and
//   a bound rule lets go of the inode when the file's last name goes. (A
//   rule that takes over an existing file without being written, when the
//   rule holding the file goes or lets go, is bound by the daemon's binder
//   in a sweep a little later; the harness waits for it where it would
//   show, see pendingBindings.)
// - link/rename fail with EXDEV when (a) some rule sits at `to` or below,
//   (b) the object has no own rule and A(from) != A(to), or (c) it is a
//   directory whose own rule is not recursive and A(from) != A(to); A(p) is
//   the nearest recursive rule strictly above p, or the default. A rename
//   moves the rules at `from` and below along with the names. A rename onto
//   another name of the same file does nothing, as POSIX has it.
// - FIFOs are hidden (mkfifo through the mount: EPERM), names that are not
//   UTF-8 are refused (EILSEQ), renameat2 flags give EINVAL.
//
// Where the product definition leaves a state's meaning open (two rules naming hard links
// of one file, a rule left at a path its file no longer has), the operation
// that would need the answer is not generated: resolve() (generate.ts)
// returns a skip with the reason, and the harness does not perform it.

export const R = 4;
export const W = 2;
export const X = 1;

export interface User {
  readonly name: string;
  readonly uid: number;
  readonly gid: number;
  readonly groups: readonly number[];
}

export type AclEntry = { readonly user: number; readonly access: number } | { readonly group: number; readonly access: number };

export interface RuleSpec {
  readonly owner: number;
  readonly defaccess: number;
  readonly acl: readonly AclEntry[];
  readonly recursive: boolean;
}

export interface Rule extends RuleSpec {
  /** Model identity (for "compare by rule identity"); not the daemon's id. */
  readonly key: number;
  path: string;
  /** Object id the rule is bound to, or null while it waits on its path. */
  bound: number | null;
}

export interface Obj {
  readonly id: number;
  readonly kind: 'file' | 'dir';
  readonly uid: number;
  readonly gid: number;
  mode: number;
  /** Value of the one user xattr (user.t), or null when unset. */
  xattr: string | null;
  /** A file's bytes: written once at creation, never changed (probes only open for writing). */
  readonly content: string;
}

/** One operation, with every argument chosen (see resolve() for abstract ones). */
export type Op =
  | {
      readonly kind: 'create' | 'mkdir' | 'unlink' | 'rmdir' | 'mkfifo' | 'setxattr' | 'badname';
      readonly user: number;
      readonly path: string;
    }
  | { readonly kind: 'chmod'; readonly user: number; readonly path: string; readonly mode: number }
  | { readonly kind: 'link' | 'rename' | 'exchange' | 'noreplace'; readonly user: number; readonly path: string; readonly to: string }
  | { readonly kind: 'rule-add' | 'rule-set'; readonly path: string; readonly rule: RuleSpec }
  | { readonly kind: 'rule-rm'; readonly path: string };

/** Acceptable results of an operation: errno names, 'OK', or HTTP statuses for rule changes. */
export interface Outcome {
  readonly expect: readonly string[];
  /** Applies the operation's effect to the model; run only when the real result is 'OK' (or 2xx). */
  readonly apply: () => void;
}

/** Name of a file made behind the mount: a FIFO, hidden by the mount. */
export const FIFO_NAME = 'fifo';
/** A name that is not UTF-8 (byte 0xff), as Node strings carry it to the helper (a lone surrogate escape). */
export const BAD_NAME = '\udcff';
/** Another non-UTF-8 name (0xfe), created through the mount by the badname op: refused. */
export const BAD_NAME_NEW = '\udcfe';

export const FILE_MODES = [0o666, 0o644, 0o640, 0o600, 0o660, 0o444, 0o222, 0o000] as const;

export function parentOf(p: string): string {
  const i = p.lastIndexOf('/');
  return i <= 0 ? '/' : p.slice(0, i);
}

export function join(dir: string, name: string): string {
  return dir === '/' ? `/${name}` : `${dir}/${name}`;
}

export function baseName(p: string): string {
  return p.slice(p.lastIndexOf('/') + 1);
}

/** Whether `p` lies strictly below `dir`. */
export function isBelow(p: string, dir: string): boolean {
  return dir === '/' ? p !== '/' : p.startsWith(`${dir}/`);
}

/** `p` itself or below it. */
export function atOrBelow(p: string, dir: string): boolean {
  return p === dir || isBelow(p, dir);
}

/** Paths strictly above `p`, nearest first ("/a/b/c" -> "/a/b", "/a", "/"). */
function ancestors(p: string): string[] {
  const out: string[] = [];
  let cur = p;
  while (cur !== '/') {
    cur = parentOf(cur);
    out.push(cur);
  }
  return out;
}

const ok = (apply: () => void = () => {}): Outcome => ({ expect: ['OK'], apply });
const fail = (...errnos: string[]): Outcome => ({ expect: errnos, apply: () => {} });

export class Model {
  readonly names = new Map<string, number>();
  readonly objs = new Map<number, Obj>();
  readonly rules: Rule[] = [];
  private nextObj = 0;
  private nextRule = 1;
  /**
   * Rules the model bound to an existing file that the daemon binds in a
   * sweep a little later: one that took the file over when the rule holding
   * it went or let go (its last other name went), and one imported in bulk
   * (importRule). A rule written through the admin API (rule-add, rule-set)
   * or waiting where a file is made through the mount binds at once. The
   * harness confirms these before anything could tell the difference.
   */
  readonly pendingBindings = new Set<Rule>();

  constructor(
    readonly users: readonly User[],
    readonly defaultPolicy: 'allow' | 'deny',
  ) {
    this.names.set('/', this.newObj('dir', 0, 0, 0o777));
  }

  /** Content the next file created will get (the harness writes it). */
  nextContent(): string {
    return `obj${this.nextObj}`;
  }

  private newObj(kind: 'file' | 'dir', uid: number, gid: number, mode: number): number {
    const id = this.nextObj++;
    this.objs.set(id, { id, kind, uid, gid, mode, xattr: null, content: kind === 'file' ? `obj${id}` : '' });
    return id;
  }

  // ---- queries -----------------------------------------------------------------

  obj(p: string): Obj | undefined {
    const id = this.names.get(p);
    return id === undefined ? undefined : this.objs.get(id);
  }

  /** Every existing path, sorted (the root first). */
  paths(): string[] {
    return [...this.names.keys()].sort();
  }

  namesOf(id: number): string[] {
    return this.paths().filter((p) => this.names.get(p) === id);
  }

  nlink(id: number): number {
    let n = 0;
    for (const v of this.names.values()) if (v === id) n++;
    return n;
  }

  children(dir: string): string[] {
    return this.paths()
      .filter((p) => p !== '/' && parentOf(p) === dir)
      .map(baseName)
      .sort();
  }

  ruleAt(p: string): Rule | undefined {
    return this.rules.find((r) => r.path === p);
  }

  boundRule(id: number): Rule | undefined {
    return this.rules.find((r) => r.bound === id);
  }

  /** A(p): the nearest recursive rule strictly above p, or null (the default policy). */
  above(p: string): Rule | null {
    for (const a of ancestors(p)) {
      const r = this.ruleAt(a);
      if (r?.recursive) return r;
    }
    return null;
  }

  /** The governing rule of the object `id` (or of a new object, null) named `p`; null: the default policy. */
  governing(p: string, id: number | null): Rule | null {
    if (id !== null) {
      const bound = this.boundRule(id);
      if (bound !== undefined) return bound;
    }
    return this.ruleAt(p) ?? this.above(p);
  }

  granted(rule: Rule | null, u: User): number {
    if (rule === null) return this.defaultPolicy === 'allow' ? 7 : 0;
    if (rule.owner === u.uid) return 7;
    let userEntry: number | null = null;
    let groupBits = 0;
    let groupMatched = false;
    for (const e of rule.acl) {
      if ('user' in e) {
        if (e.user === u.uid) userEntry = e.access;
      } else if (e.group === u.gid || u.groups.includes(e.group)) {
        groupMatched = true;
        groupBits |= e.access;
      }
    }
    if (userEntry !== null) return userEntry;
    if (groupMatched) return groupBits;
    return rule.defaccess;
  }

  /** The rules allow `bits` to user `u` on the object `id` (null: not created yet) named `p`. */
  allows(u: User, p: string, id: number | null, bits: number): boolean {
    return (this.granted(this.governing(p, id), u) & bits) === bits;
  }

  /** Unix permission check (the kernel's, default_permissions) of `bits` on an object. */
  dac(u: User, o: Obj, bits: number): boolean {
    const cls = u.uid === o.uid ? (o.mode >> 6) & 7 : o.gid === u.gid || u.groups.includes(o.gid) ? (o.mode >> 3) & 7 : o.mode & 7;
    return (cls & bits) === bits;
  }

  /** Both checks on the object at `p`. */
  may(u: User, p: string, bits: number): boolean {
    const o = this.obj(p)!;
    return this.dac(u, o, bits) && this.allows(u, p, o.id, bits);
  }

  // ---- bindings ----------------------------------------------------------------

  /**
   * A waiting rule binds to the object at its path, unless that object is
   * already bound to another rule (then it still counts by path).
   * `sweep`: bound by the daemon's binder later, not by the operation itself.
   */
  private bindWaiting(sweep: boolean): void {
    for (const r of this.rules) {
      if (r.bound !== null) continue;
      const id = this.names.get(r.path);
      if (id === undefined || this.boundRule(id) !== undefined) continue;
      r.bound = id;
      if (sweep && this.objs.get(id)!.kind === 'file') this.pendingBindings.add(r);
    }
  }

  /** Objects without names are gone: their rules wait on their paths again. */
  private collect(): void {
    const live = new Set(this.names.values());
    for (const id of [...this.objs.keys()]) {
      if (live.has(id)) continue;
      this.objs.delete(id);
      for (const r of this.rules) {
        if (r.bound === id) {
          r.bound = null;
          this.pendingBindings.delete(r);
        }
      }
    }
    this.bindWaiting(true);
  }

  // ---- operations --------------------------------------------------------------

  /**
   * Outcome of `op`. The checks come in the order the kernel makes them
   * (lookups, POSIX type checks, the Unix permission check), then the
   * daemon's (rules, EXDEV), then the backing filesystem's; the daemon's
   * refusals are one set, in any order.
   */
  outcome(op: Op): Outcome {
    switch (op.kind) {
      case 'rule-add':
        if (this.ruleAt(op.path) !== undefined) return fail('409');
        return { expect: ['201'], apply: () => this.addRule(op.path, op.rule) };
      case 'rule-set': {
        const r = this.ruleAt(op.path);
        if (r === undefined) return { expect: ['201'], apply: () => this.addRule(op.path, op.rule) };
        return {
          expect: ['200'],
          apply: () => {
            const i = this.rules.indexOf(r);
            const next: Rule = { ...op.rule, key: r.key, path: r.path, bound: r.bound };
            this.rules[i] = next;
            // Written through the API: bound at once if it was still waiting for the sweep.
            this.pendingBindings.delete(r);
          },
        };
      }
      case 'rule-rm': {
        const r = this.ruleAt(op.path);
        if (r === undefined) return fail('404');
        return {
          expect: ['200'],
          apply: () => {
            this.rules.splice(this.rules.indexOf(r), 1);
            this.pendingBindings.delete(r);
            this.bindWaiting(true);
          },
        };
      }
      default:
        return this.fsOutcome(op);
    }
  }

  /** A rule written through the admin API: bound to the object at its path at once. */
  private addRule(p: string, spec: RuleSpec, sweep = false): void {
    this.rules.push({ ...spec, acl: [...spec.acl], key: this.nextRule++, path: p, bound: null });
    this.bindWaiting(sweep);
  }

  /** A rule imported in bulk (POST /v1/rules/import): bound by the daemon's sweep, later. */
  importRule(p: string, spec: RuleSpec): void {
    if (this.ruleAt(p) !== undefined) throw new Error(`importRule: ${p} has a rule already`);
    this.addRule(p, spec, true);
  }

  private fsOutcome(op: Exclude<Op, { kind: 'rule-add' | 'rule-set' | 'rule-rm' }>): Outcome {
    const u = this.users[op.user]!;
    const p = op.path;
    const o = this.obj(p);
    switch (op.kind) {
      case 'badname':
        return fail('EILSEQ');
      case 'create':
      case 'mkdir':
      case 'mkfifo': {
        const dir = this.obj(parentOf(p));
        if (dir === undefined) return fail('ENOENT');
        if (dir.kind !== 'dir') return fail('ENOTDIR');
        if (o !== undefined) return fail('EEXIST');
        const parentW = this.allows(u, parentOf(p), dir.id, W);
        if (op.kind === 'mkfifo') return parentW ? fail('EPERM') : fail('EPERM', 'EACCES');
        // w on the new object too (mkdir: w; create: the open's access, here
        // O_WRONLY), as its rule gives it: one waiting on its path, else the
        // nearest recursive one above.
        const selfW = this.allows(u, p, null, W);
        if (!parentW || !selfW) return fail('EACCES');
        return ok(() => {
          const id = op.kind === 'create' ? this.newObj('file', u.uid, u.gid, 0o666) : this.newObj('dir', u.uid, u.gid, 0o777);
          this.names.set(p, id);
          // Made through the mount: a rule waiting here binds at once.
          this.bindWaiting(false);
        });
      }
      case 'unlink':
      case 'rmdir': {
        if (o === undefined) return fail('ENOENT');
        if (op.kind === 'unlink' && o.kind === 'dir') return fail('EISDIR');
        if (op.kind === 'rmdir' && o.kind !== 'dir') return fail('ENOTDIR');
        const errs: string[] = [];
        if (!this.allows(u, parentOf(p), this.names.get(parentOf(p))!, W)) errs.push('EACCES');
        if (op.kind === 'rmdir' && this.children(p).length > 0) errs.push('ENOTEMPTY');
        if (errs.length > 0) return fail(...errs);
        return ok(() => {
          this.names.delete(p);
          this.collect();
        });
      }
      case 'chmod': {
        if (o === undefined) return fail('ENOENT');
        if (o.uid !== u.uid) return fail('EPERM');
        if (!this.allows(u, p, o.id, W)) return fail('EACCES');
        return ok(() => {
          o.mode = op.mode;
        });
      }
      case 'setxattr': {
        if (o === undefined) return fail('ENOENT');
        if (!this.dac(u, o, W) || !this.allows(u, p, o.id, W)) return fail('EACCES');
        return ok(() => {
          o.xattr = `v${op.user}`;
        });
      }
      case 'exchange':
      case 'noreplace':
        return this.renameFlagsOutcome(op.kind, p, op.to);
      case 'link':
        return this.linkOutcome(u, p, op.to);
      case 'rename':
        return this.renameOutcome(u, p, op.to);
    }
  }

  /** The object's own rule for a link or rename from `from` (bound to it, or at its exact path). */
  ownRule(from: string): Rule | undefined {
    const id = this.names.get(from)!;
    return this.boundRule(id) ?? this.ruleAt(from);
  }

  /** EXDEV conditions (a)-(c) of the product definition for moving or linking the object at `from` to `to`. */
  crossesRules(from: string, to: string, directory: boolean): boolean {
    if (this.rules.some((r) => atOrBelow(r.path, to))) return true;
    const own = this.ownRule(from);
    const sameAbove = this.above(from) === this.above(to);
    if (own === undefined && !sameAbove) return true;
    if (directory && !(own?.recursive ?? false) && !sameAbove) return true;
    return false;
  }

  private linkOutcome(u: User, from: string, to: string): Outcome {
    const o = this.obj(from);
    if (o === undefined) return fail('ENOENT');
    const dir = this.obj(parentOf(to));
    if (dir === undefined) return fail('ENOENT');
    if (dir.kind !== 'dir') return fail('ENOTDIR');
    if (this.obj(to) !== undefined) return fail('EEXIST');
    // protected_hardlinks: a file the caller does not own needs r and w on it.
    if (o.kind === 'dir') return fail('EPERM');
    if (o.uid !== u.uid && !this.dac(u, o, R | W)) return fail('EPERM');
    const errs: string[] = [];
    if (!this.allows(u, parentOf(to), dir.id, W)) errs.push('EACCES');
    if (this.crossesRules(from, to, false)) errs.push('EXDEV');
    if (errs.length > 0) return fail(...errs);
    return ok(() => {
      this.names.set(to, o.id);
    });
  }

  private renameOutcome(u: User, from: string, to: string): Outcome {
    const o = this.obj(from);
    if (o === undefined) return fail('ENOENT');
    const dir = this.obj(parentOf(to));
    if (dir === undefined) return fail('ENOENT');
    if (dir.kind !== 'dir') return fail('ENOTDIR');
    if (from === to) return ok();
    if (isBelow(to, from)) return fail('EINVAL');
    if (isBelow(from, to)) return fail('ENOTEMPTY');
    const target = this.obj(to);
    if (target !== undefined) {
      if (o.kind === 'dir' && target.kind !== 'dir') return fail('ENOTDIR');
      if (o.kind !== 'dir' && target.kind === 'dir') return fail('EISDIR');
    }
    const parentsW =
      this.allows(u, parentOf(from), this.names.get(parentOf(from))!, W) && this.allows(u, parentOf(to), dir.id, W);
    if (target !== undefined && target.id === o.id) {
      // Two names of one file: POSIX says rename does nothing and succeeds.
      return parentsW ? ok() : { expect: ['OK', 'EACCES'], apply: () => {} };
    }
    const errs: string[] = [];
    if (!parentsW) errs.push('EACCES');
    if (this.crossesRules(from, to, o.kind === 'dir')) errs.push('EXDEV');
    if (target?.kind === 'dir' && this.children(to).length > 0) errs.push('ENOTEMPTY');
    if (errs.length > 0) return fail(...errs);
    return ok(() => {
      const moved = this.paths().filter((q) => atOrBelow(q, from));
      const ids = moved.map((q) => this.names.get(q)!);
      this.names.delete(to);
      for (const q of moved) this.names.delete(q);
      moved.forEach((q, i) => this.names.set(to + q.slice(from.length), ids[i]!));
      for (const r of this.rules) if (atOrBelow(r.path, from)) r.path = to + r.path.slice(from.length);
      this.collect();
    });
  }

  /** renameat2 with RENAME_EXCHANGE or RENAME_NOREPLACE: the kernel's checks, then EINVAL from FUSE. */
  private renameFlagsOutcome(kind: 'exchange' | 'noreplace', from: string, to: string): Outcome {
    if (this.obj(from) === undefined) return fail('ENOENT');
    const dir = this.obj(parentOf(to));
    if (dir === undefined) return fail('ENOENT');
    if (dir.kind !== 'dir') return fail('ENOTDIR');
    const target = this.obj(to);
    if (kind === 'exchange' && target === undefined) return fail('ENOENT');
    if (kind === 'noreplace' && target !== undefined) return fail('EEXIST');
    if (isBelow(to, from)) return fail('EINVAL');
    if (isBelow(from, to)) return fail(kind === 'exchange' ? 'EINVAL' : 'ENOTEMPTY');
    if (from === to) return ok();
    // The request reaches FUSE, which libfuse 2 cannot pass on.
    return fail('EINVAL');
  }

  /**
   * Whether the binding of `rule` (to a file, in the model) can show now:
   * the file has another name by which the rules would give some user
   * other bits (r or w) with the rule by path only.
   */
  bindingShows(rule: Rule): boolean {
    const id = rule.bound;
    if (id === null || this.nlink(id) < 2) return false;
    const names = this.namesOf(id);
    const bits = (): boolean[] => this.users.flatMap((u) => names.flatMap((p) => [R, W].map((b) => this.allows(u, p, id, b))));
    const bound = bits();
    rule.bound = null;
    try {
      return bits().some((v, i) => v !== bound[i]);
    } finally {
      rule.bound = id;
    }
  }

  // ---- probes ------------------------------------------------------------------

  /**
   * What user `u` can do with every name: read (a file: open O_RDONLY and
   * read its bytes; a directory: open it), write (open O_WRONLY, no
   * truncate; files only: the kernel refuses a directory itself) and
   * getxattr user.t.
   */
  probes(u: User): ProbeCase[] {
    const out: ProbeCase[] = [];
    for (const p of this.paths()) {
      const kinds = this.obj(p)!.kind === 'file' ? (['rf', 'w', 'x'] as const) : (['od', 'x'] as const);
      for (const kind of kinds) out.push({ probe: [kind, p], expect: this.expect(u, [kind, p]) });
    }
    return out;
  }

  /** The FIFO and the non-UTF-8 name made behind the mount: never there, never decoded. */
  hidden(): ProbeCase[] {
    return [
      { probe: ['rf', join('/', FIFO_NAME)], expect: 'ENOENT' },
      { probe: ['x', join('/', FIFO_NAME)], expect: 'ENOENT' },
      { probe: ['rf', join('/', BAD_NAME)], expect: 'EILSEQ' },
      { probe: ['x', join('/', BAD_NAME)], expect: 'EILSEQ' },
    ];
  }

  expect(u: User, [kind, p]: Probe): ProbeResult {
    const o = this.obj(p);
    if (o === undefined) return 'ENOENT';
    switch (kind) {
      case 'rf':
        if (o.kind === 'dir') return 'EISDIR';
        return this.may(u, p, R) ? ['OK', o.content] : 'EACCES';
      case 'w':
        if (o.kind === 'dir') return 'EISDIR';
        return this.may(u, p, W) ? 'OK' : 'EACCES';
      case 'od':
        if (o.kind !== 'dir') return 'ENOTDIR';
        return this.may(u, p, R) ? 'OK' : 'EACCES';
      case 'rd':
        if (o.kind !== 'dir') return 'ENOTDIR';
        return this.may(u, p, R) ? ['OK', this.children(p).join('/')] : 'EACCES';
      case 'x':
        if (!this.may(u, p, R)) return 'EACCES';
        return o.xattr === null ? 'ENODATA' : ['OK', o.xattr];
      case 'lx':
        // The kernel asks no Unix permission for listxattr: the rule alone.
        if (!this.allows(u, p, o.id, R)) return 'EACCES';
        return ['OK', o.xattr === null ? '' : 'user.t'];
    }
  }
}

export interface ProbeCase {
  readonly probe: Probe;
  readonly expect: ProbeResult;
}

/**
 * A probe: kind (rf: open a file for reading and read it; od: open a
 * directory; rd: list a directory; w: open for writing; x: getxattr user.t;
 * lx: listxattr, the user.* names) and the model path.
 */
export type Probe = readonly ['rf' | 'od' | 'rd' | 'w' | 'x' | 'lx', string];
/** An errno name, 'OK', or ['OK', payload] (bytes read, names listed, xattr value). */
export type ProbeResult = string | readonly ['OK', string];

export function sameResult(a: ProbeResult, b: ProbeResult): boolean {
  return typeof a === 'string' || typeof b === 'string' ? a === b : a[1] === b[1];
}

export function formatAccess(bits: number): string {
  return `${bits & R ? 'r' : '-'}${bits & W ? 'w' : '-'}${bits & X ? 'x' : '-'}`;
}

export function formatRule(spec: RuleSpec): string {
  const acl = spec.acl.map((e) => ('user' in e ? `u${e.user}:${formatAccess(e.access)}` : `g${e.group}:${formatAccess(e.access)}`));
  return `owner ${spec.owner} def ${formatAccess(spec.defaccess)}${spec.recursive ? ' recursive' : ''}${acl.length ? ` [${acl.join(' ')}]` : ''}`;
}

export function formatOp(op: Op, users: readonly User[]): string {
  const show = (p: string): string => JSON.stringify(p).slice(1, -1);
  switch (op.kind) {
    case 'rule-add':
    case 'rule-set':
      return `${op.kind} ${show(op.path)} (${formatRule(op.rule)})`;
    case 'rule-rm':
      return `rule-rm ${show(op.path)}`;
    default: {
      const who = users[op.user]!.name;
      if (op.kind === 'chmod') return `${who}: chmod ${op.mode.toString(8).padStart(4, '0')} ${show(op.path)}`;
      if ('to' in op) return `${who}: ${op.kind} ${show(op.path)} -> ${show(op.to)}`;
      return `${who}: ${op.kind} ${show(op.path)}`;
    }
  }
}
