// Evidence an auditor can attach: the input block of the report (what was
// checked, with what, by which verifier, when), the file's SHA-256, and the
// latest signed checkpoint (to pin it as "earlier checkpoint" next time).
//
// The SHA-256 is computed on demand, after the verdict is shown, not streamed
// by the verifier: the verifier already hashes every entry, and a second hash
// of every byte would slow every run (most never become evidence) by a full
// pass. Files up to 16 MiB are hashed with WebCrypto at once (fast, native);
// larger ones, or pages without WebCrypto (plain http), are hashed by the
// streaming SHA-256 below, read 1 MiB at a time into one buffer, so memory
// stays bounded.

const K = new Uint32Array([
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
  0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
  0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
  0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
  0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
  0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
  0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
  0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
]);

/** Streaming SHA-256 (FIPS 180-4). */
export class Sha256 {
  constructor() {
    this.h = new Uint32Array([0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19]);
    this.w = new Uint32Array(64);
    this.buf = new Uint8Array(64);
    this.fill = 0;
    this.len = 0;
  }

  block(b, o) {
    const w = this.w;
    for (let i = 0; i < 16; i++) w[i] = (b[o + 4 * i] << 24) | (b[o + 4 * i + 1] << 16) | (b[o + 4 * i + 2] << 8) | b[o + 4 * i + 3];
    for (let i = 16; i < 64; i++) {
      const x = w[i - 15];
      const y = w[i - 2];
      const s0 = ((x >>> 7) | (x << 25)) ^ ((x >>> 18) | (x << 14)) ^ (x >>> 3);
      const s1 = ((y >>> 17) | (y << 15)) ^ ((y >>> 19) | (y << 13)) ^ (y >>> 10);
      w[i] = (w[i - 16] + s0 + w[i - 7] + s1) | 0;
    }
    const h = this.h;
    let a = h[0], bb = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], hh = h[7];
    for (let i = 0; i < 64; i++) {
      const S1 = ((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7));
      const t1 = (hh + S1 + ((e & f) ^ (~e & g)) + K[i] + w[i]) | 0;
      const S0 = ((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10));
      const t2 = (S0 + ((a & bb) ^ (a & c) ^ (bb & c))) | 0;
      hh = g; g = f; f = e; e = (d + t1) | 0; d = c; c = bb; bb = a; a = (t1 + t2) | 0;
    }
    h[0] += a; h[1] += bb; h[2] += c; h[3] += d; h[4] += e; h[5] += f; h[6] += g; h[7] += hh;
  }

  update(data) {
    let i = 0;
    this.len += data.length;
    if (this.fill) {
      while (this.fill < 64 && i < data.length) this.buf[this.fill++] = data[i++];
      if (this.fill < 64) return;
      this.block(this.buf, 0);
      this.fill = 0;
    }
    for (; i + 64 <= data.length; i += 64) this.block(data, i);
    while (i < data.length) this.buf[this.fill++] = data[i++];
  }

  hex() {
    const bits = this.len * 8;
    const pad = new Uint8Array(((this.fill < 56 ? 56 : 120) - this.fill) + 8);
    pad[0] = 0x80;
    const dv = new DataView(pad.buffer);
    dv.setUint32(pad.length - 8, Math.floor(bits / 2 ** 32));
    dv.setUint32(pad.length - 4, bits >>> 0);
    this.update(pad);
    return [...this.h].map((x) => x.toString(16).padStart(8, '0')).join('');
  }
}

const hexOf = (buf) => [...new Uint8Array(buf)].map((b) => b.toString(16).padStart(2, '0')).join('');

/** Files hashed with WebCrypto at once (it cannot stream): up to this many bytes. */
const WEBCRYPTO_BYTES = 16 << 20;
/** Bytes read per step by the streaming hash, into one buffer used again. */
const STEP = 1 << 20;

/** Hex SHA-256 of a Blob; onProgress(done, total) while hashing large files. */
export async function sha256Blob(blob, { onProgress, signal } = {}) {
  if (globalThis.crypto?.subtle && blob.size <= WEBCRYPTO_BYTES) {
    return hexOf(await crypto.subtle.digest('SHA-256', await blob.arrayBuffer()));
  }
  const h = new Sha256();
  /** @type {ReadableStreamBYOBReader | null} */
  let reader = null;
  try {
    reader = blob.stream().getReader({ mode: 'byob' });
  } catch {
    reader = null; // no byte stream: slices
  }
  if (!reader) {
    for (let at = 0; at < blob.size; at += STEP) {
      if (signal?.aborted) throw new DOMException('aborted', 'AbortError');
      h.update(new Uint8Array(await blob.slice(at, at + STEP).arrayBuffer()));
      onProgress?.(Math.min(blob.size, at + STEP), blob.size);
    }
    return h.hex();
  }
  // One buffer read into again and again (a new slice's buffer a step left
  // tens of MB of dead ones on the page until they were collected).
  let buf = new ArrayBuffer(STEP);
  let done = 0;
  let since = performance.now();
  try {
    for (;;) {
      if (signal?.aborted) throw new DOMException('aborted', 'AbortError');
      const r = await reader.read(new Uint8Array(buf));
      if (r.done || !r.value) break;
      h.update(r.value);
      buf = /** @type {ArrayBuffer} */ (r.value.buffer);
      done += r.value.byteLength;
      onProgress?.(done, blob.size);
      // Reads of bytes already there resolve without a task between them:
      // let the page draw and take input every ~16 ms of hashing.
      if (performance.now() - since > 16) {
        await new Promise((resolve) => setTimeout(resolve, 0));
        since = performance.now();
      }
    }
  } finally {
    reader.cancel().catch(() => {});
  }
  if (done !== blob.size) throw new Error(`could not read the file: ${done} of ${blob.size} bytes`);
  return h.hex();
}

/** 2026-11-30T13:40:29Z */
export function utcNow(d = new Date()) {
  return d.toISOString().replace(/\.\d+Z$/, 'Z');
}

/**
 * The text of the signed note of the `checkpoint` record on line `line`
 * (FORMAT.md 7.1: lines up to the first empty line, then the "— " lines),
 * read from `blob` starting at byte `from`, which is the start of line
 * `fromLine`. Returns null if the record is not there.
 */
export async function readCheckpointNote(blob, line, from, fromLine) {
  const dec = new TextDecoder();
  let at = from;
  let cur = fromLine;
  let carry = '';
  const lines = [];
  let state = 'seek'; // seek -> text -> sigs
  while (at < blob.size) {
    const chunk = carry + dec.decode(await blob.slice(at, at + (1 << 20)).arrayBuffer(), { stream: true });
    at += 1 << 20;
    const parts = chunk.split('\n');
    carry = parts.pop();
    for (const l of parts) {
      if (state === 'seek') {
        if (cur === line) {
          if (l !== 'checkpoint') return null;
          state = 'text';
        }
        cur++;
        continue;
      }
      if (state === 'text') {
        lines.push(l);
        if (l === '') state = 'sigs';
        else if (lines.length > 64) return null;
        continue;
      }
      if (!l.startsWith('— ')) return `${lines.join('\n')}\n`;
      lines.push(l);
    }
    if (cur > line + 200 && state === 'seek') return null;
  }
  if (carry && state === 'sigs' && carry.startsWith('— ')) lines.push(carry);
  return state === 'sigs' ? `${lines.join('\n')}\n` : null;
}

/** Failures saying the file is not the history an earlier checkpoint pinned (docs/FORMAT.md 8.6). */
const HISTORY_FAILURES = new Set(['fork', 'rollback', 'origin_mismatch']);

/**
 * The last checkpoint of the report that a pinned key signed and that
 * verified, to pin next time; null when the verdict is not verified or
 * partial, or when the file forks from, rolls back or is of another origin
 * than an earlier checkpoint: pinning its checkpoint would pin that history.
 */
export function latestSignedCheckpoint(report) {
  if (report?.verdict !== 'verified' && report?.verdict !== 'partial') return null;
  if ((report.failures || []).some((f) => HISTORY_FAILURES.has(f.code))) return null;
  const cps = (report?.checkpoints || []).filter((c) => c.trusted && c.status === 'ok');
  if (!cps.length) return null;
  return cps.reduce((a, b) => (b.size > a.size || (b.size === a.size && b.line > a.line) ? b : a));
}
