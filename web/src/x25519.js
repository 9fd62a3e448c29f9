// X25519 for the opening pass from WebCrypto (./sealed.js, ./sealed-worker.js),
// and how bytes are pushed into a pass (pushPieces): its own module, imported
// by both, so the worker does not load ./sealed.js (which starts workers).
// Moves bytes only: every rule is the sealed module's.

/** Bytes given to a pass's push() at a time (pushPieces). */
const PIECE = 64 << 10;

/**
 * Pushes `bytes` into `pass` (an OpeningPass or a SealedVerifier: any
 * chunking reads the same) at most 64 KiB at a time. Each push is first
 * copied into the module's memory, which grows to hold it and never
 * shrinks: the key records (~0.5 KB a subject) or a 1 MiB chunk pushed
 * whole left a pass's memory that much larger for the page's life (1.4 MB
 * of key records: 4.1 MB of memory whole, 2.7 MB in pieces).
 * @param {{push(b: Uint8Array): void}} pass
 * @param {Uint8Array} bytes
 */
export function pushPieces(pass, bytes) {
  for (let at = 0; at < bytes.length; at += PIECE) pass.push(bytes.subarray(at, Math.min(at + PIECE, bytes.length)));
}

/**
 * The X25519 shared secrets computed ahead: `shares` (32 bytes each) and,
 * for each identity (in identity-file order), the secrets with them in the
 * same order (32 bytes each; zero where none was computed). The holder
 * zeroes `secrets` once given (giveX25519) or transfers them.
 * @typedef {{shares: Uint8Array, secrets: Uint8Array[]}} X25519Ahead
 */

/**
 * The X25519 the opening pass's unwrapping may need, computed with WebCrypto
 * (native: several times faster than the sealed module's own). Called after
 * the key records (the bytes before the first entry line) were pushed,
 * before the entries. Only the scalar multiplication moves here: which
 * shares (at most 4,096, within FORMAT 13.8's budget), the all-zero check
 * and the rest of age stay in wasm, which computes any secret not given:
 * all of them where WebCrypto has no X25519 (then null). The identity's keys
 * are imported not extractable, and the bytes of keys zeroed.
 * @param {import('../pkg/stele_wasm_seal.js').OpeningPass} pass
 * @returns {Promise<X25519Ahead | null>}
 */
export async function computeX25519(pass) {
  const subtle = globalThis.crypto?.subtle;
  if (!subtle) return null;
  const shares = pass.x25519Shares();
  if (!shares.length) return null;
  const keys = pass.x25519Keys();
  const alg = { name: 'X25519' };
  /** @type {Uint8Array[]} */
  const all = [];
  try {
    /** @type {Promise<CryptoKey | null>[]} */
    const imports = [];
    for (let at = 0; at < shares.length; at += 32) imports.push(subtle.importKey('raw', shares.slice(at, at + 32), alg, false, []).catch(() => null));
    const publics = await Promise.all(imports);
    for (let i = 0; i * 48 < keys.length; i++) {
      const own = await subtle.importKey('pkcs8', /** @type {BufferSource} */ (keys.subarray(i * 48, i * 48 + 48)), alg, false, ['deriveBits']);
      const secrets = new Uint8Array(shares.length);
      all.push(secrets);
      await Promise.all(publics.map(async (pub, j) => {
        if (!pub) return;
        try {
          secrets.set(new Uint8Array(await subtle.deriveBits({ name: 'X25519', public: pub }, own, 256)), 32 * j);
        } catch {
          // an all-zero result (refused) or another error: left zero, wasm decides
        }
      }));
    }
    return { shares, secrets: all };
  } catch {
    // no X25519 in this browser's WebCrypto: the sealed module computes each one
    for (const s of all) s.fill(0);
    return null;
  } finally {
    keys.fill(0);
  }
}

/**
 * Hands secrets computed by computeX25519 (here or in another thread, for
 * a pass over the same key records) to `pass`, and zeroes them.
 * @param {import('../pkg/stele_wasm_seal.js').OpeningPass} pass
 * @param {X25519Ahead | null | undefined} ahead
 */
export function giveX25519(pass, ahead) {
  if (!ahead) return;
  try {
    ahead.secrets.forEach((secrets, i) => pass.setX25519(i, ahead.shares, secrets));
  } finally {
    for (const s of ahead.secrets) s.fill(0);
  }
}

/**
 * computeX25519 then giveX25519 on the same pass.
 * @param {import('../pkg/stele_wasm_seal.js').OpeningPass} pass
 */
export async function prefetchX25519(pass) {
  giveX25519(pass, await computeX25519(pass));
}
