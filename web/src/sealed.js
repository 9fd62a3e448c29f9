// Sealed fields (docs/FORMAT.md section 13): opens them with an auditor's age
// identity; and witness policies (section 14). Loaded lazily (dynamic import)
// only when an identity or a policy is given, so the verifier every page
// loads does not grow. The opening, the commitment
// check and the record checks are stele-core's (sealed_pass: the same
// SealChecker as the CLI's verifier), in ../pkg/stele_wasm_seal; this module
// only moves bytes to it and adds its findings to the verification's report.
// The identity stays in this page's memory.
import initSeal, { OpeningPass, SealedVerifier } from '../pkg/stele_wasm_seal.js';

/** @type {Promise<unknown> | null} */
let ready = null;

function load() {
  if (!ready) {
    // The single-file build carries the module's bytes (no fetch from file://).
    const embed = /** @type {{STELE_EMBED?: {sealWasm?: Uint8Array}}} */ (/** @type {unknown} */ (globalThis)).STELE_EMBED;
    const embedded = embed?.sealWasm;
    ready = initSeal({ module_or_path: embedded ?? new URL('../pkg/stele_wasm_seal_bg.wasm', import.meta.url) });
    ready.catch(() => {
      ready = null;
    });
  }
  return ready;
}

/**
 * Streams `file` through `reader` (an OpeningPass or a SealedVerifier: push,
 * takeSealed, finish, free), collecting the sealed values as they settle.
 * Resolves to the parsed output of finish() and the values.
 * @param {Blob} file
 * @param {{push(b: Uint8Array): void, takeSealed(): string, finish(): string, free(): void}} reader
 * @param {{signal?: AbortSignal, chunkSize: number, onProgress?: (done: number, total: number) => void}} opts
 * @returns {Promise<{out: any, sealed: import('./index.js').SealedValue[]}>}
 */
async function stream(file, reader, { signal, chunkSize, onProgress }) {
  /** @type {import('./index.js').SealedValue[]} */
  const sealed = [];
  const take = (/** @type {[number, string, import('./index.js').SealedValue['state'], string | null][]} */ list) => {
    for (const [entry, pointer, state, value] of list) sealed.push({ entry, pointer, state, value });
  };
  try {
    for (let at = 0; at < file.size; at += chunkSize) {
      if (signal?.aborted) throw new DOMException('verification cancelled', 'AbortError');
      reader.push(new Uint8Array(await file.slice(at, at + chunkSize).arrayBuffer()));
      take(JSON.parse(reader.takeSealed()));
      onProgress?.(Math.min(at + chunkSize, file.size), file.size);
    }
  } catch (e) {
    reader.free();
    throw e;
  }
  const out = JSON.parse(reader.finish());
  take(out.sealed);
  return { out, sealed };
}

/** Loads this module's wasm: afterwards `policyVerifier` can be called. */
export async function loadModule() {
  await load();
}

/**
 * This module's streaming verifier with a witness policy (the text of a
 * C2SP tlog-policy), for `new Verifier({ policy })`: push, takeSealed,
 * finish (JSON whose `report` is the report), free. Throws an Error naming
 * the policy's bad line. Call loadModule() first.
 * @param {string[]} keys
 * @param {string} policy
 * @param {string | undefined} trustedCheckpoint
 */
export function policyVerifier(keys, policy, trustedCheckpoint) {
  return SealedVerifier.withPolicy(keys, undefined, policy, trustedCheckpoint);
}

/**
 * Throws a clear error when `identity` is not the text of an age identity
 * file (the message never contains the text).
 * @param {string} identity
 */
export async function checkIdentity(identity) {
  await load();
  new OpeningPass(undefined, identity).free();
}

/**
 * Throws a clear error naming the first revocation that is not `VKEY@SIZE`
 * (docs/FORMAT.md 15.3), as core reads them.
 * @param {string[]} revoked
 */
export async function checkRevoked(revoked) {
  await load();
  const v = SealedVerifier.withPolicy([], undefined, undefined, undefined);
  try {
    v.setRevoked(revoked);
  } finally {
    v.free();
  }
}

/**
 * The opening pass over `file`, after `report` (the plain verification of
 * the same bytes): opens every sealed value `identity` (the text of an age
 * identity file) can, checks it against its commitment, and checks every
 * sealed record. Resolves to `report` with its findings added (see
 * addOpenings).
 * @param {Blob} file
 * @param {import('./index.js').Report} report
 * @param {{identity: string, signal?: AbortSignal, chunkSize?: number, onProgress?: (done: number, total: number) => void}} opts
 * @returns {Promise<import('./index.js').Report>}
 */
export async function openSealed(file, report, opts) {
  return addOpenings(report, await openingPass(file, report.origin ?? undefined, opts));
}

/**
 * @param {Blob} file
 * @param {string | undefined} origin
 * @param {{identity: string, signal?: AbortSignal, chunkSize?: number, onProgress?: (done: number, total: number) => void}} opts
 */
async function openingPass(file, origin, { identity, signal, chunkSize = 1 << 20, onProgress }) {
  await load();
  return stream(file, new OpeningPass(origin, identity), { signal, chunkSize, onProgress });
}

/**
 * Adds an opening pass's findings to `report`: `sealed`, one {entry,
 * pointer, state, value} per sealed value (state 'opened', value its JSON
 * text; or 'sealed', 'forgotten', 'redacted', 'mismatch'), and
 * `sealed_counts`. A failure here (opening_mismatch, bad_sealed) joins the
 * report's failures and makes the verdict tampered, as any failure does
 * (FORMAT 8: a file with a failure is tampered).
 * @param {import('./index.js').Report} report
 * @param {{out: any, sealed: import('./index.js').SealedValue[]}} pass
 * @returns {import('./index.js').Report}
 */
export function addOpenings(report, { out, sealed }) {
  const room = Math.max(0, 1000 - report.failures.length);
  // Appended, not sorted in: a failure's `cause` is an index into the list.
  report.failures.push(...out.failures.slice(0, room));
  report.failures_total += out.failures_total;
  if (out.failures_total > 0 && report.verdict !== 'not_a_log') report.verdict = 'tampered';
  report.sealed = sealed;
  report.sealed_counts = out.counts ?? undefined;
  return report;
}

/**
 * The origin named by the genesis entry of a log export (its first entry
 * line, after the sealed-key records), read from the file's first 8 MiB;
 * null when there is none there. Unverified: a guess to start the opening
 * pass with while the file is being verified.
 * @param {Blob} file
 * @returns {Promise<string | null>}
 */
export async function genesisOrigin(file) {
  const head = new Uint8Array(await file.slice(0, 8 << 20).arrayBuffer());
  for (let at = 0; at < head.length;) {
    const nl = head.indexOf(10, at);
    if (nl < 0) return null;
    if (head[at] === 0x7b) { // the first line that can be an entry
      try {
        const e = JSON.parse(new TextDecoder().decode(head.subarray(at, nl)));
        const ev = e?.event;
        return e?.seq === 0 && ev?.type === 'stele.genesis' && typeof ev.origin === 'string' ? ev.origin : null;
      } catch {
        return null;
      }
    }
    at = nl + 1;
  }
  return null;
}

/**
 * The opening pass started before the verification's report exists, with
 * the origin the genesis entry names (genesisOrigin): it runs while the
 * plain verifier works (in its worker). Its findings may be used only when
 * the report's origin, once known, is the one it opened with: the
 * associated data of every opening binds the origin.
 * @param {Blob} file
 * @param {{identity: string, signal?: AbortSignal, chunkSize?: number}} opts
 * @returns {Promise<{origin: string, pass: {out: any, sealed: import('./index.js').SealedValue[]}} | null>}
 */
export async function openSealedEarly(file, opts) {
  await load();
  const origin = await genesisOrigin(file);
  if (origin == null) return null;
  return { origin, pass: await openingPass(file, origin, opts) };
}

/**
 * Verifies `file` once more with the whole verifier of this module, whose
 * report is the result.
 * With `policy` (the text of a C2SP tlog-policy), the report also says
 * whether the policy's witness quorum cosigned the checkpoint (`quorum`);
 * `identity` is optional, and `trustedCheckpoint` is checked too.
 * Also used for a log that rotated its key (docs/FORMAT.md 15), which the
 * plain verifier does not follow, and for revocations (`revoked`, each
 * `VKEY@SIZE`, docs/FORMAT.md 15.3). With `identity` the report has `sealed`
 * (one {entry, pointer, state, value} per value) and `sealed_counts`.
 * @param {Blob} file
 * @param {{keys?: string[], identity?: string, policy?: string, revoked?: string[], trustedCheckpoint?: string, signal?: AbortSignal, chunkSize?: number, onProgress?: (done: number, total: number) => void}} opts
 * @returns {Promise<import('./index.js').Report>}
 */
export async function verifySealed(file, { keys = [], identity, policy, revoked = [], trustedCheckpoint, signal, chunkSize = 1 << 20, onProgress }) {
  await load();
  const cp = trustedCheckpoint && trustedCheckpoint.trim() ? trustedCheckpoint : undefined;
  const v = SealedVerifier.withPolicy(keys, identity ?? undefined, policy, cp);
  try {
    v.setRevoked(revoked);
  } catch (e) {
    v.free();
    throw e;
  }
  const { out, sealed } = await stream(file, v, { signal, chunkSize, onProgress });
  const report = out.report;
  if (identity == null) return report;
  // As openSealed gives them: the values, and the counts beside them.
  report.sealed_counts = report.sealed ?? undefined;
  report.sealed = sealed;
  return report;
}
