// "Copy / Download latest signed checkpoint" (to pin it as the earlier
// checkpoint next time) is offered only for a verified or partial result
// that does not fork from, roll back or change the origin of the earlier
// checkpoint given (red-team finding 4): after "Not consistent with your
// checkpoint" it offered to pin the rolled-back or forked history. Headless
// Chromium against web/dist, on the shared vectors.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO, openPage, verifyFileInPage, shotPath, browserAndServer } from './helpers.mjs';

const VEC = join(REPO, 'tests/vectors');
const KEY = /^key:\s*(\S+)/m.exec(readFileSync(join(VEC, 'rollback.expect'), 'utf8'))[1];
const T = { timeout: 120_000 };
const env = browserAndServer();

/** Verifies vector `name` against its .trusted checkpoint; the verdict, the consistency line and whether the buttons show. */
async function check(name) {
  const { context, page, problems } = await openPage(env.browser, env.url);
  try {
    await page.fill('#checkpoint', readFileSync(join(VEC, `${name}.trusted`), 'utf8'));
    const verdict = await verifyFileInPage(page, join(VEC, `${name}.stele`), KEY);
    // The page says when it has decided (after reading the checkpoint's note back from the file).
    await page.waitForSelector('html[data-cp-offer]');
    assert.equal(await page.getAttribute('html', 'data-cp-offer'), (await page.locator('#cp-copy').isVisible()) ? 'shown' : 'none');
    const out = {
      verdict,
      consistency: (await page.textContent('#consistency')).trim(),
      copy: await page.locator('#cp-copy').isVisible(),
      download: await page.locator('#cp-download').isVisible(),
    };
    if (name === 'rollback') await page.locator('section.result').screenshot({ path: shotPath('checkpoint-offer-rollback.png') });
    assert.deepEqual(problems, []);
    return out;
  } finally {
    await context.close();
  }
}

describe('the latest signed checkpoint offered to pin', { timeout: 600_000 }, () => {
  it('not after a rollback or a fork against the earlier checkpoint', T, async () => {
    for (const name of ['rollback', 'fork-against-trusted']) {
      const r = await check(name);
      assert.equal(r.verdict, 'Tampered', name);
      assert.match(r.consistency, /Not consistent with your checkpoint/, name);
      assert.deepEqual({ copy: r.copy, download: r.download }, { copy: false, download: false }, `${name}: offered to pin the history it rejects`);
    }
  });

  it('after a verified result that extends it', T, async () => {
    const r = await check('valid-with-trusted');
    assert.equal(r.verdict, 'Verified');
    assert.match(r.consistency, /^Consistent with your checkpoint/);
    assert.deepEqual({ copy: r.copy, download: r.download }, { copy: true, download: true });
  });
});
