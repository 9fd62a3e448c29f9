// Spans of a Blob read into buffers used again: the page's reads back from
// the file (rowvalues.js, readInto: a span at a time, into its own spare
// buffers) and the sealed pass's workers (sealed-worker.js, chunkReader: a
// part of the file in chunks, from one stream).

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
 * Bytes `from` to `to` of `blob` in consecutive chunks of at most `size`
 * bytes, from one byte stream (BYOB) read into one buffer used again:
 * next() resolves to a view of that buffer, valid until the next call, or
 * to null after the last chunk. A stream a chunk (readInto) left its Blink
 * objects to the collector of an isolate that allocates few JS objects:
 * the opening pass's workers' embedder heaps grew ~0.3 MB a second each.
 * Where a Blob has no byte stream, a new slice's ArrayBuffer a chunk.
 * close() lets the stream go (also when not read to the end).
 * @param {Blob} blob
 * @param {number} from
 * @param {number} to
 * @param {number} size
 * @returns {{next: () => Promise<Uint8Array | null>, close: () => void}}
 */
export function chunkReader(blob, from, to, size) {
  let at = from;
  /** @type {ReadableStreamBYOBReader | null} */
  let reader = null;
  try {
    reader = to > from ? blob.slice(from, to).stream().getReader({ mode: 'byob' }) : null;
  } catch {
    reader = null; // no byte stream
  }
  const close = () => {
    reader?.cancel().catch(() => {});
    reader = null;
  };
  const byob = reader;
  let buf = new ArrayBuffer(byob ? size : 0);
  return {
    async next() {
      if (at >= to) {
        close();
        return null;
      }
      const want = Math.min(size, to - at);
      if (!byob) {
        const b = new Uint8Array(await blob.slice(at, at + want).arrayBuffer());
        if (!b.length) throw new Error(`could not read the file at byte ${at}`);
        at += b.length;
        return b;
      }
      let got = 0;
      while (got < want) {
        const { value, done } = await byob.read(new Uint8Array(buf, got, want - got));
        if (value) buf = /** @type {ArrayBuffer} */ (value.buffer); // the same memory, handed back by the stream
        if (done || !value?.byteLength) break;
        got += value.byteLength;
      }
      if (!got) throw new Error(`could not read the file at byte ${at}`);
      at += got;
      return new Uint8Array(buf, 0, got);
    },
    close,
  };
}
