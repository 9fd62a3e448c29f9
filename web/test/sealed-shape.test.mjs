// A sealed export verified WITHOUT an auditor key, on the paths where the
// module that checks sealed values reads it (red-team finding 1): a log that
// rotated its key (the notice rotation_unchecked sends the file to it),
// revoked keys, a witness policy, a TSA certificate. Core's report has the
// sealed values' counts there; `sealed` was that counts object, the page
// iterated it ("Could not verify: object is not iterable") and an attacker
// could hide which entry was tampered by appending one stele.key line. Now
// the page gives the CLI's verdict and names the entry, and verifyFile's
// report has one shape on every path: `sealed` a list, the counts in
// `sealed_counts`. Headless Chromium against web/dist with the real wasm, on
// tests/vectors/sealed/sealed-valid.stele.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO, openPage, verifyFileInPage, shotPath, browserAndServer } from './helpers.mjs';

const VEC = join(REPO, 'tests/vectors/sealed');
const KEY = /^key:\s*(\S+)/m.exec(readFileSync(join(VEC, 'sealed-valid.expect'), 'utf8'))[1];
const VALID = join(VEC, 'sealed-valid.stele');
const AUDITOR = readFileSync(join(VEC, 'auditor.key'), 'utf8');
const TSA_CA = join(REPO, 'tests/vectors/timestamps/ca.pem');
const POLICY = `log ${KEY}\nquorum none\n`;
const BIN = process.env.STELE_BIN || [join(REPO, 'target/debug/stele'), join(REPO, 'target/release/stele')].find((p) => existsSync(p));
const T = { timeout: 180_000 };

const env = browserAndServer();
let tmp;
let attack; // entry 2 changed, then one unsigned stele.key line appended
let policyFile;

before(() => {
  tmp = mkdtempSync(join(tmpdir(), 'stele-sealed-shape-'));
  const text = readFileSync(VALID, 'utf8');
  assert.ok(text.includes('"action":"read"'));
  const zeros = '0'.repeat(64);
  attack = join(tmp, 'attack.stele');
  writeFileSync(attack, `${text.replace('"action":"read"', '"action":"wipe"')}{"event":{"key":"${KEY}","type":"stele.key"},"prev":"${zeros}","seq":4,"ts":"2026-12-01T14:24:09.000000Z"}\n`);
  policyFile = join(tmp, 'witness.policy');
  writeFileSync(policyFile, POLICY);
});

after(() => {
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

/** The CLI's report (stele verify --json) for `file` with extra arguments. */
function cli(file, args = []) {
  assert.ok(BIN, 'no stele binary: cargo build (or set STELE_BIN)');
  const r = spawnSync(BIN, ['verify', file, '--key', KEY, '--json', ...args], { encoding: 'utf8' });
  assert.ok(r.stdout, `stele verify printed nothing: ${r.stderr}`);
  return JSON.parse(r.stdout);
}

/** The page's verdict for `file` with no auditor key and the optional inputs `fill` ({selector: text}). */
async function inPage(file, fill = {}) {
  const { context, page, problems } = await openPage(env.browser, env.url);
  for (const [sel, text] of Object.entries(fill)) await page.fill(sel, text);
  const verdict = await verifyFileInPage(page, file, KEY, { timeout: 120_000 });
  const detail = (await page.textContent('#verdict-detail')).trim();
  const failures = await page.locator('#failure-list').textContent();
  return { context, page, problems, verdict, detail, failures };
}

const WORD = { verified: 'Verified', tampered: 'Tampered', partial: 'Partially verified' };

describe('a sealed export without an auditor key, read by the sealed module', { timeout: 900_000 }, () => {
  it('the attack (a tampered entry, then one stele.key line): the page says Tampered at the CLI\'s entry', T, async () => {
    const want = cli(attack);
    assert.equal(want.verdict, 'tampered');
    const root = want.failures.find((f) => f.code === 'prev_mismatch');
    assert.equal(root?.entry, 3, JSON.stringify(want.failures));
    const { context, page, problems, verdict, detail, failures } = await inPage(attack);
    try {
      assert.equal(verdict, 'Tampered', detail);
      assert.doesNotMatch(detail, /not iterable/);
      assert.match(failures, /Entry 3 · line \d+ · prev_mismatch/);
      for (const f of want.failures) assert.ok(failures.includes(f.code), `the page lists ${f.code}:\n${failures}`);
      await page.screenshot({ path: shotPath('sealed-shape-attack.png'), fullPage: true });
      assert.deepEqual(problems, []);
    } finally {
      await context.close();
    }
  });

  for (const [name, fill, args] of [
    ['revoked keys', { '#revoked': `${KEY}@100` }, ['--revoked', `${KEY}@100`]],
    ['a witness policy', { '#policy': POLICY }, () => ['--policy', policyFile]],
    ['a TSA certificate', { '#tsa-ca': readFileSync(TSA_CA, 'utf8') }, ['--tsa-ca', TSA_CA]],
  ]) {
    it(`with ${name}: the CLI's verdict, not an error`, T, async () => {
      const want = cli(VALID, typeof args === 'function' ? args() : args);
      const { context, problems, verdict, detail } = await inPage(VALID, fill);
      try {
        assert.equal(verdict, WORD[want.verdict], detail);
        assert.deepEqual(problems, []);
      } finally {
        await context.close();
      }
    });
  }

  it('verifyFile: `sealed` is a list and the counts are `sealed_counts`, on every path', T, async () => {
    const { context, page, problems } = await openPage(env.browser, env.url);
    try {
      const out = await page.evaluate(async ({ valid, attackText, key, policy, ca }) => {
        const { verifyFile } = await import('./src/verifier.js');
        const file = new Blob([valid]);
        const shape = (r) => ({ verdict: r.verdict, list: Array.isArray(r.sealed), opened: r.sealed?.filter?.((v) => v.state !== 'sealed').length ?? null, counts: r.sealed_counts ?? null });
        return {
          plain: shape(await verifyFile(file, { keys: [key] })),
          rotation: shape(await verifyFile(new Blob([attackText]), { keys: [key] })),
          revoked: shape(await verifyFile(file, { keys: [key], revoked: [`${key}@100`] })),
          policy: shape(await verifyFile(file, { keys: [key], policy })),
          tsa: shape(await verifyFile(file, { keys: [key], tsaCa: ca })),
        };
      }, { valid: readFileSync(VALID, 'utf8'), attackText: readFileSync(attack, 'utf8'), key: KEY, policy: POLICY, ca: readFileSync(TSA_CA, 'utf8') });
      const counts = { values: 5, opened: 0, sealed: 5, forgotten: 0, redacted: 0 };
      // The plain verifier (no sealed code) reports neither.
      assert.deepEqual(out.plain, { verdict: 'verified', list: false, opened: null, counts: null });
      for (const k of ['rotation', 'revoked', 'policy', 'tsa']) {
        assert.deepEqual({ ...out[k], verdict: undefined }, { verdict: undefined, list: true, opened: 0, counts }, `${k}: ${JSON.stringify(out[k])}`);
      }
      assert.equal(out.rotation.verdict, 'tampered');
      assert.deepEqual(problems, []);
    } finally {
      await context.close();
    }
  });
});

describe('opened values leave with the verdict (red-team finding 9)', { timeout: 600_000 }, () => {
  it('the trusted key made invalid (no new run): no opened value in the cells, the detail or a search', T, async () => {
    const { context, page, problems } = await openPage(env.browser, env.url);
    try {
      await page.fill('#auditor-key', AUDITOR);
      assert.equal(await verifyFileInPage(page, VALID, KEY, { timeout: 120_000 }), 'Verified');
      await page.waitForFunction(() => document.documentElement.dataset.sealedOpened === '5');
      const opened = () => page.$$eval('.vt-row:not([hidden]) .sealed-value', (vs) => vs.map((v) => v.textContent));
      const values = await opened();
      assert.ok(values.length > 0, 'opened values in the cells');
      const secret = values[0].replace(/^"|"$/g, '');
      // A row with an opened value expanded: its notes show the value.
      const row = page.locator('.vt-row:not([hidden])', { has: page.locator('.sealed-value') }).first();
      await row.click();
      await page.waitForFunction(() => [...document.querySelectorAll('.vt-detail-notes li')].some((l) => /opened ✓/.test(l.textContent)));
      const notes = () => page.$$eval('.vt-detail-notes li', (ls) => ls.map((l) => l.textContent).join('\n'));
      assert.ok((await notes()).includes(secret));
      // The trusted key made invalid: the verdict goes, no run starts.
      await page.fill('#key', 'not a key');
      await page.waitForFunction(() => document.getElementById('verdict-word').textContent.trim() === 'Inputs changed');
      await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(() => r(undefined)))));
      assert.deepEqual(await opened(), [], 'opened values still in the cells');
      assert.ok(!(await notes()).includes(secret), 'the opened value still in the detail');
      assert.ok(!(await page.locator('#vt-scroll').textContent()).includes(secret));
      // The auditor key removed too: still nothing, and a search for the value finds no row.
      await page.fill('#auditor-key', '');
      await page.fill('#f-text', secret);
      await page.waitForFunction(() => /^0 of /.test(document.getElementById('entries-count').textContent));
      assert.deepEqual(await opened(), []);
      await page.locator('section.result').screenshot({ path: shotPath('sealed-inputs-changed.png') });
      await page.locator('#entries-panel').screenshot({ path: shotPath('sealed-inputs-changed-entries.png') });
      assert.deepEqual(problems, []);
    } finally {
      await context.close();
    }
  });
});

describe('a string that reads as a placeholder once decoded (red-team finding 7)', { timeout: 600_000 }, () => {
  // A log with a real sealed field (/actor/email) and strings whose text is a
  // placeholder's JSON: `target` of entry 2, `actor` of entry 3 (entry 1 is
  // the auditor's addition, a stele.auditor event).
  let dir;
  let file;
  let vkey;
  let identity;
  const PH = JSON.stringify({ 'stele.sealed': { commitment: 'a'.repeat(64), key: 'b'.repeat(32) } });
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'stele-fake-placeholder-'));
    const keyFile = join(dir, 'auditor.key');
    execFileSync('age-keygen', ['-o', keyFile], { stdio: 'pipe' });
    identity = readFileSync(keyFile, 'utf8');
    const recipient = execFileSync('age-keygen', ['-y', keyFile], { encoding: 'utf8' }).trim();
    const log = join(dir, 'log');
    vkey = execFileSync(BIN, ['init', log, '--origin', 'example.com/fake-placeholder', '--seal', '/actor/email', '--subject', '/actor/id'], { encoding: 'utf8' }).trim().split('\n').pop().trim();
    execFileSync(BIN, ['auditor', 'add', log, recipient], { stdio: 'pipe' });
    const events = [
      { action: 'login', actor: { email: 'x@example.com', id: 'u1' }, target: PH, outcome: 'ok' },
      { action: 'note', actor: PH, target: 'doc' },
    ];
    execFileSync(BIN, ['append', log], { input: `${events.map((e) => JSON.stringify(e)).join('\n')}\n`, stdio: ['pipe', 'pipe', 'pipe'] });
    file = join(dir, 'fake.stele');
    execFileSync(BIN, ['export', log, '-o', file, '--reveal-to', recipient], { stdio: 'pipe' });
  });
  after(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  for (const withKey of [true, false]) {
    it(`is shown as the string it is, never as a sealed value${withKey ? ', with a key that opens every value' : ', without a key'}`, T, async () => {
      const { context, page, problems } = await openPage(env.browser, env.url);
      try {
        if (withKey) await page.fill('#auditor-key', identity);
        assert.equal(await verifyFileInPage(page, file, vkey, { timeout: 120_000 }), 'Verified');
        if (withKey) await page.waitForFunction(() => document.documentElement.dataset.sealedOpened === '1');
        const rows = await page.$$eval('.vt-row:not([hidden])', (rs) => Object.fromEntries(rs.map((r) => [r.children[0].textContent.replace(/\D/g, ''), [...r.children].slice(2).map((c) => ({
          text: c.textContent,
          badges: [...c.querySelectorAll('.sealed-badge')].map((b) => b.textContent),
          opened: c.querySelectorAll('.sealed-mark').length,
        }))])));
        const [actor1, , target1] = rows['2'];
        const [actor2] = rows['3'];
        // The real placeholder: opened with the key, "sealed" without.
        assert.deepEqual(withKey ? [actor1.opened, actor1.badges] : [actor1.opened, actor1.badges], withKey ? [1, []] : [0, ['sealed']], JSON.stringify(actor1));
        // The strings: their text, no badge, no mark.
        for (const c of [target1, actor2]) {
          assert.deepEqual(c.badges, [], JSON.stringify(c));
          assert.equal(c.opened, 0);
          assert.match(c.text, /stele\.sealed/, JSON.stringify(c));
        }
        if (withKey) await page.locator('#entries-panel').screenshot({ path: shotPath('sealed-fake-placeholder.png') });
        assert.deepEqual(problems, []);
      } finally {
        await context.close();
      }
    });
  }
});
