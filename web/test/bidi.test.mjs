// Text-reversing characters in a log's origin (its key's name), red-team
// finding 8: shown as visible escapes (\u202E) in the key hint under the
// Trusted key field and in live mode's verdict (its Verified sentence and a
// Failed detail), as the Summary already shows them. A name like
// "\u202Etidua/moc.elpmaxe" otherwise reads as "example.com/audit".
// Headless Chromium against web/dist; live mode against `stele serve`.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO, DIST, openPage, wrongKey, shotPath, browserAndServer } from './helpers.mjs';

const T = { timeout: 180_000 };
const RLO = '\u202E';
const ORIGIN = `${RLO}tidua/moc.elpmaxe`;
const BIN = process.env.STELE_BIN || [join(REPO, 'target/release/stele'), join(REPO, 'target/debug/stele')].find((p) => existsSync(p));
const env = browserAndServer();
let tmp;

before(() => {
  tmp = mkdtempSync(join(tmpdir(), 'stele-bidi-'));
});
after(() => {
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

describe('text-reversing characters in a key name or origin', { timeout: 600_000 }, () => {
  it('the key hint shows them as escapes', T, async () => {
    const { context, page, problems } = await openPage(env.browser, env.url);
    try {
      await page.fill('#key', wrongKey(ORIGIN));
      await page.waitForFunction(() => /Key “/.test(document.getElementById('key-info').textContent));
      const hint = await page.textContent('#key-info');
      assert.ok(!hint.includes(RLO), `raw U+202E in the key hint: ${JSON.stringify(hint)}`);
      assert.match(hint, /Key “\\u202Etidua\/moc\.elpmaxe”, key ID [0-9a-f]{8}/);
      assert.ok(!(await page.textContent('#key-status')).includes(RLO));
      await page.locator('#key-info').screenshot({ path: shotPath('bidi-key-hint.png') });
      assert.deepEqual(problems, []);
    } finally {
      await context.close();
    }
  });

  it('live mode: the Verified sentence and a Failed detail show them as escapes', T, async () => {
    assert.ok(BIN, 'no stele binary: cargo build --release (or set STELE_BIN)');
    const logDir = join(tmp, 'log');
    const vkey = execFileSync(BIN, ['init', logDir, '--origin', ORIGIN], { encoding: 'utf8' }).trim().split('\n').pop().trim();
    execFileSync(BIN, ['append', logDir], { input: `${JSON.stringify({ type: 'audit', actor: 'alice', action: 'read' })}\n` });
    execFileSync(BIN, ['checkpoint', logDir]);
    const proc = spawn(BIN, ['serve', logDir, '--web', DIST, '--listen', '127.0.0.1:0'], { stdio: ['ignore', 'pipe', 'pipe'] });
    try {
      const base = await new Promise((resolve, reject) => {
        let out = '';
        proc.stdout.on('data', (d) => {
          out += d;
          const m = /listening on (http:\/\/[\d.:]+)/.exec(out);
          if (m) resolve(`${m[1]}/`);
        });
        proc.on('exit', (c) => reject(new Error(`stele serve exited ${c}`)));
      });
      const { context, page, problems } = await openPage(env.browser, `${base}?live`);
      try {
        await page.waitForSelector('#live-panel');
        const check = async (key) => {
          await page.fill('#live-key', key);
          await page.fill('#live-index', '1');
          await page.selectOption('#live-every', '0');
          await page.click('#live-panel button[type=submit]');
          await page.waitForFunction(() => !/Checking/.test(document.querySelector('#live-verdict .verdict-word').textContent));
          return { word: (await page.textContent('#live-verdict .verdict-word')).trim(), text: await page.textContent('#live-verdict') };
        };
        const ok = await check(vkey);
        assert.equal(ok.word, 'Verified', ok.text);
        assert.ok(!ok.text.includes(RLO), `raw U+202E in live mode's verdict: ${JSON.stringify(ok.text)}`);
        assert.ok(ok.text.includes('\\u202Etidua/moc.elpmaxe'), ok.text);
        await page.locator('#live-verdict').screenshot({ path: shotPath('bidi-live-verified.png') });
        // Another key of the same name: the check fails; its detail names the origin.
        const bad = await check(wrongKey(ORIGIN));
        assert.equal(bad.word, 'Failed', bad.text);
        assert.ok(!bad.text.includes(RLO), `raw U+202E in live mode's Failed detail: ${JSON.stringify(bad.text)}`);
        assert.deepEqual(problems.filter((p) => !/Failed to load resource/.test(p)), []);
      } finally {
        await context.close();
      }
    } finally {
      proc.kill('SIGTERM');
    }
  });
});
