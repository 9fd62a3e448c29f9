// Verification on the page's main thread (no Worker: a supported fallback),
// red-team finding 2: a large file A chosen, then, while it is being read, a
// small file B. A's run is cancelled; a batch of A's that was on its way (a
// read pending when it was cancelled) used to land in B's table, under B's
// "Verified": thousands of A's rows drawn with B's dictionaries. Now a
// cancelled run's rows never reach the next file's store.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, mkdtempSync, openSync, readSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openPage, sample, trustedKey, shotPath, browserAndServer } from './helpers.mjs';

const T = { timeout: 240_000 };
const env = browserAndServer();
let tmp;
let bigFile;

before(() => {
  // The first 24 MB of the large sample, cut at a line end.
  tmp = mkdtempSync(join(tmpdir(), 'stele-main-thread-'));
  const want = 24 << 20;
  const buf = Buffer.alloc(want);
  const fd = openSync(sample('large.stele'), 'r');
  const got = readSync(fd, buf, 0, want, 0);
  closeSync(fd);
  assert.equal(got, want, 'the large sample has 24 MB');
  bigFile = join(tmp, 'big.stele');
  writeFileSync(bigFile, buf.subarray(0, buf.lastIndexOf(10) + 1));
});

after(() => {
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

const num = (s) => Number(String(s).replace(/[^\d]/g, ''));

describe('main-thread verification (no Worker)', { timeout: 900_000 }, () => {
  it('a file chosen while another is read: only its own rows under its verdict', T, async () => {
    const context = await env.browser.newContext({ viewport: { width: 1280, height: 1000 } });
    await context.addInitScript(() => {
      // @ts-ignore
      delete window.Worker;
    });
    const page = await context.newPage();
    const problems = [];
    page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
    try {
      await page.goto(env.url);
      await page.waitForSelector('html[data-warm]', { timeout: 20_000 });
      const key = trustedKey();
      await page.fill('#key', key);
      // B alone first: how many entries it has.
      await page.setInputFiles('#file', sample('valid.stele'));
      await page.waitForFunction(() => Number(document.documentElement.dataset.runs || 0) >= 1, null, { timeout: 120_000 });
      assert.equal(await page.getAttribute('html', 'data-engine'), 'main', 'verified on the main thread');
      assert.equal((await page.textContent('#verdict-word')).trim(), 'Verified');
      const rowsOfB = num(await page.textContent('#entries-count'));
      assert.ok(rowsOfB > 0);
      for (const stopAt of [5, 10, 20]) {
        const runs = Number(await page.getAttribute('html', 'data-runs'));
        await page.setInputFiles('#file', bigFile);
        // A is being read: some of its rows are in the table.
        await page.waitForFunction((p) => {
          const m = /^(\d+)%/.exec(document.getElementById('progress-text')?.textContent || '');
          return m && Number(m[1]) >= p;
        }, stopAt, { timeout: 120_000, polling: 'raf' });
        await page.setInputFiles('#file', sample('valid.stele'));
        await page.waitForFunction((n) => Number(document.documentElement.dataset.runs || 0) > n, runs, { timeout: 120_000 });
        assert.equal((await page.textContent('#verdict-word')).trim(), 'Verified');
        // Whatever was still on its way from A has had time to arrive.
        await page.waitForTimeout(500);
        await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => r(undefined))));
        assert.equal(num(await page.textContent('#entries-count')), rowsOfB, `A's rows in B's table (A stopped at ${stopAt}%)`);
      }
      await page.screenshot({ path: shotPath('main-thread-switch.png') });
      assert.deepEqual(problems, []);
    } finally {
      await context.close();
    }
  });
});
