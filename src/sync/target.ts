// Where a fleet's rule set lives: `etcd://HOST:PORT[,HOST:PORT...]/PREFIX`
// (or `etcds://` for TLS), and how a rule path maps to an etcd key and back.
//
// One key per rule: PREFIX/rules<path>, the rule's canonical path appended
// as it is ("/fleet/rules/" for "/", "/fleet/rules/docs/a.txt" for
// "/docs/a.txt"). Canonical paths have no "//", no trailing "/" and no "."
// or ".." segments, so the mapping is one to one and a key reads as the
// path it governs (`etcdctl get --prefix /fleet/rules/`).
import { readFileSync } from 'node:fs';
import { invalid } from '../errors';
import { checkRulePath } from '../rules/validate';

/** What the command line gives for a sync (aclfs mount --sync ..., aclfs push --sync ...). */
export interface SyncArgs {
  readonly url: string;
  /** CA certificate (PEM) that signs the etcd servers' certificates; implies TLS. */
  readonly ca?: string;
  /** Client certificate and key (PEM) for etcd's client-certificate auth; imply TLS. */
  readonly cert?: string;
  readonly key?: string;
  /** etcd user (role-based access); its password is read from `passwordFile`. */
  readonly user?: string;
  readonly passwordFile?: string;
}

/** A parsed, checked sync target: what a client needs to connect, and the key layout. */
export interface SyncTarget {
  /** `etcd://host:port,.../prefix` as given, without credentials: the source recorded with the rules. */
  readonly source: string;
  /** gRPC endpoints, with their scheme: http://host:port or https://host:port. */
  readonly hosts: readonly string[];
  readonly tls: boolean;
  /** The key prefix, "/" first and no trailing "/" (e.g. "/fleet"). */
  readonly prefix: string;
  /** PEM bytes of the CA, client certificate and key, where given. */
  readonly credentials: { readonly ca: Buffer | null; readonly cert: Buffer | null; readonly key: Buffer | null } | null;
  readonly auth: { readonly user: string; readonly password: string } | null;
}

const URL_SHAPE = /^(etcds?):\/\/([^/]+)(\/.*)?$/;
const HOST_PORT = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/;

/** Parses and checks `args`, reading the certificate and password files it names. Throws `invalid` with the option at fault. */
export function syncTarget(args: SyncArgs): SyncTarget {
  const m = URL_SHAPE.exec(args.url);
  if (m === null) throw invalid(`--sync ${JSON.stringify(args.url)} is not like etcd://HOST:PORT/PREFIX (or etcds:// for TLS)`);
  const scheme = m[1]!;
  const hostList = m[2]!;
  if (hostList.includes('@')) throw invalid('--sync: give etcd credentials with --sync-user and --sync-password-file, not in the URL');
  const hosts = hostList.split(',').map((h) => {
    const hp = HOST_PORT.exec(h);
    if (hp === null || Number(hp[2]) < 1 || Number(hp[2]) > 65535) throw invalid(`--sync: ${JSON.stringify(h)} is not HOST:PORT`);
    return h;
  });
  const prefix = (m[3] ?? '').replace(/\/+$/, '');
  if (prefix === '') throw invalid('--sync: name a key prefix for the fleet, e.g. etcd://127.0.0.1:2379/aclfs');
  if (prefix.includes('\0')) throw invalid('--sync: the prefix must not hold NUL');
  const read = (what: string, file: string | undefined): Buffer | null => {
    if (file === undefined) return null;
    try {
      return readFileSync(file);
    } catch (err) {
      throw invalid(`${what} ${file}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message}`);
    }
  };
  const ca = read('--sync-ca', args.ca);
  const cert = read('--sync-cert', args.cert);
  const key = read('--sync-key', args.key);
  if ((cert === null) !== (key === null)) throw invalid('--sync-cert and --sync-key go together');
  const tls = scheme === 'etcds' || ca !== null || cert !== null;
  let auth: SyncTarget['auth'] = null;
  if (args.user !== undefined || args.passwordFile !== undefined) {
    if (args.user === undefined || args.user === '') throw invalid('--sync-password-file needs --sync-user');
    const password = read('--sync-password-file', args.passwordFile);
    if (password === null) throw invalid('--sync-user needs --sync-password-file (a file holding the password)');
    auth = { user: args.user, password: password.toString('utf8').replace(/\r?\n$/, '') };
  }
  return {
    source: `${scheme}://${hosts.join(',')}${prefix}`,
    hosts: hosts.map((h) => `${tls ? 'https' : 'http'}://${h}`),
    tls,
    prefix,
    credentials: ca === null && cert === null ? null : { ca, cert, key },
    auth,
  };
}

/** The key layout under a prefix. */
export class RuleKeys {
  /** Every rule key starts with this ("/fleet/rules/"). */
  readonly rulesPrefix: string;
  private readonly stem: string;

  constructor(prefix: string) {
    this.stem = `${prefix}/rules`;
    this.rulesPrefix = `${this.stem}/`;
  }

  /** The key of the rule at canonical `path`. */
  keyOf(path: string): string {
    return `${this.stem}${path}`;
  }

  /** The canonical rule path a key names; null for a key outside the rules or one that names no canonical path. */
  pathOf(key: string): string | null {
    if (!key.startsWith(this.rulesPrefix)) return null;
    const path = key.slice(this.stem.length);
    try {
      return checkRulePath(path) === path ? path : null;
    } catch {
      return null;
    }
  }
}
