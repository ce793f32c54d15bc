// The guard every FUSE request is served inside: a fault in one request
// (a handler that throws, answers twice, or answers without an errno) is
// that request's errno, never the daemon's end nor another request's answer.
import * as path from 'node:path';
import type { Operations } from '../native/binding';
import { EIO, toErrno } from './errno';
import type { RequestCounter } from './meters';

/** A fault in one FUSE request that the guard contained. */
export interface RequestFault {
  /** The operation: open, read, ... */
  readonly op: string;
  /**
   * threw: the handler threw before answering (answered with `errno`);
   * threw-after-reply: it threw once it had answered (nothing more sent);
   * second-reply: it answered twice (the second answer was dropped);
   * bad-reply: its answer carried no errno (answered EIO instead).
   */
  readonly kind: 'threw' | 'threw-after-reply' | 'second-reply' | 'bad-reply';
  readonly error?: unknown;
  /** What the request was answered with, where the guard answered it. */
  readonly errno?: number;
}

type Reply = (errno: number, a?: unknown, b?: unknown) => void;

/**
 * Every handler of `ops`, wrapped so that one request can neither end the
 * daemon nor disturb another request. A libfuse worker thread waits for
 * exactly one answer to its request: a handler that throws would leave it
 * (and its caller) waiting forever, and the exception would end the daemon;
 * one that answered twice would hand its second answer to whatever request
 * that thread serves next. So: a throw before the answer is answered with
 * the error's errno (EIO if it carries none); a second answer is dropped;
 * an answer whose errno is not an integer (which the binding could not
 * send) becomes EIO. Each is reported to `onFault`. Every request is
 * counted, by operation, in the counter `counterOf` gives for it (the
 * one entry point all requests that reach JS pass through).
 */
export function guardOperations(
  ops: Operations,
  onFault: (fault: RequestFault) => void,
  counterOf?: (op: string) => RequestCounter,
): Operations {
  const report = (fault: RequestFault): void => {
    try {
      onFault(fault);
    } catch {
      // Reporting must not undo the guard.
    }
  };
  const guarded: Record<string, unknown> = {};
  for (const [op, handler] of Object.entries(ops) as [string, unknown][]) {
    if (typeof handler !== 'function') {
      guarded[op] = handler;
      continue;
    }
    const serve = handler as (...args: unknown[]) => void;
    // Bound here, once per operation: a request only bumps a number.
    const requests = counterOf?.(op) ?? { count: 0 };
    guarded[op] = (...args: unknown[]): void => {
      requests.count++;
      // The binding's answer callback is every handler's last argument.
      const reply = args[args.length - 1] as Reply;
      let answered = false;
      const answer: Reply = (errno, a, b) => {
        if (answered) {
          report({ op, kind: 'second-reply' });
          return;
        }
        if (typeof errno !== 'number' || (errno | 0) !== errno) {
          report({ op, kind: 'bad-reply', error: new Error(`answer ${String(errno)} is not an errno`), errno: EIO });
          reply(EIO);
        } else {
          reply(errno, a, b);
        }
        // Set once the binding took the answer: if taking it threw, the
        // request is still unanswered.
        answered = true;
      };
      args[args.length - 1] = answer;
      try {
        serve(...args);
      } catch (error) {
        if (answered) {
          report({ op, kind: 'threw-after-reply', error });
          return;
        }
        const errno = toErrno(error);
        report({ op, kind: 'threw', error, errno });
        answer(errno);
      }
    };
  }
  return guarded as Operations;
}

/**
 * Whether an error that escaped to the process was raised in the binding's
 * own request path, outside every guarded handler: its JavaScript (the
 * frames of fuse-native's index.js, or of the project's side of it,
 * src/native/binding.ts), or its native reply (napi-macros'
 * "napi_...(...) failed!", thrown on the tick after a handler answered).
 * The request it belonged to can no longer be answered: its libfuse thread
 * and its caller would wait forever.
 */
export function raisedInBinding(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  const stack = err.stack ?? err.message;
  return (
    stack.includes(`${path.sep}fuse-native${path.sep}index.js`) ||
    stack.includes(`${path.sep}native${path.sep}binding.`) ||
    /^napi_\w+\(.*\) failed!$/.test(err.message)
  );
}
