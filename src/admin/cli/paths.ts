// Paths as a user gives them to the commands that take a path inside the
// mount (check, rule add|set|rm|show|ls): inside the mount (/docs/a.txt), or
// as seen under the daemon's mountpoint (/srv/protected/docs/a.txt, pasted
// from ls or an error message), which is turned into the former with the
// mountpoint the daemon reports in its status.
import nodePath from 'node:path';
import type { AdminApi, StatusResponse } from '../protocol';

/** What a command needs to know of where the mount is; null without a daemon (--db). */
export interface MountPlace {
  readonly source: string;
  readonly mountpoint: string;
}

/** The daemon's source and mountpoint, from its status; null when there is no mount (--db). */
export async function mountPlace(api: AdminApi): Promise<MountPlace | null> {
  const st: StatusResponse = await api.status();
  return st.source === null || st.mountpoint === null ? null : { source: st.source, mountpoint: st.mountpoint };
}

/**
 * `given` as a path inside the mount: a path at or below the mountpoint
 * (absolute, or relative to the working directory) loses the mountpoint;
 * anything else is passed on as written, for the daemon to take or refuse.
 */
export function insideMount(given: string, place: MountPlace | null): string {
  if (place === null || given === '') return given;
  const abs = nodePath.resolve(given);
  const rel = nodePath.relative(place.mountpoint, abs);
  // Not under the mountpoint (relative names only count when they lead there).
  if (rel === '..' || rel.startsWith(`..${nodePath.sep}`) || nodePath.isAbsolute(rel)) return given;
  return rel === '' ? '/' : `/${rel}`;
}
