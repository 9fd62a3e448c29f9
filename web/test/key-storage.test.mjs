// What the page remembers of the Trusted key field (localStorage
// `stele.trustedKey`), red-team finding 5: only verifier keys that parse;
// never an age secret key pasted there by mistake (it was stored and
// refilled on every visit), nor any other invalid text. A secret key stored
// by an older page is removed on load. Headless Chromium against web/dist.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { openPage, trustedKey, browserAndServer } from './helpers.mjs';

const T = { timeout: 120_000 };
const env = browserAndServer();
const SECRET = 'AGE-SECRET-KEY-1QYQSZQGPQYQSZQGPQYQSZQGPQYQSZQGPQYQSZQGPQYQSZQGPQYQSZ0SSKKK';

const stored = (page) => page.evaluate(() => localStorage.getItem('stele.trustedKey'));

describe('the trusted key remembered in this browser', { timeout: 600_000 }, () => {
  it('only a verifier key that parses; never an age secret key or other text', T, async () => {
    const { context, page, problems } = await openPage(env.browser, env.url);
    try {
      await page.fill('#key', trustedKey());
      assert.equal(await stored(page), trustedKey());
      await page.fill('#key', SECRET);
      assert.equal(await stored(page), null, 'an age secret key was stored');
      await page.fill('#key', `  ${SECRET.toLowerCase()} `);
      assert.equal(await stored(page), null);
      await page.fill('#key', 'not a key at all');
      assert.equal(await stored(page), null, 'invalid text was stored');
      await page.fill('#key', trustedKey());
      assert.equal(await stored(page), trustedKey());
      await page.reload();
      await page.waitForSelector('html[data-warm]');
      assert.equal(await page.inputValue('#key'), trustedKey());
      assert.equal(await page.isVisible('#key-saved'), true);
      assert.deepEqual(problems, []);
    } finally {
      await context.close();
    }
  });

  it('a secret key or invalid text stored by an older page is not refilled, and is removed', T, async () => {
    const { context, page, problems } = await openPage(env.browser, env.url);
    try {
      for (const [old, field] of [[SECRET, ''], [`x ${SECRET}`, ''], ['garbage', 'garbage']]) {
        await page.evaluate((v) => localStorage.setItem('stele.trustedKey', v), old);
        await page.reload();
        await page.waitForSelector('html[data-warm]');
        assert.equal(await page.inputValue('#key'), field, old);
        assert.equal(await stored(page), null, `${old}: still stored`);
        assert.equal(await page.isVisible('#key-saved'), false);
      }
      assert.deepEqual(problems, []);
    } finally {
      await context.close();
    }
  });
});
