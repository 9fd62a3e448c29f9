// Revoked keys in the env.browser (docs/FORMAT.md 15.3, issue 15): the page's
// optional "Revoked keys" input, <stele-verifier revoked="…"> and
// @stele/verifier's `revoked` option. The plain verifier takes no
// revocations (rotation code is left out of it), so a revocation makes the
// page verify with the lazily loaded module that follows key rotations.
// Headless Chromium against web/dist with the real wasm, on the shared vector
// tests/vectors/rotation-revoked (its genesis key, revoked from size 16,
// signs the checkpoint of size 20).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO, DIST, openPage, verifyFileInPage, shotPath, browserAndServer } from './helpers.mjs';

const VECTOR = join(REPO, 'tests/vectors/rotation-revoked.stele');
const EXPECT = readFileSync(join(REPO, 'tests/vectors/rotation-revoked.expect'), 'utf8');
const KEY = /^key:\s*(\S+)/m.exec(EXPECT)[1];
const REVOKED = /^revoked:\s*(\S+)/m.exec(EXPECT)[1];
const T = { timeout: 180_000 };

const env = browserAndServer();

describe('revoked keys in the env.browser', { timeout: 900_000 }, () => {
  it('the page: a checkpoint signed by a key revoked from its size is a failure, and only then', T, async () => {
    assert.equal(REVOKED, `${KEY}@16`, 'the vector revokes its own key from size 16');
    const { context, page, problems } = await openPage(env.browser, env.url);
    const sealed = [];
    page.on('request', (r) => { if (r.url().includes('stele_wasm_seal')) sealed.push(r.url()); });
    try {
      // Without the revocation the file verifies: its one key signs every checkpoint.
      assert.equal(await verifyFileInPage(page, VECTOR, KEY), 'Verified');
      assert.deepEqual(sealed, [], 'no revocation: the plain verifier decides');
      // The input sits with the other optional inputs.
      assert.equal(await page.locator('#revoked').evaluate((e) => e.closest('section')?.id || e.closest('section')?.className), 'panel inputs');
      // With it, the page verifies again on its own (inputs changed).
      const runs = Number(await page.getAttribute('html', 'data-runs'));
      await page.fill('#revoked', `  ${REVOKED}\n`);
      await page.waitForFunction((n) => Number(document.documentElement.dataset.runs) > n, runs, { timeout: 120_000 });
      assert.equal((await page.textContent('#verdict-word')).trim(), 'Tampered');
      assert.ok(sealed.length > 0, 'the module that follows rotations was loaded');
      const failures = await page.locator('#failures').innerText();
      assert.match(failures, /key_revoked/);
      assert.match(failures, /\(size 20\) is signed by key ID 5575e202, whose range ends before size 16: the key is revoked from that size/);
      assert.match(await page.locator('#evidence').innerText(), new RegExp(`Revoked keys\\s+${REVOKED.replace(/[+/]/g, '\\$&')}`));
      await page.locator('#revoked').scrollIntoViewIfNeeded();
      await page.screenshot({ path: shotPath('revoked.png'), fullPage: true });
      // Revoked from a size beyond the log's: nothing it signed is affected.
      const again = Number(await page.getAttribute('html', 'data-runs'));
      await page.fill('#revoked', `${KEY}@21`);
      await page.waitForFunction((n) => Number(document.documentElement.dataset.runs) > n, again, { timeout: 120_000 });
      assert.equal((await page.textContent('#verdict-word')).trim(), 'Verified');
      assert.deepEqual(problems, []);
      // A revocation that is not VKEY@SIZE: no verdict, core's reason.
      const bad = Number(await page.getAttribute('html', 'data-runs'));
      await page.fill('#revoked', KEY);
      await page.waitForFunction((n) => Number(document.documentElement.dataset.runs) > n, bad, { timeout: 120_000 });
      assert.equal((await page.textContent('#verdict-word')).trim(), 'Could not verify');
      assert.match(await page.textContent('#verdict-detail'), /revoked ".+": a revoked key is written VKEY@SIZE/);
    } finally {
      await context.close();
    }
  });

  it('the key history says up to which size a revoked key is trusted (FORMAT 15.4 revoked_from)', T, async () => {
    const vector = join(REPO, 'tests/vectors/rotation-revoked-successor-pinned.stele');
    const expect = readFileSync(join(REPO, 'tests/vectors/rotation-revoked-successor-pinned.expect'), 'utf8');
    const keys = [...expect.matchAll(/^key:\s*(\S+)/gm)].map((m) => m[1]);
    const revoked = /^revoked:\s*(\S+)/m.exec(expect)[1];
    const { context, page, problems } = await openPage(env.browser, env.url);
    try {
      await page.fill('#revoked', revoked);
      assert.equal(await verifyFileInPage(page, vector, keys.join('\n')), 'Verified');
      const list = await page.locator('#key-list li').allInnerTexts();
      assert.equal(list.length, 2, list.join('\n'));
      assert.match(list[0], /\ntree sizes 0 to 10 · the genesis key · trusted below tree size 16 only \(revoked from it\)$/, list[0]);
      assert.match(list[1], /\ntree sizes 11 on · named by the stele\.key event at entry 10, signed by the key it replaces · trusted$/, list[1]);
      assert.deepEqual(problems, []);
    } finally {
      await context.close();
    }
  });

  it('the single-file page takes revocations from file://, and says it has no timestamp module', T, async () => {
    const context = await env.browser.newContext();
    const page = await context.newPage();
    const requests = [];
    context.on('request', (r) => requests.push(r.url()));
    try {
      const fileUrl = `file://${join(DIST, 'stele-verify.html')}`;
      await page.goto(fileUrl);
      await page.waitForSelector('html[data-warm]');
      await page.fill('#revoked', REVOKED);
      assert.equal(await verifyFileInPage(page, VECTOR, KEY, { timeout: 120_000 }), 'Tampered');
      assert.match(await page.locator('#failures').innerText(), /key_revoked/);
      // A TSA certificate: a clear refusal, no fetch.
      const runs = Number(await page.getAttribute('html', 'data-runs'));
      await page.fill('#tsa-ca', readFileSync(join(REPO, 'tests/vectors/timestamps/ca.pem'), 'utf8'));
      await page.waitForFunction((n) => Number(document.documentElement.dataset.runs) > n, runs, { timeout: 120_000 });
      assert.equal((await page.textContent('#verdict-word')).trim(), 'Could not verify');
      assert.match(await page.textContent('#verdict-detail'), /this single-file page does not include the timestamp module; check the timestamps with the served page/);
      assert.deepEqual(requests.filter((u) => u !== fileUrl && !u.startsWith('blob:') && !u.startsWith('data:')), []);
    } finally {
      await context.close();
    }
  });

  it('<stele-verifier revoked> and @stele/verifier take revocations too', T, async () => {
    const context = await env.browser.newContext();
    const page = await context.newPage();
    try {
      await page.goto(new URL('element.html', env.url).href);
      await page.waitForFunction(() => customElements.get('stele-verifier'));
      const text = readFileSync(VECTOR, 'utf8');
      const out = await page.evaluate(async ({ text, key, revoked }) => {
        const e = document.createElement('stele-verifier');
        e.keys = key;
        document.body.append(e);
        const plain = await e.verify(new Blob([text]));
        const seen = { plain: plain.verdict };
        // Setting the attribute verifies the same file again; wait for that report.
        const next = new Promise((resolve) => e.addEventListener('stele-report', (ev) => resolve(ev.detail.report), { once: true }));
        e.revoked = [revoked];
        const r = await next;
        seen.attribute = e.getAttribute('revoked');
        seen.revoked = r.verdict;
        seen.codes = r.failures.map((f) => f.code);
        seen.word = e.shadowRoot.querySelector('.word').textContent;
        seen.list = e.shadowRoot.querySelector('.failures').textContent;
        // The library's own option, without the element.
        const { verifyFile } = await import(new URL('src/verifier.js', location.href).href);
        const lib = await verifyFile(new Blob([text]), { keys: [key], revoked: [revoked] });
        seen.lib = [lib.verdict, lib.failures.map((f) => f.code)];
        seen.typeError = await verifyFile(new Blob([text]), { keys: [key], revoked: revoked }).then(() => null, (err) => `${err.name}: ${err.message}`);
        return seen;
      }, { text, key: KEY, revoked: REVOKED });
      assert.equal(out.plain, 'verified', JSON.stringify(out));
      assert.equal(out.attribute, REVOKED);
      assert.equal(out.revoked, 'tampered', JSON.stringify(out));
      assert.deepEqual(out.codes, ['key_revoked']);
      assert.equal(out.word, 'Tampered');
      assert.match(out.list, /key ID 5575e202, whose range ends before size 16/);
      assert.deepEqual(out.lib, ['tampered', ['key_revoked']]);
      assert.equal(out.typeError, 'TypeError: revoked: expected an array of revoked keys, each VKEY@SIZE');
    } finally {
      await context.close();
    }
  });
});
