// Sealed fields (docs/FORMAT.md section 13): opens them with an auditor's age
// identity; and witness policies (section 14). Loaded lazily (dynamic import)
// only when an identity or a policy is given, so the verifier every page
// loads does not grow. The opening, the commitment
// check and the verification are stele-core's, in ../pkg/stele_wasm_seal; this
// module only moves bytes to it. The identity stays in this page's memory.
import initSeal, { SealedVerifier } from '../pkg/stele_wasm_seal.js';

/** @type {Promise<unknown> | null} */
let ready = null;

function load() {
  if (!ready) {
    ready = initSeal({ module_or_path: new URL('../pkg/stele_wasm_seal_bg.wasm', import.meta.url) });
    ready.catch(() => {
      ready = null;
    });
  }
  return ready;
}

/**
 * Verifies `file` with sealed values opened by `identity` (the text of an age
 * identity file). Resolves to the report, with `sealed`: one
 * {entry, pointer, state, value} per sealed value, state 'opened' (value: its
 * JSON text, checked against its commitment), 'sealed', 'forgotten',
 * 'redacted' or 'mismatch'.
 * @param {Blob} file
 * With `policy` (the text of a C2SP tlog-policy), the report also says
 * whether the policy's witness quorum cosigned the checkpoint (`quorum`);
 * `identity` is then optional, and `trustedCheckpoint` is checked too.
 * With neither (a log that rotated its key, docs/FORMAT.md 15, which the
 * plain verifier does not follow): the report of this module's verifier.
 * @param {{keys?: string[], identity?: string, policy?: string, trustedCheckpoint?: string, signal?: AbortSignal, chunkSize?: number, onProgress?: (done: number, total: number) => void}} opts
 * @returns {Promise<import('./index.js').Report>}
 */
export async function verifySealed(file, { keys = [], identity, policy, trustedCheckpoint, signal, chunkSize = 1 << 20, onProgress }) {
  await load();
  const cp = trustedCheckpoint && trustedCheckpoint.trim() ? trustedCheckpoint : undefined;
  // Without an identity (a policy, or a log that rotated its key): withPolicy, whose policy is optional.
  const v = policy != null || identity == null ? SealedVerifier.withPolicy(keys, identity ?? undefined, policy, cp) : new SealedVerifier(keys, String(identity));
  /** @type {import('./index.js').SealedValue[]} */
  const sealed = [];
  const take = (/** @type {string} */ json) => {
    for (const [entry, pointer, state, value] of JSON.parse(json)) sealed.push({ entry, pointer, state, value });
  };
  try {
    for (let at = 0; at < file.size; at += chunkSize) {
      if (signal?.aborted) throw new DOMException('verification cancelled', 'AbortError');
      v.push(new Uint8Array(await file.slice(at, at + chunkSize).arrayBuffer()));
      take(v.takeSealed());
      onProgress?.(Math.min(at + chunkSize, file.size), file.size);
    }
  } catch (e) {
    v.free();
    throw e;
  }
  const out = JSON.parse(v.finish());
  for (const [entry, pointer, state, value] of out.sealed) sealed.push({ entry, pointer, state, value });
  return identity != null ? Object.assign(out.report, { sealed }) : out.report;
}
