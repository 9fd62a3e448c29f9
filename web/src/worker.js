// Module Web Worker: verifies one file at a time so the page never freezes.
// Protocol (all messages are plain objects):
//   in:  {type:'init', module: WebAssembly.Module}
//        {type:'verify', id, file: Blob, keys: string[], trustedCheckpoint, chunkSize, wantRows}
//   out: {type:'ready'} | {type:'init-error', message}
//        {type:'progress', id, done, total}
//        {type:'batch', id, batch, rows?}
//        {type:'done', id, report} | {type:'error', id, name, message}
import initWasm, { WasmVerifier, prepareBlock } from '../pkg/stele_wasm.js';
import { BatchEncoder, batchTransfer, freeQuietly, runVerification, startPool } from './engine.js';

let ready = null;
let pool = null;

self.onmessage = async (event) => {
  const msg = event.data;
  if (msg.type === 'init') {
    ready = initWasm({ module_or_path: msg.module });
    try {
      await ready;
      if (msg.helperUrl && msg.helpers > 0) {
        // Without helpers (they may fail to start) verification runs here alone.
        pool = await startPool({ makeWorker: () => new Worker(msg.helperUrl, { type: 'module' }), module: msg.module, size: msg.helpers });
      }
      await warmUp(pool);
      self.postMessage({ type: 'ready' });
    } catch (e) {
      self.postMessage({ type: 'init-error', message: String(e && e.message ? e.message : e) });
    }
    return;
  }
  if (msg.type === 'verify') {
    const { id, file, keys, trustedCheckpoint, chunkSize, wantRows } = msg;
    const encoder = new BatchEncoder();
    try {
      await ready;
      const report = await runVerification({
        WasmVerifier,
        prepareBlock,
        file,
        keys,
        trustedCheckpoint,
        chunkSize,
        onProgress: (done, total) => self.postMessage({ type: 'progress', id, done, total }),
        onRows: wantRows
          ? (rows) => {
              const batch = encoder.encode(rows);
              self.postMessage({ type: 'batch', id, batch, rows }, batchTransfer(batch));
            }
          : undefined,
        onBatch: wantRows ? undefined : (batch) => self.postMessage({ type: 'batch', id, batch }, batchTransfer(batch)),
        pool,
      });
      self.postMessage({ type: 'done', id, report });
    } catch (e) {
      self.postMessage({ type: 'error', id, name: (e && e.name) || 'Error', message: String(e && e.message ? e.message : e) });
    }
  }
};

/**
 * Runs a made-up 2 MB log through every code path a verification uses, here
 * and in each helper, so the engine has optimised the hot wasm functions
 * before the first real file arrives (the first file would otherwise run
 * partly in the baseline compiler's slower code). The result is discarded.
 */
async function warmUp(pool) {
  const zeros = '0'.repeat(64);
  let text = '';
  for (let i = 0; i < 8000; i++) {
    text += `{"event":{"action":"read","actor":"user-${i % 50}","outcome":"success","target":"db/t/${i}","type":"warm-up"},"prev":"${zeros}","seq":${i},"ts":"2026-01-01T00:00:00.000000Z"}\n`;
  }
  const block = new TextEncoder().encode(text);
  const v = new WasmVerifier('', undefined);
  try {
    v.push(block);
    v.takeBatch();
    v.pushPrepared(block, prepareBlock(block, block.length));
    v.takeBatch();
    v.finish();
  } finally {
    freeQuietly(v);
  }
  if (pool) await Promise.all(Array.from({ length: pool.size }, () => pool.prepare(block.slice(), 0)));
}
