// Witness policies in the page (issue 14): the optional "Witness policy"
// input, headless Chromium against web/dist with the real wasm, on the
// witnessed exports of tests/vectors/witness/ (their .expect files), and the
// @stele/verifier `policy` option in Node.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO, openPage, verifyFileInPage, shotPath, browserAndServer } from './helpers.mjs';

const VEC = join(REPO, 'tests/vectors/witness');
const vec = (name) => join(VEC, name);
const KEY = /^key:\s*(\S+)/m.exec(readFileSync(vec('quorum-met.expect'), 'utf8'))[1];
const POLICY = readFileSync(vec('2-of-3.policy'), 'utf8');
const T = { timeout: 180_000 };

const env = browserAndServer();

async function run(file, policy) {
  const { context, page, problems } = await openPage(env.browser, env.url);
  if (policy != null) await page.fill('#policy', policy);
  const verdict = await verifyFileInPage(page, file, KEY, { timeout: 120_000 });
  return { context, page, verdict, problems };
}

describe('witness policies in the page', { timeout: 900_000 }, () => {
  it('a witnessed export verifies and the page says who cosigned and that the quorum is met', T, async () => {
    const { context, page, verdict, problems } = await run(vec('quorum-met.stele'), POLICY);
    try {
      assert.equal(verdict, 'Verified');
      const line = (await page.textContent('#witnessing')).trim();
      assert.equal(line, 'Witness quorum two-of-three met for the checkpoint at size 20 ✓ (cosigned by w1, w2)');
      assert.equal(await page.isVisible('#witnessing'), true);
      await page.click('#checkpoints summary');
      const cps = await page.locator('#checkpoint-list li').allTextContents();
      assert.match(cps.at(-1), /tree size 20 · ok · trusted · cosigned by w1, w2 ·/);
      assert.match(cps[0], /cosigned by none/);
      await page.screenshot({ path: shotPath('witness-met.png'), fullPage: true });
      assert.deepEqual(problems, []);
    } finally {
      await context.close();
    }
  });

  it('a split view fails with quorum_not_met', T, async () => {
    const { context, page, verdict, problems } = await run(vec('split-view.stele'), POLICY);
    try {
      assert.equal(verdict, 'Tampered');
      assert.match(await page.textContent('#witnessing'), /✕ Witness quorum two-of-three not met for the checkpoint at size 20 \(cosigned by w3\)/);
      assert.match(await page.textContent('#failures'), /quorum_not_met|witness quorum two-of-three/);
      // The only failure is the quorum: the banner says so, not "does not match what was signed".
      const detail = (await page.textContent('#verdict-detail')).trim();
      assert.equal(detail, "The entries match what the log signed, but not enough of the witness policy's witnesses cosigned the checkpoint (quorum two-of-three not met: only w3 cosigned it). Nothing shows that everyone else was shown this same history: it may be a split view.");
      await page.screenshot({ path: shotPath('witness-split-view.png'), fullPage: true });
      assert.deepEqual(problems, []);
    } finally {
      await context.close();
    }
  });

  it('a bad cosignature beside a met quorum keeps the mismatch wording', T, async () => {
    const { context, page, verdict } = await run(vec('bad-cosignature.stele'), POLICY);
    try {
      assert.equal(verdict, 'Tampered');
      assert.match(await page.textContent('#verdict-detail'), /^The log does not match what was signed: 1 failure found\.$/);
    } finally {
      await context.close();
    }
  });

  it('without a policy the same export verifies and nothing about witnesses is shown', T, async () => {
    const { context, page, verdict } = await run(vec('split-view.stele'), null);
    try {
      assert.equal(verdict, 'Verified');
      assert.equal(await page.isVisible('#witnessing'), false);
    } finally {
      await context.close();
    }
  });

  it('changing the policy re-verifies', T, async () => {
    const { context, page, verdict } = await run(vec('quorum-unmet.stele'), POLICY);
    try {
      assert.equal(verdict, 'Tampered');
      const before = Number(await page.getAttribute('html', 'data-runs'));
      await page.fill('#policy', POLICY.replace('group two-of-three 2', 'group two-of-three 1'));
      await page.waitForFunction((n) => Number(document.documentElement.dataset.runs || 0) > n, before, { timeout: 120_000 });
      assert.equal((await page.textContent('#verdict-word')).trim(), 'Verified');
    } finally {
      await context.close();
    }
  });
});

describe('@stele/verifier: the incremental Verifier with a policy', { timeout: 600_000 }, () => {
  /** Runs Verifier in the page on a vector file: what it reports. */
  async function inPage(page, name, policy) {
    const bytes = [...readFileSync(vec(name))];
    return page.evaluate(async ({ bytes, key, policy }) => {
      const { init, Verifier } = await import('./src/verifier.js');
      await init();
      let before = null;
      try {
        new Verifier({ keys: [key], policy }).free();
      } catch (e) {
        before = String(e.message);
      }
      const v = await Verifier.create({ keys: [key], policy });
      const data = new Uint8Array(bytes);
      // In two pieces, as a stream would come.
      v.push(data.subarray(0, 1000));
      let rows = v.takeEntries().length;
      v.push(data.subarray(1000));
      rows += v.takeEntries().length;
      const r = v.finish();
      let again = null;
      try {
        v.push(data);
      } catch (e) {
        again = String(e.message);
      }
      return { before, rows, verdict: r.verdict, codes: r.failures.map((f) => f.code), quorum: r.quorum ?? null, witnesses: r.checkpoints.map((c) => c.witnesses ?? null), again };
    }, { bytes, key: KEY, policy });
  }

  it('takes a policy: the quorum met, not met, and no policy at all', T, async () => {
    const { context, page, problems } = await openPage(env.browser, env.url);
    try {
      const met = await inPage(page, 'quorum-met.stele', POLICY);
      assert.match(met.before ?? '', /Verifier\.create/, 'the constructor asks for create() until the module is loaded');
      assert.equal(met.verdict, 'verified');
      assert.deepEqual(met.quorum, { name: 'two-of-three', met: true, size: 20, cosigned_by: ['w1', 'w2'] });
      assert.deepEqual(met.witnesses.at(-1), ['w1', 'w2']);
      assert.equal(met.rows, 20, 'the rows still come from the plain verifier');
      assert.equal(met.again, 'verifier already finished');

      const split = await inPage(page, 'split-view.stele', POLICY);
      assert.equal(split.before, null, 'once loaded, the constructor takes a policy');
      assert.equal(split.verdict, 'tampered');
      assert.deepEqual(split.codes, ['quorum_not_met']);
      assert.deepEqual(split.quorum, { name: 'two-of-three', met: false, size: 20, cosigned_by: ['w3'] });

      const plain = await inPage(page, 'split-view.stele', undefined);
      assert.equal(plain.verdict, 'verified');
      assert.equal(plain.quorum, null);
      assert.deepEqual(problems, []);
    } finally {
      await context.close();
    }
  });

  it('a bad policy is refused when the Verifier is made, naming the line', T, async () => {
    const { context, page } = await openPage(env.browser, env.url);
    try {
      const msg = await page.evaluate(async ({ key }) => {
        const { Verifier } = await import('./src/verifier.js');
        try {
          await Verifier.create({ keys: [key], policy: 'witness w1\nquorum w1\n' });
          return null;
        } catch (e) {
          return String(e.message ?? e);
        }
      }, { key: KEY });
      assert.match(msg ?? 'no error', /line 1/);
    } finally {
      await context.close();
    }
  });
});
