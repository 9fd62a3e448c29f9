// @stele/verifier: verify a Stele export in the browser. Nothing leaves the page.
//
//   import { init, verifyFile } from '@stele/verifier';
//   await init();
//   const report = await verifyFile(file, { keys: [vkey], onProgress: (done, total) => {} });
//
// Verification itself is the Rust core compiled to WebAssembly (../pkg); this
// module only moves bytes to it, in a Web Worker when one can be started.
import initWasm, { WasmVerifier, parseVerifierKey as wasmParseVerifierKey } from '../pkg/stele_wasm.js';
import { BatchEncoder, RowDecoder, abortError, freeQuietly, runVerification } from './engine.js';

export { STRING_COLUMNS, formatTs, parseTs } from './engine.js';

let initPromise = null;
let wasmModule = null;

/**
 * Loads the wasm verifier once. `source` may be a URL (default: the
 * stele_wasm_bg.wasm next to the JS glue), bytes, or a WebAssembly.Module.
 * Resolves to the compiled WebAssembly.Module.
 */
export function init(source) {
  if (!initPromise) {
    initPromise = (async () => {
      const mod = await compile(source ?? new URL('../pkg/stele_wasm_bg.wasm', import.meta.url));
      await initWasm({ module_or_path: mod });
      wasmModule = mod;
      return mod;
    })();
    initPromise.catch(() => {
      initPromise = null;
    });
  }
  return initPromise;
}

async function compile(source) {
  if (source instanceof WebAssembly.Module) return source;
  if (source instanceof ArrayBuffer || ArrayBuffer.isView(source)) return WebAssembly.compile(source);
  const res = await fetch(source);
  if (!res.ok) throw new Error(`could not load the verifier (${res.status} ${res.statusText}) from ${res.url}`);
  if (WebAssembly.compileStreaming && (res.headers.get('content-type') || '').startsWith('application/wasm')) {
    return WebAssembly.compileStreaming(res);
  }
  return WebAssembly.compile(await res.arrayBuffer());
}

function requireInit() {
  if (!wasmModule) throw new Error('call and await init() before using the verifier');
}

/** Parses a verifier key ("name+hex8+base64"); returns {name, key_id} or throws Error. */
export function parseVerifierKey(vkey) {
  requireInit();
  return JSON.parse(wasmParseVerifierKey(String(vkey).trim()));
}

/** Incremental verifier on the current thread. Call init() first. */
export class Verifier {
  constructor({ keys = [], trustedCheckpoint } = {}) {
    requireInit();
    const cp = trustedCheckpoint && trustedCheckpoint.trim() ? trustedCheckpoint : undefined;
    this._v = new WasmVerifier(keys.map((k) => k.trim()).filter(Boolean).join('\n'), cp);
    this._rows = new RowDecoder();
  }
  push(chunk) {
    this._v.push(chunk);
  }
  takeEntries() {
    return this._rows.decode(this._v.takeBatch());
  }
  finish() {
    const v = this._v;
    if (!v) throw new Error('verifier already finished');
    this._v = null;
    try {
      return JSON.parse(v.finish());
    } finally {
      freeQuietly(v);
    }
  }
  free() {
    if (this._v) freeQuietly(this._v);
    this._v = null;
  }
}

// ---- workers ----------------------------------------------------------------

let workerFactory = () => new Worker(new URL('./worker.js', import.meta.url), { type: 'module' });
// Helper workers that hash and parse blocks for the verifier worker; none in
// the single-file build (setWorkerFactory), where workers come from Blob URLs.
let helperUrl = new URL('./prepare-worker.js', import.meta.url).href;
const idleWorkers = [];

/** Replaces how workers are created (the single-file build uses a Blob URL). */
export function setWorkerFactory(factory) {
  workerFactory = factory;
  helperUrl = null;
  idleWorkers.splice(0).forEach((w) => w.terminate());
}

/** Helper workers per verification: the other cores, at most 3. */
function helperCount() {
  const cores = globalThis.navigator?.hardwareConcurrency || 1;
  return helperUrl ? Math.max(0, Math.min(cores - 1, 3)) : 0;
}

async function startWorker() {
  const mod = await init();
  const w = workerFactory();
  await new Promise((resolve, reject) => {
    w.onmessage = (e) => (e.data.type === 'ready' ? resolve() : reject(new Error(e.data.message)));
    w.onerror = (e) => {
      e.preventDefault?.();
      reject(new Error(`could not start the verification worker${e.message ? ': ' + e.message : ''}`));
    };
    w.postMessage({ type: 'init', module: mod, helperUrl, helpers: helperCount() });
  }).catch((e) => {
    w.terminate();
    throw e;
  });
  return w;
}

async function acquireWorker() {
  return idleWorkers.pop() || startWorker();
}

/** Starts a worker ahead of time, so the first verification makes no request. */
export async function prewarm() {
  try {
    idleWorkers.push(await startWorker());
    return true;
  } catch (e) {
    console.warn(`verification worker unavailable, will verify on the main thread: ${e.message}`);
    return false;
  }
}

let jobId = 0;

/**
 * Verifies a Blob/File. Options: keys (string[]), trustedCheckpoint (string),
 * onProgress(bytesDone, total), onEntries(rows), onBatch(columnarBatch),
 * signal (AbortSignal), chunkSize (bytes, default 1 MiB), engine
 * ('auto' | 'worker' | 'main'; 'auto' falls back to the main thread when no
 * worker can be started, e.g. from file://). Resolves to the report object;
 * rejects with an AbortError DOMException when cancelled.
 */
export async function verifyFile(file, opts = {}) {
  const { signal, engine = 'auto' } = opts;
  if (signal?.aborted) throw abortError();
  await init();
  if (signal?.aborted) throw abortError();
  if (engine === 'main') return verifyInMainThread(file, opts);
  let worker;
  try {
    worker = await acquireWorker();
  } catch (e) {
    if (engine === 'worker') throw e;
    return verifyInMainThread(file, opts);
  }
  return verifyInWorker(worker, file, opts);
}

function verifyInWorker(w, file, { keys = [], trustedCheckpoint, onProgress, onEntries, onBatch, signal, chunkSize = 1 << 20 }) {
  if (signal?.aborted) {
    idleWorkers.push(w);
    return Promise.reject(abortError());
  }
  const id = ++jobId;
  return new Promise((resolve, reject) => {
    const cleanup = () => {
      signal?.removeEventListener('abort', onAbort);
      w.onmessage = null;
      w.onerror = null;
    };
    const onAbort = () => {
      cleanup();
      w.terminate();
      reject(abortError());
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    w.onerror = (e) => {
      e.preventDefault?.();
      cleanup();
      w.terminate();
      reject(new Error(`verification worker failed${e.message ? ': ' + e.message : ''}`));
    };
    w.onmessage = (e) => {
      const m = e.data;
      if (m.id !== id) return;
      try {
        if (m.type === 'progress') onProgress?.(m.done, m.total);
        else if (m.type === 'batch') {
          onBatch?.(m.batch);
          if (m.rows) onEntries?.(m.rows);
        } else if (m.type === 'done' || m.type === 'error') {
          cleanup();
          idleWorkers.push(w);
          if (m.type === 'done') resolve(m.report);
          else reject(m.name === 'AbortError' ? abortError() : new Error(m.message));
        }
      } catch (err) {
        cleanup();
        w.terminate();
        reject(err);
      }
    };
    w.postMessage({ type: 'verify', id, file, keys, trustedCheckpoint, chunkSize, wantRows: !!onEntries });
  });
}

// Lets the event loop run (paint, input) between chunks without setTimeout's clamping.
function yieldToEventLoop() {
  return new Promise((resolve) => {
    const ch = new MessageChannel();
    ch.port1.onmessage = () => resolve();
    ch.port2.postMessage(null);
  });
}

async function verifyInMainThread(file, { keys = [], trustedCheckpoint, onProgress, onEntries, onBatch, signal, chunkSize = 1 << 20 }) {
  const encoder = new BatchEncoder();
  let last = performance.now();
  return runVerification({
    WasmVerifier,
    file,
    keys,
    trustedCheckpoint,
    chunkSize,
    onProgress,
    // Plain rows only when the caller asked for them; else columnar batches straight from wasm.
    onRows: onEntries
      ? (rows) => {
          if (onBatch) onBatch(encoder.encode(rows));
          onEntries(rows);
        }
      : undefined,
    onBatch: onEntries ? undefined : onBatch,
    // Yield to rendering at least every ~30 ms of work.
    pause: async () => {
      if (performance.now() - last > 30) {
        await yieldToEventLoop();
        last = performance.now();
      }
    },
    cancelled: () => !!signal?.aborted,
  });
}
