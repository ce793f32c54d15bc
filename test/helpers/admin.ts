// Raw HTTP over a Unix socket, for admin API tests that must see status
// codes, headers and bodies exactly as a client (curl) would.
import http from 'node:http';
import net from 'node:net';

export interface HttpReply {
  readonly status: number;
  readonly headers: http.IncomingHttpHeaders;
  readonly text: string;
  /** The body parsed as JSON (undefined if it is not JSON). */
  readonly json: any;
}

export interface HttpOptions {
  readonly body?: string | Buffer;
  /** Send the body chunked (no Content-Length). */
  readonly chunked?: boolean;
  readonly headers?: Record<string, string>;
}

export function httpUnix(socketPath: string, method: string, path: string, opts: HttpOptions = {}): Promise<HttpReply> {
  return new Promise((resolve, reject) => {
    const body = opts.body === undefined ? undefined : Buffer.isBuffer(opts.body) ? opts.body : Buffer.from(opts.body);
    const headers: Record<string, string | number> = { ...opts.headers };
    if (body !== undefined && !opts.chunked) headers['Content-Length'] = body.length;
    const req = http.request({ socketPath, method, path, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let json: unknown;
        try {
          json = JSON.parse(text);
        } catch {
          json = undefined;
        }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json });
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    if (body === undefined) req.end();
    else if (opts.chunked) {
      // Several writes so node sends Transfer-Encoding: chunked.
      const step = 64 * 1024;
      for (let off = 0; off < body.length; off += step) req.write(body.subarray(off, off + step));
      req.end();
    } else req.end(body);
  });
}

/** Bytes straight onto the socket (malformed HTTP); resolves with what came back before the close. */
export function rawUnix(socketPath: string, data: string, timeoutMs = 5000): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = net.connect({ path: socketPath });
    let out = '';
    const timer = setTimeout(() => {
      sock.destroy();
      resolve(out);
    }, timeoutMs);
    sock.on('connect', () => sock.write(data));
    sock.on('data', (d: Buffer) => (out += d.toString('utf8')));
    sock.on('close', () => {
      clearTimeout(timer);
      resolve(out);
    });
    sock.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}
