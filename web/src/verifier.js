// @stele/verifier: verify a Stele export in the browser. Nothing leaves the page.
//
//   import { init, verifyFile } from '@stele/verifier';
//   await init();
//   const report = await verifyFile(file, { keys: [vkey], onProgress: (done, total) => {} });
//
// Verification itself is the Rust core compiled to WebAssembly (../pkg); this
// module only moves bytes to it, in a Web Worker when one can be started.
import initWasm, { WasmVerifier, parseVerifierKey as wasmParseVerifierKey } from '../pkg/stele_wasm.js';
import { BatchEncoder, RowDecoder, abortError, freeQuietly, runVerification, youngGc } from './engine.js';
import { MSG } from './protocol.js';
import { PagedStore } from './store.js';
import { trustedWorkerURL } from './trusted.js';
import { checkVerifyFileArgs } from './options.js';

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

/** @type {typeof import('./sealed.js') | null} */
let sealedModule = null;

/** @returns {Promise<typeof import('./sealed.js')>} */
async function loadSealed() {
  const m = await import('./sealed.js');
  await m.loadModule();
  sealedModule = m;
  return m;
}

/**
 * Incremental verifier on the current thread. Call init() first; with a
 * witness policy, create it with `await Verifier.create(options)`, which
 * also loads the module that checks the policy.
 */
export class Verifier {
  /** @param {import('./index.js').VerifierOptions} [options] */
  constructor({ keys = [], trustedCheckpoint, policy } = {}) {
    requireInit();
    if (policy != null && typeof policy !== 'string') throw new TypeError('policy: expected the text of a witness policy file');
    const withPolicy = policy != null && policy.trim() !== '';
    if (withPolicy && !sealedModule) {
      throw new Error('a Verifier with a witness policy needs the module that checks it: create it with `await Verifier.create({ policy, ... })`');
    }
    const cp = trustedCheckpoint && trustedCheckpoint.trim() ? trustedCheckpoint : undefined;
    const list = keys.map((k) => k.trim()).filter(Boolean);
    // With a policy, this module's whole verifier (the witness quorum is left
    // out of the plain one to keep it small, docs/FORMAT.md 14) reads every
    // chunk too, and its report is the result; the plain one gives the rows.
    /** @type {{push(b: Uint8Array): void, takeSealed(): string, finish(): string, free(): void} | null} */
    this._w = withPolicy ? /** @type {typeof import('./sealed.js')} */ (sealedModule).policyVerifier(list, /** @type {string} */ (policy), cp) : null;
    try {
      /** @type {WasmVerifier | null} */
      this._v = new WasmVerifier(list.join('\n'), cp);
    } catch (e) {
      if (this._w) freeQuietly(this._w);
      throw e;
    }
    this._rows = new RowDecoder();
  }
  /**
   * init(), and with a policy the module that checks it, then a new Verifier.
   * @param {import('./index.js').VerifierOptions} [options]
   * @returns {Promise<Verifier>}
   */
  static async create(options = {}) {
    await init();
    if (typeof options.policy === 'string' && options.policy.trim() !== '' && !sealedModule) await loadSealed();
    return new Verifier(options);
  }
  /** @returns {WasmVerifier} */
  _live() {
    if (!this._v) throw new Error('verifier already finished');
    return this._v;
  }
  /** @param {Uint8Array} chunk */
  push(chunk) {
    this._live().push(chunk);
    if (this._w) {
      this._w.push(chunk);
      this._w.takeSealed(); // none without an identity; keeps nothing queued
    }
  }
  /** @returns {import('./index.js').EntrySummary[]} */
  takeEntries() {
    return this._rows.decode(/** @type {import('./index.js').EntryBatch} */ (this._live().takeBatch()));
  }
  /** @returns {Report} */
  finish() {
    const v = this._v;
    if (!v) throw new Error('verifier already finished');
    const w = this._w;
    this._v = null;
    this._w = null;
    try {
      const plain = JSON.parse(v.finish());
      return w ? JSON.parse(w.finish()).report : plain;
    } finally {
      freeQuietly(v);
      if (w) freeQuietly(w);
    }
  }
  free() {
    if (this._v) freeQuietly(this._v);
    if (this._w) freeQuietly(this._w);
    this._v = null;
    this._w = null;
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
  // The lines are copied into a buffer kept for the next call (up to
  // SCRATCH_BYTES; a page's lines are ~80 KB): the page read back after a
  // verification summarizes thousands of pages, a new buffer each was dead
  // memory on the page until it was collected.
  if (!scratch || scratch.length < size) {
    const made = new Uint8Array(Math.max(size, 64 << 10));
    if (size > SCRATCH_BYTES) return summarizeIn(made, lines, size);
    scratch = made;
  }
  return summarizeIn(scratch, lines, size);
}

/** Longest buffer summarizeLines keeps for its next call. */
const SCRATCH_BYTES = 4 << 20;
/** @type {Uint8Array | null} */
let scratch = null;

/**
 * summarizeLines with `lines` copied into `into` (at least `size` bytes).
 * @param {Uint8Array} into
 * @param {Uint8Array[]} lines
 * @param {number} size
 * @returns {import('./index.js').EntrySummary[]}
 */
function summarizeIn(into, lines, size) {
  const buf = into.subarray(0, size);
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
// Under Trusted Types, from the package's policy (./trusted.js).
let workerFactory = () => {
  const trusted = trustedWorkerURL('worker.js', import.meta.url, 'verifier.js');
  return trusted ? new Worker(trusted, { type: 'module' }) : new Worker(new URL('./worker.js', import.meta.url), { type: 'module' });
};
/** @type {string | undefined} */
let helperSource;
/** @type {VerifierWorker[]} */
const idleWorkers = [];
/**
 * At most this many verifier workers live at once (each with its helpers):
 * a page with sixty <stele-verifier> elements verifies them a few at a time
 * instead of starting sixty workers, which exhausted Chromium (a lazily
 * loaded module then never finished loading).
 */
const MAX_WORKERS = Math.max(1, Math.min(globalThis.navigator?.hardwareConcurrency || 1, 4));
let liveWorkers = 0;
/** Verifications waiting for a worker: each is handed one, or null to start its own. @type {((vw: VerifierWorker | null) => void)[]} */
const waiting = [];

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
  idleWorkers.splice(0).forEach((w) => dropWorker(w.worker));
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
  const idle = idleWorkers.pop();
  if (idle) return idle;
  if (liveWorkers >= MAX_WORKERS) {
    const handed = await new Promise((/** @type {(vw: VerifierWorker | null) => void} */ resolve) => waiting.push(resolve));
    if (handed) return handed;
  }
  liveWorkers++;
  try {
    return await startWorker();
  } catch (e) {
    liveWorkers--;
    waiting.shift()?.(null);
    throw e;
  }
}

/**
 * A worker whose verification ended and that can verify again: to the next
 * waiting verification, or to the idle pool.
 * @param {VerifierWorker} vw
 */
function releaseWorker(vw) {
  const next = waiting.shift();
  if (next) next(vw);
  else idleWorkers.push(vw);
}

/**
 * Terminates a worker (cancelled, failed or replaced); a waiting
 * verification may start one in its place.
 * @param {Worker} w
 */
function dropWorker(w) {
  w.terminate();
  liveWorkers--;
  waiting.shift()?.(null);
}

/**
 * Starts a worker ahead of time, so the first verification makes no request.
 * @returns {Promise<boolean>}
 */
export async function prewarm() {
  try {
    if (liveWorkers >= MAX_WORKERS) return true;
    liveWorkers++;
    try {
      idleWorkers.push(await startWorker());
    } catch (e) {
      liveWorkers--;
      throw e;
    }
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
 * checked, see ./timestamps.js), revoked (keys revoked from a tree size,
 * each `VKEY@SIZE`, docs/FORMAT.md 15.3: applied by the sealed or the
 * timestamp module, the plain verifier takes none). Resolves
 * to the report object; rejects with an AbortError DOMException when cancelled.
 * @param {Blob} file
 * @param {import('./index.js').VerifyFileOptions} [opts]
 * @returns {Promise<import('./index.js').Report>}
 */
export async function verifyFile(file, opts = {}) {
  checkVerifyFileArgs(file, opts);
  const { revoked } = opts;
  if (revoked != null && !(Array.isArray(revoked) && revoked.every((r) => typeof r === 'string'))) throw new TypeError('revoked: expected an array of revoked keys, each VKEY@SIZE');
  if (opts.tsaCa != null) return verifyFileTimestamps(file, opts);
  // Revocations (docs/FORMAT.md 15.3) are rotation code, left out of the
  // plain verifier like the rest of section 15: the sealed module applies them.
  if (opts.identity != null || (opts.policy && opts.policy.trim()) || revoked?.length) return verifyFileSealed(file, opts);
  const report = await verifyPlain(file, opts);
  // A file with sealed-field records and no auditor key keeps the plain
  // module's notice sealed_unchecked (docs/FORMAT.md 11.2): the sealed
  // module's whole verifier would read them, but it took 4.5 times as long
  // and twice the memory on a 227 MB revealed export (web/bench/bench.mjs),
  // for records whose values a reader without the key cannot open anyway.
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
 * values opened, a witness policy's quorum checked, revocations applied when
 * given too), is the result.
 * @param {Blob} file
 * @param {import('./index.js').VerifyFileOptions} opts
 * @returns {Promise<import('./index.js').Report>}
 */
async function verifyFileTimestamps(file, opts) {
  const { tsaCa, identity, policy, revoked, ...plain } = opts;
  if (typeof tsaCa !== 'string' && !(tsaCa instanceof Uint8Array)) throw new TypeError('tsaCa: expected the PEM text or the bytes of a certificate file');
  if (policy != null && typeof policy !== 'string') throw new TypeError('policy: expected the text of a witness policy file');
  if (identity != null && typeof identity !== 'string') throw new TypeError('identity: expected the text of an age identity file');
  // The single-file page (build.mjs) carries the sealed module but not this
  // one (850 KB more): say so before the work, not as a failed fetch after it.
  if (/** @type {{STELE_EMBED?: unknown}} */ (/** @type {unknown} */ (globalThis)).STELE_EMBED) throw new Error('TSA certificate: this single-file page does not include the timestamp module; check the timestamps with the served page, @stele/verifier or stele verify --tsa-ca');
  const load = import('./timestamps.js');
  const onProgress = plain.onProgress;
  await verifyPlain(file, { ...plain, onProgress: onProgress && ((done, total) => onProgress(done / 2, total)) });
  const { verifyTimestamps } = await load;
  return verifyTimestamps(file, {
    keys: plain.keys,
    tsaCa,
    identity,
    policy,
    revoked,
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
  const { identity, policy, revoked = [], sealedList = true, ...plain } = opts;
  if (identity != null && typeof identity !== 'string') throw new TypeError('identity: expected the text of an age identity file');
  if (policy != null && typeof policy !== 'string') throw new TypeError('policy: expected the text of a witness policy file');
  const keep = sealedList !== false;
  const { openSealed, openSealedEarly, addOpenings, checkIdentity, checkRevoked, verifySealed } = await import('./sealed.js');
  if (identity != null) await checkIdentity(identity); // a bad key fails before the work, not after
  if (revoked.length) await checkRevoked(revoked);
  const withPolicy = policy != null && policy.trim() !== '';
  // The opening pass runs beside the verification (which has its worker),
  // with the origin the genesis entry names; kept only if the verified
  // origin is the same, else run again below. (Not with a policy or
  // revocations: the whole verifier runs then, opening values itself.)
  // Stopped as soon as its result cannot be used (the whole verifier runs
  // instead), so it does not compete with that verification for the CPU.
  const stopEarly = new AbortController();
  const earlySignal = plain.signal ? AbortSignal.any([plain.signal, stopEarly.signal]) : stopEarly.signal;
  const early = identity != null && !withPolicy && !revoked.length
    ? openSealedEarly(file, { identity, signal: earlySignal, chunkSize: plain.chunkSize, keep }).catch(() => null)
    : null;
  const onProgress = plain.onProgress;
  const report = await verifyPlain(file, { ...plain, onProgress: onProgress && ((done, total) => onProgress(done * 0.6, total)) });
  const second = {
    signal: plain.signal,
    chunkSize: plain.chunkSize,
    keep,
    onProgress: onProgress && ((/** @type {number} */ done, /** @type {number} */ total) => onProgress(total * 0.6 + done * 0.4, total)),
  };
  // A witness policy, revocations, or a log that rotated its key
  // (docs/FORMAT.md 14 and 15, left out of the plain verifier): this
  // module's whole verifier decides.
  if (withPolicy || revoked.length || report.notices?.some((n) => n.code === 'rotation_unchecked')) {
    stopEarly.abort();
    return verifySealed(file, { ...second, keys: plain.keys, identity, policy: withPolicy ? policy : undefined, revoked, trustedCheckpoint: plain.trustedCheckpoint });
  }
  if (report.verdict === 'not_a_log' || identity == null) {
    stopEarly.abort();
    return Object.assign(report, { sealed: [] });
  }
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
function verifyInWorker(vw, file, { keys = [], trustedCheckpoint, onProgress, onEntries, onBatch, onPages, signal, chunkSize = 1 << 20, keepValues }) {
  const w = vw.worker;
  if (signal?.aborted) {
    releaseWorker(vw);
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
      dropWorker(w);
      reject(abortError());
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    w.onerror = (e) => {
      e.preventDefault?.();
      cleanup();
      dropWorker(w);
      reject(new Error(`verification worker failed${e.message ? ': ' + e.message : ''}`));
    };
    w.onmessage = (/** @type {MessageEvent<import('./protocol.js').FromWorker>} */ e) => {
      const m = e.data;
      if (!('id' in m) || m.id !== id) return;
      try {
        if (m.type === MSG.PROGRESS) onProgress?.(m.done, m.total);
        else if (m.type === MSG.BATCH) {
          if (m.pages) onPages?.(m.pages);
          else if (m.batch) onBatch?.(m.batch);
          if (m.rows) onEntries?.(m.rows);
        } else if (m.type === MSG.DONE || m.type === MSG.ERROR) {
          cleanup();
          releaseWorker(vw);
          if (m.type === MSG.DONE) resolve(m.report);
          else reject(m.name === 'AbortError' ? abortError() : new Error(m.message));
        }
      } catch (err) {
        cleanup();
        dropWorker(w);
        reject(err);
      }
    };
    /** @type {import('./protocol.js').VerifyMessage} */
    const msg = { type: MSG.VERIFY, id, file, keys, trustedCheckpoint, chunkSize, wantRows: !!onEntries, keepValues, pages: !!onPages && !onEntries };
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
async function verifyInMainThread(file, { keys = [], trustedCheckpoint, onProgress, onEntries, onBatch, onPages, signal, chunkSize = 1 << 20, keepValues }) {
  const encoder = new BatchEncoder();
  const pager = onPages ? new PagedStore() : null;
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
    onBatch: onEntries
      ? undefined
      : pager
        ? (b) => {
            pager.append(b);
            /** @type {NonNullable<typeof onPages>} */ (onPages)(pager.takeDelta());
            youngGc(); // the batch dies here
          }
        : onBatch,
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
