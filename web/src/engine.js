// The verification loop shared by the Web Worker (worker.js) and the
// main-thread fallback (verifier.js). It reads a Blob in chunks, feeds the
// wasm verifier, and hands entry summaries on in compact, columnar batches.
import { MSG } from './protocol.js';
import { prepareInto } from './prepare.js';

/** @typedef {import('./index.js').EntrySummary} EntrySummary */
/** @typedef {import('./index.js').EntryBatch} EntryBatch */
/** @typedef {import('./index.js').Report} Report */
/** @typedef {import('./protocol.js').FromHelper} FromHelper */

/** Summary fields kept as interned strings, in this order. */
export const STRING_COLUMNS = /** @type {const} */ (['type', 'actor', 'action', 'target', 'outcome']);

const TS_RE = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,6}))?Z$/;

/**
 * Parses an RFC 3339 UTC timestamp to microseconds since the epoch, or NaN.
 * @param {string | null | undefined} s
 * @returns {number}
 */
export function parseTs(s) {
  if (typeof s !== 'string') return NaN;
  const m = TS_RE.exec(s);
  if (!m) return NaN;
  const ms = Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5], +m[6]);
  const frac = m[7] ? Number(m[7].padEnd(6, '0')) : 0;
  return ms * 1000 + frac;
}

/**
 * Formats microseconds since the epoch as "2026-11-26T12:00:00.000000Z".
 * @param {number} us
 * @returns {string}
 */
export function formatTs(us) {
  if (!Number.isFinite(us)) return '';
  const ms = Math.floor(us / 1000);
  const iso = new Date(ms).toISOString(); // 2026-11-26T12:00:00.000Z
  const micros = String(Math.round(us - ms * 1000)).padStart(3, '0');
  return iso.slice(0, 23) + micros + 'Z';
}

/**
 * Turns arrays of entry summaries into columnar batches. Strings are interned
 * per column: code 0 is null, code k is the k-th string ever sent, and each
 * batch carries only the strings that are new since the previous batch.
 */
export class BatchEncoder {
  constructor() {
    /** @type {Map<string, number>[]} */
    this.dicts = STRING_COLUMNS.map(() => new Map());
  }

  /**
   * @param {EntrySummary[]} rows
   * @returns {EntryBatch}
   */
  encode(rows) {
    const n = rows.length;
    const seq = new Float64Array(n);
    const ts = new Float64Array(n);
    const line = new Float64Array(n);
    const offset = new Float64Array(n);
    const length = new Float64Array(n);
    const codes = STRING_COLUMNS.map(() => new Uint32Array(n));
    const fresh = STRING_COLUMNS.map(() => /** @type {string[]} */ ([]));
    /** @type {Array<number | string>} */
    const tsRaw = []; // [rowInBatch, string] where formatTs would not give back the original
    for (let i = 0; i < n; i++) {
      const r = rows[i];
      seq[i] = typeof r.seq === 'number' ? r.seq : NaN;
      // ts_us comes from the verifier; it is exact in a double until 2255.
      const us = r.ts_us;
      const exact = typeof us === 'number' && Math.abs(us) <= Number.MAX_SAFE_INTEGER;
      const t = exact ? us : parseTs(r.ts);
      ts[i] = t;
      if (r.ts != null && !exact && formatTs(t) !== r.ts) tsRaw.push(i, String(r.ts));
      line[i] = r.line;
      offset[i] = r.offset;
      length[i] = r.length;
      for (let c = 0; c < STRING_COLUMNS.length; c++) {
        const v = r[STRING_COLUMNS[c]];
        if (v == null) continue;
        const s = typeof v === 'string' ? v : JSON.stringify(v);
        const dict = this.dicts[c];
        let code = dict.get(s);
        if (code === undefined) {
          code = dict.size + 1;
          dict.set(s, code);
          fresh[c].push(s);
        }
        codes[c][i] = code;
      }
    }
    return { n, seq, ts, line, offset, length, codes, fresh, tsRaw };
  }
}

/**
 * Turns the verifier's columnar batches (takeBatch) back into plain row
 * objects, {seq, ts, ts_us, type, actor, action, target, outcome, line,
 * offset, length} with null for absent values, keeping each column's strings
 * across batches. Presentation only: every value comes from the verifier.
 */
export class RowDecoder {
  constructor() {
    /** @type {string[][]} */
    this.dicts = STRING_COLUMNS.map(() => []);
  }

  /**
   * @param {EntryBatch} b
   * @returns {EntrySummary[]}
   */
  decode(b) {
    b.fresh.forEach((f, c) => {
      for (const s of f) this.dicts[c].push(s);
    });
    const raw = new Map();
    for (let i = 0; i < b.tsRaw.length; i += 2) raw.set(b.tsRaw[i], b.tsRaw[i + 1]);
    const num = (/** @type {number} */ x) => (Number.isNaN(x) ? null : x);
    /** @type {EntrySummary[]} */
    const rows = new Array(b.n);
    for (let i = 0; i < b.n; i++) {
      const t = b.ts[i];
      /** @type {EntrySummary} */
      const r = {
        seq: num(b.seq[i]),
        ts: Number.isNaN(t) ? null : (/** @type {string | undefined} */ (raw.get(i)) ?? formatTs(t)),
        ts_us: num(t),
        type: null, actor: null, action: null, target: null, outcome: null,
        line: b.line[i],
        offset: b.offset[i],
        length: b.length[i],
      };
      for (let c = 0; c < STRING_COLUMNS.length; c++) {
        const k = b.codes[c][i];
        r[STRING_COLUMNS[c]] = k ? this.dicts[c][k - 1] : null;
      }
      rows[i] = r;
    }
    return rows;
  }
}

/**
 * The ArrayBuffers of a batch, for a transfer list.
 * @param {EntryBatch} b
 * @returns {Transferable[]}
 */
export function batchTransfer(b) {
  return /** @type {ArrayBuffer[]} */ ([b.seq.buffer, b.ts.buffer, b.line.buffer, b.offset.buffer, b.length.buffer, ...b.codes.map((c) => c.buffer)]);
}

/** @type {object[]} */
const sink = new Array(256);
/**
 * Allocates about a megabyte of objects that die at once, so that V8 runs a
 * young-generation collection soon: a batch (takeBatch: ~60 bytes a row in
 * ten ArrayBuffers) dropped where it was made is freed by that collection,
 * whereas V8 otherwise collects an isolate only after ~64 MB more of such
 * buffers (a worker allocates few JS objects, so it rarely collects: on a
 * 1 GB log its dead batches held ~30 MB). Measured with web/bench/bench.mjs
 * --maps (PartitionAlloc super pages of the renderer).
 * Its own price: a young generation grown to its largest semi-spaces, the
 * "2 x 8.4 MB" (+16.8 MB, sometimes +25.2) in --maps on the 1 GB realistic
 * export (the renderer's 8 MiB mappings hold ~0.4 MB before the run, 25 MB
 * after: not thread stacks). Without the calls that vanishes but the dead
 * batches fill 2 MiB super pages instead (+49 to +55 MB; RSS growth 79-82
 * MB instead of 70-71 MB, though ~30% faster); with 12,000 objects instead
 * of 40,000 no change (70.7, 84.1 MB). What removes both: batches written
 * into buffers the worker reuses (viewBatch), which the verifier worker's
 * paged path now takes, without this call: on the 4 GB realistic export
 * RSS growth 78.8 MB with takeBatch + youngGc, 63.4 MB with viewBatch (same
 * loaded machine, back to back; 59.3 MB in an earlier run). Only the
 * main-thread fallback's pager (verifier.js) still calls this.
 */
export function youngGc() {
  for (let k = 0; k < 40000; k++) sink[k & 255] = { k };
}

/** The strings of a batch that brings none. */
const NO_STRINGS = { fresh: STRING_COLUMNS.map(() => /** @type {string[]} */ ([])), tsRaw: [] }; // never written to

/**
 * The rows read since the last take as a batch of views of the columns the
 * verifier keeps in its memory and writes again at the next take (wasm
 * takeColumns): no ArrayBuffer per block. takeBatch made ten a block (~60
 * bytes a row), which the worker's isolate held until a collection: they
 * and the young generation the collections forced (youngGc) grew the
 * renderer's RSS with the file.
 * @param {import('../pkg/stele_wasm.js').WasmVerifier} v
 * @param {WebAssembly.Memory} memory
 * @returns {EntryBatch}
 */
export function viewBatch(v, memory) {
  const p = v.takeColumns();
  const n = p[0];
  const buf = memory.buffer; // after the take: the memory may have grown in it
  const num = (/** @type {number} */ k) => new Float64Array(buf, p[k], n);
  const codes = [6, 7, 8, 9, 10].map((k) => new Uint32Array(buf, p[k], n));
  const s = /** @type {{fresh: string[][], tsRaw: Array<number | string>}} */ (p[11] ? v.takeStrings() : NO_STRINGS);
  return { n, seq: num(1), ts: num(2), line: num(3), offset: num(4), length: num(5), codes, fresh: s.fresh, tsRaw: s.tsRaw };
}

export function abortError() {
  return new DOMException('verification cancelled', 'AbortError');
}

/**
 * What runVerification needs. WasmVerifier and prepareBlock come from the
 * wasm module (pkg/stele_wasm.js) of the thread that runs it.
 * @typedef {object} Run
 * @property {typeof import('../pkg/stele_wasm.js').WasmVerifier} WasmVerifier
 * @property {typeof import('../pkg/stele_wasm.js').prepareBlock} [prepareBlock]  to prepare blocks here too when helpers are busy
 * @property {Blob} file
 * @property {string[]} [keys]
 * @property {string} [trustedCheckpoint]
 * @property {number} [chunkSize]  bytes read per step without helpers
 * @property {number} [blockSize]  bytes per block with helpers
 * @property {(done: number, total: number) => void} [onProgress]
 * @property {(rows: EntrySummary[]) => void} [onRows]  plain rows (the package's public row API)
 * @property {(batch: EntryBatch) => void} [onBatch]  columnar batches straight from the verifier
 * @property {() => Promise<void>} [pause]  awaited between chunks, so a main-thread caller can let the page breathe
 * @property {() => boolean} [cancelled]  checked after each pause and after each read
 * @property {Pool | null} [pool]  helper workers
 * @property {{values: number, bytes: number}} [keepValues]  per column, the distinct values (and bytes of them) batches carry
 * @property {WebAssembly.Memory} [views]  the wasm module's memory: onBatch's batches are then views of
 *   columns the verifier reuses (takeColumns), valid only during the call (read, never keep or transfer them)
 */

/**
 * Verifies `file` with `WasmVerifier`. Calls onProgress(done, total) after each
 * chunk and onRows(rows) with new entry summaries; `pause` (optional) is awaited
 * between chunks so a main-thread caller can let the page breathe, and
 * `cancelled()` is checked after it.
 * @param {Run} run
 * @returns {Promise<Report>}
 */
export async function runVerification({ WasmVerifier, prepareBlock, file, keys, trustedCheckpoint, chunkSize = 1 << 20, blockSize, onProgress, onRows, onBatch, pause, cancelled, pool, keepValues, views }) {
  // onBatch takes columnar batches straight from the verifier (interned there);
  // onRows takes plain objects (the package's public row API).
  const decoder = onBatch ? null : new RowDecoder();
  const drain = () => {
    const b = views && onBatch ? viewBatch(v, views) : /** @type {EntryBatch} */ (v.takeBatch()); // the wasm side builds it
    if (!b.n) return;
    if (onBatch) onBatch(b);
    else onRows?.(/** @type {RowDecoder} */ (decoder).decode(b));
  };
  const keyText = (keys || []).map((k) => k.trim()).filter(Boolean).join('\n');
  const cp = trustedCheckpoint && trustedCheckpoint.trim() ? trustedCheckpoint : undefined;
  const v = new WasmVerifier(keyText, cp);
  try {
    // Rows decoded for onRows need every value; columnar batches may leave values in the file.
    if (keepValues && onBatch) v.limitValues(keepValues.values, keepValues.bytes);
    if (pool && pool.size > 0) {
      await runWithPool({ v, prepareBlock, file, pool, blockSize, onProgress, drain, pause, cancelled });
      return JSON.parse(v.finish());
    }
    const total = file.size;
    let done = 0;
    const read = (/** @type {number} */ at) => file.slice(at, Math.min(at + chunkSize, total)).arrayBuffer();
    let next = total > 0 ? read(0) : null;
    while (done < total) {
      const buf = await /** @type {Promise<ArrayBuffer>} */ (next);
      // Cancelled while the read was pending: nothing more reaches onBatch/onRows
      // (on the main thread the caller may already show another file).
      if (cancelled?.()) throw abortError();
      if (buf.byteLength === 0) throw new Error(`could not read the file at byte ${done}`);
      const end = done + buf.byteLength;
      next = end < total ? read(end) : null; // read ahead while wasm works
      v.push(new Uint8Array(buf));
      done = end;
      drain();
      onProgress?.(done, total);
      if (pause) await pause();
      if (cancelled?.()) throw abortError();
    }
    drain();
    return JSON.parse(v.finish());
  } finally {
    freeQuietly(v);
  }
}

/**
 * The multi-worker path: blocks cut at line ends are hashed and parsed
 * (wasm prepareBlock) by the pool's workers and, whenever they are all busy
 * and the next block in order is not back yet, by this worker too; this
 * worker then checks the chain, tree and checkpoints of each block in order
 * (pushPrepared). Reports are identical to the single-worker path.
 * @param {Omit<Run, 'pool' | 'WasmVerifier'> & {v: import('../pkg/stele_wasm.js').WasmVerifier, pool: Pool, drain: () => void}} o
 */
async function runWithPool({ v, prepareBlock, file, pool, blockSize = 1 << 20, onProgress, drain, pause, cancelled }) {
  const macrotask = macrotasks();
  try {
    const total = file.size;
    const next = blockReader(file, blockSize);
    /** @typedef {{block: Uint8Array, base: number}} Block */
    /** @type {Block[]} */
    const blocks = []; // read, not yet handed to anyone (at most 3)
    /** @type {Array<Block & {prepared: Uint8Array | null, done: boolean, promise?: Promise<void>}>} */
    const queue = []; // handed out, in file order
    /** @type {Promise<void> | null} */
    let reading = null;
    let eof = total === 0;
    /** @type {unknown} */
    let readError = null;
    let inflight = 0;
    const cap = pool.size * 2;
    /** @type {Uint8Array[]} */
    const outs = []; // prepared records' buffers, pushed: the next prepare writes into one
    // One block read ahead (not yet handed to a helper), not three: fewer
    // blocks in flight, and the renderer's RSS grew less on a 1 GB export
    // (web/bench/bench.mjs --maps, four interleaved pairs: +64 to +83 MB
    // instead of +77 to +94), at some speed (verify time / baseline 0.37-0.49
    // instead of 0.33-0.35, still far under the 1.5 goal).
    const pump = () => {
      if (!reading && !eof && blocks.length < 1) {
        reading = next().then(
          (b) => {
            reading = null;
            if (b) blocks.push(b);
            else eof = true;
            pump(); // keep reading ahead without waiting for the loop
          },
          (e) => {
            reading = null;
            readError = e;
          },
        );
      }
    };
    for (;;) {
      if (readError) throw readError;
      if (cancelled?.()) throw abortError(); // after any await below: no batch once cancelled
      pump();
      while (blocks.length && inflight < cap) {
        const item = { .../** @type {Block} */ (blocks.shift()), prepared: /** @type {Uint8Array | null} */ (null), done: false, promise: /** @type {Promise<void> | undefined} */ (undefined) };
        inflight++;
        // The block's buffer (its own: the reader copies the carry out) goes
        // to the helper and comes back with the prepared records.
        item.promise = pool.prepare(item.block, item.base, outs.pop()).then(({ prepared, block }) => {
          item.prepared = prepared;
          item.block = block;
          item.done = true;
          inflight--;
        });
        queue.push(item);
        pump();
      }
      const head = queue[0];
      // Prepare a block here when every helper is busy and either the next
      // block is not back or no other prepared block waits behind it.
      // Not past `cap + 2` blocks in the queue: a helper short of CPU would
      // otherwise let blocks prepared here pile up behind it (each holds its
      // buffer: memory grew with the helper's delay).
      const spare = blocks.length > 0 && prepareBlock && queue.length < cap + 2 && (!head?.done || (inflight >= cap && !queue[1]?.done));
      if (head?.done && !spare) {
        queue.shift();
        v.pushPrepared(head.block, /** @type {Uint8Array} */ (head.prepared));
        const end = head.base + head.block.length;
        // Both copied into the verifier: the reader fills the block's buffer
        // again, and a helper the prepared records' one. Every one is kept:
        // a buffer is made only when none is spare, so there are never more
        // than were in use at once (the queue's, a few). Keeping at most
        // cap + 2 dropped one at each lull and made one again at the next
        // burst: ~10 dead 512 KiB buffers in the helper on a 1.4 GB export.
        next.recycle(head.block.buffer);
        const out = /** @type {Uint8Array} */ (head.prepared);
        outs.push(new Uint8Array(out.buffer));
        drain();
        onProgress?.(end, total);
        if (pause) await pause();
        else await macrotask(); // let finished reads and the helpers' replies in
        if (cancelled?.()) throw abortError();
      } else if (spare) {
        const item = /** @type {Block} */ (blocks.shift());
        queue.push({ ...item, prepared: prepareInto(/** @type {NonNullable<Run['prepareBlock']>} */ (prepareBlock), item.block, item.base, outs.pop()), done: true });
        pump();
        await macrotask(); // let the helpers' replies in
      } else if (head || reading) {
        await Promise.race([head?.promise, reading].filter(Boolean));
      } else {
        break;
      }
    }
    onProgress?.(total, total);
  } finally {
    macrotask.close();
  }
}

/**
 * Reads `file` in blocks of at most `size` bytes cut after a line end; each
 * call resolves to {block, base} (base: the block's offset in the file) or to
 * null at the end. The last block is the rest of the file, whether or not it
 * ends with a newline, and so is a block inside a line longer than `size`
 * (memory stays O(size) whatever the file).
 *
 * Blocks are read (a byte stream, BYOB) into buffers that come back through
 * `recycle(buffer)` once the verifier has copied them, so a run allocates a
 * handful of buffers whatever the file size. Allocating one per block left a
 * hundred MiB and more of dead blocks in the worker between garbage
 * collections (a worker's JS heap is small, so it is rarely collected).
 * Where a Blob has no byte stream, each block is a new slice's ArrayBuffer.
 * @param {Blob} file
 * @param {number} size
 * @returns {(() => Promise<{block: Uint8Array, base: number} | null>) & {recycle: (buffer: ArrayBufferLike) => void}}
 */
function blockReader(file, size) {
  /** @type {ReadableStreamBYOBReader | null} */
  let reader = null;
  try {
    reader = file.size > 0 ? file.stream().getReader({ mode: 'byob' }) : null;
  } catch {
    reader = null; // no byte stream: slices
  }
  if (!reader) return Object.assign(sliceReader(file, size), { recycle() {} });
  const byob = reader;
  const total = file.size;
  /** @type {ArrayBuffer[]} */
  const spare = [];
  let readAt = 0;
  let base = 0;
  /** @type {Uint8Array} */
  let carry = new Uint8Array(0);
  const next = async () => {
    if (readAt >= total && !carry.length) {
      byob.cancel().catch(() => {}); // every byte is read: let the stream go
      return null;
    }
    // carry is the part of a line after the previous block's last line end: shorter than size.
    let buf = spare.pop() || new ArrayBuffer(size);
    new Uint8Array(buf).set(carry);
    let at = carry.length;
    // Never asks past the file's size: the stream's end is not waited for.
    while (at < size && readAt < total) {
      const { value, done } = await byob.read(new Uint8Array(buf, at, Math.min(size - at, total - readAt)));
      if (done || !value || value.byteLength === 0) throw new Error(`could not read the file at byte ${readAt}`);
      buf = /** @type {ArrayBuffer} */ (value.buffer); // the same memory, handed back by the stream
      at += value.byteLength;
      readAt += value.byteLength;
    }
    const data = new Uint8Array(buf, 0, at);
    let cut = readAt < total ? data.lastIndexOf(10) + 1 : at;
    // A whole block without a line end is a line longer than any entry:
    // hand it on (the verifier's framing counts it without keeping it).
    if (cut === 0) cut = at;
    carry = data.slice(cut);
    const block = { block: data.subarray(0, cut), base };
    base += cut;
    return block;
  };
  return Object.assign(next, {
    /** @param {ArrayBufferLike} b */
    recycle(b) {
      // All kept: next() makes a buffer only when none is spare, so this
      // holds no more than were in flight at once (the read, one read
      // ahead, the queue's). Keeping three dropped one at each lull and made
      // one again at the next burst: ~20 dead 1 MiB blocks in the worker
      // until it was collected, on a 1.4 GB sealed export (issue 17).
      if (b instanceof ArrayBuffer && b.byteLength === size) spare.push(b);
    },
  });
}

/**
 * blockReader without a byte stream: a new slice per block, up to three
 * read ahead while blocks are worked on.
 * @param {Blob} file
 * @param {number} size
 * @returns {() => Promise<{block: Uint8Array, base: number} | null>}
 */
function sliceReader(file, size) {
  const total = file.size;
  let readAt = 0;
  let base = 0;
  let carry = new Uint8Array(0);
  let requested = 0;
  /** @type {Promise<ArrayBuffer>[]} */
  const ahead = [];
  const request = () => {
    while (ahead.length < 3 && requested < total) {
      const end = Math.min(requested + size, total);
      ahead.push(file.slice(requested, end).arrayBuffer());
      requested = end;
    }
  };
  request();
  const next = async () => {
    while (ahead.length) {
      const buf = new Uint8Array(await /** @type {Promise<ArrayBuffer>} */ (ahead.shift()));
      if (buf.byteLength === 0) throw new Error(`could not read the file at byte ${readAt}`);
      readAt += buf.byteLength;
      request();
      let data = buf;
      if (carry.length) {
        data = new Uint8Array(carry.length + buf.length);
        data.set(carry);
        data.set(buf, carry.length);
      }
      let cut = readAt < total ? data.lastIndexOf(10) + 1 : data.length;
      // A whole block without a line end is a line longer than any entry:
      // hand it on rather than carry it, which grew with the line.
      if (cut === 0 && data.length >= size) cut = data.length;
      carry = data.slice(cut);
      if (cut > 0) {
        const block = { block: data.subarray(0, cut), base };
        base += cut;
        return block;
      }
    }
    return null;
  };
  return next;
}

/**
 * A function resolving after the event loop has run other tasks (worker
 * messages), through one MessageChannel (a new one each time was two ports
 * a block for the collector); close() when done.
 * @returns {(() => Promise<void>) & {close: () => void}}
 */
function macrotasks() {
  const ch = new MessageChannel();
  /** @type {(() => void)[]} */
  const waiting = [];
  ch.port1.onmessage = () => waiting.shift()?.();
  const next = () =>
    new Promise((/** @type {(v?: undefined) => void} */ resolve) => {
      waiting.push(resolve);
      ch.port2.postMessage(null);
    });
  return Object.assign(next, {
    close() {
      ch.port1.close();
      ch.port2.close();
    },
  });
}

/**
 * Helper workers running wasm prepareBlock (see startPool).
 * @typedef {object} Pool
 * @property {number} size
 * @property {(block: Uint8Array, base: number, out?: Uint8Array) => Promise<{prepared: Uint8Array, block: Uint8Array}>} prepare
 *   resolves to the prepared records (written into `out` when given and long
 *   enough); the buffers of the block and of `out` are transferred there and back
 * @property {() => void} close
 */

/**
 * A pool of helper workers (prepare-worker.js). `makeWorker()` returns a new
 * helper; `module` is the compiled WebAssembly.Module. Resolves to null when
 * no helper can start (the caller then verifies alone).
 * @param {{makeWorker: () => Worker, module: WebAssembly.Module, size: number}} o
 * @returns {Promise<Pool | null>}
 */
export async function startPool({ makeWorker, module, size }) {
  /** @type {Worker[]} */
  const workers = [];
  try {
    for (let i = 0; i < size; i++) {
      const w = makeWorker();
      await new Promise((resolve, reject) => {
        w.onmessage = (/** @type {MessageEvent<import('./protocol.js').FromHelper>} */ e) =>
          e.data.type === MSG.READY ? resolve(undefined) : reject(new Error('message' in e.data ? e.data.message : e.data.type));
        w.onerror = (e) => reject(new Error(e.message || 'prepare worker failed'));
        /** @type {import('./protocol.js').HelperInitMessage} */
        const init = { type: MSG.INIT, module };
        w.postMessage(init);
      });
      workers.push(w);
    }
  } catch {
    workers.forEach((w) => w.terminate());
    return null;
  }
  /** @type {Map<number, {resolve: (r: {prepared: Uint8Array, block: Uint8Array}) => void, reject: (e: Error) => void}>} */
  const waiting = new Map();
  let id = 0;
  for (const w of workers) {
    w.onmessage = (/** @type {MessageEvent<import('./protocol.js').FromHelper>} */ e) => {
      const m = e.data;
      if (!('id' in m)) return;
      const p = waiting.get(m.id);
      waiting.delete(m.id);
      if (!p) return;
      if (m.type === MSG.PREPARED) p.resolve({ prepared: m.prepared, block: m.block });
      else p.reject(new Error(m.message || 'prepare failed'));
    };
  }
  return {
    size: workers.length,
    prepare(block, base, out) {
      const n = ++id;
      const w = workers[n % workers.length];
      return new Promise((resolve, reject) => {
        waiting.set(n, { resolve, reject });
        /** @type {import('./protocol.js').PrepareMessage} */
        const msg = { type: MSG.PREPARE, id: n, block, base, out };
        w.postMessage(msg, out ? [block.buffer, out.buffer] : [block.buffer]);
      });
    },
    close() {
      workers.forEach((w) => w.terminate());
    },
  };
}

/**
 * Frees a wasm-bindgen object; harmless if finish() already consumed it.
 * @param {{free(): void}} v
 */
export function freeQuietly(v) {
  try {
    v.free();
  } catch {
    // already consumed
  }
}
