// Node-only tests of the pure modules (no browser, no wasm).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { BatchEncoder, RowDecoder, parseTs, formatTs, runVerification } from '../src/engine.js';
import { prepareInto } from '../src/prepare.js';
import { EntryStore, PagedStore, Runs, StepRuns, PAGE_ROWS, makeStore } from '../src/store.js';
import { RowSet } from '../src/filters.js';
import { prettyJson, summaryRows, verdictDetail } from '../src/util.js';
import { niceStep } from '../src/timeline.js';
import { readChunks } from '../src/blobread.js';

describe('timestamps', () => {
  it('round-trip canonical microsecond timestamps', () => {
    for (const s of ['2026-11-26T12:00:00.000000Z', '1970-01-01T00:00:00.000001Z', '2099-12-31T23:59:59.999999Z']) {
      assert.equal(formatTs(parseTs(s)), s);
    }
  });
  it('reject what is not RFC 3339 UTC', () => {
    for (const s of ['2026-11-26 12:00:00Z', '2026-11-26T12:00:00+01:00', '', null, 42]) assert.ok(Number.isNaN(parseTs(s)), String(s));
  });
});

describe('BatchEncoder and EntryStore', () => {
  const rows = (n, from = 0) => Array.from({ length: n }, (_, k) => ({
    seq: from + k, ts: formatTs(Date.UTC(2026, 0, 1) * 1000 + (from + k) * 1e6), type: 'audit', actor: `a${(from + k) % 3}`,
    action: null, target: '{"id":1}', outcome: 'ok', line: from + k + 2, offset: (from + k) * 100, length: 99,
  }));
  it('keep every field across batches, interning strings once', () => {
    const enc = new BatchEncoder();
    const store = new EntryStore();
    const b1 = enc.encode(rows(5));
    const b2 = enc.encode(rows(2000, 5));
    assert.deepEqual(b2.fresh[1], []); // actors already sent
    store.append(b1);
    store.append(b2);
    assert.equal(store.n, 2005);
    assert.equal(store.str(1, 1000), 'a1');
    assert.equal(store.str(2, 3), null);
    assert.equal(store.tsText(7), formatTs(Date.UTC(2026, 0, 1) * 1000 + 7e6));
    assert.equal(store.findByLine(1002), 1000);
    assert.equal(store.findByLine(1), -1);
    assert.equal(store.findBySeq(2004), 2004);
  });
  it('counts seq and line without a column while they count up, and keeps them when they do not', () => {
    const enc = new BatchEncoder();
    const store = new EntryStore({ bytes: 10_000_000 });
    // Lines 2-1001, a checkpoint record on lines 1002-1006, then 1007-2006.
    const gap = rows(2000).map((r, k) => (k >= 1000 ? { ...r, line: r.line + 5 } : r));
    store.append(enc.encode(gap.slice(0, 1500)));
    assert.equal(store.seqs, null);
    assert.deepEqual([store.lineAt(0), store.lineAt(999), store.lineAt(1000), store.lineAt(1499)], [2, 1001, 1007, 1506]);
    // A repeated seq (a duplicated entry) and an unreadable line: from there on, a column.
    const odd = gap.slice(1500);
    odd[10] = { ...odd[10], seq: odd[9].seq };
    odd[11] = { ...odd[11], seq: null };
    store.append(enc.encode(odd));
    assert.ok(store.seqs instanceof Float64Array);
    assert.deepEqual([store.seqAt(0), store.seqAt(1509), store.seqAt(1510), store.seqAt(1511), store.seqAt(1999)], [0, 1509, 1509, NaN, 1999]);
    assert.equal(store.seqText(1511), '');
    assert.equal(store.findBySeq(1509), 1509);
    assert.equal(store.findBySeq(1999), 1999);
    assert.equal(store.findBySeq(2.5), -1);
    assert.equal(store.findByLine(1001), 999);
    assert.equal(store.findByLine(1003), -1);
    assert.equal(store.findByLine(2006), 1999);
    assert.ok(store.sortedLines);
    // Sized once from the first rows: 10 MB at 100 bytes a row, and 5% more.
    assert.ok(store.cap >= 105_000, `cap ${store.cap}`);
  });
  it('keeps every ts, offset and length exactly, whatever their gaps (narrow columns widen)', () => {
    // A deterministic mix: microsecond steps, gaps of hours (past a Uint32
    // of microseconds), timestamps going back, rows without one, offsets
    // jumping past 4 GiB, and lines longer than 65,535 bytes.
    const mix = (n, seed, { hours = 0.001, back = 0.001, far = false } = {}) => {
      let t = Date.UTC(2026, 0, 1) * 1000;
      let off = 0;
      const out = [];
      for (let k = 0; k < n; k++) {
        seed = (seed * 1103515245 + 12345) % 2 ** 31;
        const r = seed / 2 ** 31;
        t += r < hours ? 5e9 + (seed % 1000) : r < hours + back ? -3e6 : seed % 997;
        const none = r > 0.999;
        const length = far && k === n >> 1 ? 70_000 : 50 + (seed % 400);
        out.push({ seq: k, ts: none ? null : formatTs(t), type: 'audit', actor: 'a', action: 'x', target: 't', outcome: 'ok', line: k + 2, offset: off, length });
        off += length + 1 + (far && k === 3000 ? 5 * 2 ** 30 : 0);
      }
      return out;
    };
    for (const [name, rows, widened] of [
      ['dense', mix(10_000, 7), { ts: false, off: false, len: false }],
      ['hours apart, 4 GiB gap, a long line', mix(10_000, 9, { hours: 0.6, far: true }), { ts: true, off: true, len: true }],
    ]) {
      const enc = new BatchEncoder();
      const store = new EntryStore({ bytes: 1_000_000 });
      for (let k = 0; k < rows.length; k += 777) store.append(enc.encode(rows.slice(k, k + 777)));
      for (let i = 0; i < rows.length; i++) {
        const r = rows[i];
        assert.equal(store.tsText(i), r.ts ?? '', `${name}: ts of row ${i}`);
        assert.equal(store.offsetAt(i), r.offset, `${name}: offset of row ${i}`);
        assert.equal(store.length[i], r.length, `${name}: length of row ${i}`);
      }
      assert.deepEqual({ ts: store.tsFull !== null, off: store.offFull !== null, len: store.length instanceof Uint32Array }, widened, name);
    }
  });
  it('codes take a byte a row until a column has 255 values or one not kept, then two', () => {
    const enc = new BatchEncoder();
    const store = new EntryStore();
    const rs = rows(600).map((r, k) => ({ ...r, actor: `user-${k}`, action: `act-${k % 7}` }));
    store.append(enc.encode(rs.slice(0, 200)));
    assert.ok(store.codes.every((c) => c instanceof Uint8Array));
    store.append(enc.encode(rs.slice(200)));
    assert.ok(store.codes[1] instanceof Uint16Array, 'actor widened at its 255th value');
    assert.ok(store.codes[2] instanceof Uint8Array, 'action still a byte');
    for (const k of [0, 199, 253, 254, 255, 599]) assert.equal(store.str(1, k), `user-${k}`);
    assert.equal(store.str(2, 599), 'act-4');
    // A value not kept (a batch past the limit) widens too, and reads back as not kept.
    const batch = enc.encode([{ ...rows(1, 600)[0], action: 'act-9' }]);
    batch.codes[2][0] = 0xffffffff;
    store.append(batch);
    assert.ok(store.codes[2] instanceof Uint16Array);
    assert.equal(store.needsValues(600), true);
    assert.equal(store.str(2, 599), 'act-4');
  });
  it('keeps timestamps it cannot reformat as they were', () => {
    const enc = new BatchEncoder();
    const store = new EntryStore();
    store.append(enc.encode([{ seq: 0, ts: '2026-01-01T00:00:00Z', line: 1, offset: 0, length: 1 }, { seq: 1, ts: 'yesterday', line: 2, offset: 2, length: 1 }]));
    assert.equal(store.tsText(0), '2026-01-01T00:00:00Z');
    assert.equal(store.tsText(1), 'yesterday');
  });
  it('RowDecoder gives back the rows of batches, across batches', () => {
    const enc = new BatchEncoder();
    const dec = new RowDecoder();
    const withUs = (rs) => rs.map((r) => ({ seq: r.seq, ts: r.ts, ts_us: parseTs(r.ts), type: r.type, actor: r.actor, action: r.action, target: r.target, outcome: r.outcome, line: r.line, offset: r.offset, length: r.length }));
    const r1 = withUs(rows(5));
    const r2 = withUs(rows(300, 5));
    assert.deepEqual(dec.decode(enc.encode(r1)), r1);
    assert.deepEqual(dec.decode(enc.encode(r2)), r2);
    // Absent values are null; a timestamp past 2^53 microseconds comes from tsRaw.
    const far = { n: 2, seq: Float64Array.of(NaN, 7), ts: Float64Array.of(NaN, 253402300799999999), line: Float64Array.of(1, 2), offset: Float64Array.of(0, 5), length: Float64Array.of(4, 9), codes: [0, 0, 0, 0, 0].map(() => new Uint32Array(2)), fresh: [[], [], [], [], []], tsRaw: [1, '9999-12-31T23:59:59.999999Z'] };
    assert.deepEqual(dec.decode(far), [
      { seq: null, ts: null, ts_us: null, type: null, actor: null, action: null, target: null, outcome: null, line: 1, offset: 0, length: 4 },
      { seq: 7, ts: '9999-12-31T23:59:59.999999Z', ts_us: 253402300799999999, type: null, actor: null, action: null, target: null, outcome: null, line: 2, offset: 5, length: 9 },
    ]);
  });
});

describe('PagedStore (files too big to keep every row: issue 17)', () => {
  // Rows as the verifier gives them: lines 2.., a 5-line checkpoint record
  // after every 1,000th entry, 100-byte lines, a timestamp a second apart.
  const rows = (n) => {
    const out = [];
    let line = 2;
    let off = 20;
    for (let k = 0; k < n; k++) {
      out.push({ seq: k, ts: formatTs(Date.UTC(2026, 0, 1) * 1000 + k * 1e6), type: 'audit', actor: `a${k % 3}`, action: 'read', target: `t/${k}`, outcome: 'ok', line, offset: off, length: 99 });
      line++;
      off += 100;
      if (k % 1000 === 999) {
        line += 5;
        off += 300;
      }
    }
    return out;
  };

  it('is chosen from the file size, and keeps lines, seqs and page offsets without a column', () => {
    assert.ok(makeStore({ bytes: 10 }) instanceof EntryStore);
    assert.ok(makeStore({ bytes: 10, pagedAbove: 10 }) instanceof PagedStore);
    const rs = rows(5000);
    const enc = new BatchEncoder();
    const store = new PagedStore();
    for (let k = 0; k < rs.length; k += 777) store.append(enc.encode(rs.slice(k, k + 777)));
    assert.equal(store.n, 5000);
    assert.equal(store.pageCount, Math.ceil(5000 / PAGE_ROWS));
    for (let i = 0; i < rs.length; i += 37) {
      assert.equal(store.lineAt(i), rs[i].line, `line of row ${i}`);
      assert.equal(store.seqAt(i), i);
      assert.equal(store.findByLine(rs[i].line), i);
      assert.equal(store.findBySeq(i), i);
    }
    assert.equal(store.findByLine(1003), -1); // a checkpoint line
    for (let p = 0; p < store.pageCount; p++) {
      const first = p * PAGE_ROWS;
      const last = Math.min(first + PAGE_ROWS, 5000) - 1;
      assert.deepEqual(store.pageBytes(p), { from: rs[first].offset, to: last === 4999 ? rs[4999].offset + 100 : rs[last + 1].offset });
      assert.equal(store.pageMin[p], parseTs(rs[first].ts));
      assert.equal(store.pageMax[p], parseTs(rs[last].ts));
    }
    // Values are those of pages read back; until then undefined (shown "…").
    assert.equal(store.needsValues(300), true);
    assert.equal(store.str(3, 300), undefined);
    assert.equal(store.tsText(300), '…');
    store.setPage(1, rs.slice(PAGE_ROWS, 2 * PAGE_ROWS));
    assert.equal(store.needsValues(300), false);
    assert.equal(store.str(3, 300), 't/300');
    assert.equal(store.offsetAt(300), rs[300].offset);
    assert.equal(store.lengthAt(300), 99);
    assert.deepEqual(store.dicts[1], [null, 'a0', 'a1', 'a2']);
  });

  it('keeps seqs that break the count as runs, and finds entries by them', () => {
    const rs = rows(3000);
    rs[1500] = { ...rs[1500], seq: 1499 }; // a duplicated entry
    rs[1501] = { ...rs[1501], seq: null }; // an unreadable line
    for (let k = 1502; k < 3000; k++) rs[k] = { ...rs[k], seq: k + 10 }; // then a gap
    const store = new PagedStore();
    store.append(new BatchEncoder().encode(rs));
    assert.deepEqual([store.seqAt(1499), store.seqAt(1500), store.seqAt(1501), store.seqAt(1502)], [1499, 1499, NaN, 1512]);
    assert.equal(store.seqText(1501), '');
    assert.equal(store.findBySeq(1499), 1499);
    assert.equal(store.findBySeq(1512), 1502);
    assert.equal(store.findBySeq(1505), -1);
    assert.equal(store.firstSeqAtLeast(1505), 1502);
    assert.equal(store.firstSeqAtLeast(5000), Infinity);
  });

  it('Runs: a value per row in runs; past its limit the rest is unknown', () => {
    const r = new Runs(3);
    const vals = [5, 6, 7, 20, 21, NaN, NaN, 30, 31];
    vals.forEach((v, i) => r.add(i, v));
    assert.deepEqual(vals.slice(0, 7).map((_, i) => r.at(i)), vals.slice(0, 7));
    assert.equal(r.at(7), undefined); // a fourth run
    assert.equal(r.find(21, 9), 4);
    assert.equal(r.find(8, 9), -1);
    assert.equal(r.find(8, 9, true), 3);
  });

  it('StepRuns: lines a fixed step apart cost one run, whatever the step; merged deltas agree', () => {
    // A sealed export: each entry line followed by two record lines, a
    // checkpoint note (6 lines) every 1,000 entries; then a plain stretch.
    const lines = [];
    let line = 2;
    for (let i = 0; i < 5000; i++) {
      lines.push(line);
      line += 3 + (i % 1000 === 999 ? 6 : 0);
    }
    for (let i = 0; i < 3000; i++) lines.push(line++);
    lines.push(line + 7, line + 8, 1); // a gap, then a line out of order
    const r = new StepRuns();
    lines.forEach((v, i) => r.add(i, v));
    assert.deepEqual(lines.map((_, i) => r.at(i)), lines);
    assert.ok(r.rows.length <= 10, `${r.rows.length} runs`);
    // The page's store, merging the worker's deltas taken at every step
    // (a run's step set after it was sent is sent again).
    const worker = new PagedStore();
    const page = new PagedStore();
    lines.forEach((v, i) => {
      worker.lines.add(i, v);
      page.merge({ ...worker.takeDelta(), n: i + 1 });
    });
    assert.deepEqual(lines.map((_, i) => page.lines.at(i)), lines);
  });

  it('RowSet: positions and rows of every set of rows agree with a sorted list', () => {
    let seed = 11;
    for (const [n, density] of [[1, 1], [31, 0.5], [32, 1], [1025, 0.01], [5000, 0.5], [70_000, 0.001], [70_000, 0.97]]) {
      const set = new RowSet(n);
      const list = [];
      for (let i = 0; i < n; i++) {
        seed = (seed * 1103515245 + 12345) % 2 ** 31;
        if (seed / 2 ** 31 < density) {
          set.add(i);
          set.add(i); // twice: counted once
          list.push(i);
        }
      }
      assert.equal(set.count, list.length, `${n} ${density}`);
      for (let pos = 0; pos < list.length; pos++) assert.equal(set.at(pos), list[pos], `row at ${pos} of ${n} ${density}`);
      assert.equal(set.at(list.length), undefined);
      for (let i = 0, pos = 0; i < n; i++) assert.equal(set.posOf(i), list[pos] === i ? pos++ : -1, `position of row ${i}`);
    }
  });
});

describe('prettyJson', () => {
  it('indents without changing values, even big integers', () => {
    const src = '{"a":12345678901234567890,"b":[1,{"c":"x,:{y}\\"z"}],"d":{},"e":[]}';
    const out = prettyJson(src);
    assert.ok(out.includes('12345678901234567890'));
    assert.deepEqual(JSON.parse(out), JSON.parse(src));
    assert.equal(out.split('\n').length, 11);
  });
  it('throws on non-JSON', () => {
    assert.throws(() => prettyJson('{nope'));
  });
});

describe('report text', () => {
  it('says what failed, and what a summary shows', () => {
    const r = { verdict: 'failed', kind: 'log', origin: 'o', key_id: '1a2b3c4d', key_name: 'k', entries: 3, first_seq: 0, last_seq: 2, first_ts: 'a', last_ts: 'b', tree_size: 3, root: 'r', checkpoints: [{ status: 'ok' }, { status: 'mismatch' }], checkpoints_total: 2, failures: [], failures_total: 2, notices: [], bytes: 10 };
    assert.match(verdictDetail(r), /2 failures/);
    const rows = Object.fromEntries(summaryRows(r));
    assert.equal(rows['Checkpoints checked'], '1 of 2 verified, 1 mismatched');
    assert.equal(rows['Root (tree size)'], 'r (3)');
  });
  it('partial: the unsigned entries start where core says, not at the tree size', () => {
    const base = { verdict: 'partial', failures: [], failures_total: 0, notices: [] };
    // Log export: entries 0..8, signed up to 6.
    assert.match(verdictDetail({ ...base, kind: 'log', entries: 9, first_seq: 0, last_seq: 8, tree_size: 6, unsigned_from: 6 }), /^Entries 0–5 are intact and signed with the trusted key, but entries 6–8 are not signed/);
    // A range export whose checkpoint (size 20) was moved before entries 6..11.
    const moved = verdictDetail({ ...base, kind: 'range', entries: 6, first_seq: 6, last_seq: 11, tree_size: 20, unsigned_from: 6 });
    assert.match(moved, /^No entry in this file is covered by a checkpoint signed with the trusted key: entries 6–11 are not signed/);
    assert.doesNotMatch(moved, /Entries 0–19/);
    // A range 6..11 signed up to 9.
    assert.match(verdictDetail({ ...base, kind: 'range', entries: 6, first_seq: 6, last_seq: 11, tree_size: 20, unsigned_from: 9 }), /^Entries 6–8 are intact and signed with the trusted key, but entries 9–11 are not signed/);
  });
  it('a failure of the witness quorum alone is told as such, not as a mismatch (issue 14)', () => {
    const base = { verdict: 'tampered', kind: 'log', notices: [], quorum: { name: 'two-of-three', met: false, size: 20, cosigned_by: ['w3'] } };
    const quorumOnly = { ...base, failures: [{ code: 'quorum_not_met', message: 'm' }], failures_total: 1 };
    const detail = verdictDetail(quorumOnly);
    assert.match(detail, /not enough of the witness policy's witnesses cosigned the checkpoint \(quorum two-of-three not met: only w3 cosigned it\)/);
    assert.match(detail, /split view/);
    assert.doesNotMatch(detail, /does not match what was signed/);
    assert.match(verdictDetail({ ...quorumOnly, quorum: { ...base.quorum, cosigned_by: [] } }), /none of them cosigned it/);
    // Any other failure beside it, or failures left out of the list: the mismatch wording.
    const mixed = { ...base, failures: [{ code: 'quorum_not_met', message: 'm' }, { code: 'bad_signature', message: 'm' }], failures_total: 2 };
    assert.match(verdictDetail(mixed), /does not match what was signed: 2 failures/);
    const cut = { ...quorumOnly, failures_total: 1001 };
    assert.match(verdictDetail(cut), /does not match what was signed/);
    // Names from the policy are shown with hidden characters made visible.
    assert.match(verdictDetail({ ...quorumOnly, quorum: { ...base.quorum, cosigned_by: ['w\u202E3'] } }), /only w\\u202E3 cosigned/);
  });
  it('timeline steps are nice and bound the bucket count', () => {
    assert.equal(niceStep(3600e6, 60), 60e6);
    assert.equal(niceStep(86400e6, 200), 600e6);
  });
});

describe('sample server', () => {
  it('serves sample files but never a private key, whatever its name', async () => {
    const { mkdtempSync, writeFileSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const { startServer } = await import('../serve.mjs');
    const dir = mkdtempSync(join(tmpdir(), 'stele-samples-'));
    writeFileSync(join(dir, 'valid.stele'), 'stele-export v1 log\n');
    writeFileSync(join(dir, 'notes.txt'), 'PRIVATE+KEY+x+00000000+AAAA\n');
    writeFileSync(join(dir, 'log.key'), 'anything\n');
    const s = await startServer({ root: dir, samples: dir, port: 0, quiet: true });
    try {
      const base = s.url ?? `http://127.0.0.1:${s.server?.address().port ?? s.address().port}/`;
      const get = (p) => fetch(new URL(p, base)).then((r) => r.status);
      assert.equal(await get('samples/valid.stele'), 200);
      assert.equal(await get('samples/notes.txt'), 404);
      assert.equal(await get('samples/log.key'), 404);
      const list = await (await fetch(new URL('samples/index.json', base))).json();
      assert.deepEqual(list.map((f) => f.name), ['valid.stele']);
    } finally {
      await new Promise((r) => (s.server ?? s).close(r));
    }
  });
});

describe('the multi-worker read loop (runVerification with a pool)', () => {
  // A stand-in verifier: it checks that every byte arrives once, in order,
  // and that each prepared block is the one prepared for that place.
  class FakeVerifier {
    constructor() {
      this.bytes = [];
      this.at = 0;
      this.prepared = 0;
    }
    push(b) {
      this.bytes.push(...b);
      this.at += b.length;
    }
    pushPrepared(block, prepared) {
      const [base, len, pad] = JSON.parse(new TextDecoder().decode(prepared));
      assert.equal(pad.length, len * 9, 'the whole record');
      assert.equal(base, this.at, 'a prepared block arrives at its own offset');
      assert.equal(len, block.length, 'with its own bytes');
      this.unterminated = (this.unterminated || 0) + (block[block.length - 1] === 10 ? 0 : 1);
      this.longest = Math.max(this.longest || 0, block.length);
      this.prepared++;
      this.push(block);
    }
    takeBatch() {
      return { n: 0 };
    }
    finish() {
      const text = new TextDecoder().decode(Uint8Array.from(this.bytes));
      return JSON.stringify({ bytes: this.at, prepared: this.prepared, unterminated: this.unterminated || 0, longest: this.longest || 0, text });
    }
    free() {}
  }
  // wasm prepareBlock's contract: the records go into `out` when they fit,
  // and their length comes back either way. Records longer than the first
  // buffer prepareInto makes, so that buffers grow and are reused.
  const prepareBlock = (block, base, out) => {
    const rec = new TextEncoder().encode(JSON.stringify([base, block.length, 'r'.repeat(block.length * 9)]));
    if (rec.length <= out.length) out.set(rec);
    return rec.length;
  };
  let local = 0;
  const localPrepare = (block, base, out) => {
    local++;
    return prepareBlock(block, base, out);
  };
  // A helper that answers after a random delay, so blocks come back out of step.
  const pool = (seed) => ({
    size: 1,
    prepare(block, base, out) {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return new Promise((resolve) => setTimeout(() => resolve({ prepared: prepareInto(prepareBlock, block, base, out), block }), seed % 4));
    },
  });
  // A Blob without a byte stream: blocks are slices.
  const sliced = (blob) => ({ size: blob.size, slice: (a, b) => blob.slice(a, b), stream: () => { throw new TypeError('no stream'); } });
  const text = (lines) => new TextEncoder().encode(lines.join(''));
  const cases = {
    empty: text([]),
    'one line, no newline': text(['{"a":1}']),
    'no final newline': text(['{"a":1}\n', '{"b":2}']),
    'lines longer than a block': text(['x'.repeat(300) + '\n', 'y'.repeat(50) + '\n', 'z'.repeat(1000) + '\n', 'end']),
    'many short lines': text(Array.from({ length: 2000 }, (_, i) => `{"seq":${i},"pad":"${'p'.repeat(i % 37)}"}\n`)),
    'a line of 100 KB, then lines': text(['{' + 'x'.repeat(100_000) + '\n', '{"a":1}\n', 'y'.repeat(5000)]),
  };
  for (const [name, bytes] of Object.entries(cases)) for (const stream of [true, false]) {
    it(`reads every byte once, in order: ${name}${stream ? '' : ' (slices)'}`, async () => {
      local = 0;
      let last = -1;
      const report = await runVerification({
        WasmVerifier: FakeVerifier,
        prepareBlock: localPrepare,
        file: stream ? new Blob([bytes]) : sliced(new Blob([bytes])),
        blockSize: 128,
        pool: pool(bytes.length + 7),
        onBatch: () => {},
        onProgress: (done, total) => {
          assert.ok(done >= last && done <= total, 'progress only moves forward');
          last = done;
        },
      });
      assert.equal(report.bytes, bytes.length);
      assert.equal(report.text, new TextDecoder().decode(bytes), 'the bytes, in order');
      // Blocks end at a line end, but for the file's last and those inside
      // a line longer than a block, which are never carried whole.
      const longLines = new TextDecoder().decode(bytes).split('\n').filter((l) => l.length >= 128).length;
      if (!longLines) assert.ok(report.unterminated <= 1, 'blocks end at a line end, but for the file\'s last');
      assert.ok(report.longest < 2 * 128, `a block of ${report.longest} bytes for blocks of 128`);
      assert.equal(last, bytes.length, 'progress ends at the file size');
      if (name === 'many short lines') {
        assert.ok(report.prepared > 100, `most blocks prepared (${report.prepared})`);
        assert.ok(local > 0, 'some prepared by the verifier itself while the helper was busy');
      }
    });
  }

  // Issue 17 (sealed exports on the page): the block buffers and the
  // prepared records' buffers are used again for the whole run, however
  // the helper's replies come. Buffers dropped when a few were already
  // spare (3 blocks, cap + 2 records) were made again at the next burst:
  // on a 1.4 GB export ~20 dead 1 MiB blocks and ~10 dead 512 KiB records
  // in the worker and its helper until they were collected.
  it('allocates a bounded number of block and record buffers, whatever the reads\' and the helper\'s delays', async () => {
    const blockSize = 128;
    const bytes = cases['many short lines'];
    let blocks = 0;
    const records = new Set();
    const RealArrayBuffer = globalThis.ArrayBuffer;
    globalThis.ArrayBuffer = new Proxy(RealArrayBuffer, {
      construct(target, args) {
        if (args[0] === blockSize) blocks++;
        return Reflect.construct(target, args);
      },
    });
    try {
      // A file whose reads stall now and then (the queue drains), and a
      // helper that does too (a worker short of CPU: the verifier prepares
      // blocks itself meanwhile and the queue fills).
      const slowFile = (b) => ({
        size: b.length,
        slice: (x, y) => new Blob([b]).slice(x, y),
        stream() {
          let at = 0;
          let reads = 0;
          return new ReadableStream({
            type: 'bytes',
            async pull(c) {
              if (++reads % 13 === 0) await new Promise((r) => setTimeout(r, 30));
              const view = /** @type {ReadableStreamBYOBRequest} */ (c.byobRequest).view;
              const n = Math.min(view.byteLength, b.length - at);
              view.set(b.subarray(at, at + n));
              at += n;
              c.byobRequest.respond(n);
            },
          });
        },
      });
      let k = 0;
      const stalling = (block, base, out) => new Promise((resolve) => setTimeout(() => resolve({ prepared: prepareInto(prepareBlock, block, base, out), block }), ++k % 40 === 0 ? 20 : 0));
      await runVerification({
        WasmVerifier: FakeVerifier,
        prepareBlock: (block, base, out) => {
          records.add(out.buffer);
          return prepareBlock(block, base, out);
        },
        file: slowFile(bytes),
        blockSize,
        pool: { size: 1, prepare: (block, base, out) => stalling(block, base, out).then((r) => (records.add(r.prepared.buffer), r)) },
        onBatch: () => {},
      });
    } finally {
      globalThis.ArrayBuffer = RealArrayBuffer;
    }
    // In flight at once, with one helper (cap = 2): the block being read, one
    // read ahead, and cap + 2 in the queue; as many records' buffers.
    const most = 2 + 4;
    assert.ok(bytes.length / blockSize > 100, 'many blocks');
    assert.ok(blocks <= most, `${blocks} block buffers made for ${Math.ceil(bytes.length / blockSize)} blocks (at most ${most})`);
    // A record buffer may be replaced once by a longer one (prepareInto).
    assert.ok(records.size <= 2 * most, `${records.size} record buffers (at most ${2 * most})`);
  });
});

describe('a run cancelled while a read is pending (main thread, red-team finding 2)', () => {
  // A verifier with one row a push: every chunk pushed becomes a batch.
  class OneRowVerifier {
    constructor() {
      this.pending = 0;
    }
    push() {
      this.pending++;
    }
    pushPrepared() {
      this.pending++;
    }
    takeBatch() {
      const n = this.pending;
      this.pending = 0;
      return { n };
    }
    finish() {
      return '{}';
    }
    free() {}
  }
  // The file's second read resolves only after the run was cancelled.
  function fileCancelledDuringRead(state, chunks) {
    const blob = new Blob([new Uint8Array(chunks * 4).fill(10)]);
    return {
      size: blob.size,
      slice(a, b) {
        const part = blob.slice(a, b);
        return { arrayBuffer: async () => {
          if (a > 0) {
            // cancelled while this read is pending (after the previous chunk's batch)
            await new Promise((r) => setTimeout(r, 0));
            state.cancelled = true;
          }
          return part.arrayBuffer();
        } };
      },
    };
  }
  for (const pool of [false, true]) {
    it(`no batch reaches onBatch after the cancel${pool ? ' (with helpers)' : ''}`, async () => {
      const state = { cancelled: false };
      const batches = [];
      const run = runVerification({
        WasmVerifier: OneRowVerifier,
        file: fileCancelledDuringRead(state, 8),
        chunkSize: 4,
        blockSize: 4,
        ...(pool ? { pool: { size: 1, prepare: (block, base, out) => Promise.resolve({ prepared: prepareInto(() => 0, block, base, out), block }) }, prepareBlock: null } : {}),
        onBatch: (b) => batches.push({ n: b.n, cancelled: state.cancelled }),
        cancelled: () => state.cancelled,
      });
      await assert.rejects(run, { name: 'AbortError' });
      assert.ok(state.cancelled);
      assert.deepEqual(batches.filter((b) => b.cancelled), [], 'a batch after the cancel');
    });
  }
});

describe('page helpers (issue 19)', async () => {
  const { revealText, hasHidden, verdictKind, keySituation, VERDICT_WORDS } = await import('../src/util.js');
  const { fromLocalInput, timeInputValid } = await import('../src/filters.js');
  const { Sha256, latestSignedCheckpoint, sha256Blob } = await import('../src/evidence.js');
  const { createHash } = await import('node:crypto');

  it('hidden and bidirectional characters become visible escapes; ordinary text is untouched', () => {
    assert.equal(revealText('admin\u202Egnp.exe'), 'admin\\u202Egnp.exe');
    assert.equal(revealText('a\u200Bb\uFEFFc\u2066d\u0007'), 'a\\u200Bb\\uFEFFc\\u2066d\\u0007');
    assert.equal(revealText('tag\u{E0041}'), 'tag\\u{E0041}');
    // Invisible outside the Basic Multilingual Plane too (red-team finding):
    // variation selectors supplement, musical symbol and shorthand format controls.
    assert.equal(revealText('admin\u{E0100}'), 'admin\\u{E0100}');
    assert.equal(revealText('admin\u{1D173}'), 'admin\\u{1D173}');
    assert.equal(revealText('admin\u{1BCA0}'), 'admin\\u{1BCA0}');
    assert.equal(revealText('a\u2029b\u0085c\u115Fd'), 'a\\u2029b\\u0085c\\u115Fd');
    assert.equal(hasHidden('admin\u{E0100}'), true);
    assert.equal(revealText('line\nnext', { keepLines: true }), 'line\nnext');
    assert.equal(revealText('line\nnext'), 'line\\nnext');
    for (const s of ['héllo wörld', '日本語', 'emoji 🎉', 'ascii <script>']) {
      assert.equal(revealText(s), s);
      assert.equal(hasHidden(s), false);
    }
    assert.equal(hasHidden('x\u202Ey'), true);
  });

  it('one word per verdict; failed is tampered; three key situations', () => {
    assert.equal(verdictKind('failed'), 'tampered');
    assert.equal(VERDICT_WORDS[verdictKind('tampered')], 'Tampered');
    assert.equal(VERDICT_WORDS.not_a_log, 'Not a Stele export');
    assert.equal(keySituation({ notices: [] }, 0), 'no_key');
    assert.equal(keySituation({ notices: [{ code: 'no_trusted_checkpoint' }] }, 1), 'no_trusted_checkpoint');
    assert.equal(keySituation({ notices: [{ code: 'no_trusted_checkpoint' }, { code: 'key_mismatch' }] }, 1), 'key_mismatch');
  });

  it('time filters read UTC days, minutes and seconds, and reject the rest', () => {
    assert.equal(fromLocalInput('2026-11-26', false), parseTs('2026-11-26T00:00:00Z'));
    assert.equal(fromLocalInput('2026-11-26', true), parseTs('2026-11-26T23:59:59.999999Z'));
    assert.equal(fromLocalInput('2026-11-26 08:30', true), parseTs('2026-11-26T08:30:59.999999Z'));
    assert.equal(fromLocalInput('2026-11-26T08:30:15Z', false), parseTs('2026-11-26T08:30:15Z'));
    assert.ok(!timeInputValid('11/26/2026'));
    assert.ok(timeInputValid(''));
  });

  it('the streaming SHA-256 equals node:crypto at every block boundary and chunking', () => {
    const data = Buffer.from(Array.from({ length: 300 }, (_, i) => (i * 31 + 7) & 255));
    for (const n of [0, 1, 55, 56, 63, 64, 65, 119, 120, 128, 300]) {
      for (const step of [1, 7, 64, 1000]) {
        const h = new Sha256();
        for (let i = 0; i < n; i += step) h.update(data.subarray(i, Math.min(n, i + step)));
        assert.equal(h.hex(), createHash('sha256').update(data.subarray(0, n)).digest('hex'), `n=${n} step=${step}`);
      }
    }
  });

  it('sha256Blob of a file past the WebCrypto size, streamed into one buffer, equals node:crypto', async () => {
    // 16 MiB and a bit: read in 1 MiB steps, the last one short.
    const data = Buffer.alloc((16 << 20) + 12345);
    for (let i = 0; i < data.length; i += 4096) data[i] = (i >>> 12) & 255;
    const want = createHash('sha256').update(data).digest('hex');
    const seen = [];
    const got = await sha256Blob(new Blob([data]), { onProgress: (done, total) => seen.push([done, total]) });
    assert.equal(got, want);
    assert.deepEqual(seen.at(-1), [data.length, data.length]);
    // Without a byte stream: slices.
    const plain = new Blob([data]);
    Object.defineProperty(plain, 'stream', { value: () => ({ getReader: () => { throw new TypeError('no byob'); } }) });
    assert.equal(await sha256Blob(plain), want);
  });

  it('the latest signed checkpoint is the largest trusted one that verified', () => {
    const cps = [{ size: 5, line: 7, trusted: true, status: 'ok' }, { size: 9, line: 20, trusted: false, status: 'untrusted' }, { size: 8, line: 15, trusted: true, status: 'ok' }, { size: 10, line: 30, trusted: true, status: 'mismatch' }];
    assert.equal(latestSignedCheckpoint({ verdict: 'verified', checkpoints: cps }).size, 8);
    assert.equal(latestSignedCheckpoint({ verdict: 'partial', checkpoints: cps }).size, 8);
    assert.equal(latestSignedCheckpoint({ verdict: 'verified', checkpoints: [] }), null);
  });

  it('no checkpoint to pin unless the result is verified or partial without a fork, rollback or origin mismatch (red-team finding 4)', () => {
    const cps = [{ size: 6, line: 15, trusted: true, status: 'ok' }];
    for (const verdict of ['tampered', 'unverified', 'not_a_log', undefined]) {
      assert.equal(latestSignedCheckpoint({ verdict, checkpoints: cps, failures: [] }), null, String(verdict));
    }
    for (const code of ['fork', 'rollback', 'origin_mismatch']) {
      for (const verdict of ['verified', 'partial']) {
        assert.equal(latestSignedCheckpoint({ verdict, checkpoints: cps, failures: [{ code }] }), null, `${verdict} with ${code}`);
      }
    }
    assert.equal(latestSignedCheckpoint({ verdict: 'partial', checkpoints: cps, failures: [] }).size, 6);
  });
});

describe("readChunks (the opening pass's workers read their part as one stream)", () => {
  const bytes = Uint8Array.from({ length: 1000 }, (_, i) => (i * 7 + 3) & 255);
  /** A Blob whose byte stream hands out at most `piece` bytes a read (as a browser's may). */
  const pieces = (data, piece) => ({
    size: data.length,
    slice: (a, b) => {
      const part = data.slice(a, b);
      return {
        stream() {
          let at = 0;
          return new ReadableStream({
            type: 'bytes',
            pull(c) {
              const req = c.byobRequest;
              if (at >= part.length) {
                c.close();
                req?.respond(0);
                return;
              }
              const n = Math.min(piece, part.length - at, req.view.byteLength);
              req.view.set(part.subarray(at, at + n));
              at += n;
              req.respond(n);
            },
          });
        },
        arrayBuffer: async () => part.slice().buffer,
      };
    },
  });
  /** A Blob without a byte stream: slices are read. */
  const noStream = (data) => ({ size: data.length, slice: (a, b) => ({ stream() { throw new TypeError('no stream'); }, arrayBuffer: async () => data.slice(a, b).buffer }) });
  const collect = async (blob, from, to, size) => {
    const got = [];
    let takes = 0;
    for await (const c of readChunks(blob, from, to, size, (n) => {
      takes++;
      return new ArrayBuffer(n);
    })) got.push(c.slice());
    return { got, takes };
  };
  it('gives the span in chunks of the size asked, the last one shorter, whatever the stream hands out a read', async () => {
    for (const blob of [new Blob([bytes]), pieces(bytes, 7), pieces(bytes, 1000), noStream(bytes)]) {
      for (const [from, to, size] of [[0, 1000, 64], [13, 999, 100], [500, 501, 64], [0, 1000, 4096], [10, 10, 8]]) {
        const { got } = await collect(blob, from, to, size);
        const joined = new Uint8Array(got.reduce((n, c) => n + c.length, 0));
        let at = 0;
        for (const c of got) {
          joined.set(c, at);
          at += c.length;
        }
        assert.deepEqual(joined, bytes.subarray(from, to), `${from}-${to} by ${size}`);
        got.slice(0, -1).forEach((c) => assert.equal(c.length, size));
        assert.equal(got.length, Math.ceil((to - from) / size));
      }
    }
  });
  it('stops where a shorter blob ends', async () => {
    const { got } = await collect(pieces(bytes.subarray(0, 300), 50), 0, 1000, 128);
    assert.deepEqual(got.map((c) => c.length), [128, 128, 44]);
  });
});

describe('verifyFile(file, options): arguments of the wrong kind', () => {
  // Rejected before any work (no wasm loaded here): a TypeError naming the
  // option. Before, keys: 'k' gave "(keys || []).map is not a function",
  // chunkSize: 0 "could not read the file at byte 0", and a string as the
  // file the verdict not_a_log.
  const blob = new Blob(['{}\n']);
  const cases = [
    [blob, { keys: 'name+00000000+AA==' }, /^keys: expected an array of verifier keys .*got a string \(put it in an array: keys: \[key\]\)$/],
    [blob, { keys: ['a', 1] }, /^keys: expected an array of verifier keys .*got an array with a value that is not a string$/],
    [blob, { chunkSize: 0 }, /^chunkSize: expected a whole number of bytes, at least 1, got 0$/],
    [blob, { chunkSize: 1.5 }, /^chunkSize: .* got 1\.5$/],
    [blob, { chunkSize: '1024' }, /^chunkSize: .* got a string$/],
    ['{"seq":0}\n', {}, /^verifyFile: expected a File or Blob to verify, got a string$/],
    [new Uint8Array(4), {}, /^verifyFile: expected a File or Blob to verify, got a Uint8Array$/],
    [blob, null, /^verifyFile: expected an options object, got null$/],
    [blob, { engine: 'gpu' }, /^engine: expected 'auto', 'worker' or 'main', got "gpu"$/],
    [blob, { trustedCheckpoint: 12 }, /^trustedCheckpoint: expected the text of a checkpoint, got a number$/],
    [blob, { signal: {} }, /^signal: expected an AbortSignal .*got an object$/],
    [blob, { onProgress: true }, /^onProgress: expected a function, got a boolean$/],
    [blob, { keepValues: { values: 1 } }, /^keepValues: expected \{values, bytes\}/],
    [blob, { sealedList: 'no' }, /^sealedList: expected true or false, got a string$/],
  ];
  for (const [file, opts, message] of cases) {
    it(`${typeof file === 'string' ? 'a string' : file instanceof Blob ? 'a Blob' : 'a Uint8Array'}, ${JSON.stringify(opts)}`, async () => {
      const { verifyFile } = await import('../src/verifier.js');
      await assert.rejects(verifyFile(/** @type {any} */ (file), /** @type {any} */ (opts)), (e) => {
        assert.equal(e.name, 'TypeError', e.message);
        assert.match(e.message, message);
        return true;
      });
    });
  }
  it('a File from another realm is a File (checked by its tag, not instanceof)', async () => {
    const { checkVerifyFileArgs } = await import('../src/options.js');
    const foreign = { [Symbol.toStringTag]: 'File', size: 0, slice() {} };
    assert.doesNotThrow(() => checkVerifyFileArgs(foreign, { keys: [], chunkSize: 1, engine: 'main', signal: new AbortController().signal, keepValues: { values: 0, bytes: 0 }, sealedList: false, onProgress: () => {} }));
  });
});
