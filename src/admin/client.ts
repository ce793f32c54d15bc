// The admin API over the daemon's Unix socket (node:http with socketPath).
// Connection failures and error bodies become AclfsErrors of the closed
// set, so the CLI maps them to exit codes in its one table.

import http from 'node:http';
import { AclfsError, forbidden, isErrorClass, unavailable, type ErrorClass } from '../errors';
import {
  errorClassForStatus,
  NDJSON,
  ROUTES,
  type AuditFilterQuery,
  type AuditFollow,
  type AuditLevel,
  type AuditLevelResponse,
  type AuditPage,
  type AuditQuery,
  type AuditRecordView,
  type AccessResponse,
  type ConfirmResponse,
  type ReplayRequest,
  type ReplayResponse,
  type DiffResponse,
  type HistoryResponse,
  type RollbackResponse,
  type CheckRequest,
  type ReachRequest,
  type ReachResponse,
  type CheckResponse,
  type ClosableAdminApi,
  type EnforcementMode,
  type ExportOptions,
  type ImportOptions,
  type ImportResponse,
  type ListQuery,
  type ModeResponse,
  type PutResult,
  type RuleBody,
  type RuleListResponse,
  type RuleView,
  type StatusResponse,
} from './protocol';

export interface AdminClientOptions {
  /**
   * Gives up when the daemon sends nothing for this long (default 300 s;
   * a large import is validated and committed before the daemon answers).
   */
  readonly idleTimeoutMs?: number;
}

interface Response {
  readonly status: number;
  readonly body: string;
}

/** Bytes per write of an upload (and per progress step). */
const UPLOAD_CHUNK = 256 * 1024;

export class AdminClient implements ClosableAdminApi {
  private readonly agent = new http.Agent({ keepAlive: true, maxSockets: 4 });
  private readonly idleTimeoutMs: number;

  constructor(
    readonly socketPath: string,
    options: AdminClientOptions = {},
  ) {
    this.idleTimeoutMs = options.idleTimeoutMs ?? 300_000;
  }

  async close(): Promise<void> {
    this.agent.destroy();
  }

  status(): Promise<StatusResponse> {
    return this.json('GET', ROUTES.status);
  }

  listRules(query: ListQuery = {}): Promise<RuleListResponse> {
    const q = new URLSearchParams();
    if (query.prefix !== undefined) q.set('prefix', query.prefix);
    if (query.cursor !== undefined) q.set('cursor', query.cursor);
    if (query.limit !== undefined) q.set('limit', String(query.limit));
    return this.json('GET', withQuery(ROUTES.rules, q));
  }

  createRule(body: RuleBody): Promise<RuleView> {
    return this.json('POST', ROUTES.rules, body);
  }

  async putRule(id: number, body: RuleBody): Promise<PutResult> {
    const res = await this.request('PUT', ROUTES.rule(id), JSON.stringify(body));
    return { rule: parse<RuleView>(res), created: res.status === 201 };
  }

  async setRuleByPath(path: string, body: RuleBody): Promise<PutResult> {
    const res = await this.request('PUT', withQuery(ROUTES.byPath, new URLSearchParams({ path })), JSON.stringify(body));
    return { rule: parse<RuleView>(res), created: res.status === 201 };
  }

  getRule(id: number): Promise<RuleView> {
    return this.json('GET', ROUTES.rule(id));
  }

  deleteRule(id: number): Promise<RuleView> {
    return this.json('DELETE', ROUTES.rule(id));
  }

  deleteRuleByPath(path: string): Promise<RuleView> {
    return this.json('DELETE', withQuery(ROUTES.byPath, new URLSearchParams({ path })));
  }

  findByPath(path: string): Promise<RuleView> {
    return this.json('GET', withQuery(ROUTES.byPath, new URLSearchParams({ path })));
  }

  findByInode(dev: number, ino: number): Promise<RuleView> {
    return this.json('GET', withQuery(ROUTES.byInode, new URLSearchParams({ dev: String(dev), ino: String(ino) })));
  }

  async importRules(text: string, options: ImportOptions = {}): Promise<ImportResponse> {
    const q = new URLSearchParams();
    if (options.replace === true) q.set('replace', 'true');
    if (options.dryRun === true) q.set('dryRun', 'true');
    if (options.confirmWithin !== undefined) q.set('confirmWithin', String(options.confirmWithin));
    const res = await this.request('POST', withQuery(ROUTES.import, q), text, options.onProgress);
    return parse(res);
  }

  async exportRules(options: ExportOptions = {}): Promise<string> {
    const onProgress = options.onProgress;
    const onDownload = onProgress === undefined ? undefined : (done: number, total: number): void => onProgress({ phase: 'download', done, total });
    return (await this.request('GET', ROUTES.export, undefined, undefined, onDownload)).body;
  }

  check(request: CheckRequest): Promise<CheckResponse> {
    return this.json('POST', ROUTES.check, request);
  }

  access(path: string): Promise<AccessResponse> {
    return this.json('GET', withQuery(ROUTES.access, new URLSearchParams({ path })));
  }

  reach(request: ReachRequest): Promise<ReachResponse> {
    return this.json('POST', ROUTES.reach, request);
  }

  history(limit?: number): Promise<HistoryResponse> {
    return this.json('GET', withQuery(ROUTES.history, new URLSearchParams(limit === undefined ? {} : { limit: String(limit) })));
  }

  diff(from: number, to?: number): Promise<DiffResponse> {
    return this.json('GET', withQuery(ROUTES.diff, new URLSearchParams({ from: String(from), ...(to === undefined ? {} : { to: String(to) }) })));
  }

  rollback(generation: number): Promise<RollbackResponse> {
    return this.json('POST', ROUTES.rollback, { generation });
  }

  confirm(): Promise<ConfirmResponse> {
    return this.json('POST', ROUTES.confirm);
  }

  replay(request: ReplayRequest): Promise<ReplayResponse> {
    return this.json('POST', ROUTES.replay, request);
  }

  auditLog(query: AuditQuery = {}): Promise<AuditPage> {
    const q = new URLSearchParams();
    if (query.after !== undefined) q.set('after', String(query.after));
    if (query.limit !== undefined) q.set('limit', String(query.limit));
    setFilter(q, query);
    return this.json('GET', withQuery(ROUTES.audit, q));
  }

  getAuditLevel(): Promise<AuditLevelResponse> {
    return this.json('GET', ROUTES.auditLevel);
  }

  setAuditLevel(level: AuditLevel): Promise<AuditLevelResponse> {
    return this.json('PUT', ROUTES.auditLevel, { level });
  }

  getMode(): Promise<ModeResponse> {
    return this.json('GET', ROUTES.mode);
  }

  setMode(mode: EnforcementMode): Promise<ModeResponse> {
    return this.json('PUT', ROUTES.mode, { mode });
  }

  /**
   * GET /v1/audit?follow=true: one JSON record per line for as long as the
   * follow lasts. No idle timeout (a quiet hour is normal); its own
   * connection, outside the agent, so stop() can simply destroy it.
   */
  followAudit(after: number, onRecord: (record: AuditRecordView) => void, filter: AuditFilterQuery = {}): Promise<AuditFollow> {
    const q = new URLSearchParams({ follow: 'true', after: String(after) });
    setFilter(q, filter);
    const path = withQuery(ROUTES.audit, q);
    return new Promise<AuditFollow>((resolve, reject) => {
      let established = false;
      let stopped = false;
      let endFollow: (err?: AclfsError) => void = () => {};
      const ended = new Promise<void>((res, rej) => {
        endFollow = (err) => (err === undefined ? res() : rej(err));
      });
      // Not awaited by anyone until the follow is established.
      ended.catch(() => undefined);
      const fail = (err: AclfsError): void => {
        if (!established) reject(err);
        else if (!stopped) endFollow(err);
        stopped = true;
      };
      const req = http.request({ socketPath: this.socketPath, agent: false, method: 'GET', path, headers: { Accept: NDJSON } }, (res) => {
        const status = res.statusCode ?? 0;
        if (status < 200 || status >= 300) {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.once('end', () => fail(errorFrom({ status, body: Buffer.concat(chunks).toString('utf8') })));
          return;
        }
        established = true;
        resolve({
          stop: () => {
            if (stopped) return;
            stopped = true;
            req.destroy();
            endFollow();
          },
          ended,
        });
        let pending = '';
        res.setEncoding('utf8');
        res.on('data', (text: string) => {
          if (stopped) return;
          pending += text;
          let nl: number;
          while ((nl = pending.indexOf('\n')) >= 0) {
            const line = pending.slice(0, nl);
            pending = pending.slice(nl + 1);
            if (line === '') continue;
            let record: AuditRecordView;
            try {
              record = JSON.parse(line) as AuditRecordView;
            } catch {
              fail(new AclfsError('internal', 'the aclfs daemon sent an audit record that is not JSON'));
              req.destroy();
              return;
            }
            onRecord(record);
          }
        });
        res.once('end', () => fail(unavailable(`the aclfs daemon at ${this.socketPath} ended the audit follow (it is shutting down)`)));
        res.once('error', (err) => fail(unavailable(`connection to the aclfs daemon at ${this.socketPath} broke: ${err.message}`)));
      });
      req.once('error', (err: NodeJS.ErrnoException) => fail(established ? unavailable(`connection to the aclfs daemon at ${this.socketPath} broke: ${err.message}`) : connectError(this.socketPath, err)));
      req.end();
    });
  }

  // ---- transport ------------------------------------------------------------

  private async json<T>(method: string, path: string, body?: unknown): Promise<T> {
    return parse<T>(await this.request(method, path, body === undefined ? undefined : JSON.stringify(body)));
  }

  /** `onDownload`: bytes of the reply received, of its Content-Length, as they arrive. */
  private request(
    method: string,
    path: string,
    body?: string,
    onProgress?: ImportOptions['onProgress'],
    onDownload?: (done: number, total: number) => void,
  ): Promise<Response> {
    const payload = body === undefined ? undefined : Buffer.from(body, 'utf8');
    return new Promise<Response>((resolve, reject) => {
      let settled = false;
      const fail = (err: AclfsError): void => {
        if (settled) return;
        settled = true;
        reject(err);
      };
      const req = http.request(
        {
          socketPath: this.socketPath,
          agent: this.agent,
          method,
          path,
          headers: {
            Accept: 'application/json',
            ...(payload === undefined ? {} : { 'Content-Type': 'application/json', 'Content-Length': payload.length }),
          },
        },
        (res) => {
          const chunks: Buffer[] = [];
          const length = Number(res.headers['content-length'] ?? NaN);
          let received = 0;
          res.on('data', (c: Buffer) => {
            chunks.push(c);
            received += c.length;
            if (onDownload !== undefined && Number.isFinite(length)) onDownload(received, Math.max(length, received));
          });
          res.once('error', (err) => fail(unavailable(`connection to the aclfs daemon at ${this.socketPath} broke: ${err.message}`)));
          res.once('end', () => {
            if (settled) return;
            const response = { status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') };
            if (response.status >= 200 && response.status < 300) {
              settled = true;
              resolve(response);
            } else {
              fail(errorFrom(response));
            }
          });
        },
      );
      req.setTimeout(this.idleTimeoutMs, () => {
        fail(unavailable(`the aclfs daemon at ${this.socketPath} did not answer within ${Math.round(this.idleTimeoutMs / 1000)} s`));
        req.destroy();
      });
      req.once('error', (err: NodeJS.ErrnoException) => fail(connectError(this.socketPath, err)));
      if (payload === undefined) {
        req.end();
        return;
      }
      void upload(req, payload, onProgress).catch(() => {
        /* the 'error' event reports it */
      });
    });
  }
}

async function upload(req: http.ClientRequest, payload: Buffer, onProgress: ImportOptions['onProgress']): Promise<void> {
  if (onProgress === undefined || payload.length <= UPLOAD_CHUNK) {
    req.end(payload);
    onProgress?.({ phase: 'upload', done: payload.length, total: payload.length });
    return;
  }
  onProgress({ phase: 'upload', done: 0, total: payload.length });
  for (let off = 0; off < payload.length; off += UPLOAD_CHUNK) {
    if (req.destroyed) return;
    const end = Math.min(off + UPLOAD_CHUNK, payload.length);
    if (!req.write(payload.subarray(off, end))) {
      await new Promise<void>((resolve) => {
        const go = (): void => {
          req.off('drain', go);
          req.off('close', go);
          resolve();
        };
        req.once('drain', go);
        req.once('close', go);
      });
    }
    onProgress({ phase: 'upload', done: end, total: payload.length });
  }
  req.end();
}

function withQuery(path: string, q: URLSearchParams): string {
  const s = q.toString();
  return s === '' ? path : `${path}?${s}`;
}

function parse<T>(res: Response): T {
  try {
    return JSON.parse(res.body) as T;
  } catch {
    throw new AclfsError('internal', `the aclfs daemon sent a reply that is not JSON (HTTP ${res.status})`);
  }
}

function errorFrom(res: Response): AclfsError {
  let code: unknown;
  let message: unknown;
  try {
    const body = JSON.parse(res.body) as { error?: { code?: unknown; message?: unknown } };
    code = body.error?.code;
    message = body.error?.message;
  } catch {
    /* not our error body */
  }
  const cls: ErrorClass = isErrorClass(code) ? code : errorClassForStatus(res.status);
  return new AclfsError(cls, typeof message === 'string' && message !== '' ? message : `the aclfs daemon answered HTTP ${res.status}`);
}

function connectError(socketPath: string, err: NodeJS.ErrnoException): AclfsError {
  switch (err.code) {
    case 'ENOENT':
    case 'ECONNREFUSED':
      return unavailable(`cannot reach the aclfs daemon at ${socketPath}: ${err.code === 'ENOENT' ? 'no such socket' : 'connection refused'} (is \`aclfs mount\` running with this --socket?)`);
    case 'EACCES':
    case 'EPERM':
      return forbidden(`permission denied on the aclfs admin socket ${socketPath} (root and members of the admin group only)`);
    case 'ENOTDIR':
      return unavailable(`cannot reach the aclfs daemon at ${socketPath}: not a socket path`);
    default:
      return unavailable(`connection to the aclfs daemon at ${socketPath} failed: ${err.message}`);
  }
}

/** The filter's fields given, as query parameters. */
function setFilter(q: URLSearchParams, filter: AuditFilterQuery): void {
  for (const key of ['from', 'to', 'uid', 'path', 'decision', 'op', 'rule'] as const) {
    const value = filter[key];
    if (value !== undefined) q.set(key, String(value));
  }
}
