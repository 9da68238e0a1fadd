import { otherLog, positionBeyondLog, problemFrom } from './errors.js';
import { SessionPosition, defaultStorage, type StorageLike } from './session.js';
import {
  targetKey,
  toTarget,
  type ActorPage,
  type History,
  type HistoryQuery,
  type ItemPage,
  type TargetBatch,
  type TargetRef,
  type TargetView,
  type WriteResult,
} from './types.js';

/** LedgerClientOptions configure createLedgerClient. */
export interface LedgerClientOptions {
  /** baseUrl is the server's origin, e.g. "http://127.0.0.1:8080"; "" (default) is this page's origin. */
  baseUrl?: string;
  /** token is a bearer token (a user JWT or a service token), or a function returning the current one. */
  token?: string | (() => string | null | undefined);
  /** fetch replaces globalThis.fetch (tests, instrumentation). */
  fetch?: typeof globalThis.fetch;
  /** storage keeps the session position; default sessionStorage, null keeps it in memory only. */
  storage?: StorageLike | null;
  /** retries is how many times a 429 or 503 with Retry-After, or a write's network failure, is retried (default 3). */
  retries?: number;
  /** maxRetryDelayMs is the longest Retry-After the client waits out (default 10 s); a longer one rejects at once, never retried early. */
  maxRetryDelayMs?: number;
  /** sleep waits ms or until signal aborts; tests replace it to observe the waits. */
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
}

/** RequestOptions are the options every call takes. */
export interface RequestOptions {
  /** signal aborts the request (TanStack Query passes its own). */
  signal?: AbortSignal;
  /** minPosition overrides the session position sent as Ledger-Min-Position. */
  minPosition?: number;
}

/** WriteOptions are the options of a write. */
export interface WriteOptions {
  signal?: AbortSignal;
  /** idempotencyKey makes a retried write safe; one is generated when absent. */
  idempotencyKey?: string;
  /** ifMatch is the stream version the write expects (412 when it moved). */
  ifMatch?: number;
  /** metadata is stored with the event (string to string, at most 16 entries). */
  metadata?: Record<string, string>;
}

/** PageOptions page a list. */
export interface PageOptions extends RequestOptions {
  limit?: number;
  cursor?: string | null;
}

/** LedgerClient speaks the ledger's HTTP API; see createLedgerClient. */
export type LedgerClient = ReturnType<typeof createLedgerClient>;

/**
 * seg encodes one path segment. "." and ".." match the id and user forms
 * but cannot be a segment: URL parsers remove them (RFC 3986 dot
 * segments), so the request would reach another route, or another
 * target's view. They throw a TypeError before any request.
 */
function seg(s: string): string {
  if (s === '.' || s === '..') throw new TypeError(`"${s}" cannot be addressed in a URL path (an id, user or kind)`);
  return encodeURIComponent(s);
}

function targetPath(ref: TargetRef): string {
  const t = toTarget(ref);
  return `/v1/targets/${seg(t.type)}/${seg(t.id)}`;
}

function query(params: Record<string, string | number | undefined | null | string[]>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v === undefined || v === null || v === '') continue;
    for (const one of Array.isArray(v) ? v : [v]) q.append(k, String(one));
  }
  const s = q.toString();
  return s === '' ? '' : `?${s}`;
}

function defaultSleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** lostAnswerDelayMs is the wait before a write whose answer was lost is sent again (doubled per attempt). */
const lostAnswerDelayMs = 250;

function newIdempotencyKey(): string {
  return globalThis.crypto.randomUUID();
}

/**
 * createLedgerClient returns a client of every endpoint of the API.
 *
 * Session consistency: the client keeps the highest position of its own
 * writes (in sessionStorage by default, so it survives a reload) and sends
 * it as Ledger-Min-Position on every read, so no read — after a refresh
 * either — shows a state older than the user's last write. A 429 or 503
 * carrying Retry-After is retried after that delay, and a write whose
 * answer was lost (a network failure) is sent again (writes carry an
 * Idempotency-Key, so a retry never applies twice). Failures reject with a
 * LedgerError; a network failure that outlasts the retries rejects with
 * fetch's TypeError.
 */
export function createLedgerClient(options: LedgerClientOptions = {}) {
  const baseUrl = (options.baseUrl ?? '').replace(/\/+$/, '');
  const doFetch = options.fetch ?? globalThis.fetch.bind(globalThis);
  const storage = options.storage === undefined ? defaultStorage() : options.storage;
  const session = new SessionPosition(storage, `ledger:min-position:${baseUrl}`);
  const retries = options.retries ?? 3;
  const maxDelay = options.maxRetryDelayMs ?? 10_000;
  const sleep = options.sleep ?? defaultSleep;

  const logListeners = new Set<(log: string) => void>();

  /** headers are extra's and the token's, and the session's log (Ledger-Log) once an answer named it. */
  function headers(extra: Record<string, string> = {}): Headers {
    const h = new Headers(extra);
    const token = typeof options.token === 'function' ? options.token() : options.token;
    if (token) h.set('Authorization', `Bearer ${token}`);
    const log = session.log();
    if (log) h.set('Ledger-Log', log);
    return h;
  }

  /**
   * noteLog records the log an answer names; another log than the
   * session's tells the listeners (each on its own: one that throws
   * neither fails the request nor keeps the others from hearing it).
   */
  function noteLog(res: Response): void {
    const log = res.headers.get('Ledger-Log');
    if (!log || !session.noteLog(log)) return;
    tellLogListeners(log);
  }

  /**
   * rewind forgets the session position when the server says its log does
   * not hold it (restored from an older copy, its id kept): every view
   * cached from before is as stale as another log's, so the log listeners
   * hear it too. before is the session position when the refused request
   * was sent, sent the position it carried (0: none) and head the log's
   * head the refusal names. A session position noted since the request was
   * sent (a write answered while the refusal waited or travelled, after
   * the server read the head) is this log's, and one within head is too
   * (the refusal was of a history's after, or of a stream's resume
   * point): either is kept. A forgotten session position gives way to the
   * highest position noted below it (the restored log's writes answered
   * before the refusal; see SessionPosition.rewind). Without a head (an older server),
   * the session position is forgotten when the refused one was at or below it. A
   * stream's refused resume point tells the listeners whatever the session
   * holds: its views were fed from before.
   */
  function rewind(before: number, sent: number, head: number | undefined, stream: boolean): void {
    const at = session.get();
    const stale = at > 0 && at === before && (head === undefined ? at >= sent : at > head);
    if (stale && head !== undefined) session.rewind();
    else if (stale) session.clear();
    if (stale || stream) tellLogListeners(session.log() ?? '');
  }

  let logChanges = 0;

  function tellLogListeners(log: string): void {
    logChanges++;
    for (const fn of logListeners) {
      try {
        fn(log);
      } catch (err) {
        const report = (globalThis as { reportError?: (e: unknown) => void }).reportError;
        if (report) report(err);
        else console.error('ledger client: an onLogChange listener failed', err);
      }
    }
  }

  /**
   * send performs one request, built anew for each attempt, retrying a
   * 429/503 that carries Retry-After (and, for a keyed write, a network
   * failure, after lostAnswerDelayMs doubled per attempt), and, once, a 412 other-log or
   * position-beyond-log when sameLog is false: the session has then moved
   * to the server's log (or forgotten a position its restored log does not
   * hold), and the request is built again without the old positions.
   */
  async function send(path: string, build: () => RequestInit & { signal?: AbortSignal }, sameLog = false, keyed = false): Promise<Response> {
    let moved = false;
    for (let attempt = 0; ; attempt++) {
      const init = build();
      const before = session.get();
      let res: Response;
      try {
        res = await doFetch(baseUrl + path, init);
      } catch (err) {
        // A keyed write whose answer was lost (the connection dropped,
        // perhaps after the server committed it) is sent again: its
        // Idempotency-Key answers the first outcome, never a second write.
        if (!keyed || init.signal?.aborted || attempt >= retries) throw err;
        await sleep(Math.min(lostAnswerDelayMs * 2 ** attempt, maxDelay), init.signal ?? undefined);
        continue;
      }
      noteLog(res);
      if (res.ok || res.status === 304) return res;
      const err = await problemFrom(res);
      if (err.type === positionBeyondLog && !moved) {
        rewind(before, Number(new Headers(init.headers).get('Ledger-Min-Position') ?? 0), err.head, path.startsWith('/v1/events/stream'));
      }
      if ((err.type === otherLog || err.type === positionBeyondLog) && !sameLog && !moved) {
        moved = true;
        attempt--; // the move is not one of the retries a 429/503 gets
        continue;
      }
      // A wait beyond maxDelay is the caller's to decide: retrying before
      // the server asked would only be refused again.
      const retryable = (res.status === 429 || res.status === 503) && err.retryAfterMs !== undefined && err.retryAfterMs <= maxDelay;
      if (!retryable || attempt >= retries) throw err;
      await sleep(err.retryAfterMs ?? 0, init.signal ?? undefined);
    }
  }

  async function read<T>(path: string, opts: RequestOptions = {}, accept = 'application/json'): Promise<T> {
    // A read that carries a position of its own (minPosition, a cursor, a
    // history's after) is not sent again to another log: the caller gets
    // isOtherLog(err) and starts again from the first page.
    const bound = opts.minPosition !== undefined || /[?&](cursor|after)=/.test(path);
    const res = await send(path, () => {
      const min = opts.minPosition ?? session.get();
      const h = headers({ Accept: accept });
      if (min > 0) h.set('Ledger-Min-Position', String(min));
      return { method: 'GET', headers: h, signal: opts.signal };
    }, bound);
    return (accept === 'application/json' ? res.json() : res.text()) as Promise<T>;
  }

  async function write(ref: TargetRef, kind: string, user: string, on: boolean, opts: WriteOptions = {}): Promise<WriteResult> {
    const key = opts.idempotencyKey ?? newIdempotencyKey();
    let body: string | undefined;
    if (opts.metadata) body = JSON.stringify({ metadata: opts.metadata });
    const path = `${targetPath(ref)}/${seg(kind)}/${seg(user)}`;
    // A write that expects a stream version (If-Match) is not sent again
    // to another log: the version was the old log's.
    const res = await send(path, () => {
      const h = headers({ Accept: 'application/json', 'Idempotency-Key': key });
      if (opts.ifMatch !== undefined) h.set('If-Match', `"v${opts.ifMatch}"`);
      if (body !== undefined) h.set('Content-Type', 'application/json');
      return { method: on ? 'PUT' : 'DELETE', headers: h, body, signal: opts.signal };
    }, opts.ifMatch !== undefined, true);
    const result = (await res.json()) as WriteResult;
    session.note(result.position);
    return result;
  }

  return {
    /** baseUrl is the server origin the client talks to ("" for this page's). */
    baseUrl,
    /** minPosition is the session position sent on reads (0 before any write). */
    minPosition: (): number => session.get(),
    /** notePosition raises the session position (e.g. after a write made elsewhere). */
    notePosition: (position: number): void => session.note(position),
    /** resetSession forgets the session position. */
    resetSession: (): void => session.clear(),
    /** log is the id of the server's log (Ledger-Log) the session is in, null before any answer. */
    log: (): string | null => session.log(),
    /**
     * logChanges counts the times the onLogChange listeners were told (another
     * log, or a restored one that does not hold the session's position): views
     * read before a change are stale, whatever log() says.
     */
    logChanges: (): number => logChanges,
    /**
     * onLogChange calls fn with the new log's id when the server names
     * another log than the session's (its log was created anew), and with
     * the same id when the server answers that the session's position, or
     * a stream's resume point, is beyond its log (412 position-beyond-log:
     * the log was restored from an older copy): a session position beyond
     * the log's head is already forgotten (one within it is kept), and
     * every view cached from before is stale (resyncOnLogChange refetches
     * them). A history's after refused alone tells no one.
     * It returns the function that removes fn.
     */
    onLogChange: (fn: (log: string) => void): (() => void) => {
      logListeners.add(fn);
      return () => logListeners.delete(fn);
    },

    /** set turns kind on or off for user on a target (PUT or DELETE). */
    set: write,
    /** turnOn is set(..., true): like, collect... */
    turnOn: (ref: TargetRef, kind: string, user: string, opts?: WriteOptions) => write(ref, kind, user, true, opts),
    /** turnOff is set(..., false): cancel a like, a collect... */
    turnOff: (ref: TargetRef, kind: string, user: string, opts?: WriteOptions) => write(ref, kind, user, false, opts),

    /** target reads one target's counts, and viewer's state when viewer is given. */
    target: (ref: TargetRef, opts: RequestOptions & { viewer?: string | null } = {}) =>
      read<TargetView>(targetPath(ref) + query({ viewer: opts.viewer }), opts),
    /**
     * targets reads a feed page of 1..200 targets, in request order. A
     * target given twice is asked for once (the server would read it
     * twice) and its item is repeated in the answer.
     */
    targets: async (refs: TargetRef[], opts: RequestOptions & { viewer?: string | null } = {}) => {
      const keys = refs.map(targetKey);
      const once = [...new Set(keys)];
      const batch = await read<TargetBatch>('/v1/targets' + query({ t: once, viewer: opts.viewer }), opts);
      if (once.length === keys.length) return batch;
      const item = new Map(once.map((k, i) => [k, batch.items[i]]));
      return { ...batch, items: keys.map((k) => item.get(k)!) };
    },
    /** actors pages who turned kind on for a target, newest first. */
    actors: (ref: TargetRef, kind: string, opts: PageOptions = {}) =>
      read<ActorPage>(`${targetPath(ref)}/${seg(kind)}` + query({ limit: opts.limit, cursor: opts.cursor }), opts),
    /** collection pages what user turned kind on for, newest first, optionally of one target type. */
    collection: (user: string, kind: string, opts: PageOptions & { type?: string } = {}) =>
      read<ItemPage>(`/v1/users/${seg(user)}/${seg(kind)}` + query({ type: opts.type, limit: opts.limit, cursor: opts.cursor }), opts),
    /** events reads one page of the event log (analysts; needs admin where tokens are configured). */
    events: (filter: HistoryQuery = {}, opts: RequestOptions = {}) =>
      read<History>('/v1/events' + query(filter as Record<string, string | number | undefined>), opts),
    /** healthz resolves when the process is up. */
    healthz: (opts: RequestOptions = {}) => read<{ status: string }>('/healthz', { ...opts, minPosition: 0 }),
    /** readyz resolves when the store is writable and the projections are caught up. */
    readyz: (opts: RequestOptions = {}) =>
      read<{ status: string; head: number; applied: number }>('/readyz', { ...opts, minPosition: 0 }),
    /** metrics returns the Prometheus text exposition. */
    metrics: (opts: RequestOptions = {}) => read<string>('/metrics', { ...opts, minPosition: 0 }, 'text/plain'),
    /** openapi returns the server's OpenAPI document. */
    openapi: (opts: RequestOptions = {}) => read<Record<string, unknown>>('/openapi.json', { ...opts, minPosition: 0 }),

    /**
     * openStream opens GET /v1/events/stream (after, or Last-Event-ID to
     * resume; targets, up to 50, to take only their events, each sent once)
     * and returns the streaming response; subscribeLive reads it.
     */
    openStream: (opts: { after?: number; lastEventId?: string; targets?: TargetRef[]; signal?: AbortSignal }) =>
      // A resume point of another log is not sent again: the caller
      // (subscribeLive) gets the 412 other-log and resumes from the head.
      // The session position is sent too, as on every read: a resume point
      // within a log restored from an older copy is not refused, the
      // session's position beyond it is (412 position-beyond-log).
      send('/v1/events/stream' + query({ after: opts.after, t: opts.targets && [...new Set(opts.targets.map(targetKey))] }), () => {
        const h = headers({ Accept: 'text/event-stream' });
        if (opts.lastEventId) h.set('Last-Event-ID', opts.lastEventId);
        const min = session.get();
        if (min > 0) h.set('Ledger-Min-Position', String(min));
        return { method: 'GET', headers: h, signal: opts.signal, cache: 'no-store' };
      }, opts.after !== undefined || opts.lastEventId !== undefined),
  };
}

