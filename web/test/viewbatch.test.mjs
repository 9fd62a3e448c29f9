// engine.js viewBatch (the verifier worker's paged path) against takeBatch,
// on the real wasm module in web/pkg (node web/build.mjs first): the same
// rows and strings block after block, and the columns stay where they were
// (reused, not allocated again) when a take is no larger than an earlier one.
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { initSync, WasmVerifier } from '../pkg/stele_wasm.js';
import { viewBatch } from '../src/engine.js';
import { Log, makeKey, event } from './forge.mjs';
import { WEB } from './helpers.mjs';

it('viewBatch gives takeBatch’s rows and strings, in columns reused from take to take', () => {
  const { memory } = initSync({ module: readFileSync(join(WEB, 'pkg/stele_wasm_bg.wasm')) });
  const key = makeKey('example.com/views');
  const log = new Log('example.com/views', key);
  for (let i = 1; i <= 3000; i++) {
    const e = event(i, { actor: `user-${i % 150}@example.com` });
    if (i % 7 === 0) delete e.outcome; // absent: code 0
    log.append(e);
  }
  log.checkpoint(key);
  const bytes = new TextEncoder().encode(log.text());
  const copied = new WasmVerifier(key.vkey, undefined);
  const viewed = new WasmVerifier(key.vkey, undefined);
  // A limit, so that later rows carry codes of values not kept and later takes no fresh values.
  for (const v of [copied, viewed]) v.limitValues(100, 1 << 20);
  // Blocks cut anywhere, the first the largest.
  const cuts = [0, 300_000, 360_000, 400_000, 401_000, bytes.length];
  assert.ok(bytes.length - 401_000 < 300_000);
  let addresses = null;
  let first = 0;
  let withStrings = 0;
  let withoutStrings = 0;
  for (let k = 1; k < cuts.length; k++) {
    const block = bytes.subarray(cuts[k - 1], cuts[k]);
    copied.push(block);
    viewed.push(block);
    const want = copied.takeBatch();
    const got = viewBatch(viewed, memory);
    assert.equal(got.n, want.n, `block ${k}`);
    assert.ok(got.n > 0, `block ${k} has rows`);
    for (const c of ['seq', 'ts', 'line', 'offset', 'length']) assert.deepEqual([...got[c]], [...want[c]], `block ${k} ${c}`);
    got.codes.forEach((col, c) => assert.deepEqual([...col], [...want.codes[c]], `block ${k} codes ${c}`));
    assert.deepEqual(got.fresh, want.fresh, `block ${k} fresh`);
    assert.deepEqual(got.tsRaw, want.tsRaw, `block ${k} tsRaw`);
    if (got.fresh.some((f) => f.length)) withStrings++;
    else withoutStrings++;
    const at = [got.seq, got.ts, got.line, got.offset, got.length, ...got.codes].map((a) => a.byteOffset);
    if (addresses) {
      assert.ok(got.n <= first);
      assert.deepEqual(at, addresses, `block ${k}: the columns of the first (largest) take are reused`);
    } else [addresses, first] = [at, got.n];
  }
  assert.ok(withStrings > 0 && withoutStrings > 0, 'takes with and without fresh values');
  assert.equal(viewBatch(viewed, memory).n, 0, 'drained: an empty take');
  assert.deepEqual(JSON.parse(viewed.finish()), JSON.parse(copied.finish()));
});
