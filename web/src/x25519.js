// X25519 for the opening pass from WebCrypto (./sealed.js, ./sealed-worker.js):
// its own module, imported by both, so the worker does not load ./sealed.js
// (which starts workers). Moves bytes only: every rule is the sealed module's.

/**
 * The X25519 the opening pass's unwrapping may need, computed ahead with
 * WebCrypto (native: several times faster than the sealed module's own) and
 * handed to the pass (wasm-seal's x25519Shares, x25519Keys, setX25519).
 * Called after the key records (the bytes before the first entry line) were
 * pushed, before the entries. Only the scalar multiplication moves here:
 * which shares (at most 4,096, within FORMAT 13.8's budget), the all-zero
 * check and the rest of age stay in wasm, which computes any secret not
 * given: all of them where WebCrypto has no X25519. The identity's keys are
 * imported not extractable, and the bytes of keys and secrets zeroed.
 * @param {import('../pkg/stele_wasm_seal.js').OpeningPass} pass
 */
export async function prefetchX25519(pass) {
  const subtle = globalThis.crypto?.subtle;
  if (!subtle) return;
  const shares = pass.x25519Shares();
  if (!shares.length) return;
  const keys = pass.x25519Keys();
  const alg = { name: 'X25519' };
  try {
    /** @type {Promise<CryptoKey | null>[]} */
    const imports = [];
    for (let at = 0; at < shares.length; at += 32) imports.push(subtle.importKey('raw', shares.slice(at, at + 32), alg, false, []).catch(() => null));
    const publics = await Promise.all(imports);
    for (let i = 0; i * 48 < keys.length; i++) {
      const own = await subtle.importKey('pkcs8', /** @type {BufferSource} */ (keys.subarray(i * 48, i * 48 + 48)), alg, false, ['deriveBits']);
      const secrets = new Uint8Array(shares.length);
      await Promise.all(publics.map(async (pub, j) => {
        if (!pub) return;
        try {
          secrets.set(new Uint8Array(await subtle.deriveBits({ name: 'X25519', public: pub }, own, 256)), 32 * j);
        } catch {
          // an all-zero result (refused) or another error: left zero, wasm decides
        }
      }));
      pass.setX25519(i, shares, secrets);
      secrets.fill(0);
    }
  } catch {
    // no X25519 in this browser's WebCrypto: the sealed module computes each one
  } finally {
    keys.fill(0);
  }
}
