// <stele-verifier> detached and attached again (red-team finding 3): a
// verdict belongs to the inputs it was made for. Changed while detached
// (src, keys, revoked), the old verdict is withdrawn at once, and the new
// inputs are verified once the element is attached again. Headless Chromium
// against web/dist with the real wasm and the samples.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { openPage, trustedKey, shotPath, browserAndServer } from './helpers.mjs';

const T = { timeout: 180_000 };
const env = browserAndServer();

describe('<stele-verifier> detached and attached again', { timeout: 600_000 }, () => {
  it('a new src, keys or file given while detached: no old verdict, the new inputs verified on attach', T, async () => {
    const { context, page, problems } = await openPage(env.browser, env.url);
    try {
      const key = trustedKey();
      const out = await page.evaluate(async (key) => {
        await import('./src/stele-verifier.js');
        const host = document.createElement('div');
        host.id = 'element-host';
        document.querySelector('main').prepend(host);
        const v = /** @type {any} */ (document.createElement('stele-verifier'));
        const settled = () => new Promise((resolve) => {
          const done = () => {
            v.removeEventListener('stele-report', done);
            v.removeEventListener('stele-error', done);
            resolve(undefined);
          };
          v.addEventListener('stele-report', done);
          v.addEventListener('stele-error', done);
        });
        const look = () => ({ state: v.state, verdict: v.report?.verdict ?? null, word: v.shadowRoot.querySelector('.word').textContent });
        const seen = {};
        v.keys = key;
        v.src = 'samples/valid.stele';
        let s = settled();
        host.append(v);
        await s;
        seen.first = look();
        // A tampered export while detached.
        v.remove();
        v.src = 'samples/tampered-event-byte-changed.stele';
        seen.detached = look();
        s = settled();
        host.append(v);
        await s;
        seen.reattached = look();
        // Back to the good one, then other keys while detached: no verdict for them yet.
        v.src = 'samples/valid.stele';
        await settled();
        seen.good = look();
        v.remove();
        v.keys = 'wrong.example+00000000+AQ==';
        seen.keysDetached = look();
        v.keys = key; // verified again on attach (the verdict was withdrawn)
        s = settled();
        host.append(v);
        await s;
        seen.keysBack = look();
        // A File given to verify(), then other keys while detached: verified again on attach.
        const text = await (await fetch('samples/tampered-event-byte-changed.stele')).text();
        const report = await v.verify(new Blob([text]));
        seen.blob = { ...look(), same: report === v.report };
        v.remove();
        v.revoked = `${key}@1`;
        seen.revokedDetached = look();
        s = settled();
        host.append(v);
        await s;
        seen.revokedAttached = { ...look(), failures: v.report?.failures.map((f) => f.code) };
        // Attached again with nothing changed: the verdict stays, no new run.
        // The element decides in connectedCallback, during append(), and a run
        // it starts shows 'working' and drops the report before its first
        // await: the look right after append() sees it (waiting would add
        // time, not certainty).
        const before = v.report;
        v.remove();
        host.append(v);
        seen.unchanged = { ...look(), same: v.report === before };
        return seen;
      }, key);
      assert.deepEqual(out.first, { state: 'verified', verdict: 'verified', word: 'Verified' });
      assert.deepEqual(out.detached, { state: 'idle', verdict: null, word: 'No log checked yet' }, 'the old verdict withdrawn when src changes while detached');
      assert.deepEqual(out.reattached, { state: 'tampered', verdict: 'tampered', word: 'Tampered' });
      assert.equal(out.good.verdict, 'verified');
      assert.deepEqual(out.keysDetached, { state: 'idle', verdict: null, word: 'No log checked yet' }, 'withdrawn when keys change while detached');
      assert.deepEqual(out.keysBack, { state: 'verified', verdict: 'verified', word: 'Verified' });
      assert.deepEqual(out.blob, { state: 'tampered', verdict: 'tampered', word: 'Tampered', same: true });
      assert.deepEqual(out.revokedDetached, { state: 'idle', verdict: null, word: 'No log checked yet' });
      assert.equal(out.revokedAttached.state, 'tampered');
      assert.ok(out.revokedAttached.failures.includes('key_revoked'), JSON.stringify(out.revokedAttached));
      assert.deepEqual(out.unchanged, { state: 'tampered', verdict: 'tampered', word: 'Tampered', same: true });
      await page.locator('#element-host').screenshot({ path: shotPath('element-reattached.png') });
      assert.deepEqual(problems, []);
    } finally {
      await context.close();
    }
  });

  it('a bad key or revocation ends the run with stele-error bad_key, not "Verifying…" forever', T, async () => {
    const { context, page, problems } = await openPage(env.browser, env.url);
    try {
      const out = await page.evaluate(async (key) => {
        await import('./src/stele-verifier.js');
        const host = document.createElement('div');
        document.querySelector('main').prepend(host);
        const run = async (attrs, blob) => {
          const v = /** @type {any} */ (document.createElement('stele-verifier'));
          const events = [];
          const settled = new Promise((resolve) => {
            v.addEventListener('stele-report', (e) => resolve(events.push(`report ${e.detail.report.verdict}`)));
            v.addEventListener('stele-error', (e) => resolve(events.push(`error ${e.detail.code}`)));
            setTimeout(() => resolve(events.push('no event in 20 s')), 20_000);
          });
          for (const [k, val] of Object.entries(attrs)) v.setAttribute(k, val);
          host.append(v);
          const returned = blob ? await v.verify(blob).then((r) => `resolved ${r.verdict}`, (e) => `rejected ${e.message}`) : null;
          await settled;
          const res = { events, state: v.state, word: v.shadowRoot.querySelector('.word').textContent, progress: v.shadowRoot.querySelector('progress').hidden ? 'hidden' : 'shown', returned };
          v.remove();
          return res;
        };
        const blob = await (await fetch('samples/valid.stele')).blob();
        return {
          badKeySrc: await run({ keys: 'not-a-key', src: 'samples/valid.stele' }),
          badRevoked: await run({ keys: key, revoked: 'garbage', src: 'samples/valid.stele' }),
          badKeyBlob: await run({ keys: 'not-a-key' }, blob),
          good: await run({ keys: key, src: 'samples/valid.stele' }),
        };
      }, trustedKey());
      const failed = { state: 'error', word: 'Could not verify', progress: 'hidden' };
      assert.deepEqual(out.badKeySrc, { events: ['error bad_key'], ...failed, returned: null });
      assert.deepEqual(out.badRevoked, { events: ['error bad_key'], ...failed, returned: null });
      assert.match(out.badKeyBlob.returned, /^rejected trusted key 1: verifier key/);
      assert.deepEqual({ ...out.badKeyBlob, returned: null }, { events: ['error bad_key'], ...failed, returned: null });
      assert.deepEqual(out.good, { events: ['report verified'], state: 'verified', word: 'Verified', progress: 'hidden', returned: null });
      assert.deepEqual(problems, []);
    } finally {
      await context.close();
    }
  });

  // A page of its own (the verifier page loads the wasm at once): the
  // element's first init() fails, under a CSP without 'wasm-unsafe-eval',
  // or with a `wasm` property (the attribute) naming no file.
  for (const [name, csp, wasm] of [
    ["a CSP without 'wasm-unsafe-eval'", "default-src 'none'; script-src 'self'; connect-src 'self'; worker-src 'self'", null],
    ['a wasm attribute naming no file', "default-src 'none'; script-src 'self' 'wasm-unsafe-eval'; connect-src 'self'; worker-src 'self'", 'no-such.wasm'],
  ]) {
    it(`the wasm cannot load (${name}): stele-error wasm_failed`, T, async () => {
      const context = await env.browser.newContext();
      const page = await context.newPage();
      const url = env.url;
      try {
        const html = '<!doctype html><meta charset="utf-8"><title>t</title><script type="module" src="wasm-fail.js"></script><body></body>';
        const js = `
          import './src/stele-verifier.js';
          const v = document.createElement('stele-verifier');
          window.done = new Promise((resolve) => {
            v.addEventListener('stele-report', (e) => resolve('report ' + e.detail.report.verdict));
            v.addEventListener('stele-error', (e) => resolve('error ' + e.detail.code));
            setTimeout(() => resolve('no event in 20 s'), 20000);
          });
          ${wasm ? `v.wasm = ${JSON.stringify(wasm)}; window.reflected = [v.getAttribute('wasm'), v.wasm];` : ''}
          v.setAttribute('keys', ${JSON.stringify(trustedKey())});
          v.setAttribute('src', 'samples/valid.stele');
          document.body.append(v);
        `;
        await page.route(`${url}wasm-fail.html`, (r) => r.fulfill({ status: 200, contentType: 'text/html', headers: { 'content-security-policy': csp }, body: html }));
        await page.route(`${url}wasm-fail.js`, (r) => r.fulfill({ status: 200, contentType: 'text/javascript', body: js }));
        await page.goto(`${url}wasm-fail.html`);
        await page.waitForFunction(() => 'done' in window);
        assert.equal(await page.evaluate(() => window.done), 'error wasm_failed');
        assert.equal(await page.evaluate(() => document.querySelector('stele-verifier').state), 'error');
        if (wasm) assert.deepEqual(await page.evaluate(() => window.reflected), [wasm, wasm], 'the wasm property is the attribute');
      } finally {
        await context.close();
      }
    });
  }
});
