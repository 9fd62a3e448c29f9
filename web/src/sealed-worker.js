// The opening pass's worker (./sealed.js): reads a file for its sealed values
// off the page's main thread, which meanwhile shows the verification's rows.
// Like ./sealed.js it only moves bytes: the opening, the commitment check and
// the record checks are stele-core's (wasm-seal's OpeningPass). The identity,
// and the data keys it unwraps, reach it by postMessage within the page and
// are never stored.
//
// A large file is read by two such workers at once, each one part of the
// entries: both read the key records before the first entry, then each
// reads its part (wasm-seal's OpeningPass.resumeAt). Each unwraps the data
// keys its part's values need, when they need them (stele-core's rule),
// with the X25519 computed once for both (x25519.js), by the page while the
// workers start, and sent to each on a channel of its own.
//
// Page -> this worker
//   SealedWarmMessage     (optional, first) the compiled sealed module, before
//                         any file: instantiated now, and its hot paths run
//                         over a made-up export (wasm-seal's OpeningPass.warmUp)
//                         so the engine compiles them in its top tier before
//                         the pass, not during it (in slices: an open
//                         message that comes meanwhile ends it)
//   SealedOpenMessage     the compiled sealed module, the file, the origin, the identity, the part
// This worker -> page
//   SealedProgressMessage after each chunk: bytes of its part read, and the
//                         values settled in it (as columns: no JSON for the
//                         page to parse), taken while the pass goes on
//   SealedDoneMessage     the pass's finish() text
//   SealedErrorMessage    the pass could not run (not the file: a bad value is a finding)
// The page terminates the worker to cancel.
import initSeal, { OpeningPass } from '../pkg/stele_wasm_seal.js';
import { giveX25519, prefetchX25519, pushPieces } from './x25519.js';
import { readChunks, readInto } from './blobread.js';

/**
 * One part of a split pass: the file's bytes before its first entry line
 * are [0, head); this part reads the entries in [start, end), `start` being
 * `head` or the start of a later entry line.
 * @typedef {object} SealedPart
 * @property {number} index  0 or 1
 * @property {number} head
 * @property {number} start
 * @property {number} end
 */
/**
 * @typedef {object} SealedWarmMessage
 * @property {'warm'} type
 * @property {WebAssembly.Module} module
 * @property {number} rounds  OpeningPass.warmUp's (0: instantiate only)
 */
/**
 * @typedef {object} SealedOpenMessage
 * @property {'open'} type
 * @property {WebAssembly.Module} module  the sealed module, compiled once by the page
 * @property {Blob} file
 * @property {string | undefined} origin
 * @property {string} identity  the text of an age identity file
 * @property {number} chunkSize
 * @property {SealedPart} [part]  without it, the whole file
 * @property {number} [head]  with the whole file: where its first entry line
 *   starts (its key records are before), when known; the X25519 its data
 *   keys need is then computed with WebCrypto before the entries are read
 * @property {X25519Share} [x25519]  with a part: where the X25519 of the
 *   key records comes from
 * @property {boolean} [keep]  false: the values are not sent (counts and
 *   failures only: the page opens the values it shows when it shows them)
 */
/**
 * How a part's worker gets the X25519 of the key records, computed once for
 * both parts by the page (computeX25519): a copy of the secrets
 * (transferred; null when none were computed, and the pass then computes
 * each one) comes on `port`, and is waited for before the entries are read.
 * @typedef {{port: MessagePort}} X25519Share
 */
/**
 * The values settled in a chunk, as wasm-seal's OpeningPass.takeSealedColumns
 * gives them (four numbers a value), with its takeSealedText and
 * takeSealedPointers.
 * @typedef {{meta: Uint32Array, text: string, pointers: string[]}} SealedColumns
 */
/**
 * @typedef {{type: 'progress', done: number, values: SealedColumns | null}} SealedProgressMessage
 * @typedef {{type: 'done', finish: string, listed: number}} SealedDoneMessage
 *   listed: characters of value text the pass made before finish() (0
 *   when the values are not kept; for tests)
 * @typedef {{type: 'error', message: string}} SealedErrorMessage
 */

/**
 * @param {SealedProgressMessage | SealedDoneMessage | SealedErrorMessage} msg
 * @param {Transferable[]} [transfer]
 */
const reply = (msg, transfer = []) => self.postMessage(msg, { transfer });

/** The buffer of the last chunk pushed, read into again (see bytes). @type {ArrayBuffer | null} */
let spare = null;

/**
 * A buffer of at least `n` bytes to read into: the previous chunk's once it
 * was pushed (giveBack). A new ArrayBuffer a chunk left hundreds of dead
 * 1 MiB buffers in this worker until its next garbage collection (a 378 MB
 * export: +130 MB of RSS).
 * @param {number} n
 */
function buffer(n) {
  const buf = spare && spare.byteLength >= n ? spare : new ArrayBuffer(n);
  spare = null;
  return buf;
}

/**
 * Bytes `from` to `to` of `file` (the key records), read (a byte stream,
 * BYOB) into `buffer`'s. Where a Blob has no byte stream, a new slice's
 * ArrayBuffer.
 * @param {Blob} file @param {number} from @param {number} to
 */
async function bytes(file, from, to) {
  return readInto(file, from, to, buffer);
}

/** Once `chunk` was pushed (the module copies what it keeps): its buffer is read into next. @param {Uint8Array} chunk */
function giveBack(chunk) {
  if (chunk.buffer instanceof ArrayBuffer) spare = chunk.buffer;
}

/**
 * The pass over a part: the key records (and their X25519: the page's, else
 * prefetchX25519), then the part's entries.
 * @param {string | undefined} origin
 * @param {string} identity
 * @param {Blob} file
 * @param {SealedPart} part
 * @param {X25519Share | undefined} share
 */
async function partPass(origin, identity, file, part, share) {
  const secrets = share && new Promise((resolve) => {
    share.port.onmessage = (e) => resolve(e.data);
  });
  const pass = new OpeningPass(origin, identity);
  try {
    pushPieces(pass, await bytes(file, 0, part.head));
    if (!share) await prefetchX25519(pass);
    else {
      // The page's (computed once for both parts); null: none computed.
      giveX25519(pass, /** @type {import('./x25519.js').X25519Ahead | null} */ (await secrets));
      share.port.close();
    }
    if (part.start > part.head) pass.resumeAt(part.start);
    return pass;
  } catch (e) {
    pass.free();
    throw e;
  }
}

/** Rounds of the warm-up run at a time (128 values a round). */
const WARM_SLICE = 8;

/** Whether the open message came (the warm-up stops). */
let passAsked = false;

/** The module instantiated, once (a warm message may come before the open one). @type {Promise<unknown> | null} */
let instance = null;

/** @param {WebAssembly.Module} module */
function instantiate(module) {
  if (!instance) {
    const started = initSeal({ module_or_path: module });
    instance = started;
    started.catch(() => {
      if (instance === started) instance = null;
    });
  }
  return instance;
}

self.onmessage = async (/** @type {MessageEvent<SealedOpenMessage | SealedWarmMessage>} */ event) => {
  if (event.data.type === 'warm') {
    const { module, rounds } = event.data;
    try {
      await instantiate(module);
      // In slices, between which a pass asked for meanwhile starts: it ends the warm-up.
      for (let done = 0; done < rounds && !passAsked; done += WARM_SLICE) {
        OpeningPass.warmUp(Math.min(WARM_SLICE, rounds - done));
        await new Promise((resolve) => setTimeout(resolve, 0));
      }
    } catch {
      // the open message instantiates again and replies why it cannot
    }
    return;
  }
  passAsked = true;
  const { module, file, origin, identity, chunkSize, part, head, x25519, keep } = event.data;
  /** @type {OpeningPass | null} */
  let pass = null;
  try {
    await instantiate(module);
    const p = part ? await partPass(origin, identity, file, part, x25519) : new OpeningPass(origin, identity);
    pass = p;
    // Values not kept (a file kept as pages: the page opens a page's values
    // when it shows them): none listed. Their text, made a chunk only to be
    // dropped, was external strings that this worker's isolate, which
    // allocates little else, held until its next collection (50-65 MB a
    // worker on a 1.4 GB export with 3.7M values).
    if (keep === false) p.listValues(false);
    let listed = 0;
    const start = part ? part.start : 0;
    const end = part ? part.end : file.size;
    let from = start;
    if (!part && head) {
      pushPieces(p, await bytes(file, 0, head));
      await prefetchX25519(p);
      from = head;
    }
    // The entries from one stream (readChunks), chunk by chunk.
    let to = from;
    for await (const chunk of readChunks(file, from, end, chunkSize, buffer)) {
      to += chunk.length;
      pushPieces(p, chunk);
      giveBack(chunk);
      // Always taken: the module queues them until then.
      const meta = p.takeSealedColumns();
      const text = p.takeSealedText();
      const pointers = p.takeSealedPointers();
      listed += text.length;
      const values = meta.length && keep !== false ? { meta, text, pointers } : null;
      reply({ type: 'progress', done: to - start, values }, values ? [meta.buffer] : []);
    }
    pass = null; // finish() consumes it
    reply({ type: 'done', finish: p.finish(), listed });
  } catch (e) {
    // After a trap (a panic, out of memory) free() may throw too: the page
    // must still get its reply, or its pass would wait for ever.
    try {
      pass?.free();
    } catch {
      // the module is unusable; the reply below says why
    }
    reply({ type: 'error', message: e instanceof Error ? e.message : String(e) });
  }
};
