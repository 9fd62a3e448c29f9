// Sealed fields (docs/FORMAT.md section 13): opens them with an auditor's age
// identity; and witness policies (section 14). Loaded lazily (dynamic import)
// only when an identity or a policy is given, so the verifier every page
// loads does not grow. The opening, the commitment
// check and the record checks are stele-core's (sealed_pass: the same
// SealChecker as the CLI's verifier), in ../pkg/stele_wasm_seal; this module
// only moves bytes to it and adds its findings to the verification's report.
// The identity stays in this page's memory.
import initSeal, { OpeningPass, SealedVerifier } from '../pkg/stele_wasm_seal.js';
import { computeX25519, giveX25519, prefetchX25519, pushPieces } from './x25519.js';
import { trustedWorkerURL } from './trusted.js';

/** The sealed module, compiled once: instantiated here and in the pass's worker. @type {Promise<WebAssembly.Module> | null} */
let ready = null;

function load() {
  if (!ready) {
    // The single-file build carries the module's bytes (no fetch from file://).
    const embed = /** @type {{STELE_EMBED?: {sealWasm?: Uint8Array}}} */ (/** @type {unknown} */ (globalThis)).STELE_EMBED;
    const embedded = embed?.sealWasm;
    ready = compileModule(embedded ?? new URL('../pkg/stele_wasm_seal_bg.wasm', import.meta.url)).then(async (module) => {
      await initSeal({ module_or_path: module });
      return module;
    });
    ready.catch(() => {
      ready = null;
    });
  }
  return ready;
}

/**
 * @param {URL | Uint8Array} source
 * @returns {Promise<WebAssembly.Module>}
 */
async function compileModule(source) {
  if (source instanceof Uint8Array) return WebAssembly.compile(/** @type {BufferSource} */ (source));
  const res = await fetch(source);
  if (!res.ok) throw new Error(`could not load the sealed-field module (${res.status} ${res.statusText}) from ${res.url}`);
  if (WebAssembly.compileStreaming && (res.headers.get('content-type') || '').startsWith('application/wasm')) return WebAssembly.compileStreaming(res);
  return WebAssembly.compile(await res.arrayBuffer());
}

// ---- the pass's workers (./sealed-worker.js) -------------------------------
// The opening pass runs there, so the page's main thread stays free for the
// rows the verification sends meanwhile; a large file in two parts at once,
// one worker each. Not in the single-file build (a worker cannot be loaded
// by URL from file://), nor where workers are missing or fail to start: the
// pass then runs on this thread.

/** Files smaller than this are read by one worker. */
const SPLIT_ABOVE = 4 << 20;

/**
 * The default split size. Each part unwraps every data key its values need
 * (core's rule), so a key used in both parts is unwrapped twice; but the
 * X25519 of the key records, the bulk of unwrapping, is computed once with
 * WebCrypto, by the page while the workers start, and given to both parts
 * (computeX25519), so a part costs little more than its share of the
 * values. Split on any number of cores: the verification's worker and
 * helpers finish before the pass, and a pass in one part then leaves a core
 * idle (web/bench/sealed.mjs, 100k values of 1,000 subjects on 2 cores).
 */
const splitDefault = () => SPLIT_ABOVE;

/** Workers started ahead of a pass (at most two), each used once. @type {Worker[]} */
const idleWorkers = [];

/** Workers running a part now (ended when done). */
let busyWorkers = 0;

const workersUsable = () => typeof Worker === 'function' && !(/** @type {{STELE_EMBED?: unknown}} */ (/** @type {unknown} */ (globalThis)).STELE_EMBED);

// Written as `new Worker(new URL(...), {type: 'module'})` so that bundlers
// find and emit it; under Trusted Types, from the package's policy (./trusted.js).
const startWorker = () => {
  const trusted = trustedWorkerURL('sealed-worker.js', import.meta.url, 'sealed.js');
  return trusted ? new Worker(trusted, { type: 'module' }) : new Worker(new URL('./sealed-worker.js', import.meta.url), { type: 'module' });
};

/** Idle workers sent the module already (warmWorkers). @type {WeakSet<Worker>} */
const warmed = new WeakSet();

/**
 * Rounds of the made-up export that warmWorkers has the first idle worker
 * run through the module's hot paths (wasm-seal's OpeningPass.warmUp, 128
 * values a round): enough for the engine to compile the pass's hot
 * functions in its top tier before a file is read, not during the pass.
 */
const WARM_UP_ROUNDS = 64;

/** Whether a worker ran the warm-up (once per page: the compiled code is the module's, shared by its instances). */
let warmedUp = false;

/**
 * Sends the compiled module to the idle workers that do not have it yet:
 * each instantiates it now rather than when a pass starts, and the first
 * one (once per page) runs the warm-up.
 * @param {WebAssembly.Module} module
 */
function warmWorkers(module) {
  for (const w of idleWorkers) {
    if (warmed.has(w)) continue;
    warmed.add(w);
    /** @type {import('./sealed-worker.js').SealedWarmMessage} */
    const msg = { type: 'warm', module, rounds: warmedUp ? 0 : WARM_UP_ROUNDS };
    warmedUp = true;
    w.postMessage(msg);
  }
}

/**
 * Keeps `worker` in the idle pool until a pass takes it. A worker that
 * fails while idle (its script blocked by a CSP's worker-src, or not
 * served) leaves the pool: its error event comes once, before a pass
 * listens, and a pass given it would wait for an answer that never comes.
 * @param {Worker} worker
 */
function keepIdle(worker) {
  worker.onerror = (e) => {
    e.preventDefault();
    const at = idleWorkers.indexOf(worker);
    if (at >= 0) idleWorkers.splice(at, 1);
    worker.terminate();
  };
  idleWorkers.push(worker);
}

/**
 * Starts the pass's workers ahead of the work (their scripts load
 * meanwhile): two in all, counting those running a part (a key read while
 * a pass runs started two more, and the pass's were then ended).
 */
function prestartWorkers() {
  if (!workersUsable()) return;
  try {
    while (idleWorkers.length + busyWorkers < 2) keepIdle(startWorker());
  } catch {
    // the pass runs on this thread
  }
}

/** A worker could not be started or loaded: the pass runs on this thread instead. */
class WorkerUnavailable extends Error {}

/**
 * Runs one pass (or part) in a worker. Resolves to the parsed finish() and
 * the values; rejects with WorkerUnavailable when the worker cannot run, an
 * AbortError when cancelled.
 * @param {Omit<import('./sealed-worker.js').SealedOpenMessage, 'type'>} job
 * @param {Transferable[]} transfer
 * @param {{signal?: AbortSignal, onProgress?: (done: number) => void}} opts
 * @returns {Promise<{out: any, sealed: import('./index.js').SealedValue[]}>}
 */
function inWorker(job, transfer, { signal, onProgress }) {
  return new Promise((resolve, reject) => {
    let w = idleWorkers.pop();
    try {
      w ??= startWorker();
    } catch (e) {
      reject(new WorkerUnavailable(String(e)));
      return;
    }
    const worker = w;
    let running = false;
    const done = () => {
      signal?.removeEventListener('abort', abort);
      worker.onmessage = null;
      worker.onerror = null;
      if (running) busyWorkers--;
      running = false;
    };
    const abort = () => {
      done();
      worker.terminate();
      reject(new DOMException('verification cancelled', 'AbortError'));
    };
    if (signal?.aborted) {
      keepIdle(worker);
      reject(new DOMException('verification cancelled', 'AbortError'));
      return;
    }
    signal?.addEventListener('abort', abort, { once: true });
    running = true;
    busyWorkers++;
    /** @type {import('./index.js').SealedValue[]} */
    const sealed = [];
    const keep = job.keep !== false;
    worker.onmessage = (/** @type {MessageEvent<import('./sealed-worker.js').SealedProgressMessage | import('./sealed-worker.js').SealedDoneMessage | import('./sealed-worker.js').SealedErrorMessage>} */ e) => {
      const m = e.data;
      if (m.type === 'progress') {
        // Taken as they come, while the pass goes on (100k values: 0.1-0.3 s
        // here that no longer follows the pass's end).
        try {
          if (m.values && keep) takeColumns(sealed, m.values);
        } catch (err) {
          done();
          worker.terminate();
          reject(err);
          return;
        }
        onProgress?.(m.done);
        return;
      }
      done();
      if (m.type === 'error') {
        worker.terminate();
        reject(new Error(m.message));
        return;
      }
      // Ended, not kept idle: its isolate and its wasm memory (which never
      // shrinks) would stay with the page until the next run.
      worker.terminate();
      try {
        const out = JSON.parse(m.finish);
        if (keep) takeInto(sealed, out.sealed);
        out.sealed = null;
        resolve({ out, sealed });
      } catch (err) {
        reject(err);
      }
    };
    worker.onerror = (e) => {
      e.preventDefault();
      done();
      worker.terminate();
      reject(new WorkerUnavailable(e.message || 'the sealed-field worker did not start'));
    };
    worker.postMessage({ type: 'open', ...job }, transfer);
  });
}

/**
 * Where a pass over `file` splits in two: `head`, the start of its first
 * entry line (the key records are before it), and `split`, the start of an
 * entry line near the middle of the entries. Null when the file is small or
 * no such lines are found near where they are looked for.
 * @param {Blob} file
 * @param {number} splitAbove
 * @returns {Promise<{head: number, split: number} | null>}
 */
async function splitPoints(file, splitAbove) {
  if (file.size < splitAbove) return null;
  const first = await firstEntryLine(file);
  if (!first) return null;
  const head = first.offset;
  const mid = head + Math.floor((file.size - head) / 2);
  const around = new Uint8Array(await file.slice(mid, mid + (1 << 20)).arrayBuffer());
  for (let at = around.indexOf(10); at >= 0 && at + 1 < around.length; at = around.indexOf(10, at + 1)) {
    if (around[at + 1] === 0x7b) return { head, split: mid + at + 1 };
  }
  return null;
}

/**
 * The opening pass in workers: in two parts at once when the file is large
 * enough (splitPoints), else in one. Resolves as stream() does.
 * @param {WebAssembly.Module} module
 * @param {Blob} file
 * @param {string | undefined} origin
 * @param {{identity: string, signal?: AbortSignal, chunkSize: number, splitAbove: number, keep: boolean, onProgress?: (done: number, total: number) => void}} opts
 * @returns {Promise<{out: any, sealed: import('./index.js').SealedValue[]}>}
 */
async function passInWorkers(module, file, origin, { identity, signal, chunkSize, splitAbove, keep, onProgress }) {
  const at = await splitPoints(file, splitAbove);
  if (!at) {
    const head = (await firstEntryLine(file))?.offset;
    return inWorker({ module, file, origin, identity, chunkSize, head, keep }, [], { signal, onProgress: onProgress && ((d) => onProgress(d, file.size)) });
  }
  const done = [0, 0];
  const progress = (/** @type {number} */ i) => (/** @type {number} */ d) => {
    done[i] = d;
    onProgress?.(done[0] + done[1], file.size);
  };
  // The X25519 of the key records, once for both parts, computed here
  // (headX25519) while the workers start and read the key records; each
  // worker gets its copy on a channel of its own and waits for it before
  // reading its entries.
  const channels = [new MessageChannel(), new MessageChannel()];
  headX25519(file, at.head, origin, identity).then((ahead) => {
    try {
      for (const { port1 } of channels) {
        const copy = ahead && { shares: ahead.shares, secrets: ahead.secrets.map((s) => s.slice()) };
        port1.postMessage(copy, copy ? copy.secrets.map((s) => s.buffer) : []);
        port1.close();
      }
    } finally {
      ahead?.secrets.forEach((s) => s.fill(0));
    }
  }, () => {
    // the workers' passes compute each secret themselves
    for (const { port1 } of channels) {
      port1.postMessage(null);
      port1.close();
    }
  });
  // Cancelled as soon as one part fails: its result could not be used.
  const stop = new AbortController();
  const sig = signal ? AbortSignal.any([signal, stop.signal]) : stop.signal;
  const run = (/** @type {import('./sealed-worker.js').SealedPart} */ part) => {
    const x25519 = { port: channels[part.index].port2 };
    return inWorker({ module, file, origin, identity, chunkSize, part, x25519, keep }, [x25519.port], { signal: sig, onProgress: progress(part.index) }).catch((e) => {
      stop.abort();
      throw e;
    });
  };
  const parts = await Promise.allSettled([
    run({ index: 0, head: at.head, start: at.head, end: at.split }),
    run({ index: 1, head: at.head, start: at.split, end: file.size }),
  ]);
  // A part's own error, rather than the other part's cancel that follows it.
  const errors = parts.flatMap((p) => (p.status === 'rejected' ? [p.reason] : []));
  if (errors.length) throw errors.find((e) => e?.name !== 'AbortError') ?? errors[0];
  const [a, b] = parts.map((p) => /** @type {PromiseFulfilledResult<{out: any, sealed: import('./index.js').SealedValue[]}>} */ (p).value);
  return joinParts(a, b);
}

/**
 * The X25519 the key records of `file` (its bytes before `head`) need with
 * `identity` (computeX25519), from a pass of this thread's over them;
 * null where WebCrypto has no X25519. The caller zeroes the secrets.
 * @param {Blob} file
 * @param {number} head
 * @param {string | undefined} origin
 * @param {string} identity
 * @returns {Promise<import('./x25519.js').X25519Ahead | null>}
 */
async function headX25519(file, head, origin, identity) {
  const bytes = new Uint8Array(await file.slice(0, head).arrayBuffer());
  const pass = new OpeningPass(origin, identity);
  try {
    pushPieces(pass, bytes);
    return await computeX25519(pass);
  } finally {
    pass.free();
  }
}

/**
 * One pass's findings from its two parts': the values in file order, the
 * failures with the second part's lines counted from the file's start, the
 * counts added up.
 * @param {{out: any, sealed: import('./index.js').SealedValue[]}} a
 * @param {{out: any, sealed: import('./index.js').SealedValue[]}} b
 */
function joinParts(a, b) {
  const later = b.out.failures.map((/** @type {{line: number}} */ f) => ({ ...f, line: f.line + a.out.lines }));
  const [x, y] = [a.out.counts, b.out.counts];
  const counts = x && y ? Object.fromEntries(Object.keys(x).map((k) => [k, x[k] + y[k]])) : (x ?? y);
  const out = {
    failures: [...a.out.failures, ...later],
    failures_total: a.out.failures_total + b.out.failures_total,
    counts,
    lines: a.out.lines + b.out.lines,
  };
  return { out, sealed: a.sealed.concat(b.sealed) };
}

/**
 * Adds a takeSealed() list to `sealed`.
 * @param {import('./index.js').SealedValue[]} sealed
 * @param {[number, string, import('./index.js').SealedValue['state'], string | null][]} list
 */
function takeInto(sealed, list) {
  for (const [entry, pointer, state, value] of list) sealed.push({ entry, pointer, state, value });
}

/** The states of wasm-seal's takeSealedColumns, by number. @type {import('./index.js').SealedValue['state'][]} */
const STATES = ['opened', 'sealed', 'forgotten', 'redacted', 'mismatch'];

/**
 * Adds the values of a worker's SealedColumns to `sealed`, as takeInto
 * does a takeSealed() list.
 * @param {import('./index.js').SealedValue[]} sealed
 * @param {import('./sealed-worker.js').SealedColumns} values
 */
function takeColumns(sealed, { meta, text, pointers }) {
  let from = 0;
  for (let i = 0; i + 3 < meta.length; i += 4) {
    const code = meta[i + 2];
    const state = STATES[code & 7];
    const pointer = pointers[code >>> 3];
    if (state === undefined || pointer === undefined) throw new Error('the sealed-field worker sent a value the page cannot read');
    const to = meta[i + 3];
    if (to < from || to > text.length) throw new Error('the sealed-field worker sent a value the page cannot read');
    sealed.push({ entry: meta[i] + meta[i + 1] * 2 ** 32, pointer, state, value: state === 'opened' ? text.slice(from, to) : null });
    from = to;
  }
  if (from !== text.length) throw new Error('the sealed-field worker sent a value the page cannot read');
}

/**
 * Streams `file` through `reader` (an OpeningPass or a SealedVerifier: push,
 * takeSealed, finish, free), collecting the sealed values as they settle.
 * Resolves to the parsed output of finish() and the values.
 * @param {Blob} file
 * @param {{push(b: Uint8Array): void, takeSealed(): string, finish(): string, free(): void}} reader
 * @param {{signal?: AbortSignal, chunkSize: number, from?: number, keep?: boolean, onProgress?: (done: number, total: number) => void}} opts
 *   from: the bytes before it were pushed already; keep: false drops the
 *   values once taken (counts and failures only)
 * @returns {Promise<{out: any, sealed: import('./index.js').SealedValue[]}>}
 */
async function stream(file, reader, { signal, chunkSize, from = 0, keep = true, onProgress }) {
  /** @type {import('./index.js').SealedValue[]} */
  const sealed = [];
  try {
    for (let at = from; at < file.size; at += chunkSize) {
      if (signal?.aborted) throw new DOMException('verification cancelled', 'AbortError');
      pushPieces(reader, new Uint8Array(await file.slice(at, at + chunkSize).arrayBuffer()));
      const taken = reader.takeSealed(); // always taken: the module queues them until then
      if (keep) takeInto(sealed, JSON.parse(taken));
      onProgress?.(Math.min(at + chunkSize, file.size), file.size);
    }
  } catch (e) {
    reader.free();
    throw e;
  }
  const out = JSON.parse(reader.finish());
  if (keep) takeInto(sealed, out.sealed);
  out.sealed = null;
  return { out, sealed };
}

/** Loads this module's wasm: afterwards `policyVerifier` can be called. */
export async function loadModule() {
  await load();
}

/**
 * This module's streaming verifier with a witness policy (the text of a
 * C2SP tlog-policy), for `new Verifier({ policy })`: push, takeSealed,
 * finish (JSON whose `report` is the report), free. Throws an Error naming
 * the policy's bad line. Call loadModule() first.
 * @param {string[]} keys
 * @param {string} policy
 * @param {string | undefined} trustedCheckpoint
 */
export function policyVerifier(keys, policy, trustedCheckpoint) {
  return SealedVerifier.withPolicy(keys, undefined, policy, trustedCheckpoint);
}

/**
 * Throws a clear error when `identity` is not the text of an age identity
 * file (the message never contains the text).
 * @param {string} identity
 */
export async function checkIdentity(identity) {
  prestartWorkers(); // their scripts load while the module compiles
  warmWorkers(await load());
  new OpeningPass(undefined, identity).free();
}

/**
 * Gets ready for an opening pass as soon as a key is being given, before a
 * file is: the module compiled and the pass's workers started (their
 * scripts loaded meanwhile), which otherwise come first in the pass.
 */
export async function warmUp() {
  prestartWorkers();
  warmWorkers(await load());
}

/**
 * Throws a clear error naming the first revocation that is not `VKEY@SIZE`
 * (docs/FORMAT.md 15.3), as core reads them.
 * @param {string[]} revoked
 */
export async function checkRevoked(revoked) {
  await load();
  const v = SealedVerifier.withPolicy([], undefined, undefined, undefined);
  try {
    v.setRevoked(revoked);
  } finally {
    v.free();
  }
}

/**
 * The opening pass over `file`, after `report` (the plain verification of
 * the same bytes): opens every sealed value `identity` (the text of an age
 * identity file) can, checks it against its commitment, and checks every
 * sealed record. Resolves to `report` with its findings added (see
 * addOpenings).
 * @param {Blob} file
 * @param {import('./index.js').Report} report
 * @param {{identity: string, signal?: AbortSignal, chunkSize?: number, splitAbove?: number, keep?: boolean, onProgress?: (done: number, total: number) => void}} opts
 *   splitAbove: files of at least this many bytes are read in two parts at
 *   once (default 4 MiB; for tests); keep: false lists no value (the
 *   report's `sealed` is empty; counts and failures as always): open the
 *   values of the entries shown with openSealedSpan (unless it cannot open
 *   this file's: see spansOpen)
 * @returns {Promise<import('./index.js').Report>}
 */
export async function openSealed(file, report, opts) {
  return addOpenings(report, await openingPass(file, report.origin ?? undefined, opts));
}

/**
 * @param {Blob} file
 * @param {string | undefined} origin
 * @param {{identity: string, signal?: AbortSignal, chunkSize?: number, splitAbove?: number, keep?: boolean, onProgress?: (done: number, total: number) => void}} opts
 */
async function openingPass(file, origin, { identity, signal, chunkSize = 1 << 20, splitAbove = splitDefault(), keep = true, onProgress }) {
  const module = await load();
  keep = keep || !(await spansOpen(file));
  if (workersUsable()) {
    try {
      return await passInWorkers(module, file, origin, { identity, signal, chunkSize, splitAbove, keep, onProgress });
    } catch (e) {
      if (!(e instanceof WorkerUnavailable)) throw e;
    }
  }
  const pass = new OpeningPass(origin, identity);
  const head = (await firstEntryLine(file))?.offset ?? 0;
  try {
    if (head) {
      pushPieces(pass, new Uint8Array(await file.slice(0, head).arrayBuffer()));
      await prefetchX25519(pass);
    }
  } catch (e) {
    pass.free();
    throw e;
  }
  return stream(file, pass, { signal, chunkSize, from: head, keep, onProgress });
}

/**
 * Adds an opening pass's findings to `report`: `sealed`, one {entry,
 * pointer, state, value} per sealed value (state 'opened', value its JSON
 * text; or 'sealed', 'forgotten', 'redacted', 'mismatch'), and
 * `sealed_counts`. A failure here (opening_mismatch, bad_sealed) joins the
 * report's failures and makes the verdict tampered, as any failure does
 * (FORMAT 8: a file with a failure is tampered).
 * @param {import('./index.js').Report} report
 * @param {{out: any, sealed: import('./index.js').SealedValue[]}} pass
 * @returns {import('./index.js').Report}
 */
export function addOpenings(report, { out, sealed }) {
  const room = Math.max(0, 1000 - report.failures.length);
  // Appended, not sorted in: a failure's `cause` is an index into the list.
  report.failures.push(...out.failures.slice(0, room));
  report.failures_total += out.failures_total;
  if (out.failures_total > 0 && report.verdict !== 'not_a_log') report.verdict = 'tampered';
  // This pass read every sealed-field record (FORMAT 13.8): the plain
  // verifier's notice that it did not is answered.
  if (report.notices) report.notices = report.notices.filter((n) => n.code !== 'sealed_unchecked');
  report.sealed = sealed;
  report.sealed_counts = out.counts ?? undefined;
  return report;
}

/**
 * The origin named by the genesis entry of a log export (its first entry
 * line, after the sealed-key records), read from the file's first 8 MiB;
 * null when there is none there. Unverified: a guess to start the opening
 * pass with while the file is being verified.
 * @param {Blob} file
 * @returns {Promise<string | null>}
 */
export async function genesisOrigin(file) {
  const first = await firstEntryLine(file);
  if (!first) return null;
  try {
    const e = JSON.parse(new TextDecoder().decode(first.line));
    const ev = e?.event;
    return e?.seq === 0 && ev?.type === 'stele.genesis' && typeof ev.origin === 'string' ? ev.origin : null;
  } catch {
    return null;
  }
}

/** The first entry line is looked for in this many bytes at a file's start. */
const FIRST_ENTRY_WITHIN = 8 << 20;

/** firstEntryLine's answers, by file: the pass asks it up to three times. @type {WeakMap<Blob, Promise<{offset: number, line: Uint8Array} | null>>} */
const firstLines = new WeakMap();

/**
 * The first line of `file` that can be an entry (it starts with `{`), in
 * its first 8 MiB: its offset and bytes (without `\n`); null when none.
 * Read once per file, from 64 KiB on, doubling (the key records before it
 * are usually far fewer than 8 MiB).
 * @param {Blob} file
 * @returns {Promise<{offset: number, line: Uint8Array} | null>}
 */
function firstEntryLine(file) {
  let found = firstLines.get(file);
  if (!found) {
    found = findFirstEntryLine(file);
    firstLines.set(file, found);
    found.catch(() => firstLines.delete(file));
  }
  return found;
}

/** @param {Blob} file */
async function findFirstEntryLine(file) {
  const limit = Math.min(file.size, FIRST_ENTRY_WITHIN);
  let head = new Uint8Array(0);
  let at = 0; // the start of the first line not looked at yet
  for (let want = 64 << 10; ; want *= 2) {
    const end = Math.min(want, limit);
    if (end > head.length) {
      const more = new Uint8Array(await file.slice(head.length, end).arrayBuffer());
      const grown = new Uint8Array(head.length + more.length);
      grown.set(head);
      grown.set(more, head.length);
      head = grown;
    }
    for (let nl = head.indexOf(10, at); nl >= 0; nl = head.indexOf(10, at)) {
      if (head[at] === 0x7b) return { offset: at, line: head.subarray(at, nl) };
      at = nl + 1;
    }
    if (end >= limit || head.length < end) return null;
  }
}

/**
 * The opening pass started before the verification's report exists, with
 * the origin the genesis entry names (genesisOrigin): it runs while the
 * plain verifier works (in its worker). Its findings may be used only when
 * the report's origin, once known, is the one it opened with: the
 * associated data of every opening binds the origin.
 * @param {Blob} file
 * @param {{identity: string, signal?: AbortSignal, chunkSize?: number, keep?: boolean}} opts
 * @returns {Promise<{origin: string, pass: {out: any, sealed: import('./index.js').SealedValue[]}} | null>}
 */
export async function openSealedEarly(file, opts) {
  await load();
  const origin = await genesisOrigin(file);
  if (origin == null) return null;
  return { origin, pass: await openingPass(file, origin, opts) };
}

/**
 * Verifies `file` once more with the whole verifier of this module, whose
 * report is the result.
 * With `policy` (the text of a C2SP tlog-policy), the report also says
 * whether the policy's witness quorum cosigned the checkpoint (`quorum`);
 * `identity` is optional, and `trustedCheckpoint` is checked too.
 * Also used for a log that rotated its key (docs/FORMAT.md 15), which the
 * plain verifier does not follow, and for revocations (`revoked`, each
 * `VKEY@SIZE`, docs/FORMAT.md 15.3). The report has `sealed`, always a list
 * (one {entry, pointer, state, value} per value; none opened without `identity`),
 * and, when the file has sealed values, their counts in `sealed_counts`.
 * @param {Blob} file
 * @param {{keys?: string[], identity?: string, policy?: string, revoked?: string[], trustedCheckpoint?: string, signal?: AbortSignal, chunkSize?: number, keep?: boolean, onProgress?: (done: number, total: number) => void}} opts
 * @returns {Promise<import('./index.js').Report>}
 */
export async function verifySealed(file, { keys = [], identity, policy, revoked = [], trustedCheckpoint, signal, chunkSize = 1 << 20, keep = true, onProgress }) {
  await load();
  const cp = trustedCheckpoint && trustedCheckpoint.trim() ? trustedCheckpoint : undefined;
  const v = SealedVerifier.withPolicy(keys, identity ?? undefined, policy, cp);
  try {
    v.setRevoked(revoked);
  } catch (e) {
    v.free();
    throw e;
  }
  const { out, sealed } = await stream(file, v, { signal, chunkSize, keep: keep || !(await spansOpen(file)), onProgress });
  return withSealedList(out.report, sealed);
}

/**
 * A report of this module's (or the timestamp module's) whole verifier in
 * the shape every path of verifyFile gives: core's counts of sealed values
 * (its `sealed` object, FORMAT 13.8) as `sealed_counts`, and `sealed` always
 * a list, one {entry, pointer, state, value} per value core listed (none
 * opened when no identity was given).
 * @param {any} report  core's report, as parsed from finish()
 * @param {import('./index.js').SealedValue[]} values
 * @returns {import('./index.js').Report}
 */
export function withSealedList(report, values) {
  const counts = report.sealed;
  report.sealed_counts = counts && !Array.isArray(counts) ? counts : undefined;
  report.sealed = values;
  return report;
}

// ---- the values of a span of entries, on demand ----------------------------
// A page that keeps no value list (keep: false above: a file kept as pages,
// store.js PagedStore) opens the values of the entries it shows or searches
// when it reads their page from the file: a pass of core's (the same
// OpeningPass, on this thread) over the key records, then the page's bytes
// (resumeAt). What is kept between calls, in this page's memory only, for
// the file last asked about: the bytes of its key records (the file's head,
// at most FIRST_ENTRY_WITHIN) and the X25519 secrets their unwrapping needs
// (computed once with WebCrypto; each pass unwraps the data keys its values
// need from them). Never stored anywhere.

/**
 * Whether openSealedSpan can open the values of `file`'s entries: its first
 * entry line is within its first FIRST_ENTRY_WITHIN bytes. When not, a pass
 * asked to keep no value (keep: false) keeps them all the same.
 * @param {Blob} file
 */
async function spansOpen(file) {
  return (await firstEntryLine(file)) != null;
}

/** @type {{file: Blob, origin: string | null, identity: string, head: Promise<{head: Uint8Array, x25519: import('./x25519.js').X25519Ahead | null} | null>} | null} */
let spanSetup = null;

/**
 * The key records of `file` and their X25519 (see above), once per file,
 * origin and identity; null when the file has no entry line within its
 * first FIRST_ENTRY_WITHIN bytes.
 * @param {Blob} file
 * @param {string | null} origin
 * @param {string} identity
 */
function spanHead(file, origin, identity) {
  if (spanSetup && spanSetup.file === file && spanSetup.origin === origin && spanSetup.identity === identity) return spanSetup.head;
  forgetSealedSpans();
  const head = (async () => {
    await load();
    const first = await firstEntryLine(file);
    if (!first) return null;
    const bytes = new Uint8Array(await file.slice(0, first.offset).arrayBuffer());
    const pass = new OpeningPass(origin ?? undefined, identity);
    try {
      pushPieces(pass, bytes);
      return { head: bytes, x25519: await computeX25519(pass) };
    } finally {
      pass.free();
    }
  })();
  spanSetup = { file, origin, identity, head };
  head.catch(() => {
    if (spanSetup?.head === head) spanSetup = null;
  });
  return head;
}

/** Drops what openSealedSpan keeps (the X25519 secrets zeroed): the key or the file changed. */
export function forgetSealedSpans() {
  const old = spanSetup;
  spanSetup = null;
  dropLive();
  old?.head.then((h) => h?.x25519?.secrets.forEach((s) => s.fill(0)), () => {});
}

/**
 * The pass of the last span, kept open to go on with the next span when it
 * starts where the last one ended (a search reads the pages in order): its
 * data keys stay unwrapped, and the key records are not read again. It has
 * read the span's bytes and the next entry line (`next`, the first line of
 * the next span), so the last entry's values are settled.
 * @type {{file: Blob, setup: unknown, pass: OpeningPass, next: number, nextLen: number} | null}
 */
let live = null;

/** Calls of openSealedSpan run one after the other (they share `live`). */
let spanQueue = Promise.resolve();

/**
 * The sealed values of the entries in `bytes`, which are bytes `at` to
 * `at + bytes.length` of `file`, starting at the start of an entry line
 * and ending at the end of a line (a page of a PagedStore: its entries'
 * lines and the records after them), as core's opening pass settles them
 * with `identity` for the log `origin`: one {entry, pointer, state, value}
 * per value, in file order. Null when it cannot be told (no entry line
 * within the file's first 8 MiB). The pass's failures are not here: the
 * pass over the whole file (openSealed) reported them.
 * @param {Blob} file
 * @param {{origin: string | null, identity: string, at: number, bytes: Uint8Array}} span
 * @returns {Promise<import('./index.js').SealedValue[] | null>}
 */
export function openSealedSpan(file, span) {
  // The bytes are the caller's until it resumes: copied if they must wait.
  const bytes = span.bytes.slice();
  const run = spanQueue.then(() => openSpan(file, { ...span, bytes }));
  spanQueue = run.then(() => {}, () => {});
  return run;
}

/**
 * @param {Blob} file
 * @param {{origin: string | null, identity: string, at: number, bytes: Uint8Array}} span
 * @returns {Promise<import('./index.js').SealedValue[] | null>}
 */
async function openSpan(file, { origin, identity, at, bytes }) {
  const setup = await spanHead(file, origin, identity);
  if (!setup) return null;
  let pass;
  let from = 0;
  if (live && live.file === file && live.setup === setup && live.next === at && live.nextLen <= bytes.length) {
    // Goes on: the first line of this span was read already.
    pass = live.pass;
    from = live.nextLen;
    live = null;
  } else {
    dropLive();
    pass = new OpeningPass(origin ?? undefined, identity);
    try {
      pushPieces(pass, setup.head);
      const x = setup.x25519;
      // giveX25519 zeroes what it is given: a copy, the kept ones stay for the next span.
      giveX25519(pass, x && { shares: x.shares, secrets: x.secrets.map((s) => s.slice()) });
      if (at > setup.head.length) pass.resumeAt(at);
    } catch (e) {
      pass.free();
      throw e;
    }
  }
  /** @type {import('./index.js').SealedValue[]} */
  const sealed = [];
  try {
    pushPieces(pass, bytes.subarray(from));
    // The next entry line settles this span's last entry (its records are in the span).
    const end = at + bytes.length;
    const line = await nextLine(file, end);
    if (line && line[0] === 0x7b) {
      pushPieces(pass, line);
      takeInto(sealed, JSON.parse(pass.takeSealed()));
      live = { file, setup, pass, next: end, nextLen: line.length };
      return sealed;
    }
    takeInto(sealed, JSON.parse(pass.takeSealed()));
  } catch (e) {
    pass.free();
    throw e;
  }
  takeInto(sealed, JSON.parse(pass.finish()).sealed);
  return sealed;
}

/** Frees the kept pass. */
function dropLive() {
  live?.pass.free();
  live = null;
}

/**
 * The line of `file` starting at byte `at`, with its line feed; null at the
 * end of the file or when it is longer than an entry can be (FORMAT 7.1).
 * @param {Blob} file
 * @param {number} at
 */
async function nextLine(file, at) {
  if (at >= file.size) return null;
  const b = new Uint8Array(await file.slice(at, at + (64 << 10) + 1).arrayBuffer());
  const lf = b.indexOf(10);
  return lf < 0 ? null : b.subarray(0, lf + 1);
}
