// Who is asking: uid, gid and pid come from the kernel with each request (the
// patched binding reads fuse_get_context() on the libfuse worker thread). The
// supplementary groups are not part of a FUSE request; they are read from
// procfs, as libfuse's own fuse_getgroups() does, and cached briefly per pid.
import { readFileSync } from 'node:fs';
import type { Caller } from '../rules/types';
import type { Fuse } from '../native/binding';

const GROUPS_TTL_MS = 1000;
const MAX_ENTRIES = 4096;

interface CachedGroups {
  readonly uid: number;
  readonly gid: number;
  readonly groups: readonly number[];
  readonly expires: number;
}

/** The whitespace-separated fields of the `key` line of a process status. */
function statusFields(status: string, key: 'Uid:' | 'Gid:' | 'Groups:'): string[] | undefined {
  const line = status.split('\n').find((l) => l.startsWith(key));
  if (line === undefined) return undefined;
  const rest = line.slice(key.length).trim();
  return rest === '' ? [] : rest.split(/\s+/);
}

/** Parses the `Groups:` line of /proc/<pid>/status. */
export function parseStatusGroups(status: string): number[] {
  const fields = statusFields(status, 'Groups:');
  if (fields === undefined) throw new Error('no Groups line in process status');
  return fields.map((f) => {
    const n = Number(f);
    if (!Number.isInteger(n) || n < 0) throw new Error(`bad group id ${JSON.stringify(f)} in process status`);
    return n;
  });
}

export class CallerResolver {
  private readonly cache = new Map<number, CachedGroups>();

  constructor(private readonly readStatus: (pid: number) => string = readProcStatus) {}

  /**
   * The full caller of a request. uid and gid must be there (a request
   * without them throws, and is denied). The supplementary groups are null
   * when they cannot be known: pid 0 (a caller in another pid namespace,
   * e.g. the host reaching into a container's mount), a process already
   * gone, or a status whose filesystem ids are not the request's (the pid
   * was reused). decide() then denies whenever they would matter.
   */
  resolve(req: Fuse.RequestCaller, now: number = Date.now()): Caller {
    const { uid, gid, pid } = req;
    if (!Number.isInteger(uid) || !Number.isInteger(gid) || !Number.isInteger(pid) || uid < 0 || gid < 0 || pid < 0) {
      throw new Error(`incomplete caller identity uid=${uid} gid=${gid} pid=${pid}`);
    }
    if (pid === 0) return { uid, gid, pid, groups: null };
    const hit = this.cache.get(pid);
    if (hit !== undefined && hit.expires > now && hit.uid === uid && hit.gid === gid) {
      return { uid, gid, pid, groups: hit.groups };
    }
    const groups = this.groupsOf(pid, uid, gid);
    if (groups === null) return { uid, gid, pid, groups };
    if (this.cache.size >= MAX_ENTRIES) this.cache.clear();
    this.cache.set(pid, { uid, gid, groups, expires: now + GROUPS_TTL_MS });
    return { uid, gid, pid, groups };
  }

  private groupsOf(pid: number, uid: number, gid: number): number[] | null {
    let status: string;
    try {
      status = this.readStatus(pid);
    } catch {
      return null;
    }
    if (fsId(status, 'Uid:') !== uid || fsId(status, 'Gid:') !== gid) return null;
    return parseStatusGroups(status);
  }
}

/** The filesystem id (4th field) of a Uid:/Gid: line of a process status. */
function fsId(status: string, key: 'Uid:' | 'Gid:'): number | undefined {
  const field = statusFields(status, key)?.[3];
  return field === undefined ? undefined : Number(field);
}

function readProcStatus(pid: number): string {
  // The pid libfuse reports is the calling thread's id; its own task entry
  // holds that thread's credentials.
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/status`, 'utf8');
  } catch {
    return readFileSync(`/proc/${pid}/status`, 'utf8');
  }
}
