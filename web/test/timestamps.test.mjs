// RFC 3161 timestamps in the page (issue 15): a TSA certificate given in the
// optional inputs makes the page load the wasm-tsa module lazily and check
// every token. Headless Chromium against web/dist with the real wasm, on the
// vectors of tests/vectors/timestamps/ (made with a real openssl TSA).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO, openPage, verifyFileInPage, shotPath, browserAndServer } from './helpers.mjs';

const VEC = join(REPO, 'tests/vectors/timestamps');
const vec = (name) => join(VEC, name);
const KEY = /^key:\s*(\S+)/m.exec(readFileSync(vec('timestamp-valid.expect'), 'utf8'))[1];
const CA = readFileSync(vec('ca.pem'), 'utf8');
const T = { timeout: 180_000 };

const env = browserAndServer();

/** Opens the page, gives the TSA certificate (or none) and a witness policy (or none), verifies `file`. */
async function run(file, ca, { key = KEY, policy } = {}) {
  const { context, page, problems } = await openPage(env.browser, env.url);
  const wasmTsa = [];
  page.on('request', (r) => { if (r.url().includes('stele_wasm_tsa')) wasmTsa.push(r.url()); });
  if (ca != null) await page.fill('#tsa-ca', ca);
  if (policy != null) await page.fill('#policy', policy);
  const verdict = await verifyFileInPage(page, file, key, { timeout: 120_000 });
  return { context, page, verdict, problems, wasmTsa };
}

// A log whose key was rotated (stele key rotate --overlap 1), with a token on
// a checkpoint of each key: 3 (the genesis key), 4 (both: the overlap), 5
// (the new key alone, cosigned by two witnesses of witness.policy).
const ROTATED = vec('timestamp-rotated.stele');
const ROTATED_EXPECT = readFileSync(vec('timestamp-rotated.expect'), 'utf8');
const GENESIS = /^key:\s*(\S+)/m.exec(ROTATED_EXPECT)[1];
const POLICY = readFileSync(vec(/^policy:\s*(\S+)/m.exec(ROTATED_EXPECT)[1]), 'utf8');
const ATTESTED = (size) => new RegExp(`Checkpoint ${size}\\s+existed by \\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\dZ, attested by CN=Stele Test TSA,O=Stele Tests`);

/** What the page shows of a rotated, anchored export: key history, anchors. */
async function checkRotatedAnchored(page) {
  const summary = await page.locator('#summary').innerText();
  for (const size of [3, 4, 5]) assert.match(summary, ATTESTED(size), summary);
  assert.equal(await page.locator('#keys').isVisible(), true);
  const keys = await page.locator('#key-list li').allInnerTexts();
  assert.equal(keys.length, 2, keys.join('\n'));
  assert.match(keys[0], /^example\.com\/audit\+\w{8}\+\S+\ntree sizes 0 to 3 · the genesis key · trusted$/);
  assert.match(keys[1], /^example\.com\/audit\+\w{8}\+\S+\ntree sizes 4 on · named by the stele\.key event at entry 3, signed by the key it replaces · trusted$/);
  assert.equal(keys[0].split('\n')[0], GENESIS);
  // Each checkpoint line carries its anchor.
  await page.click('#checkpoints-summary');
  const cps = await page.locator('#checkpoint-list li').allInnerTexts();
  for (const size of [3, 4, 5]) {
    assert.ok(cps.some((c) => c.includes(`tree size ${size} · ok · trusted`) && /existed by .+, attested by CN=Stele Test TSA/.test(c)), cps.join('\n'));
  }
}

describe('RFC 3161 timestamps in the page', { timeout: 900_000 }, () => {
  it('with the TSA certificate, each anchored checkpoint says when it existed and who attests it', T, async () => {
    const { context, page, verdict, problems, wasmTsa } = await run(vec('timestamp-valid.stele'), CA);
    try {
      assert.equal(verdict, 'Verified');
      assert.ok(wasmTsa.length > 0, 'the TSA module was loaded');
      const summary = await page.locator('#summary').innerText();
      for (const size of [3, 5]) {
        assert.match(summary, new RegExp(`Checkpoint ${size}\\s+existed by \\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\dZ, attested by CN=Stele Test TSA,O=Stele Tests`), summary);
      }
      await page.screenshot({ path: shotPath('timestamps-verified.png'), fullPage: true });
      assert.deepEqual(problems, []);
    } finally {
      await context.close();
    }
  });

  it('a token by a TSA of another CA is a failure naming its checkpoint', T, async () => {
    const { context, page, verdict } = await run(vec('timestamp-wrong-certificate.stele'), CA);
    try {
      assert.equal(verdict, 'Tampered');
      const failures = await page.locator('#failures').innerText();
      assert.match(failures, /timestamp_untrusted/);
      assert.match(failures, /\(size 5\): timestamp token at line 26/);
      await page.screenshot({ path: shotPath('timestamps-untrusted.png'), fullPage: true });
    } finally {
      await context.close();
    }
  });

  it('a rotated, anchored export is Verified from the genesis key alone, with its key history and every token attested', T, async () => {
    const { context, page, verdict, problems, wasmTsa } = await run(ROTATED, CA, { key: GENESIS });
    try {
      assert.equal(verdict, 'Verified', await page.textContent('#verdict-detail'));
      assert.ok(wasmTsa.length > 0, 'the TSA module was loaded');
      await checkRotatedAnchored(page);
      assert.equal(await page.locator('#failures').isVisible(), false);
      await page.screenshot({ path: shotPath('timestamps-rotated.png'), fullPage: true });
      assert.deepEqual(problems, []);
    } finally {
      await context.close();
    }
  });

  it('a TSA certificate and a witness policy together: one verification checks the tokens and the quorum', T, async () => {
    const { context, page, verdict, problems, wasmTsa } = await run(ROTATED, CA, { key: GENESIS, policy: POLICY });
    try {
      assert.equal(verdict, 'Verified', await page.textContent('#verdict-detail'));
      assert.ok(wasmTsa.length > 0, 'the TSA module was loaded');
      assert.match(await page.textContent('#witnessing'), /^Witness quorum two-of-three met for the checkpoint at size 5 ✓ \(cosigned by w1, w2\)$/);
      await checkRotatedAnchored(page);
      await page.screenshot({ path: shotPath('timestamps-witnessed.png'), fullPage: true });
      assert.deepEqual(problems, []);
      // All three witnesses required: the quorum is not met, the tokens still check out.
      const runs = Number(await page.getAttribute('html', 'data-runs'));
      await page.fill('#policy', POLICY.replace('group two-of-three 2 ', 'group two-of-three 3 '));
      await page.waitForFunction((n) => Number(document.documentElement.dataset.runs) > n, runs, { timeout: 120_000 });
      assert.equal((await page.textContent('#verdict-word')).trim(), 'Tampered');
      assert.match(await page.locator('#failures').innerText(), /quorum_not_met/);
      assert.match(await page.textContent('#witnessing'), /Witness quorum two-of-three not met/);
      const summary = await page.locator('#summary').innerText();
      for (const size of [3, 4, 5]) assert.match(summary, ATTESTED(size), summary);
    } finally {
      await context.close();
    }
  });

  it('without a TSA certificate the module is not loaded and the tokens are unchecked', T, async () => {
    const { context, page, verdict, wasmTsa } = await run(vec('timestamp-wrong-certificate.stele'), null);
    try {
      assert.equal(verdict, 'Verified');
      assert.deepEqual(wasmTsa, []);
      assert.match(await page.locator('#notices').innerText(), /timestamp_unchecked/);
    } finally {
      await context.close();
    }
  });
});
