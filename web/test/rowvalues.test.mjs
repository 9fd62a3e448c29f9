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

describe('values the page does not keep', () => {
  it('are read from the file when their rows are drawn, and searched there', T, async () => {
    const { context, page, problems } = await openPage(browser, url);
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
      assert.deepEqual(await rowCells(page, 19_999 + 2), ['user-19999@example.com', ['login', 'read', 'update'][19_999 % 3], 'doc/19999', 'success']);
      await page.locator('#entries-count').scrollIntoViewIfNeeded();
      await page.screenshot({ path: shotPath('rowvalues-search.png') });
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
    const { context, page, problems } = await openPage(browser, url);
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
