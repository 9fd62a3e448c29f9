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
});
