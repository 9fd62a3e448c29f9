// Type checks, no browser: tsc --checkJs over the package's modules (the
// worker protocol at every sender and receiver; index.d.ts against
// verifier.js), from web/tsconfig.json. The bundler app is checked against
// the packed package's types in bundler.test.mjs. Needs web/pkg (the
// wasm-bindgen output, for its .d.ts): node web/build.mjs first.
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WEB, need, tsc } from './helpers.mjs';

it('tsc --checkJs: the package modules, the worker protocol and index.d.ts agree', { timeout: 120_000 }, () => {
  need(join(WEB, 'pkg/stele_wasm.d.ts'), 'run node web/build.mjs first');
  const { ok, out } = tsc(join(WEB, 'tsconfig.json'));
  assert.ok(ok, `tsc found errors:\n${out}`);
});

it('tsc rejects a worker message that does not match protocol.js (the check has teeth)', { timeout: 120_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'stele-types-'));
  try {
    const protocol = join(WEB, 'src/protocol.js');
    writeFileSync(join(dir, 'bad.js'), [
      `import { MSG } from ${JSON.stringify(protocol)};`,
      `/** @type {import(${JSON.stringify(protocol)}).VerifyMessage} */`,
      'export const m = { type: MSG.VERIFY, id: 1, keys: [], chunkSize: 1, wantRows: false };',
      `/** @type {import(${JSON.stringify(protocol)}).FromWorker} */`,
      "export const n = { type: 'progres', id: 1, done: 0, total: 0 };",
      '',
    ].join('\n'));
    writeFileSync(join(dir, 'tsconfig.json'), JSON.stringify({ extends: join(WEB, 'tsconfig.json'), include: ['bad.js'] }));
    const { ok, out } = tsc(join(dir, 'tsconfig.json'));
    assert.equal(ok, false, 'tsc accepted malformed messages');
    assert.match(out, /bad\.js\(3,\d+\).*'file'/, out);
    assert.match(out, /bad\.js\(5,\d+\)/, out);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

it('verifyFile(file, { keys, identity }) is typed: identity a string; the report has sealed values and counts', { timeout: 120_000 }, () => {
  need(join(WEB, 'pkg/stele_wasm.d.ts'), 'run node web/build.mjs first');
  const dir = mkdtempSync(join(tmpdir(), 'stele-types-'));
  try {
    const api = JSON.stringify(join(WEB, 'src/index.js'));
    writeFileSync(join(dir, 'ok.ts'), [
      `import { verifyFile, type SealedValue, type SealedCounts } from ${api};`,
      'export async function opened(file: Blob, identity: string): Promise<[number, string | null, SealedValue[]]> {',
      "  const r = await verifyFile(file, { keys: ['k'], identity });",
      '  const values: SealedValue[] = r.sealed ?? [];',
      '  const counts: SealedCounts | undefined = r.sealed_counts;',
      "  const state: 'opened' | 'sealed' | 'forgotten' | 'redacted' | 'mismatch' | undefined = values[0]?.state;",
      '  return [counts?.opened ?? 0, state ?? null, values];',
      '}',
      '',
    ].join('\n'));
    writeFileSync(join(dir, 'bad.ts'), [
      `import { verifyFile } from ${api};`,
      'export const a = (f: Blob) => verifyFile(f, { keys: [], identity: 42 });',
      'export const b = async (f: Blob) => (await verifyFile(f, { identity: "x" })).sealed_counts?.unknown;',
      '',
    ].join('\n'));
    writeFileSync(join(dir, 'tsconfig.json'), JSON.stringify({ extends: join(WEB, 'tsconfig.json'), include: ['ok.ts', 'bad.ts'] }));
    const { ok, out } = tsc(join(dir, 'tsconfig.json'));
    assert.equal(ok, false, 'tsc accepted a numeric identity');
    assert.doesNotMatch(out, /ok\.ts/, out);
    assert.match(out, /bad\.ts\(2,\d+\)/, out);
    assert.match(out, /bad\.ts\(3,\d+\).*unknown/, out);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

it('<stele-verifier> is typed: state, the wasm property, and its events with their detail (stele-error with its code)', { timeout: 120_000 }, () => {
  need(join(WEB, 'pkg/stele_wasm.d.ts'), 'run node web/build.mjs first');
  const dir = mkdtempSync(join(tmpdir(), 'stele-types-'));
  try {
    const element = JSON.stringify(join(WEB, 'src/stele-verifier.js'));
    writeFileSync(join(dir, 'ok.ts'), [
      `import { SteleVerifierElement, type SteleErrorCode, type SteleVerifierState } from ${element};`,
      "const el = document.createElement('stele-verifier');",
      'export const same: SteleVerifierElement = el;',
      'export const state: SteleVerifierState = el.state;',
      "el.wasm = '/x.wasm';",
      'export const wasm: string = el.wasm;',
      'export const seen: string[] = [];',
      'el.addEventListener(\'stele-progress\', (e) => seen.push(`${e.detail.done} of ${e.detail.total}`));',
      "el.addEventListener('stele-report', (e) => seen.push(e.detail.report.verdict));",
      'el.addEventListener(\'stele-error\', (e) => { const code: SteleErrorCode = e.detail.code; seen.push(`${code}: ${e.detail.message}`); });',
      "document.addEventListener('stele-error', (e) => seen.push(e.detail.code));",
      '',
    ].join('\n'));
    writeFileSync(join(dir, 'bad.ts'), [
      `import ${element};`,
      "const el = document.createElement('stele-verifier');",
      "el.addEventListener('stele-error', (e) => e.detail.code === 'no_such_code');",
      "export const s: 'verified' = el.state;",
      "el.addEventListener('stele-report', (e) => e.detail.verdict);",
      '',
    ].join('\n'));
    writeFileSync(join(dir, 'tsconfig.json'), JSON.stringify({ extends: join(WEB, 'tsconfig.json'), include: ['ok.ts', 'bad.ts'] }));
    const { ok, out } = tsc(join(dir, 'tsconfig.json'));
    assert.equal(ok, false, 'tsc accepted an unknown error code');
    assert.doesNotMatch(out, /ok\.ts/, out);
    assert.match(out, /bad\.ts\(3,\d+\).*no_such_code/, out);
    assert.match(out, /bad\.ts\(4,\d+\)/, out);
    assert.match(out, /bad\.ts\(5,\d+\).*verdict/, out);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
