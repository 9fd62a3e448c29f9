// The page on a log with more distinct values than it keeps (issue 17): a
// unique target and actor per entry, past the page's limit of 16,384 values
// a column (store.js VALUE_LIMIT). Those values stay in the file and are
// read back (rowvalues.js) when their rows are drawn or searched; the table,
// the search, the actor filter and the failure highlight work as on any log.
// Headless Chromium against web/dist with the real wasm; the log is forged
// here from docs/FORMAT.md (forge.mjs).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { launch, serve, openPage, verifyFileInPage, shotPath } from './helpers.mjs';
import { Log, makeKey, event } from './forge.mjs';

const T = { timeout: Number(process.env.STELE_TEST_TIMEOUT) || 180_000 };
const N = 20_000; // entries after the genesis: 3,616 more targets and actors than the page keeps

let browser;
let server;
let url;
let dir;
let KEY;
const F = {};

before(async () => {
  browser = await launch();
  ({ server, url } = await serve());
  dir = mkdtempSync(join(tmpdir(), 'stele-rowvalues-'));
  KEY = makeKey('example.com/unique');
  const log = new Log('example.com/unique', KEY);
  for (let i = 1; i <= N; i++) log.append(event(i, { actor: `user-${i}@example.com`, target: `doc/${i}` }));
  log.checkpoint(KEY);
  const text = log.text();
  F.valid = join(dir, 'unique.stele');
  writeFileSync(F.valid, text);
  // One changed byte in a late entry whose values were not kept.
  F.tampered = join(dir, 'unique-tampered.stele');
  writeFileSync(F.tampered, text.replace('"target":"doc/19000"', '"target":"doc/19001"'));
});

after(async () => {
  await browser?.close();
  server?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** The four value cells of the rendered row of line `line`, or null. */
const rowCells = (page, line) =>
  page.evaluate((l) => {
    const r = document.querySelector(`.vt-row[data-line="${l}"]:not([hidden])`);
    return r ? [...r.children].slice(2).map((c) => c.textContent) : null;
  }, line);

/**
 * Fills a filter input (or checks a box: value true), then waits until the
 * filters ran (they rewrite the entries count, emptied here first) and no
 * longer read the file; returns the count. Every filter change in these
 * tests goes through here, so no earlier change's run is still due.
 */
async function filter(page, selector, value) {
  await page.evaluate(() => {
    document.getElementById('entries-count').textContent = '';
  });
  if (value === true) await page.check(selector);
  else await page.fill(selector, value);
  await page.waitForFunction(() => {
    const c = document.getElementById('entries-count');
    return c.textContent !== '' && !c.dataset.searching;
  }, null, { timeout: 60_000 });
  return (await page.textContent('#entries-count')).trim();
}

// Every test runs twice: rows kept in memory, and the file kept as pages
// read back (store.js PagedStore, chosen here with a threshold of 1 byte
// instead of PAGED_BYTES).
for (const [mode, query] of [['rows in memory', ''], ['paged', '?paged-above=1']]) describe(`values the page does not keep (${mode})`, () => {
  it('are read from the file when their rows are drawn, and searched there', T, async () => {
    const { context, page, problems } = await openPage(browser, url + query);
    try {
      assert.equal(await verifyFileInPage(page, F.valid, KEY.vkey), 'Verified');
      // The last row (line N + 2: header, genesis): its target and actor were past the limit.
      await page.evaluate(() => {
        const s = document.getElementById('vt-scroll');
        s.scrollTop = s.scrollHeight;
      });
      const last = N + 2;
      await page.waitForFunction((l) => {
        const r = document.querySelector(`.vt-row[data-line="${l}"]:not([hidden])`);
        return r && !r.textContent.includes('…');
      }, last, { timeout: 30_000 });
      assert.deepEqual(await rowCells(page, last), [`user-${N}@example.com`, ['login', 'read', 'update'][N % 3], `doc/${N}`, 'success']);

      // A target past the limit, found by the search: only in the file.
      assert.match(await filter(page, '#f-text', 'doc/19999'), /^1 of 20,001 entries match/);
      // The match is drawn once the table takes the filtered view, its values read back from the file.
      await page.waitForFunction((l) => {
        const r = document.querySelector(`.vt-row[data-line="${l}"]:not([hidden])`);
        return r && !r.textContent.includes('…');
      }, 19_999 + 2, { timeout: 30_000 });
      assert.deepEqual(await rowCells(page, 19_999 + 2), ['user-19999@example.com', ['login', 'read', 'update'][19_999 % 3], 'doc/19999', 'success']);
      await page.locator('#entries-count').scrollIntoViewIfNeeded();
      await page.screenshot({ path: shotPath(`rowvalues-search${query ? '-paged' : ''}.png`) });
      // A prefix that matches kept and unkept targets alike: doc/1999 and doc/19990-19999.
      assert.match(await filter(page, '#f-text', 'doc/1999'), /^11 of 20,001 entries match/);
      // A query in no value: every unkept row is read and none matches.
      assert.match(await filter(page, '#f-text', 'zzzz-no-such-thing'), /^0 of 20,001 entries match/);
      assert.match(await filter(page, '#f-text', ''), /^20,001 entries$/);

      // The actor filter on an actor past the limit, with a time range that keeps it.
      assert.match(await filter(page, '#f-actor', 'user-18000@example.com'), /^1 of 20,001 entries match/);
      assert.match(await filter(page, '#f-from', '2026-11-26'), /^1 of 20,001 entries match/);
      assert.deepEqual(problems, []);
    } finally {
      await context.close();
    }
  });

  it('a tampered entry past the limit is highlighted with its values', T, async () => {
    const { context, page, problems } = await openPage(browser, url + query);
    try {
      assert.equal(await verifyFileInPage(page, F.tampered, KEY.vkey), 'Tampered');
      // The first failure's button jumps to entry 19000's row, drawn with the values from its line.
      await page.click('.failure-link >> nth=0');
      const line = 19_000 + 2;
      await page.waitForFunction((l) => {
        const r = document.querySelector(`.vt-row.failing[data-line="${l}"]:not([hidden])`);
        return r && !r.textContent.includes('…');
      }, line, { timeout: 30_000 });
      assert.deepEqual(await rowCells(page, line), ['user-19000@example.com', ['login', 'read', 'update'][19_000 % 3], 'doc/19001', 'success']);
      // Failing only, then the search on the changed target.
      assert.match(await filter(page, '#f-failing', true), /^\d+ of 20,001 entries match/);
      assert.match(await filter(page, '#f-text', 'doc/19001'), /^1 of 20,001 entries match/);
      assert.deepEqual(problems, []);
    } finally {
      await context.close();
    }
  });
});

describe('a file kept as pages (store.js PagedStore)', () => {
  it('scrolls anywhere, filters by time, opens an entry and counts the timeline on every row', T, async () => {
    const { context, page, problems } = await openPage(browser, `${url}?paged-above=1`);
    try {
      assert.equal(await verifyFileInPage(page, F.valid, KEY.vkey), 'Verified');
      assert.equal(await page.getAttribute('html', 'data-store'), 'paged');
      // The middle of the table: its rows are read back from the file when drawn.
      await page.evaluate(() => {
        const s = document.getElementById('vt-scroll');
        s.scrollTop = s.scrollHeight / 2;
      });
      await page.waitForFunction(() => {
        // Drawn at the new place (the table redraws on its scroll event), and filled.
        const rows = [...document.querySelectorAll('.vt-row[data-line]:not([hidden])')];
        return rows.length > 5 && Number(rows[3].dataset.line) > 5000 && rows.every((r) => !r.textContent.includes('…'));
      }, null, { timeout: 30_000 });
      const mid = Number(await page.getAttribute('.vt-row[data-line]:not([hidden]) >> nth=3', 'data-line'));
      assert.ok(mid > 5000 && mid < 15000, `line ${mid}`);
      const i = mid - 2;
      assert.deepEqual(await rowCells(page, mid), [`user-${i}@example.com`, ['login', 'read', 'update'][i % 3], `doc/${i}`, 'success']);
      const seqTs = await page.evaluate((l) => [...document.querySelector(`.vt-row[data-line="${l}"]`).children].slice(0, 2).map((c) => c.textContent), mid);
      assert.equal(seqTs[0], String(i));
      assert.equal(seqTs[1], new Date(Date.UTC(2026, 10, 26, 12) + i * 1000).toISOString().replace('Z', '000Z'));
      // Opened: the full event, read from its line, and where it is.
      await page.click(`.vt-row[data-line="${mid}"]`);
      await page.waitForFunction(() => !document.querySelector('.vt-detail pre').textContent.startsWith('Loading'), null, { timeout: 30_000 });
      assert.match(await page.textContent('.vt-detail-meta'), new RegExp(`^Line ${mid} · bytes \\d+–\\d+$`));
      assert.match(await page.textContent('.vt-detail pre'), new RegExp(`"target": "doc/${i}"`));
      // The timeline counts every row, exactly once the pages across its intervals are read back:
      // 2-minute intervals of 120 entries (one a second).
      await page.waitForFunction(() => !document.getElementById('timeline-caption').textContent.includes('estimated'), null, { timeout: 30_000 });
      assert.match(await page.textContent('#timeline-caption'), /^20,001 entries from 2026-11-26T12:00:00\.000000Z to 2026-11-26T17:33:20\.000000Z, in 167 intervals of 2 min\. Busiest interval: 120 entries from 2026-11-26T12:00:00/);
      // A time range: pages outside it are not read, pages across it are.
      await filter(page, '#f-from', '2026-11-26T13:00:00');
      assert.match(await filter(page, '#f-to', '2026-11-26T13:00:09'), /^10 of 20,001 entries match/);
      await page.waitForFunction(() => document.querySelector('.vt-row[data-line]:not([hidden])')?.dataset.line === String(3600 + 2), null, { timeout: 30_000 });
      // With a search too: only in the file.
      assert.match(await filter(page, '#f-text', 'doc/3605'), /^1 of 20,001 entries match/);
      await page.locator('#entries-count').scrollIntoViewIfNeeded();
      await page.screenshot({ path: shotPath('paged-time-search.png') });
      assert.deepEqual(problems, []);
    } finally {
      await context.close();
    }
  });
});
