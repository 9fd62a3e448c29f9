// Witness policies in the page (issue 14): the optional "Witness policy"
// input, headless Chromium against web/dist with the real wasm, on the
// witnessed exports of tests/vectors/witness/ (their .expect files), and the
// @stele/verifier `policy` option in Node.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO, launch, serve, openPage, verifyFileInPage, shotPath } from './helpers.mjs';

const VEC = join(REPO, 'tests/vectors/witness');
const vec = (name) => join(VEC, name);
const KEY = /^key:\s*(\S+)/m.exec(readFileSync(vec('quorum-met.expect'), 'utf8'))[1];
const POLICY = readFileSync(vec('2-of-3.policy'), 'utf8');
const T = { timeout: 180_000 };

let browser;
let server;
let url;

before(async () => {
  browser = await launch();
  ({ server, url } = await serve());
});

after(async () => {
  await browser?.close();
  await new Promise((r) => server?.close(r));
});

async function run(file, policy) {
  const { context, page, problems } = await openPage(browser, url);
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
      await page.screenshot({ path: shotPath('witness-split-view.png'), fullPage: true });
      assert.deepEqual(problems, []);
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
