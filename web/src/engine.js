// The verification loop shared by the Web Worker (worker.js) and the
// main-thread fallback (verifier.js). It reads a Blob in chunks, feeds the
// wasm verifier, and hands entry summaries on in compact, columnar batches.

/** Summary fields kept as interned strings, in this order. */
export const STRING_COLUMNS = ['type', 'actor', 'action', 'target', 'outcome'];

const TS_RE = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,6}))?Z$/;

/** Parses an RFC 3339 UTC timestamp to microseconds since the epoch, or NaN. */
export function parseTs(s) {
  if (typeof s !== 'string') return NaN;
  const m = TS_RE.exec(s);
  if (!m) return NaN;
  const ms = Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5], +m[6]);
  const frac = m[7] ? Number(m[7].padEnd(6, '0')) : 0;
  return ms * 1000 + frac;
}

/** Formats microseconds since the epoch as "2026-11-26T12:00:00.000000Z". */
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
    this.dicts = STRING_COLUMNS.map(() => new Map());
  }

  encode(rows) {
    const n = rows.length;
    const seq = new Float64Array(n);
    const ts = new Float64Array(n);
    const line = new Float64Array(n);
    const offset = new Float64Array(n);
    const length = new Float64Array(n);
    const codes = STRING_COLUMNS.map(() => new Uint32Array(n));
    const fresh = STRING_COLUMNS.map(() => []);
    const tsRaw = []; // [rowInBatch, string] where formatTs would not give back the original
    for (let i = 0; i < n; i++) {
      const r = rows[i];
      seq[i] = typeof r.seq === 'number' ? r.seq : NaN;
      // ts_us comes from the verifier; it is exact in a double until 2255.
      const exact = typeof r.ts_us === 'number' && Math.abs(r.ts_us) <= Number.MAX_SAFE_INTEGER;
      const t = exact ? r.ts_us : parseTs(r.ts);
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
    this.dicts = STRING_COLUMNS.map(() => []);
  }

  decode(b) {
    b.fresh.forEach((f, c) => {
      for (const s of f) this.dicts[c].push(s);
    });
    const raw = new Map();
    for (let i = 0; i < b.tsRaw.length; i += 2) raw.set(b.tsRaw[i], b.tsRaw[i + 1]);
    const num = (x) => (Number.isNaN(x) ? null : x);
    const rows = new Array(b.n);
    for (let i = 0; i < b.n; i++) {
      const t = b.ts[i];
      const r = { seq: num(b.seq[i]), ts: Number.isNaN(t) ? null : (raw.get(i) ?? formatTs(t)), ts_us: num(t) };
      for (let c = 0; c < STRING_COLUMNS.length; c++) {
        const k = b.codes[c][i];
        r[STRING_COLUMNS[c]] = k ? this.dicts[c][k - 1] : null;
      }
      r.line = b.line[i];
      r.offset = b.offset[i];
      r.length = b.length[i];
      rows[i] = r;
    }
    return rows;
  }
}

/** The ArrayBuffers of a batch, for a transfer list. */
export function batchTransfer(b) {
  return [b.seq.buffer, b.ts.buffer, b.line.buffer, b.offset.buffer, b.length.buffer, ...b.codes.map((c) => c.buffer)];
}

export function abortError() {
  return new DOMException('verification cancelled', 'AbortError');
}

/**
 * Verifies `file` with `WasmVerifier`. Calls onProgress(done, total) after each
 * chunk and onRows(rows) with new entry summaries; `pause` (optional) is awaited
 * between chunks so a main-thread caller can let the page breathe, and
 * `cancelled()` is checked after it.
 */
export async function runVerification({ WasmVerifier, prepareBlock, file, keys, trustedCheckpoint, chunkSize = 1 << 20, blockSize, onProgress, onRows, onBatch, pause, cancelled, pool }) {
  // onBatch takes columnar batches straight from the verifier (interned there);
  // onRows takes plain objects (the package's public row API).
  const decoder = onBatch ? null : new RowDecoder();
  const drain = () => {
    const b = v.takeBatch();
    if (!b.n) return;
    if (onBatch) onBatch(b);
    else onRows?.(decoder.decode(b));
  };
  const keyText = (keys || []).map((k) => k.trim()).filter(Boolean).join('\n');
  const cp = trustedCheckpoint && trustedCheckpoint.trim() ? trustedCheckpoint : undefined;
  const v = new WasmVerifier(keyText, cp);
  try {
    if (pool && pool.size > 0) {
      await runWithPool({ v, prepareBlock, file, pool, blockSize, onProgress, drain, pause, cancelled });
      return JSON.parse(v.finish());
    }
    const total = file.size;
    let done = 0;
    const read = (at) => file.slice(at, Math.min(at + chunkSize, total)).arrayBuffer();
    let next = total > 0 ? read(0) : null;
    while (done < total) {
      const buf = await next;
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
 */
async function runWithPool({ v, prepareBlock, file, pool, blockSize = 4 << 20, onProgress, drain, pause, cancelled }) {
  const total = file.size;
  const next = blockReader(file, blockSize);
  const blocks = []; // read, not yet handed to anyone (at most 3)
  const queue = []; // handed out, in file order: {block, base, prepared, done, promise}
  let reading = null;
  let eof = total === 0;
  let readError = null;
  let inflight = 0;
  const cap = pool.size * 2;
  const pump = () => {
    if (!reading && !eof && blocks.length < 3) {
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
    pump();
    while (blocks.length && inflight < cap) {
      const item = { ...blocks.shift(), prepared: null, done: false };
      inflight++;
      // The block's buffer (its own: the reader copies the carry out) goes
      // to the helper and comes back with the prepared records.
      item.promise = pool.prepare(item.block, item.base).then(({ prepared, block }) => {
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
    const spare = blocks.length > 0 && prepareBlock && (!head?.done || (inflight >= cap && !queue[1]?.done));
    if (head?.done && !spare) {
      queue.shift();
      v.pushPrepared(head.block, head.prepared);
      drain();
      onProgress?.(head.base + head.block.length, total);
      if (pause) await pause();
      else await macrotask(); // let finished reads and the helpers' replies in
      if (cancelled?.()) throw abortError();
    } else if (spare) {
      const item = blocks.shift();
      queue.push({ ...item, prepared: prepareBlock(item.block, item.base), done: true });
      pump();
      await macrotask(); // let the helpers' replies in
    } else if (head || reading) {
      await Promise.race([head?.promise, reading].filter(Boolean));
    } else {
      break;
    }
  }
  onProgress?.(total, total);
}

/**
 * Reads `file` in blocks of about `size` bytes cut after a line end; each
 * call resolves to {block, base} (base: the block's offset in the file) or to
 * null at the end. The last block is the rest of the file, whether or not it
 * ends with a newline, and so is a block inside a line longer than `size`
 * (memory stays O(size) whatever the file).
 */
function blockReader(file, size) {
  const total = file.size;
  let readAt = 0;
  let base = 0;
  let carry = new Uint8Array(0);
  // Up to three reads ahead while blocks are worked on.
  let requested = 0;
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
      const buf = new Uint8Array(await ahead.shift());
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
      // hand it on (the verifier's framing counts it without keeping it)
      // rather than carry it, which grew with the line (a 1 GB line held
      // 1 GB here and was copied again on every read).
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

/** Resolves after the event loop has run other tasks (worker messages). */
function macrotask() {
  return new Promise((resolve) => {
    const ch = new MessageChannel();
    ch.port1.onmessage = () => {
      ch.port1.close();
      resolve();
    };
    ch.port2.postMessage(null);
  });
}

/**
 * A pool of workers running wasm prepareBlock. `makeWorker()` returns a new
 * Worker for prepare-worker.js; `module` is the compiled WebAssembly.Module.
 * Resolves to null when no helper can start (the caller then verifies alone).
 */
export async function startPool({ makeWorker, module, size }) {
  const workers = [];
  try {
    for (let i = 0; i < size; i++) {
      const w = makeWorker();
      await new Promise((resolve, reject) => {
        w.onmessage = (e) => (e.data.type === 'ready' ? resolve() : reject(new Error(e.data.message)));
        w.onerror = (e) => reject(new Error(e.message || 'prepare worker failed'));
        w.postMessage({ type: 'init', module });
      });
      workers.push(w);
    }
  } catch {
    workers.forEach((w) => w.terminate());
    return null;
  }
  const waiting = new Map();
  let id = 0;
  for (const w of workers) {
    w.onmessage = (e) => {
      const m = e.data;
      const p = waiting.get(m.id);
      waiting.delete(m.id);
      if (!p) return;
      if (m.type === 'prepared') p.resolve({ prepared: m.prepared, block: m.block });
      else p.reject(new Error(m.message || 'prepare failed'));
    };
  }
  return {
    size: workers.length,
    /** Resolves to {prepared, block}; the block's buffer is transferred there and back. */
    prepare(block, base) {
      const n = ++id;
      const w = workers[n % workers.length];
      return new Promise((resolve, reject) => {
        waiting.set(n, { resolve, reject });
        w.postMessage({ type: 'prepare', id: n, block, base }, [block.buffer]);
      });
    },
    close() {
      workers.forEach((w) => w.terminate());
    },
  };
}

/** Frees a wasm-bindgen object; harmless if finish() already consumed it. */
export function freeQuietly(v) {
  try {
    v.free();
  } catch {
    // already consumed
  }
}
