// A helper of the verifier worker (worker.js): hashes and parses the entry
// lines of blocks (wasm prepareBlock) so the verifier only checks order,
// chain, tree and checkpoints. The block is transferred both ways (the
// verifier pushes it next), not copied. Messages: protocol.js.
import initWasm, { prepareBlock } from '../pkg/stele_wasm.js';
import { prepareInto } from './prepare.js';
import { MSG, errorText } from './protocol.js';

/** @typedef {import('./protocol.js').ToHelper} ToHelper */
/** @typedef {import('./protocol.js').FromHelper} FromHelper */

/** @type {Promise<unknown> | null} */
let ready = null;

/** @param {FromHelper} msg @param {Transferable[]} [transfer] */
function reply(msg, transfer = []) {
  self.postMessage(msg, { transfer });
}

self.onmessage = async (/** @type {MessageEvent<ToHelper>} */ event) => {
  const m = event.data;
  if (m.type === MSG.INIT) {
    ready = initWasm({ module_or_path: m.module });
    try {
      await ready;
      reply({ type: MSG.READY, helpers: 0 });
    } catch (e) {
      reply({ type: MSG.INIT_ERROR, message: errorText(e) });
    }
    return;
  }
  if (m.type === MSG.PREPARE) {
    try {
      await ready;
      const prepared = prepareInto(prepareBlock, m.block, m.base, m.out);
      reply({ type: MSG.PREPARED, id: m.id, prepared, block: m.block }, [prepared.buffer, m.block.buffer]);
    } catch (e) {
      reply({ type: MSG.ERROR, id: m.id, name: (e instanceof Error && e.name) || 'Error', message: errorText(e) });
    }
  }
};
