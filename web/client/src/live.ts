import type { QueryClient } from '@tanstack/query-core';
import { createParser } from 'eventsource-parser';
import type { LedgerClient } from './client.js';
import { isLedgerError, isOtherLog } from './errors.js';
import { ledgerKeys, patchTarget, servedKinds, toggleAwaitingAnswer } from './query.js';
import { targetKey, type LiveEvent, type TargetRef, type TargetView } from './types.js';

/** LiveOptions configure subscribeLive. */
export interface LiveOptions {
  /** after starts the stream after this position (e.g. a feed's position); default: live only. */
  after?: number;
  /**
   * targets, when given (1..50), limits the stream to these targets' events
   * (the targets a page shows); default: every event.
   */
  targets?: TargetRef[];
  /** onEvent sees every event after it is applied to the cache. */
  onEvent?: (event: LiveEvent) => void;
  /**
   * onError sees failures. The stream reconnects after a network failure or
   * a 5xx; after a 4xx (401/403: this caller may not read the stream) it
   * stops, and permanent is true.
   */
  onError?: (error: unknown, permanent: boolean) => void;
  /** onOpen is called each time the stream (re)connects. */
  onOpen?: () => void;
  /**
   * onClose is called each time an open stream ends (the server closed it,
   * the connection dropped, a log change dropped it), before the stream
   * reconnects: until the next onOpen, no event arrives. Not when the
   * caller stops it.
   */
  onClose?: () => void;
  /**
   * reconnectMs is the wait before reconnecting when the server sent no
   * "retry:" (default 2 s). Failures in a row double it, up to
   * maxReconnectMs, and every wait is drawn between half of it and all of
   * it, so that the clients of a server that restarts do not all come
   * back at the same moment.
   */
  reconnectMs?: number;
  /** maxReconnectMs caps the doubled wait (default 30 s). */
  maxReconnectMs?: number;
}

/**
 * reconnectDelay is the wait before reconnecting after failures failed
 * attempts in a row (0 after a stream that ended cleanly): base doubled
 * for each failure after the first, capped at max, then drawn at random
 * between half of it and all of it.
 */
export function reconnectDelay(base: number, max: number, failures: number, random: () => number = Math.random): number {
  const wait = Math.min(max, base * 2 ** Math.max(0, Math.min(failures - 1, 30)));
  return wait / 2 + (wait / 2) * random();
}

/**
 * applyLiveEvent patches the cached views of the event's target: counts
 * from the event, and the viewer's state in the queries of the event's
 * user. A view whose position is at or past the event is left alone (the
 * cache never moves backwards), and so is a target with a toggle of this
 * page still awaiting its answer (the answer settles it; once answered,
 * later events apply, even while its settling refetch runs). In every case it
 * invalidates the target's "who" lists and the user's collection of that
 * kind, which the toggle's answer does not reach.
 */
export function applyLiveEvent(qc: QueryClient, e: LiveEvent): void {
  const key = targetKey(e.target);
  if (!toggleAwaitingAnswer(qc, key)) {
    patchTarget(qc, e.target, (item, viewer): TargetView => {
      if (item.position >= e.position) return item;
      // The event's counts are every kind its server serves: they replace
      // the view's, and a kind no longer served leaves the viewer's flags.
      const next: TargetView = { ...item, counts: { ...e.counts }, position: e.position };
      if (item.viewer) next.viewer = servedKinds(item.viewer, e.counts);
      if (viewer === e.user && e.kind in e.counts) next.viewer = { ...next.viewer, [e.kind]: e.type === 'interaction.added' };
      return next;
    });
  }
  void qc.invalidateQueries({ queryKey: ledgerKeys.all, predicate: (q) => {
    const k = q.queryKey;
    return (k[1] === 'actors' && k[2] === key && k[3] === e.kind) || (k[1] === 'collection' && k[2] === e.user && k[3] === e.kind);
  } });
}

/** maxRefusedResumes is how many refusals of a resume point in a row make subscribeLive resync. */
const maxRefusedResumes = 2;

/**
 * notCaughtUp is the 503 that refuses a resume point beyond what the node
 * has applied. Other 503s (a node starting, shutting down, or whose store
 * is down) say nothing of the resume point and are retried from it.
 */
const notCaughtUp = 'urn:ledger:problem:not-caught-up';

/**
 * subscribeLive follows GET /v1/events/stream (of opts.targets only, when
 * given) and applies each event to the cache with applyLiveEvent. It
 * reconnects after a failure, resuming with Last-Event-ID (the last
 * event's id, or a later heartbeat's) so no event is missed or applied
 * twice; a resume
 * point the server refuses twice in a row (a server on a reset or other
 * log) is dropped, going live from the server's head and refetching every
 * cached view; a server that names another log than the session's does
 * the same at once. It reads the
 * stream with fetch (not EventSource) so that a bearer token can be sent.
 * A 4xx answer (no right to read the stream) stops it. It returns the
 * function that stops it.
 */
export function subscribeLive(client: LedgerClient, qc: QueryClient, opts: LiveOptions = {}): () => void {
  const stop = new AbortController();
  let lastId = opts.after !== undefined ? String(opts.after) : '';
  let retryMs = opts.reconnectMs ?? 2000;
  const maxMs = opts.maxReconnectMs ?? 30_000;
  // failures counts failed attempts since a stream last opened.
  let failures = 0;

  // open is the stream being read, if any; a log change aborts it, so that
  // a stream open on a node of the old log is dropped at once (a request
  // still in flight is left to its answer).
  let open: AbortController | null = null;
  // movedInARow counts log changes with no stream opened in between.
  let movedInARow = 0;

  async function once(): Promise<void> {
    const conn = new AbortController();
    const signal = AbortSignal.any([stop.signal, conn.signal]);
    const res = await client.openStream({ lastEventId: lastId || undefined, targets: opts.targets, signal });
    open = conn;
    try {
      await read(res, signal);
    } finally {
      if (open === conn) open = null;
      if (!stop.signal.aborted) opts.onClose?.();
    }
  }

  async function read(res: Response, signal: AbortSignal): Promise<void> {
    // A live-only stream starts at the log head. The opening frame's id says
    // so, but the parser drops frames without data; the answer's
    // Ledger-Position (the applied position, at most the head) is a resume
    // point just as safe: events at or before a view's position are ignored.
    if (!lastId) lastId = res.headers.get('Ledger-Position') ?? '';
    if (resyncOnOpen) {
      // Views read before this stream began may miss events it will not
      // send: read them again, from this log.
      resyncOnOpen = false;
      void qc.resetQueries({ queryKey: ledgerKeys.all });
    } else {
      // The server answers again: views that failed to load (while it was
      // down) are read again, not left failed until a reload.
      void qc.refetchQueries({ queryKey: ledgerKeys.all, type: 'active', predicate: (q) => q.state.status === 'error' });
    }
    movedInARow = 0;
    moved = false;
    failures = 0;
    opts.onOpen?.();
    const parser = createParser({
      onEvent: (msg) => {
        if (signal.aborted) return; // frames of a dropped connection
        if (msg.event !== 'interaction.added' && msg.event !== 'interaction.cancelled') return;
        const e = JSON.parse(msg.data) as LiveEvent;
        if (msg.id) lastId = msg.id;
        applyLiveEvent(qc, e);
        opts.onEvent?.(e);
      },
      onRetry: (ms) => {
        retryMs = ms;
      },
      // A heartbeat (": heartbeat <position>") carries the position the
      // stream has every event of its targets up to: a filtered stream's
      // resume point moves on while none of its targets' events come (the
      // parser drops the heartbeat frame's id: it has no data).
      onComment: (comment) => {
        const m = /^ ?heartbeat (\d+)$/.exec(comment);
        if (m && !signal.aborted && (!lastId || Number(m[1]) > Number(lastId))) lastId = m[1];
      },
    });
    const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      parser.feed(value);
    }
  }

  // refusedResumes counts stream answers in a row that refused the resume
  // point as beyond what the server has (503 after the client's retries):
  // a lagging node catches up within them, a server on another (new, reset)
  // log never does. Then the client resyncs: it drops the resume point
  // (going live from the server's head) and refetches every cached view,
  // since the events it can no longer be sent are in what it reads.
  let refusedResumes = 0;
  // A server that names another log than the session's (its log was
  // created anew) cannot resume from this one's ids: go live from its head
  // and refetch what was cached from the old log.
  let resyncOnOpen = false;
  let wake = (): void => undefined;
  // moved is set by a log change and taken by the loop, which then
  // reconnects at once, once: a change seen again without a connection in
  // between (two deployments answering in turn) waits like any failure.
  let moved = false;
  const unlisten = client.onLogChange(() => {
    lastId = '';
    refusedResumes = 0;
    resyncOnOpen = true;
    moved = true;
    open?.abort(); // a stream open on the old log is dropped
    wake(); // reconnect now, not after the retry delay
  });
  stop.signal.addEventListener('abort', unlisten, { once: true });
  void (async () => {
    while (!stop.signal.aborted) {
      try {
        await once();
        refusedResumes = 0;
      } catch (err) {
        if (stop.signal.aborted) return;
        failures++;
        if (moved && movedInARow++ === 0) {
          moved = false;
          continue; // the listener dropped the resume point: reconnect at once
        }
        moved = false;
        if (isOtherLog(err)) err = new Error('the server names another log at every connection', { cause: err });
        const permanent = isLedgerError(err) && err.status >= 400 && err.status < 500 && err.status !== 429;
        opts.onError?.(err, permanent);
        if (permanent) {
          unlisten(); // stopped for good: no log change concerns it any more
          return;
        }
        if (lastId && isLedgerError(err, 503) && err.type === notCaughtUp && ++refusedResumes >= maxRefusedResumes) {
          lastId = '';
          refusedResumes = 0;
          resyncOnOpen = true;
          continue; // at once: the wait was the server's refusals
        }
      }
      await new Promise<void>((r) => {
        wake = r;
        setTimeout(r, reconnectDelay(retryMs, Math.max(maxMs, retryMs), failures));
      });
      wake = () => undefined;
    }
  })();
  return () => stop.abort();
}
