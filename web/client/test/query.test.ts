import { MutationCache, MutationObserver, QueryClient, QueryObserver, type QueryKey } from '@tanstack/query-core';
import { afterEach, beforeEach, describe, expect, inject, it } from 'vitest';
import {
  isDurableWrite,
  createLedgerClient,
  feedQueryOptions,
  ledgerKeys,
  metaInvalidation,
  nextToggleState,
  resyncOnLogChange,
  targetQueryOptions,
  toggleMutationOptions,
  viewerState,
  type LedgerClient,
  type TargetBatch,
  type TargetView,
  type ToggleKey,
} from '../src/index';
import { deferred, memoryStorage, startProxy, uniqueId, waitFor, type Proxy } from './helpers';

const ledgerUrl = inject('ledgerUrl');
const limitedUrl = inject('limitedUrl');

function newQueryClient(): QueryClient {
  return new QueryClient({ defaultOptions: { queries: { retry: false, staleTime: 0 } } });
}

function toggle(client: LedgerClient, qc: QueryClient, k: ToggleKey) {
  const obs = new MutationObserver(qc, toggleMutationOptions(client, qc, k));
  return obs.mutate({ on: nextToggleState(qc, k) });
}

/** mounted keeps a query observed (as a mounted component does), so invalidation refetches it. */
function mounted(qc: QueryClient, opts: { queryKey: QueryKey }) {
  const obs = new QueryObserver(qc, opts as never);
  return obs.subscribe(() => undefined);
}

/** timedOut is a write's 503 timeout without Retry-After: the client does not send it again. */
const timedOut = {
  status: 503,
  headers: { 'Content-Type': 'application/problem+json' },
  body: JSON.stringify({ type: 'urn:ledger:problem:timeout', title: 'Service Unavailable', status: 503 }),
};

/** oldLogView is ref's view as read from the log before a change: 5 likes, at a position the log now is far from. */
function oldLogView(ref: string): TargetView {
  return { target: { type: 'article', id: ref.slice(8) }, counts: { like: 5, collect: 0 }, viewer: { like: false, collect: false }, position: 999_999_999 };
}

/** expectNotRolledBack waits for the settling refetch of key and checks its view is the log's now, not oldLogView. */
async function expectNotRolledBack(qc: QueryClient, key: QueryKey): Promise<void> {
  await waitFor(() => qc.getQueryState(key)?.fetchStatus === 'idle', 'the settling refetch');
  const view = qc.getQueryData<TargetView>(key);
  expect(view?.counts.like).toBe(0);
  expect(view?.position).toBeLessThan(999_999_999);
}

function feedItem(qc: QueryClient, ids: string[], viewer: string, id: string): TargetView {
  const batch = qc.getQueryData<TargetBatch>(ledgerKeys.feed(ids.map((i) => `article/${i}`), viewer));
  return batch!.items.find((i) => i.target.id === id)!;
}

describe('TanStack bindings', () => {
  let proxy: Proxy;
  let client: LedgerClient;
  let qc: QueryClient;
  beforeEach(async () => {
    proxy = await startProxy(ledgerUrl);
    client = createLedgerClient({ baseUrl: proxy.url, storage: memoryStorage() });
    qc = newQueryClient();
  });
  afterEach(async () => {
    qc.clear();
    await proxy.close();
  });

  it('does not roll a click made on an old log back over the new log\'s views', async () => {
    const storage = memoryStorage();
    const old = crypto.randomUUID();
    storage.setItem(`ledger:min-position:${proxy.url}:log`, old);
    const c = createLedgerClient({ baseUrl: proxy.url, storage });
    const unsync = resyncOnLogChange(c, qc);
    const ref = `article/${uniqueId()}`;
    const opts = targetQueryOptions(c, ref, 'u1');
    // The tab's view of the old log.
    qc.setQueryData(opts.queryKey, oldLogView(ref));
    const unmount = mounted(qc, { ...opts, staleTime: Infinity } as never);
    // The click reaches the new log's server (412 other-log), is resent, and that fails.
    proxy.plan = (req) =>
      req.method === 'PUT' && req.headers['ledger-log'] !== old
        ? { delayMs: 400, reply: timedOut }
        : undefined;
    await expect(toggle(c, qc, { target: ref, kind: 'like', user: 'u1' })).rejects.toMatchObject({ status: 503 });
    await expectNotRolledBack(qc, opts.queryKey);
    unmount();
    unsync();
  });

  // A log restored from an older copy keeps its id: a read refused as
  // beyond its head (412 position-beyond-log) resets the views, and a click
  // made before that and failing after must not roll them back to the old
  // log's (whose higher position no refetch would then replace).
  it('does not roll a click made before a restore was heard back over the reset views', async () => {
    const c = createLedgerClient({ baseUrl: proxy.url, storage: memoryStorage(), sleep: async () => undefined });
    const unsync = resyncOnLogChange(c, qc);
    c.notePosition((await c.readyz()).head + 1_000_000);
    const ref = `article/${uniqueId()}`;
    const opts = targetQueryOptions(c, ref, 'u1');
    qc.setQueryData(opts.queryKey, oldLogView(ref));
    const unmount = mounted(qc, { ...opts, staleTime: Infinity } as never);
    const held = deferred();
    proxy.plan = (req) =>
      req.method === 'PUT'
        ? { until: held.promise, reply: timedOut }
        : undefined;
    const click = toggle(c, qc, { target: ref, kind: 'like', user: 'u1' });
    await waitFor(() => proxy.seen.some((s) => s.method === 'PUT'), 'the click');
    await c.target(`article/${uniqueId()}`); // refused as beyond the head, resent: the views reset
    await waitFor(() => (qc.getQueryData<TargetView>(opts.queryKey)?.position ?? Infinity) < 999_999_999, 'the reset view');
    held.resolve();
    await expect(click).rejects.toMatchObject({ status: 503 });
    await expectNotRolledBack(qc, opts.queryKey);
    unmount();
    unsync();
  });

  // The server's kinds changed (README "Changing the kinds"): a view cached
  // before holds a kind the server no longer serves. A write's answer holds
  // every kind the server serves: it replaces the view's counts and the
  // viewer's flags, and a removed kind's stale count does not stay merged
  // with the fresh ones.
  it('settles a view with the answer\'s kinds, dropping a kind the server no longer serves', async () => {
    const ref = `article/${uniqueId()}`;
    const key = ledgerKeys.target(ref, 'u1');
    qc.setQueryData(key, { target: { type: 'article', id: ref.slice(8) }, counts: { like: 0, collect: 0, bookmark: 7 }, viewer: { like: false, collect: false, bookmark: true }, position: 0 });
    await toggle(client, qc, { target: ref, kind: 'like', user: 'u1' });
    const view = qc.getQueryData<TargetView>(key)!;
    expect(view.counts).toEqual({ like: 1, collect: 0 });
    expect(view.viewer).toEqual({ like: true, collect: false });
  });

  it('patches a feed page and the single-target query optimistically, then settles with the answer', async () => {
    const ids = [uniqueId(), uniqueId(), uniqueId()];
    const refs = ids.map((i) => `article/${i}`);
    await client.turnOn(refs[1], 'like', 'other');
    await qc.fetchQuery(feedQueryOptions(client, refs, 'me'));
    await qc.fetchQuery(targetQueryOptions(client, refs[1], 'me'));
    await qc.fetchQuery(targetQueryOptions(client, refs[1])); // no viewer: counts only
    const gate = deferred();
    proxy.plan = (req) => (req.method === 'PUT' ? { until: gate.promise } : undefined);

    const done = toggle(client, qc, { target: refs[1], kind: 'like', user: 'me' });
    await waitFor(() => feedItem(qc, ids, 'me', ids[1]).viewer?.like === true, 'the optimistic patch');
    expect(feedItem(qc, ids, 'me', ids[1]).counts.like).toBe(2);
    expect(qc.getQueryData(ledgerKeys.target(refs[1], 'me'))).toMatchObject({ counts: { like: 2 }, viewer: { like: true } });
    expect(qc.getQueryData(ledgerKeys.target(refs[1]))).toMatchObject({ counts: { like: 2 } });
    expect(feedItem(qc, ids, 'me', ids[0]).counts.like).toBe(0); // the other targets of the page are untouched
    expect(feedItem(qc, ids, 'me', ids[2]).counts.like).toBe(0);

    gate.resolve();
    const result = await done;
    expect(result).toMatchObject({ active: true, counts: { like: 2 } });
    const item = feedItem(qc, ids, 'me', ids[1]);
    expect(item.position).toBe(result.position);
    expect(item.viewer?.like).toBe(true);
  });

  // A write whose event is durable but not yet applied (503 with its
  // position) is done: the click stays, and the session waits for it.
  it('keeps a click whose write is durable though not yet applied', async () => {
    const once = createLedgerClient({ baseUrl: proxy.url, storage: memoryStorage(), retries: 0 });
    const ref = `article/${uniqueId()}`;
    await qc.fetchQuery(targetQueryOptions(once, ref, 'me'));
    proxy.plan = (req) =>
      req.method === 'PUT'
        ? { reply: { status: 503, headers: { 'Content-Type': 'application/problem+json', 'Retry-After': '1' },
            body: JSON.stringify({ type: 'urn:ledger:problem:not-caught-up', title: 'Service Unavailable', status: 503,
              detail: 'the write is durable at position 9 (changed: true), but ...', position: 9 }) } }
        : undefined;
    const err = await toggle(once, qc, { target: ref, kind: 'like', user: 'me' }).catch((e: unknown) => e);
    expect(isDurableWrite(err)).toBe(true);
    expect(qc.getQueryData(ledgerKeys.target(ref, 'me'))).toMatchObject({ viewer: { like: true } });
    expect(once.minPosition()).toBe(9);
  });

  it('rolls back every patched view when the server refuses the write', async () => {
    const limited = createLedgerClient({ baseUrl: limitedUrl, storage: memoryStorage(), retries: 0 });
    const user = uniqueId('u');
    const ids = [uniqueId(), uniqueId()];
    const refs = ids.map((i) => `article/${i}`);
    await limited.turnOn(refs[0], 'collect', user); // spends the user's only write
    await qc.fetchQuery(feedQueryOptions(limited, refs, user));
    await qc.fetchQuery(targetQueryOptions(limited, refs[1], user));
    const before = structuredClone(qc.getQueryData(ledgerKeys.feed(refs, user)));

    const err = await toggle(limited, qc, { target: refs[1], kind: 'like', user }).catch((e: unknown) => e);
    expect(err).toMatchObject({ status: 429, type: 'urn:ledger:problem:rate-limited' });
    expect(qc.getQueryData(ledgerKeys.feed(refs, user))).toEqual(before);
    expect(qc.getQueryData(ledgerKeys.target(refs[1], user))).toMatchObject({ counts: { like: 0 }, viewer: { like: false } });
    expect(viewerState(qc, { target: refs[1], kind: 'like', user })).toBe(false);
    expect((await limited.target(refs[1], { viewer: user })).viewer?.like).toBe(false); // and the server agrees
  });

  it('rolls a burst back to its last server answer, or to before its first click', async () => {
    const limited = createLedgerClient({ baseUrl: limitedUrl, storage: memoryStorage(), retries: 0 });
    const user = uniqueId('u');
    const ref = `article/${uniqueId()}`;
    const k: ToggleKey = { target: ref, kind: 'like', user };
    await qc.fetchQuery(targetQueryOptions(limited, ref, user));
    const burst = () => {
      const runs = [true, false].map(() => new MutationObserver(qc, toggleMutationOptions(limited, qc, k)).mutate({ on: nextToggleState(qc, k) }));
      return Promise.allSettled(runs);
    };

    // The first click spends the user's one write (on), the second is refused.
    const [ok, refused] = await burst();
    expect(ok.status).toBe('fulfilled');
    expect(refused).toMatchObject({ status: 'rejected', reason: { status: 429 } });
    expect(qc.getQueryData(ledgerKeys.target(ref, user))).toMatchObject({ viewer: { like: true }, counts: { like: 1 } });

    // Both clicks refused: back to before the first one (on), not to the first click's optimistic off.
    const results = await burst();
    expect(results.map((r) => r.status)).toEqual(['rejected', 'rejected']);
    expect(qc.getQueryData(ledgerKeys.target(ref, user))).toMatchObject({ viewer: { like: true }, counts: { like: 1 } });
    expect((await limited.target(ref, { viewer: user })).viewer?.like).toBe(true);
  });

  it('keeps the optimistic state when the target is refetched while the write is held', async () => {
    // A window focus refetches while the click's write is in flight: the
    // server's view does not hold the click yet, and must not flicker the
    // button back.
    const gate = deferred();
    // The write is held before it reaches the server (the proxy would hold
    // only its answer, after the server applied it).
    const held = createLedgerClient({
      baseUrl: proxy.url, storage: memoryStorage(),
      fetch: (url, init) => (init?.method === 'PUT' ? gate.promise.then(() => fetch(url, init)) : fetch(url, init)),
    });
    const ref = `article/${uniqueId()}`;
    const obs = new QueryObserver(qc, feedQueryOptions(held, [ref, `article/${uniqueId()}`], 'me') as never);
    const seen: boolean[] = [];
    const stop = obs.subscribe((r) => {
      const like = (r.data as TargetBatch | undefined)?.items[0]?.viewer?.like;
      if (like !== undefined) seen.push(like);
    });
    await waitFor(() => seen.length > 0, 'the first read');
    const done = toggle(held, qc, { target: ref, kind: 'like', user: 'me' });
    await waitFor(() => seen[seen.length - 1] === true, 'the optimistic patch');
    await obs.refetch();
    expect((obs.getCurrentResult().data as TargetBatch).items[0]).toMatchObject({ viewer: { like: true }, counts: { like: 1 } });
    gate.resolve();
    await done;
    await waitFor(() => qc.isFetching() === 0, 'the refetch after the write');
    stop();
    expect(seen.slice(seen.indexOf(true))).not.toContain(false);
    expect(seen[seen.length - 1]).toBe(true);
  });

  it('ends in the state of the last of 10 rapid toggles while the server delays answers', async () => {
    const id = uniqueId();
    const ref = `article/${id}`;
    const k: ToggleKey = { target: ref, kind: 'like', user: 'me' };
    const unsub = [mounted(qc, targetQueryOptions(client, ref, 'me')), mounted(qc, feedQueryOptions(client, [ref, 'article/x'], 'me'))];
    await waitFor(() => qc.getQueryData(ledgerKeys.target(ref, 'me')) !== undefined, 'the first read');
    let writes = 0;
    let reads = 0;
    // Every other write answer is held back, and every read after the
    // first answers late, so refetches could land after newer answers.
    proxy.plan = (req) => {
      if (req.method === 'PUT' || req.method === 'DELETE') return writes++ % 2 === 0 ? { delayMs: 40 + (writes % 3) * 30 } : undefined;
      if (req.url.startsWith('/v1/targets')) return reads++ > 0 ? { delayMs: 120 } : undefined;
      return undefined;
    };
    const clicks: boolean[] = [];
    const results: Promise<unknown>[] = [];
    for (let i = 0; i < 10; i++) {
      const on = nextToggleState(qc, k);
      clicks.push(on);
      results.push(new MutationObserver(qc, toggleMutationOptions(client, qc, k)).mutate({ on }).catch((e: unknown) => e));
    }
    expect(clicks).toEqual([true, false, true, false, true, false, true, false, true, false]);
    const last = clicks[9];
    const toggles = () => qc.getMutationCache().findAll({ mutationKey: ledgerKeys.toggle(ref, 'like', 'me') });
    await waitFor(() => toggles().every((m) => m.state.context !== undefined), 'every click to be patched in');
    expect(viewerState(qc, k)).toBe(last);
    const seen: (boolean | undefined)[] = [];
    const stop = qc.getQueryCache().subscribe(() => seen.push(viewerState(qc, k)));
    await Promise.all(results);
    await waitFor(() => qc.isFetching() === 0 && qc.isMutating() === 0, 'everything to settle');
    stop();
    unsub.forEach((u) => u());

    expect(seen.every((s) => s === last)).toBe(true); // no flicker back to an older click
    expect(qc.getQueryData(ledgerKeys.target(ref, 'me'))).toMatchObject({ viewer: { like: last }, counts: { like: last ? 1 : 0 } });
    expect(feedItem(qc, [id, 'x'], 'me', id)).toMatchObject({ viewer: { like: last }, counts: { like: last ? 1 : 0 } });
    const server = await client.target(ref, { viewer: 'me' });
    expect(server.viewer?.like).toBe(last);
    const order = proxy.seen.filter((s) => s.method === 'PUT' || s.method === 'DELETE').map((s) => s.method === 'PUT');
    expect(order).toEqual(clicks); // one scope: the server saw the clicks in order
  });

  it('ignores a server answer older than the cached view', async () => {
    const ref = `article/${uniqueId()}`;
    await qc.fetchQuery(targetQueryOptions(client, ref, 'me'));
    const gate = deferred();
    proxy.plan = (req) => (req.method === 'PUT' && req.url.endsWith('/me') ? { until: gate.promise } : undefined);
    const done = toggle(client, qc, { target: ref, kind: 'like', user: 'me' });
    // Until the server answered it (held by the proxy), the write may not be in the log yet: the
    // next write could take the earlier position.
    await waitFor(() => proxy.seen.some((s) => s.method === 'PUT' && s.answered === true), 'the write to be done by the server');
    await client.turnOn(ref, 'like', 'someone-else'); // a newer event for the target...
    const newer = await client.target(ref, { viewer: 'me' });
    qc.setQueryData(ledgerKeys.target(ref, 'me'), { ...newer, viewer: { like: true, collect: false } }); // ...reached the cache first
    gate.resolve();
    const answer = await done;
    expect(answer.position).toBeLessThan(newer.position);
    expect(qc.getQueryData<TargetView>(ledgerKeys.target(ref, 'me'))?.position).toBeGreaterThanOrEqual(newer.position);
    await waitFor(() => qc.isFetching() === 0, 'the invalidation');
    expect(qc.getQueryData(ledgerKeys.target(ref, 'me'))).toMatchObject({ counts: { like: 2 }, viewer: { like: true } });
  });

  it('shows the last write after a reload (new QueryClient, same sessionStorage)', async () => {
    const storage = memoryStorage();
    const ref = `article/${uniqueId()}`;
    const first = createLedgerClient({ baseUrl: proxy.url, storage });
    const k: ToggleKey = { target: ref, kind: 'collect', user: 'me' };
    await qc.fetchQuery(targetQueryOptions(first, ref, 'me'));
    await toggle(first, qc, k); // on
    await toggle(first, qc, k); // off: the cancelled collect must not come back
    const lastPosition = first.minPosition();

    // Reads of the reloaded page go to the server with the session's
    // position; the proxy answers them late so that any stale answer
    // would have time to show.
    proxy.plan = (req) => (req.method === 'GET' ? { delayMs: 50 } : undefined);
    proxy.seen.length = 0;
    const reloadedQc = newQueryClient();
    const reloaded = createLedgerClient({ baseUrl: proxy.url, storage });
    const view = await reloadedQc.fetchQuery(targetQueryOptions(reloaded, ref, 'me'));
    expect(proxy.seen[0].headers['ledger-min-position']).toBe(String(lastPosition));
    expect(view.viewer?.collect).toBe(false);
    expect(view.counts.collect).toBe(0);
    expect(view.position).toBe(lastPosition);
    reloadedQc.clear();
  });

  it('refetches through a mounted query without moving the cache backwards', async () => {
    const ref = `article/${uniqueId()}`;
    const w = await client.turnOn(ref, 'like', 'x');
    qc.setQueryData(ledgerKeys.target(ref), { target: { type: 'article', id: ref.slice(8) }, counts: { like: 7, collect: 0 }, position: w.position + 1000 });
    await qc.refetchQueries({ queryKey: ledgerKeys.target(ref) }).catch(() => undefined);
    await qc.fetchQuery({ ...targetQueryOptions(client, ref), staleTime: 0 });
    expect(qc.getQueryData<TargetView>(ledgerKeys.target(ref))?.counts.like).toBe(7);
  });
});

describe('metaInvalidation', () => {
  it('invalidates meta.invalidates once no mutation of that key is pending', async () => {
    const invalidated: string[] = [];
    let qc!: QueryClient;
    qc = new QueryClient({ mutationCache: new MutationCache({ onSettled: metaInvalidation(() => qc) }) });
    const key = ['things'];
    qc.setQueryData(key, 1);
    qc.getQueryCache().subscribe((e) => {
      if (e.type === 'updated' && e.action.type === 'invalidate') invalidated.push(JSON.stringify(e.query.queryKey));
    });
    const gates = [deferred(), deferred()];
    const run = (i: number) =>
      new MutationObserver(qc, { mutationKey: ['save'], meta: { invalidates: [key] }, mutationFn: () => gates[i].promise }).mutate();
    const a = run(0);
    const b = run(1);
    gates[0].resolve();
    await a;
    expect(invalidated).toEqual([]); // b is still pending
    gates[1].resolve();
    await b;
    expect(invalidated).toEqual(['["things"]']);
  });
});
