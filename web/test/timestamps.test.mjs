// RFC 3161 timestamps in the page (issue 15): a TSA certificate given in the
// optional inputs makes the page load the wasm-tsa module lazily and check
// every token. Headless Chromium against web/dist with the real wasm, on the
// vectors of tests/vectors/timestamps/ (made with a real openssl TSA).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO, launch, serve, openPage, verifyFileInPage, shotPath } from './helpers.mjs';

const VEC = join(REPO, 'tests/vectors/timestamps');
const vec = (name) => join(VEC, name);
const KEY = /^key:\s*(\S+)/m.exec(readFileSync(vec('timestamp-valid.expect'), 'utf8'))[1];
const CA = readFileSync(vec('ca.pem'), 'utf8');
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

/** Opens the page, gives the TSA certificate (or none), verifies `file`. */
async function run(file, ca) {
  const { context, page, problems } = await openPage(browser, url);
  const wasmTsa = [];
  page.on('request', (r) => { if (r.url().includes('stele_wasm_tsa')) wasmTsa.push(r.url()); });
  if (ca != null) await page.fill('#tsa-ca', ca);
  const verdict = await verifyFileInPage(page, file, KEY, { timeout: 120_000 });
  return { context, page, verdict, problems, wasmTsa };
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
