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
