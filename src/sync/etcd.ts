// The etcd client (the `etcd3` package, etcd's v3 gRPC API) as the sync
// uses it: a status probe, a consistent paged read of the rules at one
// revision, transactions, and watches. etcd does the replication and the
// ordering; nothing here adds a protocol of its own.
//
// Retries are the follower's (follower.ts), not the client's: its retry
// and circuit-breaker policies are turned off, so a call fails at once when
// etcd is unreachable and the follower says so in `status`. gRPC's own
// reconnection backoff is kept short (at most 2 s), so a restarted etcd is
// found again within seconds.
import { noop } from 'cockatiel';
import { Etcd3, type ICompare, type IKeyValue, type IOptions, type IRequestOp, type ITxnResponse } from 'etcd3';
import type { SyncTarget } from './target';

/** Deadline of one unary call (a page of a load, a transaction, a probe). */
const CALL_TIMEOUT_MS = 5000;
/** Deadline of the reachability probe. */
export const PROBE_TIMEOUT_MS = 1000;
/** Keys per page of a paged read. */
const PAGE = 5000;

export interface EtcdHeader {
  /** The store's revision when the call was served. */
  readonly revision: number;
  /** The cluster's id (decimal), constant for the life of a cluster. */
  readonly cluster: string;
}

/** A key under the prefix as read: its value and the revision that last changed it. */
export interface KeyValue {
  readonly key: string;
  readonly value: Buffer;
  readonly modRevision: number;
}

export class EtcdConnection {
  readonly client: Etcd3;

  constructor(target: SyncTarget) {
    const options: IOptions = {
      hosts: [...target.hosts],
      dialTimeout: CALL_TIMEOUT_MS,
      defaultCallOptions: (context) => (context.isStream ? {} : { deadline: Date.now() + CALL_TIMEOUT_MS }),
      faultHandling: { host: () => noop, global: noop },
      grpcOptions: {
        'grpc.initial_reconnect_backoff_ms': 100,
        'grpc.max_reconnect_backoff_ms': 2000,
        // A page of a large rule set is several MiB.
        'grpc.max_receive_message_length': 256 * 1024 * 1024,
        'grpc.max_send_message_length': 256 * 1024 * 1024,
      },
    };
    if (target.credentials !== null) {
      // grpc takes a null root certificate as "the system's roots"; the
      // client's type asks for a Buffer.
      options.credentials = {
        rootCertificate: target.credentials.ca as Buffer,
        ...(target.credentials.key === null ? {} : { privateKey: target.credentials.key }),
        ...(target.credentials.cert === null ? {} : { certChain: target.credentials.cert }),
      };
    }
    if (target.auth !== null) options.auth = { username: target.auth.user, password: target.auth.password };
    this.client = new Etcd3(options);
  }

  close(): void {
    this.client.close();
  }

  /** The cluster's current revision and id; rejects when no member answers within `timeoutMs`. */
  async header(timeoutMs = CALL_TIMEOUT_MS): Promise<EtcdHeader> {
    const res = await this.client.maintenance.status({ deadline: Date.now() + timeoutMs });
    return { revision: Number(res.header.revision), cluster: res.header.cluster_id };
  }

  /**
   * Every key under `prefix` at one revision (the first page's, or
   * `revision`), read in pages; rejects with a compaction error if etcd
   * compacts past that revision meanwhile.
   */
  async readPrefix(prefix: string, revision?: number): Promise<{ revision: number; cluster: string; kvs: KeyValue[] }> {
    const end = prefixEnd(prefix);
    const kvs: KeyValue[] = [];
    let start = Buffer.from(prefix);
    let at = revision;
    let cluster = '';
    for (;;) {
      const res = await this.client.kv.range({
        key: start,
        range_end: end,
        limit: PAGE,
        sort_order: 'Ascend',
        sort_target: 'Key',
        ...(at === undefined ? {} : { revision: at }),
      });
      at ??= Number(res.header.revision);
      cluster = res.header.cluster_id;
      for (const kv of res.kvs) kvs.push(keyValue(kv));
      if (!res.more || res.kvs.length === 0) break;
      start = Buffer.concat([res.kvs[res.kvs.length - 1]!.key, Buffer.from([0])]);
    }
    return { revision: at, cluster, kvs };
  }

  /** Whether etcd has compacted away revision `revision` (a read at it is refused). */
  async compactedPast(prefix: string, revision: number): Promise<boolean> {
    try {
      await this.client.kv.range({ key: Buffer.from(prefix), range_end: prefixEnd(prefix), revision, count_only: true });
      return false;
    } catch (err) {
      if (isCompacted(err)) return true;
      throw err;
    }
  }

  /** One etcd transaction: `success` runs iff every comparison holds. */
  txn(compare: ICompare[], success: IRequestOp[]): Promise<ITxnResponse> {
    return this.client.kv.txn({ compare, success, failure: [] });
  }
}

/** The end of the key range of every key starting with `prefix` (etcd's usual prefix end). */
export function prefixEnd(prefix: string): Buffer {
  const end = Buffer.from(prefix);
  for (let i = end.length - 1; i >= 0; i--) {
    if (end[i]! < 0xff) {
      end[i]!++;
      return end.subarray(0, i + 1);
    }
  }
  return Buffer.from([0]);
}

function keyValue(kv: IKeyValue): KeyValue {
  return { key: kv.key.toString('utf8'), value: kv.value, modRevision: Number(kv.mod_revision) };
}

/** An etcd or gRPC error as one line, without gRPC's empty trailers ("... Resolution note: "). */
export function describeEtcdError(err: unknown): string {
  const text = err instanceof Error ? err.message : String(err);
  return (text.split('\n')[0] ?? '').replace(/\.?\s*Resolution note:\s*$/, '').trim();
}

/** etcd refused a read or watch at a revision it has compacted away. */
export function isCompacted(err: unknown): boolean {
  return err instanceof Error && /compacted/i.test(err.message);
}

/** Puts `value` at `key` (a transaction operation). */
export function putOp(key: string, value: string): IRequestOp {
  return { request_put: { key: Buffer.from(key), value: Buffer.from(value) } };
}

/** Deletes `key` (a transaction operation). */
export function deleteOp(key: string): IRequestOp {
  return { request_delete_range: { key: Buffer.from(key) } };
}

/** `key` was last changed at `modRevision` (0: the key does not exist). */
export function unchangedSince(key: string, modRevision: number): ICompare {
  return { key: Buffer.from(key), target: 'Mod', result: 'Equal', mod_revision: modRevision };
}

/** No key under `prefix` has changed after `revision`. */
export function prefixUnchangedSince(prefix: string, revision: number): ICompare {
  return { key: Buffer.from(prefix), range_end: prefixEnd(prefix), target: 'Mod', result: 'Less', mod_revision: revision + 1 };
}
