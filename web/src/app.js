// The verifier page. Log content is attacker-controlled: it only ever reaches
// the DOM through textContent, and never becomes a URL.
import { init, verifyFile, parseVerifierKey, prewarm, setWorkerFactory, parseTs } from './verifier.js';
import { EntryStore } from './store.js';
import { VirtualTable } from './table.js';
import { Timeline } from './timeline.js';
import { prettyJson, formatBytes, fmtInt, VERDICT_WORDS, verdictDetail, summaryRows } from './util.js';

const $ = (id) => document.getElementById(id);
const KEY_STORAGE = 'stele.trustedKey';

const ui = {
  file: $('file'), key: $('key'), keyInfo: $('key-info'), checkpoint: $('checkpoint'), verify: $('verify'),
  samples: $('samples'), sampleList: $('sample-list'),
  progressPanel: $('progress-panel'), progress: $('progress'), progressText: $('progress-text'), cancel: $('cancel'),
  verdict: $('verdict'), verdictWord: $('verdict-word'), verdictDetail: $('verdict-detail'),
  summary: $('summary'), reportActions: $('report-actions'), download: $('download'),
  failures: $('failures'), failureList: $('failure-list'), failuresMore: $('failures-more'),
  notices: $('notices'), noticeList: $('notice-list'),
  checkpoints: $('checkpoints'), checkpointsSummary: $('checkpoints-summary'), checkpointList: $('checkpoint-list'),
  timelinePanel: $('timeline-panel'), entriesPanel: $('entries-panel'), entriesCount: $('entries-count'),
  fText: $('f-text'), fActor: $('f-actor'), fAction: $('f-action'), fFrom: $('f-from'), fTo: $('f-to'), fFailing: $('f-failing'), fClear: $('f-clear'),
  actors: $('actors'), actions: $('actions'), overlay: $('drop-overlay'),
};

const state = {
  ready: false,
  blob: null,
  name: '',
  store: new EntryStore(),
  failing: new Set(),
  report: null,
  running: null, // AbortController
};

// ---- verdict area -------------------------------------------------------------

function setVerdict(kind, word, detail) {
  ui.verdict.className = `verdict ${kind}`;
  for (const icon of ui.verdict.querySelectorAll('.icon')) icon.toggleAttribute('hidden', !icon.classList.contains(`icon-${kind}`));
  ui.verdictWord.textContent = word;
  ui.verdictDetail.textContent = detail;
}

function clearResult() {
  ui.summary.hidden = true;
  ui.summary.replaceChildren();
  ui.reportActions.hidden = true;
  ui.failures.hidden = true;
  ui.failureList.replaceChildren();
  ui.failuresMore.hidden = true;
  ui.notices.hidden = true;
  ui.noticeList.replaceChildren();
  ui.checkpoints.hidden = true;
  ui.checkpointList.replaceChildren();
}

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text != null) e.textContent = text;
  return e;
}

function showReport(report) {
  state.report = report;
  const kind = report.verdict in VERDICT_WORDS ? report.verdict : 'unverified';
  setVerdict(kind, VERDICT_WORDS[kind], verdictDetail(report));

  ui.summary.replaceChildren();
  for (const [k, v] of [['File', `${state.name} (${formatBytes(state.blob.size)})`], ...summaryRows(report)]) {
    const div = el('div');
    div.append(el('dt', null, k), el('dd', null, v));
    ui.summary.append(div);
  }
  ui.summary.hidden = false;
  ui.reportActions.hidden = false;

  state.failing = new Set();
  const failures = report.failures || [];
  ui.failureList.replaceChildren();
  for (const f of failures) {
    const row = rowOfFailure(f);
    if (row >= 0) state.failing.add(row);
    const li = el('li', 'failure');
    const head = [];
    if (f.entry != null) head.push(`Entry ${fmtInt(f.entry)}`);
    if (f.line != null) head.push(`line ${fmtInt(f.line)}`);
    head.push(f.code);
    const btn = el('button', 'failure-link', head.join(' · '));
    btn.type = 'button';
    if (row >= 0) {
      btn.addEventListener('click', () => goToRow(row));
      btn.setAttribute('aria-label', `${head.join(', ')}: show in the entries table`);
    } else {
      btn.disabled = true;
      btn.title = 'This failure is not on an entry line';
    }
    li.append(btn, el('p', 'failure-message', f.message));
    if (f.expected != null || f.found != null) {
      li.append(el('p', 'failure-values', `expected ${f.expected ?? '–'}, found ${f.found ?? '–'}`));
    }
    ui.failureList.append(li);
  }
  ui.failures.hidden = failures.length === 0;
  if (report.failures_total > failures.length) {
    ui.failuresMore.hidden = false;
    ui.failuresMore.textContent = `Showing the first ${fmtInt(failures.length)} of ${fmtInt(report.failures_total)} failures. The downloaded report has the same list.`;
  }

  const notices = report.notices || [];
  ui.noticeList.replaceChildren(...notices.map((n) => {
    const li = el('li');
    li.append(el('code', null, n.code), document.createTextNode(' '), el('span', null, n.message));
    return li;
  }));
  ui.notices.hidden = notices.length === 0;

  const cps = report.checkpoints || [];
  ui.checkpointList.replaceChildren(...cps.map((c) => el('li', `cp cp-${c.status}`,
    `line ${fmtInt(c.line)} · tree size ${fmtInt(c.size)} · ${c.status}${c.trusted ? ' · trusted' : ''} · root ${c.root}`)));
  ui.checkpointsSummary.textContent = `Checkpoints (${fmtInt(report.checkpoints_total ?? cps.length)}${report.checkpoints_total > cps.length ? `, first ${fmtInt(cps.length)} listed` : ''})`;
  ui.checkpoints.hidden = cps.length === 0;

  applyFilters();
  timeline.update([...state.failing]);
  table.schedule();
}

function rowOfFailure(f) {
  let i = f.line != null ? state.store.findByLine(f.line) : -1;
  if (i < 0 && f.entry != null) i = state.store.findBySeq(f.entry);
  return i;
}

function goToRow(i) {
  if (!table.goTo(i)) {
    clearFilters();
    table.goTo(i);
  }
  ui.entriesPanel.scrollIntoView({ block: 'start' });
}

// ---- key field ------------------------------------------------------------------

function keyList() {
  return ui.key.value.split(/\s+/).filter(Boolean);
}

function validateKey() {
  const keys = keyList();
  ui.key.removeAttribute('aria-invalid');
  ui.keyInfo.className = 'hint';
  if (!keys.length) {
    ui.keyInfo.textContent = "The log operator's verifier key. It is remembered in this browser.";
    return true;
  }
  if (!state.ready) return true;
  try {
    const parsed = keys.map((k) => parseVerifierKey(k));
    ui.keyInfo.className = 'hint ok';
    ui.keyInfo.textContent = parsed.map((p) => `Key “${p.name}”, key ID ${p.key_id}`).join('; ');
    return true;
  } catch (e) {
    ui.key.setAttribute('aria-invalid', 'true');
    ui.keyInfo.className = 'hint error';
    ui.keyInfo.textContent = `Not a verifier key: ${e.message}`;
    return false;
  }
}

function saveKey() {
  try {
    if (ui.key.value.trim()) localStorage.setItem(KEY_STORAGE, ui.key.value.trim());
    else localStorage.removeItem(KEY_STORAGE);
  } catch {
    // storage unavailable (private mode, file://): not remembered
  }
}

// ---- verification -----------------------------------------------------------------

let progressStart = 0;
let finishedRuns = 0;

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
  }, 100);
}

function stopLive() {
  clearTimeout(liveTimer);
  liveTimer = 0;
  pendingProgress = null;
  entriesDirty = false;
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

function onBatch(batch) {
  state.store.append(batch);
  entriesDirty = true;
  scheduleLive();
}

/** While verifying, the timeline (a pass over every row) is redrawn once a second. */
function refreshEntries({ running = false } = {}) {
  ui.entriesPanel.hidden = state.store.n === 0 && !state.report;
  ui.timelinePanel.hidden = state.store.n === 0;
  applyFilters();
  const now = performance.now();
  if (!running || now - timelineShown > 1000) {
    timelineShown = now;
    timeline.update([...state.failing]);
  }
  refreshDatalists();
}

async function startVerification(blob, name) {
  if (!state.ready) return;
  const runStart = performance.now();
  if (state.running) state.running.abort();
  const ac = new AbortController();
  state.running = ac;
  state.blob = blob;
  state.name = name;
  state.report = null;
  state.failing = new Set();
  state.store = new EntryStore();
  table.store = state.store;
  timeline.store = state.store;
  stopLive();
  table.reset();
  clearResult();
  refreshEntries();
  setVerdict('working', 'Verifying…', `Checking ${name} (${formatBytes(blob.size)}).`);
  ui.progressPanel.hidden = false;
  ui.progress.value = 0;
  ui.progressText.textContent = 'Starting…';
  ui.verify.disabled = true;
  progressStart = performance.now();
  timelineShown = progressStart;
  entriesShown = 0;
  try {
    const report = await verifyFile(blob, {
      keys: keyList(),
      trustedCheckpoint: ui.checkpoint.value,
      signal: ac.signal,
      onProgress: showProgress,
      onBatch,
      // for tests and automation: where this file is verified ("worker" or "main") and with how many helpers
      onEngine: ({ engine, helpers }) => Object.assign(document.documentElement.dataset, { engine, helpers: String(helpers) }),
    });
    if (state.running !== ac) return;
    stopLive();
    refreshEntries();
    showReport(report);
  } catch (e) {
    if (state.running !== ac) return;
    stopLive();
    if (e.name === 'AbortError') {
      setVerdict('idle', 'Cancelled', `Verification of ${name} was cancelled; no verdict.`);
    } else {
      setVerdict('error', 'Could not verify', e.message);
    }
    refreshEntries();
  } finally {
    if (state.running === ac) {
      state.running = null;
      ui.progressPanel.hidden = true;
      ui.verify.disabled = !state.blob;
      // for tests and automation: counts finished runs (verdict, error or cancel), and how long the last took
      document.documentElement.dataset.lastRunMs = (performance.now() - runStart).toFixed(0);
      document.documentElement.dataset.runs = String(++finishedRuns);
    }
  }
}

function downloadReport() {
  if (!state.report) return;
  const blob = new Blob([JSON.stringify(state.report, null, 2) + '\n'], { type: 'application/json' });
  const url = URL.createObjectURL(blob);
  const a = document.createElement('a');
  a.href = url;
  a.download = `${(state.name || 'log').replace(/[^\w.-]+/g, '_')}.report.json`;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

// ---- entries: details, filters ---------------------------------------------------------

async function loadDetail(i) {
  const s = state.store;
  const text = await state.blob.slice(s.offset[i], s.offset[i] + s.length[i]).text();
  try {
    return prettyJson(text);
  } catch {
    return text;
  }
}

const table = new VirtualTable({
  scroll: $('vt-scroll'),
  spacer: $('vt-spacer'),
  table: $('vt'),
  store: state.store,
  loadDetail,
  isFailing: (i) => state.failing.has(i),
});

const timeline = new Timeline({
  canvas: $('timeline'),
  caption: $('timeline-caption'),
  hover: $('timeline-hover'),
  store: state.store,
  onPick: (from, to) => {
    ui.fFrom.value = toLocalInput(from);
    ui.fTo.value = toLocalInput(to);
    applyFilters();
    ui.entriesPanel.scrollIntoView({ block: 'start' });
  },
});

function toLocalInput(us) {
  return new Date(Math.floor(us / 1000)).toISOString().slice(0, 19);
}

function fromLocalInput(v, end) {
  if (!v) return NaN;
  const withSecs = v.length === 16 ? `${v}:00` : v;
  const us = parseTs(`${withSecs}Z`);
  return end ? us + 999_999 : us;
}

function dictFlags(dict, q) {
  const f = new Uint8Array(dict.length);
  for (let k = 1; k < dict.length; k++) if (dict[k].toLowerCase().includes(q)) f[k] = 1;
  return f;
}

function applyFilters() {
  const s = state.store;
  const q = ui.fText.value.trim().toLowerCase();
  const qa = ui.fActor.value.trim().toLowerCase();
  const qb = ui.fAction.value.trim().toLowerCase();
  const from = fromLocalInput(ui.fFrom.value, false);
  const to = fromLocalInput(ui.fTo.value, true);
  const failingOnly = ui.fFailing.checked;
  if (!q && !qa && !qb && Number.isNaN(from) && Number.isNaN(to) && !failingOnly) {
    table.setView(null, s.n);
    ui.entriesCount.textContent = `${fmtInt(s.n)} entries`;
    return;
  }
  const textFlags = q ? s.dicts.map((d) => dictFlags(d, q)) : null;
  const seqQ = /^\d+$/.test(q) ? Number(q) : NaN;
  const actorFlags = qa ? dictFlags(s.dicts[1], qa) : null;
  const actionFlags = qb ? dictFlags(s.dicts[2], qb) : null;
  const out = new Uint32Array(failingOnly ? state.failing.size : s.n);
  let m = 0;
  const candidates = failingOnly ? [...state.failing].sort((a, b) => a - b) : null;
  const total = candidates ? candidates.length : s.n;
  for (let j = 0; j < total; j++) {
    const i = candidates ? candidates[j] : j;
    if (actorFlags && !actorFlags[s.codes[1][i]]) continue;
    if (actionFlags && !actionFlags[s.codes[2][i]]) continue;
    const t = s.ts[i];
    if (!Number.isNaN(from) && !(t >= from)) continue;
    if (!Number.isNaN(to) && !(t <= to)) continue;
    if (textFlags) {
      let hit = s.seq[i] === seqQ;
      for (let c = 0; c < textFlags.length && !hit; c++) hit = textFlags[c][s.codes[c][i]] === 1;
      if (!hit) continue;
    }
    out[m++] = i;
  }
  table.setView(out, m);
  ui.entriesCount.textContent = `${fmtInt(m)} of ${fmtInt(s.n)} entries match the filters`;
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
        startVerification(await res.blob(), f.name);
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

function wire() {
  ui.file.addEventListener('change', () => {
    const f = ui.file.files[0];
    if (f) startVerification(f, f.name);
  });
  ui.verify.addEventListener('click', () => state.blob && startVerification(state.blob, state.name));
  ui.cancel.addEventListener('click', () => state.running?.abort());
  ui.download.addEventListener('click', downloadReport);
  ui.key.addEventListener('input', () => {
    validateKey();
    saveKey();
  });
  for (const f of [ui.fText, ui.fActor, ui.fAction]) f.addEventListener('input', scheduleFilters);
  for (const f of [ui.fFrom, ui.fTo, ui.fFailing]) f.addEventListener('change', applyFilters);
  ui.fClear.addEventListener('click', clearFilters);

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
    if (f) startVerification(f, f.name);
  });
}

async function main() {
  wire();
  try {
    ui.key.value = localStorage.getItem(KEY_STORAGE) || '';
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
  validateKey();
  ui.verify.disabled = !state.blob;
  document.documentElement.dataset.ready = 'true';
  // Start the worker now, so verifying makes no request later.
  const warm = prewarm();
  if (!embed) await loadSamples();
  await warm;
  document.documentElement.dataset.warm = 'true';
}

main();

// Live mode (web/src/live.js), opened as http://SERVER/?live from `stele serve`.
if (location.protocol.startsWith('http') && new URLSearchParams(location.search).has('live')) import('./live.js').then((m) => m.mountLive(document.querySelector('main'))).catch((e) => console.warn('live mode unavailable:', e));
