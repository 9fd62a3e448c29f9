// Prepared records of a block (wasm prepareBlock) written into a buffer that
// the verifier hands back block after block: the helper (prepare-worker.js)
// and the verifier worker (engine.js) share this, and the helper loads
// nothing else.

/**
 * Runs wasm prepareBlock with its records written into `out` (a buffer
 * used before, so nothing is allocated per block), or into a new buffer
 * when there is none or it is too short; returns the records.
 * @param {(block: Uint8Array, base: number, out: Uint8Array) => number} prepareBlock  wasm prepareBlock
 * @param {Uint8Array} block
 * @param {number} base
 * @param {Uint8Array} [out]
 * @returns {Uint8Array}
 */
export function prepareInto(prepareBlock, block, base, out) {
  let buf = out && out.byteLength ? out : new Uint8Array(Math.max(1024, block.length >> 1));
  let n = prepareBlock(block, base, buf);
  if (n > buf.length) {
    buf = new Uint8Array(Math.ceil(n * 1.25));
    n = prepareBlock(block, base, buf);
  }
  return buf.subarray(0, n);
}
