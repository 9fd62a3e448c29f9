#!/usr/bin/env node
// What the evidence SHA-256 costs in the page (issue 19): the time from the
// verdict to the file's SHA-256 shown in "What was checked" (WebCrypto up to
// 256 MB), and the speed of the streaming JS SHA-256 used above that.
//   node web/bench/sha256.mjs [FILE] [--key-file target/samples/key.txt]
// Needs web/dist (node web/build.mjs) and Chromium (CHROMIUM or /usr/bin/chromium).
import { readFileSync, statSync } from 'node:fs';
import { launch, serve, largeSample, trustedKey } from '../test/helpers.mjs';

const args = process.argv.slice(2);
const kf = args.indexOf('--key-file');
const key = kf >= 0 ? readFileSync(args[kf + 1], 'utf8').split('\n').map((l) => l.trim()).find((l) => l && !l.startsWith('#')) : trustedKey();
const file = args.find((a, i) => !a.startsWith('--') && args[i - 1] !== '--key-file') || largeSample().p;
const browser = await launch();
const { server, url } = await serve();
try {
  const page = await browser.newPage({ viewport: { width: 1366, height: 768 } });
  await page.goto(url);
  await page.waitForSelector('html[data-warm]');
  await page.fill('#key', key);
  const t0 = Date.now();
  await page.setInputFiles('#file', file);
  await page.waitForFunction(() => document.documentElement.dataset.runs, null, { timeout: 600_000 });
  const t1 = Date.now();
  await page.waitForFunction(() => /[0-9a-f]{64}/.test(document.getElementById('evidence-list').textContent), null, { timeout: 600_000 });
  const t2 = Date.now();
  const js = await page.evaluate(async () => {
    const { Sha256 } = await import('./src/evidence.js');
    const b = new Uint8Array(64 << 20);
    const t = performance.now();
    const h = new Sha256();
    h.update(b);
    h.hex();
    return 64 * 1.048576 / ((performance.now() - t) / 1000);
  });
  const mb = statSync(file).size / 1e6;
  console.log(`${mb.toFixed(0)} MB: verdict in ${((t1 - t0) / 1000).toFixed(2)} s; SHA-256 shown ${((t2 - t1) / 1000).toFixed(2)} s after the verdict (WebCrypto${mb > 256 ? ' not used: streaming JS' : ''}); streaming JS SHA-256 in Chromium: ${js.toFixed(0)} MB/s`);
} finally {
  await browser.close();
  server.close();
}
