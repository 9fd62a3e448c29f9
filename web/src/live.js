// Live mode: check a running `stele serve` without downloading the log.
// Fetches /checkpoint and checks its signature with the pinned key, then
// fetches only the C2SP tlog-tiles that the inclusion proof of one entry
// needs, plus that entry's bundle, and checks inclusion in WebAssembly (the
// tile and proof math is core's: core/src/tiles.rs). Log content reaches the
// DOM only as textContent.
// Its own wasm module (stele_wasm_live, from wasm-live/), apart from the
// verifier's, so the verifier does not carry this code.
import initLive, { verifyCheckpoint, LiveTiles, bundleEntry } from '../pkg/stele_wasm_live.js';

let liveReady = null;
function init() {
  liveReady ??= initLive({ module_or_path: new URL('../pkg/stele_wasm_live_bg.wasm', import.meta.url) });
  liveReady.catch(() => {
    liveReady = null;
  });
  return liveReady;
}

/**
 * Checks entry `index` of the log served at `base` against the pinned `keys`
 * (verifier keys, one per line). Resolves to what was checked; rejects with
 * the reason (HTTP status, bad signature, proof mismatch from core).
 */
export async function checkLive({ base, keys, index, token, fetchImpl = fetch }) {
  await init();
  const root = new URL(base, location.href);
  if (!root.pathname.endsWith('/')) root.pathname += '/';
  const headers = token ? { Authorization: `Bearer ${token}` } : {};
  const get = async (path) => {
    const r = await fetchImpl(new URL(path, root), { headers, cache: 'no-store' });
    if (!r.ok) throw new Error(`${path}: HTTP ${r.status}: ${(await r.text()).slice(0, 300)}`);
    return new Uint8Array(await r.arrayBuffer());
  };
  const cp = verifyCheckpoint(new TextDecoder().decode(await get('checkpoint')), keys);
  const tiles = new LiveTiles(cp.size);
  try {
    const size = cp.size;
    if (!(Number.isInteger(index) && index >= 0 && index < size)) {
      throw new Error(`entry ${index} is not in the signed tree of size ${size}`);
    }
    const paths = tiles.tilesForInclusion(index);
    const data = await Promise.all(paths.map(get));
    paths.forEach((p, i) => tiles.addTile(p, data[i]));
    const bundle = tiles.bundlePath(index);
    const entry = bundleEntry(await get(bundle), index % 256);
    const leaf = tiles.verifyInclusion(entry, index, cp.root);
    return {
      origin: cp.origin, size, root: cp.root, keyName: cp.keyName, index, leaf,
      entry: new TextDecoder().decode(entry), fetched: ['checkpoint', ...paths, bundle],
    };
  } finally {
    tiles.free();
    cp.free();
  }
}

const el = (tag, props = {}, ...kids) => {
  const e = Object.assign(document.createElement(tag), props);
  e.append(...kids);
  return e;
};

/** Adds the live-log panel to `main`. */
export function mountLive(main) {
  const url = el('input', { type: 'url', value: new URL('./', location.href).href, required: true });
  const key = el('textarea', { rows: 2, placeholder: 'verifier key: origin+hex8+base64', required: true });
  const index = el('input', { type: 'number', min: '0', value: '1', required: true });
  const token = el('input', { type: 'password', placeholder: 'bearer token, if reads need one', autocomplete: 'off' });
  const out = el('pre', { className: 'live-out' });
  const button = el('button', { type: 'submit', textContent: 'Check live log' });
  const label = (text, input) => el('label', {}, text, ' ', input);
  const form = el('form', {}, label('Server', url), label('Pinned key', key), label('Entry', index), label('Token', token), button);
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    button.disabled = true;
    out.textContent = 'checking…';
    try {
      const r = await checkLive({ base: url.value, keys: key.value, index: Number(index.value), token: token.value.trim() });
      out.textContent = `verified: entry ${r.index} is in the tree of size ${r.size} of ${r.origin}, ` +
        `signed by ${r.keyName}\nroot ${r.root}\nleaf ${r.leaf}\nfetched ${r.fetched.join(', ')}\n\n${r.entry}`;
    } catch (e) {
      out.textContent = `FAILED: ${e.message ?? e}`;
    } finally {
      button.disabled = false;
    }
  });
  main.append(el('section', { className: 'panel live-panel', id: 'live-panel' },
    el('h2', { textContent: 'Live log' }),
    el('p', { textContent: 'Check one entry of a running stele serve: its signed checkpoint, and only the tiles the inclusion proof needs.' }),
    form, out));
}
