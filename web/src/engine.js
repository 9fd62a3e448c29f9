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
export async function runVerification({ WasmVerifier, file, keys, trustedCheckpoint, chunkSize = 1 << 20, onProgress, onRows, onBatch, pause, cancelled }) {
  // onBatch takes columnar batches straight from the verifier (interned there);
  // onRows takes plain objects (the package's public row API).
  const drain = () => {
    if (onBatch) {
      const b = v.takeBatch();
      if (b.n) onBatch(b);
    } else {
      const rows = JSON.parse(v.takeEntries());
      if (rows.length) onRows?.(rows);
    }
  };
  const keyText = (keys || []).map((k) => k.trim()).filter(Boolean).join('\n');
  const cp = trustedCheckpoint && trustedCheckpoint.trim() ? trustedCheckpoint : undefined;
  const v = new WasmVerifier(keyText, cp);
  try {
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

/** Frees a wasm-bindgen object; harmless if finish() already consumed it. */
export function freeQuietly(v) {
  try {
    v.free();
  } catch {
    // already consumed
  }
}
