// Helper worker for the verifier worker: hashes and parses the entry lines of
// blocks (wasm prepareBlock) so the verifier only checks order, chain, tree
// and checkpoints. Protocol:
//   in:  {type:'init', module} | {type:'prepare', id, block: Uint8Array, base}
//   out: {type:'ready'} | {type:'init-error', message}
//        {type:'prepared', id, prepared: Uint8Array, block} | {type:'error', id, message}
// The block is transferred both ways (the verifier pushes it next), not copied.
import initWasm, { prepareBlock } from '../pkg/stele_wasm.js';

let ready = null;

self.onmessage = async (event) => {
  const m = event.data;
  if (m.type === 'init') {
    ready = initWasm({ module_or_path: m.module });
    try {
      await ready;
      self.postMessage({ type: 'ready' });
    } catch (e) {
      self.postMessage({ type: 'init-error', message: String(e && e.message ? e.message : e) });
    }
    return;
  }
  if (m.type === 'prepare') {
    try {
      await ready;
      const prepared = prepareBlock(m.block, m.base);
      self.postMessage({ type: 'prepared', id: m.id, prepared, block: m.block }, [prepared.buffer, m.block.buffer]);
    } catch (e) {
      self.postMessage({ type: 'error', id: m.id, message: String(e && e.message ? e.message : e) });
    }
  }
};
