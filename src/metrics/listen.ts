// `aclfs mount --metrics-listen`: the metrics over TCP (plain HTTP), for a
// Prometheus server that cannot reach the admin socket. It serves GET (and
// HEAD) /metrics and nothing else: no admin operation is ever reachable
// over TCP. The metrics still name operations and counts an outsider should
// not see, so the CLI binds to the loopback unless given a host
// (docs/operations.md, "Metrics").
import http from 'node:http';
import { conflict, forbidden, invalid, type AclfsError } from '../errors';
import type { MetricsPage } from './registry';

/** Where to listen: an IP address and a port. */
export interface ListenAddress {
  readonly host: string;
  readonly port: number;
}

export interface MetricsListenerLog {
  info(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

/** Connections served at once; more wait in the kernel's backlog. A scraper needs one. */
const MAX_CONNECTIONS = 16;
/** A request must arrive whole within this long (a slow or stuck client costs a descriptor only this long). */
const REQUEST_TIMEOUT_MS = 10_000;

export class MetricsListener {
  private constructor(
    private readonly server: http.Server,
    /** Where it listens (the port the kernel chose, if given 0). */
    readonly address: ListenAddress,
  ) {}

  /** Listens on `address`; rejects, in words, when it cannot (address in use, not this machine's, a port root keeps). */
  static async start(address: ListenAddress, page: () => Promise<MetricsPage>, log: MetricsListenerLog): Promise<MetricsListener> {
    const server = http.createServer((req, res) => {
      void serve(req, res, page, log);
    });
    server.maxConnections = MAX_CONNECTIONS;
    server.requestTimeout = REQUEST_TIMEOUT_MS;
    server.headersTimeout = REQUEST_TIMEOUT_MS;
    await new Promise<void>((resolve, reject) => {
      server.once('error', (err: NodeJS.ErrnoException) => reject(listenFailure(address, err)));
      server.listen({ host: address.host, port: address.port }, () => {
        server.removeAllListeners('error');
        resolve();
      });
    });
    // Once listening, an error is a connection it could not take: logged, never the daemon's end.
    server.on('error', (err) => log.error({ err: String(err) }, 'metrics listener: connection refused'));
    const bound = server.address();
    const port = bound !== null && typeof bound === 'object' ? bound.port : address.port;
    log.info({ host: address.host, port }, 'metrics listening (GET /metrics)');
    return new MetricsListener(server, { host: address.host, port });
  }

  private closed = false;

  /** Stops listening and closes every connection (once; later calls return at once). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.server.closeAllConnections();
    await closed;
  }
}

/** Why `address` cannot be listened on, as the error class a start fails with. */
function listenFailure(address: ListenAddress, err: NodeJS.ErrnoException): AclfsError | Error {
  const where = `--metrics-listen ${address.host.includes(':') ? `[${address.host}]` : address.host}:${address.port}`;
  if (err.code === 'EADDRINUSE') return conflict(`${where}: the address is in use (another process listens there)`);
  if (err.code === 'EADDRNOTAVAIL') return invalid(`${where}: not an address of this machine`);
  if (err.code === 'EACCES') return forbidden(`${where}: permission denied`);
  return err;
}

async function serve(req: http.IncomingMessage, res: http.ServerResponse, page: () => Promise<MetricsPage>, log: MetricsListenerLog): Promise<void> {
  // Nothing a request carries is read: its body is discarded.
  req.resume();
  const path = (req.url ?? '/').split('?')[0];
  if (path !== '/metrics') return plain(res, 404, 'only /metrics is served here\n');
  if (req.method !== 'GET' && req.method !== 'HEAD') return plain(res, 405, 'GET or HEAD /metrics\n', { Allow: 'GET, HEAD' });
  try {
    const { contentType, text } = await page();
    res.writeHead(200, { 'Content-Type': contentType, 'Content-Length': Buffer.byteLength(text), 'Cache-Control': 'no-store' });
    res.end(req.method === 'HEAD' ? undefined : text);
  } catch (err) {
    log.error({ err: err instanceof Error ? (err.stack ?? err.message) : String(err) }, 'metrics scrape failed');
    plain(res, 500, 'metrics could not be read\n');
  }
}

function plain(res: http.ServerResponse, status: number, text: string, headers: Record<string, string> = {}): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  res.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': Buffer.byteLength(text), ...headers });
  res.end(text);
}
