// The adversarial test's harness: runs sequences of operations by several
// users through a real mount and compares, after every step, what each user
// can do by every name with the reference model (model.ts): read (a file's
// bytes, or open a directory), open for writing, getxattr; also listxattr
// of the names the step touched, listings of the directories it changed,
// and at the end of a sequence everything, the hidden FIFO and the name
// that is not UTF-8 included. A sequence stops at its first divergence.
//
// For speed, nothing is spawned per step: the daemon is one child process
// for the whole suite (its database on a tmpfs when there is one), each
// test user has one long-lived helper process (python3, started once
// through setpriv as that user, umask 0) that takes a batch of commands as
// one JSON line on stdin and answers with one JSON line of results (errno
// names), the users' probe batches of a step are sent at once, and rule
// changes go to the admin socket over one kept-alive connection. Each
// sequence runs in a fresh directory of its own (/r1, /r2, ...) with the
// rule set replaced, so the kernel's name cache never holds an entry of an
// earlier sequence. What a run costs is mostly the daemon's: nearly every
// probe is a request it decides on its JavaScript thread, so the probes are
// kept to those the comparison needs (a listing stands for the open of the
// same directory by the same user in the same step). Running sequences
// side by side on one daemon was tried, and was not faster: the daemon
// spent more per step.
//
// fuzz() generates the sequences with fast-check (seeded); a divergence is
// then shrunk by delta debugging over the concrete operations it ran, and
// reported with the seed, the minimal sequence and a line to replay it.
import { execFileSync, spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { createInterface } from 'node:readline';
import fc from 'fast-check';
import { Daemon, makeWorkspace, setprivArgs, type Workspace } from '../helpers/mounts';
import { opArb, resolve, type AbstractOp, type Principals } from './generate';
import {
  FIFO_NAME,
  formatOp,
  Model,
  parentOf,
  R,
  sameResult,
  type Op,
  type Probe,
  type ProbeResult,
  type Rule,
  type RuleSpec,
  type User,
} from './model';

/** Test users: non-root, one shared group (60100: u1's supplementary group, u2's primary). */
export const USERS: readonly User[] = [
  { name: 'u1', uid: 60001, gid: 60001, groups: [60100] },
  { name: 'u2', uid: 60002, gid: 60100, groups: [] },
  { name: 'u3', uid: 60003, gid: 60003, groups: [] },
];
export const PRINCIPALS: Principals = { uids: [60001, 60002, 60003], gids: [60100, 60003] };

/** The rule every sequence starts with on its root: everything allowed to everyone. */
const BASE_RULE: RuleSpec = { owner: 0, defaccess: 7, acl: [], recursive: true };

/**
 * The per-user helper: each input line is a JSON array of commands, each
 * answered (in one output line) by "OK", ["OK", payload] or an errno name.
 * Paths are relative to the mountpoint; a lone surrogate in a path stands for
 * a byte that is not UTF-8 (os.fsencode's surrogateescape).
 *
 * The probes (rf, w, od, x: most of what a run does) are served inline in
 * the loop, without a call per probe. Their opens add O_NONBLOCK, which
 * changes nothing for the regular files and directories they open (the
 * daemon decides by the access mode alone), and would keep anything else
 * from blocking the helper.
 */
const HELPER = String.raw`
import ctypes, errno, json, os, sys
os.umask(0)
libc = ctypes.CDLL(None, use_errno=True)
libc.renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
MNT = os.fsencode(sys.argv[1])
AT_FDCWD = -100
EC = errno.errorcode
O_R = os.O_RDONLY | os.O_NONBLOCK
O_W = os.O_WRONLY | os.O_NONBLOCK
O_D = os.O_RDONLY | os.O_DIRECTORY | os.O_NONBLOCK
def P(p): return MNT + os.fsencode(p)
def rd(p):
    return ['OK', [os.fsdecode(n) for n in os.listdir(P(p))]]
def lx(p):
    return ['OK', ','.join(sorted(n for n in os.listxattr(P(p), follow_symlinks=False) if n.startswith('user.')))]
def create(p, content):
    fd = os.open(P(p), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        try: os.write(fd, content.encode())
        except OSError as e: return 'CREATED-BUT-WRITE-' + EC.get(e.errno, str(e.errno))
    finally: os.close(fd)
    return 'OK'
def renameat2(a, b, flags):
    if libc.renameat2(AT_FDCWD, P(a), AT_FDCWD, P(b), flags) != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))
    return 'OK'
def done(fn):
    def run(*args):
        fn(*args)
        return 'OK'
    return run
H = {
    'rd': rd, 'lx': lx, 'create': create,
    'mkdir': done(lambda p: os.mkdir(P(p), 0o777)),
    'unlink': done(lambda p: os.unlink(P(p))),
    'rmdir': done(lambda p: os.rmdir(P(p))),
    'link': done(lambda a, b: os.link(P(a), P(b), follow_symlinks=False)),
    'rename': done(lambda a, b: os.rename(P(a), P(b))),
    'exchange': lambda a, b: renameat2(a, b, 2),
    'noreplace': lambda a, b: renameat2(a, b, 1),
    'chmod': done(lambda p, m: os.chmod(P(p), m, follow_symlinks=True)),
    'mkfifo': done(lambda p: os.mkfifo(P(p), 0o666)),
    'setxattr': done(lambda p, v: os.setxattr(P(p), 'user.t', v.encode(), follow_symlinks=False)),
}
def serve(cmds, out, open=os.open, read=os.read, close=os.close, getxattr=os.getxattr, fsencode=os.fsencode):
    add = out.append
    for c in cmds:
        kind = c[0]
        try:
            if kind == 'x':
                add(['OK', getxattr(MNT + fsencode(c[1]), 'user.t', follow_symlinks=False).decode('latin-1')])
            elif kind == 'rf':
                fd = open(MNT + fsencode(c[1]), O_R)
                try: add(['OK', read(fd, 256).decode('latin-1')])
                finally: close(fd)
            elif kind == 'w':
                close(open(MNT + fsencode(c[1]), O_W))
                add('OK')
            elif kind == 'od':
                close(open(MNT + fsencode(c[1]), O_D))
                add('OK')
            else:
                add(H[kind](*c[1:]))
        except OSError as e:
            add(EC.get(e.errno) or 'E%d' % e.errno)
write, flush = sys.stdout.write, sys.stdout.flush
write('"ready"\n'); flush()
for line in sys.stdin:
    out = []
    serve(json.loads(line), out)
    write(json.dumps(out) + '\n'); flush()
`;

type Reply = string | ['OK', string | string[]];

class UserHelper {
  private readonly waiting: ((line: string) => void)[] = [];
  private exited = false;

  private constructor(
    readonly user: User,
    private readonly child: ChildProcessWithoutNullStreams,
  ) {
    createInterface({ input: child.stdout }).on('line', (line) => this.waiting.shift()?.(line));
    child.stderr.on('data', (d: Buffer) => process.stderr.write(`[helper ${user.name}] ${d.toString()}`));
    child.once('exit', () => {
      this.exited = true;
      for (const w of this.waiting.splice(0)) w('null');
    });
  }

  static async start(user: User, mnt: string): Promise<UserHelper> {
    const child = spawn('setpriv', [...setprivArgs(user), '/usr/bin/python3', '-c', HELPER, mnt], { stdio: ['pipe', 'pipe', 'pipe'] });
    const helper = new UserHelper(user, child);
    const first = await helper.next();
    if (first !== '"ready"') throw new Error(`helper for ${user.name} did not start: ${first}`);
    return helper;
  }

  private next(): Promise<string> {
    return new Promise((resolve) => this.waiting.push(resolve));
  }

  async send(cmds: readonly unknown[]): Promise<Reply[]> {
    if (this.exited) throw new Error(`helper of ${this.user.name} has exited`);
    const reply = this.next();
    this.child.stdin.write(`${JSON.stringify(cmds)}\n`);
    const parsed = JSON.parse(await reply) as Reply[] | null;
    if (parsed === null || parsed.length !== cmds.length) throw new Error(`helper of ${this.user.name} answered ${JSON.stringify(parsed)}`);
    return parsed;
  }

  stop(): void {
    this.child.stdin.end();
    if (!this.exited) this.child.kill();
  }
}

/**
 * The admin API over one kept-alive connection to its socket, HTTP/1.1
 * written by hand: for requests this small node:http's client costs more
 * than the daemon takes to answer, and a run makes thousands. One request
 * at a time; every reply asked for here is JSON with a Content-Length. A
 * connection the server closed ("Connection: close"), or may be closing
 * (idle a while), is not reused.
 */
class AdminConnection {
  private socket: net.Socket | null = null;
  private received: Buffer = Buffer.alloc(0);
  /** When the last reply came: the server closes a connection idle for 5 s (node's default), so one idle for 2 s is not reused. */
  private lastReply = 0;
  private waiting: {
    readonly socket: net.Socket;
    readonly resolve: (r: { status: number; json: any }) => void;
    readonly reject: (e: Error) => void;
  } | null = null;
  private chain: Promise<unknown> = Promise.resolve();

  constructor(private readonly socketPath: string) {}

  request(method: string, url: string, body?: unknown): Promise<{ status: number; json: any }> {
    const next = this.chain.then(() => this.send(method, url, body));
    this.chain = next.catch(() => {});
    return next;
  }

  close(): void {
    this.socket?.destroy();
    this.socket = null;
  }

  private async send(method: string, url: string, body?: unknown): Promise<{ status: number; json: any }> {
    if (this.socket !== null && performance.now() - this.lastReply > 2000) this.close();
    const socket = this.socket ?? (await this.connect());
    const data = body === undefined ? '' : JSON.stringify(body);
    const head =
      `${method} ${url} HTTP/1.1\r\nHost: aclfs\r\n` +
      (body === undefined ? '' : `Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(data)}\r\n`);
    return new Promise((resolve, reject) => {
      this.waiting = { socket, resolve, reject };
      socket.write(`${head}\r\n${data}`);
    });
  }

  private connect(): Promise<net.Socket> {
    return new Promise((resolve, reject) => {
      const socket = net.createConnection(this.socketPath);
      socket.once('error', reject);
      socket.once('connect', () => {
        socket.off('error', reject);
        this.socket = socket;
        this.received = Buffer.alloc(0);
        socket.on('data', (d: Buffer) => this.receive(d));
        const gone = (err?: Error): void => {
          if (this.socket === socket) this.socket = null;
          const w = this.waiting;
          if (w?.socket !== socket) return;
          this.waiting = null;
          w.reject(err ?? new Error('admin connection closed before the reply'));
        };
        socket.on('error', gone);
        socket.on('close', () => gone());
        resolve(socket);
      });
    });
  }

  private receive(d: Buffer): void {
    this.received = this.received.length === 0 ? d : Buffer.concat([this.received, d]);
    const end = this.received.indexOf('\r\n\r\n');
    if (end < 0) return;
    const head = this.received.subarray(0, end).toString('latin1');
    const length = /\r\ncontent-length: *(\d+)/i.exec(head);
    const w = this.waiting;
    if (length === null) {
      this.waiting = null;
      this.close();
      w?.reject(new Error(`admin reply without a Content-Length: ${JSON.stringify(head)}`));
      return;
    }
    const total = end + 4 + Number(length[1]);
    if (this.received.length < total) return;
    const text = this.received.subarray(end + 4, total).toString('utf8');
    this.received = this.received.subarray(total);
    this.waiting = null;
    this.lastReply = performance.now();
    if (/\r\nconnection: *close/i.test(head)) this.close();
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      json = undefined;
    }
    w?.resolve({ status: Number(/^HTTP\/1\.[01] (\d{3})/.exec(head)?.[1] ?? 0), json });
  }
}

export interface Divergence {
  /** 0-based index of the executed (not skipped) operation after which it showed. */
  readonly step: number;
  readonly what: 'op' | 'probe' | 'binding';
  /** One line: who, what, expected, got. */
  readonly detail: string;
  /** What a shrunk sequence must still show to count as the same divergence. */
  readonly signature: string;
}

export interface TraceEntry {
  readonly op: Op;
  readonly result: string;
  readonly expect: readonly string[];
}

export interface RunReport {
  /** Operations executed (skips not counted). */
  readonly steps: number;
  readonly skipped: readonly string[];
  readonly trace: readonly TraceEntry[];
  readonly divergence: Divergence | null;
  readonly ms: number;
  /** Where the time went: operations, waits for the daemon's binder, probes (ms). */
  readonly timing: { op: number; binding: number; probe: number; setup: number };
}

const show = (r: ProbeResult | Reply): string => (typeof r === 'string' ? r : `OK:${JSON.stringify(r[1])}`);

/** Sorted names of a real listing, without the names that are not UTF-8 (served exactly or refused: either is fine). */
function listing(names: string[]): string {
  return names
    .filter((n) => !/[\ud800-\udfff]/.test(n))
    .sort()
    .join('/');
}

export interface HarnessOptions {
  readonly defaultPolicy?: 'allow' | 'deny';
}

export class Harness {
  private runs = 0;
  /** Probes sent so far (for the rate reported). */
  probeCount = 0;
  /** How often each operation had each result ("rename EXDEV": 12), over every run. */
  readonly results = new Map<string, number>();
  readonly defaultPolicy: 'allow' | 'deny';
  private readonly adminConnection: AdminConnection;
  /** FIFOs made ahead (one mkfifo for many sequences), outside SRC, renamed into each new sequence's directory. */
  private readonly fifoPool: string[] = [];

  private constructor(
    readonly ws: Workspace,
    private readonly dbDir: string,
    readonly daemon: Daemon,
    private readonly helpers: readonly UserHelper[],
    options: HarnessOptions,
  ) {
    this.defaultPolicy = options.defaultPolicy ?? 'deny';
    this.adminConnection = new AdminConnection(ws.socket);
  }

  static async start(options: HarnessOptions = {}): Promise<Harness> {
    const ws = makeWorkspace('aclfs-adversarial-');
    // The database in memory where there is a tmpfs: every rule change
    // commits, and an fsync to disk per step would dominate the run.
    const dbDir = fs.existsSync('/dev/shm') ? fs.mkdtempSync('/dev/shm/aclfs-adversarial-') : ws.dir;
    const db = path.join(dbDir, 'db');
    let daemon: Daemon | undefined;
    const helpers: UserHelper[] = [];
    try {
      fs.chmodSync(ws.src, 0o755);
      daemon = await Daemon.start(
        [ws.src, ws.mnt, '--db', db, '--socket', ws.socket, '--default', options.defaultPolicy ?? 'deny', '--log-level', 'warn'],
        ws.mnt,
      );
      for (const u of USERS) helpers.push(await UserHelper.start(u, ws.mnt));
      return new Harness(ws, dbDir, daemon, helpers, options);
    } catch (err) {
      for (const h of helpers) h.stop();
      await daemon?.ensureStopped();
      ws.cleanup();
      fs.rmSync(dbDir, { recursive: true, force: true });
      throw err;
    }
  }

  /** The options that change what a run does, as `npm run fuzz` arguments. */
  describeOptions(): string {
    return this.defaultPolicy === 'allow' ? ' --default allow' : '';
  }

  async stop(): Promise<void> {
    this.adminConnection.close();
    for (const h of this.helpers) h.stop();
    await this.daemon.ensureStopped();
    this.ws.cleanup();
    fs.rmSync(this.dbDir, { recursive: true, force: true });
  }

  /** One admin request (see AdminConnection). */
  private admin(method: string, url: string, body?: unknown): Promise<{ status: number; json: any }> {
    return this.adminConnection.request(method, url, body);
  }

  /** A FIFO made behind the mount's back, at `to`. */
  private placeFifo(to: string): void {
    if (this.fifoPool.length === 0) {
      const dir = path.join(this.ws.dir, 'fifos');
      fs.mkdirSync(dir, { recursive: true });
      const made = Array.from({ length: 64 }, (_, i) => path.join(dir, `${this.runs}-${i}`));
      execFileSync('mkfifo', ['-m', '666', ...made]);
      this.fifoPool.push(...made);
    }
    fs.renameSync(this.fifoPool.pop()!, to);
  }

  /**
   * Runs one sequence from a fresh directory and stops at the first
   * divergence. Abstract operations are resolved against the model as they
   * come; concrete ones run as given.
   */
  async run(ops: readonly (AbstractOp | Op)[]): Promise<RunReport> {
    const t0 = performance.now();
    const prefix = `/r${++this.runs}`;
    const srcRoot = this.ws.src + prefix;
    const real = (p: string): string => (p === '/' ? prefix : prefix + p);
    fs.mkdirSync(srcRoot);
    fs.chmodSync(srcRoot, 0o777);
    // Behind the mount's back: a FIFO (hidden by the mount) and a file whose name is not UTF-8.
    this.placeFifo(path.join(srcRoot, FIFO_NAME));
    fs.writeFileSync(Buffer.concat([Buffer.from(`${srcRoot}/`), Buffer.from([0xff])]), 'bad');

    // Every earlier rule goes, and the sequence's directory gets the rule
    // it starts with. Imported, so bound by the daemon's sweep rather than
    // at once: a directory's binding never shows (nothing links it, and
    // this one is never renamed), and the model knows it as such
    // (importRule).
    const reset = await this.admin('POST', '/v1/rules/import?replace=true', {
      version: 1,
      rules: [{ path: prefix, ...BASE_RULE }],
    });
    if (reset.status !== 200) throw new Error(`rule reset failed: ${reset.status} ${JSON.stringify(reset.json)}`);
    const model = new Model(USERS, this.defaultPolicy);
    model.importRule('/', BASE_RULE);

    const trace: TraceEntry[] = [];
    const skipped: string[] = [];
    const timing = { op: 0, binding: 0, probe: 0, setup: performance.now() - t0 };
    const finish = (divergence: Divergence | null): RunReport => ({
      steps: trace.length,
      skipped,
      trace,
      divergence,
      ms: performance.now() - t0,
      timing,
    });
    let t = performance.now();
    const lap = (what: 'op' | 'binding' | 'probe'): void => {
      const now = performance.now();
      timing[what] += now - t;
      t = now;
    };

    for (const raw of ops) {
      const op = 'a' in raw ? resolve(model, raw) : raw;
      if ('skip' in op) {
        skipped.push(op.skip);
        continue;
      }
      const step = trace.length;
      const outcome = model.outcome(op);
      lap('op');
      if (op.kind === 'link' || op.kind === 'unlink') {
        // The file's rule, taken over by the daemon's sweep, must be bound
        // before a link (by path only, a new name would not share it: EXDEV)
        // and before the removal of the name it sits at while the file has
        // others (the rule would be left behind).
        const id = model.names.get(op.path);
        const d =
          id === undefined || (op.kind === 'unlink' && model.nlink(id) < 2)
            ? null
            : await this.confirmBindings(model, real, step, (rule) => rule.bound === id && (op.kind === 'link' || rule.path === op.path));
        if (d !== null) {
          trace.push({ op, result: '(not run)', expect: outcome.expect });
          return finish(d);
        }
      }
      lap('binding');
      const result = await this.perform(model, op, real);
      trace.push({ op, result, expect: outcome.expect });
      const key = `${op.kind} ${result}`;
      this.results.set(key, (this.results.get(key) ?? 0) + 1);
      if (!outcome.expect.includes(result)) {
        const text = formatOp(op, USERS);
        return finish({
          step,
          what: 'op',
          detail: `${text}: expected ${outcome.expect.join(' or ')}, got ${result}`,
          signature: `op:${op.kind}:${outcome.expect.join('|')}:${result}`,
        });
      }
      if (result === 'OK' || /^2\d\d$/.test(result)) outcome.apply();
      lap('op');
      // A file with several names may show whether its rule is bound yet.
      const d = await this.confirmBindings(model, real, step, (rule) => model.bindingShows(rule));
      lap('binding');
      if (d !== null) return finish(d);
      const p = await this.probe(model, real, step, op);
      lap('probe');
      if (p !== null) return finish(p);
    }
    const end = await this.probe(model, real, Math.max(0, trace.length - 1), null);
    lap('probe');
    return finish(end);
  }

  private async perform(model: Model, op: Op, real: (p: string) => string): Promise<string> {
    switch (op.kind) {
      case 'rule-add':
      case 'rule-set':
      case 'rule-rm': {
        const apiPath = real(op.path);
        const q = `path=${encodeURIComponent(apiPath)}`;
        const body = op.kind === 'rule-rm' ? undefined : { path: apiPath, ...op.rule };
        const res =
          op.kind === 'rule-add'
            ? await this.admin('POST', '/v1/rules', body)
            : await this.admin(op.kind === 'rule-set' ? 'PUT' : 'DELETE', `/v1/rules/by-path?${q}`, body);
        return String(res.status);
      }
      default: {
        let cmd: unknown[];
        switch (op.kind) {
          case 'create':
            cmd = ['create', real(op.path), model.nextContent()];
            break;
          case 'badname':
            cmd = ['create', real(op.path), 'bad'];
            break;
          case 'chmod':
            cmd = ['chmod', real(op.path), op.mode];
            break;
          case 'setxattr':
            cmd = ['setxattr', real(op.path), `v${op.user}`];
            break;
          case 'link':
          case 'rename':
          case 'exchange':
          case 'noreplace':
            cmd = [op.kind, real(op.path), real(op.to)];
            break;
          default:
            cmd = [op.kind, real(op.path)];
        }
        const [reply] = await this.helpers[op.user]!.send([cmd]);
        return show(reply!);
      }
    }
  }

  /**
   * A rule that takes over an existing file without being written (the
   * rule holding the file went, or let go of it with its last other name)
   * is bound by the daemon's binder a little later: it sweeps the waiting
   * rules after each commit, every 250 ms. The model binds at once, as the
   * product definition has it (model.pendingBindings). Where the difference would show
   * (the file has another name by which some probe would differ, it is
   * about to be linked, or the rule's own name is about to go), wait until
   * the daemon reports the rule bound to that file. Rules written through
   * the admin API bind at once and never wait here.
   */
  private async confirmBindings(
    model: Model,
    real: (p: string) => string,
    step: number,
    relevant: (rule: Rule) => boolean,
  ): Promise<Divergence | null> {
    for (const rule of [...model.pendingBindings]) {
      if (rule.bound === null || !relevant(rule)) continue;
      const name = model.namesOf(rule.bound)[0]!;
      const ino = fs.lstatSync(this.ws.src + real(name)).ino;
      const deadline = Date.now() + 5000;
      for (;;) {
        const res = await this.admin('GET', `/v1/rules/by-path?path=${encodeURIComponent(real(rule.path))}`);
        if (res.status === 200 && res.json?.ino === ino) break;
        if (Date.now() > deadline) {
          return {
            step,
            what: 'binding',
            detail: `the rule at ${rule.path} is not bound to the file at ${name} (ino ${ino}) after 5 s: ${JSON.stringify(res.json)}`,
            signature: 'binding',
          };
        }
        await new Promise((r) => setTimeout(r, 10));
      }
      model.pendingBindings.delete(rule);
    }
    return null;
  }

  /**
   * After step `step` (operation `op`; null: the end of the sequence), every
   * user's probes of every name, in one batch per user (all users at once);
   * also listings of the directories the operation changed (by its user,
   * and by one who may read it), and the hidden names now and then. At the
   * end of a sequence, every directory is listed by every user.
   */
  private async probe(model: Model, real: (p: string) => string, step: number, op: Op | null): Promise<Divergence | null> {
    const batches = USERS.map((u) => model.probes(u));
    const add = (i: number, probe: Probe): void => {
      const batch = batches[i]!;
      const at = (kind: Probe[0]): number => batch.findIndex((c) => c.probe[0] === kind && c.probe[1] === probe[1]);
      if (at(probe[0]) >= 0) return;
      const entry = { probe, expect: model.expect(USERS[i]!, probe) };
      // A listing opens the directory as 'od' does (the same user, name and
      // OPENDIR, expected to give the same answer): it stands for that probe.
      const od = probe[0] === 'rd' ? at('od') : -1;
      if (od >= 0) batch[od] = entry;
      else batch.push(entry);
    };
    if (op === null) {
      // The end of a sequence: every directory listed, every listxattr, the hidden names, by everyone.
      for (let i = 0; i < USERS.length; i++) {
        for (const p of model.paths()) {
          if (model.obj(p)!.kind === 'dir') add(i, ['rd', p]);
          add(i, ['lx', p]);
        }
        batches[i]!.push(...model.hidden());
      }
    } else {
      // listxattr (r, as getxattr) of the names the operation touched, by everyone.
      for (const p of opPaths(op)) if (model.names.has(p)) for (let i = 0; i < USERS.length; i++) add(i, ['lx', p]);
      if ('user' in op) {
        // Listings of the directories it changed: by its user, and by one who may read them.
        for (const dir of touchedDirs(model, op)) {
          add(op.user, ['rd', dir]);
          const reader = USERS.findIndex((u) => model.may(u, dir, R));
          if (reader >= 0) add(reader, ['rd', dir]);
        }
        if (op.kind === 'mkfifo' || op.kind === 'badname') batches[op.user]!.push(...model.hidden());
      }
    }
    // Each user's batch starts at another point of its list (the order of
    // probes within a step changes nothing), so that the helpers do not all
    // ask for the same kind of request at once: measured a little faster.
    batches.forEach((batch, i) => batch.push(...batch.splice(0, Math.floor((batch.length * i) / batches.length))));
    this.probeCount += batches.reduce((n, b) => n + b.length, 0);
    const replies = await Promise.all(
      batches.map((batch, i) => this.helpers[i]!.send(batch.map(({ probe: [kind, p] }) => [kind, real(p)]))),
    );
    for (let i = 0; i < batches.length; i++) {
      const batch = batches[i]!;
      for (let j = 0; j < batch.length; j++) {
        const { probe, expect } = batch[j]!;
        const reply = replies[i]![j]!;
        const got: ProbeResult = typeof reply === 'string' ? reply : ['OK', Array.isArray(reply[1]) ? listing(reply[1]) : reply[1]];
        if (!sameResult(expect, got)) {
          return {
            step,
            what: 'probe',
            detail: `${USERS[i]!.name} ${probeName(probe)}: expected ${show(expect)}, got ${show(got)}`,
            signature: `probe:${probe[0]}:${typeof expect === 'string' ? expect : 'OK'}:${typeof got === 'string' ? got : 'OK'}`,
          };
        }
      }
    }
    return null;
  }
}

/** The paths an operation names. */
function opPaths(op: Op): string[] {
  return 'to' in op ? [op.path, op.to] : 'path' in op ? [op.path] : [];
}

/** Existing directories whose entries an operation may have changed. */
function touchedDirs(model: Model, op: Op): string[] {
  const out = new Set<string>();
  for (const p of opPaths(op)) {
    out.add(parentOf(p));
    out.add(p);
  }
  return [...out].filter((p) => model.obj(p)?.kind === 'dir');
}

function probeName([kind, p]: Probe): string {
  const what = { rf: 'read', od: 'open directory', rd: 'list', w: 'open for writing', x: 'getxattr', lx: 'listxattr' }[kind];
  return `${what} ${JSON.stringify(p).slice(1, -1)}`;
}

// ---- the fuzz loop, shrinking and reports --------------------------------------------

export interface FuzzOptions {
  readonly seed: number;
  /** Stop after at least this many executed steps... */
  readonly steps: number;
  /** ...or after this long, whichever comes first. */
  readonly timeLimitMs?: number;
  /** Operations per sequence (each sequence starts from an empty tree). */
  readonly perRun: number;
  /** Time allowed for shrinking a divergence. */
  readonly shrinkMs?: number;
  readonly log?: (line: string) => void;
}

export interface FuzzReport {
  readonly timing: RunReport['timing'];
  readonly steps: number;
  readonly skipped: number;
  readonly runs: number;
  readonly ms: number;
  /** Set when a divergence was found: the full report, with the shrunk sequence. */
  readonly failure: string | null;
}

export async function fuzz(h: Harness, o: FuzzOptions): Promise<FuzzReport> {
  const t0 = performance.now();
  let steps = 0;
  let skipped = 0;
  let runs = 0;
  const timing = { op: 0, binding: 0, probe: 0, setup: 0 };
  let failing: { ops: AbstractOp[]; report: RunReport; run: number } | null = null;
  const arb = fc.array(opArb(USERS.length, PRINCIPALS), { minLength: o.perRun, maxLength: o.perRun });
  // Skipped operations do not count: enough sequences for `steps` executed ones.
  const numRuns = Math.ceil((o.steps / o.perRun) * 1.25) + 1;
  const deadline = o.timeLimitMs === undefined ? Infinity : Date.now() + o.timeLimitMs;
  let fcError = '';
  try {
    await fc.assert(
      fc.asyncProperty(arb, async (ops) => {
        // Past the step count, the time limit or a divergence, the remaining runs pass untried.
        if (Date.now() > deadline || failing !== null || steps >= o.steps) return true;
        const report = await h.run(ops);
        runs++;
        steps += report.steps;
        for (const k of ['op', 'binding', 'probe', 'setup'] as const) timing[k] += report.timing[k];
        skipped += report.skipped.length;
        if (report.divergence !== null) {
          failing = { ops, report, run: runs };
          return false;
        }
        return true;
      }),
      { seed: o.seed, numRuns, endOnFailure: true, ...(o.timeLimitMs === undefined ? {} : { interruptAfterTimeLimit: o.timeLimitMs }) },
    );
  } catch (err) {
    fcError = err instanceof Error ? err.message.split('\n').slice(0, 3).join('\n') : String(err);
  }
  const ms = performance.now() - t0;
  if (failing === null) {
    if (fcError !== '') throw new Error(`fast-check failed without a divergence: ${fcError}`);
    return { steps, skipped, runs, ms, timing, failure: null };
  }
  const found: { ops: AbstractOp[]; report: RunReport; run: number } = failing;
  const shrunk = await shrink(h, found.report, o.shrinkMs ?? 60_000, o.log);
  const lines = [
    `DIVERGENCE between the mount and the model (seed ${o.seed}, sequence ${found.run} of the run, step ${found.report.divergence!.step + 1} of ${o.perRun})`,
    `first seen: ${found.report.divergence!.detail}`,
    `fast-check: ${fcError.split('\n')[0] ?? ''}`,
    `reproduce the whole run: npm run fuzz -- --seed ${o.seed} --steps ${o.steps} --per-run ${o.perRun}${h.describeOptions()}`,
    '',
    ...shrunk,
  ];
  return { steps, skipped, runs, ms, timing, failure: lines.join('\n') };
}

/** The concrete operations a report executed, up to and including the step that diverged. */
function executed(report: RunReport): Op[] {
  const n = report.divergence === null ? report.trace.length : report.divergence.step + 1;
  return report.trace.slice(0, n).map((t) => t.op);
}

/**
 * Delta debugging over the concrete operations (ddmin): removes chunks,
 * then single operations, while the same divergence still shows; returns
 * the report lines of the smallest sequence found.
 */
export async function shrink(h: Harness, first: RunReport, budgetMs: number, log?: (line: string) => void): Promise<string[]> {
  const signature = first.divergence!.signature;
  const deadline = Date.now() + budgetMs;
  let best = first;
  let ops = executed(first);
  const again = await h.run(ops);
  if (again.divergence?.signature !== signature) {
    return [
      `the concrete sequence did not diverge the same way again (${again.divergence?.detail ?? 'no divergence'}): timing-dependent?`,
      ...describe(first),
    ];
  }
  best = again;
  ops = executed(again);
  let n = 2;
  let tries = 0;
  while (ops.length >= 2 && Date.now() < deadline) {
    const chunk = Math.ceil(ops.length / n);
    let reduced = false;
    for (let start = 0; start < ops.length && Date.now() < deadline; start += chunk) {
      const candidate = ops.slice(0, start).concat(ops.slice(start + chunk));
      const report = await h.run(candidate);
      tries++;
      if (report.divergence?.signature === signature) {
        best = report;
        ops = executed(report);
        n = Math.max(n - 1, 2);
        reduced = true;
        break;
      }
    }
    if (!reduced) {
      if (n >= ops.length) break;
      n = Math.min(ops.length, n * 2);
    }
  }
  log?.(`shrunk to ${ops.length} operations in ${tries} tries`);
  return [
    `minimal sequence (${ops.length} operations; ${Date.now() < deadline ? 'fully shrunk' : 'shrinking stopped at its time limit'}):`,
    ...describe(best),
    '',
    `replay: npm run fuzz -- --replay '${JSON.stringify(ops)}'${h.describeOptions()}`,
  ];
}

/** The trace of a report, one line per operation, and the divergence. */
export function describe(report: RunReport): string[] {
  const lines = report.trace.map((t, i) => {
    const diverged = report.divergence?.what === 'op' && report.divergence.step === i;
    return `  ${String(i + 1).padStart(3)}. ${formatOp(t.op, USERS)}  -> ${t.result}${diverged ? `   <-- model: ${t.expect.join(' or ')}` : ''}`;
  });
  if (report.divergence !== null) lines.push(`  then: ${report.divergence.detail}`);
  return lines;
}
