// The verifier page. Log content is attacker-controlled: it only ever reaches
// the DOM through textContent, and never becomes a URL.
//
// The verdict on screen always belongs to the inputs on screen: a run starts
// when a file and a valid key are both given (never with an empty key unless
// the auditor presses Verify), and changing the key or the earlier checkpoint
// greys the verdict ("inputs changed") and runs again.
import { init, verifyFile, parseVerifierKey, prewarm, setWorkerFactory } from './verifier.js';
import { EntryStore, VALUE_LIMIT, PAGE_SHIFT, makeStore } from './store.js';
import { loadPages, loadRowValues, readPageTimes, scanRows, settleRows } from './rowvalues.js';
import { VirtualTable } from './table.js';
import { Timeline } from './timeline.js';
import { filterQuery, filterRows, toLocalInput, timeInputValid } from './filters.js';
import { sealedSearch } from './sealed-view.js';
import { sha256Blob, utcNow, readCheckpointNote, latestSignedCheckpoint } from './evidence.js';
import { prettyJson, formatBytes, fmtInt, plural, VERDICT_WORDS, verdictKind, verdictDetail, keySituation, summaryRows, setRevealed, hasHidden, revokedList } from './util.js';

const $ = (id) => document.getElementById(id);
const KEY_STORAGE = 'stele.trustedKey';
const VERSION = 'stele-web 0.1.0';

const ui = {
  file: $('file'), key: $('key'), keyInfo: $('key-info'), keySaved: $('key-saved'), keyForget: $('key-forget'), keyStatus: $('key-status'),
  checkpoint: $('checkpoint'), auditorKey: $('auditor-key'), auditorFile: $('auditor-file'), auditorHint: $('auditor-hint'), tsaCa: $('tsa-ca'), tsaFile: $('tsa-file'), revoked: $('revoked'), verify: $('verify'), verifyHint: $('verify-hint'),
  samples: $('samples'), sampleList: $('sample-list'),
  progressPanel: $('progress-panel'), progress: $('progress'), progressText: $('progress-text'), cancel: $('cancel'),
  verdict: $('verdict'), verdictWord: $('verdict-word'), verdictDetail: $('verdict-detail'), consistency: $('consistency'), witnessing: $('witnessing'), policy: $('policy'),
  summary: $('summary'), reportActions: $('report-actions'), download: $('download'), print: $('print'),
  cpCopy: $('cp-copy'), cpDownload: $('cp-download'), actionStatus: $('action-status'),
  evidence: $('evidence'), evidenceList: $('evidence-list'),
  failures: $('failures'), failuresHeading: $('h-failures'), failureList: $('failure-list'), failuresMore: $('failures-more'),
  notices: $('notices'), noticeList: $('notice-list'),
  keys: $('keys'), keyList: $('key-list'),
  checkpoints: $('checkpoints'), checkpointsSummary: $('checkpoints-summary'), checkpointList: $('checkpoint-list'),
  timelinePanel: $('timeline-panel'), entriesPanel: $('entries-panel'), entriesCount: $('entries-count'), entriesEmpty: $('entries-empty'),
  backToFailures: $('back-to-failures'), backFailures: $('back-failures'),
  fText: $('f-text'), fActor: $('f-actor'), fAction: $('f-action'), fFrom: $('f-from'), fTo: $('f-to'), fFailing: $('f-failing'), fClear: $('f-clear'), fClear2: $('f-clear-2'),
  actors: $('actors'), actions: $('actions'), overlay: $('drop-overlay'),
  banners: [...document.querySelectorAll('.run-banner')],
};

const state = {
  ready: false,
  blob: null,
  name: '',
  store: new EntryStore(),
  failing: new Set(), // store indices of entries a failure names
  ranges: [], // [lo, hi] store index ranges a range failure covers
  unsignedFrom: Infinity, // first store index not covered by a trusted checkpoint (partial)
  report: null,
  inputs: null, // {keys, checkpoint} of the run whose verdict is shown
  input: null, // the report's input block, as the page filled it
  running: null, // AbortController
  runningInputs: null, // {keys, checkpoint} of the run in progress
  cancelled: false, // the last run was cancelled (its rows are on screen, unverified)
  failureRows: [], // store index (or -1) of each listed failure button, in order
  failureAt: -1,
  latestCp: null, // {size, text}
  sha: null, // Promise<string> of the file's SHA-256
};

// ---- verdict area -------------------------------------------------------------

function setVerdict(kind, word, detail) {
  ui.verdict.className = `verdict ${kind}`;
  for (const icon of ui.verdict.querySelectorAll('.icon')) icon.toggleAttribute('hidden', !icon.classList.contains(`icon-${kind}`));
  ui.verdictWord.textContent = word;
  ui.verdictDetail.textContent = detail;
  document.documentElement.dataset.verdictState = kind;
}

function clearResult() {
  for (const e of [ui.summary, ui.reportActions, ui.failures, ui.failuresMore, ui.notices, ui.keys, ui.checkpoints, ui.evidence, ui.consistency, ui.backToFailures]) e.hidden = true;
  for (const e of [ui.summary, ui.failureList, ui.noticeList, ui.keyList, ui.checkpointList, ui.evidenceList]) e.replaceChildren();
  ui.cpCopy.hidden = true;
  ui.cpDownload.hidden = true;
  delete document.documentElement.dataset.cpOffer;
  ui.actionStatus.textContent = '';
}

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text != null) e.textContent = text;
  return e;
}

/** A <p> (or tag) whose text shows hidden Unicode as visible escapes. */
function revealed(tag, cls, text) {
  const e = el(tag, cls);
  setRevealed(e, text ?? '', { keepLines: true });
  return e;
}

const TS_IN_TEXT = /\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z/g;

function dlRows(dl, rows) {
  dl.replaceChildren(...rows.map(([k, v]) => {
    const div = el('div');
    const dd = el('dd');
    const stamps = typeof v === 'string' ? v.match(TS_IN_TEXT) : null;
    if (stamps && !/[\u0000-\u001f\u007f-\u009f\u200b-\u200f\u202a-\u202e\u2066-\u2069\ufeff]/.test(v)) {
      // no line break inside a timestamp
      const parts = v.split(TS_IN_TEXT);
      parts.forEach((p, j) => {
        if (p) dd.append(p);
        if (j < stamps.length) dd.append(el('span', 'nowrap', stamps[j]));
      });
    } else setRevealed(dd, v);
    div.append(el('dt', null, k), dd);
    return div;
  }));
}

function showReport(report, inputs) {
  state.report = report;
  state.sealed = new Map();
  // A list of values (verifier.js gives one on every path); anything else lists none.
  const values = Array.isArray(report.sealed) ? report.sealed : [];
  for (const v of values) {
    const list = state.sealed.get(v.entry);
    if (list) list.push(v);
    else state.sealed.set(v.entry, [v]);
  }
  // What searches read in rows with sealed values: made on the first
  // search (filterSealed), not before the verdict shows.
  state.sealedSearch = null;
  const counts = report.sealed_counts;
  const s = state.store;
  if (s.paged && inputs.identity && !values.length && counts?.values) {
    // A paged store listed no value (sealedList: false): each page's values
    // are opened when the page is read back from the file, kept and dropped
    // with its rows (store.js), and searched as each page is read.
    const { blob } = state;
    const origin = report.origin ?? null;
    const identity = inputs.identity;
    s.openSealed = async (at, bytes) => (await import('./sealed.js')).openSealedSpan(blob, { origin, identity, at, bytes });
    s.dropPages(); // read again, with their values
    table.schedule();
  }
  // for tests and benchmarks: how many sealed values this run opened (core's count when none are listed)
  document.documentElement.dataset.sealedOpened = String(s.paged && s.openSealed ? counts.opened : values.filter((v) => v.state === 'opened').length);
  showSealedHeld();
  state.inputs = inputs;
  const kind = verdictKind(report.verdict);
  const situation = kind === 'unverified' ? keySituation(report, inputs.keys.length) : null;
  setVerdict(situation === 'key_mismatch' ? 'unverified key-mismatch' : kind, VERDICT_WORDS[kind] + (situation === 'key_mismatch' ? ': key mismatch' : ''), verdictDetail(report, inputs.keys.length));
  ui.verdict.querySelector(`.icon-${kind}`)?.removeAttribute('hidden');

  // The input block (contract: report.input); the page knows the file name and the time.
  const input = {
    name: state.name || null,
    bytes: state.blob.size,
    sha256: report.input?.sha256 ?? null,
    keys: inputs.keys,
    trusted_checkpoint: report.input?.trusted_checkpoint ?? null,
    verifier: report.input?.verifier ?? VERSION,
    verified_at: utcNow(),
  };
  state.input = input;
  report.input = input;

  const stamps = (report.timestamps || []).filter((t) => t.status === 'ok').map((t) => [`Checkpoint ${fmtInt(t.size)}`, `existed by ${t.time}, attested by ${t.tsa}`]);
  dlRows(ui.summary, [['File', `${state.name} (${formatBytes(state.blob.size)})`], ...summaryRows(report, { identity: inputs.identity != null }), ...stamps]);
  ui.summary.hidden = kind === 'not_a_log';
  ui.reportActions.hidden = false;
  showEvidence();

  // Consistency with the checkpoint the auditor supplied.
  const tc = input.trusted_checkpoint;
  const codes = new Set((report.failures || []).map((f) => f.code));
  if (inputs.checkpoint.trim() && kind !== 'not_a_log') {
    ui.consistency.hidden = false;
    // the size core read from it; else the size line of the note as typed (for the wording only)
    const size = tc?.size ?? (/^[^\n]+\n(\d+)\n/.exec(inputs.checkpoint.trim())?.[1] ?? null);
    if (codes.has('fork') || codes.has('rollback') || codes.has('origin_mismatch')) {
      ui.consistency.className = 'consistency bad';
      ui.consistency.textContent = `✕ Not consistent with your checkpoint${size != null ? ` at size ${fmtInt(size)}` : ''}: see the failures.`;
    } else if ((report.notices || []).some((n) => n.code === 'trusted_checkpoint_unchecked') || kind !== 'verified' && kind !== 'partial') {
      ui.consistency.className = 'consistency unknown';
      ui.consistency.textContent = `Consistency with your checkpoint${size != null ? ` at size ${fmtInt(size)}` : ''} was not established.`;
    } else {
      ui.consistency.className = 'consistency ok';
      ui.consistency.textContent = `Consistent with your checkpoint${size != null ? ` at size ${fmtInt(size)}` : ''} ✓ (the log extends it without rewriting history)`;
    }
  }

  // The witness quorum (docs/FORMAT.md 14.4), when a policy was given.
  const q = report.quorum;
  ui.witnessing.hidden = !q || kind === 'not_a_log';
  if (q) {
    const by = q.cosigned_by.length ? q.cosigned_by.join(', ') : 'no witness of the policy';
    const at = q.size != null ? ` for the checkpoint at size ${fmtInt(q.size)}` : '';
    ui.witnessing.className = `consistency ${q.met ? 'ok' : 'bad'}`;
    ui.witnessing.textContent = q.met
      ? `Witness quorum ${q.name} met${at} ✓ (cosigned by ${by})`
      : `✕ Witness quorum ${q.name} not met${at} (cosigned by ${by}): the log may be showing you a history its witnesses did not see.`;
  }

  showFailures(report);

  const notices = report.notices || [];
  ui.noticeList.replaceChildren(...notices.map((n) => {
    const li = el('li', n.code === 'key_mismatch' ? 'notice-warning' : null);
    li.append(el('code', null, n.code), document.createTextNode(' '), revealed('span', null, n.message));
    return li;
  }));
  ui.notices.hidden = notices.length === 0;

  // docs/FORMAT.md 15.4: present when the log rotated its key.
  const keys = report.keys || [];
  ui.keyList.replaceChildren(...keys.map((k) => revealed('li', k.trusted ? 'key-trusted' : 'key-untrusted', keyLine(k))));
  ui.keys.hidden = keys.length === 0;

  const cps = report.checkpoints || [];
  // RFC 3161 anchors (docs/FORMAT.md 16.5): "existed by TIME, attested by TSA" per checked token.
  const anchors = (report.timestamps || []).filter((t) => t.status === 'ok');
  const anchorText = (size) => anchors.filter((t) => t.size === size).map((t) => ` · existed by ${t.time}, attested by ${t.tsa}`).join('');
  ui.checkpointList.replaceChildren(...cps.map((c) => el('li', `cp cp-${c.status}`,
    `line ${fmtInt(c.line)} · tree size ${fmtInt(c.size)} · ${c.status}${c.trusted ? ' · trusted' : ''}${c.witnesses ? ` · cosigned by ${c.witnesses.join(', ') || 'none'}` : ''} · root ${c.root}${anchorText(c.size)}`)));
  ui.checkpointsSummary.textContent = `Checkpoints (${fmtInt(report.checkpoints_total ?? cps.length)}${report.checkpoints_total > cps.length ? `, first ${fmtInt(cps.length)} listed` : ''})`;
  ui.checkpoints.hidden = cps.length === 0;

  state.unsignedFrom = kind === 'partial' && (report.unsigned_from ?? report.tree_size) != null ? rowOfEntry(report.unsigned_from ?? report.tree_size, true) : Infinity;
  if (kind === 'not_a_log') {
    // Nothing in the file is a log: no table, no timeline.
    state.store = new EntryStore();
    table.store = state.store;
    timeline.store = state.store;
  }
  refreshEntries();
  offerLatestCheckpoint(report);
}

/** One key of the report's key history, as a sentence. */
function keyLine(k) {
  const sizes = k.to == null ? `tree sizes ${fmtInt(k.from)} on` : `tree sizes ${fmtInt(k.from)} to ${fmtInt(k.to - 1)}`;
  const how = k.entry === 0 ? 'the genesis key'
    : `named by the stele.key event at entry ${fmtInt(k.entry)}, ${k.signed === true ? 'signed by the key it replaces' : k.signed === false ? 'NOT signed by the key it replaces' : 'not yet covered by a checkpoint'}`;
  const trust = !k.trusted ? 'not trusted' : k.revoked_from != null ? `trusted below tree size ${fmtInt(k.revoked_from)} only (revoked from it)` : 'trusted';
  return `${k.key}\n${sizes} · ${how} · ${trust}`;
}

function showEvidence() {
  const i = state.input;
  const rows = [
    ['File name', i.name ?? '–'],
    ['Size', `${fmtInt(i.bytes)} bytes (${formatBytes(i.bytes)})`],
    ['SHA-256', i.sha256 ?? 'computing…'],
    ['Trusted keys', i.keys.length ? i.keys.join('\n') : 'none given'],
    ['Earlier checkpoint', i.trusted_checkpoint ? `size ${fmtInt(i.trusted_checkpoint.size)}, root ${i.trusted_checkpoint.root}` : state.inputs.checkpoint.trim() ? 'given (see the consistency line)' : 'none given'],
    ...(state.inputs.revoked.length ? [['Revoked keys', state.inputs.revoked.join('\n')]] : []),
    ['Verifier', i.verifier],
    ['Verified at', i.verified_at],
  ];
  dlRows(ui.evidenceList, rows);
  ui.evidence.hidden = false;
  if (i.sha256) return;
  const blob = state.blob;
  const report = state.report;
  state.sha = sha256Blob(blob);
  state.sha.then((hex) => {
    if (state.report !== report) return;
    i.sha256 = hex;
    showEvidence();
  }, (e) => {
    if (state.report !== report) return;
    i.sha256 = null;
    dlRows(ui.evidenceList, rows.map(([k, v]) => [k, k === 'SHA-256' ? `could not be computed: ${e.message}` : v]));
  });
}

// ---- failures ---------------------------------------------------------------

/** Store index of the entry with leaf index `entry` (seq), or -1; with `atLeast`, the first row whose seq >= entry. */
function rowOfEntry(entry, atLeast = false) {
  const s = state.store;
  const i = s.findBySeq(entry);
  if (i >= 0 || !atLeast) return i;
  return s.firstSeqAtLeast(entry);
}

function rowOfFailure(f) {
  if (f.range) return -1;
  let i = f.line != null ? state.store.findByLine(f.line) : -1;
  if (i < 0 && f.entry != null) i = state.store.findBySeq(f.entry);
  return i;
}

function failureHead(f) {
  if (f.range) {
    const { first, last } = f.range;
    const which = first === last ? `entry ${fmtInt(first)}` : `entries ${fmtInt(first)}–${fmtInt(last)}`;
    return `Checkpoint at line ${fmtInt(f.line)}: ${which} · ${f.code}`;
  }
  const head = [];
  if (f.entry != null) head.push(`Entry ${fmtInt(f.entry)}`);
  if (f.line != null) head.push(`line ${fmtInt(f.line)}`);
  head.push(f.code);
  return head.join(' · ');
}

function failureItem(f, k) {
  const li = el('li', f.range ? 'failure range' : 'failure');
  li.id = `failure-${k}`;
  const head = failureHead(f);
  let target = rowOfFailure(f);
  if (f.range) {
    const lo = rowOfEntry(f.range.first, true);
    if (Number.isFinite(lo)) target = lo;
  }
  if (target >= 0) {
    const btn = el('button', 'failure-link', head);
    btn.type = 'button';
    btn.dataset.row = String(target);
    btn.addEventListener('click', () => {
      state.failureAt = state.failureRows.indexOf(btn);
      goToRow(target);
    });
    btn.setAttribute('aria-label', `${head.replace(/ · /g, ', ')}: show in the entries table`);
    state.failureRows.push(btn);
    li.append(btn);
  } else {
    // Not on an entry line (a header, a trailing byte, a proof record): plain text, not a disabled control.
    li.append(el('span', 'failure-label', head));
  }
  li.append(revealed('p', 'failure-message', f.message));
  if (f.expected != null || f.found != null) {
    li.append(revealed('p', 'failure-values', `expected ${f.expected ?? '–'}, found ${f.found ?? '–'}`));
  }
  return li;
}

function showFailures(report) {
  state.failing = new Set();
  state.ranges = [];
  state.failureRows = [];
  state.failureAt = -1;
  const failures = report.failures || [];
  for (const f of failures) {
    if (f.range) {
      const lo = rowOfEntry(f.range.first, true);
      const hi = rowOfEntry(f.range.last);
      if (Number.isFinite(lo) && lo >= 0) state.ranges.push([lo, hi >= 0 ? hi : state.store.n - 1]);
    } else {
      const row = rowOfFailure(f);
      if (row >= 0) state.failing.add(row);
    }
  }
  // Consequential failures are listed under the failure they follow from.
  const children = new Map();
  const roots = [];
  failures.forEach((f, k) => {
    const c = f.cause;
    if (c != null && c !== k && c >= 0 && c < failures.length && failures[c].cause == null) {
      if (!children.has(c)) children.set(c, []);
      children.get(c).push(k);
    } else roots.push(k);
  });
  ui.failureList.replaceChildren(...roots.map((k) => {
    const li = failureItem(failures[k], k);
    const kids = children.get(k);
    if (kids) {
      const d = el('details', 'consequences');
      d.append(el('summary', null, `${plural(kids.length, 'failure')} that ${kids.length === 1 ? 'follows' : 'follow'} from this one`));
      const ol = el('ol');
      ol.append(...kids.map((j) => failureItem(failures[j], j)));
      d.append(ol);
      li.append(d);
    }
    return li;
  }));
  ui.failures.hidden = failures.length === 0 || verdictKind(report.verdict) === 'not_a_log';
  if (report.failures_total > failures.length) {
    ui.failuresMore.hidden = false;
    ui.failuresMore.textContent = `Showing the first ${fmtInt(failures.length)} of ${fmtInt(report.failures_total)} failures. The downloaded report has the same list.`;
  }
}

function goToRow(i) {
  if (!table.goTo(i)) {
    clearFilters();
    table.goTo(i);
  }
  ui.backToFailures.hidden = ui.failures.hidden;
  ui.entriesPanel.scrollIntoView({ block: 'start' });
}

/** n / p: the next or previous failure that has a row. */
function stepFailure(dir) {
  const btns = state.failureRows;
  if (!btns.length) return;
  state.failureAt = (state.failureAt + dir + btns.length) % btns.length;
  const btn = btns[state.failureAt];
  btn.closest('details.consequences')?.setAttribute('open', '');
  goToRow(Number(btn.dataset.row));
}

// ---- key field ------------------------------------------------------------------

function keyList() {
  return ui.key.value.split(/\s+/).filter(Boolean);
}

let lastKeyStatus = '';
/** Checks the key field; returns true when it is empty or every key parses. */
function validateKey() {
  const keys = keyList();
  ui.key.removeAttribute('aria-invalid');
  ui.keyInfo.className = 'hint';
  let status = '';
  let ok = true;
  if (!keys.length) {
    ui.keyInfo.textContent = "The log operator's public verifier key. It is remembered in this browser.";
  } else if (state.ready) {
    try {
      const parsed = keys.map((k) => parseVerifierKey(k));
      ui.keyInfo.className = 'hint ok';
      // A key's name is the log's origin, anyone's text: hidden characters shown as escapes.
      setRevealed(ui.keyInfo, parsed.map((p) => `Key “${p.name}”, key ID ${p.key_id}`).join('; '));
      status = 'valid';
    } catch (e) {
      ui.key.setAttribute('aria-invalid', 'true');
      ui.keyInfo.className = 'hint error';
      setRevealed(ui.keyInfo, `Not a verifier key: ${e.message}`);
      status = 'invalid';
      ok = false;
    }
  }
  // Announced once when validity changes, not on every keystroke.
  if (status !== lastKeyStatus) {
    lastKeyStatus = status;
    ui.keyStatus.textContent = status ? ui.keyInfo.textContent : '';
  }
  return ok;
}

/** An age secret key (the auditor's, pasted in the wrong field): never stored. */
const AGE_SECRET = /AGE-SECRET-KEY-1/i;

/**
 * Remembers the key field when it holds verifier keys that parsed (`valid`,
 * from validateKey once the verifier is loaded); anything else (empty, a
 * half-typed or invalid key, an age secret key) leaves nothing stored.
 * @param {boolean} valid
 */
function saveKey(valid) {
  try {
    const v = ui.key.value.trim();
    if (v && valid && state.ready && !AGE_SECRET.test(v)) localStorage.setItem(KEY_STORAGE, v);
    else localStorage.removeItem(KEY_STORAGE);
  } catch {
    // storage unavailable (private mode, file://): not remembered
  }
}

// ---- stale inputs -------------------------------------------------------------------

const sameInputs = (a, b) => a && b && a.keys.join(' ') === b.keys.join(' ') && a.checkpoint.trim() === b.checkpoint.trim() && a.policy.trim() === b.policy.trim() && a.identity === b.identity && (a.tsaCa || '') === (b.tsaCa || '') && a.revoked.join(' ') === b.revoked.join(' ');
// Revoked keys (docs/FORMAT.md 15.3): one VKEY@SIZE per line (or separated by spaces).
const currentInputs = () => ({ keys: keyList(), checkpoint: ui.checkpoint.value, policy: ui.policy.value, identity: auditorIdentity(), tsaCa: ui.tsaCa.value.trim(), revoked: revokedList(ui.revoked.value) });
// The TSA certificate (issue 15): PEM text; a DER file is shown as PEM.
ui.tsaFile.addEventListener('change', async () => {
  const f = ui.tsaFile.files?.[0];
  ui.tsaFile.value = '';
  if (!f || f.size > 1 << 20) return;
  const bytes = new Uint8Array(await f.arrayBuffer());
  const text = new TextDecoder().decode(bytes);
  if (text.includes('-----BEGIN ')) ui.tsaCa.value = text;
  else {
    let bin = '';
    for (const b of bytes) bin += String.fromCharCode(b);
    const b64 = btoa(bin).replace(/.{64}/g, '$&\n');
    ui.tsaCa.value = `-----BEGIN CERTIFICATE-----\n${b64}\n-----END CERTIFICATE-----\n`;
  }
  inputsChanged();
});

// ---- the auditor key (issue 11) -------------------------------------------------
// An age identity: it stays in this page's memory (a masked field; no storage,
// no request, never in the URL) and reaches only the sealed module. Its file's
// text is kept as chosen; a pasted identity file loses its line breaks in the
// one-line field, so the identities are picked out of it.
let auditorFileText = '';
const AUDITOR_HINT = [...ui.auditorHint.childNodes].map((n) => n.cloneNode(true));

/** The identity text for the verifier ('' when none). */
function auditorIdentity() {
  if (auditorFileText) return auditorFileText;
  const v = ui.auditorKey.value.trim();
  const ids = v.match(/AGE-SECRET-KEY-1[0-9A-Z]+/g);
  return ids ? ids.join('\n') : v;
}

ui.auditorFile.addEventListener('change', async () => {
  const f = ui.auditorFile.files?.[0];
  ui.auditorFile.value = '';
  if (!f) return;
  if (f.size > 65536) {
    auditorFileText = '';
    ui.auditorKey.value = '';
    showAuditorError(`${f.name} is ${formatBytes(f.size)}: not an age identity file (age-keygen writes about 190 bytes)`);
    return;
  }
  auditorFileText = await f.text();
  ui.auditorKey.value = 'AGE-SECRET-KEY-1 (from a file)'; // masked; the file's text is what counts
  auditorChanged();
});
ui.auditorKey.addEventListener('input', () => {
  auditorFileText = '';
  auditorChanged();
});

let auditorTimer = 0;
/** Checks the key (with the sealed module's parser, loaded now) and re-runs. */
function auditorChanged() {
  clearTimeout(auditorTimer);
  showAuditorError('');
  const id = auditorIdentity();
  if (id) {
    // Not after the pause: the module compiles and the workers start while the key is typed or the file is chosen.
    import('./sealed.js').then((m) => m.warmUp()).catch(() => {});
    auditorTimer = setTimeout(async () => {
      try {
        await (await import('./sealed.js')).checkIdentity(id);
        if (auditorIdentity() === id) ui.auditorHint.textContent = 'Auditor key read: sealed fields it can open are shown opened. It stays in this page.';
      } catch (e) {
        if (auditorIdentity() === id) showAuditorError(e instanceof Error ? e.message : String(e));
      }
    }, 300);
  }
  inputsChanged();
}

/** The message never contains the key: it comes from the parser, which names lines only. */
function showAuditorError(msg) {
  ui.auditorKey.toggleAttribute('aria-invalid', !!msg);
  ui.auditorHint.className = msg ? 'hint error' : 'hint';
  if (msg) ui.auditorHint.textContent = `Not an auditor key: ${msg.replace(/^auditor key: /, '')}`;
  else ui.auditorHint.replaceChildren(...AUDITOR_HINT.map((n) => n.cloneNode(true)));
}

let rerunTimer = 0;

/** A run due after the inputs changed (inputsChanged) does not come. */
function cancelRerun() {
  clearTimeout(rerunTimer);
  rerunTimer = 0;
  showPending();
}

/** After the key or checkpoint changed: withdraw the verdict, and verify again when the key is usable. */
function inputsChanged() {
  cancelRerun();
  const keyOk = validateKey();
  saveKey(keyOk && keyList().length > 0);
  ui.keySaved.hidden = true;
  if (!state.blob) return;
  const now = currentInputs();
  const shown = state.running ? state.runningInputs : state.inputs;
  if (shown && sameInputs(now, shown)) return;
  const had = state.report || state.running || state.cancelled;
  abortRun();
  if (had) {
    // The verdict on screen was for other inputs: it goes, with everything that depends on it.
    state.report = null;
    state.inputs = null;
    state.failing = new Set();
    state.ranges = [];
    state.unsignedFrom = Infinity;
    // Values the auditor key opened go with the verdict: no cell, search or
    // detail shows them once the inputs changed (the key may be gone).
    dropSealed();
    document.documentElement.dataset.sealedOpened = '0';
    clearResult();
    refreshEntries();
    table.schedule();
    table.refreshDetail();
    setBanner('The inputs changed: these entries are not verified against the new key or checkpoint yet.');
  }
  if (keyOk && now.keys.length) {
    if (had) setVerdict('stale', 'Inputs changed', 'The key or the earlier checkpoint changed since the last run: verifying again…');
    rerunTimer = setTimeout(() => {
      rerunTimer = 0;
      startVerification(state.blob, state.name);
      showPending();
    }, 400);
    showPending();
  } else if (!keyOk) {
    setVerdict(had ? 'stale' : 'idle', had ? 'Inputs changed' : 'Ready to verify', `${state.name} is chosen, but the key is not valid: fix it to verify.`);
  } else {
    setVerdict(had ? 'stale' : 'idle', had ? 'Inputs changed' : 'Ready to verify', `${state.name} is chosen. Enter the trusted key to verify it, or press Verify to check it without one.`);
  }
}

/** Stops the run in progress, if any, without a verdict. */
function abortRun() {
  if (!state.running) return;
  state.running.abort();
  state.running = null;
  stopLive();
  ui.progressPanel.hidden = true;
  ui.verify.disabled = !state.blob;
}

// ---- verification -----------------------------------------------------------------

let progressStart = 0;
let finishedRuns = 0;
let unsettledRuns = 0;

/**
 * for tests and automation: html[data-pending] counts what may still change
 * the verdict or the rows shown: the verifications not settled yet (the run
 * in progress, and a cancelled one until it has stopped: on the main thread,
 * after the read it was waiting for), plus 1 while a run is due (the inputs
 * changed: rerunTimer) and 1 while a redraw is scheduled. At 0 no run will
 * start or deliver rows unless an input changes, and the table and its count
 * show every row there is: a negative check waits for it, not for a fixed
 * time.
 */
function showPending() {
  const n = String(unsettledRuns + (rerunTimer ? 1 : 0) + (liveTimer ? 1 : 0));
  if (document.documentElement.dataset.pending !== n) document.documentElement.dataset.pending = n;
}

// While verifying, the page redraws at most 10 times a second (every redraw
// is a style, layout and paint pass that competes with the verifier for the
// CPU): progress each time, new rows in the same redraw 4 times a second.
let liveTimer = 0;
let pendingProgress = null;
let entriesDirty = false;
let entriesShown = 0;
let timelineShown = 0;

function scheduleLive() {
  if (liveTimer) return;
  liveTimer = setTimeout(() => {
    liveTimer = 0;
    if (pendingProgress) drawProgress(...pendingProgress);
    pendingProgress = null;
    const now = performance.now();
    if (entriesDirty && now - entriesShown >= 250) {
      entriesShown = now;
      entriesDirty = false;
      refreshEntries({ running: true });
    }
    if (entriesDirty) scheduleLive();
    showPending();
  }, 100);
  showPending();
}

function stopLive() {
  clearTimeout(liveTimer);
  liveTimer = 0;
  pendingProgress = null;
  entriesDirty = false;
  showPending();
}

function showProgress(done, total) {
  pendingProgress = [done, total];
  scheduleLive();
}

function drawProgress(done, total) {
  const pct = total ? (done / total) * 100 : 100;
  ui.progress.value = pct;
  const secs = (performance.now() - progressStart) / 1000;
  const rate = secs > 0 ? done / 1e6 / secs : 0;
  ui.progressText.textContent = `${pct.toFixed(0)}% · ${formatBytes(done)} of ${formatBytes(total)} · ${rate.toFixed(1)} MB/s`;
}

/**
 * The row callbacks of one run: its batches go into the store it started
 * with, and only while it is the run in progress. A cancelled run's batch
 * that arrives late (on the main thread, a read pending when it was
 * cancelled) never reaches the next file's table.
 * @param {AbortController} ac
 * @param {EntryStore | import('./store.js').PagedStore} store
 */
function rowSink(ac, store) {
  const current = () => state.running === ac && state.store === store && !ac.signal.aborted;
  if (store instanceof EntryStore) {
    return {
      onBatch: (/** @type {any} */ batch) => {
        if (!current()) return;
        store.append(batch);
        entriesDirty = true;
        scheduleLive();
      },
    };
  }
  return {
    onPages: (/** @type {import('./store.js').PagedDelta} */ delta) => {
      if (!current()) return;
      store.merge(delta);
      entriesDirty = true;
      scheduleLive();
    },
  };
}

/** The banner over the timeline and the table while they do not show a verified result. */
function setBanner(text) {
  for (const b of ui.banners) {
    b.hidden = !text;
    b.textContent = text || '';
  }
}

/** While verifying, the timeline (a pass over every row) is redrawn once a second. */
function refreshEntries({ running = false } = {}) {
  const notALog = state.report && verdictKind(state.report.verdict) === 'not_a_log';
  ui.entriesPanel.hidden = notALog || (state.store.n === 0 && !state.report);
  ui.timelinePanel.hidden = state.store.n === 0;
  applyFilters();
  const now = performance.now();
  if (!running || now - timelineShown > 1000) {
    timelineShown = now;
    timeline.update([...state.failing], state.unsignedFrom, state.ranges, { exact: !running });
  }
  refreshDatalists();
}

async function startVerification(blob, name, { force = false } = {}) {
  if (!state.ready) return;
  cancelRerun();
  state.blob = blob;
  state.name = name;
  state.cancelled = false;
  dropSealed();
  const inputs = currentInputs();
  if (!force && !inputs.keys.length) {
    // Never a verdict for an empty key unless asked: the auditor may be about to type it.
    if (state.running) state.running.abort();
    state.running = null;
    resetResult();
    setVerdict('idle', 'Ready to verify', `${name} (${formatBytes(blob.size)}) is chosen. Enter the trusted key to verify it, or press Verify to check it without one.`);
    ui.verify.disabled = false;
    return;
  }
  if (!validateKey()) {
    resetResult();
    setVerdict('idle', 'Ready to verify', `${name} is chosen, but the key is not valid: fix it to verify.`);
    ui.verify.disabled = false;
    return;
  }
  const runStart = performance.now();
  if (state.running) state.running.abort();
  const ac = new AbortController();
  state.running = ac;
  state.runningInputs = inputs;
  resetResult();
  setBanner('Verification in progress: these entries are not verified yet, and more may follow.');
  setVerdict('working', 'Verifying…', `Checking ${name} (${formatBytes(blob.size)}).`);
  ui.progressPanel.hidden = false;
  ui.progress.value = 0;
  ui.progressText.textContent = 'Starting…';
  ui.verify.disabled = true;
  if (ui.verdict.getBoundingClientRect().top > window.innerHeight * 0.6) ui.verdict.scrollIntoView({ block: 'center' });
  progressStart = performance.now();
  timelineShown = progressStart;
  entriesShown = 0;
  let outcome = 'report';
  unsettledRuns++;
  showPending();
  try {
    const report = await verifyFile(blob, {
      keys: inputs.keys,
      trustedCheckpoint: inputs.checkpoint,
      policy: inputs.policy,
      identity: inputs.identity || undefined,
      tsaCa: inputs.tsaCa || undefined,
      revoked: inputs.revoked.length ? inputs.revoked : undefined,
      signal: ac.signal,
      onProgress: showProgress,
      // A paged store takes what changed in its pages, from the worker's own (not every row's batch).
      ...rowSink(ac, state.store),
      // Values past the limit stay in the file (rowvalues.js): memory follows the rows, not the values.
      // A paged store keeps no value (rows are read back); the filters' lists offer the first 200.
      keepValues: state.store instanceof EntryStore ? VALUE_LIMIT : { values: 200, bytes: 64 << 10 },
      // A paged store lists no sealed value (counts and failures only): it opens the values of its pages as it reads them back.
      sealedList: !state.store.paged,
      // for tests and automation: where this file is verified ("worker" or "main") and with how many helpers
      onEngine: ({ engine, helpers }) => Object.assign(document.documentElement.dataset, { engine, helpers: String(helpers) }),
    });
    if (state.running !== ac) return;
    stopLive();
    setBanner('');
    showReport(report, inputs);
  } catch (e) {
    if (state.running !== ac) return;
    stopLive();
    if (e.name === 'AbortError') {
      outcome = 'cancel';
      state.cancelled = true;
      setVerdict('idle', 'Cancelled', `Verification of ${name} was cancelled; no verdict.`);
      setBanner('Verification was cancelled: the entries below are only the part read so far, and none of them is verified.');
    } else {
      outcome = 'error';
      setVerdict('error', 'Could not verify', e.message);
      setBanner('Verification failed: the entries below are not verified.');
    }
    refreshEntries();
  } finally {
    if (state.running === ac) {
      state.running = null;
      ui.progressPanel.hidden = true;
      ui.verify.disabled = !state.blob;
      // Focus follows the result, so keyboard and screen reader users land on it.
      if (outcome !== 'report' || document.activeElement === document.body || document.activeElement === ui.cancel || !document.activeElement) ui.verdict.focus({ preventScroll: false });
      // for tests and automation: counts finished runs (verdict, error or cancel), and how long the last took
      document.documentElement.dataset.lastRunMs = (performance.now() - runStart).toFixed(0);
      document.documentElement.dataset.runs = String(++finishedRuns);
    }
    unsettledRuns--;
    showPending();
  }
}

/** Files of this many bytes and more are read back from the file page by page (store.js PAGED_BYTES; ?paged-above=BYTES for tests). */
const PAGED_ABOVE = Number(new URLSearchParams(location.search).get('paged-above')) || undefined;

function resetResult() {
  state.report = null;
  state.inputs = null;
  state.input = null;
  state.failing = new Set();
  state.ranges = [];
  state.unsignedFrom = Infinity;
  state.latestCp = null;
  state.store = makeStore({ bytes: state.running ? state.blob?.size : 0, pagedAbove: PAGED_ABOVE });
  // for tests and automation: whether the rows are kept in memory or read back from the file
  document.documentElement.dataset.store = state.store instanceof EntryStore ? 'memory' : 'paged';
  table.store = state.store;
  timeline.store = state.store;
  stopLive();
  table.reset();
  clearResult();
  setBanner('');
  refreshEntries();
}

function saveBlob(blob, name) {
  const url = URL.createObjectURL(blob);
  const a = document.createElement('a');
  a.href = url;
  a.download = name;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

const safeName = () => (state.name || 'log').replace(/[^\w.-]+/g, '_');

async function downloadReport() {
  if (!state.report) return;
  const report = state.report;
  if (state.sha && !state.input.sha256) {
    ui.actionStatus.textContent = 'Computing the SHA-256 of the file…';
    try {
      state.input.sha256 = await state.sha;
    } catch {
      // left null
    }
    if (state.report !== report) return;
    ui.actionStatus.textContent = '';
  }
  // Sealed fields: the file says how many values were opened, sealed,
  // forgotten, redacted (as `stele verify --json` does), never the opened
  // values themselves, which stay on screen only.
  const { sealed, sealed_counts: counts, ...rest } = report;
  const out = counts ? { ...rest, sealed: counts } : rest;
  saveBlob(new Blob([JSON.stringify(out, null, 2) + '\n'], { type: 'application/json' }), `${safeName()}.report.json`);
}

async function printReport() {
  if (!state.report) return;
  if (state.sha && !state.input.sha256) {
    ui.actionStatus.textContent = 'Computing the SHA-256 of the file…';
    try {
      await state.sha;
    } catch {
      // shown as not computed
    }
    ui.actionStatus.textContent = '';
  }
  for (const d of ui.failureList.querySelectorAll('details')) d.open = true;
  window.print();
}

// html[data-cp-offer] says, once decided for this report, whether the
// checkpoint was offered ("shown") or not ("none"): tests wait for it
// instead of for a while.
async function offerLatestCheckpoint(report) {
  const shown = await offerCheckpointOf(report);
  if (state.report === report) document.documentElement.dataset.cpOffer = shown ? 'shown' : 'none';
}

async function offerCheckpointOf(report) {
  const cp = latestSignedCheckpoint(report);
  if (!cp || !state.blob) return false;
  // Start from the last entry row before the checkpoint's line.
  const s = state.store;
  let from = 0;
  let fromLine = 1;
  let lo = 0;
  // A paged store knows where each page starts: from the last page before the checkpoint.
  const step = s.paged ? 1 << PAGE_SHIFT : 1;
  let hi = Math.ceil(s.n / step) - 1;
  while (lo <= hi && s.sortedLines) {
    const mid = (lo + hi) >> 1;
    if (s.lineAt(mid * step) < cp.line) {
      from = s.paged ? s.pageOff[mid] : s.offsetAt(mid) + s.lengthAt(mid) + 1;
      fromLine = s.lineAt(mid * step) + (s.paged ? 0 : 1);
      lo = mid + 1;
    } else hi = mid - 1;
  }
  let text;
  try {
    text = await readCheckpointNote(state.blob, cp.line, from, fromLine);
  } catch {
    return false; // not offered
  }
  if (!text || state.report !== report) return false;
  state.latestCp = { size: cp.size, text };
  ui.cpCopy.hidden = false;
  ui.cpDownload.hidden = false;
  ui.cpCopy.textContent = `Copy latest signed checkpoint (size ${fmtInt(cp.size)})`;
  return true;
}

async function copyCheckpoint() {
  if (!state.latestCp) return;
  try {
    await navigator.clipboard.writeText(state.latestCp.text);
    ui.actionStatus.textContent = `Copied the checkpoint at size ${fmtInt(state.latestCp.size)}. Paste it as "Earlier checkpoint" next time.`;
  } catch {
    ui.actionStatus.textContent = 'The clipboard is not available here: use Download instead.';
  }
}

// ---- entries: details, filters ---------------------------------------------------------

async function loadDetail(i) {
  const s = state.store;
  if (s.paged) await loadPages(state.blob, s, [i >> PAGE_SHIFT]);
  const text = await state.blob.slice(s.offsetAt(i), s.offsetAt(i) + s.lengthAt(i)).text();
  let body;
  try {
    body = prettyJson(text);
  } catch {
    body = text;
  }
  const notes = [];
  const line = s.lineAt(i);
  for (const f of state.report?.failures || []) {
    if (!f.range && (f.line === line || (f.entry != null && f.entry === s.seqAt(i)))) notes.push(`Fails: ${f.code}: ${f.message}`);
  }
  for (const v of sealedValuesAt(i) || []) notes.push(sealedNote(v));
  if (isInRange(i)) notes.push('This entry is in the range of a checkpoint that does not match (see the failures); the entry itself may be intact.');
  if (i >= state.unsignedFrom) notes.push('Not signed: this entry comes after the last checkpoint signed with the trusted key.');
  return { text: body, notes, hidden: hasHidden(text) || /\\u(20[0-2][b-fB-F]|202[a-eA-E]|206[6-9]|[fF][eE][fF][fF])/.test(text) };
}

const SEALED_WORDS = {
  sealed: 'sealed (no auditor key opens it)',
  // FORMAT 13.6: a `forgotten` record is the exporter's statement; core has no rule that checks it.
  forgotten: 'forgotten: the export declares its key destroyed (a statement of the exporter, not checked), so it is not opened; the entry\'s proof still holds',
  redacted: 'redacted',
  mismatch: 'tampered: its opening does not match its commitment',
};

/** One line for a sealed value; an opened value is text, shown as its JSON. */
function sealedNote(v) {
  return v.state === 'opened' ? `Sealed ${v.pointer}: opened ✓ checked against its commitment: ${v.value}` : `Sealed ${v.pointer}: ${SEALED_WORDS[v.state] || v.state}`;
}

function isInRange(i) {
  for (const [lo, hi] of state.ranges) if (i >= lo && i <= hi) return true;
  return false;
}

const table = new VirtualTable({
  scroll: $('vt-scroll'),
  spacer: $('vt-spacer'),
  table: $('vt'),
  store: state.store,
  loadDetail,
  isFailing: (i) => state.failing.has(i),
  isInRange,
  isUnsigned: (i) => i >= state.unsignedFrom,
  sealedValues: (i) => sealedValuesAt(i),
  needValues,
});

/**
 * Row i's sealed values: from the report's list, else (a paged store that
 * listed none) opened with its page; undefined without.
 * @param {number} i
 */
function sealedValuesAt(i) {
  const s = state.store;
  return state.sealed?.get(s.seqAt(i)) ?? (s.paged ? s.sealedAt(i) : undefined);
}

/** The opened values go (the inputs changed, or another run starts): from the list, and from the pages read back. */
function dropSealed() {
  state.sealed = null;
  state.sealedSearch = null;
  const s = state.store;
  if (s.paged && s.openSealed) {
    s.openSealed = null;
    s.dropPages();
    import('./sealed.js').then((m) => m.forgetSealedSpans(), () => {});
  }
  showSealedHeld();
}

/** For tests: how many sealed values the page holds (listed, and with the pages read back). */
function showSealedHeld() {
  let n = 0;
  for (const list of state.sealed?.values() || []) n += list.length;
  if (state.store.paged) n += state.store.sealedHeld();
  document.documentElement.dataset.sealedHeld = String(n);
}

/** Rows whose values are being read from the file. */
const valuesPending = new Set();

/** Reads the values of drawn rows that the store did not keep, then redraws. */
function needValues(rows) {
  const store = state.store;
  const blob = state.blob;
  const want = rows.filter((i) => !valuesPending.has(i)).sort((a, b) => a - b);
  if (!want.length || !blob) return;
  for (const i of want) valuesPending.add(i);
  loadRowValues(blob, store, want).then(
    () => {
      for (const i of want) valuesPending.delete(i);
      showSealedHeld();
      if (state.store === store) table.schedule();
    },
    (e) => {
      for (const i of want) valuesPending.delete(i);
      // Shown as "…" still; the row's full event (expanded) reads the line again.
      console.warn(`could not read entry values from the file: ${e instanceof Error ? e.message : e}`);
    },
  );
}

const timeline = new Timeline({
  canvas: $('timeline'),
  wrap: $('timeline-wrap'),
  caption: $('timeline-caption'),
  hover: $('timeline-hover'),
  store: state.store,
  pageTimes: (pages) => readPageTimes(state.blob, state.store, pages),
  onPick: (from, to) => {
    ui.fFrom.value = toLocalInput(from);
    ui.fTo.value = toLocalInput(to);
    applyFilters();
    ui.entriesPanel.scrollIntoView({ block: 'start' });
  },
});

/** The filter pass reading rows' values from the file, if one runs (a newer one cancels it). */
let settling = 0;

/**
 * The sealed-value search index (sealed-view.js sealedSearch) when filter
 * `f` searches and a key opened values; made once per verification, on the
 * first search.
 * @param {Parameters<typeof filterQuery>[0]} f
 */
function filterSealed(f) {
  if (!state.sealed?.size || !filterQuery(f)) return null;
  state.sealedSearch ??= sealedSearch(state.store, state.sealed);
  return state.sealedSearch;
}

function applyFilters() {
  const s = state.store;
  for (const f of [ui.fFrom, ui.fTo]) {
    if (timeInputValid(f.value)) f.removeAttribute('aria-invalid');
    else f.setAttribute('aria-invalid', 'true');
  }
  const f = {
    text: ui.fText.value, actor: ui.fActor.value, action: ui.fAction.value, from: ui.fFrom.value, to: ui.fTo.value, failingOnly: ui.fFailing.checked,
  };
  if (s.paged) {
    applyPagedFilters(f);
    return;
  }
  /** @type {number[]} */
  const unsure = [];
  const view = filterRows(s, f, state.failing, unsure, filterSealed(f));
  const pass = ++settling;
  delete ui.entriesCount.dataset.searching;
  if (!view) {
    table.setView(null, s.n);
    ui.entriesCount.textContent = plural(s.n, 'entry', 'entries');
    ui.entriesEmpty.hidden = true;
    return;
  }
  showView(view);
  const fq = filterQuery(f);
  if (!unsure.length || !fq || !state.blob || (state.running && !state.report)) return;
  // Rows whose values were not kept are decided from their lines in the file.
  ui.entriesCount.dataset.searching = 'true';
  ui.entriesCount.textContent = `${fmtInt(view.length)} of ${plural(s.n, 'entry', 'entries')} match so far · reading ${fmtInt(unsure.length)} entries from the file…`;
  settleRows(state.blob, s, unsure, fq, {
    onProgress: (done, total) => {
      if (pass === settling) ui.entriesCount.textContent = `${fmtInt(view.length)} of ${plural(s.n, 'entry', 'entries')} match so far · reading entries from the file: ${Math.floor((done / total) * 100)}%`;
    },
    cancelled: () => pass !== settling || state.store !== s,
  }).then(
    (more) => {
      if (!more || pass !== settling || state.store !== s) return;
      delete ui.entriesCount.dataset.searching;
      showView(mergeSorted(view, more));
    },
    (e) => {
      if (pass !== settling) return;
      delete ui.entriesCount.dataset.searching;
      ui.entriesCount.textContent = `${fmtInt(view.length)} of ${plural(s.n, 'entry', 'entries')} match; ${fmtInt(unsure.length)} could not be read from the file (${e instanceof Error ? e.message : e})`;
    },
  );
}

/**
 * The filters on a paged store (store.js PagedStore): the file is read again
 * (rowvalues.js scanRows), the matches shown as they are found; a newer
 * filter cancels the pass. While the file is being verified, all rows show.
 */
function applyPagedFilters(f) {
  const s = state.store;
  const pass = ++settling;
  const fq = filterQuery(f);
  const all = plural(s.n, 'entry', 'entries');
  if (!fq || !state.blob || (state.running && !state.report)) {
    table.setView(null, s.n);
    ui.entriesCount.textContent = fq ? `${all} · the filters apply once the file is verified` : all;
    ui.entriesEmpty.hidden = true;
    return;
  }
  ui.entriesCount.dataset.searching = 'true';
  ui.entriesCount.textContent = `0 of ${all} match so far · reading the file…`;
  let shownSet = null;
  scanRows(state.blob, s, fq, {
    failingOnly: f.failingOnly,
    failing: state.failing,
    sealed: filterSealed(f),
    sealedValues: (i) => state.sealed?.get(s.seqAt(i)),
    onProgress: (set, done, total) => {
      if (pass !== settling) return;
      if (shownSet !== set || table.count !== set.count) table.setView(set, set.count);
      shownSet = set;
      ui.entriesCount.textContent = `${fmtInt(set.count)} of ${all} match so far · reading the file: ${Math.floor((done / Math.max(1, total)) * 100)}%`;
    },
    cancelled: () => pass !== settling || state.store !== s,
  }).then(
    (set) => {
      showSealedHeld();
      if (!set || pass !== settling || state.store !== s) return;
      delete ui.entriesCount.dataset.searching;
      showView(set);
    },
    (e) => {
      if (pass !== settling) return;
      delete ui.entriesCount.dataset.searching;
      ui.entriesCount.textContent = `the filters could not read the file: ${e instanceof Error ? e.message : e}`;
    },
  );
}

function showView(view) {
  const s = state.store;
  table.setView(view, view.length);
  ui.entriesCount.textContent = `${fmtInt(view.length)} of ${plural(s.n, 'entry', 'entries')} match the filters`;
  ui.entriesEmpty.hidden = view.length > 0;
}

/** Two ascending lists of store indices as one ascending Uint32Array. */
function mergeSorted(a, b) {
  const out = new Uint32Array(a.length + b.length);
  let i = 0;
  let j = 0;
  let k = 0;
  while (i < a.length || j < b.length) out[k++] = j >= b.length || (i < a.length && a[i] < b[j]) ? a[i++] : b[j++];
  return out;
}

let filterTimer = 0;
function scheduleFilters() {
  clearTimeout(filterTimer);
  filterTimer = setTimeout(applyFilters, 120);
}

function clearFilters() {
  for (const f of [ui.fText, ui.fActor, ui.fAction, ui.fFrom, ui.fTo]) f.value = '';
  ui.fFailing.checked = false;
  applyFilters();
}

function refreshDatalists() {
  const fill = (list, dict) => {
    if (Math.min(dict.length - 1, 200) === list.childElementCount) return; // the first 200 values are offered
    const vals = dict.slice(1, 201);
    list.replaceChildren(...vals.map((v) => {
      const o = document.createElement('option');
      o.value = v;
      return o;
    }));
  };
  fill(ui.actors, state.store.dicts[1]);
  fill(ui.actions, state.store.dicts[2]);
}

// ---- samples (when served by serve.mjs) ---------------------------------------------------

async function loadSamples() {
  let list;
  try {
    const res = await fetch('samples/index.json');
    if (!res.ok) return;
    list = await res.json();
  } catch {
    return;
  }
  if (!Array.isArray(list)) return;
  const logs = list.filter((f) => typeof f.name === 'string' && !/(\.(txt|json|expect|md)|^expect.*)$/i.test(f.name));
  ui.sampleList.replaceChildren(...logs.map((f) => {
    const li = el('li');
    const b = el('button', 'sample', `${f.name} (${formatBytes(f.size)})`);
    b.type = 'button';
    b.addEventListener('click', async () => {
      setVerdict('working', 'Loading…', `Fetching sample ${f.name}.`);
      try {
        const res = await fetch(`samples/${encodeURIComponent(f.name)}`);
        if (!res.ok) throw new Error(`HTTP ${res.status}`);
        startVerification(await res.blob(), f.name, { force: true });
      } catch (e) {
        setVerdict('error', 'Could not load the sample', e.message);
      }
    });
    li.append(b);
    return li;
  }));
  ui.samples.hidden = logs.length === 0;
  if (!ui.key.value.trim() && list.some((f) => f.name === 'key.txt')) {
    try {
      const res = await fetch('samples/key.txt');
      const text = res.ok ? await res.text() : '';
      const key = text.split('\n').map((l) => l.trim()).find((l) => l && !l.startsWith('#'));
      if (key && !ui.key.value.trim()) {
        ui.key.value = key;
        validateKey();
      }
    } catch {
      // no key: leave the field empty
    }
  }
}

// ---- wiring ---------------------------------------------------------------------------

function chooseFile(f) {
  if (f) startVerification(f, f.name);
}

function wire() {
  ui.file.addEventListener('change', () => chooseFile(ui.file.files[0]));
  ui.verify.addEventListener('click', () => state.blob && startVerification(state.blob, state.name, { force: true }));
  ui.cancel.addEventListener('click', () => state.running?.abort());
  ui.download.addEventListener('click', downloadReport);
  ui.print.addEventListener('click', printReport);
  ui.cpCopy.addEventListener('click', copyCheckpoint);
  ui.cpDownload.addEventListener('click', () => state.latestCp && saveBlob(new Blob([state.latestCp.text], { type: 'text/plain' }), `${safeName()}.checkpoint-${state.latestCp.size}.txt`));
  ui.key.addEventListener('input', inputsChanged);
  ui.checkpoint.addEventListener('input', inputsChanged);
  ui.policy.addEventListener('input', inputsChanged);
  ui.tsaCa.addEventListener('input', inputsChanged);
  ui.revoked.addEventListener('input', inputsChanged);
  ui.keyForget.addEventListener('click', () => {
    ui.key.value = '';
    saveKey(false);
    ui.keySaved.hidden = true;
    inputsChanged();
    ui.key.focus();
  });
  for (const f of [ui.fText, ui.fActor, ui.fAction, ui.fFrom, ui.fTo]) f.addEventListener('input', scheduleFilters);
  ui.fFailing.addEventListener('change', applyFilters);
  ui.fClear.addEventListener('click', clearFilters);
  ui.fClear2.addEventListener('click', clearFilters);
  ui.backFailures.addEventListener('click', () => {
    ui.failures.scrollIntoView({ block: 'start' });
    const btn = state.failureRows[state.failureAt];
    (btn || ui.failuresHeading).focus();
  });
  document.addEventListener('keydown', (e) => {
    if (e.ctrlKey || e.metaKey || e.altKey || (e.key !== 'n' && e.key !== 'p')) return;
    const t = e.target;
    if (t.closest?.('input, textarea, select, [contenteditable=""], [contenteditable="true"]')) return;
    if (!state.failureRows.length) return;
    e.preventDefault();
    stepFailure(e.key === 'n' ? 1 : -1);
  });

  let depth = 0;
  const hasFiles = (e) => [...(e.dataTransfer?.types || [])].includes('Files');
  document.addEventListener('dragenter', (e) => {
    if (!hasFiles(e)) return;
    e.preventDefault();
    depth++;
    ui.overlay.hidden = false;
  });
  document.addEventListener('dragover', (e) => {
    if (!hasFiles(e)) return;
    e.preventDefault();
    e.dataTransfer.dropEffect = 'copy';
  });
  document.addEventListener('dragleave', () => {
    depth = Math.max(0, depth - 1);
    if (!depth) ui.overlay.hidden = true;
  });
  document.addEventListener('drop', (e) => {
    if (!hasFiles(e)) return;
    e.preventDefault();
    depth = 0;
    ui.overlay.hidden = true;
    const f = e.dataTransfer.files[0];
    if (!f) return;
    // Reflect the dropped file in the file input, so the form shows what is checked.
    try {
      const dt = new DataTransfer();
      dt.items.add(f);
      ui.file.files = dt.files;
    } catch {
      // older browsers: the input stays as it was
    }
    chooseFile(f);
  });
}

async function main() {
  wire();
  try {
    let saved = localStorage.getItem(KEY_STORAGE) || '';
    // Stored by an older page, which saved any text: never an age secret key.
    if (AGE_SECRET.test(saved)) {
      localStorage.removeItem(KEY_STORAGE);
      saved = '';
    }
    ui.key.value = saved;
    ui.keySaved.hidden = !saved;
  } catch {
    // storage unavailable
  }
  const embed = globalThis.STELE_EMBED; // set by the single-file build
  try {
    if (embed?.workerFactory) setWorkerFactory(embed.workerFactory, { helperSource: embed.helperSource });
    await init(embed?.wasm);
  } catch (e) {
    setVerdict('error', 'Could not load the verifier', e.message);
    return;
  }
  state.ready = true;
  // Now that keys can be parsed: a stored value that is not (or no longer) a
  // verifier key is not kept; one typed before this moment is.
  const keyOk = validateKey();
  if (ui.key.value.trim()) saveKey(keyOk);
  if (!keyOk) ui.keySaved.hidden = true;
  ui.verify.disabled = !state.blob;
  showPending();
  document.documentElement.dataset.ready = 'true';
  // Start the worker now, so verifying makes no request later.
  const warm = prewarm();
  // Demo mode (/?demo, from serve.mjs --samples): sample exports. Elsewhere nothing asks for them (no 404).
  if (!embed && new URLSearchParams(location.search).has('demo')) await loadSamples();
  await warm;
  document.documentElement.dataset.warm = 'true';
}

main();

// Live mode (web/src/live.js), opened as http://SERVER/?live from `stele serve`.
if (location.protocol.startsWith('http') && new URLSearchParams(location.search).has('live')) import('./live.js').then((m) => m.mountLive(document.querySelector('main'))).catch((e) => console.warn('live mode unavailable:', e));
