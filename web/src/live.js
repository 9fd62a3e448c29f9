// Live mode: monitor a running `stele serve` without downloading the log.
// Each check fetches /checkpoint and checks its signature with the pinned
// key; when the tree grew since the last check, it proves the new tree
// extends the old one (a consistency proof computed from C2SP tlog-tiles,
// checked by core); then it fetches only the tiles the inclusion proof of
// one entry needs, plus that entry's bundle, and checks inclusion. Polling
// repeats this. The tile and proof math is core's (core/src/tiles.rs,
// merkle.rs) through its own wasm module (stele_wasm_live, from wasm-live/),
// apart from the verifier's. Log content reaches the DOM only as text, with
// hidden Unicode shown as escapes.
//
// The page's CSP allows connections to its own origin only, so live mode
// checks the server that served the page (open https://SERVER/?live).
import initLive, { verifyCheckpoint, LiveTiles, bundleEntry } from '../pkg/stele_wasm_live.js';
import { setRevealed } from './util.js';

let liveReady = null;
function init() {
  liveReady ??= initLive({ module_or_path: new URL('../pkg/stele_wasm_live_bg.wasm', import.meta.url) });
  liveReady.catch(() => {
    liveReady = null;
  });
  return liveReady;
}

function getter(base, token, fetchImpl) {
  const root = new URL(base, location.href);
  if (!root.pathname.endsWith('/')) root.pathname += '/';
  const headers = token ? { Authorization: `Bearer ${token}` } : {};
  const get = async (path) => {
    const r = await fetchImpl(new URL(path, root), { headers, cache: 'no-store' });
    if (!r.ok) throw new Error(`${path}: HTTP ${r.status}: ${(await r.text()).slice(0, 300)}`);
    // stele serve says whether a read of entries was recorded (not by a --read-only mirror)
    get.reads = r.headers?.get?.('stele-reads') ?? get.reads;
    return new Uint8Array(await r.arrayBuffer());
  };
  return get;
}

/**
 * Checks entry `index` of the log served at `base` against the pinned `keys`
 * (verifier keys, one per line); with `previous` ({size, root} of the last
 * checkpoint seen), also that the new tree extends it. Resolves to what was
 * checked; rejects with the reason (HTTP status, bad signature, proof
 * mismatch from core).
 */
export async function checkLive({ base, keys, index, token, previous = null, fetchImpl = fetch }) {
  await init();
  const get = getter(base, token, fetchImpl);
  const cp = verifyCheckpoint(new TextDecoder().decode(await get('checkpoint')), keys);
  const tiles = new LiveTiles(cp.size);
  try {
    const size = cp.size;
    const fetched = ['checkpoint'];
    let consistency = null;
    if (previous) {
      if (size < previous.size) throw new Error(`the tree shrank from ${previous.size} to ${size} entries: the log was rolled back`);
      if (size === previous.size) {
        if (cp.root !== previous.root) throw new Error(`two different roots for the tree of size ${size}: the log forked`);
        consistency = { from: previous.size, to: size, same: true };
      } else {
        const paths = previous.size > 0 ? tiles.tilesForConsistency(previous.size) : [];
        const data = await Promise.all(paths.map(get));
        paths.forEach((p, i) => tiles.addTile(p, data[i]));
        tiles.verifyConsistency(previous.size, previous.root, cp.root);
        fetched.push(...paths);
        consistency = { from: previous.size, to: size, same: false };
      }
    }
    if (!(Number.isInteger(index) && index >= 0 && index < size)) {
      throw new Error(`entry ${index} is not in the signed tree of size ${size}`);
    }
    const paths = tiles.tilesForInclusion(index);
    const data = await Promise.all(paths.map(get));
    paths.forEach((p, i) => tiles.addTile(p, data[i]));
    const bundle = tiles.bundlePath(index);
    const entry = bundleEntry(await get(bundle), index % 256);
    const leaf = tiles.verifyInclusion(entry, index, cp.root);
    fetched.push(...paths, bundle);
    return {
      origin: cp.origin, size, root: cp.root, keyName: cp.keyName, index, leaf, consistency,
      entry: new TextDecoder().decode(entry), fetched: [...new Set(fetched)],
      readsRecorded: get.reads !== 'not-recorded',
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

const now = () => new Date().toISOString().replace(/\.\d+Z$/, 'Z');

const READS_LOGGED = 'Your reads are logged: each time this monitor fetches the entry (at every poll), the server first records the read as a stele.access event in this log, naming your token or your address. Those events are why the tree grows between polls.';
const READS_NOT_LOGGED = 'This server records no reads: it serves a read-only copy of the log (for example a mirror), so your fetches add nothing to it.';

/** Adds the live-log monitor panel at the top of `main`. */
export function mountLive(main) {
  const key = el('textarea', { id: 'live-key', rows: 2, placeholder: 'name+1a2b3c4d+base64…', required: true, spellcheck: false });
  const index = el('input', { id: 'live-index', type: 'number', min: '0', value: '1', required: true });
  const token = el('input', { id: 'live-token', type: 'password', placeholder: 'if reads need one', autocomplete: 'off' });
  const every = el('select', { id: 'live-every' },
    el('option', { value: '0', textContent: 'Off (check once)' }),
    el('option', { value: '10', textContent: 'Every 10 s' }),
    el('option', { value: '30', textContent: 'Every 30 s', selected: true }),
    el('option', { value: '60', textContent: 'Every minute' }));
  const button = el('button', { type: 'submit', className: 'primary', textContent: 'Check now' });
  const stop = el('button', { type: 'button', textContent: 'Stop', hidden: true });
  const field = (id, text, input, hint) => el('div', { className: 'field' }, el('label', { htmlFor: id, textContent: text }), input, ...(hint ? [el('p', { className: 'hint', textContent: hint })] : []));
  const form = el('form', { className: 'live-form' },
    field('live-key', 'Trusted key', key),
    field('live-index', 'Entry to prove', index, 'Its inclusion proof is checked at every poll.'),
    field('live-token', 'Read token (optional)', token),
    field('live-every', 'Poll', every),
    el('div', { className: 'actions' }, button, stop));
  const word = el('p', { className: 'verdict-word', textContent: 'Not checked yet' });
  const detail = el('p', { className: 'verdict-detail', textContent: `Monitors ${location.origin}: its signed checkpoint, that each new tree extends the last one, and one entry's inclusion.` });
  const verdict = el('div', { className: 'verdict idle', id: 'live-verdict', role: 'status', tabIndex: -1 }, el('div', { className: 'verdict-text' }, word, detail));
  verdict.setAttribute('aria-live', 'polite');
  const history = el('ol', { className: 'live-log', id: 'live-log', reversed: true });
  const out = el('pre', { className: 'live-out', id: 'live-out', tabIndex: 0 });
  out.setAttribute('aria-label', 'The proved entry');
  out.hidden = true;

  let timer = 0;
  let previous = null;
  let running = false;
  const show = (kind, w, d) => {
    verdict.className = `verdict ${kind}`;
    word.textContent = w;
    // The origin, the key's name and the server's messages are anyone's text: hidden characters as escapes.
    setRevealed(detail, d);
  };
  const logLine = (text, bad = false) => {
    const li = el('li', { className: bad ? 'bad' : '' });
    setRevealed(li, `${now()} ${text}`);
    history.prepend(li);
    while (history.childElementCount > 50) history.lastChild.remove();
  };

  const readsBanner = el('p', { className: 'banner', id: 'live-reads', textContent: READS_LOGGED });

  async function check() {
    if (running) return;
    running = true;
    try {
      const r = await checkLive({ base: './', keys: key.value, index: Number(index.value), token: token.value.trim(), previous });
      let c = '';
      if (r.consistency?.same) c = `, unchanged since the last check (size ${r.size})`;
      else if (r.consistency) c = `, and it extends the tree of size ${r.consistency.from} seen before ✓ (consistency proof)`;
      show('verified', 'Verified', `The checkpoint of size ${r.size} for ${r.origin} is signed by ${r.keyName}${c}; entry ${r.index} is in it (inclusion proof).`);
      logLine(`size ${r.size}, root ${r.root}${r.consistency && !r.consistency.same ? `, consistent with size ${r.consistency.from}` : ''}; entry ${r.index} included`);
      previous = { size: r.size, root: r.root };
      readsBanner.textContent = r.readsRecorded ? READS_LOGGED : READS_NOT_LOGGED;
      out.hidden = false;
      setRevealed(out, `leaf ${r.leaf}\nfetched ${r.fetched.join(', ')}\n\n${r.entry}`, { keepLines: true });
    } catch (e) {
      show('tampered', 'Failed', String(e.message ?? e));
      logLine(`FAILED: ${e.message ?? e}`, true);
      stopPolling();
    } finally {
      running = false;
    }
  }

  function stopPolling() {
    clearInterval(timer);
    timer = 0;
    stop.hidden = true;
    button.textContent = 'Check now';
  }

  let checkedKey = null;
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    stopPolling();
    // the next check proves the tree extends the last one seen with this key
    if (checkedKey !== key.value.trim()) previous = null;
    checkedKey = key.value.trim();
    show('working', 'Checking…', 'Fetching the signed checkpoint.');
    await check();
    verdict.focus();
    const secs = Number(every.value);
    if (secs > 0 && verdict.classList.contains('verified')) {
      timer = setInterval(check, secs * 1000);
      stop.hidden = false;
      button.textContent = 'Check now';
    }
  });
  stop.addEventListener('click', stopPolling);

  main.prepend(el('section', { className: 'panel live-panel', id: 'live-panel' },
    el('h2', { textContent: 'Live log monitor' }),
    readsBanner,
    form, verdict,
    el('h3', { textContent: 'Checks' }), history, out));
}
