// The one place that wires the three areas together: the rules (store,
// engine, cache), the filesystem edge (filter, mount) and the admin side
// (CLI). Nothing else imports across those lines.
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import * as fs from 'node:fs';
import { promisify } from 'node:util';
import pino, { type Logger } from 'pino';
import * as nodePath from 'node:path';
import { runCli, type CliBackend, type MountCommand, type PushCommand, type PushReport } from './admin/cli';
import { LocalApi } from './admin/localApi';
import type { ClosableAdminApi } from './admin/protocol';
import { AdminServer } from './admin/server';
import { AdminService, type FleetSync } from './admin/service';
import { checkRuntimeDir } from './admin/socketFile';
import { AclfsError, conflict, forbidden, invalid, notFound } from './errors';
import { CallerResolver } from './fs/callers';
import { BackingTree, identityLookup } from './fs/backing';
import { fastPathStats } from './fs/fastpath';
import { raisedInBinding, type RequestFault } from './fs/guard';
import { FilterMeters } from './fs/meters';
import { Filter, type RuleIndex } from './fs/ops';
import { assertSocketFree } from './admin/socketFile';
import {
  assertMountpointFree,
  assertPatchedBinding,
  checkLayout,
  clearStaleMount,
  describeHolders,
  isInside,
  isStaleMount,
  Mount,
  openBackingRoot,
  openHandleCount,
  handleCapacity,
  type HandleLimits,
  processesInside,
  requestLoopStats,
  topMountAt,
  unmountPath,
  workerThreadStats,
} from './fs/mount';
import { AuditLevelSwitch, ModeSwitch } from './fs/mode';
import { auditsAllows } from './rules/audit';
import { DurableAuditLog } from './store/auditLog';
import { processFacts } from './system/processes';
import { currentActor, type Actor } from './admin/actor';
import type net from 'node:net';
import { Binder, bindPendingRules } from './store/binder';
import { MetricsListener } from './metrics/listen';
import { createDaemonMetrics, type AuditStats, type DaemonMetrics } from './metrics/registry';
import { DecisionCache } from './rules/cache';
import { PolicyEngine } from './rules/engine';
import { DEFAULT_MAX_CHANGES } from './store/history';
import { DATA_FILE, RuleStore } from './store/store';
import { inspectInChild, verifyInChild } from './store/verify';
import { native } from './native/binding';
import { SystemNameResolver } from './system/names';
import { notifySettingsFrom, ServiceNotifier } from './system/systemd';
import { FleetWriter, Follower, pushRules, syncTarget, type SyncTarget } from './sync';

/** How often the daemon looks for rules committed by other processes. */
const BIND_POLL_MS = 250;
/** How often the daemon checks that its mount still exists. */
const MOUNT_CHECK_MS = 1000;
/** How often the daemon looks for acl entries whose time has come (one index lookup). */
const EXPIRY_CHECK_MS = 250;
/** Expired acl entries stay in their rules, shown as expired, this long; then they are removed. */
const EXPIRED_GRACE_MS = 7 * 24 * 3600 * 1000;
/** A repeated fault (of one kind) is logged at most this often, with the count left out. */
const FAULT_LOG_MS = 1000;
/** The exit code for an internal error (docs/product.md, "Exit codes"). */
const EXIT_INTERNAL = 8;

const execFileAsync = promisify(execFile);

/** The package version (package.json beside dist/). */
const VERSION = ((): string => {
  try {
    return (JSON.parse(fs.readFileSync(nodePath.join(__dirname, '..', 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
})();

/**
 * The admin socket must lie outside the protected tree and the mount: a
 * socket under the mountpoint would be hidden by the mount and the daemon
 * would reach it through itself; one under the source would show up in the
 * protected tree. Returns the socket's absolute path.
 */
function socketOutsideMount(socket: string, layout: { source: string; mountpoint: string }): string {
  const abs = nodePath.resolve(socket);
  let dir = nodePath.dirname(abs);
  // Resolve symlinks of the part that exists (the rest is created by us).
  for (let probe = dir, rest = ''; ; ) {
    try {
      dir = nodePath.join(fs.realpathSync(probe), rest);
      break;
    } catch {
      const parent = nodePath.dirname(probe);
      if (parent === probe) break;
      rest = nodePath.join(nodePath.basename(probe), rest);
      probe = parent;
    }
  }
  for (const [what, root] of [['mountpoint', layout.mountpoint], ['source', layout.source]] as const) {
    if (isInside(dir, root)) throw invalid(`admin socket ${abs} must not be inside the ${what} ${root}`);
  }
  return abs;
}

/** What stat says of a path the user gave, as one line and the error class it belongs to. */
function statGiven(what: string, given: string): fs.Stats {
  try {
    return fs.statSync(given);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') throw notFound(`${what} ${given} does not exist${what === 'mountpoint' ? ` (create it: mkdir -p ${given})` : ''}`);
    if (code === 'EACCES') throw forbidden(`${what} ${given}: permission denied`);
    if (code === 'ENOTCONN') throw conflict(`${what} ${given} is a FUSE mount whose daemon is gone (fusermount -uz ${given})`);
    throw invalid(`${what} ${given}: ${(err as Error).message}`);
  }
}

/**
 * The paths `aclfs mount` was given, checked before anything is created
 * (the database, the socket's directory; the socket's own directory is
 * checked by serve() once it knows the layout): each first mistake is one line
 * with its exit code, and leaves nothing behind. What the kernel would
 * refuse later (a missing or non-empty mountpoint, one the user may not
 * write) is refused here, in words.
 */
async function checkMountArguments(cmd: MountCommand): Promise<void> {
  if (!statGiven('source', cmd.source).isDirectory()) throw invalid(`source ${cmd.source} is not a directory`);
  if (!cmd.inPlace) {
    const mnt = statGiven('mountpoint', cmd.mountpoint);
    if (!mnt.isDirectory()) throw invalid(`mountpoint ${cmd.mountpoint} is not a directory`);
    // A live FUSE mount there is refused for what it is (exit 4).
    await assertMountpointFree(nodePath.resolve(cmd.mountpoint));
    // libfuse refuses a non-empty mountpoint (only --in-place mounts over
    // files, on purpose): the mount would hide what is there.
    if (fs.readdirSync(cmd.mountpoint).length > 0) {
      throw conflict(`mountpoint ${cmd.mountpoint} is not empty (the mount would hide what is there): give an empty directory, or --in-place to mount over SRC itself`);
    }
    const euid = process.geteuid?.() ?? 0;
    if (euid !== 0) {
      try {
        fs.accessSync(cmd.mountpoint, fs.constants.W_OK);
      } catch {
        throw forbidden(`mountpoint ${cmd.mountpoint} is not writable by uid ${euid}, as a FUSE mount by a user other than root needs`);
      }
    }
  }
  checkDatabasePath(cmd.db);
}

/** A --db path that can hold a database: a directory, or nothing yet (created with its parents). */
function checkDatabasePath(db: string): void {
  let st: fs.Stats;
  try {
    st = fs.statSync(db);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return;
    if (code === 'ENOTDIR') throw invalid(`--db ${db}: a part of the path is not a directory`);
    // Anything else (EACCES) is said, in its words, where the database is opened.
    return;
  }
  if (!st.isDirectory()) throw invalid(`--db ${db} is not a directory (the database is a directory)`);
}

/** The system's user and group names (/etc/passwd, /etc/group). */
const systemNames = new SystemNameResolver();

/** --admin-group NAME|GID → gid. */
function adminGid(spec: string): number {
  const gid = systemNames.group(spec);
  if (gid === undefined) throw invalid(`--admin-group: unknown group ${JSON.stringify(spec)}`);
  return gid;
}

/** This process's RLIMIT_NOFILE, from /proc/self/limits ("unlimited" is Infinity). */
export function descriptorLimits(): { soft: number; hard: number } {
  const line = fs
    .readFileSync('/proc/self/limits', 'utf8')
    .split('\n')
    .find((l) => l.startsWith('Max open files'));
  const m = line === undefined ? null : /^Max open files\s+(\S+)\s+(\S+)/.exec(line);
  if (m?.[1] === undefined || m[2] === undefined) throw new Error('no "Max open files" line in /proc/self/limits');
  const value = (v: string): number => (v === 'unlimited' ? Infinity : Number(v));
  return { soft: value(m[1]), hard: value(m[2]) };
}

export interface DescriptorLimit {
  /** The limits now; null where they could not be read. */
  readonly soft: number | null;
  readonly hard: number | null;
  /** Why the soft limit is not the hard one, where it could not be raised. */
  readonly problem?: string;
}

/**
 * Raises this process's soft descriptor limit (RLIMIT_NOFILE) to its hard
 * limit: every file open through the mount may hold a descriptor in the
 * daemon, and the usual soft limit (1024) is soon reached by a few busy
 * callers. Node raises it itself as it starts, where it can; where it did
 * not, prlimit(1) sets it on our own pid (Node has no setrlimit). The hard
 * limit is the administrator's (systemd LimitNOFILE=, ulimit -Hn) and stays
 * as it is. Never throws: the mount serves with whatever limit it has.
 */
export async function raiseDescriptorLimit(): Promise<DescriptorLimit> {
  let limits: { soft: number; hard: number };
  try {
    limits = descriptorLimits();
  } catch (err) {
    return { soft: null, hard: null, problem: String(err) };
  }
  if (limits.soft >= limits.hard) return limits;
  const hard = limits.hard === Infinity ? 'unlimited' : String(limits.hard);
  try {
    await execFileAsync('prlimit', ['--pid', String(process.pid), `--nofile=${hard}:`]);
    limits = descriptorLimits();
  } catch (err) {
    return { ...limits, problem: `prlimit: ${String(err).split('\n')[0] ?? ''}` };
  }
  return limits.soft >= limits.hard ? limits : { ...limits, problem: 'prlimit left the soft limit below the hard one' };
}

/**
 * Logs `emit` at most once per `intervalMs` for each key, telling it how
 * many occurrences went unlogged since: a fault a caller can repeat at will
 * (descriptor exhaustion) must not flood the log.
 */
function throttled(intervalMs: number): (key: string, emit: (suppressed: number) => void) => void {
  const last = new Map<string, { at: number; suppressed: number }>();
  return (key, emit) => {
    const now = Date.now();
    const seen = last.get(key);
    if (seen !== undefined && now - seen.at < intervalMs) {
      seen.suppressed++;
      return;
    }
    last.set(key, { at: now, suppressed: 0 });
    emit(seen?.suppressed ?? 0);
  };
}

function stackOf(err: unknown): string {
  return err instanceof Error ? (err.stack ?? err.message) : String(err);
}

/**
 * With --in-place, the processes already inside SRC (working directory,
 * root, open files) keep reaching the tree under the mount directly,
 * unfiltered: inherent to mounting over a directory. Refused (conflict)
 * unless --force, which logs them and mounts.
 */
function refuseProcessesInside(source: string, force: boolean, log: Logger): void {
  const holders = processesInside(source, new Set([process.pid]));
  if (holders.length === 0) return;
  if (!force) {
    throw conflict(
      `${holders.length === 1 ? '1 process is' : `${holders.length} processes are`} inside ${source} and would keep seeing it unfiltered under the mount: ` +
        `${describeHolders(holders)}; stop them or move them out, or mount anyway with --force`,
    );
  }
  log.warn(
    { source, processes: holders },
    '--force: processes inside the source keep seeing it unfiltered under the mount until they leave it and close what they hold',
  );
}

function makeLogger(level: string): Logger {
  // Logs go to stderr so stdout stays clean for data (export, --json).
  return pino({ level, base: { pid: process.pid } }, pino.destination({ dest: 2, sync: false }));
}

/**
 * The bounds on open handles: all users together, what the daemon's
 * descriptor limit leaves (handleCapacity); per non-root user, `perUser`
 * (--max-open-per-user, 0: no bound), by default a quarter of that.
 */
function handleLimitsFor(perUser: number | null): HandleLimits {
  const total = handleCapacity();
  return { perUser: perUser ?? Math.floor(total / 4), total };
}

/** The rule indexes kept in step with changes made through the mount. */
function storeIndex(store: RuleStore, log: Logger): RuleIndex {
  return {
    created: (path, file) => {
      if (store.bindWaiting(path, file)) log.info({ path }, 'bound waiting rule to new file');
    },
    renamed: (from, to) => {
      const { moved, kept } = store.asActor(`a rename through the mount (${from} to ${to})`, () => store.movePaths(from, to));
      if (moved > 0) log.info({ from, to, moved }, 'rules moved with renamed files');
      // The new path already has a rule: the moved one stays, bound to its
      // file by inode; an administrator should look at both.
      if (kept.length > 0) log.warn({ from, to, rules: kept }, 'rules kept at their old path: new path already has a rule');
    },
    removed: (file) => {
      const id = store.unbindFile(file);
      if (id !== null) log.info({ rule: id, dev: file.dev, ino: file.ino }, 'file gone: rule released its inode');
    },
  };
}

/**
 * The peer of an admin connection as the kernel recorded it at connect
 * (SO_PEERCRED, through the addon); null when it cannot be told. Node
 * keeps a connected socket's descriptor on its handle, which its public
 * API does not show.
 */
function peerOf(socket: net.Socket): Actor | null {
  const fd = (socket as unknown as { _handle?: { fd?: unknown } })._handle?.fd;
  if (typeof fd !== 'number' || fd < 0 || native.peerCredentials === undefined) return null;
  const cred = native.peerCredentials(fd);
  if (typeof cred === 'number') return null;
  const [pid, uid, gid] = cred;
  return { pid, uid, gid };
}

/** The service manager (systemd Type=notify), told what the daemon does; its datagrams and the watchdog's measure come from the addon. */
function serviceNotifier(log: Logger): ServiceNotifier {
  return new ServiceNotifier({
    settings: notifySettingsFrom(process.env, process.pid),
    send: (socket, message) => native.sdNotify(socket, message),
    progress: () => {
      const [started, finished, oldestInFlightMs] = native.requestProgress();
      return { started, finished, oldestInFlightMs };
    },
    onSendError: (message, errno) => log.warn({ message, errno }, 'cannot notify the service manager'),
    onStall: (oldestInFlightMs) => {
      if (oldestInFlightMs === null) log.warn('requests make progress again: watchdog pings resume');
      else log.error({ oldestInFlightMs }, 'a request has been in the daemon longer than the watchdog interval (the backing filesystem hangs?): watchdog pings withheld');
    },
  });
}

/** The daemon's metrics, each read from what the daemon counts anyway (src/metrics/registry.ts). */
function daemonMetrics(parts: {
  store: RuleStore;
  engine: PolicyEngine;
  cache: DecisionCache;
  meters: FilterMeters;
  mode: ModeSwitch;
  handleLimits: HandleLimits;
  audit: () => AuditStats;
}): DaemonMetrics {
  const { store, engine, cache, meters, mode, handleLimits } = parts;
  return createDaemonMetrics({
    requests: () => meters.requestCounts(),
    requestLoop: requestLoopStats,
    decisions: () => meters.decisionCounts(),
    decisionLatency: () => meters.decisionLatency(),
    decisionErrors: () => engine.counters.errors,
    fastPath: fastPathStats,
    cache: () => cache.stats(),
    openHandles: () => ({ open: openHandleCount(), limit: handleLimits.total }),
    rules: () => store.count(),
    generation: () => store.generation(),
    epoch: () => store.epoch.value(),
    permissive: () => mode.permissive(),
    audit: parts.audit,
  });
}

/** ENOENT of a path the command names, as the one-line not-found error it is. */
function missing(what: string, path: string, err: unknown): unknown {
  return (err as NodeJS.ErrnoException).code === 'ENOENT' ? notFound(`${what} ${path}: no such directory`) : err;
}

/**
 * `aclfs mount --check`: everything a start checks before it mounts, with
 * nothing changed (no directory made, no stale mount cleared, no database
 * created or converted): the binding, SRC and MNT and their layout, the
 * admin group and socket, processes inside SRC with --in-place, the
 * --metrics-listen address, and the database, read in a child. Throws the
 * first problem; returns when a start would get as far as mounting.
 */
async function checkMount(cmd: MountCommand): Promise<void> {
  assertPatchedBinding();
  const mountpoint = nodePath.resolve(cmd.mountpoint);
  // A mount left by a crashed daemon is cleared by a start; until then
  // --in-place's SRC (under it) cannot be resolved.
  const stale = await isStaleMount(mountpoint);
  let layout: { source: string; mountpoint: string };
  if (stale && cmd.inPlace) {
    if (nodePath.resolve(cmd.source) !== mountpoint) throw invalid(`--in-place mounts over the source itself: give ${mountpoint} twice`);
    layout = { source: mountpoint, mountpoint };
  } else {
    // What a start checks before it creates anything (a stale mount, which
    // a start clears first, cannot be looked into yet).
    if (!stale) await checkMountArguments(cmd);
    try {
      layout = checkLayout(cmd.source, cmd.mountpoint, cmd.inPlace);
    } catch (err) {
      throw missing('source', cmd.source, err);
    }
  }
  adminGid(cmd.adminGroup);
  const socketPath = socketOutsideMount(cmd.socket, layout);
  checkRuntimeDir(socketPath);
  await assertSocketFree(socketPath);
  if (cmd.inPlace && !stale) refuseProcessesInside(layout.source, cmd.force, makeLogger('silent'));
  // Listened on for a moment, as a start would (an address in use, or not this machine's).
  if (cmd.metricsListen !== null) {
    const probe = await MetricsListener.start(cmd.metricsListen, () => Promise.reject(new Error('a check serves nothing')), makeLogger('silent'));
    await probe.close();
  }
  if (cmd.sync != null) syncTarget(cmd.sync);
  inspectInChild(cmd.db);
}

/** The API's view of fleet sync: the follower's state, and writes through etcd when `writable`. */
function fleetSync(follower: Follower, writer: FleetWriter, writable: boolean): FleetSync {
  return {
    writable,
    write: async (changes) => {
      await writer.write(changes);
    },
    status: () => {
      const st = follower.status();
      const since = (at: Date | null): number | null => (at === null ? null : Math.max(0, Math.round((Date.now() - at.getTime()) / 100) / 10));
      return {
        source: st.source,
        state: st.state,
        writable,
        revision: st.revision,
        lastContactAt: st.lastContactAt?.toISOString() ?? null,
        lastAppliedAt: st.lastAppliedAt?.toISOString() ?? null,
        secondsSinceContact: since(st.lastContactAt),
        secondsSinceApply: since(st.lastAppliedAt),
        fullLoads: st.fullLoads,
        invalidPaths: st.invalidPaths,
        lastError: st.lastError,
      };
    },
  };
}

/** `aclfs push`, with the report the CLI prints. */
async function push(cmd: PushCommand): Promise<PushReport> {
  return pushRules(cmd.sync, cmd.rules, cmd.dryRun);
}

async function serve(cmd: MountCommand): Promise<void> {
  if (cmd.check) return checkMount(cmd);
  assertPatchedBinding();
  // Read once in a child: damage deep in the file can end the process that
  // reads it, which must not be the daemon (and nothing is touched yet).
  verifyInChild(cmd.db);
  const log = makeLogger(cmd.logLevel);
  // Read once and taken out of the environment: the daemon's children
  // (prlimit, fusermount) never speak for it.
  const manager = serviceNotifier(log);
  // A mount left by a crashed daemon is cleared before anything looks at
  // the paths: with --in-place it covers SRC itself, which cannot even be
  // resolved (ENOTCONN) until it is gone. Clearing a mount whose daemon is
  // dead changes nothing anyone can reach.
  if (await clearStaleMount(nodePath.resolve(cmd.mountpoint))) {
    log.warn({ mountpoint: nodePath.resolve(cmd.mountpoint) }, 'cleared a stale mount left by a daemon that is gone');
  }
  await checkMountArguments(cmd);
  const layout = checkLayout(cmd.source, cmd.mountpoint, cmd.inPlace);
  const gid = adminGid(cmd.adminGroup);
  // The etcd target is checked (and its certificate and password files
  // read) before anything is created; etcd itself need not be up.
  const fleetTarget: SyncTarget | null = cmd.sync == null ? null : syncTarget(cmd.sync);
  const socketPath = socketOutsideMount(cmd.socket, layout);
  // Checked now, created (if missing) only once the admin server starts.
  checkRuntimeDir(socketPath);
  if (cmd.inPlace) {
    // A live mount there is refused for what it is, before its daemon's
    // descriptor inside SRC is taken for a process inside it.
    await assertMountpointFree(layout.mountpoint);
    refuseProcessesInside(layout.source, cmd.force, log);
  }
  // Raised now, logged once mounted (a refusal is one line on stderr).
  const descriptors = await raiseDescriptorLimit();
  // Modes of new files come from the kernel with the caller's umask already
  // applied; ours must not strip more.
  process.umask(0);
  const backing = openBackingRoot(layout.source, cmd.inPlace);
  const startedAt = new Date();
  const store = RuleStore.open(cmd.db, native);
  store.setHistoryBounds({ limit: cmd.historyLimit, maxChanges: DEFAULT_MAX_CHANGES });
  // The history names the admin socket's peer for the writes its requests make.
  store.setActors(() => {
    const peer = currentActor();
    return peer === null ? null : `uid ${peer.uid} over the socket`;
  }, 'the daemon');
  const timers: NodeJS.Timeout[] = [];
  const logFault = throttled(FAULT_LOG_MS);
  // The last resort. Every FUSE request runs inside the mount's guard (its
  // fault is that request's errno), every admin request inside its own
  // try/catch, every timer below catches what it calls; what still escapes
  // is a bug. Raised in the binding's request path, it has left a request
  // that can no longer be answered: the daemon ends, and the mount, stale,
  // fails closed until a restart clears it (never unmounted, which would
  // uncover an --in-place SRC). Anywhere else it is logged loudly and the
  // daemon keeps serving.
  const onUncaught = (err: unknown, origin: string): void => {
    if (raisedInBinding(err)) {
      log.fatal({ err: stackOf(err), origin }, 'uncaught error in the FUSE binding: a request is left unanswered; the daemon ends');
      setTimeout(() => process.exit(EXIT_INTERNAL), 1000);
      log.flush(() => process.exit(EXIT_INTERNAL));
      return;
    }
    logFault(`uncaught:${origin}`, (suppressed) =>
      log.fatal({ err: stackOf(err), origin, suppressed }, 'uncaught error outside every request (a bug): logged, the daemon keeps serving'),
    );
  };
  process.on('uncaughtException', onUncaught);
  // Listened for before anything is mounted: a signal during start-up
  // unmounts cleanly once mounted, instead of ending the daemon by default
  // with its mount left stale.
  let stop: (signal: NodeJS.Signals) => void = () => {};
  const stopRequested = new Promise<void>((resolve) => {
    stop = (signal) => {
      log.info({ signal }, 'unmounting');
      resolve();
    };
  });
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  let admin: AdminServer | undefined;
  let metricsListener: MetricsListener | undefined;
  let follower: Follower | null = null;
  let audit: DurableAuditLog | undefined;
  try {
    // Fleet sync: the local database follows etcd; the filter reads only the database.
    follower = fleetTarget === null ? null : new Follower({ store, target: fleetTarget, names: systemNames, log });
    const fleet = follower === null ? null : fleetSync(follower, new FleetWriter(follower, store), cmd.sync?.writable === true);
    const cache = new DecisionCache();
    const engine = new PolicyEngine(store, cache, cmd.defaultPolicy);
    const tree = new BackingTree(backing.fd);
    const identity = identityLookup(tree);
    // Its own LMDB environment (docs/design.md, "The audit log"): written
    // in batches off the decision path, closed after the mount.
    const auditDir = cmd.auditDb ?? nodePath.join(cmd.db, 'audit');
    audit = DurableAuditLog.open(auditDir, {
      maxRecords: cmd.auditMaxRecords,
      maxAgeMs: cmd.auditMaxAgeMs,
      processFacts,
      log,
      releaseMappedPages: () => native.releaseMappedFile(fs.realpathSync(nodePath.join(auditDir, 'data.mdb'))),
    });
    const auditLog = audit;
    // Allows are recorded only where JS decides them: while they are, no
    // allow is published to the fast path, and a change in that advances
    // the commit epoch so the allows already published lapse.
    const auditLevel = new AuditLevelSwitch(cmd.auditLevel, (now, previous) => {
      if (auditsAllows(now) !== auditsAllows(previous)) store.epoch.advance();
      log.warn({ audit: now, previous }, `audit level ${now}: ${now === 'deny' ? 'denials' : 'denials and allows'} are recorded`);
    });
    // Every start enforces (never persisted: a restart fails closed). A
    // switch advances the commit epoch (only ever compared for equality, so
    // an advance without a commit is harmless): cached decisions, allows
    // published to the fast path and handles vouched for in C all lapse, and
    // the next open, and the next read or write of an open handle that
    // reaches the daemon, is decided under the new mode.
    const mode = new ModeSwitch((now, previous) => {
      store.epoch.advance();
      log.warn({ mode: now, previous }, now === 'permissive' ? 'permissive mode: denials are let through and recorded' : 'enforce mode: denials are refused');
    });
    const meters = new FilterMeters();
    const handleLimits = handleLimitsFor(cmd.maxOpenPerUser);
    const metrics = daemonMetrics({ store, engine, cache, meters, mode, handleLimits, audit: () => auditLog.stats() });

    // The admin API, up before the mount so a second daemon on the same
    // socket is refused before it mounts anything.
    let mount: Mount | undefined;
    admin = await AdminServer.start({
      socketPath,
      gid,
      importLimitBytes: cmd.importLimitBytes,
      log,
      metrics: () => metrics.page(),
      accounts: new SystemNameResolver(),
      api: new AdminService({
        store,
        identity,
        defaultPolicy: cmd.defaultPolicy,
        decisionCached: (caller, target, requested) => engine.cached(caller, target, requested),
        audit: auditLog,
        mode,
        auditLevel,
        ...(fleet === null ? {} : { sync: fleet }),
        confirmations: { notify: (level, message) => log[level](message) },
        runtime: () => ({
          version: VERSION,
          pid: process.pid,
          startedAt,
          source: layout.source,
          mountpoint: layout.mountpoint,
          mounted: mount?.isMounted() ?? false,
          socket: socketPath,
          options: {
            rulesOnly: cmd.rulesOnly,
            revoke: cmd.revoke,
            data: cmd.data,
            inPlace: cmd.inPlace,
            defaultPermissions: !cmd.rulesOnly,
          },
          dataPath: mount?.dataPath() ?? null,
          decisions: { ...engine.counters },
          cache: cache.stats(),
          workerLocals: workerThreadStats(),
          fastPath: fastPathStats(),
          audit: {
            level: auditLevel.get(),
            ...auditLog.stats(),
            maxRecords: cmd.auditMaxRecords,
            maxAgeSeconds: Math.round(cmd.auditMaxAgeMs / 1000),
          },
        }),
      }),
      peerOf,
    });

    // Like the admin socket, up before the mount: an address that cannot be
    // listened on fails the start with nothing mounted.
    if (cmd.metricsListen !== null) metricsListener = await MetricsListener.start(cmd.metricsListen, () => metrics.page(), log);
    follower?.start();

    // Bind every path rule whose file exists now, then keep binding rules as
    // they are committed (by this daemon or by `aclfs import --db` elsewhere).
    const bound = bindPendingRules(store, identity);
    const binder = new Binder(store, identity);
    timers.push(
      setInterval(() => {
        try {
          const n = binder.step();
          if (n > 0) log.info({ bound: n }, 'bound rules to files');
        } catch (err) {
          // Tried again at the next tick.
          logFault('bind', (suppressed) => log.error({ err: String(err), suppressed }, 'binding rules failed'));
        }
      }, BIND_POLL_MS),
    );

    const filter = new Filter({
      backingRoot: backing.root,
      tree,
      gatekeeper: engine,
      index: storeIndex(store, log),
      callers: new CallerResolver(),
      log,
      rulesOnly: cmd.rulesOnly,
      audit: auditLog,
      permissive: () => mode.permissive(),
      meters,
      auditLevel: () => auditLevel.get(),
    });
    mount = await Mount.start({
      mountpoint: layout.mountpoint,
      ops: filter.ops,
      defaultPermissions: !cmd.rulesOnly,
      pageCache: cmd.revoke !== 'immediate',
      dataPath: cmd.data,
      passthroughMinSize: cmd.passthroughMinSize,
      overMount: cmd.inPlace,
      backingRootFd: backing.fd,
      // The fast path is always on in the daemon: allows are replayed in C
      // while the store's commit epoch stays put.
      fastPath: { epochPage: store.epoch.page },
      handleLimits,
      requestCounter: (op) => meters.requestCounter(op),
      onFault: (fault: RequestFault) =>
        logFault(`${fault.op}:${fault.kind}`, (suppressed) =>
          log.error(
            { op: fault.op, kind: fault.kind, errno: fault.errno, err: fault.error === undefined ? undefined : stackOf(fault.error), suppressed },
            'FUSE request fault contained (a bug): the daemon keeps serving',
          ),
        ),
    });
    log.info(
      {
        source: layout.source,
        mountpoint: layout.mountpoint,
        db: cmd.db,
        socket: cmd.socket,
        default: cmd.defaultPolicy,
        rulesOnly: cmd.rulesOnly,
        revoke: cmd.revoke,
        data: cmd.data,
        inPlace: cmd.inPlace,
        bound,
        generation: store.generation(),
        audit: cmd.auditLevel,
        auditRecords: auditLog.stats().records,
        // null: sysfs is read-only here (a container); reads stay at 128 KiB.
        readaheadKiB: mount.readaheadKiB,
        // Open files and directories: per non-root user, and for all users.
        maxOpenPerUser: mount.handleLimits.perUser,
        maxOpen: mount.handleLimits.total,
      },
      'mounted',
    );
    const dataPath = mount.dataPath();
    if (dataPath.refusal !== null) log.warn({ refusal: dataPath.refusal }, `passthrough refused, serving file data through the daemon: ${dataPath.refusal}`);
    else log.info({ data: dataPath.mode }, `file data served ${dataPath.mode === 'passthrough' ? 'by FUSE passthrough' : 'through the daemon'}`);
    if (descriptors.problem === undefined) log.info(descriptors, 'descriptor limit');
    else log.warn(descriptors, 'descriptor limit: the soft limit could not be raised to the hard limit');

    // Ready for the service manager once a request has gone through the
    // mount and back (the admin socket listens already); from then on the
    // watchdog is fed while requests make progress.
    await mount.answers();
    manager.ready(`serving ${layout.source} at ${layout.mountpoint}`);
    manager.startWatchdog();
    if (manager.enabled) log.info({ watchdogMs: manager.watchdogMs }, 'told the service manager: ready');

    // Expiring acl entries: an uncached decision reads the clock itself;
    // once an entry's time has come, a commit makes the decisions cached,
    // the allows replayed in C and the handles vouched for in C before it
    // be decided again (within EXPIRY_CHECK_MS), and entries expired for
    // EXPIRED_GRACE_MS are removed from their rules.
    let expiredThrough = 0;
    timers.push(
      setInterval(() => {
        try {
          const next = store.nextExpiry(expiredThrough);
          const now = Date.now();
          if (next === null || next > now) return;
          const removed = store.expire(now, EXPIRED_GRACE_MS);
          expiredThrough = now;
          log.info({ removed, generation: store.generation() }, 'acl entries expired: decided again from now on');
        } catch (err) {
          logFault('expiry', (suppressed) => log.error({ err: stackOf(err), suppressed }, 'expiring acl entries failed: trying again'));
        }
      }, EXPIRY_CHECK_MS),
    );

    const removed = new Promise<void>((resolve) => {
      // A FUSE daemon ends with its mount: if an administrator unmounted it
      // (aclfs unmount, fusermount -u), there is nothing left to serve. A
      // mount table that cannot be read now (descriptors or memory
      // exhausted) says nothing: asked again at the next tick.
      let unreadable = false;
      timers.push(
        setInterval(() => {
          try {
            const probe = mount?.probeMounted();
            if (probe === undefined) return;
            if ('error' in probe) {
              if (!unreadable) log.warn({ err: String(probe.error) }, 'cannot read the mount table: asking again each second');
              unreadable = true;
              return;
            }
            if (unreadable) log.info('mount table readable again');
            unreadable = false;
            if (!probe.mounted) {
              log.warn('mount was removed from outside');
              resolve();
            }
          } catch (err) {
            logFault('mount-check', (suppressed) => log.error({ err: stackOf(err), suppressed }, 'mount check failed: asking again'));
          }
        }, MOUNT_CHECK_MS),
      );
    });
    await Promise.race([stopRequested, removed]);
    manager.stopping(`unmounting ${layout.mountpoint}`);
    timers.forEach(clearInterval);
    // No admin changes while the mount goes away.
    await admin.close();
    await metricsListener?.close();
    await mount.stop();
    log.info('unmounted');
  } finally {
    manager.stopWatchdog();
    timers.forEach(clearInterval);
    await admin?.close();
    await metricsListener?.close();
    await follower?.stop();
    // What is queued is written before the daemon ends.
    await audit?.close().catch((err: unknown) => log.error({ err: String(err) }, 'audit log: closing failed'));
    store.close();
    backing.close();
    process.off('uncaughtException', onUncaught);
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
  }
  // The binding's worker thread and handles must not keep a daemon whose
  // mount is gone alive; everything is closed, so end here.
  log.flush(() => process.exit(0));
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

async function readInput(file: string): Promise<string> {
  if (file === '-') return readStdin();
  try {
    return await readFile(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new AclfsError('not_found', `${file}: no such file`);
    if (code === 'EACCES') throw new AclfsError('forbidden', `${file}: permission denied`);
    throw err;
  }
}

/** `api`, calling `onFailure` whenever one of its operations rejects. */
function failureNoted(api: ClosableAdminApi, onFailure: () => void): ClosableAdminApi {
  return new Proxy(api, {
    get(target, prop, receiver): unknown {
      const value: unknown = Reflect.get(target, prop, receiver);
      if (typeof value !== 'function' || prop === 'close') return value;
      return (...args: unknown[]): unknown => {
        const result: unknown = Reflect.apply(value, target, args);
        return result instanceof Promise
          ? result.catch((err: unknown) => {
              onFailure();
              throw err;
            })
          : result;
      };
    },
  });
}

/** The outermost of `dir` and its ancestors that does not exist yet; null when `dir` exists. */
function firstMissing(dir: string): string | null {
  let missing: string | null = null;
  for (let probe = dir; !fs.existsSync(probe); probe = nodePath.dirname(probe)) missing = probe;
  return missing;
}

/** The admin API on a database directly: the CLI's --db mode. */
async function openDatabase(db: string, create: boolean): Promise<ClosableAdminApi> {
  checkDatabasePath(db);
  if (!create && !fs.existsSync(nodePath.join(db, DATA_FILE))) throw notFound(`no rule database at ${db}`);
  verifyInChild(db);
  // The outermost directory this open creates, if any: a write that fails
  // (a bad rule file, an unknown user) must not leave a new empty database.
  const created = firstMissing(nodePath.resolve(db));
  let failed = false;
  const store = RuleStore.open(db, native);
  // No mount here: check decides by path only, under the daemon's default policy.
  const service = new AdminService({
    store,
    identity: null,
    defaultPolicy: 'deny',
    version: VERSION,
    onClose: () => {
      const unused = failed && created !== null && store.generation() === 0 && store.count() === 0;
      store.close();
      if (unused) fs.rmSync(created, { recursive: true, force: true });
    },
  });
  return failureNoted(new LocalApi(service, new SystemNameResolver()), () => (failed = true));
}

/**
 * `aclfs unmount MNT`: only a FUSE mount is ended (fusermount run by root
 * would unmount any filesystem), and fusermount's own reason is passed on.
 */
async function unmount(given: string): Promise<void> {
  let mountpoint = nodePath.resolve(given);
  if (topMountAt(mountpoint) === null) {
    // Named through a symlink? (A stale mount cannot be resolved: ENOTCONN.)
    try {
      mountpoint = fs.realpathSync(mountpoint);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') throw notFound(`${given} does not exist`);
    }
  }
  const top = topMountAt(mountpoint);
  if (top === null) throw notFound(`${given} is not mounted`);
  if (!top.type.startsWith('fuse')) throw invalid(`${given} holds a mount of type ${top.type}, not an aclfs (FUSE) mount; aclfs unmount ends only those`);
  try {
    await unmountPath(mountpoint);
  } catch (err) {
    // fusermount says why on stderr, e.g. "fusermount: failed to unmount /m: Device or resource busy".
    const said = String((err as { stderr?: unknown }).stderr ?? '').trim().split('\n').at(-1) ?? '';
    const reason = said === '' ? (err as Error).message : said.replace(/^fusermount: /, '');
    if (/busy/i.test(reason)) throw conflict(`${reason} (files are open or processes are inside it; close them, or stop the daemon with SIGTERM)`);
    if (/permission|not permitted/i.test(reason)) throw forbidden(reason);
    throw new AclfsError('internal', `fusermount: ${reason}`);
  }
}

const backend: CliBackend = {
  version: VERSION,
  mount: serve,
  unmount,
  openDatabase,
  push,
};

export async function main(argv: readonly string[] = process.argv.slice(2)): Promise<void> {
  const code = await runCli(argv, backend, {
    stdout: (t) => process.stdout.write(t),
    stderr: (t) => process.stderr.write(t),
    readFile: readInput,
    progress: process.stderr.isTTY ? process.stderr : null,
    stdoutIsTerminal: process.stdout.isTTY,
    ...(process.stderr.isTTY ? { hint: (t: string) => process.stderr.write(t) } : {}),
  });
  process.exitCode = code;
}
