// The admin socket server: HTTP/1.1 + JSON on a Unix socket (node:http),
// served by the mount daemon. It only routes, reads bodies within their
// limits and maps errors; the operations are an AdminApi (service.ts).
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
import { AclfsError, asAclfsError, invalid } from '../errors';
import {
  auditQuerySchema,
  DEFAULT_IMPORT_LIMIT_BYTES,
  describeZodError,
  emptyQuerySchema,
  httpStatusFor,
  importQuerySchema,
  inodeQuerySchema,
  isTrueFlag,
  listQuerySchema,
  MAX_BODY_BYTES,
  modeBodySchema,
  NDJSON,
  parseRuleId,
  pathQuerySchema,
  type AdminApi,
  type AuditRecordView,
  type ErrorBody,
  type RuleBody,
} from './protocol';
import { clearStaleSocket, listenRestricted, prepareRuntimeDir, removeSocket } from './socketFile';
import type { z } from 'zod';

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
  readonly api: AdminApi;
  readonly log?: AdminLog;
  /** Body limit of every endpoint but import (default 1 MiB). */
  readonly bodyLimitBytes?: number;
  /** Body limit of POST /v1/rules/import (default 256 MiB). */
  readonly importLimitBytes?: number;
}

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

interface Ctx {
  readonly req: http.IncomingMessage;
  readonly query: URLSearchParams;
  readonly id: number;
  /** The request body as JSON (bounded by the normal limit). */
  json(): Promise<unknown>;
  /** The request body as text, bounded by `limit`. */
  text(limit: number): Promise<string>;
}

type Method = 'GET' | 'POST' | 'PUT' | 'DELETE';
type Handler = (ctx: Ctx) => Promise<Reply>;

interface Route {
  /** Exact path, or a pattern with one {id} segment. */
  readonly match: (path: string) => { id: number } | null;
  readonly methods: Partial<Record<Method, Handler>>;
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
    const routes = buildRoutes(options.api, options.importLimitBytes ?? DEFAULT_IMPORT_LIMIT_BYTES);
    const bodyLimit = options.bodyLimitBytes ?? MAX_BODY_BYTES;
    let self: AdminServer | undefined;
    const streams = new Set<() => void>();
    const server = http.createServer((req, res) => {
      const done = handle(req, res, routes, bodyLimit, log, () => self?.closing ?? false, streams);
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
  routes: readonly Route[],
  bodyLimit: number,
  log: AdminLog,
  closing: () => boolean,
  streams: Set<() => void>,
): Promise<void> {
  const started = process.hrtime.bigint();
  let reply: Reply;
  try {
    if (closing()) throw new AclfsError('unavailable', 'the aclfs daemon is shutting down');
    reply = await route(req, routes, bodyLimit);
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

async function route(req: http.IncomingMessage, routes: readonly Route[], bodyLimit: number): Promise<Reply> {
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
  for (const r of routes) {
    const m = r.match(path);
    if (m === null) continue;
    const method = (req.method === 'HEAD' ? 'GET' : req.method) as Method;
    const handler = r.methods[method];
    if (handler === undefined) {
      const allow = Object.keys(r.methods).join(', ');
      const e = new AclfsError('method_not_allowed', `${req.method ?? '?'} is not allowed on ${path} (allowed: ${allow})`);
      return { ...errorReply(e), headers: { Allow: allow } };
    }
    let bodyRead: Promise<Buffer> | undefined;
    const readOnce = (limit: number): Promise<Buffer> => (bodyRead ??= readBody(req, limit));
    return handler({
      req,
      query: url.searchParams,
      id: m.id,
      json: async () => parseJson(await readOnce(bodyLimit)),
      text: async (limit) => (await readOnce(limit)).toString('utf8'),
    });
  }
  throw new AclfsError('not_found', `no such endpoint: ${path} (the API lives under /v1, see the README)`);
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
function query<S extends z.ZodType>(params: URLSearchParams, schema: S): z.output<S> {
  const obj: Record<string, string> = {};
  for (const [k, v] of params) {
    if (Object.prototype.hasOwnProperty.call(obj, k)) throw invalid(`query parameter ${JSON.stringify(k)} is given twice`);
    obj[k] = v;
  }
  const parsed = schema.safeParse(obj);
  if (!parsed.success) throw invalid(describeZodError(parsed.error, 'query'));
  return parsed.data;
}

function exact(p: string): Route['match'] {
  return (path) => (path === p ? { id: 0 } : null);
}

function withId(prefix: string): Route['match'] {
  return (path) => {
    if (!path.startsWith(prefix)) return null;
    const rest = path.slice(prefix.length);
    if (rest === '' || rest.includes('/')) return null;
    const id = parseRuleId(rest);
    if (id === undefined) throw invalid(`${JSON.stringify(decodeURIComponentSafe(rest))} is not a rule id (a positive integer)`);
    return { id };
  };
}

function decodeURIComponentSafe(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

function buildRoutes(api: AdminApi, importLimit: number): Route[] {
  const ok = (body: unknown): Reply => ({ status: 200, body });
  return [
    {
      match: exact('/v1/status'),
      methods: {
        GET: async (c) => (query(c.query, emptyQuerySchema), ok(await api.status())),
      },
    },
    {
      match: exact('/v1/rules'),
      methods: {
        GET: async (c) => ok(await api.listRules(query(c.query, listQuerySchema))),
        POST: async (c) => {
          query(c.query, emptyQuerySchema);
          const rule = await api.createRule((await c.json()) as RuleBody);
          return { status: 201, body: rule, headers: { Location: `/v1/rules/${rule.id}` } };
        },
      },
    },
    {
      match: exact('/v1/rules/by-path'),
      methods: {
        GET: async (c) => ok(await api.findByPath(query(c.query, pathQuerySchema).path)),
        PUT: async (c) => {
          const { path } = query(c.query, pathQuerySchema);
          const r = await api.setRuleByPath(path, (await c.json()) as RuleBody);
          return { status: r.created ? 201 : 200, body: r.rule, headers: { Location: `/v1/rules/${r.rule.id}` } };
        },
        DELETE: async (c) => ok(await api.deleteRuleByPath(query(c.query, pathQuerySchema).path)),
      },
    },
    {
      match: exact('/v1/rules/by-inode'),
      methods: {
        GET: async (c) => {
          const { dev, ino } = query(c.query, inodeQuerySchema);
          return ok(await api.findByInode(dev, ino));
        },
      },
    },
    {
      match: exact('/v1/rules/import'),
      methods: {
        POST: async (c) => {
          const { replace } = query(c.query, importQuerySchema);
          const text = await c.text(importLimit);
          return ok(await api.importRules(text, { replace: replace === 'true' || replace === '1' }));
        },
      },
    },
    {
      match: exact('/v1/rules/export'),
      methods: {
        GET: async (c) => (query(c.query, emptyQuerySchema), { status: 200, raw: await api.exportRules() }),
      },
    },
    {
      match: withId('/v1/rules/'),
      methods: {
        GET: async (c) => (query(c.query, emptyQuerySchema), ok(await api.getRule(c.id))),
        PUT: async (c) => {
          query(c.query, emptyQuerySchema);
          const r = await api.putRule(c.id, (await c.json()) as RuleBody);
          return { status: r.created ? 201 : 200, body: r.rule, headers: { Location: `/v1/rules/${r.rule.id}` } };
        },
        DELETE: async (c) => (query(c.query, emptyQuerySchema), ok(await api.deleteRule(c.id))),
      },
    },
    {
      match: exact('/v1/audit'),
      methods: {
        GET: async (c) => {
          const q = query(c.query, auditQuerySchema);
          if (!isTrueFlag(q.follow)) return ok(await api.auditLog({ after: q.after, limit: q.limit }));
          // Records are held until the head is sent (the replay of stored
          // ones happens at once, before start()).
          let write: ((chunk: string) => void) | null = null;
          const held: string[] = [];
          const line = (record: AuditRecordView): void => {
            const text = `${JSON.stringify(record)}\n`;
            if (write === null) held.push(text);
            else write(text);
          };
          const follow = await api.followAudit(q.after ?? 0, line);
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
      },
    },
    {
      match: exact('/v1/mode'),
      methods: {
        GET: async (c) => (query(c.query, emptyQuerySchema), ok(await api.getMode())),
        PUT: async (c) => {
          query(c.query, emptyQuerySchema);
          const parsed = modeBodySchema.safeParse(await c.json());
          if (!parsed.success) throw invalid(describeZodError(parsed.error, 'mode'));
          return ok(await api.setMode(parsed.data.mode));
        },
      },
    },
    {
      match: exact('/v1/check'),
      methods: {
        POST: async (c) => (query(c.query, emptyQuerySchema), ok(await api.check((await c.json()) as never))),
      },
    },
  ];
}
