// Node-only tests of the pure modules (no browser, no wasm).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { BatchEncoder, parseTs, formatTs } from '../src/engine.js';
import { EntryStore } from '../src/store.js';
import { prettyJson, summaryRows, verdictDetail } from '../src/util.js';
import { niceStep } from '../src/timeline.js';

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
  it('keeps timestamps it cannot reformat as they were', () => {
    const enc = new BatchEncoder();
    const store = new EntryStore();
    store.append(enc.encode([{ seq: 0, ts: '2026-01-01T00:00:00Z', line: 1, offset: 0, length: 1 }, { seq: 1, ts: 'yesterday', line: 2, offset: 2, length: 1 }]));
    assert.equal(store.tsText(0), '2026-01-01T00:00:00Z');
    assert.equal(store.tsText(1), 'yesterday');
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
