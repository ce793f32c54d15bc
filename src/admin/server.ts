// The admin socket server: HTTP/1.1 + JSON on a Unix socket (node:http),
// served by the mount daemon. It routes from the protocol's table of routes
// (API_ROUTES), reads bodies within their limits, parses each request's
// query and body with the route's schemas and edge.ts (the validation edge,
// which resolves user and group names with the accounts it is given), and
// maps errors; the operations (service.ts) take what it parsed, typed.
//
// Robustness: every request runs inside its own try/catch, so nothing a
// client sends (bad JSON, huge bodies, unknown routes, broken HTTP) can throw
// out of a handler; request bodies are bounded (1 MiB; the import endpoint
// reads incrementally up to its own limit) and the error is answered with
// 413 as soon as the limit is passed, without buffering the rest.
//
// One endpoint streams: GET /v1/audit?follow=true answers with a body that
// is written as records happen (a Reply with `stream`). Everything that can
// fail is done before the reply is made, so errors still take the one path
// to their status code; the server's close() ends every stream first, so a
// follower does not hold up shutdown.
//
// Running out of descriptors (or memory) costs a client its connection,
// never the daemon: see acceptFailed().

import http from 'node:http';
import type net from 'node:net';
import { AclfsError, asAclfsError, invalid } from '../errors';
import type { Accounts } from './accounts';
import { asActor, type Actor } from './actor';
import { auditFilter, canonicalPath, checkInput, importInput, listInput, parseBody, reachInput, replayInput, ruleAtPath, ruleInput } from './edge';
import {
  API_ROUTES,
  DEFAULT_AUDIT_LIMIT,
  DEFAULT_HISTORY_LIMIT,
  DEFAULT_IMPORT_LIMIT_BYTES,
  describeZodError,
  httpStatusFor,
  isTrueFlag,
  MAX_BODY_BYTES,
  NDJSON,
  parseRuleId,
  ROUTES,
  type ApiRoute,
  type AuditRecordView,
  type BodyOf,
  type ErrorBody,
  type HandlerName,
  type HttpMethod,
  type PutResult,
  type QueryOf,
} from './protocol';
import type { AdminOperations } from './service';
import { clearStaleSocket, listenRestricted, prepareRuntimeDir, removeSocket } from './socketFile';

export interface AdminLog {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
  debug(obj: object, msg?: string): void;
}

const silentLog: AdminLog = { info: () => {}, warn: () => {}, error: () => {}, debug: () => {} };

/**
 * A streamed body that a follower does not read piles up in memory: past
 * this many bytes not yet taken by the client, its stream is cut.
 */
const MAX_STREAM_BACKLOG = 8 * 1024 * 1024;

/** After an accept failed for want of descriptors, the server stops listening this long. */
const ACCEPT_PAUSE_MS = 250;
/** A refused connection is logged at most this often (with the count since). */
const REFUSAL_LOG_MS = 1000;

export interface AdminServerOptions {
  readonly socketPath: string;
  /** The admin group: owner group of the socket (0660) and its directory (0750). */
  readonly gid: number;
  /** The operations, given each request's input as the edge parsed it. */
  readonly api: AdminOperations;
  /** Names to ids, and a user's groups, for rule bodies, rule files and `check` (main.ts: the system's files). */
  readonly accounts: Accounts;
  readonly log?: AdminLog;
  /** Body limit of every endpoint but import (default 1 MiB). */
  readonly bodyLimitBytes?: number;
  /** Body limit of POST /v1/rules/import (default 256 MiB). */
  readonly importLimitBytes?: number;
  /**
   * GET /metrics: the daemon's metrics, rendered by whoever keeps them
   * (main.ts wires src/metrics); absent: /metrics is not found.
   */
  readonly metrics?: () => Promise<MetricsText>;
  /**
   * The peer of a connection (SO_PEERCRED; main.ts asks the native addon):
   * who a change is recorded as made by. Absent, or null: unknown.
   */
  readonly peerOf?: (socket: net.Socket) => Actor | null;
}

/** A scrape's answer: the Prometheus text format and its content type. */
export interface MetricsText {
  readonly contentType: string;
  readonly text: string;
}

/** Where the metrics are served, beside the API (not under /v1: it is not JSON). */
const METRICS_PATH = '/metrics';

interface Reply {
  readonly status: number;
  /** Serialised as JSON unless `raw` or `stream` is set. */
  readonly body?: unknown;
  /** Already JSON text (the export). */
  readonly raw?: string;
  /** A body written as it happens (the audit follow). */
  readonly stream?: StreamBody;
  readonly headers?: Record<string, string>;
}

/** The body of a streaming reply, sent chunked until it ends or is stopped. */
interface StreamBody {
  readonly contentType: string;
  /** Called once the head is sent: `write` sends one chunk. */
  start(write: (chunk: string) => void): void;
  /** The client went away, or the server is closing: release the source. */
  stop(): void;
  /** Settles when the source ends by itself; the body then ends too. */
  readonly ended: Promise<void>;
}

/** A request's input, parsed by its route's schemas. */
interface Input<H extends HandlerName> {
  /** The rule id of a `{id}` path; 0 elsewhere. */
  readonly id: number;
  readonly query: QueryOf<H>;
  /**
   * The body through the route's schema. A function, so a handler that
   * checks a query path first (as the service always has) says so by
   * calling it after; the body itself is already read.
   */
  readonly body: () => BodyOf<H>;
}

/** One function per handler name of the protocol's table. */
type Handlers = { readonly [H in HandlerName]: (input: Input<H>) => Promise<Reply> };

/** The routes of one path: how it matches, and its methods in the table's order. */
interface PathRoutes {
  /** The rule id for a `{id}` path, 0 for an exact one; null when it does not match. */
  readonly match: (path: string) => number | null;
  readonly methods: ReadonlyMap<HttpMethod, ApiRoute>;
}

export class AdminServer {
  private closing = false;
  private readonly inFlight = new Set<Promise<void>>();
  /** Not listening for a moment after running out of descriptors (see acceptFailed()). */
  private paused = false;
  private relisten: NodeJS.Timeout | undefined;
  private refused = 0;
  private lastRefusalLog = 0;

  private constructor(
    readonly socketPath: string,
    private readonly server: http.Server,
    /** Inode of the socket file this server made (it makes a new one after a pause). */
    private ino: number,
    private readonly gid: number,
    private readonly log: AdminLog,
    /** Ends each streaming reply still open (see close()). */
    private readonly streams: Set<() => void>,
  ) {}

  /** Prepares the runtime directory, replaces a stale socket, listens. */
  static async start(options: AdminServerOptions): Promise<AdminServer> {
    const log = options.log ?? silentLog;
    const socketPath = options.socketPath;
    if (!socketPath.startsWith('/')) throw invalid(`admin socket path ${socketPath} must be absolute`);
    prepareRuntimeDir(socketPath, options.gid);
    if (await clearStaleSocket(socketPath)) log.warn({ socket: socketPath }, 'replaced a stale admin socket');
    const routes = groupRoutes();
    const limits: BodyLimits = { json: options.bodyLimitBytes ?? MAX_BODY_BYTES, text: options.importLimitBytes ?? DEFAULT_IMPORT_LIMIT_BYTES };
    const handlers = handlersFor(options.api, options.accounts);
    const metrics = options.metrics;
    let self: AdminServer | undefined;
    const streams = new Set<() => void>();
    // The peer of each connection, asked once (its credentials are those it connected with).
    const peers = new WeakMap<net.Socket, Actor | null>();
    const peerOf = (socket: net.Socket): Actor | null => {
      if (options.peerOf === undefined) return null;
      let peer = peers.get(socket);
      if (peer === undefined) {
        try {
          peer = options.peerOf(socket);
        } catch {
          peer = null;
        }
        peers.set(socket, peer);
      }
      return peer;
    };
    const server = http.createServer((req, res) => {
      const done = asActor(peerOf(req.socket), () => handle(req, res, routes, handlers, limits, log, () => self?.closing ?? false, streams, metrics));
      self?.inFlight.add(done);
      void done.finally(() => self?.inFlight.delete(done));
    });
    // Malformed HTTP never reaches the handler: answer 400 and close.
    server.on('clientError', (err: NodeJS.ErrnoException, socket) => {
      if (socket.writable && err.code !== 'ECONNRESET') {
        const body = JSON.stringify({ error: { code: 'invalid', message: `malformed HTTP request: ${err.code ?? err.message}` } });
        socket.end(`HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
      } else {
        socket.destroy();
      }
    });
    const ino = await listenRestricted(server, socketPath, options.gid);
    const admin = new AdminServer(socketPath, server, ino, options.gid, log, streams);
    self = admin;
    // Once listening, an error of the server is a connection it could not
    // take. Without a listener it would end the daemon.
    server.on('error', (err: NodeJS.ErrnoException) => admin.acceptFailed(err));
    log.info({ socket: socketPath, gid: options.gid }, 'admin socket listening');
    return self;
  }

  /**
   * A connection the server could not take: out of descriptors (EMFILE,
   * ENFILE) or memory. The client's connection fails; the daemon goes on.
   * libuv keeps a spare descriptor to accept and close such a connection,
   * but once it has lost it (another thread took the descriptor it freed),
   * it retries accept at once, for as long as the connection waits, and the
   * daemon would spin there: so, out of descriptors, the server stops
   * listening (closing the listening socket ends libuv's loop; its file
   * goes with it, so clients see the daemon unreachable) and listens again
   * a moment later.
   */
  private acceptFailed(err: NodeJS.ErrnoException): void {
    this.refused++;
    const now = Date.now();
    if (now - this.lastRefusalLog >= REFUSAL_LOG_MS) {
      this.log.warn({ code: err.code, err: err.message, refused: this.refused }, 'admin connection refused');
      this.lastRefusalLog = now;
      this.refused = 0;
    }
    if ((err.code !== 'EMFILE' && err.code !== 'ENFILE') || this.paused || this.closing) return;
    this.paused = true;
    this.server.close();
    this.listenLater();
  }

  private listenLater(): void {
    this.relisten = setTimeout(() => {
      this.relisten = undefined;
      if (this.closing) return;
      listenRestricted(this.server, this.socketPath, this.gid).then(
        (ino) => {
          if (this.closing) {
            this.server.close();
            removeSocket(this.socketPath, ino);
            return;
          }
          this.ino = ino;
          this.paused = false;
          this.log.info({ socket: this.socketPath }, 'admin socket listening again');
        },
        (e: unknown) => {
          if (e instanceof AclfsError && e.code === 'conflict') {
            // Another daemon took the path meanwhile: it is its socket now.
            this.log.error({ socket: this.socketPath, err: e.message }, 'admin socket lost to another daemon: this one serves no admin API any more');
            return;
          }
          this.log.warn({ err: String(e) }, 'admin socket: cannot listen again yet');
          this.listenLater();
        },
      );
    }, ACCEPT_PAUSE_MS);
    this.relisten.unref();
  }

  /**
   * Stops accepting connections, answers requests arriving on open
   * connections with 503, ends every streaming reply (audit followers),
   * waits (up to `graceMs`) for requests in flight, then closes every
   * connection and removes the socket file.
   */
  async close(graceMs = 5000): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    clearTimeout(this.relisten);
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    // A follow never ends by itself: end it, or shutdown would wait out the grace.
    for (const end of [...this.streams]) end();
    this.server.closeIdleConnections();
    const timer = new Promise<void>((resolve) => setTimeout(resolve, graceMs).unref());
    await Promise.race([Promise.allSettled([...this.inFlight]), timer]);
    this.server.closeAllConnections();
    await closed;
    removeSocket(this.socketPath, this.ino);
    this.log.info({ socket: this.socketPath }, 'admin socket closed');
  }
}

// ---- request handling -------------------------------------------------------

async function handle(
  req: http.IncomingMessage,
  res: http.ServerResponse,
  routes: readonly PathRoutes[],
  handlers: Handlers,
  limits: BodyLimits,
  log: AdminLog,
  closing: () => boolean,
  streams: Set<() => void>,
  metrics: (() => Promise<MetricsText>) | undefined,
): Promise<void> {
  const started = process.hrtime.bigint();
  let reply: Reply;
  try {
    if (closing()) throw new AclfsError('unavailable', 'the aclfs daemon is shutting down');
    reply = await dispatch(req, routes, handlers, limits, metrics);
  } catch (err) {
    const e = asAclfsError(err);
    if (e.code === 'internal') log.error({ method: req.method, url: req.url, err: err instanceof Error ? err.stack : String(err) }, 'admin request failed');
    reply = errorReply(e);
  }
  if (reply.stream !== undefined) {
    // Logged when it starts; it may last as long as the daemon.
    log.debug({ method: req.method, url: req.url, status: reply.status }, 'admin stream');
    return sendStream(req, res, reply, reply.stream, streams, log);
  }
  try {
    send(req, res, reply);
  } catch (err) {
    // Writing failed (the client went away): nothing left to tell it.
    log.debug({ err: String(err) }, 'admin reply not sent');
    res.destroy();
  }
  const ms = Number(process.hrtime.bigint() - started) / 1e6;
  const entry = { method: req.method, url: req.url, status: reply.status, ms: Math.round(ms * 100) / 100 };
  if (req.method !== 'GET' && req.method !== 'HEAD' && reply.status < 300) log.info(entry, 'admin change');
  else log.debug(entry, 'admin request');
}

function errorReply(e: AclfsError): Reply {
  const body: ErrorBody = { error: { code: e.code, message: e.message } };
  return { status: httpStatusFor(e.code), body };
}

function send(req: http.IncomingMessage, res: http.ServerResponse, reply: Reply): void {
  const text = reply.raw ?? (reply.body === undefined ? '' : `${JSON.stringify(reply.body)}\n`);
  const headers: Record<string, string | number> = {
    'Content-Type': 'application/json; charset=utf-8',
    'Content-Length': Buffer.byteLength(text),
    'Cache-Control': 'no-store',
    ...reply.headers,
  };
  res.writeHead(reply.status, headers);
  res.end(req.method === 'HEAD' ? undefined : text);
  // A body the handler did not read (an error before reading, a GET with a
  // body) is drained and discarded by node:http; nothing is buffered.
  req.resume();
}

/** Sends the head, then the stream's chunks until it ends, the client goes, or the server closes. */
function sendStream(
  req: http.IncomingMessage,
  res: http.ServerResponse,
  reply: Reply,
  stream: StreamBody,
  streams: Set<() => void>,
  log: AdminLog,
): Promise<void> {
  return new Promise<void>((resolve) => {
    let done = false;
    const finish = (): void => {
      if (done) return;
      done = true;
      streams.delete(finish);
      stream.stop();
      if (!res.writableEnded && !res.destroyed) res.end();
      resolve();
    };
    streams.add(finish);
    res.once('close', finish);
    void stream.ended.then(finish, finish);
    try {
      res.writeHead(reply.status, { 'Content-Type': stream.contentType, 'Cache-Control': 'no-store', ...reply.headers });
      // Sent now, so the client knows the follow is established before the first record.
      res.flushHeaders();
      req.resume();
      if (req.method === 'HEAD') return finish();
      stream.start((chunk) => {
        if (done) return;
        res.write(chunk);
        if (res.writableLength > MAX_STREAM_BACKLOG) {
          log.warn({ url: req.url, backlog: res.writableLength }, 'admin stream cut: the client does not read');
          res.destroy();
          finish();
        }
      });
    } catch (err) {
      log.debug({ err: String(err) }, 'admin stream not sent');
      res.destroy();
      finish();
    }
  });
}

/** Body limits in bytes: of a JSON body, and of a text one (the import). */
interface BodyLimits {
  readonly json: number;
  readonly text: number;
}

/**
 * Finds the request's route, then parses its input in the order a request
 * is checked: the rule id of the path, the query, the body (read whole,
 * JSON parsed); the handler then takes the body through its schema.
 */
async function dispatch(
  req: http.IncomingMessage,
  routes: readonly PathRoutes[],
  handlers: Handlers,
  limits: BodyLimits,
  metrics: (() => Promise<MetricsText>) | undefined,
): Promise<Reply> {
  let url: URL;
  try {
    // The base only makes relative request targets parseable; dot segments
    // ("/v1/rules/../status", "%2e%2e") are resolved by the URL parser.
    url = new URL(req.url ?? '/', 'http://aclfs');
  } catch {
    throw invalid(`malformed request target ${JSON.stringify(req.url)}`);
  }
  const path = url.pathname.length > 1 && url.pathname.endsWith('/') ? url.pathname.slice(0, -1) : url.pathname;
  checkQueryEncoding(url.search);
  if (path === METRICS_PATH && metrics !== undefined) return metricsReply(req, metrics);
  for (const r of routes) {
    const id = r.match(path);
    if (id === null) continue;
    const route = r.methods.get((req.method === 'HEAD' ? 'GET' : req.method) as HttpMethod);
    if (route === undefined) {
      const allow = [...r.methods.keys()].join(', ');
      const e = new AclfsError('method_not_allowed', `${req.method ?? '?'} is not allowed on ${path} (allowed: ${allow})`);
      return { ...errorReply(e), headers: { Allow: allow } };
    }
    const query = parseQuery(url.searchParams, route.query);
    let body: unknown;
    if (route.body === 'text') body = (await readBody(req, limits.text)).toString('utf8');
    else if (route.body !== null) body = parseJson(await readBody(req, limits.json));
    const spec = route.body;
    const parsedBody = (): unknown => (spec === null || spec === 'text' ? body : parseBody(spec.schema, body, spec.what));
    // The table types each handler's input by its route; the map from name to route is the table's own.
    const handler = handlers[route.handler] as (input: Input<HandlerName>) => Promise<Reply>;
    return handler({ id, query: query as never, body: parsedBody as never });
  }
  throw new AclfsError('not_found', `no such endpoint: ${path} (the API lives under /v1, see docs/admin-api.md)`);
}

/** GET /metrics: the text the metrics provider renders, as it is (a scrape takes no query or body). */
async function metricsReply(req: http.IncomingMessage, metrics: () => Promise<MetricsText>): Promise<Reply> {
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    const e = new AclfsError('method_not_allowed', `${req.method ?? '?'} is not allowed on ${METRICS_PATH} (allowed: GET)`);
    return { ...errorReply(e), headers: { Allow: 'GET' } };
  }
  const { contentType, text } = await metrics();
  return { status: 200, raw: text, headers: { 'Content-Type': contentType } };
}

/** Reads the body incrementally; 413 as soon as it passes `limit`. */
function readBody(req: http.IncomingMessage, limit: number): Promise<Buffer> {
  const declared = req.headers['content-length'];
  if (declared !== undefined && Number(declared) > limit) {
    return Promise.reject(tooLarge(limit));
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let failed = false;
    const onData = (chunk: Buffer): void => {
      if (failed) return;
      size += chunk.length;
      if (size > limit) {
        failed = true;
        chunks.length = 0;
        reject(tooLarge(limit));
        return;
      }
      chunks.push(chunk);
    };
    req.on('data', onData);
    req.once('end', () => {
      if (!failed) resolve(Buffer.concat(chunks, size));
    });
    req.once('error', (err) => {
      if (!failed) {
        failed = true;
        reject(invalid(`request body could not be read: ${err.message}`));
      }
    });
    req.once('aborted', () => {
      if (!failed) {
        failed = true;
        reject(invalid('request body was cut short'));
      }
    });
  });
}

function tooLarge(limit: number): AclfsError {
  return new AclfsError('too_large', `request body is larger than ${formatBytes(limit)}`);
}

function formatBytes(n: number): string {
  if (n % (1024 * 1024) === 0) return `${n / (1024 * 1024)} MiB`;
  if (n % 1024 === 0) return `${n / 1024} KiB`;
  return `${n} bytes`;
}

function parseJson(body: Buffer): unknown {
  if (body.length === 0) throw invalid('request body is empty; expected JSON');
  try {
    return JSON.parse(body.toString('utf8'));
  } catch (err) {
    throw invalid(`request body is not valid JSON: ${err instanceof Error ? err.message : String(err)}`);
  }
}

/**
 * A query string must percent-encode UTF-8. URLSearchParams decodes any
 * other bytes (%FF, or %ED%A0%80, a surrogate) to U+FFFD, which would make
 * `?path=` name another path than the client's; such a parameter is
 * refused instead. A "%" not followed by two hex digits stays itself, as
 * URLSearchParams takes it.
 */
function checkQueryEncoding(search: string): void {
  if (!search.includes('%')) return;
  for (const part of search.slice(1).split('&')) {
    if (!part.includes('%')) continue;
    try {
      decodeURIComponent(part.replace(/\+/g, ' ').replace(/%(?![0-9A-Fa-f]{2})/g, '%25'));
    } catch {
      const name = part.split('=')[0] ?? '';
      throw invalid(`query parameter ${JSON.stringify(decodeURIComponentSafe(name))} is not UTF-8 once percent-decoded`);
    }
  }
}

/** Query parameters through a strict schema: unknown or repeated names are 400. */
function parseQuery(params: URLSearchParams, schema: ApiRoute['query']): unknown {
  const obj: Record<string, string> = {};
  for (const [k, v] of params) {
    if (Object.prototype.hasOwnProperty.call(obj, k)) throw invalid(`query parameter ${JSON.stringify(k)} is given twice`);
    obj[k] = v;
  }
  const parsed = schema.safeParse(obj);
  if (!parsed.success) throw invalid(describeZodError(parsed.error, 'query'));
  return parsed.data;
}

/** The table's routes grouped by path, in the table's order (exact paths before `{id}`). */
function groupRoutes(): PathRoutes[] {
  const byPath = new Map<string, Map<HttpMethod, ApiRoute>>();
  for (const route of API_ROUTES) {
    const methods = byPath.get(route.path) ?? new Map<HttpMethod, ApiRoute>();
    methods.set(route.method, route);
    byPath.set(route.path, methods);
  }
  return [...byPath].map(([pattern, methods]) => ({ match: matcher(pattern), methods }));
}

/** An exact path matches itself (id 0); "/v1/rules/{id}" matches one more segment, a rule id. */
function matcher(pattern: string): PathRoutes['match'] {
  const slot = pattern.indexOf('{id}');
  if (slot < 0) return (path) => (path === pattern ? 0 : null);
  const prefix = pattern.slice(0, slot);
  return (path) => {
    if (!path.startsWith(prefix)) return null;
    const rest = path.slice(prefix.length);
    if (rest === '' || rest.includes('/')) return null;
    const id = parseRuleId(rest);
    if (id === undefined) throw invalid(`${JSON.stringify(decodeURIComponentSafe(rest))} is not a rule id (a positive integer)`);
    return id;
  };
}

function decodeURIComponentSafe(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

/** Each route's input through the edge to its operation, and the result on the wire: status, body, headers. */
function handlersFor(api: AdminOperations, accounts: Accounts): Handlers {
  const ok = (body: unknown): Reply => ({ status: 200, body });
  const stored = (r: PutResult): Reply => ({ status: r.created ? 201 : 200, body: r.rule, headers: { Location: ROUTES.rule(r.rule.id) } });
  return {
    status: async () => ok(await api.status()),
    listRules: async ({ query }) => ok(await api.listRules(listInput(query))),
    createRule: async ({ body }) => {
      const rule = await api.createRule(ruleInput(body(), accounts));
      return { status: 201, body: rule, headers: { Location: ROUTES.rule(rule.id) } };
    },
    findByPath: async ({ query }) => ok(await api.findByPath(canonicalPath(query.path, 'path'))),
    setRuleByPath: async ({ query, body }) => {
      const path = canonicalPath(query.path, 'path');
      return stored(await api.setRuleByPath(ruleAtPath(path, body(), accounts)));
    },
    deleteRuleByPath: async ({ query }) => ok(await api.deleteRuleByPath(canonicalPath(query.path, 'path'))),
    findByInode: async ({ query }) => ok(await api.findByInode(query.dev, query.ino)),
    importRules: async ({ query, body }) =>
      ok(
        await api.importRules(
          importInput(body(), accounts, {
            replace: isTrueFlag(query.replace),
            dryRun: isTrueFlag(query.dryRun),
            ...(query.confirmWithin === undefined ? {} : { confirmWithin: query.confirmWithin }),
          }),
        ),
      ),
    confirm: async () => ok(await api.confirm()),
    replay: async ({ body }) => ok(await api.replay(replayInput(body(), accounts))),
    exportRules: async () => ({ status: 200, raw: await api.exportRules() }),
    getRule: async ({ id }) => ok(await api.getRule(id)),
    putRule: async ({ id, body }) => stored(await api.putRule(id, ruleInput(body(), accounts))),
    deleteRule: async ({ id }) => ok(await api.deleteRule(id)),
    audit: async ({ query }) => {
      const after = query.after ?? 0;
      const { after: _after, limit: _limit, follow: _follow, ...filterQuery } = query;
      const filter = auditFilter(filterQuery);
      if (!isTrueFlag(query.follow)) return ok(await api.auditLog({ after, limit: query.limit ?? DEFAULT_AUDIT_LIMIT, filter }));
      // Records are held until the head is sent (the replay of stored
      // ones happens at once, before start()).
      let write: ((chunk: string) => void) | null = null;
      const held: string[] = [];
      const line = (record: AuditRecordView): void => {
        const text = `${JSON.stringify(record)}\n`;
        if (write === null) held.push(text);
        else write(text);
      };
      const follow = await api.followAudit(after, line, filter);
      const stream: StreamBody = {
        contentType: NDJSON,
        start: (w) => {
          if (held.length > 0) w(held.splice(0).join(''));
          write = w;
        },
        stop: () => follow.stop(),
        ended: follow.ended,
      };
      return { status: 200, stream };
    },
    getAuditLevel: async () => ok(await api.getAuditLevel()),
    setAuditLevel: async ({ body }) => ok(await api.setAuditLevel(body().level)),
    getMode: async () => ok(await api.getMode()),
    setMode: async ({ body }) => ok(await api.setMode(body().mode)),
    check: async ({ body }) => ok(await api.check(checkInput(body(), accounts))),
    access: async ({ query }) => ok(await api.access(canonicalPath(query.path, 'path'))),
    reach: async ({ body }) => ok(await api.reach(reachInput(body(), accounts))),
    history: async ({ query }) => ok(await api.history(query.limit ?? DEFAULT_HISTORY_LIMIT)),
    diff: async ({ query }) => ok(await api.diff(query.from, query.to)),
    rollback: async ({ body }) => ok(await api.rollback(body().generation)),
  };
}
