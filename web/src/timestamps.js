// RFC 3161 timestamps (docs/FORMAT.md section 16): checks the tokens an
// export carries against a TSA certificate the auditor gives. Loaded lazily
// (dynamic import) only when one is given, so the verifier every page loads
// does not grow: x509, CMS and the signature checks are stele-core's and
// stele-tsa's, in ../pkg/stele_wasm_tsa; this module only moves bytes to it.
// With an auditor key given too, the same module opens sealed values.
import initTsa, { TsaVerifier } from '../pkg/stele_wasm_tsa.js';

/** @type {Promise<unknown> | null} */
let ready = null;

function load() {
  if (!ready) {
    ready = initTsa({ module_or_path: new URL('../pkg/stele_wasm_tsa_bg.wasm', import.meta.url) });
    ready.catch(() => {
      ready = null;
    });
  }
  return ready;
}

/**
 * Verifies `file` with its timestamp tokens checked against `tsaCa` (the
 * bytes of a PEM or DER certificate file, or PEM text), and sealed values
 * opened when `identity` is given, a witness policy's quorum checked when
 * `policy` (its text, docs/FORMAT.md 14) is, and keys revoked from a tree
 * size when `revoked` (each `VKEY@SIZE`, 15.3) is. Resolves to the report,
 * with `timestamps` (one {size, line, status, time, tsa} per token), with a
 * policy `quorum`, and `sealed` and `sealed_counts` as ./sealed.js gives them.
 * @param {Blob} file
 * @param {{keys?: string[], tsaCa: Uint8Array | string, identity?: string, policy?: string, revoked?: string[], trustedCheckpoint?: string, signal?: AbortSignal, chunkSize?: number, onProgress?: (done: number, total: number) => void}} opts
 * @returns {Promise<import('./index.js').Report>}
 */
export async function verifyTimestamps(file, { keys = [], tsaCa, identity, policy, revoked = [], trustedCheckpoint, signal, chunkSize = 1 << 20, onProgress }) {
  await load();
  const ca = typeof tsaCa === 'string' ? new TextEncoder().encode(tsaCa) : tsaCa;
  const cp = trustedCheckpoint && trustedCheckpoint.trim() ? trustedCheckpoint : null;
  const v = new TsaVerifier(keys, ca, identity ?? null, cp, policy && policy.trim() ? policy : null);
  try {
    v.setRevoked(revoked);
    for (let at = 0; at < file.size; at += chunkSize) {
      if (signal?.aborted) throw new DOMException('verification cancelled', 'AbortError');
      v.push(new Uint8Array(await file.slice(at, at + chunkSize).arrayBuffer()));
      onProgress?.(Math.min(at + chunkSize, file.size), file.size);
    }
  } catch (e) {
    v.free();
    throw e;
  }
  /** @type {{sealed: [number, string, import('./index.js').SealedValue['state'], string | null][], report: import('./index.js').Report}} */
  const out = JSON.parse(v.finish());
  // As ./sealed.js gives them: `sealed` always a list, core's counts in `sealed_counts`.
  const values = (out.sealed || []).map(([entry, pointer, state, value]) => ({ entry, pointer, state, value }));
  const report = out.report;
  const counts = report.sealed;
  report.sealed_counts = counts && !Array.isArray(counts) ? counts : undefined;
  report.sealed = values;
  return report;
}
