// A span of a Blob read into a buffer the caller reuses: the page's reads
// back from the file (rowvalues.js) and the sealed pass's workers
// (sealed-worker.js) each keep their own spare buffers, and share this.

/**
 * Bytes `from` to `to` of `blob`, read (a byte stream, BYOB) into the
 * buffer `take(n)` gives (n = to - from; at least n bytes long). The result
 * is a view of that buffer's memory (the stream hands it back). Where a Blob
 * has no byte stream, a new slice's ArrayBuffer, and `take` is not called.
 * Shorter than asked if the blob is.
 * @param {Blob} blob
 * @param {number} from
 * @param {number} to
 * @param {(n: number) => ArrayBuffer} take
 * @returns {Promise<Uint8Array>}
 */
export async function readInto(blob, from, to, take) {
  const n = to - from;
  const part = blob.slice(from, to);
  /** @type {ReadableStreamBYOBReader | null} */
  let reader = null;
  try {
    reader = part.stream().getReader({ mode: 'byob' });
  } catch {
    reader = null; // no byte stream
  }
  if (!reader) return new Uint8Array(await part.arrayBuffer());
  let buf = take(n);
  let at = 0;
  try {
    while (at < n) {
      const { value, done } = await reader.read(new Uint8Array(buf, at, n - at));
      if (value) buf = /** @type {ArrayBuffer} */ (value.buffer); // the same memory, handed back by the stream
      if (done || !value?.byteLength) break;
      at += value.byteLength;
    }
  } finally {
    reader.cancel().catch(() => {});
  }
  return new Uint8Array(buf, 0, at);
}

/**
 * Bytes `from` to `to` of `blob` in chunks of `size` bytes (the last one
 * shorter), read from one byte stream (BYOB) into the buffers `take(n)`
 * gives (at least n bytes long; each chunk is a view of one, handed back by
 * the stream). One stream for the whole span, not one a chunk: in Chromium
 * each Blob read is a reader and a data pipe of the browser process's, and
 * reading a 38 MB file by 1 MiB slices took about twice the CPU of reading
 * it as one stream. Where a Blob has no byte stream, a new slice's
 * ArrayBuffer a chunk, and `take` is not called. Ends early if the blob is
 * shorter.
 * @param {Blob} blob
 * @param {number} from
 * @param {number} to
 * @param {number} size
 * @param {(n: number) => ArrayBuffer} take
 * @returns {AsyncGenerator<Uint8Array, void, void>}
 */
export async function* readChunks(blob, from, to, size, take) {
  /** @type {ReadableStreamBYOBReader | null} */
  let reader = null;
  try {
    reader = to > from ? blob.slice(from, to).stream().getReader({ mode: 'byob' }) : null;
  } catch {
    reader = null; // no byte stream
  }
  if (!reader) {
    for (let at = from; at < to; at += size) {
      const chunk = new Uint8Array(await blob.slice(at, Math.min(at + size, to)).arrayBuffer());
      if (!chunk.length) return;
      yield chunk;
    }
    return;
  }
  try {
    for (let at = from; at < to; ) {
      const n = Math.min(size, to - at);
      let buf = take(n);
      let got = 0;
      while (got < n) {
        const { value, done } = await reader.read(new Uint8Array(buf, got, n - got));
        if (value) buf = /** @type {ArrayBuffer} */ (value.buffer); // the same memory, handed back by the stream
        if (done || !value?.byteLength) break;
        got += value.byteLength;
      }
      if (!got) return;
      at += got;
      yield new Uint8Array(buf, 0, got);
      if (got < n) return;
    }
  } finally {
    reader.cancel().catch(() => {});
  }
}
