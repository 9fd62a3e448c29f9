// The messages between the three kinds of thread that verify a file:
//
//   page (verifier.js)  <->  verifier worker (worker.js)  <->  helper workers (prepare-worker.js)
//
// Every message is a plain object whose `type` is one of MSG below; this file
// is the only place that spells the names, and the typedefs below are the
// only description of the shapes (tsc --checkJs checks every sender and
// receiver against them: web/test/types.test.mjs).
//
// Page -> verifier worker
//   InitMessage      once, first: the compiled wasm module and how many helpers to start
//   VerifyMessage    one per file; `id` ties every reply to its request
// Verifier worker -> page
//   ReadyMessage     after init: wasm instantiated, helpers started (`helpers` of them), warmed up
//   InitErrorMessage instead of ReadyMessage; the page then verifies on the main thread
//   ProgressMessage  after each chunk or block: bytes done of total
//   BatchMessage     new entry summaries, columnar (buffers transferred); `rows` as plain
//                    objects too when the caller asked for them (VerifyMessage.wantRows);
//                    with VerifyMessage.pages, `pages` instead (store.js PagedStore.takeDelta)
//   DoneMessage      the report; the worker is free for the next file
//   ErrorMessage     the verification failed (not the file: a tampered file is a report)
// Verifier worker -> helper worker
//   HelperInitMessage  once, first: the compiled wasm module
//   PrepareMessage     a block of whole lines at byte `base` of the file (buffer transferred)
// Helper worker -> verifier worker
//   ReadyMessage / InitErrorMessage, as above (helpers: 0)
//   PreparedMessage  the prepared records of block `id`, and the block itself back (both transferred)
//   ErrorMessage     prepareBlock failed on block `id`
//
// Cancelling is not a message: the page terminates the verifier worker, and
// the helpers with it.

/** Message types. */
export const MSG = Object.freeze({
  INIT: /** @type {'init'} */ ('init'),
  READY: /** @type {'ready'} */ ('ready'),
  INIT_ERROR: /** @type {'init-error'} */ ('init-error'),
  VERIFY: /** @type {'verify'} */ ('verify'),
  PROGRESS: /** @type {'progress'} */ ('progress'),
  BATCH: /** @type {'batch'} */ ('batch'),
  DONE: /** @type {'done'} */ ('done'),
  ERROR: /** @type {'error'} */ ('error'),
  PREPARE: /** @type {'prepare'} */ ('prepare'),
  PREPARED: /** @type {'prepared'} */ ('prepared'),
});

/**
 * @typedef {object} InitMessage
 * @property {'init'} type
 * @property {WebAssembly.Module} module  compiled once by the page, instantiated in the worker
 * @property {number} helpers  helper workers to start (0: verify alone)
 * @property {string} [helperSource]  the helper's script as classic-script text, for builds
 *   where the helper cannot be loaded by URL (the single file); else the worker loads
 *   prepare-worker.js next to itself
 */

/**
 * @typedef {object} VerifyMessage
 * @property {'verify'} type
 * @property {number} id
 * @property {Blob} file
 * @property {string[]} keys  verifier keys
 * @property {string} [trustedCheckpoint]  a signed note
 * @property {number} chunkSize  bytes read per step when verifying alone
 * @property {boolean} wantRows  also send BatchMessage.rows
 * @property {boolean} [pages]  send BatchMessage.pages instead of batches
 * @property {{values: number, bytes: number}} [keepValues]  see VerifyFileOptions.keepValues
 */

/**
 * @typedef {object} ReadyMessage
 * @property {'ready'} type
 * @property {number} helpers  helper workers running (0 for a helper itself)
 */

/**
 * @typedef {object} InitErrorMessage
 * @property {'init-error'} type
 * @property {string} message
 */

/**
 * @typedef {object} ProgressMessage
 * @property {'progress'} type
 * @property {number} id
 * @property {number} done  bytes verified
 * @property {number} total  the file's size
 */

/**
 * @typedef {object} BatchMessage
 * @property {'batch'} type
 * @property {number} id
 * @property {import('./index.js').EntryBatch} [batch]
 * @property {import('./index.js').EntrySummary[]} [rows]
 * @property {import('./store.js').PagedDelta} [pages]
 */

/**
 * @typedef {object} DoneMessage
 * @property {'done'} type
 * @property {number} id
 * @property {import('./index.js').Report} report
 */

/**
 * @typedef {object} ErrorMessage
 * @property {'error'} type
 * @property {number} id
 * @property {string} name  'AbortError' when cancelled, else the error's name
 * @property {string} message
 */

/**
 * @typedef {object} HelperInitMessage
 * @property {'init'} type
 * @property {WebAssembly.Module} module
 */

/**
 * @typedef {object} PrepareMessage
 * @property {'prepare'} type
 * @property {number} id
 * @property {Uint8Array} block  whole lines; its buffer is transferred
 * @property {number} base  the block's byte offset in the file
 * @property {Uint8Array} [out]  a buffer to write the records into (engine.js prepareInto); transferred
 */

/**
 * @typedef {object} PreparedMessage
 * @property {'prepared'} type
 * @property {number} id
 * @property {Uint8Array} prepared  wasm prepareBlock's output, for pushPrepared
 * @property {Uint8Array} block  the block, given back
 */

/** @typedef {InitMessage | VerifyMessage} ToWorker */
/** @typedef {ReadyMessage | InitErrorMessage | ProgressMessage | BatchMessage | DoneMessage | ErrorMessage} FromWorker */
/** @typedef {HelperInitMessage | PrepareMessage} ToHelper */
/** @typedef {ReadyMessage | InitErrorMessage | PreparedMessage | ErrorMessage} FromHelper */

/** The text of any thrown value, for InitErrorMessage and ErrorMessage. */
export function errorText(/** @type {unknown} */ e) {
  return String(e && typeof e === 'object' && 'message' in e && e.message ? e.message : e);
}
