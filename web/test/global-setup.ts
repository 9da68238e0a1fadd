// Builds the ledger binary from this checkout (with the committed demo
// assets embedded, race detector on) and starts the servers the tests talk to:
//   ledgerUrl     — open loopback mode, default kinds;
//   limitedUrl    — the same with a per-user write rate of ~0, so a second
//                   write is refused with 429 (the "refused write" tests);
//   jwtUrl        — user tokens (HS256 with jwtSecret) and --public-history.
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createServer } from 'node:net';
import type { TestProject } from 'vitest/node';

const repo = resolve(import.meta.dirname, '../..');

/** freePort returns a TCP port free on 127.0.0.1 now. */
export function freePort(): Promise<number> {
  return new Promise((ok, fail) => {
    const s = createServer();
    s.once('error', fail);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => ok(port));
    });
  });
}

/** startLedger starts `ledger serve` on port (default: a free one) and waits for /readyz. */
export async function startLedger(bin: string, dir: string, extra: string[] = [], port?: number): Promise<{ url: string; proc: ChildProcess }> {
  port ??= await freePort();
  const url = `http://127.0.0.1:${port}`;
  const proc = spawn(bin, ['serve', '--listen', `127.0.0.1:${port}`, '--db', join(dir, 'l.db'), '--log-level', 'error', ...extra], {
    stdio: ['ignore', 'ignore', 'inherit'],
    env: { ...process.env, GORACE: 'halt_on_error=1' },
  });
  const exited = new Promise<never>((_, fail) => proc.once('exit', (code) => fail(new Error(`ledger serve exited with ${code}`))));
  exited.catch(() => undefined);
  for (let i = 0; i < 200; i++) {
    const ok = await Promise.race([
      fetch(`${url}/readyz`).then((r) => r.ok, () => false),
      exited,
    ]);
    if (ok) return { url, proc };
    await new Promise((r) => setTimeout(r, 50));
  }
  proc.kill();
  throw new Error(`ledger serve on ${url} did not become ready in 10 s`);
}

/** stopLedger sends proc SIGTERM and waits for it to exit. */
export async function stopLedger(proc: ChildProcess): Promise<void> {
  proc.kill('SIGTERM');
  await new Promise((r) => (proc.exitCode !== null ? r(null) : proc.once('exit', r)));
}

export default async function setup(project: TestProject) {
  const dir = mkdtempSync(join(tmpdir(), 'ledger-web-'));
  const bin = join(dir, 'ledger');
  // Built with the race detector, as `make test` builds the Go tests just
  // before: the packages come from that build's cache (an empty cache
  // compiles SQLite's C once less, ~50 s), and a data race in a server the
  // browser drives stops it (halt_on_error), its report on this stderr.
  execFileSync('go', ['build', '-race', '-o', bin, './cmd/ledger'], { cwd: repo, stdio: 'inherit', env: { ...process.env, CGO_ENABLED: '1' } });
  const mkdir = (name: string) => mkdtempSync(join(dir, `${name}-`));
  const main = await startLedger(bin, mkdir('open'), ['--consistency-timeout', '300ms']);
  const limited = await startLedger(bin, mkdir('limited'), ['--write-rate', '0.0001']);
  const jwtSecret = randomBytes(32).toString('hex');
  const jwt = await startLedger(bin, mkdir('jwt'), ['--jwt-secret', jwtSecret, '--public-history']);
  project.provide('ledgerUrl', main.url);
  project.provide('limitedUrl', limited.url);
  project.provide('ledgerBin', bin);
  project.provide('jwtUrl', jwt.url);
  project.provide('jwtSecret', jwtSecret);
  return async () => {
    for (const p of [main.proc, limited.proc, jwt.proc]) await stopLedger(p);
    rmSync(dir, { recursive: true, force: true });
  };
}
