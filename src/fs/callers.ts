// Who is asking: uid, gid and pid come from the kernel with each request (the
// patched binding reads fuse_get_context() on the libfuse worker thread). The
// supplementary groups are not part of a FUSE request; they are read from
// procfs, as libfuse's own fuse_getgroups() does, and cached briefly per pid.
import { readFileSync } from 'node:fs';
import type { Caller } from '../rules/types';
import type Fuse from 'fuse-native';

const GROUPS_TTL_MS = 1000;
const MAX_ENTRIES = 4096;

interface CachedGroups {
  readonly uid: number;
  readonly gid: number;
  readonly groups: readonly number[];
  readonly expires: number;
}

/** Parses the `Groups:` line of /proc/<pid>/status. */
export function parseStatusGroups(status: string): number[] {
  const line = status.split('\n').find((l) => l.startsWith('Groups:'));
  if (line === undefined) throw new Error('no Groups line in process status');
  const fields = line.slice('Groups:'.length).trim();
  if (fields === '') return [];
  return fields.split(/\s+/).map((f) => {
    const n = Number(f);
    if (!Number.isInteger(n) || n < 0) throw new Error(`bad group id ${JSON.stringify(f)} in process status`);
    return n;
  });
}

export class CallerResolver {
  private readonly cache = new Map<number, CachedGroups>();

  constructor(private readonly readStatus: (pid: number) => string = readProcStatus) {}

  /**
   * The full caller of a request. Throws when the identity is incomplete
   * (pid 0, process gone before its groups could be read): the caller of
   * this function must deny, since a missing group entry could otherwise
   * widen access.
   */
  resolve(req: Fuse.RequestCaller, now: number = Date.now()): Caller {
    const { uid, gid, pid } = req;
    if (!Number.isInteger(uid) || !Number.isInteger(gid) || !Number.isInteger(pid) || pid <= 0) {
      throw new Error(`incomplete caller identity uid=${uid} gid=${gid} pid=${pid}`);
    }
    const hit = this.cache.get(pid);
    if (hit !== undefined && hit.expires > now && hit.uid === uid && hit.gid === gid) {
      return { uid, gid, pid, groups: hit.groups };
    }
    const groups = parseStatusGroups(this.readStatus(pid));
    if (this.cache.size >= MAX_ENTRIES) this.cache.clear();
    this.cache.set(pid, { uid, gid, groups, expires: now + GROUPS_TTL_MS });
    return { uid, gid, pid, groups };
  }
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
