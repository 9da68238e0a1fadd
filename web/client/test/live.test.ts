import { QueryClient, QueryObserver } from '@tanstack/query-core';
import { afterEach, beforeEach, describe, expect, inject, it } from 'vitest';
import {
  applyLiveEvent,
  createLedgerClient,
  feedQueryOptions,
  ledgerKeys,
  resyncOnLogChange,
  subscribeLive,
  targetQueryOptions,
  toggleMutationOptions,
  type LedgerClient,
  type LiveEvent,
  type TargetBatch,
  type TargetView,
} from '../src/index';
import { reconnectDelay } from '../src/live';
import { memoryStorage, startProxy, uniqueId, waitFor, type Proxy } from './helpers';

const ledgerUrl = inject('ledgerUrl');

describe('live updates', () => {
  let proxy: Proxy;
  let client: LedgerClient;
  let qc: QueryClient;
  const stops: (() => void)[] = [];
  beforeEach(async () => {
    proxy = await startProxy(ledgerUrl);
    client = createLedgerClient({ baseUrl: proxy.url, storage: memoryStorage() });
    qc = new QueryClient({ defaultOptions: { queries: { retry: false } } });
  });
  afterEach(async () => {
    stops.splice(0).forEach((s) => s());
    qc.clear();
    await proxy.close();
  });

  it('patches cached counts and the viewer state from the stream', async () => {
    const ids = [uniqueId(), uniqueId()];
    const refs = ids.map((i) => `article/${i}`);
    const feed = await qc.fetchQuery(feedQueryOptions(client, refs, 'watcher'));
    await qc.fetchQuery(targetQueryOptions(client, refs[0], 'liker'));
    const events: LiveEvent[] = [];
    let opened = 0;
    stops.push(subscribeLive(client, qc, { after: feed.position, onEvent: (e) => events.push(e), onOpen: () => opened++ }));
    await waitFor(() => opened === 1, 'the stream to open');

    const other = createLedgerClient({ baseUrl: ledgerUrl, storage: memoryStorage() });
    await other.turnOn(refs[0], 'like', 'liker');
    await other.turnOn(refs[0], 'collect', 'watcher');
    await waitFor(() => events.filter((e) => e.target.id === ids[0]).length === 2, 'both events');

    const item = qc.getQueryData<TargetBatch>(ledgerKeys.feed(refs, 'watcher'))!.items[0];
    expect(item.counts).toEqual({ like: 1, collect: 1 });
    expect(item.viewer).toEqual({ like: false, collect: true }); // the watcher's own collect, not the liker's like
    expect(qc.getQueryData(ledgerKeys.target(refs[0], 'liker'))).toMatchObject({ counts: { like: 1, collect: 1 }, viewer: { like: true, collect: false } });
    expect(qc.getQueryData<TargetBatch>(ledgerKeys.feed(refs, 'watcher'))!.items[1].counts).toEqual({ like: 0, collect: 0 });
  });

  it('follows only the targets it is given', async () => {
    const [mine, other] = [`article/${uniqueId()}`, `article/${uniqueId()}`];
    const view = await qc.fetchQuery(targetQueryOptions(client, mine, 'watcher'));
    const events: LiveEvent[] = [];
    let opened = 0;
    stops.push(subscribeLive(client, qc, { after: view.position, targets: [mine], onEvent: (e) => events.push(e), onOpen: () => opened++ }));
    await waitFor(() => opened === 1, 'the stream to open');
    const writer = createLedgerClient({ baseUrl: ledgerUrl, storage: memoryStorage() });
    await writer.turnOn(other, 'like', 'u1');
    await writer.turnOn(mine, 'like', 'u1');
    await writer.turnOn(other, 'like', 'u2');
    await writer.turnOn(mine, 'collect', 'u2');
    await waitFor(() => events.length === 2, 'both events of its target');
    expect(events.map((e) => `${e.target.type}/${e.target.id} ${e.kind}`)).toEqual([`${mine} like`, `${mine} collect`]);
    expect(qc.getQueryData<TargetView>(ledgerKeys.target(mine, 'watcher'))).toMatchObject({ counts: { like: 1, collect: 1 } });
    const url = proxy.seen.find((s) => s.url.startsWith('/v1/events/stream'))!.url;
    expect(new URL(url, 'http://x').searchParams.getAll('t')).toEqual([mine]);
  });

  it('resumes from the last heartbeat, which moves on while none of its targets events come', async () => {
    const ref = `article/${uniqueId()}`;
    const view = await qc.fetchQuery(targetQueryOptions(client, ref));
    const w = await client.turnOn(`article/${uniqueId()}`, 'like', 'u1'); // another target's event
    let streams = 0;
    proxy.plan = (req) => (req.url.startsWith('/v1/events/stream') && ++streams === 1
      ? { reply: { status: 200, headers: { 'Content-Type': 'text/event-stream' }, body: `retry: 50\nid: ${view.position}\n\n: heartbeat ${w.position}\nid: ${w.position}\n\n` } }
      : undefined);
    stops.push(subscribeLive(client, qc, { after: view.position, targets: [ref], reconnectMs: 50 }));
    await waitFor(() => streams === 2, 'the stream to reconnect', 6000);
    const resumed = proxy.seen.filter((s) => s.url.startsWith('/v1/events/stream'))[1];
    expect(resumed.headers['last-event-id']).toBe(String(w.position));
  });

  // A view cached before the server's kinds changed holds a removed kind:
  // an event's counts are every kind the server serves, and replace it.
  it('drops a kind the server no longer serves from a view an event patches', async () => {
    const ref = `article/${uniqueId()}`;
    const head = (await client.readyz()).head;
    qc.setQueryData(ledgerKeys.target(ref, 'liker'), { target: { type: 'article', id: ref.slice(8) }, counts: { like: 0, collect: 0, bookmark: 7 }, viewer: { like: false, collect: false, bookmark: true }, position: 0 });
    let seen = 0;
    stops.push(subscribeLive(client, qc, { after: head, onEvent: (e) => { if (e.target.id === ref.slice(8)) seen++; } }));
    const other = createLedgerClient({ baseUrl: ledgerUrl, storage: memoryStorage() });
    await other.turnOn(ref, 'like', 'liker');
    await waitFor(() => seen === 1, 'the event');
    expect(qc.getQueryData(ledgerKeys.target(ref, 'liker'))).toMatchObject({ counts: { like: 1, collect: 0 }, viewer: { like: true, collect: false } });
    const view = qc.getQueryData<TargetView>(ledgerKeys.target(ref, 'liker'))!;
    expect(Object.keys(view.counts).sort()).toEqual(['collect', 'like']);
    expect(Object.keys(view.viewer!).sort()).toEqual(['collect', 'like']);
  });

  it('never moves a cached view backwards', async () => {
    const ref = `article/${uniqueId()}`;
    await client.turnOn(ref, 'like', 'a');
    const second = await client.turnOn(ref, 'like', 'b');
    await qc.fetchQuery(targetQueryOptions(client, ref, 'a'));
    const stale: LiveEvent = {
      position: second.position - 1, id: '00000000-0000-7000-8000-000000000000', type: 'interaction.cancelled', kind: 'like', user: 'a',
      target: { type: 'article', id: ref.slice(8) }, stream_version: 1, occurred_at: '', recorded_at: '', counts: { like: 0, collect: 0 },
    };
    applyLiveEvent(qc, stale);
    expect(qc.getQueryData<TargetView>(ledgerKeys.target(ref, 'a'))).toMatchObject({ counts: { like: 2 }, viewer: { like: true }, position: second.position });
  });

  it('invalidates the lists of an event whose target has a toggle in flight', async () => {
    const local = new QueryClient();
    const key = 'article/busy-1';
    local.setQueryData(ledgerKeys.actors(key, 'like'), { pages: [{ items: [] }], pageParams: [null] });
    local.setQueryData(ledgerKeys.collection('u2', 'like'), { pages: [{ items: [] }], pageParams: [null] });
    // A toggle of u1 on the target, still in flight.
    const pending = local.getMutationCache().build(local, { mutationKey: ledgerKeys.toggle(key, 'collect', 'u1'), mutationFn: () => new Promise(() => undefined) });
    void pending.execute(undefined);
    expect(local.isMutating()).toBe(1);
    const liked: LiveEvent = {
      position: 7, id: '00000000-0000-7000-8000-000000000007', type: 'interaction.added', kind: 'like', user: 'u2',
      target: { type: 'article', id: 'busy-1' }, stream_version: 1, occurred_at: '', recorded_at: '', counts: { like: 1, collect: 0 },
    };
    applyLiveEvent(local, liked);
    expect(local.getQueryState(ledgerKeys.actors(key, 'like'))?.isInvalidated).toBe(true);
    expect(local.getQueryState(ledgerKeys.collection('u2', 'like'))?.isInvalidated).toBe(true);
    local.clear();
  });

  // An event that arrives after a toggle's answer, while the toggle still
  // waits for its settling refetch (here held by the proxy), is applied:
  // it was dropped, and the page kept a count the server no longer had.
  it('applies an event that arrives after a toggle was answered, while it settles', async () => {
    const ref = `article/${uniqueId()}`;
    const observer = new QueryObserver(qc, targetQueryOptions(client, ref, 'u1'));
    const unsubscribe = observer.subscribe(() => undefined);
    await waitFor(() => qc.getQueryData<TargetView>(ledgerKeys.target(ref, 'u1')) !== undefined, 'the first read');
    let hold = true;
    proxy.plan = (req) => (hold && req.method === 'GET' && req.url.startsWith(`/v1/targets/${ref}`) ? { delayMs: 3000 } : undefined);
    const reads = () => proxy.seen.filter((r) => r.method === 'GET' && r.url.startsWith(`/v1/targets/${ref}`)).length;
    const before = reads();
    const toggle = qc.getMutationCache().build(qc, toggleMutationOptions(client, qc, { target: ref, kind: 'like', user: 'u1' }));
    const done = toggle.execute({ on: true });
    await waitFor(() => reads() > before, 'the settling refetch, sent once the answer came');
    expect(toggle.state.status).toBe('pending'); // the refetch is held
    const other = await client.turnOn(ref, 'like', 'u2');
    applyLiveEvent(qc, {
      position: other.position, id: '00000000-0000-7000-8000-000000000001', type: 'interaction.added', kind: 'like', user: 'u2',
      target: other.target, stream_version: other.stream_version, occurred_at: '', recorded_at: '', counts: other.counts,
    });
    expect(qc.getQueryData<TargetView>(ledgerKeys.target(ref, 'u1'))).toMatchObject({ counts: { like: 2 }, viewer: { like: true } });
    hold = false;
    await done;
    unsubscribe();
  });

  it('resumes with Last-Event-ID after the connection drops', async () => {
    const ref = `article/${uniqueId()}`;
    const view = await qc.fetchQuery(targetQueryOptions(client, ref));
    const events: LiveEvent[] = [];
    let streams = 0;
    proxy.plan = (req) => (req.url.startsWith('/v1/events/stream') && ++streams === 1 ? { cutAfterMs: 400 } : undefined);
    let opened = 0;
    stops.push(subscribeLive(client, qc, { onEvent: (e) => events.push(e), onOpen: () => opened++ }));
    await waitFor(() => opened === 1, 'the stream to open');
    const w1 = await client.turnOn(ref, 'like', 'a');
    await waitFor(() => events.some((e) => e.position === w1.position), 'the first event');
    await waitFor(() => streams === 2 || opened === 2, 'the stream to be cut and reopened', 6000);
    const w2 = await client.turnOn(ref, 'like', 'b');
    await waitFor(() => events.some((e) => e.position === w2.position), 'the event after the reconnect', 6000);
    const resumed = proxy.seen.filter((s) => s.url.startsWith('/v1/events/stream'))[1];
    expect(resumed.headers['last-event-id']).toBe(String(events.filter((e) => e.position < w2.position).at(-1)!.position));
    expect(new Set(events.map((e) => e.position)).size).toBe(events.length); // nothing twice
    expect(qc.getQueryData<TargetView>(ledgerKeys.target(ref))).toMatchObject({ counts: { like: 2 } });
    expect(view.counts.like).toBe(0);
  });

  // The demo said "Live" for up to ~4 s after the server closed the stream
  // cleanly: subscribeLive told of opens and errors, not of ends.
  it('says when an open stream ends, before it opens again', async () => {
    let streams = 0;
    proxy.plan = (req) => (req.url.startsWith('/v1/events/stream') && ++streams === 1 ? { cutAfterMs: 300 } : undefined);
    const seen: string[] = [];
    const stop = subscribeLive(client, qc, { reconnectMs: 50, onOpen: () => seen.push('open'), onClose: () => seen.push('close') });
    stops.push(stop);
    await waitFor(() => seen.filter((s) => s === 'open').length === 2, 'the stream to be cut and opened again', 6000);
    stop();
    await new Promise((r) => setTimeout(r, 100));
    expect(seen).toEqual(['open', 'close', 'open']); // not closed by its caller's stop
  });

  // A resume point the server keeps refusing (a server on a new, reset
  // log) is dropped after two refusals in a row: the client goes live from
  // the server's head and refetches what it holds, instead of staying deaf.
  it('resyncs when the server keeps refusing its resume point', async () => {
    const ref = `article/${uniqueId()}`;
    await qc.fetchQuery(targetQueryOptions(client, ref));
    proxy.plan = (req) =>
      req.url.startsWith('/v1/events/stream') && req.headers['last-event-id'] === '999999'
        ? { reply: { status: 503, headers: { 'Content-Type': 'application/problem+json' },
            body: JSON.stringify({ type: 'urn:ledger:problem:not-caught-up', title: 'Service Unavailable', status: 503, detail: 'not yet 999999' }) } }
        : undefined;
    const events: LiveEvent[] = [];
    let opened = 0;
    stops.push(subscribeLive(client, qc, { after: 999999, reconnectMs: 50, onEvent: (e) => events.push(e), onOpen: () => opened++ }));
    await waitFor(() => opened === 1, 'a live stream after the refusals', 6000);
    expect(qc.getQueryData(ledgerKeys.target(ref))).toBeUndefined(); // reset: read again from this log
    const streams = proxy.seen.filter((r) => r.url.startsWith('/v1/events/stream'));
    expect(streams.map((r) => r.headers['last-event-id'] ?? '')).toEqual(['999999', '999999', '']);
    const w = await client.turnOn(ref, 'like', 'a');
    await waitFor(() => events.some((e) => e.position === w.position), 'the next event');
  });

  // A node that is starting (or shutting down, or whose store is down)
  // answers 503 too, but refuses no resume point: the client keeps it and
  // resumes from it once the node answers, without a resync. It counted
  // every 503 as a refusal, and after two (a restart whose views file
  // takes ~30 s to build) dropped the resume point and reset every view.
  it('keeps its resume point through 503s of a node that is starting', async () => {
    const ref = `article/${uniqueId()}`;
    const w = await client.turnOn(ref, 'like', 'a');
    await qc.fetchQuery(targetQueryOptions(client, ref));
    let refused = 0;
    proxy.plan = (req) =>
      req.url.startsWith('/v1/events/stream') && refused++ < 3
        ? { reply: { status: 503, headers: { 'Content-Type': 'application/problem+json' },
            body: JSON.stringify({ type: 'urn:ledger:problem:starting', title: 'Service Unavailable', status: 503, detail: 'this node is starting' }) } }
        : undefined;
    let opened = 0;
    stops.push(subscribeLive(client, qc, { after: w.position, reconnectMs: 50, onOpen: () => opened++ }));
    await waitFor(() => opened === 1, 'a live stream after the node started', 6000);
    const streams = proxy.seen.filter((r) => r.url.startsWith('/v1/events/stream'));
    expect(streams.map((r) => r.headers['last-event-id'] ?? '')).toEqual(Array(4).fill(String(w.position)));
    expect(qc.getQueryData(ledgerKeys.target(ref))).toBeDefined(); // not reset
  });

  it('resumes from the head at once when the server names another log', async () => {
    const storage = memoryStorage();
    storage.setItem(`ledger:min-position:${proxy.url}:log`, crypto.randomUUID());
    const c = createLedgerClient({ baseUrl: proxy.url, storage });
    const ref = `article/${uniqueId()}`;
    await qc.fetchQuery(targetQueryOptions(client, ref));
    proxy.seen.length = 0;
    const events: LiveEvent[] = [];
    let opened = 0;
    stops.push(subscribeLive(c, qc, { after: 999999, reconnectMs: 60_000, onEvent: (e) => events.push(e), onOpen: () => opened++ }));
    await waitFor(() => opened === 1, 'a live stream from the head', 6000);
    const streams = proxy.seen.filter((r) => r.url.startsWith('/v1/events/stream'));
    expect(streams.map((r) => r.headers['last-event-id'] ?? '')).toEqual(['999999', '']);
    expect(streams[1].headers['ledger-log']).toBe(c.log());
    expect(qc.getQueryData(ledgerKeys.target(ref))).toBeUndefined(); // reset: read again from this log
    const w = await c.turnOn(ref, 'like', 'a');
    await waitFor(() => events.some((e) => e.position === w.position), 'the next event');
  });

  it('resumes from the head at once when its resume point is beyond the server\'s log', async () => {
    const ref = `article/${uniqueId()}`;
    await qc.fetchQuery(targetQueryOptions(client, ref));
    proxy.seen.length = 0;
    const events: LiveEvent[] = [];
    let opened = 0;
    stops.push(subscribeLive(client, qc, { after: 99_999_999, reconnectMs: 60_000, onEvent: (e) => events.push(e), onOpen: () => opened++ }));
    await waitFor(() => opened === 1, 'a live stream from the head', 6000);
    const streams = proxy.seen.filter((r) => r.url.startsWith('/v1/events/stream'));
    expect(streams.map((r) => r.headers['last-event-id'] ?? '')).toEqual(['99999999', '']);
    expect(qc.getQueryData(ledgerKeys.target(ref))).toBeUndefined(); // reset: read again from the restored log
    const w = await client.turnOn(ref, 'like', 'a');
    await waitFor(() => events.some((e) => e.position === w.position), 'the next event');
  });

  // A page whose stream missed its own last writes (they were made while
  // it reconnected) holds views beyond a log restored from an older copy,
  // while its resume point is within it: the stream sends the session
  // position too, so the restore is heard at the reconnection, not at the
  // next read (the views kept the lost writes and ignored the restored
  // log's events up to their position).
  it('hears of a restored log at the reconnection when only its session position is beyond it', async () => {
    const c = createLedgerClient({ baseUrl: proxy.url, storage: memoryStorage() });
    const { head } = await c.readyz(); // the session learns the server's log
    c.notePosition(head + 99_999_999); // a write of the log before the restore
    const ref = `article/${uniqueId()}`;
    const stale: TargetView = { target: { type: 'article', id: ref.slice(8) }, counts: { like: 7, collect: 0 }, position: head + 99_999_999 };
    qc.setQueryData(ledgerKeys.target(ref), stale);
    const observer = new QueryObserver(qc, { ...targetQueryOptions(c, ref), staleTime: Infinity });
    stops.push(observer.subscribe(() => undefined));
    proxy.seen.length = 0;
    let opened = 0;
    stops.push(subscribeLive(c, qc, { after: head, reconnectMs: 60_000, onOpen: () => opened++ }));
    await waitFor(() => qc.getQueryData<TargetView>(ledgerKeys.target(ref))?.counts.like === 0, "the restored log's view", 6000);
    await waitFor(() => opened === 1, 'a live stream from the head', 6000);
    const streams = proxy.seen.filter((r) => r.url.startsWith('/v1/events/stream'));
    expect(streams[0].headers['ledger-min-position']).toBe(String(head + 99_999_999));
    expect(c.minPosition()).toBe(0); // forgotten: the restored log does not hold it
  });

  it('drops a stream open on the old log as soon as any answer names another log', async () => {
    const c = createLedgerClient({ baseUrl: proxy.url, storage: memoryStorage() });
    await c.readyz(); // the session learns the server's log
    let opened = 0;
    const events: LiveEvent[] = [];
    stops.push(subscribeLive(c, qc, { reconnectMs: 60_000, onEvent: (e) => events.push(e), onOpen: () => opened++ }));
    await waitFor(() => opened === 1, 'the stream open');
    // One answer from "another deployment" (a node of a log made anew).
    proxy.plan = (req) =>
      req.url === '/healthz' ? { reply: { status: 200, headers: { 'Content-Type': 'application/json', 'Ledger-Log': crypto.randomUUID() }, body: '{"status":"ok"}' } } : undefined;
    await c.healthz();
    proxy.plan = () => undefined;
    await waitFor(() => opened >= 2, 'the stream reconnected at once, not after 60 s', 6000);
    const w = await c.turnOn(`article/${uniqueId()}`, 'like', 'a');
    await waitFor(() => events.some((e) => e.position === w.position), 'the next event');
  });

  it('reads views that failed to load again once the stream opens', async () => {
    const ref = `article/${uniqueId()}`;
    proxy.plan = (req) =>
      req.url.startsWith(`/v1/targets/${ref}`) ? { reply: { status: 503, headers: { 'Content-Type': 'text/plain' }, body: 'down' } } : undefined;
    const observer = new QueryObserver(qc, targetQueryOptions(client, ref));
    stops.push(observer.subscribe(() => undefined));
    await waitFor(() => qc.getQueryState(ledgerKeys.target(ref))?.status === 'error', 'the failed load');
    proxy.plan = () => undefined;
    stops.push(subscribeLive(client, qc, { reconnectMs: 60_000 }));
    await waitFor(() => qc.getQueryState(ledgerKeys.target(ref))?.status === 'success', 'the view read again');
  });

  it('replaces views of an old log whose positions are higher than the new log\'s', async () => {
    const storage = memoryStorage();
    storage.setItem(`ledger:min-position:${proxy.url}:log`, crypto.randomUUID());
    const c = createLedgerClient({ baseUrl: proxy.url, storage });
    stops.push(resyncOnLogChange(c, qc));
    const ref = `article/${uniqueId()}`;
    const old: TargetView = { target: { type: 'article', id: ref.slice(8) }, counts: { like: 7, collect: 0 }, position: 999_999_999 };
    qc.setQueryData(ledgerKeys.target(ref), old);
    const observer = new QueryObserver(qc, { ...targetQueryOptions(c, ref), staleTime: Infinity });
    stops.push(observer.subscribe(() => undefined));
    await c.healthz().catch(() => undefined); // any answer names the server's log; this one names no position
    await c.target(`article/${uniqueId()}`); // the first /v1 request learns the log has changed
    await waitFor(() => qc.getQueryData<TargetView>(ledgerKeys.target(ref))?.counts.like === 0, 'the new log\'s view');
    expect(qc.getQueryData<TargetView>(ledgerKeys.target(ref))?.position).toBeLessThan(old.position);
  });

  it('misses nothing when a live-only stream drops before its first event', async () => {
    const ref = `article/${uniqueId()}`;
    await qc.fetchQuery(targetQueryOptions(client, ref));
    const events: LiveEvent[] = [];
    let streams = 0;
    proxy.plan = (req) => (req.url.startsWith('/v1/events/stream') && ++streams === 1 ? { cutAfterMs: 300 } : undefined);
    let opened = 0;
    stops.push(subscribeLive(client, qc, { onEvent: (e) => events.push(e), onOpen: () => opened++ }));
    await waitFor(() => opened === 1, 'the stream to open');
    await new Promise((r) => setTimeout(r, 700)); // cut, not yet reopened (the server asks for 2 s)
    expect(streams).toBe(1);
    const gap = await client.turnOn(ref, 'like', 'in-the-gap');
    await waitFor(() => events.some((e) => e.position === gap.position), 'the event written while disconnected', 6000);
    const resumed = proxy.seen.filter((s) => s.url.startsWith('/v1/events/stream'))[1];
    expect(Number(resumed.headers['last-event-id'])).toBeLessThan(gap.position);
  });

  it('stops on a 4xx (no right to read the stream) and reconnects after a 5xx', async () => {
    const errors: [number, boolean][] = [];
    const problem = (status: number) => ({ reply: { status, headers: { 'Content-Type': 'application/problem+json' }, body: JSON.stringify({ type: 'urn:x', title: 't', status }) } });
    proxy.plan = (_req, n) => (n === 1 ? problem(500) : problem(403));
    stops.push(subscribeLive(client, qc, { reconnectMs: 20, onError: (e, permanent) => errors.push([(e as { status: number }).status, permanent]) }));
    await waitFor(() => errors.length === 2, 'two failures');
    expect(errors).toEqual([[500, false], [403, true]]);
    await new Promise((r) => setTimeout(r, 200));
    expect(proxy.seen).toHaveLength(2);
  });

  // A server down for a while was asked for the stream every 2 s by every
  // client, and when it came back they all reconnected in the same moment.
  it('backs off while the server keeps failing, and spreads its reconnects', async () => {
    const errors: number[] = [];
    const problem = { reply: { status: 503, headers: { 'Content-Type': 'application/problem+json' }, body: JSON.stringify({ type: 'urn:x', title: 't', status: 503 }) } };
    proxy.plan = () => problem;
    stops.push(subscribeLive(client, qc, { reconnectMs: 20, maxReconnectMs: 10_000, onError: (e) => errors.push((e as { status: number }).status) }));
    await new Promise((r) => setTimeout(r, 1500));
    // Doubling from 10-20 ms: at most ~8 attempts in 1.5 s; a fixed 20 ms wait makes ~50.
    expect(errors.length).toBeGreaterThanOrEqual(4);
    expect(errors.length).toBeLessThanOrEqual(10);
  });
});

describe('reconnectDelay', () => {
  it('doubles per failure in a row, up to the cap, drawn between half and all of it', () => {
    expect(reconnectDelay(2000, 30_000, 0, () => 0)).toBe(1000);
    expect(reconnectDelay(2000, 30_000, 1, () => 1)).toBe(2000);
    expect(reconnectDelay(2000, 30_000, 3, () => 0)).toBe(4000);
    expect(reconnectDelay(2000, 30_000, 3, () => 1)).toBe(8000);
    expect(reconnectDelay(2000, 30_000, 50, () => 1)).toBe(30_000);
    for (let i = 0; i < 100; i++) {
      const d = reconnectDelay(2000, 30_000, 2);
      expect(d).toBeGreaterThanOrEqual(2000);
      expect(d).toBeLessThanOrEqual(4000);
    }
  });
});
