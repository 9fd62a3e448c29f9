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
import { setRevealed, revokedList } from './util.js';

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

// A check failure that shows the log itself misbehaved (not a network or
// input problem): the tree shrank, forked, or does not extend the last one.
class ForkError extends Error {}

/**
 * Checks entry `index` of the log served at `base` against the pinned `keys`
 * (verifier keys, one per line) and `revoked` (VKEY@SIZE each, docs/FORMAT.md
 * 15.3, judged by core without the log's key history); with `previous`
 * ({size, root} of the last checkpoint seen), also that the new tree extends
 * it, and with `earlier` (the text of a checkpoint the auditor saved, trusted
 * under the same keys by core's rule, FORMAT 8.6), that it extends that one
 * too. Resolves to what was checked; rejects with the reason (HTTP status,
 * bad signature, revoked key, proof mismatch from core); a rollback or fork
 * rejects with an error whose `fork` is true.
 */
export async function checkLive({ base, keys, revoked = [], index, token, previous = null, earlier = '', fetchImpl = fetch }) {
  await init();
  const get = getter(base, token, fetchImpl);
  let saved = null;
  if (earlier.trim()) {
    try {
      const e = verifyCheckpoint(earlier, keys, revoked);
      saved = { size: e.size, root: e.root, origin: e.origin };
      e.free();
    } catch (e) {
      throw new Error(`earlier checkpoint: ${e.message ?? e}`);
    }
  }
  const cp = verifyCheckpoint(new TextDecoder().decode(await get('checkpoint')), keys, revoked);
  const tiles = new LiveTiles(cp.size);
  try {
    const size = cp.size;
    const fetched = ['checkpoint'];
    let consistency = null;
    let extendsEarlier = null;
    if (saved && saved.origin !== cp.origin) throw new Error(`the earlier checkpoint is for the log ${saved.origin}, this server's for ${cp.origin}`);
    // the tree must extend `old`: the last tree seen, or the earlier checkpoint
    const extend = async (old, what) => {
      if (size < old.size) throw new ForkError(`the tree shrank from ${old.size} (${what}) to ${size} entries: the log was rolled back`);
      if (size === old.size) {
        if (cp.root !== old.root) throw new ForkError(`two different roots for the tree of size ${size} (this one and ${what}): the log forked`);
        return { from: old.size, to: size, same: true };
      }
      const paths = old.size > 0 ? tiles.tilesForConsistency(old.size) : [];
      const data = await Promise.all(paths.map(get));
      paths.forEach((p, i) => tiles.addTile(p, data[i]));
      try {
        tiles.verifyConsistency(old.size, old.root, cp.root);
      } catch (e) {
        throw new ForkError(`${e.message ?? e} (${what})`);
      }
      fetched.push(...paths);
      return { from: old.size, to: size, same: false };
    };
    if (saved) extendsEarlier = await extend(saved, 'the earlier checkpoint');
    if (previous) consistency = await extend(previous, 'the last tree seen');
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
      origin: cp.origin, size, root: cp.root, keyName: cp.keyName, keyId: cp.keyId, index, leaf, consistency, extendsEarlier,
      entry: new TextDecoder().decode(entry), fetched: [...new Set(fetched)],
      readsRecorded: get.reads !== 'not-recorded',
    };
  } catch (e) {
    if (e instanceof ForkError) e.fork = true;
    throw e;
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

const SCOPE = 'Checks the newest signed checkpoint with the pinned keys (and the revoked keys listed), that each new tree extends the last one seen, and one entry\'s inclusion. It does not read the log\'s key history (its stele.key events): pin the log\'s current key and list the revoked ones. For the full rules, verify an export of the log.';

/**
 * Adds the live-log monitor panel at the top of `main`. The panel's
 * `data-live-pending` is 1 while a check runs or is due, else 0 (for tests,
 * like the page's `data-pending`); `data-live-checks` counts the checks
 * whose result was shown.
 */
export function mountLive(main) {
  const key = el('textarea', { id: 'live-key', rows: 2, placeholder: 'name+1a2b3c4d+base64…', required: true, spellcheck: false });
  const revoked = el('textarea', { id: 'live-revoked', rows: 2, placeholder: 'name+1a2b3c4d+base64…@1200', spellcheck: false, autocomplete: 'off' });
  const earlier = el('textarea', { id: 'live-checkpoint', rows: 2, placeholder: 'example.com/log\n1200\nroot…\n\n— example.com/log …', spellcheck: false, autocomplete: 'off' });
  const index = el('input', { id: 'live-index', type: 'number', min: '0', value: '1', required: true });
  const token = el('input', { id: 'live-token', type: 'password', placeholder: 'if reads need one', autocomplete: 'off' });
  const every = el('select', { id: 'live-every' },
    el('option', { value: '0', textContent: 'Off (check once)' }),
    el('option', { value: '10', textContent: 'Every 10 s' }),
    el('option', { value: '30', textContent: 'Every 30 s', selected: true }),
    el('option', { value: '60', textContent: 'Every minute' }));
  const button = el('button', { type: 'submit', className: 'primary', textContent: 'Check now' });
  const stop = el('button', { type: 'button', textContent: 'Stop', hidden: true });
  const reset = el('button', { type: 'button', id: 'live-reset', textContent: 'Start over', hidden: true });
  const resetHint = el('p', { className: 'hint', id: 'live-reset-hint', hidden: true });
  reset.setAttribute('aria-describedby', 'live-reset-hint');
  const field = (id, text, input, hint) => {
    const label = el('label', { htmlFor: id, textContent: text.replace(/ \(optional\)$/, '') });
    if (text.endsWith(' (optional)')) label.append(' ', el('span', { className: 'optional', textContent: '(optional)' }));
    const f = el('div', { className: 'field' }, label, input);
    if (hint) {
      f.append(el('p', { className: 'hint', id: `${id}-hint`, textContent: hint }));
      input.setAttribute('aria-describedby', `${id}-hint`);
    }
    return f;
  };
  const form = el('form', { className: 'live-form' },
    field('live-key', 'Trusted key', key, 'The log\'s current key (after a rotation, the new one).'),
    field('live-revoked', 'Revoked keys (optional)', revoked, 'One per line: the verifier key, @, and the tree size from which it may no longer sign.'),
    field('live-checkpoint', 'Earlier checkpoint (optional)', earlier, 'A signed checkpoint of this log you saved before: every check must extend it.'),
    field('live-index', 'Entry to prove', index, 'Its inclusion proof is checked at every poll.'),
    field('live-token', 'Read token (optional)', token),
    field('live-every', 'Poll', every),
    el('div', { className: 'actions' }, button, stop, reset, resetHint));
  const word = el('p', { className: 'verdict-word', textContent: 'Not checked yet' });
  const detail = el('p', { className: 'verdict-detail', textContent: `Monitors ${location.origin}: its signed checkpoint, that each new tree extends the last one, and one entry's inclusion.` });
  const verdict = el('div', { className: 'verdict idle', id: 'live-verdict', role: 'status', tabIndex: -1 }, el('div', { className: 'verdict-text' }, word, detail));
  verdict.setAttribute('aria-live', 'polite');
  const history = el('ol', { className: 'live-log', id: 'live-log', reversed: true });
  const out = el('pre', { className: 'live-out', id: 'live-out', tabIndex: 0 });
  out.setAttribute('aria-label', 'The proved entry');
  out.hidden = true;

  let timer = 0;
  // The last tree seen ({size, root}): about the log, not the keys, so kept
  // until the auditor starts over.
  let previous = null;
  // The first rollback or fork seen (its message): every later verdict shows
  // it until the auditor starts over.
  let alarm = null;
  // The inputs of the last "Check now" (every check and poll uses them), and
  // a generation bumped by each submit and by Start over: a check whose
  // inputs or generation are no longer current is discarded.
  let inputs = null;
  let gen = 0;
  // Bumped by Start over only: what a check saw before it is forgotten.
  let epoch = 0;
  let loop = null;
  let again = false;
  let shown = 0;
  const panelState = {};
  const pending = (n) => panelState.section?.setAttribute('data-live-pending', String(n));

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
  const showReset = () => {
    const what = [previous && `the last tree seen (size ${previous.size})`, alarm && 'the rollback or fork detected'].filter(Boolean);
    reset.hidden = resetHint.hidden = !what.length;
    resetHint.textContent = what.length ? `Start over forgets ${what.join(' and ')}; the next check trusts the tree the server shows then (if it extends the earlier checkpoint, when one is given).` : '';
  };

  const readsBanner = el('p', { className: 'banner', id: 'live-reads', textContent: READS_LOGGED });

  // One check with the current inputs; its result is shown only if they and
  // the generation are still current when it settles.
  async function checkOne() {
    const g = gen;
    const e0 = epoch;
    const used = inputs;
    let r;
    let err = null;
    try {
      r = await checkLive({ base: './', ...used, previous });
    } catch (e) {
      err = e;
    }
    if (g !== gen || used !== inputs) {
      // Not shown (newer inputs are being checked), but a rollback or fork
      // it saw is about the log, not the inputs: a server that shows a fork
      // once, to the check the auditor just replaced, must not get away.
      if (err?.fork && e0 === epoch && !alarm) {
        alarm = String(err.message ?? err);
        logLine(`FAILED: ${alarm}`, true);
        showReset();
      }
      return;
    }
    shown++;
    panelState.section?.setAttribute('data-live-checks', String(shown));
    if (err) {
      const msg = String(err.message ?? err);
      if (err.fork && !alarm) alarm = msg;
      show('tampered', 'Failed', msg);
      logLine(`FAILED: ${msg}`, true);
      stopPolling();
      showReset();
      return;
    }
    let c = '';
    if (r.consistency?.same) c = `, unchanged since the last check (size ${r.size})`;
    else if (r.consistency) c = `, and it extends the tree of size ${r.consistency.from} seen before ✓ (consistency proof)`;
    if (r.extendsEarlier) c = `, it extends the earlier checkpoint (size ${r.extendsEarlier.from}) ✓${c}`;
    const revokedNote = used.revoked.length ? ', not revoked at this size' : '';
    const signed = `The checkpoint of size ${r.size} for ${r.origin} is signed by ${r.keyName} (key ID ${r.keyId})${revokedNote}${c}; entry ${r.index} is in it (inclusion proof).`;
    if (alarm) show('tampered', 'Failed', `Earlier: ${alarm}. That stands until you start over. This check passed: ${signed}`);
    else show('verified', 'Verified', signed);
    logLine(`size ${r.size}, root ${r.root}${r.consistency && !r.consistency.same ? `, consistent with size ${r.consistency.from}` : ''}; entry ${r.index} included; key ID ${r.keyId}`);
    previous = { size: r.size, root: r.root };
    readsBanner.textContent = r.readsRecorded ? READS_LOGGED : READS_NOT_LOGGED;
    out.hidden = false;
    setRevealed(out, `leaf ${r.leaf}\nfetched ${r.fetched.join(', ')}\n\n${r.entry}`, { keepLines: true });
    showReset();
  }

  // Runs checks until none is due: a check asked for while one is in flight
  // runs after it, with the inputs current then.
  function check() {
    if (loop) {
      again = true;
      return loop;
    }
    pending(1);
    loop = (async () => {
      try {
        do {
          again = false;
          await checkOne();
        } while (again);
      } finally {
        loop = null;
        pending(0);
      }
    })();
    return loop;
  }

  function stopPolling() {
    clearInterval(timer);
    timer = 0;
    stop.hidden = true;
    button.textContent = 'Check now';
  }

  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    stopPolling();
    const g = ++gen;
    inputs = { keys: key.value, revoked: revokedList(revoked.value), earlier: earlier.value, index: Number(index.value), token: token.value.trim() };
    show('working', 'Checking…', 'Fetching the signed checkpoint.');
    await check();
    if (g !== gen) return;
    verdict.focus();
    const secs = Number(every.value);
    if (secs > 0 && verdict.classList.contains('verified')) {
      timer = setInterval(() => loop || check(), secs * 1000);
      stop.hidden = false;
      button.textContent = 'Check now';
    }
  });
  stop.addEventListener('click', stopPolling);
  reset.addEventListener('click', () => {
    stopPolling();
    gen++;
    epoch++;
    previous = null;
    alarm = null;
    history.replaceChildren();
    out.hidden = true;
    show('idle', 'Not checked yet', 'Started over: the next check trusts the tree the server shows then (if it extends the earlier checkpoint, when one is given), and checks later ones against it.');
    showReset();
    verdict.focus();
  });

  panelState.section = el('section', { className: 'panel live-panel', id: 'live-panel' },
    el('h2', { textContent: 'Live log monitor' }),
    el('p', { className: 'hint live-scope', id: 'live-scope', textContent: SCOPE }),
    readsBanner,
    form, verdict,
    el('h3', { textContent: 'Checks' }), history, out);
  pending(0);
  panelState.section.setAttribute('data-live-checks', '0');
  main.prepend(panelState.section);
}
