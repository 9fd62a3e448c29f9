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
import { MSG } from './protocol.js';

export { STRING_COLUMNS, formatTs, parseTs } from './engine.js';

/** @typedef {import('./index.js').Report} Report */
/** @typedef {import('./index.js').VerifyFileOptions} VerifyFileOptions */

/** @type {Promise<WebAssembly.Module> | null} */
let initPromise = null;
/** @type {WebAssembly.Module | null} */
let wasmModule = null;

/**
 * Loads the wasm verifier once. `source` may be a URL (default: the
 * stele_wasm_bg.wasm next to the JS glue), bytes, or a WebAssembly.Module.
 * Resolves to the compiled WebAssembly.Module.
 * @param {string | URL | BufferSource | WebAssembly.Module} [source]
 * @returns {Promise<WebAssembly.Module>}
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

/**
 * @param {string | URL | BufferSource | WebAssembly.Module} source
 * @returns {Promise<WebAssembly.Module>}
 */
async function compile(source) {
  if (source instanceof WebAssembly.Module) return source;
  if (source instanceof ArrayBuffer || ArrayBuffer.isView(source)) return WebAssembly.compile(/** @type {BufferSource} */ (source));
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

/**
 * Parses a verifier key ("name+hex8+base64"); returns {name, key_id} or throws Error.
 * @param {string} vkey
 * @returns {import('./index.js').VerifierKeyInfo}
 */
export function parseVerifierKey(vkey) {
  requireInit();
  return JSON.parse(wasmParseVerifierKey(String(vkey).trim()));
}

/** Incremental verifier on the current thread. Call init() first. */
export class Verifier {
  /** @param {import('./index.js').VerifierOptions} [options] */
  constructor({ keys = [], trustedCheckpoint } = {}) {
    requireInit();
    const cp = trustedCheckpoint && trustedCheckpoint.trim() ? trustedCheckpoint : undefined;
    /** @type {WasmVerifier | null} */
    this._v = new WasmVerifier(keys.map((k) => k.trim()).filter(Boolean).join('\n'), cp);
    this._rows = new RowDecoder();
  }
  /** @returns {WasmVerifier} */
  _live() {
    if (!this._v) throw new Error('verifier already finished');
    return this._v;
  }
  /** @param {Uint8Array} chunk */
  push(chunk) {
    this._live().push(chunk);
  }
  /** @returns {import('./index.js').EntrySummary[]} */
  takeEntries() {
    return this._rows.decode(/** @type {import('./index.js').EntryBatch} */ (this._live().takeBatch()));
  }
  /** @returns {Report} */
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

/**
 * The summaries core gives `lines` (entry bytes, each without its `\n`)
 * read as entry lines: one per line, in order, with the display values
 * onEntries gives (cut, escapes decoded). For values a batch did not keep
 * (VerifyFileOptions.keepValues): read the entry's bytes from the file and
 * pass them here. `line`, `offset` and `length` count in the lines given.
 * Call init() first.
 * @param {Uint8Array[]} lines
 * @returns {import('./index.js').EntrySummary[]}
 */
export function summarizeLines(lines) {
  requireInit();
  let size = 3;
  for (const l of lines) size += l.length + 1;
  const buf = new Uint8Array(size);
  // A first line `{}` makes every line given an entry line: a file's first
  // line may otherwise be read as a header or a byte order mark.
  buf.set([0x7b, 0x7d, 0x0a]);
  let at = 3;
  for (const l of lines) {
    buf.set(l, at);
    at += l.length;
    buf[at++] = 0x0a;
  }
  const v = new Verifier();
  let rows;
  try {
    v.push(buf);
    rows = v.takeEntries();
  } finally {
    v.free();
  }
  if (rows.length !== lines.length + 1) throw new Error(`summarizeLines: ${lines.length} lines gave ${rows.length - 1} entries (a line holds a line feed?)`);
  return rows.slice(1).map((r) => ({ ...r, line: r.line - 1, offset: r.offset - 3 }));
}

// ---- workers ----------------------------------------------------------------
// Messages between the page, the verifier worker and its helpers: protocol.js.

/**
 * A started verifier worker and how many helper workers it runs.
 * @typedef {{worker: Worker, helpers: number}} VerifierWorker
 */

// Written as `new Worker(new URL(...), {type: 'module'})` so that bundlers
// (Vite, webpack, Parcel) find, bundle and emit the worker.
/** @type {() => Worker} */
let workerFactory = () => new Worker(new URL('./worker.js', import.meta.url), { type: 'module' });
/** @type {string | undefined} */
let helperSource;
/** @type {VerifierWorker[]} */
const idleWorkers = [];

/**
 * Replaces how the verifier worker is created, e.g. from a Blob URL or a
 * bundler's worker import. `helperSource` is the helper's classic-script
 * text, for workers that cannot load prepare-worker.js by URL (the
 * single-file build); without it the worker loads prepare-worker.js next to
 * itself, and verifies alone if that fails.
 * @param {() => Worker} factory
 * @param {{helperSource?: string}} [options]
 */
export function setWorkerFactory(factory, options = {}) {
  workerFactory = factory;
  helperSource = options.helperSource;
  idleWorkers.splice(0).forEach((w) => w.worker.terminate());
}

/** Helper workers per verification: the other cores, at most 3. */
function helperCount() {
  const cores = globalThis.navigator?.hardwareConcurrency || 1;
  return Math.max(0, Math.min(cores - 1, 3));
}

/** @returns {Promise<VerifierWorker>} */
async function startWorker() {
  const mod = await init();
  const w = workerFactory();
  const helpers = await new Promise((resolve, reject) => {
    w.onmessage = (/** @type {MessageEvent<import('./protocol.js').FromWorker>} */ e) => {
      const m = e.data;
      if (m.type === MSG.READY) resolve(m.helpers);
      else reject(new Error(m.type === MSG.INIT_ERROR ? m.message : `unexpected ${m.type} message from the verification worker`));
    };
    w.onerror = (e) => {
      e.preventDefault?.();
      reject(new Error(`could not start the verification worker${e.message ? ': ' + e.message : ''}`));
    };
    /** @type {import('./protocol.js').InitMessage} */
    const msg = { type: MSG.INIT, module: mod, helpers: helperCount(), helperSource };
    w.postMessage(msg);
  }).catch((e) => {
    w.terminate();
    throw e;
  });
  return { worker: w, helpers };
}

async function acquireWorker() {
  return idleWorkers.pop() || startWorker();
}

/**
 * Starts a worker ahead of time, so the first verification makes no request.
 * @returns {Promise<boolean>}
 */
export async function prewarm() {
  try {
    idleWorkers.push(await startWorker());
    return true;
  } catch (e) {
    console.warn(`verification worker unavailable, will verify on the main thread: ${e instanceof Error ? e.message : e}`);
    return false;
  }
}

let jobId = 0;

/**
 * Verifies a Blob/File. Options: keys (string[]), trustedCheckpoint (string),
 * onProgress(bytesDone, total), onEntries(rows), onBatch(columnarBatch),
 * signal (AbortSignal), chunkSize (bytes, default 1 MiB), engine
 * ('auto' | 'worker' | 'main'; 'auto' falls back to the main thread when no
 * worker can be started), onEngine({engine, helpers}) (called once, before
 * the first progress: where this file is verified), identity (the text of
 * an age identity file: sealed values are opened, see ./sealed.js), tsaCa
 * (a TSA CA certificate, PEM text or file bytes: timestamp tokens are
 * checked, see ./timestamps.js). Resolves
 * to the report object; rejects with an AbortError DOMException when cancelled.
 * @param {Blob} file
 * @param {import('./index.js').VerifyFileOptions} [opts]
 * @returns {Promise<import('./index.js').Report>}
 */
export async function verifyFile(file, opts = {}) {
  if (opts.tsaCa != null) return verifyFileTimestamps(file, opts);
  if (opts.identity != null || (opts.policy && opts.policy.trim())) return verifyFileSealed(file, opts);
  const report = await verifyPlain(file, opts);
  if (!report.notices?.some((n) => n.code === 'rotation_unchecked')) return report;
  // The log rotated its key (docs/FORMAT.md 15): the plain verifier leaves
  // rotation out to stay small, so the sealed module, which follows it,
  // verifies the file again and its report is the result.
  const { verifySealed } = await import('./sealed.js');
  return verifySealed(file, {
    keys: opts.keys,
    trustedCheckpoint: opts.trustedCheckpoint,
    signal: opts.signal,
    chunkSize: opts.chunkSize,
  });
}

/**
 * With a TSA certificate: the file is verified as always (rows, batches,
 * progress), then once more by the lazily loaded timestamp module
 * (./timestamps.js), whose report, with every token checked (and sealed
 * values opened when an identity is given too), is the result.
 * @param {Blob} file
 * @param {import('./index.js').VerifyFileOptions} opts
 * @returns {Promise<import('./index.js').Report>}
 */
async function verifyFileTimestamps(file, opts) {
  const { tsaCa, identity, policy, ...plain } = opts;
  if (typeof tsaCa !== 'string' && !(tsaCa instanceof Uint8Array)) throw new TypeError('tsaCa: expected the PEM text or the bytes of a certificate file');
  if (policy && policy.trim()) throw new TypeError('tsaCa and policy: a TSA certificate and a witness policy cannot be checked in one verification yet; verify once with each');
  if (identity != null && typeof identity !== 'string') throw new TypeError('identity: expected the text of an age identity file');
  const load = import('./timestamps.js');
  const onProgress = plain.onProgress;
  await verifyPlain(file, { ...plain, onProgress: onProgress && ((done, total) => onProgress(done / 2, total)) });
  const { verifyTimestamps } = await load;
  return verifyTimestamps(file, {
    keys: plain.keys,
    tsaCa,
    identity,
    trustedCheckpoint: plain.trustedCheckpoint,
    signal: plain.signal,
    chunkSize: plain.chunkSize,
    onProgress: onProgress && ((done, total) => onProgress(total / 2 + done / 2, total)),
  });
}

/**
 * With an auditor's identity or a witness policy: the file is verified as
 * always (rows, batches, progress), then the lazily loaded sealed module
 * (./sealed.js) reads it once more. With a policy, its whole verifier runs
 * again (the witness quorum, docs/FORMAT.md 14, is left out of the plain
 * verifier to keep it small) and its report is the result. With an identity
 * alone, it reads the file for its sealed values only (the checks the plain
 * verifier, built without them, skips): it opens what the identity can and
 * adds its findings to the report.
 * @param {Blob} file
 * @param {import('./index.js').VerifyFileOptions} opts
 * @returns {Promise<import('./index.js').Report>}
 */
async function verifyFileSealed(file, opts) {
  const { identity, policy, ...plain } = opts;
  if (identity != null && typeof identity !== 'string') throw new TypeError('identity: expected the text of an age identity file');
  if (policy != null && typeof policy !== 'string') throw new TypeError('policy: expected the text of a witness policy file');
  const { openSealed, openSealedEarly, addOpenings, checkIdentity, verifySealed } = await import('./sealed.js');
  if (identity != null) await checkIdentity(identity); // a bad key fails before the work, not after
  const withPolicy = policy != null && policy.trim() !== '';
  // The opening pass runs beside the verification (which has its worker),
  // with the origin the genesis entry names; kept only if the verified
  // origin is the same, else run again below.
  const early = identity != null && !withPolicy
    ? openSealedEarly(file, { identity, signal: plain.signal, chunkSize: plain.chunkSize }).catch(() => null)
    : null;
  const onProgress = plain.onProgress;
  const report = await verifyPlain(file, { ...plain, onProgress: onProgress && ((done, total) => onProgress(done * 0.6, total)) });
  const second = {
    signal: plain.signal,
    chunkSize: plain.chunkSize,
    onProgress: onProgress && ((/** @type {number} */ done, /** @type {number} */ total) => onProgress(total * 0.6 + done * 0.4, total)),
  };
  // A witness policy, or a log that rotated its key (docs/FORMAT.md 15, left
  // out of the plain verifier): this module's whole verifier decides.
  if (withPolicy || report.notices?.some((n) => n.code === 'rotation_unchecked')) {
    return verifySealed(file, { ...second, keys: plain.keys, identity, policy: withPolicy ? policy : undefined, trustedCheckpoint: plain.trustedCheckpoint });
  }
  if (report.verdict === 'not_a_log' || identity == null) return Object.assign(report, { sealed: [] });
  const got = await early;
  if (got && report.origin != null && got.origin === report.origin) return addOpenings(report, got.pass);
  return openSealed(file, report, { ...second, identity });
}

/**
 * @param {Blob} file
 * @param {import('./index.js').VerifyFileOptions} opts
 * @returns {Promise<import('./index.js').Report>}
 */
async function verifyPlain(file, opts) {
  const { signal, engine = 'auto', onEngine } = opts;
  if (signal?.aborted) throw abortError();
  await init();
  if (signal?.aborted) throw abortError();
  if (engine === 'main') {
    onEngine?.({ engine: 'main', helpers: 0 });
    return verifyInMainThread(file, opts);
  }
  let worker;
  try {
    worker = await acquireWorker();
  } catch (e) {
    if (engine === 'worker') throw e;
    onEngine?.({ engine: 'main', helpers: 0 });
    return verifyInMainThread(file, opts);
  }
  onEngine?.({ engine: 'worker', helpers: worker.helpers });
  return verifyInWorker(worker, file, opts);
}

/**
 * @param {VerifierWorker} vw
 * @param {Blob} file
 * @param {import('./index.js').VerifyFileOptions} opts
 * @returns {Promise<import('./index.js').Report>}
 */
function verifyInWorker(vw, file, { keys = [], trustedCheckpoint, onProgress, onEntries, onBatch, signal, chunkSize = 1 << 20, keepValues }) {
  const w = vw.worker;
  if (signal?.aborted) {
    idleWorkers.push(vw);
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
    w.onmessage = (/** @type {MessageEvent<import('./protocol.js').FromWorker>} */ e) => {
      const m = e.data;
      if (!('id' in m) || m.id !== id) return;
      try {
        if (m.type === MSG.PROGRESS) onProgress?.(m.done, m.total);
        else if (m.type === MSG.BATCH) {
          onBatch?.(m.batch);
          if (m.rows) onEntries?.(m.rows);
        } else if (m.type === MSG.DONE || m.type === MSG.ERROR) {
          cleanup();
          idleWorkers.push(vw);
          if (m.type === MSG.DONE) resolve(m.report);
          else reject(m.name === 'AbortError' ? abortError() : new Error(m.message));
        }
      } catch (err) {
        cleanup();
        w.terminate();
        reject(err);
      }
    };
    /** @type {import('./protocol.js').VerifyMessage} */
    const msg = { type: MSG.VERIFY, id, file, keys, trustedCheckpoint, chunkSize, wantRows: !!onEntries, keepValues };
    w.postMessage(msg);
  });
}

/**
 * Lets the event loop run (paint, input) between chunks without setTimeout's clamping.
 * @returns {Promise<void>}
 */
function yieldToEventLoop() {
  return new Promise((resolve) => {
    const ch = new MessageChannel();
    ch.port1.onmessage = () => resolve();
    ch.port2.postMessage(null);
  });
}

/**
 * @param {Blob} file
 * @param {VerifyFileOptions} opts
 * @returns {Promise<Report>}
 */
async function verifyInMainThread(file, { keys = [], trustedCheckpoint, onProgress, onEntries, onBatch, signal, chunkSize = 1 << 20, keepValues }) {
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
    keepValues,
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
