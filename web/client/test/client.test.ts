import { afterEach, beforeEach, describe, expect, inject, it } from 'vitest';
import { createLedgerClient, isOtherLog, isPositionBeyondLog, LedgerError, type LedgerClient, parseRetryAfter } from '../src/index';
import { deferred, memoryStorage, startProxy, uniqueId, waitFor, type Proxy } from './helpers';

const ledgerUrl = inject('ledgerUrl');

describe('fetch client', () => {
  let proxy: Proxy;
  beforeEach(async () => {
    proxy = await startProxy(ledgerUrl);
  });
  afterEach(() => proxy.close());

  it('writes and reads every read endpoint', async () => {
    const c = createLedgerClient({ baseUrl: proxy.url, storage: memoryStorage() });
    const id = uniqueId();
    const on = await c.turnOn(`article/${id}`, 'like', 'u1');
    expect(on).toMatchObject({ changed: true, active: true, user: 'u1', kind: 'like', target: { type: 'article', id } });
    expect(on.counts.like).toBe(1);
    expect(on.position).toBeGreaterThan(0);
    const again = await c.turnOn({ type: 'article', id }, 'like', 'u1');
    expect(again.changed).toBe(false);

    const view = await c.target(`article/${id}`, { viewer: 'u1' });
    expect(view.counts).toEqual({ like: 1, collect: 0 });
    expect(view.viewer).toEqual({ like: true, collect: false });
    const batch = await c.targets([`article/${id}`, 'article/never-touched'], { viewer: 'u1' });
    expect(batch.items.map((i) => i.counts.like)).toEqual([1, 0]);
    const actors = await c.actors(`article/${id}`, 'like', { limit: 10 });
    expect(actors.items.map((a) => a.user)).toEqual(['u1']);
    expect(actors.next_cursor).toBeUndefined();
    await c.turnOn(`article/${id}`, 'collect', 'u1');
    const coll = await c.collection('u1', 'collect', { type: 'article', limit: 1000 });
    expect(coll.items.some((i) => i.target.id === id)).toBe(true);
    const history = await c.events({ target_type: 'article', target_id: id });
    expect(history.items.map((e) => e.type)).toEqual(['interaction.added', 'interaction.added']);
    const off = await c.turnOff(`article/${id}`, 'like', 'u1');
    expect(off).toMatchObject({ changed: true, active: false, counts: { like: 0, collect: 1 } });
    expect((await c.healthz()).status).toBe('ok');
    expect((await c.readyz()).status).toBe('ready');
    expect(await c.metrics()).toContain('# TYPE');
    expect((await c.openapi()).openapi).toBe('3.1.0');

    const writes = proxy.seen.filter((s) => s.method === 'PUT' || s.method === 'DELETE');
    expect(writes.every((s) => typeof s.headers['idempotency-key'] === 'string')).toBe(true);
  });

  it('sends a target given twice once, to the batch read and to the stream', async () => {
    const c = createLedgerClient({ baseUrl: proxy.url, storage: memoryStorage() });
    const id = uniqueId();
    await c.turnOn(`article/${id}`, 'like', 'u1');
    const batch = await c.targets([`article/${id}`, 'article/never-touched', { type: 'article', id }], { viewer: 'u1' });
    expect(batch.items.map((i) => [i.target.id, i.counts.like])).toEqual([[id, 1], ['never-touched', 0], [id, 1]]);
    const res = await c.openStream({ targets: [`article/${id}`, { type: 'article', id }] });
    expect(res.status).toBe(200);
    await res.body?.cancel();
    const asked = proxy.seen.filter((s) => s.method === 'GET' && /^\/v1\/(targets|events\/stream)\?/.test(s.url));
    expect(asked.map((s) => new URL(s.url, proxy.url).searchParams.getAll('t'))).toEqual([
      [`article/${id}`, 'article/never-touched'],
      [`article/${id}`],
    ]);
  });

  it('pages with cursors', async () => {
    const c = createLedgerClient({ baseUrl: proxy.url, storage: memoryStorage() });
    const id = uniqueId();
    for (const u of ['a', 'b', 'c']) await c.turnOn(`article/${id}`, 'like', u);
    const first = await c.actors(`article/${id}`, 'like', { limit: 2 });
    expect(first.items.map((a) => a.user)).toEqual(['c', 'b']);
    const second = await c.actors(`article/${id}`, 'like', { limit: 2, cursor: first.next_cursor });
    expect(second.items.map((a) => a.user)).toEqual(['a']);
    expect(second.next_cursor).toBeUndefined();
  });

  it('turns problem answers into LedgerError', async () => {
    const c = createLedgerClient({ baseUrl: proxy.url, storage: memoryStorage() });
    const bad = await c.turnOn('article/a-1', 'like', 'bad user').catch((e: unknown) => e);
    expect(bad).toBeInstanceOf(LedgerError);
    const err = bad as LedgerError;
    expect(err.status).toBe(400);
    expect(err.type).toBe('urn:ledger:problem:invalid-input');
    expect(err.detail).toContain('user');
    expect(err.invalid_params.map((p) => p.name)).toContain('user');
    const unknownKind = await c.target('article/a-1').then(() => c.turnOn('article/a-1', 'follow', 'u1')).catch((e: unknown) => e);
    expect(unknownKind).toMatchObject({ status: 404, type: 'urn:ledger:problem:unknown-kind' });
    const cursor = await c.actors('article/a-1', 'like', { cursor: 'forged' }).catch((e: unknown) => e);
    expect(cursor).toMatchObject({ status: 400 });
  });

  it('rejects a malformed target before sending anything', () => {
    const c = createLedgerClient({ baseUrl: proxy.url, storage: memoryStorage() });
    expect(() => c.target('no-slash')).toThrow(/not "type\/id"/);
    expect(proxy.seen).toHaveLength(0);
  });

  it('refuses "." and ".." as path segments before sending anything', async () => {
    // URL parsers drop dot segments: actors('article/.') would read the
    // view of target article/like instead.
    const c = createLedgerClient({ baseUrl: proxy.url, storage: memoryStorage() });
    const calls = [() => c.actors('article/.', 'like'), () => c.turnOn('article/x1', 'like', '..'), () => c.collection('..', 'like'), () => c.target('article/..')];
    for (const call of calls) await expect((async () => call())()).rejects.toThrow(TypeError);
    expect(proxy.seen).toHaveLength(0);
  });

  it('reads Retry-After as delay seconds or an HTTP date, nothing else', () => {
    const now = Date.parse('Sun, 06 Dec 2026 10:00:00 GMT');
    expect(parseRetryAfter('2', now)).toBe(2000);
    expect(parseRetryAfter('Sun, 06 Dec 2026 10:00:05 GMT', now)).toBe(5000);
    for (const bad of ['1.5', '-1', '5, 6', '2026-12-06', '', 'soon', null]) expect(parseRetryAfter(bad, now)).toBeUndefined();
  });

  it('honours Retry-After on 503 and 429, then gives up', async () => {
    const waits: number[] = [];
    const c = createLedgerClient({ baseUrl: proxy.url, storage: memoryStorage(), retries: 2, sleep: async (ms) => void waits.push(ms) });
    const problem = (status: number, retry: string) => ({
      reply: { status, headers: { 'Content-Type': 'application/problem+json', 'Retry-After': retry }, body: JSON.stringify({ type: 'urn:ledger:problem:x', title: 't', status, detail: 'busy' }) },
    });
    proxy.plan = (_req, n) => (n === 1 ? problem(503, '2') : undefined);
    await expect(c.target('article/a-1')).resolves.toMatchObject({ target: { id: 'a-1' } });
    expect(waits).toEqual([2000]);

    proxy.seen.length = 0;
    proxy.plan = (_req, n) => (n <= 2 ? problem(429, '1') : undefined);
    const w = await c.turnOn(`article/${uniqueId()}`, 'like', 'u1');
    expect(w.active).toBe(true);
    expect(waits).toEqual([2000, 1000, 1000]);
    const keys = proxy.seen.map((s) => s.headers['idempotency-key']);
    expect(new Set(keys).size).toBe(1); // one key across the retries: a retry never applies twice

    proxy.plan = () => problem(503, '1');
    const gaveUp = await c.target('article/a-1').catch((e: unknown) => e);
    expect(gaveUp).toMatchObject({ status: 503, retryAfterMs: 1000 });
  });

  it('does not retry before a Retry-After longer than maxRetryDelayMs', async () => {
    // A 429 of a slow --write-rate or a 503 asking for a minute was sent
    // again after the 10 s cap, three times: retries the server had just
    // refused, from every client at once.
    const waits: number[] = [];
    const c = createLedgerClient({ baseUrl: proxy.url, storage: memoryStorage(), sleep: async (ms) => void waits.push(ms) });
    proxy.plan = () => ({
      reply: { status: 429, headers: { 'Content-Type': 'application/problem+json', 'Retry-After': '60' }, body: JSON.stringify({ type: 'urn:ledger:problem:rate-limited', title: 't', status: 429, detail: 'slow down' }) },
    });
    await expect(c.turnOn(`article/${uniqueId()}`, 'like', 'u1')).rejects.toMatchObject({ status: 429, retryAfterMs: 60_000 });
    expect(waits).toEqual([]);
    expect(proxy.seen).toHaveLength(1);
  });

  it('does not retry a 503 without Retry-After, nor a 400', async () => {
    const c = createLedgerClient({ baseUrl: proxy.url, storage: memoryStorage(), sleep: async () => undefined });
    proxy.plan = () => ({ reply: { status: 503, headers: { 'Content-Type': 'text/plain' }, body: 'down' } });
    await expect(c.target('article/a-1')).rejects.toMatchObject({ status: 503, detail: 'HTTP 503' });
    expect(proxy.seen).toHaveLength(1);
  });
});

/**
 * staleSession is a client through proxy whose session holds stale, a
 * position far beyond the server's log (as after a restore of an older copy).
 */
async function staleSession(proxy: Proxy): Promise<{ c: LedgerClient; stale: number }> {
  const c = createLedgerClient({ baseUrl: proxy.url, storage: memoryStorage(), sleep: async () => undefined });
  const stale = (await c.readyz()).head + 1_000_000;
  c.notePosition(stale);
  return { c, stale };
}

/** beyondLog is the body of a 412 position-beyond-log refusing what (a position, named) beyond head. */
function beyondLog(what: string, head: number): string {
  return JSON.stringify({ type: 'urn:ledger:problem:position-beyond-log', title: 'Precondition Failed', status: 412,
    detail: `${what} is beyond this log's head ${head}`, head });
}

describe('session consistency', () => {
  let proxy: Proxy;
  beforeEach(async () => {
    proxy = await startProxy(ledgerUrl);
  });
  afterEach(() => proxy.close());

  it('sends the position of its last write on reads and keeps it across a reload', async () => {
    const storage = memoryStorage();
    const c = createLedgerClient({ baseUrl: proxy.url, storage });
    expect(c.minPosition()).toBe(0);
    const id = uniqueId();
    await c.target(`article/${id}`);
    expect(proxy.seen[0].headers['ledger-min-position']).toBeUndefined();
    const w = await c.turnOn(`article/${id}`, 'collect', 'u9');
    expect(c.minPosition()).toBe(w.position);

    const reloaded = createLedgerClient({ baseUrl: proxy.url, storage });
    expect(reloaded.minPosition()).toBe(w.position);
    proxy.seen.length = 0;
    const view = await reloaded.target(`article/${id}`, { viewer: 'u9' });
    expect(proxy.seen[0].headers['ledger-min-position']).toBe(String(w.position));
    expect(view.viewer?.collect).toBe(true);
  });

  it('never moves the session position backwards', async () => {
    const storage = memoryStorage();
    const c = createLedgerClient({ baseUrl: proxy.url, storage });
    c.notePosition(50);
    c.notePosition(10);
    expect(c.minPosition()).toBe(50);
    storage.setItem(`ledger:min-position:${proxy.url}`, 'garbage');
    expect(c.minPosition()).toBe(50);
  });

  it('moves to the server\'s log when it names another one: forgets the old position and reads again', async () => {
    const storage = memoryStorage();
    const old = crypto.randomUUID();
    storage.setItem(`ledger:min-position:${proxy.url}:log`, old);
    storage.setItem(`ledger:min-position:${proxy.url}`, '999999999');
    const c = createLedgerClient({ baseUrl: proxy.url, storage, sleep: async () => undefined });
    const changes: string[] = [];
    c.onLogChange((log) => changes.push(log));
    const view = await c.target(`article/${uniqueId()}`);
    expect(view.counts.like).toBe(0);
    expect(proxy.seen).toHaveLength(2);
    expect(proxy.seen[0].headers['ledger-log']).toBe(old);
    expect(proxy.seen[0].headers['ledger-min-position']).toBe('999999999');
    const log = c.log();
    expect(log).not.toBe(old);
    expect(changes).toEqual([log]);
    expect(proxy.seen[1].headers['ledger-log']).toBe(log);
    expect(proxy.seen[1].headers['ledger-min-position']).toBeUndefined();
    expect(c.minPosition()).toBe(0);
    expect(createLedgerClient({ baseUrl: proxy.url, storage }).log()).toBe(log);
  });

  it('does not send a read of another log\'s cursor or after again, and a failing listener fails nothing', async () => {
    const storage = memoryStorage();
    const old = crypto.randomUUID();
    storage.setItem(`ledger:min-position:${proxy.url}:log`, old);
    const c = createLedgerClient({ baseUrl: proxy.url, storage });
    const heard: string[] = [];
    c.onLogChange(() => {
      throw new Error('a listener that fails');
    });
    c.onLogChange((log) => heard.push(log));
    const errors: unknown[] = [];
    const consoleError = console.error;
    console.error = (...args: unknown[]) => void errors.push(args);
    try {
      const err = await c.events({ after: 5 }).catch((e: unknown) => e);
      expect(isOtherLog(err)).toBe(true);
    } finally {
      console.error = consoleError;
    }
    expect(proxy.seen).toHaveLength(1);
    expect(heard).toEqual([c.log()]);
    expect(c.log()).not.toBe(old);
    expect(errors).toHaveLength(1);
    expect((await c.events({ after: 0, limit: 1 })).items.length).toBeLessThanOrEqual(1);
  });

  // A write whose answer is lost (the connection cut after the server
  // committed it) is sent again with the same Idempotency-Key, which
  // answers the first outcome: the write is neither lost to the caller
  // (rejected, the click rolled back and reported undone) nor applied twice.
  it('sends a write whose answer was lost again with the same key', async () => {
    const c = createLedgerClient({ baseUrl: proxy.url, storage: memoryStorage(), sleep: async () => undefined });
    const ref = `article/${uniqueId()}`;
    proxy.plan = (_req, n) => (n === 1 ? { drop: true } : undefined);
    const on = await c.turnOn(ref, 'like', 'u1');
    expect(proxy.seen).toHaveLength(2);
    expect(proxy.seen[1].headers['idempotency-key']).toBe(proxy.seen[0].headers['idempotency-key']);
    expect(on).toMatchObject({ changed: true, active: true, stream_version: 1 });
    expect(c.minPosition()).toBe(on.position);
    const [type, id] = ref.split('/');
    expect((await c.events({ target_type: type, target_id: id })).items).toHaveLength(1);
  });

  it('rejects a write with the network error once its retries are lost too', async () => {
    const c = createLedgerClient({ baseUrl: proxy.url, storage: memoryStorage(), sleep: async () => undefined, retries: 2 });
    const ref = `article/${uniqueId()}`;
    proxy.plan = (req) => (req.method === 'PUT' ? { drop: true } : undefined);
    const err = await c.turnOn(ref, 'like', 'u1').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TypeError);
    expect(proxy.seen).toHaveLength(3);
    expect(new Set(proxy.seen.map((s) => s.headers['idempotency-key'])).size).toBe(1);
    const [type, id] = ref.split('/');
    expect((await c.events({ target_type: type, target_id: id })).items).toHaveLength(1);
  });

  it('tells a write that lost its If-Match the stream version and position to recover from', async () => {
    const c = createLedgerClient({ baseUrl: proxy.url, storage: memoryStorage() });
    const ref = `article/${uniqueId()}`;
    await c.turnOn(ref, 'like', 'u1', { ifMatch: 0 });
    const won = await c.turnOff(ref, 'like', 'u1', { ifMatch: 1 });
    const err = await c.turnOn(ref, 'like', 'u1', { ifMatch: 1 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LedgerError);
    expect(err).toMatchObject({ status: 412, type: 'urn:ledger:problem:precondition-failed', streamVersion: 2, position: won.position });
    expect((await c.turnOn(ref, 'like', 'u1', { ifMatch: (err as LedgerError).streamVersion })).stream_version).toBe(3);
  });

  it('does not send a write that expects a version of another log again', async () => {
    const storage = memoryStorage();
    storage.setItem(`ledger:min-position:${proxy.url}:log`, crypto.randomUUID());
    const c = createLedgerClient({ baseUrl: proxy.url, storage });
    const ref = `article/${uniqueId()}`;
    const err = await c.turnOn(ref, 'like', 'u1', { ifMatch: 0 }).catch((e: unknown) => e);
    expect(isOtherLog(err)).toBe(true);
    expect(proxy.seen).toHaveLength(1);
    expect((await c.target(ref)).counts.like).toBe(0);
    expect((await c.turnOn(ref, 'like', 'u1', { ifMatch: 0 })).changed).toBe(true);
  });

  it('waits for the server to catch up rather than show an older state', async () => {
    const storage = memoryStorage();
    const c = createLedgerClient({ baseUrl: proxy.url, storage, retries: 1, sleep: async () => undefined });
    c.notePosition(1);
    proxy.plan = (req) =>
      req.url.startsWith('/v1/targets/')
        ? { reply: { status: 503, headers: { 'Content-Type': 'application/problem+json', 'Retry-After': '1' },
            body: JSON.stringify({ type: 'urn:ledger:problem:not-caught-up', title: 'Service Unavailable', status: 503, detail: 'not yet 1' }) } }
        : undefined;
    const err = await c.target('article/a-1').catch((e: unknown) => e);
    expect(err).toMatchObject({ status: 503, type: 'urn:ledger:problem:not-caught-up' });
    expect(proxy.seen.filter((s) => s.url.startsWith('/v1/targets/'))).toHaveLength(2);
    expect(c.minPosition()).toBe(1);
  });

  // A log restored from an older copy keeps its id but not the positions
  // given after the copy: the session's is refused as beyond the log (412),
  // forgotten, and the read sent again without it; the views cached from
  // before are stale, so the log listeners hear it.
  it('forgets a session position beyond the server\'s log and reads again', async () => {
    const storage = memoryStorage();
    const c = createLedgerClient({ baseUrl: proxy.url, storage, sleep: async () => undefined });
    const head = (await c.readyz()).head;
    const heard: string[] = [];
    c.onLogChange((log) => heard.push(log));
    c.notePosition(head + 1_000_000);
    proxy.seen.length = 0;
    const view = await c.target(`article/${uniqueId()}`);
    expect(view.counts.like).toBe(0);
    expect(proxy.seen.map((s) => s.headers['ledger-min-position'])).toEqual([String(head + 1_000_000), undefined]);
    expect(c.minPosition()).toBe(0);
    expect(heard).toEqual([c.log()]);
    const err = await c.target('article/a-1', { minPosition: head + 1_000_000 }).catch((e: unknown) => e);
    expect(isPositionBeyondLog(err)).toBe(true); // an explicit position is not sent again
  });

  // After a restore, the writes answered before the stale session position
  // is refused have the restored log's positions, below it: once it is
  // forgotten, the highest of them is the session position, so the read
  // sent again still reflects the user's own write.
  it('keeps the restored log\'s write positions when it forgets the stale one', async () => {
    const { c, stale } = await staleSession(proxy);
    const ref = `article/${uniqueId()}`;
    const w = await c.turnOn(ref, 'like', 'u1');
    expect(c.minPosition()).toBe(stale);
    proxy.seen.length = 0;
    expect((await c.target(ref, { viewer: 'u1' })).viewer?.like).toBe(true);
    expect(proxy.seen.map((s) => s.headers['ledger-min-position'])).toEqual([String(stale), String(w.position)]);
    expect(c.minPosition()).toBe(w.position);
  });

  // The server reads the head once the wait timed out; a write of the
  // restored log committed after that read answers a position beyond the
  // head the refusal names, and it is kept all the same.
  it('keeps a write position beyond the head a late 412 names', async () => {
    const { c, stale } = await staleSession(proxy);
    const ref = `article/${uniqueId()}`;
    const held = deferred();
    const refusal = { status: 412, headers: { 'Content-Type': 'application/problem+json' }, body: '' };
    proxy.plan = (req) => (req.headers['ledger-min-position'] === String(stale) ? { until: held.promise, reply: refusal } : undefined);
    const read = c.target(ref, { viewer: 'u1' });
    await waitFor(() => proxy.seen.some((s) => s.headers['ledger-min-position'] === String(stale)), 'the read');
    const w = await c.turnOn(ref, 'like', 'u1');
    const head = w.position - 1; // read by the server before the write committed
    refusal.body = beyondLog(`min_position ${stale}`, head);
    held.resolve();
    expect((await read).viewer?.like).toBe(true);
    expect(c.minPosition()).toBe(w.position);
  });

  // Reads sent together with the old position get their 412s apart: one
  // that arrives after the session forgot it, and after a write noted a
  // position of the restored log, must not forget that one too.
  it('keeps a position noted since when a late 412 refuses the one it forgot', async () => {
    const { c, stale } = await staleSession(proxy);
    const ref = `article/${uniqueId()}`;
    const held = deferred();
    proxy.plan = (req) =>
      req.headers['ledger-min-position'] === String(stale) && proxy.seen.some((s) => s !== req && s.headers['ledger-min-position'] === String(stale))
        ? { until: held.promise }
        : undefined;
    const first = c.target(ref);
    await waitFor(() => proxy.seen.some((s) => s.headers['ledger-min-position'] === String(stale)), 'the first read');
    const late = c.target(ref);
    await first;
    const w = await c.turnOn(ref, 'like', 'a');
    expect(c.minPosition()).toBe(w.position);
    held.resolve();
    expect((await late).counts.like).toBe(1);
    expect(c.minPosition()).toBe(w.position);
  });

  // A history poll whose after is beyond the log's head is refused (412,
  // naming the head) while the session's own position is within it: the
  // position is kept and the views are not reset; the caller starts again.
  it('keeps its session position when only a history\'s after is beyond the log', async () => {
    const c = createLedgerClient({ baseUrl: proxy.url, storage: memoryStorage() });
    const w = await c.turnOn(`article/${uniqueId()}`, 'like', 'u1');
    const heard: string[] = [];
    c.onLogChange((log) => heard.push(log));
    const err = await c.events({ after: w.position + 1_000_000 }).catch((e: unknown) => e);
    expect(isPositionBeyondLog(err)).toBe(true);
    expect((err as LedgerError).head).toBeGreaterThanOrEqual(w.position);
    expect(c.minPosition()).toBe(w.position);
    expect(heard).toEqual([]);
  });

  // The refusal of a history's after names the head it read; a write
  // answered while that answer travelled notes a position beyond it, of
  // this log: the session sent a position within the head, so what it
  // noted since is kept (and the views are not reset).
  it('keeps a position noted since when a late 412 refuses a history\'s after', async () => {
    const c = createLedgerClient({ baseUrl: proxy.url, storage: memoryStorage() });
    const ref = `article/${uniqueId()}`;
    const w1 = await c.turnOn(ref, 'like', 'u1');
    const heard: string[] = [];
    c.onLogChange((log) => heard.push(log));
    const held = deferred();
    const after = w1.position + 1_000_000;
    proxy.plan = (req) =>
      req.url.startsWith('/v1/events?')
        ? { until: held.promise, reply: { status: 412, headers: { 'Content-Type': 'application/problem+json' },
            body: beyondLog(`after ${after}`, w1.position) } }
        : undefined;
    const poll = c.events({ after }).catch((e: unknown) => e);
    await waitFor(() => proxy.seen.some((s) => s.url.startsWith('/v1/events?')), 'the poll');
    const w2 = await c.turnOn(ref, 'like', 'u2');
    expect(c.minPosition()).toBe(w2.position);
    held.resolve();
    expect(isPositionBeyondLog(await poll)).toBe(true);
    expect(c.minPosition()).toBe(w2.position);
    expect(heard).toEqual([]);
  });
});
