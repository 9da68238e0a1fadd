// Test helpers: an in-memory sessionStorage and a small HTTP proxy in
// front of the real server that records requests and can hold, delay,
// cut or replace chosen answers.
import { createServer, request as httpRequest, type IncomingMessage, type Server } from 'node:http';
import type { StorageLike } from '../src/session';

/** memoryStorage is a sessionStorage stand-in; share one to simulate a reload. */
export function memoryStorage(): StorageLike & { data: Map<string, string> } {
  const data = new Map<string, string>();
  return {
    data,
    getItem: (k) => data.get(k) ?? null,
    setItem: (k, v) => void data.set(k, v),
    removeItem: (k) => void data.delete(k),
  };
}

let seq = 0;
/** uniqueId returns an article id no other test uses (the servers are shared). */
export function uniqueId(prefix = 't'): string {
  seq++;
  return `${prefix}-${process.pid}-${Date.now().toString(36)}-${seq}`;
}

/** Seen is one request the proxy forwarded (or answered itself). */
export interface Seen {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
  /** answered is set once the server's answer reached the proxy (before any hold): the server has done the request. */
  answered?: boolean;
}

/** Plan says what the proxy does with one request. */
export interface Plan {
  /** delayMs holds the upstream answer (or the reply) this long before passing it on. */
  delayMs?: number;
  /** until holds the upstream answer (or the reply) until the promise settles. */
  until?: Promise<unknown>;
  /** reply answers instead of the server. */
  reply?: { status: number; headers?: Record<string, string>; body?: string };
  /** cutAfterMs ends a streaming answer this long after it starts. */
  cutAfterMs?: number;
  /** drop lets the server handle the request and cuts the connection before its answer (a lost answer). */
  drop?: boolean;
}

/** Proxy is a running proxy; set `plan` to steer it. */
export interface Proxy {
  url: string;
  seen: Seen[];
  plan: (req: Seen, n: number) => Plan | undefined;
  close(): Promise<void>;
}

/** startProxy starts a proxy to upstream on 127.0.0.1:0. */
export async function startProxy(upstream: string): Promise<Proxy> {
  const target = new URL(upstream);
  const proxy: Proxy = { url: '', seen: [], plan: () => undefined, close: async () => undefined };
  const server: Server = createServer((req, res) => {
    const seen: Seen = { method: req.method ?? 'GET', url: req.url ?? '/', headers: req.headers };
    proxy.seen.push(seen);
    const plan = proxy.plan(seen, proxy.seen.length) ?? {};
    if (plan.reply) {
      req.resume();
      const reply = plan.reply;
      void Promise.resolve(plan.until).catch(() => undefined).then(() => setTimeout(() => {
        res.writeHead(reply.status, reply.headers ?? {});
        res.end(reply.body ?? '');
      }, plan.delayMs ?? 0));
      return;
    }
    const up = httpRequest(
      { host: target.hostname, port: target.port, method: req.method, path: req.url, headers: { ...req.headers, host: target.host } },
      async (upRes) => {
        seen.answered = true;
        if (plan.drop) {
          upRes.resume();
          res.destroy();
          return;
        }
        if (plan.delayMs) await new Promise((r) => setTimeout(r, plan.delayMs));
        if (plan.until) await plan.until.catch(() => undefined);
        res.writeHead(upRes.statusCode ?? 502, upRes.headers);
        res.flushHeaders();
        upRes.pipe(res);
        if (plan.cutAfterMs !== undefined) setTimeout(() => { upRes.destroy(); res.destroy(); }, plan.cutAfterMs);
      },
    );
    up.on('error', () => res.destroy());
    res.on('close', () => up.destroy());
    req.pipe(up);
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  proxy.url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  proxy.close = () =>
    new Promise((ok) => {
      server.closeAllConnections();
      server.close(() => ok());
    });
  return proxy;
}

/** deferred returns a promise and the function that resolves it. */
export function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

/** waitFor polls cond (every 10 ms, at most timeoutMs) and fails with what when it never holds. */
export async function waitFor(cond: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
