// The verifier worker: verifies one file at a time so the page never freezes,
// with helper workers (prepare-worker.js) hashing and parsing blocks when the
// machine has cores to spare. Messages: protocol.js.
import initWasm, { WasmVerifier, prepareBlock } from '../pkg/stele_wasm.js';
import { BatchEncoder, batchTransfer, freeQuietly, runVerification, startPool } from './engine.js';
import { prepareInto } from './prepare.js';
import { MSG, errorText } from './protocol.js';
import { PagedStore } from './store.js';
import { trustedWorkerURL } from './trusted.js';

/** @typedef {import('./protocol.js').ToWorker} ToWorker */
/** @typedef {import('./protocol.js').FromWorker} FromWorker */

/** @type {Promise<{memory: WebAssembly.Memory}> | null} */
let ready = null;
/** @type {import('./engine.js').Pool | null} */
let pool = null;

/** Least time between two posts of a paged verification's rows and progress (ms). */
const POST_MS = 100;

/** @param {FromWorker} msg @param {Transferable[]} [transfer] */
function reply(msg, transfer = []) {
  self.postMessage(msg, { transfer });
}

/**
 * Starts a helper worker. From a script text (the single-file build, where
 * nothing can be loaded by URL) as a classic worker; else prepare-worker.js
 * next to this file, written as `new Worker(new URL(...), {type: 'module'})`
 * so that bundlers (Vite, webpack, Parcel) find, bundle and emit it.
 * @param {string} [source]
 * @returns {() => Worker}
 */
function helperFactory(source) {
  if (source) {
    const url = URL.createObjectURL(new Blob([source], { type: 'text/javascript' }));
    return () => new Worker(url);
  }
  // Under Trusted Types, from the package's policy (./trusted.js).
  const trusted = trustedWorkerURL('prepare-worker.js', import.meta.url, 'worker.js');
  return () => (trusted ? new Worker(trusted, { type: 'module' }) : new Worker(new URL('./prepare-worker.js', import.meta.url), { type: 'module' }));
}

self.onmessage = async (/** @type {MessageEvent<ToWorker>} */ event) => {
  const msg = event.data;
  if (msg.type === MSG.INIT) {
    ready = initWasm({ module_or_path: msg.module });
    try {
      await ready;
      if (msg.helpers > 0) {
        // Without helpers (they may fail to start) verification runs here alone.
        pool = await startPool({ makeWorker: helperFactory(msg.helperSource), module: msg.module, size: msg.helpers });
      }
      await warmUp(pool);
      reply({ type: MSG.READY, helpers: pool ? pool.size : 0 });
    } catch (e) {
      reply({ type: MSG.INIT_ERROR, message: errorText(e) });
    }
    return;
  }
  if (msg.type === MSG.VERIFY) {
    const { id, file, keys, trustedCheckpoint, chunkSize, wantRows, keepValues, pages } = msg;
    const encoder = new BatchEncoder();
    // A big file's rows: kept here as pages, the page gets what changed (not the batches).
    const pager = pages && !wantRows ? new PagedStore() : null;
    // With pages, what changed and the progress are posted at most every
    // POST_MS, not after each block: the page redraws a few times a second,
    // and each message is an event, a structured clone and typed arrays
    // that its isolate (and this one) hold until they are collected.
    let posted = -Infinity;
    let rowsPosted = 0;
    /** @type {[number, number] | null} */
    let progress = null;
    const post = (/** @type {boolean} */ last) => {
      const now = performance.now();
      if (!last && now - posted < POST_MS) return;
      posted = now;
      if (pager && pager.n !== rowsPosted) {
        rowsPosted = pager.n;
        reply({ type: MSG.BATCH, id, pages: pager.takeDelta() });
      }
      if (progress) reply({ type: MSG.PROGRESS, id, done: progress[0], total: progress[1] });
      progress = null;
    };
    try {
      const { memory } = await /** @type {Promise<{memory: WebAssembly.Memory}>} */ (ready);
      const report = await runVerification({
        WasmVerifier,
        prepareBlock,
        file,
        keys,
        trustedCheckpoint,
        chunkSize,
        keepValues: wantRows ? undefined : keepValues,
        // The pager reads each batch at once: views of the verifier's reused columns, no copies.
        views: pager ? memory : undefined,
        onProgress: pager
          ? (done, total) => {
              progress = [done, total];
              post(done === total);
            }
          : (done, total) => reply({ type: MSG.PROGRESS, id, done, total }),
        onRows: wantRows
          ? (rows) => {
              const batch = encoder.encode(rows);
              reply({ type: MSG.BATCH, id, batch, rows }, batchTransfer(batch));
            }
          : undefined,
        onBatch: wantRows
          ? undefined
          : pager
            ? (batch) => pager.append(batch)
            : (batch) => reply({ type: MSG.BATCH, id, batch }, batchTransfer(batch)),
        pool,
      });
      post(true);
      reply({ type: MSG.DONE, id, report });
    } catch (e) {
      reply({ type: MSG.ERROR, id, name: (e instanceof Error && e.name) || 'Error', message: errorText(e) });
    }
  }
};

/**
 * Runs a made-up 2 MB log through every code path a verification uses, here
 * and in each helper, so the engine has optimised the hot wasm functions
 * before the first real file arrives (the first file would otherwise run
 * partly in the baseline compiler's slower code). The result is discarded.
 * @param {import('./engine.js').Pool | null} pool
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
    v.pushPrepared(block, prepareInto(prepareBlock, block, block.length));
    v.takeBatch();
    v.finish();
  } finally {
    freeQuietly(v);
  }
  if (pool) await Promise.all(Array.from({ length: pool.size }, () => pool.prepare(block.slice(), 0)));
}
