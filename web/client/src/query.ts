import {
  replaceEqualDeep,
  type DataTag,
  type InfiniteData,
  type MutationOptions,
  type Query,
  type QueryClient,
  type QueryKey,
} from '@tanstack/query-core';
import type { LedgerClient } from './client.js';
import { isDurableWrite } from './errors.js';
import { targetKey, type ActorPage, type ItemPage, type TargetBatch, type TargetRef, type TargetView, type WriteResult } from './types.js';

/** ViewerParam is the viewer part of a target or feed key. */
interface ViewerParam {
  viewer: string | null;
}

/**
 * ledgerKeys is the query-key factory. Every key starts with "ledger", so
 * `invalidateQueries({queryKey: ledgerKeys.all})` reaches them all; a
 * target's keys hold its "type/id" so that a write or a live event finds
 * every cached query that shows it.
 */
export const ledgerKeys = {
  all: ['ledger'] as const,
  target: (ref: TargetRef, viewer?: string | null) =>
    ['ledger', 'target', targetKey(ref), { viewer: viewer ?? null }] as unknown as DataTag<QueryKey, TargetView, Error>,
  feed: (refs: TargetRef[], viewer?: string | null) =>
    ['ledger', 'feed', refs.map(targetKey), { viewer: viewer ?? null }] as unknown as DataTag<QueryKey, TargetBatch, Error>,
  actors: (ref: TargetRef, kind: string, limit?: number) =>
    ['ledger', 'actors', targetKey(ref), kind, { limit: limit ?? null }] as unknown as DataTag<QueryKey, InfiniteData<ActorPage, string | null>, Error>,
  collection: (user: string, kind: string, opts: { type?: string; limit?: number } = {}) =>
    ['ledger', 'collection', user, kind, { type: opts.type ?? null, limit: opts.limit ?? null }] as unknown as DataTag<
      QueryKey,
      InfiniteData<ItemPage, string | null>,
      Error
    >,
  toggle: (ref: TargetRef, kind: string, user: string) => ['ledger', 'toggle', targetKey(ref), kind, user] as const,
};

// keepNewer is a structuralSharing function: a fetched view whose position
// is older than the cached one (a live event or a write answer got there
// first) keeps the cached view, so a refetch never moves the cache back.
function keepNewerView(old: unknown, next: unknown): unknown {
  const o = old as TargetView | undefined;
  const n = next as TargetView;
  if (o && o.position > n.position) return o;
  return replaceEqualDeep(old, next);
}

function keepNewerBatch(old: unknown, next: unknown): unknown {
  const o = old as TargetBatch | undefined;
  const n = next as TargetBatch;
  if (!o || o.items.length !== n.items.length) return replaceEqualDeep(old, next);
  const items = n.items.map((item, i) => (o.items[i] && targetKey(o.items[i].target) === targetKey(item.target) && o.items[i].position > item.position ? o.items[i] : item));
  return replaceEqualDeep(old, { ...n, items });
}

/**
 * ViewQueryOptions are the query options of a target view or a feed page.
 * The option functions declare them (and PagedQueryOptions) rather than
 * leave them inferred: an inferred DataTag key was written into the
 * published .d.ts with TanStack's unique symbols, which it does not import.
 */
export interface ViewQueryOptions<T> {
  queryKey: DataTag<QueryKey, T, Error>;
  queryFn: (ctx: { signal: AbortSignal; client: QueryClient }) => Promise<T>;
  structuralSharing: (old: unknown, next: unknown) => unknown;
}

/** PagedQueryOptions are the infinite query options of a list paged by cursor. */
export interface PagedQueryOptions<T> {
  queryKey: DataTag<QueryKey, InfiniteData<T, string | null>, Error>;
  queryFn: (ctx: { signal: AbortSignal; pageParam: string | null }) => Promise<T>;
  initialPageParam: string | null;
  getNextPageParam: (last: T) => string | undefined;
}

/** targetQueryOptions are the query options of one target (and viewer's state). */
export function targetQueryOptions(client: LedgerClient, ref: TargetRef, viewer?: string | null): ViewQueryOptions<TargetView> {
  return {
    queryKey: ledgerKeys.target(ref, viewer),
    queryFn: async ({ signal, client: qc }: { signal: AbortSignal; client: QueryClient }) => withPendingClicks(qc, viewer, await client.target(ref, { viewer, signal })),
    structuralSharing: keepNewerView,
  };
}

/** feedQueryOptions are the query options of a feed page of targets (one request). */
export function feedQueryOptions(client: LedgerClient, refs: TargetRef[], viewer?: string | null): ViewQueryOptions<TargetBatch> {
  return {
    queryKey: ledgerKeys.feed(refs, viewer),
    queryFn: async ({ signal, client: qc }: { signal: AbortSignal; client: QueryClient }) => withPendingClicks(qc, viewer, await client.targets(refs, { viewer, signal })),
    structuralSharing: keepNewerBatch,
  };
}

/** actorsInfiniteQueryOptions page "who turned kind on" for a target, by cursor. */
export function actorsInfiniteQueryOptions(client: LedgerClient, ref: TargetRef, kind: string, limit?: number): PagedQueryOptions<ActorPage> {
  return {
    queryKey: ledgerKeys.actors(ref, kind, limit),
    queryFn: ({ signal, pageParam }: { signal: AbortSignal; pageParam: string | null }) =>
      client.actors(ref, kind, { limit, cursor: pageParam, signal }),
    initialPageParam: null as string | null,
    getNextPageParam: (last: ActorPage) => last.next_cursor ?? undefined,
  };
}

/** collectionInfiniteQueryOptions page "what user turned kind on for", by cursor. */
export function collectionInfiniteQueryOptions(
  client: LedgerClient,
  user: string,
  kind: string,
  opts: { type?: string; limit?: number } = {},
): PagedQueryOptions<ItemPage> {
  return {
    queryKey: ledgerKeys.collection(user, kind, opts),
    queryFn: ({ signal, pageParam }: { signal: AbortSignal; pageParam: string | null }) =>
      client.collection(user, kind, { ...opts, cursor: pageParam, signal }),
    initialPageParam: null as string | null,
    getNextPageParam: (last: ItemPage) => last.next_cursor ?? undefined,
  };
}

/** CachedTarget is one cached query's view of a target. */
interface CachedTarget {
  queryKey: QueryKey;
  viewer: string | null;
  item: TargetView;
}

function holds(q: Query, key: string): boolean {
  const k = q.queryKey;
  if (k[0] !== 'ledger') return false;
  if (k[1] === 'target') return k[2] === key;
  return k[1] === 'feed' && Array.isArray(k[2]) && (k[2] as string[]).includes(key);
}

function viewerOf(q: Query): string | null {
  return (q.queryKey[3] as ViewerParam | undefined)?.viewer ?? null;
}

/** cachedTargets returns every cached view of the target: single-target queries and feed pages. */
export function cachedTargets(qc: QueryClient, ref: TargetRef): CachedTarget[] {
  const key = targetKey(ref);
  const out: CachedTarget[] = [];
  for (const q of qc.getQueryCache().findAll({ queryKey: ledgerKeys.all, predicate: (q) => holds(q, key) })) {
    const data = q.state.data as TargetView | TargetBatch | undefined;
    if (!data) continue;
    const item = 'items' in data ? data.items.find((i) => targetKey(i.target) === key) : data;
    if (item) out.push({ queryKey: q.queryKey, viewer: viewerOf(q), item });
  }
  return out;
}

/**
 * patchTarget replaces the target's view in every cached query holding it
 * with fn's result (fn gets the view and the query's viewer; returning the
 * same object leaves that query alone).
 */
export function patchTarget(qc: QueryClient, ref: TargetRef, fn: (item: TargetView, viewer: string | null) => TargetView): void {
  const key = targetKey(ref);
  for (const { queryKey, viewer } of cachedTargets(qc, ref)) {
    qc.setQueryData(queryKey, (data: TargetView | TargetBatch | undefined) => patchData(data, viewer, key, fn));
  }
}

/** patchData applies fn to the target key's view in data (one view or a feed page). */
function patchData<T extends TargetView | TargetBatch | undefined>(data: T, viewer: string | null, key: string, fn: (item: TargetView, viewer: string | null) => TargetView): T {
  if (!data) return data;
  if (!('items' in data)) return (targetKey(data.target) === key ? fn(data, viewer) : data) as T;
  let changed = false;
  const items = data.items.map((i) => {
    if (targetKey(i.target) !== key) return i;
    const next = fn(i, viewer);
    changed ||= next !== i;
    return next;
  });
  return (changed ? { ...data, items } : data) as T;
}

// answered holds the variables of toggles whose answer (or failure) has
// come: their mutation stays "pending" until onSettled's invalidation has
// refetched, and that refetch must not get the click patched on again.
const answered = new WeakSet<ToggleVariables>();

/**
 * withPendingClicks patches onto a view the viewer has just fetched (one
 * target or a feed page) the state of the viewer's toggles still in
 * flight, before it enters the cache: the server's view does not hold the
 * click yet, and taking it as it is would flicker the button back (a
 * window-focus refetch mid-click). For each (target, kind), the last
 * pending click decides.
 */
function withPendingClicks<T extends TargetView | TargetBatch>(qc: QueryClient, viewer: string | null | undefined, data: T): T {
  if (!viewer) return data;
  const last = new Map<string, { k: ToggleKey; on: boolean }>();
  for (const m of qc.getMutationCache().findAll({ mutationKey: ['ledger', 'toggle'], status: 'pending' })) {
    const [, , target, kind, user] = m.options.mutationKey as [string, string, string, string, string];
    const vars = m.state.variables as ToggleVariables | undefined;
    if (user === viewer && vars && !answered.has(vars)) last.set(`${target} ${kind}`, { k: { target, kind, user }, on: vars.on }); // in submission order
  }
  let out = data;
  for (const { k, on } of last.values()) {
    out = patchData(out, viewer, targetKey(k.target), (item, v) => optimistic(item, v, k, on, undefined));
  }
  return out;
}

/**
 * toggleAwaitingAnswer reports whether a toggle of this page on the target
 * (a targetKey) has not had its answer (or failure) yet: its optimistic
 * patch is then the view, and its answer settles it. A toggle that was
 * answered stays pending until its settling refetch lands, which may have
 * been sent before later events: those must still be applied.
 */
export function toggleAwaitingAnswer(qc: QueryClient, key: string): boolean {
  return qc.getMutationCache().findAll({ mutationKey: ['ledger', 'toggle'], status: 'pending' }).some((m) => {
    const k = m.options.mutationKey as readonly unknown[] | undefined;
    const vars = m.state.variables as ToggleVariables | undefined;
    return k?.[2] === key && !(vars && answered.has(vars));
  });
}

/** ToggleKey names the (target, kind, user) whose toggles share one mutation scope. */
export interface ToggleKey {
  target: TargetRef;
  kind: string;
  user: string;
}

/** ToggleVariables are a toggle mutation's variables: the state wanted. */
export interface ToggleVariables {
  on: boolean;
}

/** ToggleContext is what onMutate keeps for a rollback. */
export interface ToggleContext {
  /** before is each cached view of the target as it was before this click's patch. */
  before: { queryKey: QueryKey; item: TargetView }[];
  /** first is true for the first click of a burst (no other toggle of the key was pending). */
  first: boolean;
  /** log is the server's log the views were read from (client.log()) when the click was made. */
  log: string | null;
  /** logChanges is client.logChanges() when the click was made. */
  logChanges: number;
}

function pendingToggles(qc: QueryClient, k: ToggleKey) {
  return qc.getMutationCache().findAll({ mutationKey: ledgerKeys.toggle(k.target, k.kind, k.user), exact: true, status: 'pending' });
}

/** viewerState is the user's cached state of kind on the target; undefined when not cached. */
export function viewerState(qc: QueryClient, k: ToggleKey): boolean | undefined {
  for (const c of cachedTargets(qc, k.target)) {
    if (c.viewer === k.user && c.item.viewer && k.kind in c.item.viewer) return c.item.viewer[k.kind];
  }
  return undefined;
}

/**
 * nextToggleState is the state a click on the toggle asks for: the
 * opposite of the last click still in flight, or else of the cached state.
 * Reading the pending mutations (not only the cache) makes clicks faster
 * than a render still alternate.
 */
export function nextToggleState(qc: QueryClient, k: ToggleKey): boolean {
  const pending = pendingToggles(qc, k);
  const last = pending[pending.length - 1]?.state.variables as ToggleVariables | undefined;
  return !(last?.on ?? viewerState(qc, k) ?? false);
}

function optimistic(item: TargetView, viewer: string | null, k: ToggleKey, on: boolean, was: boolean | undefined): TargetView {
  const mine = viewer === k.user;
  const prev = mine ? item.viewer?.[k.kind] : was;
  if (prev === on) return item;
  const next = { ...item };
  if (prev !== undefined) {
    next.counts = { ...item.counts, [k.kind]: Math.max(0, (item.counts[k.kind] ?? 0) + (on ? 1 : -1)) };
  }
  if (mine) next.viewer = { ...item.viewer, [k.kind]: on };
  return next;
}

/**
 * servedKinds returns flags (a view's viewer state) with only the kinds
 * counts holds: an answer's counts hold every kind the server serves, so a
 * kind the server no longer serves (its kinds changed since the view was
 * read) leaves the view rather than stay merged with fresh answers.
 */
export function servedKinds<T>(flags: Record<string, T> | undefined, counts: Record<string, number>): Record<string, T> | undefined {
  if (!flags) return flags;
  return Object.fromEntries(Object.entries(flags).filter(([kind]) => kind in counts));
}

/** settle puts a write's answer into a view: its counts and (the user's view) its viewer replace the view's. */
function settle(item: TargetView, viewer: string | null, k: ToggleKey, r: WriteResult): TargetView {
  if (item.position > r.position) return item;
  const next: TargetView = { ...item, counts: { ...r.counts }, position: Math.max(item.position, r.position) };
  if (item.viewer) next.viewer = servedKinds(item.viewer, r.counts);
  if (viewer === k.user) next.viewer = { ...r.viewer };
  return next;
}

function touches(q: Query, k: ToggleKey): boolean {
  const key = q.queryKey;
  if (holds(q, targetKey(k.target))) return true;
  if (key[0] !== 'ledger') return false;
  if (key[1] === 'actors') return key[2] === targetKey(k.target) && key[3] === k.kind;
  return key[1] === 'collection' && key[2] === k.user && key[3] === k.kind;
}

/**
 * toggleMutationOptions are the mutation options of turning kind on or off
 * for user on a target, with the optimistic pattern of TanStack's docs:
 *
 *  - onMutate cancels the queries holding the target, keeps their view of
 *    it, and patches every one (single target and feed pages);
 *  - on error the views come back (to the burst's newest server answer, or
 *    to before its first click), unless a later click is still pending or
 *    the error says the write is durable (isDurableWrite: a 503 whose read
 *    model had not applied it in time), whose position the session notes;
 *  - on success the server's answer (counts, viewer) goes into the cache,
 *    unless it is older than the cached view (lower position) or a later
 *    click is pending;
 *  - once no toggle of this (target, kind, user) is pending, the queries of
 *    the target, its actors and the user's collection are invalidated;
 *  - a fetch of the user's view that lands meanwhile (a window-focus
 *    refetch) keeps the pending click's state (withPendingClicks in the
 *    target and feed query functions).
 *
 * All toggles of one (target, kind, user) share a scope, so they reach the
 * server in click order and the last click decides the final state. Each
 * write carries the metadata {source: "web"}.
 */
export function toggleMutationOptions(
  client: LedgerClient,
  qc: QueryClient,
  k: ToggleKey,
): MutationOptions<WriteResult, Error, ToggleVariables, ToggleContext> {
  const mutationKey = ledgerKeys.toggle(k.target, k.kind, k.user);
  const othersPending = () => qc.isMutating({ mutationKey, exact: true }) > 1;
  return {
    mutationKey,
    scope: { id: JSON.stringify(mutationKey) },
    mutationFn: ({ on }) => client.set(k.target, k.kind, k.user, on, { metadata: { source: 'web' } }),
    onMutate: async (vars) => {
      const { on } = vars;
      const queue = pendingToggles(qc, k);
      const first = queue.findIndex((m) => m.state.variables === vars) <= 0;
      await qc.cancelQueries({ queryKey: ledgerKeys.all, predicate: (q) => holds(q, targetKey(k.target)) });
      const before = cachedTargets(qc, k.target).map(({ queryKey, item }) => ({ queryKey, item }));
      const was = viewerState(qc, k);
      patchTarget(qc, k.target, (item, viewer) => optimistic(item, viewer, k, on, was));
      return { before, first, log: client.log(), logChanges: client.logChanges() };
    },
    onError: (err, vars) => {
      answered.add(vars);
      if (isDurableWrite(err)) {
        // Done, only not applied yet: keep the click, and let the
        // session's reads wait for its position.
        client.notePosition(err.position);
        return;
      }
      if (othersPending()) return;
      rollBack(qc, k, client.log(), client.logChanges());
    },
    onSuccess: (result, vars) => {
      answered.add(vars);
      if (othersPending()) return;
      patchTarget(qc, k.target, (item, viewer) => settle(item, viewer, k, result));
    },
    onSettled: () => {
      if (othersPending()) return;
      return qc.invalidateQueries({ queryKey: ledgerKeys.all, predicate: (q) => touches(q, k) });
    },
  };
}

/**
 * rollBack undoes a burst of clicks whose last one failed: back to the
 * newest answer the server gave within the burst (its earlier answers were
 * not applied while later clicks were pending), or else to the views from
 * before the burst's first click. A burst begun on another log than the
 * server's now (log), or before the client heard of a log change (changes:
 * a log restored from an older copy keeps its id), is not rolled back: its
 * views and answers are of the log before, and the cache was reset since
 * (resyncOnLogChange); the settling invalidation reads the new log's.
 */
function rollBack(qc: QueryClient, k: ToggleKey, log: string | null, changes: number): void {
  const burst = qc.getMutationCache().findAll({ mutationKey: ledgerKeys.toggle(k.target, k.kind, k.user), exact: true });
  burst.sort((a, b) => a.state.submittedAt - b.state.submittedAt);
  let start = burst.length - 1;
  while (start > 0 && !(burst[start].state.context as ToggleContext | undefined)?.first) start--;
  const clicks = burst.slice(start);
  const ofEarlierLog = (m: (typeof clicks)[number]) => {
    const ctx = m.state.context as ToggleContext | undefined;
    return ctx?.log !== log || ctx?.logChanges !== changes;
  };
  if (clicks.some(ofEarlierLog)) return;
  const answered = clicks.map((m) => m.state.data as WriteResult | undefined).filter((d) => d !== undefined).pop();
  if (answered) {
    patchTarget(qc, k.target, (item, viewer) => {
      const next = settle(item, viewer, k, answered);
      return viewer === k.user ? { ...next, viewer: { ...answered.viewer } } : next;
    });
    return;
  }
  for (const { queryKey, item } of (clicks[0]?.state.context as ToggleContext | undefined)?.before ?? []) {
    restore(qc, queryKey, item);
  }
}

function restore(qc: QueryClient, queryKey: QueryKey, item: TargetView): void {
  const key = targetKey(item.target);
  qc.setQueryData(queryKey, (data: TargetView | TargetBatch | undefined) => {
    if (!data) return data;
    if (!('items' in data)) return item;
    return { ...data, items: data.items.map((i) => (targetKey(i.target) === key ? item : i)) };
  });
}

/** InvalidatesMeta is the mutation meta read by metaInvalidation. */
export interface InvalidatesMeta {
  /** invalidates lists the query keys (prefixes) to invalidate once the mutation settles. */
  invalidates?: QueryKey[];
}

/**
 * metaInvalidation is the MutationCache onSettled of TanStack's global
 * invalidation pattern: a mutation lists the keys it makes stale in
 * `meta.invalidates`, and they are invalidated once it settles — but only
 * when no other mutation with the same mutationKey is pending, so a burst
 * of clicks refetches once, after the last one, instead of racing it.
 * Use it as `new MutationCache({ onSettled: metaInvalidation(() => queryClient) })`.
 */
export function metaInvalidation(getClient: () => QueryClient) {
  return (_data: unknown, _error: unknown, _vars: unknown, _ctx: unknown, mutation: { meta?: Record<string, unknown>; options: { mutationKey?: QueryKey } }) => {
    const keys = (mutation.meta as InvalidatesMeta | undefined)?.invalidates;
    if (!Array.isArray(keys) || keys.length === 0) return;
    const qc = getClient();
    const mk = mutation.options.mutationKey;
    if (mk && qc.isMutating({ mutationKey: mk, exact: true }) > 1) return;
    return Promise.all(keys.map((queryKey) => qc.invalidateQueries({ queryKey })));
  };
}

/**
 * resyncOnLogChange resets every cached ledger view when the client's
 * server names another log than the session's (its log was created anew):
 * they were read from the old log. Reset, not invalidated: the new log's
 * positions are lower, and a refetched view would lose to the cached one
 * (a view never moves backwards within a log). LedgerProvider calls it;
 * apps without React call it once per client and QueryClient. It returns
 * the function that stops it.
 */
export function resyncOnLogChange(client: LedgerClient, qc: QueryClient): () => void {
  return client.onLogChange(() => void qc.resetQueries({ queryKey: ledgerKeys.all }));
}
