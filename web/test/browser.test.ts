// The demo page in headless Chromium (Debian's /usr/bin/chromium, driven
// by playwright-core; no browser is downloaded). Each scenario uses its own
// article and user, so they do not see each other's clicks.
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { startLedger, stopLedger } from './global-setup';
import { signJWT } from './jwt';

// CHROMIUM_PATH overrides the browser (e.g. to check the skip and CI failure paths).
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const haveChromium = existsSync(CHROMIUM);
const ci = process.env.CI === 'true';
const artifacts = resolve(import.meta.dirname, '../test-artifacts');
const base = inject('ledgerUrl');
const jwtBase = inject('jwtUrl');
const jwtSecret = inject('jwtSecret');

if (!haveChromium && !ci) {
  console.warn(
    `\n${'!'.repeat(78)}\n!! SKIPPING THE BROWSER TESTS: ${CHROMIUM} is missing (apt-get install chromium).\n!! With CI=true this is a failure.\n${'!'.repeat(78)}\n`,
  );
}

let run = 0;
function user(name: string): string {
  run++;
  return `${name}-${process.pid}-${run}`;
}

const card = (page: Page, id: string) => page.locator(`[data-target="article/${id}"]`);
const button = (page: Page, id: string, kind: string) => card(page, id).locator(`button[data-kind="${kind}"]`);
const count = async (page: Page, id: string, kind: string) => Number(await card(page, id).locator(`[data-count="${kind}"]`).innerText());
const pressed = (page: Page, id: string, kind: string) => button(page, id, kind).getAttribute('aria-pressed');

async function serverView(id: string, viewer: string) {
  const res = await fetch(`${base}/v1/targets/article/${id}?viewer=${viewer}`);
  return (await res.json()) as { counts: Record<string, number>; viewer: Record<string, boolean> };
}

async function open(browser: Browser, who: string): Promise<Page> {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  page.on('pageerror', (err) => console.error(`page error (${who}):`, err));
  await page.goto(`${base}/?user=${encodeURIComponent(who)}`);
  await page.locator('[data-target="article/a-12"] [data-count="like"]').waitFor();
  return page;
}

/** settled waits until the page has no write in flight and shows the live stream. */
async function settled(page: Page, writes: Promise<unknown>[]) {
  await Promise.all(writes);
  await page.locator('[data-live="true"]').waitFor();
}

describe.skipIf(!haveChromium && !ci)('demo page in Chromium', () => {
  let browser: Browser;
  beforeAll(async () => {
    if (!haveChromium) throw new Error(`CI=true and ${CHROMIUM} is missing: .ci/run installs it with apt-get`);
    mkdirSync(artifacts, { recursive: true });
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      // Playwright gives every launch a fresh temporary profile (its own --user-data-dir).
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run', '--disable-sync'],
    });
  });
  afterAll(async () => {
    await browser?.close();
  });

  it('the original bug: like and collect, cancel both, reload — both off, counts back', async () => {
    const u = user('bug');
    const page = await open(browser, u);
    const before = { like: await count(page, 'a-1', 'like'), collect: await count(page, 'a-1', 'collect') };
    const responses: Promise<unknown>[] = [];
    const clickAndWait = async (kind: string) => {
      responses.push(page.waitForResponse((r) => r.url().includes(`/v1/targets/article/a-1/${kind}/`)));
      await button(page, 'a-1', kind).click();
    };
    await clickAndWait('like');
    await clickAndWait('collect');
    await expect.poll(() => pressed(page, 'a-1', 'like')).toBe('true');
    await expect.poll(() => pressed(page, 'a-1', 'collect')).toBe('true');
    expect(await count(page, 'a-1', 'like')).toBe(before.like + 1);
    expect(await count(page, 'a-1', 'collect')).toBe(before.collect + 1);
    await settled(page, responses.splice(0));
    await clickAndWait('like');
    await clickAndWait('collect');
    await settled(page, responses.splice(0));

    const feedRead = page.waitForRequest((r) => r.url().includes('/v1/targets?'));
    await page.reload();
    const headers = (await feedRead).headers();
    expect(Number(headers['ledger-min-position'])).toBeGreaterThan(0); // the session's last write, kept in sessionStorage
    await page.locator('[data-target="article/a-1"] [data-count="like"]').waitFor();
    expect(await pressed(page, 'a-1', 'like')).toBe('false');
    expect(await pressed(page, 'a-1', 'collect')).toBe('false');
    expect(await count(page, 'a-1', 'like')).toBe(before.like);
    expect(await count(page, 'a-1', 'collect')).toBe(before.collect);
    expect(await serverView('a-1', u)).toMatchObject({ viewer: { like: false, collect: false }, counts: before });
    await page.context().close();
  });

  it('7 rapid clicks on like end pressed, and the server agrees', async () => {
    const u = user('rapid');
    const page = await open(browser, u);
    const before = await count(page, 'a-2', 'like');
    let n = 0;
    // Every other write is answered late, so answers arrive out of step with the clicks.
    await page.route('**/v1/targets/article/a-2/like/**', async (route) => {
      if (n++ % 2 === 0) await new Promise((r) => setTimeout(r, 150));
      await route.continue();
    });
    const writes: Promise<unknown>[] = [];
    const methods: string[] = [];
    page.on('request', (r) => {
      if (!r.url().includes('/v1/targets/article/a-2/like/')) return;
      methods.push(r.method());
      writes.push(r.response());
    });
    for (let i = 0; i < 7; i++) await button(page, 'a-2', 'like').click();
    await expect.poll(() => writes.length, { timeout: 10_000 }).toBe(7);
    await settled(page, writes);
    expect(methods).toEqual(['PUT', 'DELETE', 'PUT', 'DELETE', 'PUT', 'DELETE', 'PUT']); // in click order, one at a time
    await expect.poll(() => pressed(page, 'a-2', 'like')).toBe('true');
    await expect.poll(() => count(page, 'a-2', 'like')).toBe(before + 1);
    expect(await serverView('a-2', u)).toMatchObject({ viewer: { like: true }, counts: { like: before + 1 } });
    await page.screenshot({ path: join(artifacts, 'demo.png'), fullPage: true });
    await page.context().close();
  });

  it("a second browser context sees another user's like within 2 s without reloading", async () => {
    const watcher = await open(browser, user('watcher'));
    await watcher.locator('[data-live="true"]').waitFor();
    const before = await count(watcher, 'a-3', 'like');
    const liker = user('liker');
    const page = await open(browser, liker);
    await button(page, 'a-3', 'like').click();
    await expect.poll(() => count(watcher, 'a-3', 'like'), { timeout: 2000, interval: 50 }).toBe(before + 1);
    await expect.poll(() => card(watcher, 'a-3').locator('[data-who="like"]').innerText(), { timeout: 2000, interval: 50 }).toContain(liker);
    expect(await pressed(watcher, 'a-3', 'like')).toBe('false'); // the watcher's own state is untouched
    await watcher.screenshot({ path: join(artifacts, 'live.png'), fullPage: true });
    await Promise.all([watcher.context().close(), page.context().close()]);
  });

  it('a write refused by the network rolls back and shows an alert', async () => {
    const u = user('offline');
    const page = await open(browser, u);
    const before = await count(page, 'a-4', 'like');
    await page.route('**/v1/targets/article/a-4/like/**', (route) => route.abort('failed'));
    await button(page, 'a-4', 'like').click();
    const alert = page.getByRole('alert');
    await alert.waitFor();
    expect(await alert.innerText()).toContain('a-4');
    expect(await alert.innerText()).toContain('could not be reached');
    await expect.poll(() => pressed(page, 'a-4', 'like')).toBe('false');
    expect(await count(page, 'a-4', 'like')).toBe(before);
    expect((await serverView('a-4', u)).viewer.like).toBe(false);
    await page.screenshot({ path: join(artifacts, 'refused.png'), fullPage: true });
    await page.context().close();
  });

  it('a like whose every answer was lost is not called undone, and shows once the server answers', async () => {
    const u = user('lost');
    const page = await open(browser, u);
    const before = await count(page, 'a-5', 'like');
    // The server commits each send of the write (the first and the
    // client's resends with its Idempotency-Key) and the answer is lost.
    let sends = 0;
    await page.route('**/v1/targets/article/a-5/like/**', async (route) => {
      sends++;
      await route.fetch();
      await route.abort('failed');
    });
    await button(page, 'a-5', 'like').click();
    const alert = page.getByRole('alert');
    await expect.poll(() => alert.innerText(), { timeout: 15_000 }).toContain('Could not confirm your like of a-5');
    expect(await alert.innerText()).not.toContain('undone');
    expect(sends).toBeGreaterThan(1);
    expect(await serverView('a-5', u)).toMatchObject({ viewer: { like: true }, counts: { like: before + 1 } });
    await expect.poll(() => pressed(page, 'a-5', 'like'), { timeout: 5000 }).toBe('true');
    await expect.poll(() => count(page, 'a-5', 'like'), { timeout: 5000 }).toBe(before + 1);
    await page.context().close();
  });

  it('a click made while the server is unreachable is still reported once the articles fail to load too', async () => {
    const u = user('down');
    const page = await open(browser, u);
    await page.locator('[data-live="true"]').waitFor();
    // The server goes away: the click's write fails, and so does the feed's
    // refetch that follows every settled click.
    await page.route('**/v1/**', (route) => route.abort('failed'));
    const refetch = page.waitForRequest((r) => r.url().includes('/v1/targets?'));
    await button(page, 'a-6', 'collect').click();
    await refetch;
    const alert = page.getByRole('alert');
    await expect.poll(() => alert.innerText()).toContain('Could not load the articles');
    expect(await alert.innerText()).toContain('collect of a-6');
    expect(await pressed(page, 'a-6', 'collect')).toBe('false');
    // Back: the articles load again (the window regains focus; the live
    // stream, open before the route, never dropped), and the click's
    // failure is still shown.
    await page.unroute('**/v1/**');
    await page.evaluate(() => window.dispatchEvent(new Event('visibilitychange')));
    await expect.poll(() => alert.innerText(), { timeout: 5000 }).not.toContain('Could not load the articles');
    expect(await alert.innerText()).toContain('collect of a-6');
    await page.context().close();
  });

  // The stream missed the page's own last write (it was reconnecting), so
  // its resume point is within the log restored from an older copy; the
  // session position it sends since is not, and the page drops the lost
  // like instead of showing it for good.
  it('drops a like the restore of an older copy lost, though the stream missed it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ledger-restore-'));
    const serve = (port?: number) => startLedger(inject('ledgerBin'), dir, ['--consistency-timeout', '300ms'], port);
    const copy = (from: string, to: string) => {
      for (const f of readdirSync(to)) if (f.startsWith('l.db')) rmSync(join(to, f));
      for (const f of readdirSync(from)) if (f.startsWith('l.db')) copyFileSync(join(from, f), join(to, f));
    };
    let server = await serve();
    const port = Number(new URL(server.url).port);
    const context = await browser.newContext();
    try {
      const page = await context.newPage();
      await page.goto(`${server.url}/?user=restorer`);
      await page.locator('[data-live="true"]').waitFor();
      // Stream requests are held, then answered 503 Retry-After: 0, which
      // the client sends again, built anew, to the server of that moment.
      let release!: () => void;
      const released = new Promise<void>((r) => (release = r));
      let held = 0;
      await page.route('**/v1/events/stream**', async (route) => {
        held++;
        await released;
        await route.fulfill({ status: 503, headers: { 'Retry-After': '0', 'Content-Type': 'application/problem+json' }, body: '{"status":503,"title":"Service Unavailable"}' });
      }, { times: 1 });
      await stopLedger(server.proc);
      const backup = mkdtempSync(join(dir, 'backup-'));
      copy(dir, backup);
      server = await serve(port);
      await expect.poll(() => held, { timeout: 30_000 }).toBe(1); // the stream is reconnecting
      const write = page.waitForResponse((r) => r.url().includes('/v1/targets/article/a-7/like/restorer'));
      await button(page, 'a-7', 'like').click();
      expect((await write).status()).toBe(200);
      await expect.poll(() => pressed(page, 'a-7', 'like')).toBe('true');
      await stopLedger(server.proc);
      copy(backup, dir); // the log restored from its older copy, without the like
      server = await serve(port);
      release();
      await expect.poll(() => pressed(page, 'a-7', 'like'), { timeout: 10_000 }).toBe('false');
      expect(await count(page, 'a-7', 'like')).toBe(0);
      await page.locator('[data-live="true"]').waitFor();
    } finally {
      await context.close();
      await stopLedger(server.proc);
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("with tokens configured, acts as the JWT's subject given once in ?token=", async () => {
    const sub = user('jwt');
    const token = signJWT(jwtSecret, sub);
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(`${jwtBase}/?token=${token}`);
    await page.locator(`[data-user="${sub}"]`).waitFor();
    expect(page.url()).not.toContain('token='); // kept in sessionStorage, not in the address or history
    await page.locator('[data-live="true"]').waitFor(); // --public-history lets users read the stream
    const write = page.waitForResponse((r) => r.url().includes(`/v1/targets/article/a-5/like/${sub}`));
    await button(page, 'a-5', 'like').click();
    expect((await write).status()).toBe(200);
    const res = await fetch(`${jwtBase}/v1/targets/article/a-5?viewer=${sub}`, { headers: { Authorization: `Bearer ${token}` } });
    expect(((await res.json()) as { viewer: { like: boolean } }).viewer.like).toBe(true);
    await page.reload();
    await page.locator(`[data-user="${sub}"]`).waitFor();
    await expect.poll(() => pressed(page, 'a-5', 'like')).toBe('true');

    const stranger = await context.newPage(); // a bad token: the page says so instead of failing silently
    await stranger.goto(`${jwtBase}/?token=${signJWT('another-secret-of-at-least-32-bytes!!', 'mallory')}`);
    const alert = stranger.getByRole('alert');
    await alert.waitFor();
    expect(await alert.innerText()).toContain('token');
    await context.close();
  });
});
