// Issue 11 end to end in headless Chromium: a log made with the stele CLI,
// an auditor key made by age-keygen (Debian package `age`) in this test, not
// a vector key. The table shows opened values with their mark, "sealed"
// without a key that opens them, "forgotten" after `stele forget` (verdict
// still Verified), and a tampered opening is a failure naming entry and
// pointer. Also: the key by file and by paste, a malformed key's message,
// search on opened values, nothing stored, and the single-file page.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DIST, REPO, launch, serve, openPage, verifyFileInPage, shotPath } from './helpers.mjs';

const T = { timeout: 180_000 };
const BIN = process.env.STELE_BIN || [join(REPO, 'target/debug/stele'), join(REPO, 'target/release/stele')].find((p) => existsSync(p));
const MARK = 'marker-e2e';
/** Entries of the log with many sealed values (two each). */
const MANY = 12_000;
/** Subjects (data keys, each with a sealed-key record) of another log. */
const SUBJECTS = 3_000;

let browser;
let server;
let url;
let tmp;
let vkey;
let auditorKey; // path, made by age-keygen
let wrongKey; // path, made by age-keygen, not an auditor
const files = {};

function stele(args, input) {
  return execFileSync(BIN, args, { encoding: 'utf8', input, stdio: ['pipe', 'pipe', 'pipe'] });
}

before(async () => {
  assert.ok(BIN, 'no stele binary: cargo build (or set STELE_BIN)');
  tmp = mkdtempSync(join(tmpdir(), 'stele-sealed-e2e-'));
  auditorKey = join(tmp, 'auditor.key');
  wrongKey = join(tmp, 'wrong.key');
  try {
    execFileSync('age-keygen', ['-o', auditorKey], { stdio: 'pipe' });
    execFileSync('age-keygen', ['-o', wrongKey], { stdio: 'pipe' });
  } catch (e) {
    throw new Error(`age-keygen failed (${e.message}): install Debian's age (scripts/setup.sh)`);
  }
  assert.equal(statSync(auditorKey).mode & 0o077, 0, 'age-keygen -o writes the key 0600');
  const recipient = execFileSync('age-keygen', ['-y', auditorKey], { encoding: 'utf8' }).trim();
  const dir = join(tmp, 'log');
  vkey = stele(['init', dir, '--origin', 'example.com/sealed-e2e', '--seal', '/actor/email', '--seal', '/ip', '--subject', '/actor/id']).trim().split('\n').pop().trim();
  stele(['auditor', 'add', dir, recipient]);
  const events = [];
  for (const [i, who] of ['alice', 'bob', 'carol', 'alice', 'bob', 'carol'].entries()) {
    events.push(JSON.stringify({ action: i % 2 ? 'logout' : 'login', actor: { email: `${who}-${MARK}@example.com`, id: `u-${who}` }, ip: `192.0.2.${10 + i}`, outcome: 'success' }));
  }
  stele(['append', dir], `${events.join('\n')}\n`);
  files.valid = join(tmp, 'valid.stele');
  stele(['export', dir, '-o', files.valid, '--reveal-to', recipient]);
  // A changed byte inside the first email opening's ciphertext (base64, away from its ends).
  const text = readFileSync(files.valid, 'utf8');
  const m = /^opening (\d+) (\S+) ("\/actor\/email")$/m.exec(text);
  assert.ok(m, 'the export has openings');
  const b64 = m[2];
  const at = Math.floor(b64.length / 2);
  const flipped = b64.slice(0, at) + (b64[at] === 'A' ? 'B' : 'A') + b64.slice(at + 1);
  files.tampered = join(tmp, 'tampered.stele');
  writeFileSync(files.tampered, text.replace(m[0], `opening ${m[1]} ${flipped} ${m[3]}`));
  files.tamperedAt = { entry: Number(m[1]), pointer: JSON.parse(m[3]) };
  // More sealed values than a paged store's pages read back hold (store.js:
  // PAGES_CACHED 32 pages of PAGE_ROWS 256 rows, two values an entry: 16,384).
  const many = join(tmp, 'many');
  stele(['init', many, '--origin', 'example.com/sealed-many', '--seal', '/actor/email', '--seal', '/ip', '--subject', '/actor/id']);
  stele(['auditor', 'add', many, recipient]);
  const lots = [];
  for (let i = 0; i < MANY; i++) lots.push(JSON.stringify({ action: 'login', actor: { email: `user${i}-${MARK}@example.com`, id: `u-${i % 100}` }, ip: `198.51.100.${i % 250}`, outcome: 'success' }));
  stele(['append', many], `${lots.join('\n')}\n`);
  files.many = join(tmp, 'many.stele');
  stele(['export', many, '-o', files.many, '--reveal-to', recipient]);
  files.manyKey = stele(['key', many]).trim();
  // Values beyond ASCII (two UTF-8 bytes, three, and four: a UTF-16
  // surrogate pair), which the pass's workers hand the page as one text
  // with UTF-16 offsets (wasm-seal takeSealedColumns).
  const wide = join(tmp, 'wide');
  stele(['init', wide, '--origin', 'example.com/sealed-wide', '--seal', '/actor/email', '--seal', '/ip', '--subject', '/actor/id']);
  stele(['auditor', 'add', wide, recipient]);
  files.wideValues = [];
  const wideEvents = [];
  for (const [i, who] of ['zoë', '日本', '😀x', 'plain', 'ä😀ü'].entries()) {
    const email = `${who}-${MARK}@example.com`;
    const ip = i % 2 ? `192.0.2.${i}` : { v4: `192.0.2.${i}`, note: `${who}\n"q"` };
    files.wideValues.push(JSON.stringify(email), JSON.stringify(ip));
    wideEvents.push(JSON.stringify({ action: 'login', actor: { email, id: `u-${i}` }, ip, outcome: 'success' }));
  }
  stele(['append', wide], `${wideEvents.join('\n')}\n`);
  files.wide = join(tmp, 'wide.stele');
  stele(['export', wide, '-o', files.wide, '--reveal-to', recipient]);
  files.wideKey = stele(['key', wide]).trim();
  // Key records of many subjects (one sealed-key line each, ~0.5 KB).
  const subj = join(tmp, 'subjects');
  stele(['init', subj, '--origin', 'example.com/sealed-subjects', '--seal', '/actor/email', '--subject', '/actor/id']);
  stele(['auditor', 'add', subj, recipient]);
  const each = [];
  for (let i = 0; i < SUBJECTS; i++) each.push(JSON.stringify({ action: 'login', actor: { email: `s${i}-${MARK}@example.com`, id: `s-${i}` }, outcome: 'success' }));
  stele(['append', subj], `${each.join('\n')}\n`);
  files.subjects = join(tmp, 'subjects.stele');
  stele(['export', subj, '-o', files.subjects, '--reveal-to', recipient]);
  files.subjectsKey = stele(['key', subj]).trim();
  stele(['forget', dir, '--subject', 'u-alice']);
  files.forgotten = join(tmp, 'forgotten.stele');
  stele(['export', dir, '-o', files.forgotten, '--reveal-to', recipient]);
  browser = await launch();
  ({ server, url } = await serve());
});

after(async () => {
  await browser?.close();
  await new Promise((r) => server?.close(r));
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

/** The table's cells (actor column) as text, and the states shown, row by row. */
async function actorCells(page) {
  return page.$$eval('.vt-row:not([hidden])', (rows) => rows.map((r) => {
    const cell = r.children[2];
    return {
      text: cell.textContent,
      opened: cell.querySelectorAll('.sealed-mark').length,
      badges: [...cell.querySelectorAll('.sealed-badge')].map((b) => b.textContent),
    };
  }));
}

async function withPage(fn, query = '') {
  const { context, page, problems } = await openPage(browser, url + query);
  try {
    await fn(page, problems);
  } finally {
    await context.close();
  }
}

describe('sealed fields end to end, with an auditor key made by age-keygen', { timeout: 900_000 }, () => {
  it('the key from its file opens the sealed values in the table, each marked as checked; search finds them', T, async () => {
    await withPage(async (page, problems) => {
      await page.setInputFiles('#auditor-file', auditorKey);
      assert.equal(await verifyFileInPage(page, files.valid, vkey), 'Verified');
      await page.waitForFunction(() => document.documentElement.dataset.sealedOpened === '12');
      const cells = await actorCells(page);
      const users = cells.filter((c) => c.text.includes('u-'));
      assert.equal(users.length, 6, JSON.stringify(cells));
      for (const c of users) {
        assert.equal(c.opened, 1, JSON.stringify(c));
        assert.match(c.text, new RegExp(`"email":✓"\\w+-${MARK}@example.com"`));
        assert.doesNotMatch(c.text, /stele\.sealed/);
      }
      await page.locator('#entries-panel').screenshot({ path: shotPath('sealed-e2e-opened.png') });
      // Search and the actor filter work on opened values, a sealed /ip too (not a column).
      const matches = (n) => page.waitForFunction((n) => document.getElementById('entries-count').textContent.startsWith(`${n} of `), n);
      await page.fill('#f-text', `carol-${MARK}`);
      await matches(2);
      await page.fill('#f-text', '192.0.2.13');
      await matches(1);
      await page.fill('#f-text', '');
      await page.fill('#f-actor', `bob-${MARK}`);
      await matches(2);
      await page.locator('#entries-panel').screenshot({ path: shotPath('sealed-e2e-filtered.png') });
      // The key is nowhere but in memory: not stored, not in the URL, masked in its field.
      // The downloaded report counts sealed values; it never holds an opened one.
      await page.fill('#f-actor', '');
      const [download] = await Promise.all([page.waitForEvent('download'), page.click('#download')]);
      const saved = readFileSync(await download.path(), 'utf8');
      assert.doesNotMatch(saved, new RegExp(MARK));
      assert.deepEqual(JSON.parse(saved).sealed, { values: 12, opened: 12, sealed: 0, forgotten: 0, redacted: 0 });
      const kept = await page.evaluate(() => JSON.stringify([{ ...localStorage }, { ...sessionStorage }, location.href, document.cookie]));
      assert.doesNotMatch(kept, /AGE-SECRET-KEY/i);
      assert.equal(await page.getAttribute('#auditor-key', 'type'), 'password');
      assert.deepEqual(problems, []);
    });
  });

  it('a file kept as pages (rows read back from the file: store.js PagedStore) shows and searches the opened values the same', T, async () => {
    await withPage(async (page, problems) => {
      await page.setInputFiles('#auditor-file', auditorKey);
      assert.equal(await verifyFileInPage(page, files.valid, vkey), 'Verified');
      assert.equal(await page.getAttribute('html', 'data-store'), 'paged');
      await page.waitForFunction(() => document.documentElement.dataset.sealedOpened === '12');
      await page.waitForFunction(() => [...document.querySelectorAll('.vt-row[data-line]:not([hidden])')].every((r) => !r.textContent.includes('…')));
      // The values are opened as their page is read back (after the verdict): the last entry's too.
      await page.waitForFunction(() => document.querySelectorAll('.vt-row:not([hidden]) .sealed-mark').length === 6);
      const users = (await actorCells(page)).filter((c) => c.text.includes('u-'));
      assert.equal(users.length, 6, JSON.stringify(users));
      for (const c of users) {
        assert.equal(c.opened, 1, JSON.stringify(c));
        assert.match(c.text, new RegExp(`"email":✓"\\w+-${MARK}@example.com"`));
      }
      const matches = async (n) => {
        await page.waitForFunction((n) => {
          const c = document.getElementById('entries-count');
          return !c.dataset.searching && c.textContent.startsWith(`${n} of `);
        }, n);
      };
      await page.fill('#f-text', `carol-${MARK}`);
      await matches(2);
      await page.fill('#f-text', '192.0.2.13');
      await matches(1);
      await page.fill('#f-text', '');
      await page.fill('#f-actor', `bob-${MARK}`);
      await matches(2);
      await page.locator('#entries-panel').screenshot({ path: shotPath('sealed-e2e-paged-filtered.png') });
      assert.deepEqual(problems, []);
    }, '?paged-above=1');
  });

  it('a file kept as pages holds only the sealed values of the pages it read back, not every value the key opened', T, async () => {
    await withPage(async (page, problems) => {
      await page.setInputFiles('#auditor-file', auditorKey);
      assert.equal(await verifyFileInPage(page, files.many, files.manyKey, { timeout: 170_000 }), 'Verified');
      assert.equal(await page.getAttribute('html', 'data-store'), 'paged');
      // Core's count: every value was opened and checked.
      assert.equal(await page.getAttribute('html', 'data-sealed-opened'), String(2 * MANY));
      const held = async () => Number(await page.getAttribute('html', 'data-sealed-held'));
      const bound = 32 * 256 * 2;
      assert.ok(bound < 2 * MANY);
      // The rows drawn show their opened values (read back with their page).
      await page.waitForFunction(() => document.querySelectorAll('.vt-row:not([hidden]) .sealed-mark').length > 0);
      const first = (await actorCells(page)).filter((c) => c.text.includes('u-'));
      assert.ok(first.length > 0);
      for (const c of first) assert.equal(c.opened, 1, JSON.stringify(c));
      assert.ok((await held()) > 0);
      // A search reads every page (opening each one's values), finding one deep in the file.
      const matches = (n) => page.waitForFunction((n) => {
        const c = document.getElementById('entries-count');
        return !c.dataset.searching && c.textContent.startsWith(`${n} of `);
      }, n, { timeout: 120_000 });
      const deep = MANY - 7;
      await page.fill('#f-text', `user${deep}-${MARK}`);
      await matches(1);
      await page.waitForFunction(() => document.querySelectorAll('.vt-row:not([hidden]) .sealed-mark').length > 0);
      const found = (await actorCells(page)).filter((c) => c.text.includes('u-'));
      assert.equal(found.length, 1, JSON.stringify(found));
      assert.match(found[0].text, new RegExp(`"email":✓"user${deep}-${MARK}@example.com"`));
      // An opened value that is no column (/ip) is found too.
      await page.fill('#f-text', '198.51.100.249');
      await matches(MANY / 250);
      await page.fill('#f-text', '');
      // Every page drawn: scrolled through the whole table.
      await page.evaluate(async () => {
        const s = document.getElementById('vt-scroll');
        for (let y = 0; y <= s.scrollHeight; y += s.scrollHeight / 60) {
          s.scrollTop = y;
          await new Promise((r) => setTimeout(r, 30));
        }
      });
      await page.waitForFunction(() => [...document.querySelectorAll('.vt-row[data-line]:not([hidden])')].every((r) => !r.textContent.includes('…') && r.querySelector('.sealed-mark')));
      const n = await held();
      assert.ok(n > 0 && n <= bound, `held ${n} sealed values, more than the ${bound} of the pages read back`);
      assert.deepEqual(problems, []);
    }, '?paged-above=1');
  });

  it("values beyond ASCII open the same in the pass's workers as on the page's thread", T, async () => {
    await withPage(async (page) => {
      await page.evaluate(() => {
        const i = document.createElement('input');
        i.type = 'file';
        i.id = 'x-file';
        document.body.append(i);
      });
      await page.setInputFiles('#x-file', files.wide);
      const identity = readFileSync(auditorKey, 'utf8');
      const r = await page.evaluate(async ({ key, identity }) => {
        const file = /** @type {HTMLInputElement} */ (document.getElementById('x-file')).files[0];
        const { verifyFile } = await import(new URL('src/verifier.js', location.href).href);
        const { openSealed } = await import(new URL('src/sealed.js', location.href).href);
        const plain = () => verifyFile(file, { keys: [key] });
        const show = (rep) => rep.sealed.map((v) => [v.entry, v.pointer, v.state, v.value]);
        const split = show(await openSealed(file, await plain(), { identity, splitAbove: 0 }));
        const W = globalThis.Worker;
        globalThis.Worker = undefined; // the pass on this thread (JSON from the module)
        try {
          return { split, alone: show(await openSealed(file, await plain(), { identity })) };
        } finally {
          globalThis.Worker = W;
        }
      }, { key: files.wideKey, identity });
      assert.deepEqual(r.split, r.alone);
      assert.deepEqual(r.split.map((v) => v[2]), files.wideValues.map(() => 'opened'));
      // Each value's JSON text as the event had it (canonical: keys sorted).
      const canonical = (t) => JSON.stringify(JSON.parse(t), (k, v) => (v && typeof v === 'object' && !Array.isArray(v) ? Object.fromEntries(Object.entries(v).sort()) : v));
      assert.deepEqual(r.split.map((v) => v[3]), files.wideValues.map(canonical));
    });
  });

  it('the opening pass of a file kept as pages makes no text of its values, and its workers end with it', T, async () => {
    // Each worker of the pass: whether it was given a pass, the characters
    // of value text it made (its done message), whether it was ended.
    const watch = () => {
      const W = globalThis.Worker;
      /** @type {{opened: boolean, listed: number | null, ended: boolean}[]} */
      const seen = [];
      globalThis.sealedWorkers = seen;
      globalThis.Worker = class extends W {
        constructor(url, opts) {
          super(url, opts);
          if (!String(url).includes('sealed-worker')) return;
          const rec = { opened: false, listed: null, ended: false };
          seen.push(rec);
          this.rec = rec;
          this.addEventListener('message', (e) => {
            if (e.data?.type === 'done') rec.listed = e.data.listed;
          });
        }
        postMessage(m, t) {
          if (this.rec && m?.type === 'open') this.rec.opened = true;
          return super.postMessage(m, t);
        }
        terminate() {
          if (this.rec) this.rec.ended = true;
          return super.terminate();
        }
      };
    };
    const passWorkers = async (page) => page.evaluate(() => globalThis.sealedWorkers.filter((w) => w.opened));
    for (const paged of [true, false]) {
      await withPage(async (page, problems) => {
        await page.evaluate(watch);
        await page.setInputFiles('#auditor-file', auditorKey);
        assert.equal(await verifyFileInPage(page, files.many, files.manyKey, { timeout: 170_000 }), 'Verified');
        assert.equal(await page.getAttribute('html', 'data-store'), paged ? 'paged' : 'memory');
        assert.equal(await page.getAttribute('html', 'data-sealed-opened'), String(2 * MANY));
        const used = await passWorkers(page);
        // Two parts, one worker each (the file is over 4 MiB).
        assert.equal(used.length, 2, JSON.stringify(used));
        for (const w of used) {
          // A worker kept idle held its isolate and its wasm memory (which never shrinks) until the next run.
          assert.ok(w.ended, `a worker of the pass was kept after it: ${JSON.stringify(used)}`);
          // Paged: no value kept, none listed (their text was ~64 MB of dead strings a worker).
          if (paged) assert.equal(w.listed, 0, `the pass made ${w.listed} characters of value text that nothing keeps`);
          else assert.ok(w.listed > 0, JSON.stringify(used));
        }
        assert.deepEqual(problems, []);
      }, paged ? '?paged-above=1' : '');
    }
  });

  it('the key records go into the sealed module in pieces: its memory grows by about their size, not twice it', T, async () => {
    const text = readFileSync(files.subjects, 'utf8');
    const head = text.indexOf('\n{') + 1;
    assert.ok(head > 1_000_000 && Buffer.byteLength(text.slice(0, head)) === head, `key records: ${head} bytes`);
    // A span of entry lines (and their records) after the key records, and the rest of the file.
    const end = text.indexOf('\n{', head + 100_000) + 1;
    await withPage(async (page, problems) => {
      const r = await page.evaluate(async ({ text, head, end, identity }) => {
        const sealed = await import(new URL('src/sealed.js', location.href).href);
        await sealed.loadModule();
        const { memory } = await (await import(new URL('pkg/stele_wasm_seal.js', location.href).href)).default();
        const before = memory.buffer.byteLength;
        const bytes = new TextEncoder().encode(text);
        const values = await sealed.openSealedSpan(new Blob([bytes]), { origin: 'example.com/sealed-subjects', identity, at: head, bytes: bytes.subarray(head, end) });
        return { grown: memory.buffer.byteLength - before, opened: values?.filter((v) => v.state === 'opened').length };
      }, { text, head, end, identity: readFileSync(auditorKey, 'utf8') });
      assert.ok(r.opened > 50, JSON.stringify(r));
      // Pushed whole, the records were copied into the memory beside what
      // the passes keep of them (a pass on the key records for their
      // X25519, then the span's pass): 2.0 times their size, 1.6 in pieces.
      assert.ok(r.grown < 1.8 * head, `the sealed module's memory grew by ${r.grown} bytes for ${head} bytes of key records`);
      assert.deepEqual(problems, []);
    });
  });

  it('a pasted key works the same, masked in its field', T, async () => {
    await withPage(async (page) => {
      await page.fill('#auditor-key', readFileSync(auditorKey, 'utf8'));
      assert.equal(await verifyFileInPage(page, files.valid, vkey), 'Verified');
      await page.waitForFunction(() => document.documentElement.dataset.sealedOpened === '12');
      const cells = await actorCells(page);
      assert.equal(cells.filter((c) => c.opened === 1).length, 6, JSON.stringify(cells));
      const kept = await page.evaluate(() => JSON.stringify([{ ...localStorage }, { ...sessionStorage }, location.href]));
      assert.doesNotMatch(kept, /AGE-SECRET-KEY/i);
    });
  });

  it('a wrong key (another age-keygen key) shows "sealed", with no failure', T, async () => {
    await withPage(async (page) => {
      await page.setInputFiles('#auditor-file', wrongKey);
      assert.equal(await verifyFileInPage(page, files.valid, vkey), 'Verified');
      const cells = (await actorCells(page)).filter((c) => c.text.includes('u-'));
      assert.equal(cells.length, 6);
      for (const c of cells) {
        assert.deepEqual(c.badges, ['sealed'], JSON.stringify(c));
        assert.equal(c.opened, 0);
      }
      assert.equal(await page.getAttribute('html', 'data-sealed-opened'), '0');
      // the summary says the key opened none (a review: nothing told a wrong key from a right one)
      assert.match(await page.textContent('#summary'), /Sealed values\s*\d+: 0 opened, \d+ sealed \(your auditor key opened none of them/);
      await page.locator('#entries-panel').screenshot({ path: shotPath('sealed-e2e-wrong-key.png') });
    });
  });

  it('without a key the cells say "sealed", not the placeholder', T, async () => {
    await withPage(async (page) => {
      assert.equal(await verifyFileInPage(page, files.valid, vkey), 'Verified');
      const cells = (await actorCells(page)).filter((c) => c.text.includes('u-'));
      for (const c of cells) assert.deepEqual(c.badges, ['sealed'], JSON.stringify(c));
      const all = await page.textContent('#vt-scroll');
      assert.doesNotMatch(all, /stele\.sealed|commitment/);
    });
  });

  it('a malformed key gets a clear message that never echoes it', T, async () => {
    await withPage(async (page) => {
      const bad = 'AGE-SECRET-KEY-1QQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQ';
      await page.fill('#auditor-key', bad);
      await page.waitForFunction(() => document.getElementById('auditor-hint').className.includes('error'));
      const hint = await page.textContent('#auditor-hint');
      assert.match(hint, /Not an auditor key: line 1 is not an age X25519 identity/);
      assert.ok(!hint.includes('QQQQ'), hint);
      assert.equal(await page.getAttribute('#auditor-key', 'aria-invalid'), '');
      // Verifying with it says the same, again without the key.
      assert.equal(await verifyFileInPage(page, files.valid, vkey), 'Could not verify');
      const detail = await page.textContent('#verdict-detail');
      assert.match(detail, /auditor key/);
      assert.ok(!detail.includes('QQQQ'), detail);
      await page.locator('.panel.inputs').screenshot({ path: shotPath('sealed-e2e-malformed-key.png') });
    });
  });

  it('a tampered opening is Tampered, naming its entry and pointer', T, async () => {
    await withPage(async (page) => {
      await page.setInputFiles('#auditor-file', auditorKey);
      assert.equal(await verifyFileInPage(page, files.tampered, vkey), 'Tampered');
      const listed = await page.textContent('#failure-list');
      const { entry, pointer } = files.tamperedAt;
      assert.match(listed, /opening_mismatch/);
      assert.match(listed, new RegExp(`entry ${entry}\\b`));
      assert.ok(listed.includes(JSON.stringify(pointer)), listed);
      const tampered = await page.$$eval('.sealed-badge.sealed-mismatch', (b) => b.map((x) => x.textContent));
      assert.deepEqual(tampered, ['tampered']); // in the actor cell of that entry
      await page.screenshot({ path: shotPath('sealed-e2e-tampered.png'), fullPage: true });
    });
  });

  it('after stele forget the values show "forgotten" and the verdict stays Verified', T, async () => {
    await withPage(async (page) => {
      await page.setInputFiles('#auditor-file', auditorKey);
      assert.equal(await verifyFileInPage(page, files.forgotten, vkey), 'Verified');
      const cells = (await actorCells(page)).filter((c) => c.text.includes('u-'));
      const alice = cells.filter((c) => c.text.includes('u-alice'));
      assert.equal(alice.length, 2);
      for (const c of alice) assert.deepEqual(c.badges, ['forgotten'], JSON.stringify(c));
      for (const c of cells.filter((x) => !x.text.includes('u-alice'))) assert.equal(c.opened, 1, JSON.stringify(c));
      await page.locator('#entries-panel').screenshot({ path: shotPath('sealed-e2e-forgotten.png') });
    });
  });

  it('the single-file page opens sealed values from file://, with no network', T, async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    const requests = [];
    const problems = [];
    context.on('request', (r) => requests.push(r.url()));
    page.on('pageerror', (e) => problems.push(e.message));
    page.on('console', (m) => m.type() === 'error' && problems.push(m.text()));
    try {
      const fileUrl = `file://${join(DIST, 'stele-verify.html')}`;
      await page.goto(fileUrl);
      await page.waitForSelector('html[data-warm]');
      await page.setInputFiles('#auditor-file', auditorKey);
      assert.equal(await verifyFileInPage(page, files.valid, vkey), 'Verified');
      assert.equal(await page.getAttribute('html', 'data-sealed-opened'), '12');
      assert.deepEqual(requests.filter((u) => u !== fileUrl && !u.startsWith('blob:') && !u.startsWith('data:')), []);
      assert.deepEqual(problems, []);
    } finally {
      await context.close();
    }
  });
});
