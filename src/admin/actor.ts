// Who is making an admin request: the peer of its socket connection as the
// kernel reports it (SO_PEERCRED: pid, uid, gid at connect time), set by
// the server around each request's handler, so the service can record who
// changed what without every operation taking it as an argument.
import { AsyncLocalStorage } from 'node:async_hooks';

export interface Actor {
  readonly pid: number;
  readonly uid: number;
  readonly gid: number;
}

const current = new AsyncLocalStorage<Actor | null>();

/** Runs `fn` with `actor` as the one making the request (null: unknown). */
export function asActor<T>(actor: Actor | null, fn: () => T): T {
  return current.run(actor, fn);
}

/** The actor of the request being served; null when unknown (in-process calls, an unknown peer). */
export function currentActor(): Actor | null {
  return current.getStore() ?? null;
}
