// The auditor's page (issue 19): a verdict never stale or misleading, every
// screen size, keyboard, WCAG 2.2 AA (axe-core), evidence, <stele-verifier>.
// Headless Chromium against web/dist with the real wasm; fixtures from
// STELE_SAMPLES plus logs forged here from docs/FORMAT.md (forge.mjs).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, basename } from 'node:path';
import { createHash } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { createRequire } from 'node:module';
import { WEB, launch, serve, sample, trustedKey, wrongKey, largeSample, listSamples, shotPath, openPage, verifyFileInPage } from './helpers.mjs';
import { Log, makeKey, event } from './forge.mjs';

const AXE = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');
// STELE_TEST_TIMEOUT (ms) shortens the budget when running against an old build to see what fails.
const T = { timeout: Number(process.env.STELE_TEST_TIMEOUT) || 180_000 };
const DESKTOP = { width: 1366, height: 768 };
const PHONE = { width: 390, height: 844 };

let browser;
let server;
let url;
let dir;
const F = {}; // fixture paths
let KEY; // the forged logs' signing key
let LOOKALIKE; // another key under the same name

before(async () => {
  browser = await launch();
  ({ server, url } = await serve());
  dir = mkdtempSync(join(tmpdir(), 'stele-page-'));
  const put = (name, data) => {
    F[name] = join(dir, name);
    writeFileSync(F[name], data);
    return F[name];
  };
  KEY = makeKey('example.com/forged');
  LOOKALIKE = makeKey('example.com/forged');
  const origin = 'example.com/forged';
  // Fully signed: 12 entries, checkpoints at 6 and 12.
  const full = new Log(origin, KEY);
  for (let i = 1; i < 6; i++) full.append(event(i));
  full.checkpoint(KEY);
  for (let i = 6; i < 12; i++) full.append(event(i));
  full.checkpoint(KEY);
  put('signed.stele', full.text());
  // Partly signed: the last checkpoint covers 6 of 9 entries.
  const part = new Log(origin, KEY);
  for (let i = 1; i < 6; i++) part.append(event(i));
  part.checkpoint(KEY);
  for (let i = 6; i < 9; i++) part.append(event(i, i === 8 ? { actor: 'mallory', action: 'grant' } : {}));
  put('partial.stele', part.text());
  // Signed by a look-alike key under the trusted name.
  const imp = new Log(origin, LOOKALIKE);
  for (let i = 1; i < 6; i++) imp.append(event(i));
  imp.checkpoint(LOOKALIKE);
  put('lookalike.stele', imp.text());
  // Hidden and bidirectional Unicode in a signed log.
  const uni = new Log(origin, KEY);
  uni.append(event(1, { actor: 'admin\u202Egnp.exe' }));
  uni.append(event(2, { actor: 'bob\u200B@example.com', target: 'doc/\uFEFF7' }));
  for (let i = 3; i < 6; i++) uni.append(event(i));
  uni.checkpoint(KEY);
  put('unicode.stele', uni.text());
  // One changed byte in entry 7 of a log with a checkpoint at 10: entry 7 fails,
  // the checkpoint's range (entries 5-9 after the one at 5) does not match.
  const r = new Log(origin, KEY);
  for (let i = 1; i < 5; i++) r.append(event(i));
  r.checkpoint(KEY);
  for (let i = 5; i < 10; i++) r.append(event(i));
  r.checkpoint(KEY);
  put('range.stele', r.text().replace('"target":"doc/7"', '"target":"doc/8"'));
  // Not logs at all.
  put('empty.stele', '');
  put('export.stele.gz', gzipSync(readFileSync(sample('valid.stele'))));
  put('key.stele', readFileSync(sample('key.txt')));
  put('notes.txt', 'Meeting notes\nnothing to see here\n');
  put('header-only.stele', 'stele-export v1 log\n');
});

after(async () => {
  await browser?.close();
  server?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const runs = async (page) => Number((await page.getAttribute('html', 'data-runs')) || 0);
const waitRun = (page, n, timeout = 60_000) => page.waitForFunction((k) => Number(document.documentElement.dataset.runs || 0) > k, n, { timeout });
const word = async (page) => (await page.textContent('#verdict-word')).trim();
const detail = async (page) => (await page.textContent('#verdict-detail')).trim();

/** Chooses a file with no key and presses Verify. */
async function verifyWithoutKey(page, file) {
  await page.fill('#key', '');
  await page.setInputFiles('#file', file);
  await page.waitForSelector('#verdict.idle');
  const n = await runs(page);
  await page.click('#verify');
  await waitRun(page, n);
}

/** axe-core over the page: no serious or critical violation. */
async function axe(page, label) {
  // evaluated through DevTools: the page's CSP (no inline script) stays on
  if (!(await page.evaluate(() => typeof window.axe === 'object'))) await page.evaluate(AXE);
  const res = await page.evaluate(async () => {
    const r = await window.axe.run(document, { resultTypes: ['violations'], runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa', 'best-practice'] } });
    return r.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.slice(0, 3).map((n) => n.target.join(' ') + ' ' + n.failureSummary) }));
  });
  const bad = res.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  assert.deepEqual(bad, [], `${label}: axe violations:\n${JSON.stringify(bad, null, 1)}`);
  return res;
}

/** Screenshot at both sizes; returns to the desktop size. */
async function shots(page, name) {
  await page.setViewportSize(DESKTOP);
  await page.waitForTimeout(150);
  await page.screenshot({ path: shotPath(`page-${name}-1366.png`), fullPage: true });
  await page.setViewportSize(PHONE);
  await page.waitForTimeout(250);
  const w = await page.evaluate(() => document.documentElement.scrollWidth);
  assert.ok(w <= PHONE.width, `${name}: the page is ${w} px wide at 390 px`);
  await page.screenshot({ path: shotPath(`page-${name}-390.png`), fullPage: true });
  await page.setViewportSize(DESKTOP);
  await page.waitForTimeout(150);
}

describe('stale verdicts', () => {
  it('file first, key second: no verdict for the empty key, then the verdict for the key typed', T, async () => {
    const { context, page, problems } = await openPage(browser, url, { viewport: DESKTOP });
    try {
      await page.fill('#key', '');
      const n = await runs(page);
      await page.setInputFiles('#file', sample('valid.stele'));
      // The choice is handled (the detail is no longer the first one) and
      // nothing runs or is due (html[data-pending]): a run for the empty key,
      // started now or due later, has finished by then and counts in data-runs.
      await page.waitForFunction(() => !/^Choose a log file/.test(document.getElementById('verdict-detail').textContent) && document.documentElement.dataset.pending === '0');
      assert.equal(await runs(page), n, 'a run started with an empty key');
      assert.equal(await page.locator('#verdict.idle').count(), 1, 'the verdict is not idle');
      assert.notEqual(await word(page), 'Unverified');
      assert.match(await detail(page), /Enter the trusted key/);
      await shots(page, 'ready');
      await page.fill('#key', trustedKey());
      await waitRun(page, n);
      assert.equal(await word(page), 'Verified');
      assert.deepEqual(problems, []);
    } finally {
      await context.close();
    }
  });

  it('after Verified, a different key withdraws the verdict and verifies again', T, async () => {
    const { context, page } = await openPage(browser, url, { viewport: DESKTOP });
    try {
      assert.equal(await verifyFileInPage(page, sample('valid.stele'), trustedKey()), 'Verified');
      const n = await runs(page);
      await page.fill('#key', wrongKey());
      // at once: the old verdict is gone
      assert.notEqual(await word(page), 'Verified');
      assert.equal(await page.isVisible('#summary'), false, 'the old summary stays');
      await shots(page, 'stale');
      await waitRun(page, n);
      assert.equal(await word(page), 'Unverified');
      // an earlier checkpoint typed in: verified again with it
      await page.fill('#key', trustedKey());
      await waitRun(page, n + 1);
      assert.equal(await word(page), 'Verified');
      const m = await runs(page);
      await page.fill('#checkpoint', 'not a checkpoint');
      await waitRun(page, m);
      assert.notEqual(await word(page), 'Verified', 'the verdict ignores the checkpoint typed in');
    } finally {
      await context.close();
    }
  });

  it('<stele-verifier>: changing keys re-verifies, removing src clears the verdict', T, async () => {
    const { context, page } = await openPage(browser, url, { viewport: DESKTOP });
    try {
      await page.evaluate(async ({ key }) => {
        await import('./src/stele-verifier.js');
        const v = document.createElement('stele-verifier');
        v.id = 'sv';
        v.keys = key;
        v.src = 'samples/valid.stele';
        document.querySelector('main').prepend(v);
        await new Promise((r) => v.addEventListener('stele-report', r, { once: true }));
      }, { key: trustedKey() });
      assert.equal(await page.evaluate(() => document.getElementById('sv').report.verdict), 'verified');
      assert.equal(await page.evaluate(() => document.getElementById('sv').getAttribute('src')), 'samples/valid.stele', 'src is reflected');
      const after = await page.evaluate(async ({ key }) => {
        const v = document.getElementById('sv');
        const got = new Promise((r) => v.addEventListener('stele-report', (e) => r(e.detail.report.verdict), { once: true }));
        v.keys = [key];
        const during = v.report;
        return { during, verdict: await got, attr: v.getAttribute('keys') };
      }, { key: wrongKey() });
      assert.equal(after.during, null, 'the old report stays while re-verifying');
      assert.equal(after.verdict, 'unverified');
      const cleared = await page.evaluate(() => {
        const v = document.getElementById('sv');
        v.removeAttribute('src');
        return { report: v.report, state: v.state, word: v.shadowRoot.querySelector('.word').textContent };
      });
      assert.deepEqual(cleared, { report: null, state: 'idle', word: 'No log checked yet' });
    } finally {
      await context.close();
    }
  });
});

describe('verdicts that do not mislead', () => {
  it('files that are not Stele exports say so, with a hint, not Tampered', T, async () => {
    const { context, page, problems } = await openPage(browser, url, { viewport: DESKTOP });
    try {
      const cases = [
        ['empty.stele', /empty/i],
        ['export.stele.gz', /gzip|decompress/i],
        ['key.stele', /key/i],
        ['notes.txt', /not a Stele export/i],
      ];
      for (const [name, hint] of cases) {
        assert.equal(await verifyFileInPage(page, F[name], trustedKey()), 'Not a Stele export', name);
        assert.match(await detail(page), hint, name);
        assert.equal(await page.isVisible('#failures'), false, `${name}: failures listed`);
        assert.equal(await page.isVisible('#entries-panel'), false, `${name}: entries shown`);
        if (name === 'export.stele.gz') {
          await shots(page, 'not-a-log');
          await axe(page, 'not a log');
        }
      }
      // A header and nothing else is a log with no entries: not "no failure was found" reassurance.
      const w = await verifyFileInPage(page, F['header-only.stele'], trustedKey());
      assert.notEqual(w, 'Verified');
      assert.doesNotMatch(await detail(page), /No failure was found/);
      assert.deepEqual(problems, []);
    } finally {
      await context.close();
    }
  });

  it('a range failure is attached to its checkpoint; intact entries in the range are shaded, not flagged', T, async () => {
    const { context, page, problems } = await openPage(browser, url, { viewport: DESKTOP });
    try {
      assert.equal(await verifyFileInPage(page, F['range.stele'], KEY.vkey), 'Tampered');
      const heads = await page.locator('#failure-list > li > .failure-link, #failure-list > li > .failure-label').allTextContents();
      assert.ok(heads.some((t) => /^Entry 7\b/.test(t)), `no failure names entry 7: ${heads}`);
      assert.ok(!heads.some((t) => /^Entry 5\b/.test(t)), `entry 5 is blamed: ${heads}`);
      const all = await page.locator('#failure-list').textContent();
      assert.match(all, /Checkpoint at line \d+: entries 5–9/, all);
      // consequential failures sit under their cause
      assert.ok(await page.locator('#failure-list > li details.consequences').count() > 0, 'no grouped consequences');
      // rows: entry 7 failing, 5, 6, 8, 9 shaded only
      await page.fill('#f-text', '');
      const rowClass = async (seq) => page.evaluate((s) => {
        const r = [...document.querySelectorAll('#vt-scroll .vt-row:not([hidden])')].find((x) => x.firstChild.lastChild.nodeValue === String(s));
        return r?.className;
      }, seq);
      assert.match(await rowClass(7), /\bfailing\b/);
      for (const s of [5, 6, 8, 9]) {
        const c = await rowClass(s);
        assert.doesNotMatch(c, /\bfailing\b/, `entry ${s} marked failing`);
        assert.match(c, /\bin-range\b/, `entry ${s} not shaded`);
      }
      await page.check('#f-failing');
      await page.waitForFunction(() => /match the filters/.test(document.getElementById('entries-count').textContent));
      // The rows are redrawn on a later frame than the count: wait for the redraw to settle
      // on one row (a wrong filter still fails below, after the wait runs out).
      await page.waitForFunction(() => document.querySelectorAll('#vt-scroll .vt-row:not([hidden])').length === 1, null, { timeout: 10_000, polling: 'raf' }).catch(() => {});
      const seqs = await page.locator('#vt-scroll .vt-row:not([hidden]) > span:first-child').allTextContents();
      assert.deepEqual(seqs.map((t) => t.replace(/\D/g, '')), ['7']);
      // expanded, the failing row says why it fails
      await page.locator('#vt-scroll .vt-row:not([hidden])').first().click();
      await page.waitForFunction(() => document.querySelector('.vt-detail:not([hidden]) .vt-detail-notes')?.textContent.includes('Fails:'));
      assert.match(await page.textContent('.vt-detail-notes'), /Fails: \w+: entry 7/);
      await page.locator('#vt-scroll .vt-row:not([hidden])').first().click();
      await page.uncheck('#f-failing');
      await shots(page, 'tampered-range');
      await axe(page, 'tampered');
      assert.deepEqual(problems, []);
    } finally {
      await context.close();
    }
  });

  it('hidden and bidirectional Unicode shows as visible escapes with a badge, and search finds it', T, async () => {
    const { context, page, problems } = await openPage(browser, url, { viewport: DESKTOP });
    try {
      assert.equal(await verifyFileInPage(page, F['unicode.stele'], KEY.vkey), 'Verified');
      const text = await page.locator('#vt-scroll').textContent();
      assert.ok(text.includes('admin\\u202Egnp.exe'), text.slice(0, 400));
      assert.ok(text.includes('bob\\u200B@example.com'));
      assert.ok(!/[\u202E\u200B\uFEFF]/.test(text), 'a raw hidden character is in the table');
      assert.equal(await page.locator('#vt-scroll .vt-row.hidden-unicode:not([hidden]) .uni-badge').count(), 2);
      const caption = await page.textContent('#timeline-caption');
      assert.match(caption, /Busiest interval: 1 entry from/);
      assert.doesNotMatch(caption, /\b1 entries\b/);
      await page.fill('#f-text', 'zzzz-nothing-like-this');
      await page.waitForSelector('#entries-empty:not([hidden])');
      await page.click('#f-clear-2');
      await page.waitForSelector('#entries-empty', { state: 'hidden' });
      await page.fill('#f-text', '\\u202e');
      await page.waitForFunction(() => /^1 of/.test(document.getElementById('entries-count').textContent));
      await page.locator('#vt-scroll .vt-row:not([hidden])').first().click();
      await page.waitForFunction(() => /\\u202E/.test(document.querySelector('.vt-detail:not([hidden]) pre')?.textContent || ''));
      const pre = await page.textContent('.vt-detail:not([hidden]) pre');
      assert.ok(!pre.includes('\u202E'), 'the raw RLO is in the expanded event');
      assert.match(await page.textContent('.vt-detail:not([hidden])'), /Hidden Unicode/);
      await shots(page, 'hidden-unicode');
      await axe(page, 'hidden unicode, expanded row');
      assert.deepEqual(problems, []);
    } finally {
      await context.close();
    }
  });

  it('no key, a key that signed nothing, and a look-alike key are three different messages', T, async () => {
    const { context, page } = await openPage(browser, url, { viewport: DESKTOP });
    try {
      await verifyWithoutKey(page, F['signed.stele']);
      assert.equal(await word(page), 'Unverified');
      const none = await detail(page);
      assert.match(none, /No trusted key was given/);
      assert.equal(await verifyFileInPage(page, F['signed.stele'], wrongKey()), 'Unverified');
      const wrong = await detail(page);
      assert.match(wrong, /signed nothing/);
      await shots(page, 'unverified');
      const w = await verifyFileInPage(page, F['lookalike.stele'], KEY.vkey);
      assert.match(w, /key mismatch/i);
      const imp = await detail(page);
      assert.match(imp, /Warning: .*impersonation/);
      assert.doesNotMatch(imp, /No failure was found/);
      assert.equal(new Set([none, wrong, imp]).size, 3);
      await shots(page, 'key-mismatch');
      await axe(page, 'key mismatch');
      // Where do I get this?
      await page.click('.where summary');
      assert.match(await page.textContent('.where'), /stele key DIR/);
      assert.match(await page.textContent('.where'), /operator/);
    } finally {
      await context.close();
    }
  });

  it('a partly signed log has its own state, and its unsigned rows are shaded in the table and timeline', T, async () => {
    const { context, page, problems } = await openPage(browser, url, { viewport: DESKTOP });
    try {
      const w = await verifyFileInPage(page, F['partial.stele'], KEY.vkey);
      assert.equal(w, 'Partly signed');
      assert.match(await page.getAttribute('#verdict', 'class'), /\bpartial\b/);
      assert.match(await detail(page), /Entries 0–5 are intact and signed.*entries 6–8 are not signed/);
      const unsigned = await page.locator('#vt-scroll .vt-row.unsigned:not([hidden]) > span:first-child').allTextContents();
      assert.deepEqual(unsigned.map((t) => t.replace(/\D/g, '')), ['6', '7', '8']);
      assert.match(await page.textContent('#timeline-caption'), /not signed/);
      await shots(page, 'partial');
      await axe(page, 'partial');
      assert.deepEqual(problems, []);
    } finally {
      await context.close();
    }
  });

  it('during a run and after Cancel, a banner says the entries are partial and unverified; focus goes to the verdict', T, async () => {
    const { p: big } = largeSample();
    const { context, page } = await openPage(browser, url, { viewport: DESKTOP });
    try {
      await page.fill('#key', trustedKey());
      await page.setInputFiles('#file', big);
      await page.waitForFunction(() => document.querySelectorAll('#vt-scroll .vt-row:not([hidden])').length > 0, null, { timeout: 60_000 });
      assert.match(await page.locator('#entries-panel .run-banner').textContent(), /not verified yet/);
      assert.equal(await page.isVisible('#entries-panel .run-banner'), true);
      await page.screenshot({ path: shotPath('page-running-1366.png') });
      const n = await runs(page);
      await page.focus('#cancel');
      await page.keyboard.press('Enter');
      await waitRun(page, n);
      assert.equal(await word(page), 'Cancelled');
      assert.match(await page.locator('#timeline-panel .run-banner').textContent(), /cancelled.*none of them is verified/);
      assert.equal(await page.evaluate(() => document.activeElement?.id), 'verdict');
      await shots(page, 'cancelled');
      await axe(page, 'cancelled');
    } finally {
      await context.close();
    }
  });
});

describe('any screen, keyboard', () => {
  for (const [label, vp, scale] of [['320 px', { width: 320, height: 640 }, 1], ['200% zoom', { width: 683, height: 384 }, 2]]) {
    it(`a tampered result reflows at ${label}: no horizontal page scroll, the verdict and failures readable`, T, async () => {
      const context = await browser.newContext({ viewport: vp, deviceScaleFactor: scale });
      const page = await context.newPage();
      try {
        await page.goto(url);
        await page.waitForSelector('html[data-warm]');
        assert.equal(await verifyFileInPage(page, F['range.stele'], KEY.vkey), 'Tampered');
        const m = await page.evaluate(() => ({
          page: document.documentElement.scrollWidth,
          vw: window.innerWidth,
          verdict: document.getElementById('verdict').getBoundingClientRect().right,
          failure: Math.max(...[...document.querySelectorAll('.failure-message')].map((e) => e.getBoundingClientRect().right)),
        }));
        assert.ok(m.page <= m.vw, `page ${m.page} px wide in a ${m.vw} px viewport`);
        assert.ok(m.verdict <= m.vw && m.failure <= m.vw, JSON.stringify(m));
        await page.screenshot({ path: shotPath(`page-reflow-${vp.width}.png`), fullPage: true });
      } finally {
        await context.close();
      }
    });
  }

  it('focus lands on the verdict after Verify; n/p walk the failures; the expanded event follows its row', T, async () => {
    const { context, page } = await openPage(browser, url, { viewport: DESKTOP });
    try {
      await verifyFileInPage(page, F['range.stele'], KEY.vkey);
      const n = await runs(page);
      await page.focus('#verify');
      await page.keyboard.press('Enter');
      await waitRun(page, n);
      assert.equal(await page.evaluate(() => document.activeElement?.id), 'verdict');
      await page.keyboard.press('n');
      await page.waitForSelector('#vt-scroll .vt-row.flash:not([hidden])');
      assert.equal(await page.isVisible('#back-failures'), true);
      await page.click('#back-failures');
      assert.ok(await page.evaluate(() => document.activeElement.closest('#failures') != null), 'back to failures');
      await page.locator('#vt-scroll').focus();
      await page.keyboard.press('Home');
      await page.keyboard.press('ArrowDown');
      await page.keyboard.press('Enter');
      await page.waitForSelector('.vt-detail:not([hidden])');
      const order = await page.evaluate(() => {
        const d = document.querySelector('.vt-detail');
        return { prev: d.previousElementSibling?.getAttribute('aria-expanded'), role: document.getElementById('vt').getAttribute('role') };
      });
      assert.deepEqual(order, { prev: 'true', role: 'treegrid' });
      await page.keyboard.press('ArrowLeft');
      await page.waitForSelector('.vt-detail', { state: 'hidden' });
      await page.keyboard.press('ArrowRight');
      await page.waitForSelector('.vt-detail:not([hidden])');
      // column headers sit on their columns
      const off = await page.evaluate(() => {
        const heads = [...document.querySelectorAll('.vt-head [role=columnheader]')];
        const row = document.querySelector('#vt-scroll .vt-row:not([hidden])');
        return heads.map((h, i) => Math.abs(h.getBoundingClientRect().left - row.children[i].getBoundingClientRect().left));
      });
      assert.ok(Math.max(...off) <= 1, `headers off their columns by ${off} px`);
      // the timeline takes the keyboard
      await page.focus('#timeline-wrap');
      await page.keyboard.press('ArrowRight');
      assert.match(await page.getAttribute('#timeline-wrap', 'aria-valuetext'), /entr(y|ies)/);
      await page.keyboard.press('Enter');
      await page.waitForFunction(() => /match the filters/.test(document.getElementById('entries-count').textContent));
    } finally {
      await context.close();
    }
  });

  it('the page with nothing chosen passes axe at both sizes', T, async () => {
    for (const vp of [DESKTOP, PHONE]) {
      const { context, page } = await openPage(browser, url, { viewport: vp });
      try {
        await axe(page, `initial ${vp.width}`);
        await page.screenshot({ path: shotPath(`page-initial-${vp.width}.png`), fullPage: true });
      } finally {
        await context.close();
      }
    }
  });
});

describe('small things', () => {
  it('no samples request outside demo mode; a dropped file shows in the file input; a remembered key says so and can be forgotten', T, async () => {
    const context = await browser.newContext({ viewport: DESKTOP });
    const page = await context.newPage();
    const requests = [];
    context.on('request', (r) => requests.push(r.url()));
    try {
      await page.goto(url);
      await page.waitForSelector('html[data-warm]');
      await page.waitForLoadState('networkidle');
      assert.deepEqual(requests.filter((u) => u.includes('/samples/')), [], 'samples fetched outside demo mode');
      assert.equal(await page.isVisible('#samples'), false);
      // drop a file: it is what the file input shows
      await page.evaluate(() => {
        const dt = new DataTransfer();
        dt.items.add(new File(['stele-export v1 log\n'], 'dropped.stele'));
        for (const type of ['dragenter', 'drop']) document.dispatchEvent(new DragEvent(type, { dataTransfer: dt, bubbles: true, cancelable: true }));
      });
      assert.equal(await page.evaluate(() => document.getElementById('file').files[0]?.name), 'dropped.stele');
      assert.equal(await page.getAttribute('#file', 'accept'), '.stele');
      // a key typed is remembered; on the next visit the page says where it came from
      await page.fill('#key', trustedKey());
      await page.reload();
      await page.waitForSelector('html[data-warm]');
      assert.equal(await page.inputValue('#key'), trustedKey());
      assert.equal(await page.isVisible('#key-saved'), true);
      await page.click('#key-forget');
      assert.equal(await page.inputValue('#key'), '');
      await page.reload();
      await page.waitForSelector('html[data-warm]');
      assert.equal(await page.inputValue('#key'), '');
      assert.equal(await page.isVisible('#key-saved'), false);
      // demo mode: the samples, collapsed, and the verdict scrolled into view when one runs
      await page.goto(`${url}?demo`);
      await page.waitForSelector('html[data-warm]');
      await page.waitForSelector('#samples:not([hidden])');
      assert.equal(await page.evaluate(() => document.getElementById('samples').open), false);
      await page.click('#samples summary');
      const n = await runs(page);
      await page.locator('#sample-list button', { hasText: 'valid.stele' }).click();
      await waitRun(page, n);
      const top = await page.evaluate(() => document.getElementById('verdict').getBoundingClientRect().top);
      assert.ok(top >= 0 && top < DESKTOP.height, `the verdict is off screen (top ${top})`);
    } finally {
      await context.close();
    }
  });
});

describe('evidence', () => {
  it('the downloaded report has the input block; print view; the latest checkpoint round-trips as "earlier checkpoint"', T, async () => {
    const { context, page, problems } = await openPage(browser, url, { viewport: DESKTOP });
    try {
      const file = F['signed.stele'];
      assert.equal(await verifyFileInPage(page, file, KEY.vkey), 'Verified');
      await page.waitForFunction(() => /[0-9a-f]{64}/.test(document.getElementById('evidence-list').textContent));
      const [download] = await Promise.all([page.waitForEvent('download'), page.click('#download')]);
      const report = JSON.parse(readFileSync(await download.path(), 'utf8'));
      const want = createHash('sha256').update(readFileSync(file)).digest('hex');
      assert.equal(report.input.name, 'signed.stele');
      assert.equal(report.input.bytes, statSync(file).size);
      assert.equal(report.input.sha256, want);
      assert.deepEqual(report.input.keys, [KEY.vkey]);
      assert.match(report.input.verifier, /stele/);
      assert.match(report.input.verified_at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
      assert.match(await page.textContent('#evidence-list'), new RegExp(want));
      await shots(page, 'verified');
      await axe(page, 'verified');
      // print view: the verdict and evidence, no inputs or table
      await page.emulateMedia({ media: 'print' });
      assert.equal(await page.isVisible('.inputs'), false);
      assert.equal(await page.isVisible('#entries-panel'), false);
      assert.equal(await page.isVisible('#verdict'), true);
      assert.equal(await page.isVisible('#evidence'), true);
      await page.screenshot({ path: shotPath('page-print-1366.png'), fullPage: true });
      await page.emulateMedia({ media: 'screen' });
      // latest signed checkpoint
      await page.waitForSelector('#cp-download:not([hidden])');
      const [cpd] = await Promise.all([page.waitForEvent('download'), page.click('#cp-download')]);
      const cp = readFileSync(await cpd.path(), 'utf8');
      assert.match(cp, /^example\.com\/forged\n12\n[A-Za-z0-9+/=]{44}\n\n— example\.com\/forged /);
      const n = await runs(page);
      await page.fill('#checkpoint', cp);
      await waitRun(page, n);
      assert.equal(await word(page), 'Verified');
      assert.match(await page.textContent('#consistency'), /Consistent with your checkpoint at size 12 ✓/);
      assert.deepEqual(problems, []);
    } finally {
      await context.close();
    }
  });
});

describe('<stele-verifier> for embedding', () => {
  it('composed events, every failure or "+N more", theming by custom properties and parts, error codes, idle icon', T, async () => {
    const { context, page } = await openPage(browser, url, { viewport: DESKTOP });
    try {
      const out = await page.evaluate(async ({ key, tampered }) => {
        await import('./src/stele-verifier.js');
        // inside another component's shadow root: events must cross it
        const host = document.createElement('div');
        document.querySelector('main').prepend(host);
        const root = host.attachShadow({ mode: 'open' });
        const css = new CSSStyleSheet();
        css.replaceSync('stele-verifier { --stele-bad: rgb(1, 2, 3); } stele-verifier::part(word) { letter-spacing: 3px; }');
        root.adoptedStyleSheets = [css];
        const v = document.createElement('stele-verifier');
        const idleIcon = v.shadowRoot.querySelector('svg').innerHTML;
        const workingIcon = (v._show('working', '', ''), v.shadowRoot.querySelector('svg').innerHTML);
        v._show('idle', 'No log checked yet', '');
        root.append(v);
        const events = [];
        for (const t of ['stele-progress', 'stele-report', 'stele-error']) document.addEventListener(t, (e) => events.push([t, e.detail.code ?? null]));
        const got = new Promise((r) => document.addEventListener('stele-report', (e) => r(e.detail.report), { once: true }));
        v.keys = key;
        v.src = `samples/${tampered}`;
        const report = await got;
        const word = v.shadowRoot.querySelector('.word');
        const res = {
          idleDiffers: idleIcon !== workingIcon,
          verdict: report.verdict,
          color: getComputedStyle(word).color,
          spacing: getComputedStyle(word).letterSpacing,
          listed: v.shadowRoot.querySelectorAll('li').length,
          total: report.failures_total,
          more: v.shadowRoot.querySelector('.more').hidden ? '' : v.shadowRoot.querySelector('.more').textContent,
        };
        const err = new Promise((r) => document.addEventListener('stele-error', (e) => r(e.detail), { once: true }));
        v.src = 'samples/no-such-file.stele';
        res.error = await err;
        res.events = [...new Set(events.map((e) => e[0]))].sort();
        return res;
      }, { key: trustedKey(), tampered: basename(listSamples(/^tampered.*\.stele$/)[0]) });
      assert.equal(out.idleDiffers, true, 'the idle state shows the working icon');
      assert.equal(out.verdict, 'tampered');
      assert.equal(out.color, 'rgb(1, 2, 3)');
      assert.equal(out.spacing, '3px');
      assert.ok(out.listed === out.total || (out.listed === 10 && out.more === `+${out.total - 10} more`), JSON.stringify(out));
      assert.equal(out.error.code, 'fetch_failed');
      assert.deepEqual(out.events, ['stele-error', 'stele-progress', 'stele-report']);
    } finally {
      await context.close();
    }
  });

  it('the "Embedding" example of web/README.md works in a fresh page of its own', T, async () => {
    const readme = readFileSync(join(WEB, 'README.md'), 'utf8');
    const section = readme.slice(readme.indexOf('## Embedding'));
    assert.ok(readme.includes('## Embedding'), 'web/README.md has no Embedding section');
    const html = /```html\n([\s\S]*?)```/.exec(section)?.[1];
    assert.ok(html, 'the Embedding section has no html example');
    for (const word of ['wasm-unsafe-eval', 'worker-src', 'connect-src', '--stele-', '::part(', 'stele-report', 'keys', 'src']) {
      assert.ok(section.includes(word), `the Embedding section does not mention ${word}`);
    }
    const context = await browser.newContext({ viewport: DESKTOP });
    const page = await context.newPage();
    const problems = [];
    page.on('pageerror', (e) => problems.push(e.message));
    page.on('console', (m) => m.type() === 'error' && problems.push(m.text()));
    try {
      // The example as a page of the host site, with its own CSP (from the README) and paths to the package.
      const body = html.replaceAll('/node_modules/@stele/verifier/', '/').replaceAll('KEY', trustedKey()).replaceAll('/exports/today.stele', '/samples/valid.stele');
      const js = /```js\n([\s\S]*?)```/.exec(section)?.[1];
      assert.ok(js, 'the Embedding section has no host script');
      await page.route(`${url}embed-example.html`, (r) => r.fulfill({ status: 200, contentType: 'text/html', body }));
      await page.route(`${url}status.js`, (r) => r.fulfill({ status: 200, contentType: 'text/javascript', body: js }));
      await page.goto(`${url}embed-example.html`);
      await page.waitForFunction(() => document.querySelector('stele-verifier')?.report?.verdict, null, { timeout: 60_000 });
      assert.equal(await page.evaluate(() => document.querySelector('stele-verifier').report.verdict), 'verified');
      assert.equal(await page.evaluate(() => window.lastVerdict), 'verified', 'the example listener did not run');
      await page.screenshot({ path: shotPath('page-embed-example.png'), fullPage: true });
      assert.deepEqual(problems, []);
    } finally {
      await context.close();
    }
  });
});

describe('live mode', () => {
  // The stele binary the live tests run.
  const steleBin = async () => {
    const { existsSync } = await import('node:fs');
    const { REPO } = await import('./helpers.mjs');
    const bin = process.env.STELE_BIN || [join(REPO, 'target/release/stele'), join(REPO, 'target/debug/stele')].find((p) => existsSync(p));
    assert.ok(bin && existsSync(bin), 'no stele binary: cargo build --release (or set STELE_BIN)');
    return bin;
  };
  // `stele serve ARGS --listen 127.0.0.1:0`: the process, and a promise of its URL.
  const startServe = async (bin, args, env = process.env) => {
    const { spawn } = await import('node:child_process');
    const proc = spawn(bin, ['serve', ...args, '--listen', '127.0.0.1:0'], { stdio: ['ignore', 'pipe', 'pipe'], env });
    let stderr = '';
    proc.stderr.on('data', (d) => (stderr += d));
    const url = new Promise((resolve, reject) => {
      let out = '';
      proc.stdout.on('data', (d) => {
        out += d;
        const m = /listening on (http:\/\/[\d.:]+)/.exec(out);
        if (m) resolve(m[1]);
      });
      proc.on('exit', (c) => reject(new Error(`stele serve exited ${c}: ${stderr}`)));
    });
    return { proc, url };
  };

  // Fills the live panel (key, entry, no polling), checks once, and returns
  // the verdict word.
  const checkOnce = async (page, vkey, index) => {
    await page.fill('#live-key', vkey);
    await page.fill('#live-index', String(index));
    await page.selectOption('#live-every', '0');
    await page.click('#live-panel button[type=submit]');
    await page.waitForFunction(() => !/Checking/.test(document.querySelector('#live-verdict .verdict-word').textContent));
    return (await page.textContent('#live-verdict .verdict-word')).trim();
  };

  // Checks again (bounded) until the tree is larger than `first`: the
  // server recorded the first check's read.
  const growsAfterRead = async (page, first) => {
    let second = first;
    for (let i = 0; i < 40 && second === first; i++) {
      await page.waitForTimeout(500);
      await page.click('#live-panel button[type=submit]');
      await page.waitForFunction(() => !/Checking/.test(document.querySelector('#live-verdict .verdict-word').textContent));
      second = Number(/size (\d+)/.exec(await page.textContent('#live-verdict'))[1]);
    }
    assert.ok(second > first, `the tree did not grow after a read (size ${first})`);
  };

  it('/?live is a monitor first on the page: signed checkpoint, consistency with the last one seen, inclusion, reads-are-logged notice', T, async () => {
    const { execFileSync } = await import('node:child_process');
    const { DIST } = await import('./helpers.mjs');
    const bin = await steleBin();
    const logDir = join(dir, 'live-log');
    const vkey = execFileSync(bin, ['init', '--origin', 'example.com/live', logDir], { encoding: 'utf8' }).trim().split('\n').pop().trim();
    execFileSync(bin, ['append', logDir], { input: [1, 2, 3, 4, 5].map((i) => JSON.stringify({ type: 'audit', actor: i === 3 ? 'eve\u202Egnp.exe' : 'alice', action: 'read', target: `doc/${i}` })).join('\n') });
    // Signed before the server starts, so the first check sees entry 3 in a signed tree
    // (waiting for the server's --checkpoint-interval raced with the page's first fetch).
    execFileSync(bin, ['checkpoint', logDir]);
    const { proc, url } = await startServe(bin, [logDir, '--web', DIST, '--checkpoint-interval', '1s']);
    try {
      const base = `${await url}/`;
      const { context, page, problems } = await openPage(browser, `${base}?live`, { viewport: DESKTOP });
      try {
        await page.waitForSelector('#live-panel');
        assert.equal(await page.evaluate(() => document.querySelector('main').firstElementChild.id), 'live-panel', 'the live panel is not first');
        assert.match(await page.textContent('#live-panel'), /Your reads are logged.*stele\.access/);
        assert.equal(await page.getAttribute('#live-verdict', 'role'), 'status');
        assert.equal(await checkOnce(page, vkey, 3), 'Verified', await page.textContent('#live-verdict'));
        const first = Number(/size (\d+)/.exec(await page.textContent('#live-verdict'))[1]);
        // stele serve on a writer's log records reads (header stele-reads: recorded)
        assert.match(await page.textContent('#live-reads'), /Your reads are logged/);
        assert.match(await page.textContent('#live-out'), /eve\\u202Egnp\.exe/, 'hidden Unicode shown raw in live mode');
        // Reading entry 3 was recorded as a stele.access entry: the tree grows and a new checkpoint is signed.
        await growsAfterRead(page, first);
        assert.match(await page.textContent('#live-verdict'), new RegExp(`extends the tree of size \\d+ seen before ✓`));
        assert.ok((await page.locator('#live-log li').count()) >= 2);
        // polling: checks run by themselves, each against the last checkpoint seen
        const before = await page.locator('#live-log li').count();
        await page.selectOption('#live-every', '10');
        await page.click('#live-panel button[type=submit]');
        await page.waitForFunction((n) => document.querySelectorAll('#live-log li').length >= n + 2, before, { timeout: 40_000 });
        assert.equal(await page.isVisible('#live-panel button:has-text("Stop")'), true);
        assert.match(await page.locator('#live-log li').first().textContent(), /size \d+, root \S+(, consistent with size \d+)?; entry 3 included; key ID [0-9a-f]{8}/);
        await page.click('#live-panel button:has-text("Stop")');
        await shots(page, 'live');
        await axe(page, 'live');
        assert.deepEqual(problems, []);
      } finally {
        await context.close();
      }
    } finally {
      proc.kill('SIGTERM');
    }
  });

  // A proxy in front of `stele serve` instances, serving the page too (the
  // page's CSP allows its own origin only): use(URL) switches the backend
  // (a forked server, a rolled-back one); hold() parks the next /checkpoint
  // requests until release() and resolves when the first arrives.
  const startProxy = async () => {
    const { createServer, request } = await import('node:http');
    let target = null;
    let holding = false;
    let arrived = () => {};
    const held = [];
    const server = createServer((req, res) => {
      const go = () => {
        const t = new URL(target);
        const up = request({ host: t.hostname, port: t.port, path: req.url, method: req.method, headers: req.headers }, (r) => {
          res.writeHead(r.statusCode, r.headers);
          r.pipe(res);
        });
        up.on('error', (e) => {
          res.writeHead(502);
          res.end(String(e));
        });
        req.pipe(up);
      };
      if (holding && req.url.startsWith('/checkpoint')) {
        held.push(go);
        arrived();
        return;
      }
      go();
    });
    await new Promise((r) => server.listen(0, '127.0.0.1', r));
    return {
      url: `http://127.0.0.1:${server.address().port}/`,
      use: (u) => (target = u),
      hold: () => {
        holding = true;
        return new Promise((r) => (arrived = r));
      },
      release: () => {
        holding = false;
        held.splice(0).forEach((go) => go());
      },
      close: () => {
        server.closeAllConnections();
        server.close();
      },
    };
  };
  // Presses Check now and waits until that check's result is shown (the
  // panel's data-live-checks grew and no check runs or is due).
  const submitLive = async (page) => {
    const n = Number(await page.getAttribute('#live-panel', 'data-live-checks'));
    await page.click('#live-panel button[type=submit]');
    await page.waitForFunction((n) => {
      const p = document.querySelector('#live-panel');
      return Number(p.dataset.liveChecks) > n && p.dataset.livePending === '0';
    }, n);
    return { word: (await page.textContent('#live-verdict .verdict-word')).trim(), text: await page.textContent('#live-verdict') };
  };
  // A log of `n` entries after its genesis, signed: its directory and verifier key.
  const liveLog = async (bin, name, n) => {
    const { execFileSync } = await import('node:child_process');
    const logDir = join(dir, name);
    const vkey = execFileSync(bin, ['init', '--origin', `example.com/${name}`, logDir], { encoding: 'utf8' }).trim().split('\n').pop().trim();
    execFileSync(bin, ['append', logDir], { input: Array.from({ length: n }, (_, i) => JSON.stringify({ type: 'audit', actor: 'alice', action: 'read', target: `doc/${i}` })).join('\n') });
    execFileSync(bin, ['checkpoint', logDir]);
    return { logDir, vkey };
  };
  const keyId = (vkey) => vkey.split('+')[1];

  it('live mode applies revoked keys (FORMAT 15.3) and names the signing key by its ID; the panel says what it does not check', T, async () => {
    const { execFileSync } = await import('node:child_process');
    const { cpSync } = await import('node:fs');
    const { DIST } = await import('./helpers.mjs');
    const bin = await steleBin();
    // before: signed by K0 alone; covering: the rotation's first checkpoint, signed by K0 and K1;
    // after: the next one, signed by K1 alone (same key name as K0)
    const { logDir, vkey: k0 } = await liveLog(bin, 'live-rot', 5);
    const before = join(dir, 'live-rot-before');
    cpSync(logDir, before, { recursive: true });
    const k1 = execFileSync(bin, ['key', 'rotate', '--overlap', '1', logDir], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim().split('\n').pop().trim();
    assert.notEqual(keyId(k0), keyId(k1));
    // (key rotate signs the checkpoint covering its event with both keys)
    const covering = join(dir, 'live-rot-covering');
    cpSync(logDir, covering, { recursive: true });
    execFileSync(bin, ['append', logDir], { input: '{"type":"audit","actor":"bob"}' });
    execFileSync(bin, ['checkpoint', logDir]);
    const servers = await Promise.all([before, covering, logDir].map((d) => startServe(bin, [d, '--read-only', '--web', DIST])));
    const proxy = await startProxy();
    try {
      const [uBefore, uCovering, uAfter] = await Promise.all(servers.map((s) => s.url));
      proxy.use(uBefore);
      const { context, page, problems } = await openPage(browser, `${proxy.url}?live`, { viewport: DESKTOP });
      try {
        await page.waitForSelector('#live-panel');
        assert.match(await page.textContent('#live-scope'), /does not read the log's key history.*pin the log's current key and list the revoked ones.*verify an export/);
        await page.fill('#live-index', '3');
        await page.selectOption('#live-every', '0');
        await page.fill('#live-key', k0);
        let r = await submitLive(page);
        assert.equal(r.word, 'Verified', r.text);
        assert.match(r.text, new RegExp(`signed by example\\.com/live-rot \\(key ID ${keyId(k0)}\\)`));
        // K0 revoked from size 3: its checkpoint of size 6 fails, naming the key ID and the size
        await page.fill('#live-revoked', `${k0}@3`);
        r = await submitLive(page);
        assert.equal(r.word, 'Failed', r.text);
        assert.match(r.text, new RegExp(`key ID ${keyId(k0)} .*revoked from size 3`));
        // revoked from a larger size than the tree: not a failure (same syntax as file mode: spaces or lines)
        await page.fill('#live-revoked', `  ${k0}@100\n`);
        r = await submitLive(page);
        assert.equal(r.word, 'Verified', r.text);
        assert.match(r.text, /not revoked at this size/);
        await page.fill('#live-revoked', `${k0}@x`);
        r = await submitLive(page);
        assert.equal(r.word, 'Failed', r.text);
        assert.match(r.text, /not a decimal tree size/);
        // the rotation's covering checkpoint, co-signed by K0 revoked from 3: a failure even beside K1's signature
        proxy.use(uCovering);
        await page.fill('#live-key', `${k0}\n${k1}`);
        await page.fill('#live-revoked', `${k0}@3`);
        r = await submitLive(page);
        assert.equal(r.word, 'Failed', r.text);
        assert.match(r.text, new RegExp(`key ID ${keyId(k0)} .*revoked from size 3`));
        // after it, K1 alone signs: verified, and the verdict names K1's ID, not K0's (same name)
        proxy.use(uAfter);
        r = await submitLive(page);
        assert.equal(r.word, 'Verified', r.text);
        assert.match(r.text, new RegExp(`key ID ${keyId(k1)}`));
        assert.doesNotMatch(r.text, new RegExp(keyId(k0)));
        await shots(page, 'live-revoked');
        await axe(page, 'live-revoked');
        assert.deepEqual(problems, []);
      } finally {
        await context.close();
      }
    } finally {
      proxy.close();
      for (const s of servers) s.proc.kill('SIGTERM');
    }
  });

  it('live mode: a fork or rollback seen stays failed across key edits and later good checks, until Start over', T, async () => {
    const { execFileSync } = await import('node:child_process');
    const { cpSync } = await import('node:fs');
    const { DIST } = await import('./helpers.mjs');
    const bin = await steleBin();
    // two histories from one log and key: same size 8, different entries 7 and 8
    const { logDir, vkey } = await liveLog(bin, 'live-fork', 5);
    const fork = join(dir, 'live-fork-b');
    cpSync(logDir, fork, { recursive: true });
    execFileSync(bin, ['append', logDir], { input: '{"type":"audit","actor":"alice"}\n{"type":"audit","actor":"alice"}' });
    execFileSync(bin, ['checkpoint', logDir]);
    execFileSync(bin, ['append', fork], { input: '{"type":"audit","actor":"mallory"}\n{"type":"audit","actor":"mallory"}' });
    execFileSync(bin, ['checkpoint', fork]);
    const other = await liveLog(bin, 'live-fork-other', 1);
    const servers = await Promise.all([logDir, fork].map((d) => startServe(bin, [d, '--read-only', '--web', DIST])));
    const proxy = await startProxy();
    try {
      const [honest, forked] = await Promise.all(servers.map((s) => s.url));
      proxy.use(honest);
      const { context, page, problems } = await openPage(browser, `${proxy.url}?live`, { viewport: DESKTOP });
      try {
        await page.waitForSelector('#live-panel');
        assert.equal(await page.isVisible('#live-reset'), false, 'nothing to forget yet');
        await page.fill('#live-index', '3');
        await page.selectOption('#live-every', '0');
        await page.fill('#live-key', vkey);
        let r = await submitLive(page);
        assert.equal(r.word, 'Verified', r.text);
        proxy.use(forked);
        r = await submitLive(page);
        assert.equal(r.word, 'Failed', r.text);
        assert.match(r.text, /two different roots for the tree of size \d+ \(this one and the last tree seen\): the log forked/);
        // editing the keys does not forget the last tree seen: the fork still fails
        await page.fill('#live-key', `${vkey}\n${other.vkey}`);
        r = await submitLive(page);
        assert.equal(r.word, 'Failed', r.text);
        assert.match(r.text, /^Failed\s*two different roots .*the log forked/, 'this check itself must find the fork');
        assert.doesNotMatch(r.text, /This check passed/);
        // back on the honest history, the check passes, but the fork seen stays the verdict
        proxy.use(honest);
        await page.fill('#live-key', vkey);
        r = await submitLive(page);
        assert.equal(r.word, 'Failed', r.text);
        assert.match(r.text, /Earlier: two different roots .*the log forked.*start over.*This check passed/);
        assert.match(await page.locator('#live-log li').first().textContent(), /entry 3 included/);
        // Start over says what it forgets, and forgets it
        assert.equal(await page.isVisible('#live-reset'), true);
        assert.match(await page.textContent('#live-reset-hint'), /forgets the last tree seen \(size \d+\) and the rollback or fork detected/);
        await shots(page, 'live-fork');
        await axe(page, 'live-fork');
        await page.click('#live-reset');
        assert.equal((await page.textContent('#live-verdict .verdict-word')).trim(), 'Not checked yet');
        assert.equal(await page.isVisible('#live-reset'), false);
        r = await submitLive(page);
        assert.equal(r.word, 'Verified', r.text);
        assert.doesNotMatch(r.text, /extends|unchanged/);
        // a fork shown only to a check the auditor replaced (Check now pressed again while it ran)
        // is not shown as that check's verdict, but it is kept: the next check's pass does not hide it
        const arrived = proxy.hold();
        await page.click('#live-panel button[type=submit]');
        await arrived;
        await page.click('#live-panel button[type=submit]');
        proxy.use(forked);
        proxy.release();
        const next = proxy.hold();
        await next;
        proxy.use(honest);
        proxy.release();
        await page.waitForFunction(() => document.querySelector('#live-panel').dataset.livePending === '0');
        const text = await page.textContent('#live-verdict');
        assert.equal((await page.textContent('#live-verdict .verdict-word')).trim(), 'Failed', text);
        assert.match(text, /Earlier: two different roots .*the log forked.*This check passed/);
        assert.match(await page.locator('#live-log li').nth(1).textContent(), /FAILED: two different roots/);
        assert.deepEqual(problems, []);
      } finally {
        await context.close();
      }
      // a new page (a reload forgets every tree seen) given the checkpoint saved from the honest log
      const saved = await (await fetch(`${honest}/checkpoint`)).text();
      // the other log's latest checkpoint (its checkpoints file: each note after its length in bytes and \n)
      const otherSaved = (() => {
        const b = readFileSync(join(other.logDir, 'checkpoints'));
        let last = '';
        for (let i = 0; i < b.length;) {
          const nl = b.indexOf(10, i);
          const n = Number(b.subarray(i, nl).toString());
          last = b.subarray(nl + 1, nl + 1 + n).toString();
          i = nl + 1 + n;
        }
        return last;
      })();
      assert.match(otherSaved, /^example\.com\/live-fork-other\n\d+\n/);
      const second = await openPage(browser, `${proxy.url}?live`, { viewport: DESKTOP });
      try {
        const p2 = second.page;
        await p2.waitForSelector('#live-panel');
        await p2.fill('#live-index', '3');
        await p2.selectOption('#live-every', '0');
        await p2.fill('#live-key', vkey);
        await p2.fill('#live-checkpoint', otherSaved);
        let r = await submitLive(p2);
        assert.equal(r.word, 'Failed', r.text);
        assert.match(r.text, /earlier checkpoint: .*not signed by a pinned key/);
        await p2.fill('#live-checkpoint', saved.replace(/\n/g, '\r\n'));
        r = await submitLive(p2);
        assert.equal(r.word, 'Verified', r.text);
        assert.match(r.text, /it extends the earlier checkpoint \(size \d+\) ✓/);
        // Start over forgets the trees seen, not the earlier checkpoint: the fork fails at the first check
        await p2.click('#live-reset');
        proxy.use(forked);
        r = await submitLive(p2);
        assert.equal(r.word, 'Failed', r.text);
        assert.match(r.text, /two different roots for the tree of size \d+ \(this one and the earlier checkpoint\): the log forked/);
        assert.deepEqual(second.problems, []);
      } finally {
        await second.context.close();
      }
    } finally {
      proxy.close();
      for (const s of servers) s.proc.kill('SIGTERM');
    }
  });

  it('live mode: Check now while a check runs shows the result for the current inputs, never the earlier one', T, async () => {
    const { DIST } = await import('./helpers.mjs');
    const bin = await steleBin();
    const { logDir, vkey } = await liveLog(bin, 'live-race', 5);
    const other = await liveLog(bin, 'live-race-other', 1);
    const served = await startServe(bin, [logDir, '--read-only', '--web', DIST]);
    const proxy = await startProxy();
    try {
      proxy.use(await served.url);
      const { context, page, problems } = await openPage(browser, `${proxy.url}?live`, { viewport: DESKTOP });
      try {
        await page.waitForSelector('#live-panel');
        await page.fill('#live-index', '3');
        await page.selectOption('#live-every', '0');
        // a check with the log's key, held at the proxy; meanwhile the key is replaced and checked
        await page.fill('#live-key', vkey);
        const arrived = proxy.hold();
        await page.click('#live-panel button[type=submit]');
        await arrived;
        await page.fill('#live-key', other.vkey);
        await page.click('#live-panel button[type=submit]');
        proxy.release();
        await page.waitForFunction(() => document.querySelector('#live-panel').dataset.livePending === '0');
        const text = await page.textContent('#live-verdict');
        assert.equal((await page.textContent('#live-verdict .verdict-word')).trim(), 'Failed', text);
        assert.match(text, /not signed by a pinned key/);
        assert.equal(await page.getAttribute('#live-panel', 'data-live-checks'), '1', 'the first check (the earlier key) was shown');
        // and the other way round: the wrong key first, then the log's key
        const again = proxy.hold();
        await page.click('#live-panel button[type=submit]');
        await again;
        await page.fill('#live-key', vkey);
        await page.click('#live-panel button[type=submit]');
        proxy.release();
        await page.waitForFunction(() => document.querySelector('#live-panel').dataset.livePending === '0');
        assert.equal((await page.textContent('#live-verdict .verdict-word')).trim(), 'Verified', await page.textContent('#live-verdict'));
        assert.match(await page.textContent('#live-verdict'), new RegExp(`key ID ${keyId(vkey)}`));
        assert.equal(await page.getAttribute('#live-panel', 'data-live-checks'), '2');
        assert.deepEqual(problems, []);
      } finally {
        await context.close();
      }
    } finally {
      proxy.close();
      served.proc.kill('SIGTERM');
    }
  });

  it('live mode works against a front-end on PostgreSQL + object storage (issue 13)', T, async () => {
    const { execFileSync, spawnSync } = await import('node:child_process');
    const { DIST } = await import('./helpers.mjs');
    const bin = await steleBin();
    // The servers writer/tests/cluster*.rs use; unreachable ones fail the test (never a skip).
    const pg = process.env.STELE_TEST_PG || 'postgres://stele_test:stele_test@127.0.0.1:5432/postgres';
    const s3 = process.env.STELE_TEST_S3 || 'http://127.0.0.1:5055';
    const how = 'start the test servers with `bash scripts/test-servers.sh start` (PostgreSQL 15 with the role stele_test, moto_server on 127.0.0.1:5055), or point STELE_TEST_PG / STELE_TEST_S3 at yours';
    const tag = `${process.pid}_${Date.now() % 1e9}`;
    const name = `stele_web_${tag}`;
    const bucket = `stele-web-${tag.replace('_', '-')}`;
    const made = spawnSync('psql', [pg, '-qc', `CREATE DATABASE ${name}`], { encoding: 'utf8' });
    assert.equal(made.status, 0, `cannot create a database at ${pg}: ${made.stderr || made.error}; ${how}`);
    const db = pg.replace(/\/[^/]*$/, `/${name}`);
    const env = { ...process.env, AWS_ENDPOINT_URL: s3, AWS_ACCESS_KEY_ID: 'stele-test', AWS_SECRET_ACCESS_KEY: 'stele-test-secret', AWS_REGION: 'us-east-1' };
    let proc;
    try {
      const res = await fetch(`${s3}/${bucket}`, { method: 'PUT' }).catch((e) => assert.fail(`cannot reach S3 at ${s3}: ${e.message}; ${how}`));
      assert.ok(res.ok, `cannot create bucket ${bucket}: ${res.status}`);
      const key = join(dir, 'cluster-signing.key');
      const objects = `s3://${bucket}/log`;
      const vkey = execFileSync(bin, ['init', '--db', db, '--objects', objects, '--origin', 'example.com/live-cluster', '--signing-key', key], { env, encoding: 'utf8' }).trim().split('\n').pop().trim();
      const tokens = join(dir, 'cluster-tokens');
      const token = execFileSync(bin, ['token', 'add', tokens, 'monitor', '--scope', 'read,write'], { encoding: 'utf8' }).trim();
      const served = await startServe(bin, ['--db', db, '--objects', objects, '--signing-key', key, '--tokens', tokens, '--web', DIST, '--checkpoint-interval', '1s'], env);
      proc = served.proc;
      const base = `${await served.url}/`;
      const auth = { Authorization: `Bearer ${token}` };
      const appended = await fetch(`${base}v1/entries`, {
        method: 'POST',
        headers: { ...auth, 'Content-Type': 'application/json' },
        body: JSON.stringify([1, 2, 3, 4, 5].map((i) => ({ type: 'audit', actor: i === 3 ? 'eve\u202Egnp.exe' : 'alice', action: 'read', target: `doc/${i}` }))),
      });
      assert.equal(appended.status, 200, await appended.text());
      // The published checkpoint covers entry 3 within --checkpoint-interval (bounded wait).
      let size = 0;
      for (let i = 0; i < 240 && size < 4; i++) {
        const cp = await fetch(`${base}checkpoint`, { headers: auth });
        size = cp.ok ? Number((await cp.text()).split('\n')[1]) : 0;
        if (size < 4) await new Promise((r) => setTimeout(r, 250));
      }
      assert.ok(size >= 4, `no checkpoint covering entry 3 was published (size ${size})`);
      const { context, page, problems } = await openPage(browser, `${base}?live`, { viewport: DESKTOP });
      try {
        await page.waitForSelector('#live-panel');
        await page.fill('#live-token', token);
        assert.equal(await checkOnce(page, vkey, 3), 'Verified', await page.textContent('#live-verdict'));
        const first = Number(/size (\d+)/.exec(await page.textContent('#live-verdict'))[1]);
        assert.match(await page.textContent('#live-out'), /eve\\u202Egnp\.exe/, 'hidden Unicode shown raw in live mode');
        // The read was recorded in PostgreSQL: the tree grows, and the next check proves it extends the first.
        await growsAfterRead(page, first);
        assert.equal((await page.textContent('#live-verdict .verdict-word')).trim(), 'Verified', await page.textContent('#live-verdict'));
        assert.match(await page.textContent('#live-verdict'), /extends the tree of size \d+ seen before ✓/);
        await page.screenshot({ path: shotPath('live-cluster.png'), fullPage: true });
        assert.deepEqual(problems, []);
      } finally {
        await context.close();
      }
    } finally {
      proc?.kill('SIGTERM');
      if (proc && proc.exitCode === null) await new Promise((r) => proc.once('exit', r));
      spawnSync('psql', [pg, '-qc', `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`]);
      // Signed deletes (moto refuses unsigned ones): boto3 comes with moto.
      const drop = "import boto3,sys; b=boto3.resource('s3', endpoint_url=sys.argv[1], aws_access_key_id='stele-test', aws_secret_access_key='stele-test-secret', region_name='us-east-1').Bucket(sys.argv[2]); b.objects.all().delete(); b.delete()";
      spawnSync('python3', ['-c', drop, s3, bucket]);
    }
  });

  it('live mode works against a mirror served with stele serve --read-only (issue 12)', T, async () => {
    const { execFileSync } = await import('node:child_process');
    const { DIST } = await import('./helpers.mjs');
    const bin = await steleBin();
    const logDir = join(dir, 'mirrored-log');
    const mirrorDir = join(dir, 'mirror');
    const vkey = execFileSync(bin, ['init', '--origin', 'example.com/mirrored', logDir], { encoding: 'utf8' }).trim().split('\n').pop().trim();
    execFileSync(bin, ['append', logDir], { input: [1, 2, 3, 4, 5].map((i) => JSON.stringify({ type: 'audit', actor: 'alice', action: 'read', target: `doc/${i}` })).join('\n') });
    execFileSync(bin, ['checkpoint', logDir]);
    const origin = await startServe(bin, [logDir, '--read-only']);
    let served;
    try {
      execFileSync(bin, ['mirror', await origin.url, mirrorDir, '--key', vkey, '--once'], { stdio: 'ignore' });
      served = await startServe(bin, [mirrorDir, '--read-only', '--web', DIST]);
      const base = `${await served.url}/`;
      const { context, page, problems } = await openPage(browser, `${base}?live`, { viewport: DESKTOP });
      try {
        await page.waitForSelector('#live-panel');
        assert.equal(await checkOnce(page, vkey, 3), 'Verified', await page.textContent('#live-verdict'));
        assert.match(await page.textContent('#live-verdict'), /size 6\b/);
        assert.match(await page.textContent('#live-out'), /doc\/3/);
        // a --read-only server records no reads, and the page says so
        assert.match(await page.textContent('#live-reads'), /records no reads/);
        await page.screenshot({ path: shotPath('live-mirror.png'), fullPage: true });
        assert.deepEqual(problems, []);
      } finally {
        await context.close();
      }
    } finally {
      origin.proc.kill('SIGTERM');
      served?.proc.kill('SIGTERM');
    }
  });
});
