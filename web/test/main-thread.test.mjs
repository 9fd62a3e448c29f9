// Verification on the page's main thread (no Worker: a supported fallback),
// red-team finding 2: a large file A chosen, then, while it is being read, a
// small file B. A's run is cancelled; a batch of A's that was on its way (a
// read pending when it was cancelled) used to land in B's table, under B's
// "Verified": thousands of A's rows drawn with B's dictionaries. Now a
// cancelled run's rows never reach the next file's store.
//
// Nothing is left to timing: A's read at 5, 10 or 20% of the file is held
// until B has been chosen (so A is always cancelled while a read is pending),
// then released; the rows are counted once html[data-pending] is 0, when A
// has stopped and nothing it delivered is still waiting to be drawn.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, mkdtempSync, openSync, readSync, rmSync, statSync, writeFileSync } from 'node:fs';
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
      // Reads of a file's slices from byte gate.from on wait until the test
      // releases them; the promise handed back is a thenable, whose then()
      // `await` calls: gate.awaited says the run waits on a held read.
      const gate = { from: Infinity, held: /** @type {Array<() => void>} */ ([]), awaited: 0 };
      // @ts-ignore
      window.__gate = gate;
      const at = new WeakMap();
      const slice = Blob.prototype.slice;
      Blob.prototype.slice = function (start = 0, ...rest) {
        const b = slice.call(this, start, ...rest);
        at.set(b, start);
        return b;
      };
      const read = Blob.prototype.arrayBuffer;
      Blob.prototype.arrayBuffer = function () {
        if (!(at.get(this) >= gate.from)) return read.call(this);
        /** @type {() => void} */
        let release = () => {};
        const p = new Promise((r) => (release = () => r(undefined))).then(() => read.call(this));
        gate.held.push(release);
        return /** @type {any} */ ({
          then(/** @type {any} */ ok, /** @type {any} */ fail) {
            gate.awaited++;
            return p.then(ok, fail);
          },
        });
      };
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
      const sizeOfA = statSync(bigFile).size;
      // A's held read is released while B is being verified (at once), or after B's verdict.
      for (const [stopAt, release] of /** @type {const} */ ([[5, 'at once'], [10, 'after B'], [20, 'after B']])) {
        const runs = Number(await page.getAttribute('html', 'data-runs'));
        // @ts-ignore
        await page.evaluate((from) => Object.assign(window.__gate, { from, awaited: 0 }), Math.floor((sizeOfA * stopAt) / 100));
        await page.setInputFiles('#file', bigFile);
        // A has verified what it read before stopAt% (its rows are in the table) and waits for its next read.
        // @ts-ignore
        await page.waitForFunction(() => window.__gate.awaited > 0, null, { timeout: 120_000 });
        await page.setInputFiles('#file', sample('valid.stele'));
        // @ts-ignore
        const releaseHeld = () => page.evaluate(() => Object.assign(window.__gate, { from: Infinity }).held.splice(0).forEach((r) => r()));
        if (release === 'at once') await releaseHeld();
        await page.waitForFunction((n) => Number(document.documentElement.dataset.runs || 0) > n, runs, { timeout: 120_000 });
        assert.equal((await page.textContent('#verdict-word')).trim(), 'Verified');
        if (release === 'after B') await releaseHeld();
        // A has stopped, and whatever it delivered has been drawn.
        await page.waitForFunction(() => document.documentElement.dataset.pending === '0', null, { timeout: 120_000 });
        assert.equal(num(await page.textContent('#entries-count')), rowsOfB, `A's rows in B's table (A stopped at ${stopAt}%, its read released ${release})`);
      }
      await page.screenshot({ path: shotPath('main-thread-switch.png') });
      assert.deepEqual(problems, []);
    } finally {
      await context.close();
    }
  });
});
