// The admin socket's place in the filesystem, locked down:
//
// - the runtime directory (e.g. /run/aclfs) is created 0750, owned by this
//   process's user (root) and the admin group; an existing one must be a real
//   directory owned by us with no access for others and no write for the
//   group, else the daemon refuses to start (it never loosens or tightens a
//   directory it did not create: a typo like --socket /tmp/x.sock must not
//   chmod /tmp). Its group is set to the admin group.
// - a stale socket left by a crash (connect gives ECONNREFUSED) is removed;
//   a live one (another daemon answers) is a conflict; anything else at the
//   path that is not a socket is refused.
// - the socket is bound under umask 0177 (so it is born 0600, never more
//   open), then chowned to root:admin-group and only then opened to 0660.

import fs from 'node:fs';
import net from 'node:net';
import nodePath from 'node:path';
import { AclfsError, conflict, invalid } from '../errors';

export const RUNTIME_DIR_MODE = 0o750;
export const SOCKET_MODE = 0o660;

function euid(): number {
  return process.geteuid?.() ?? 0;
}

/**
 * Checks the directory that would hold the socket, creating nothing:
 * 'missing' when it does not exist yet (prepareRuntimeDir creates it 0750),
 * its Stats when it may be used; throws (invalid) when it may not. Safe to
 * call before anything else is created, so a bad --socket is refused first.
 */
export function checkRuntimeDir(socketPath: string): fs.Stats | 'missing' {
  const dir = nodePath.dirname(socketPath);
  let st: fs.Stats;
  try {
    st = fs.lstatSync(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 'missing';
    throw err;
  }
  // Whoever can write the directory can replace the socket with their own
  // (and answer root's CLI); whoever can search it can reach the socket.
  // So it must be ours alone, as /run/aclfs is: never a shared one.
  const instead = `give --socket a path in a directory of its own, e.g. ${nodePath.join(dir, 'aclfs', nodePath.basename(socketPath))} (created 0750 if missing)`;
  if (!st.isDirectory()) throw invalid(`socket directory ${dir} is not a directory; ${instead}`);
  if (st.uid !== euid()) {
    throw invalid(`socket directory ${dir} is owned by uid ${st.uid}, not by uid ${euid()} running aclfs (its owner could replace the socket); ${instead}`);
  }
  if ((st.mode & 0o027) !== 0) {
    const mode = (st.mode & 0o7777).toString(8).padStart(4, '0');
    // A shared directory (/tmp, sticky or writable by all) is never to be
    // tightened; one of aclfs's own may be.
    const shared = (st.mode & 0o1002) !== 0;
    const risk = (st.mode & 0o022) !== 0 ? 'others than root could replace the socket' : 'others could reach the socket';
    throw invalid(
      `socket directory ${dir} has mode ${mode}: ${risk}, so it must give others nothing and the group no write (0750 or tighter); ${instead}${shared ? '' : `, or chmod 0750 ${dir} if it serves aclfs alone`}`,
    );
  }
  return st;
}

/** Creates or checks the directory that holds the socket. */
export function prepareRuntimeDir(socketPath: string, gid: number): string {
  const dir = nodePath.dirname(socketPath);
  const st = checkRuntimeDir(socketPath);
  if (st === 'missing') {
    // Parents (if any are missing) get the same mode; mkdir applies the
    // umask, so set the mode explicitly afterwards.
    fs.mkdirSync(dir, { recursive: true, mode: RUNTIME_DIR_MODE });
    fs.chownSync(dir, euid(), gid);
    fs.chmodSync(dir, RUNTIME_DIR_MODE);
    return dir;
  }
  if (st.gid !== gid) fs.chownSync(dir, euid(), gid);
  return dir;
}

/** Whether something answers on the Unix socket at `path`. */
function probe(path: string): Promise<'live' | 'stale'> {
  return new Promise((resolve, reject) => {
    const sock = net.connect({ path });
    const done = (result: 'live' | 'stale' | Error): void => {
      sock.destroy();
      if (result instanceof Error) reject(result);
      else resolve(result);
    };
    sock.once('connect', () => done('live'));
    sock.once('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'ECONNREFUSED') done('stale');
      else done(err);
    });
    sock.setTimeout(2000, () => done('live')); // connected-but-silent counts as live: never steal it
  });
}

/**
 * Refuses (conflict) what clearStaleSocket would refuse, changing nothing:
 * a live socket at `path` (another daemon serves it) or a non-socket.
 */
export async function assertSocketFree(path: string): Promise<void> {
  let st: fs.Stats;
  try {
    st = fs.lstatSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw err;
  }
  if (!st.isSocket()) throw conflict(`${path} exists and is not a socket; remove it or choose another --socket`);
  if ((await probe(path)) === 'live') throw conflict(`another aclfs daemon is serving the admin socket ${path}`);
}

/** Removes a stale socket at `path`; refuses a live one or a non-socket. */
export async function clearStaleSocket(path: string): Promise<boolean> {
  let st: fs.Stats;
  try {
    st = fs.lstatSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
  if (!st.isSocket()) throw conflict(`${path} exists and is not a socket; remove it or choose another --socket`);
  if ((await probe(path)) === 'live') throw conflict(`another aclfs daemon is serving the admin socket ${path}`);
  fs.unlinkSync(path);
  return true;
}

/**
 * Binds `server` to `path` with no moment at which the socket is more open
 * than 0600, then gives it to root:gid mode 0660. Returns the socket's inode
 * (so close() removes only the socket it made).
 */
export async function listenRestricted(server: net.Server, path: string, gid: number): Promise<number> {
  const listening = new Promise<void>((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException): void => {
      server.off('listening', onListening);
      reject(err.code === 'EADDRINUSE' ? conflict(`admin socket ${path} is in use`) : err);
    };
    const onListening = (): void => {
      server.off('error', onError);
      resolve();
    };
    server.once('error', onError);
    server.once('listening', onListening);
  });
  // bind(2) happens synchronously inside listen() for a path, so the umask
  // is in force for exactly that call.
  const old = process.umask(0o177);
  try {
    server.listen({ path, exclusive: true });
  } finally {
    process.umask(old);
  }
  await listening;
  const st = fs.lstatSync(path);
  if (!st.isSocket() || (st.mode & 0o177) !== 0) {
    server.close();
    throw new AclfsError('internal', `admin socket ${path} came out with mode ${(st.mode & 0o777).toString(8)}, expected 0600 before opening it to the group`);
  }
  fs.chownSync(path, euid(), gid);
  fs.chmodSync(path, SOCKET_MODE);
  return st.ino;
}

/** Removes the socket at `path` if it is still the one with inode `ino`. */
export function removeSocket(path: string, ino: number): void {
  try {
    if (fs.lstatSync(path).ino === ino) fs.unlinkSync(path);
  } catch {
    /* already gone */
  }
}
