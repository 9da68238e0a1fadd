// A node that is still building its views file at start answers 503
// "starting" with Retry-After: 5; the client retries it and succeeds once
// the node is open. The build is held at its rebuild lock, as the Go tests
// hold it (projections.LockRebuild), here by flock(1).
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { QueryClient } from '@tanstack/query-core';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { createLedgerClient, targetQueryOptions } from '../src/index';
import { memoryStorage, startProxy, type Proxy } from './helpers';
import { freePort } from '../../test/global-setup';

/**
 * holdLock takes an exclusive flock on file in a child process, which
 * holds it until release closes its stdin (its cat then ends, and flock).
 */
async function holdLock(file: string): Promise<{ release: () => void; exited: Promise<unknown> }> {
  const p = spawn('flock', ['-x', file, '-c', 'echo held; exec cat'], { stdio: ['pipe', 'pipe', 'inherit'] });
  const exited = new Promise((r) => p.once('exit', r));
  await new Promise<void>((ok, fail) => {
    p.stdout!.once('data', () => ok());
    p.once('exit', (code) => fail(new Error(`flock exited with ${code}`)));
  });
  return { release: () => p.stdin!.end(), exited };
}

/** healthy polls url's /healthz until it answers 200. */
async function healthy(url: string): Promise<void> {
  for (let i = 0; i < 400; i++) {
    if (await fetch(`${url}/healthz`).then((r) => r.ok, () => false)) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`${url}/healthz never answered 200`);
}

describe('a node that is starting', () => {
  const procs: ChildProcess[] = [];
  const locks: { release: () => void; exited: Promise<unknown> }[] = [];
  let dir = '';
  let proxy: Proxy | undefined;
  afterEach(async () => {
    await proxy?.close();
    for (const lock of locks.splice(0)) {
      lock.release();
      await lock.exited;
    }
    for (const p of procs.splice(0)) {
      p.kill('SIGTERM');
      await new Promise((r) => (p.exitCode !== null || p.signalCode !== null ? r(null) : p.once('exit', r)));
    }
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('answers 503 starting with Retry-After, which the client retries until the views are open', async () => {
    const bin = inject('ledgerBin');
    dir = mkdtempSync(join(tmpdir(), 'ledger-starting-'));
    const db = join(dir, 'l.db');
    execFileSync(bin, ['bench', 'generate', '--db', db, '--events', '200'], { stdio: 'ignore' });
    const lock = await holdLock(`${db}.views.rebuild-lock`);
    locks.push(lock);
    const url = `http://127.0.0.1:${await freePort()}`;
    procs.push(spawn(bin, ['serve', '--listen', url.slice('http://'.length), '--db', db, '--log-level', 'error'], { stdio: ['ignore', 'ignore', 'inherit'] }));
    await healthy(url);

    const first = await fetch(`${url}/v1/targets/article/a-1`);
    expect(first.status).toBe(503);
    expect(first.headers.get('Retry-After')).toBe('5');
    expect(((await first.json()) as { type: string }).type).toBe('urn:ledger:problem:starting');

    proxy = await startProxy(url);
    const client = createLedgerClient({ baseUrl: proxy.url, storage: memoryStorage() });
    const qc = new QueryClient({ defaultOptions: { queries: { retry: false } } });
    const read = qc.fetchQuery(targetQueryOptions(client, 'article/a-1'));
    setTimeout(lock.release, 500); // the build may begin
    const view = await read;
    expect(view.target).toEqual({ type: 'article', id: 'a-1' });
    expect(proxy.seen.filter((s) => s.url.startsWith('/v1/targets/article/a-1')).length).toBeGreaterThanOrEqual(2);
  });
});
