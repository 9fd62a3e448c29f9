// <stele-verifier keys="name+hex8+base64" src="/exports/today.stele"></stele-verifier>
// A compact verdict for dashboards (web/README.md, "Embedding").
// Attributes and properties (reflected): keys (verifier keys separated by
// whitespace; the property also takes an array), src (URL of an export to
// fetch and verify), revoked (keys revoked from a tree size, each
// VKEY@SIZE, separated by whitespace; the property also takes an array:
// docs/FORMAT.md 15.3), wasm (optional URL of stele_wasm_bg.wasm; the
// wasm is loaded once per page, so only the page's first init() uses it).
// Changing keys or revoked re-verifies what was verified last; changing src fetches and
// verifies it; removing src clears the verdict. The verdict on show always
// belongs to the current keys and src.
// Method: verify(fileOrBlob) -> Promise<report>.
// Events (bubbles, composed): stele-progress {done,total}, stele-report
// {report}, stele-error {code, message}.
// Theming: CSS custom properties (--stele-*) and parts (box, icon, word,
// detail, facts, progress, failures, more).
// Log text is only ever set with textContent.
import { init, verifyFile } from './verifier.js';
import { VERDICT_WORDS, verdictKind, verdictDetail, fmtInt, formatBytes, revealText } from './util.js';

const CSS = `
:host { display: block; font: 14px/1.4 system-ui, sans-serif; color: var(--stele-text, #1c2430);
  --_ok: var(--stele-ok, #16703a); --_ok-bg: var(--stele-ok-bg, #e8f5ec);
  --_bad: var(--stele-bad, #b3261e); --_bad-bg: var(--stele-bad-bg, #fdecea);
  --_warn: var(--stele-warn, #7a4f00); --_warn-bg: var(--stele-warn-bg, #fff3d6);
  --_err: var(--stele-error, #5b2a86); --_err-bg: var(--stele-error-bg, #f3ecfa);
  --_idle: var(--stele-idle, #4f5b69); --_idle-bg: var(--stele-idle-bg, #f9fafb);
  --_border: var(--stele-border, #d5dbe2); --_muted: var(--stele-muted, #4f5b69); --_accent: var(--stele-accent, #1f5f99); }
.box { display: flex; gap: 12px; align-items: flex-start; border: 2px solid var(--_border); border-radius: var(--stele-radius, 8px); padding: 10px 12px; background: var(--_idle-bg); color: var(--_idle); }
.box > div { min-width: 0; }
svg { width: 28px; height: 28px; flex: none; fill: none; stroke: currentColor; stroke-width: 2.2; stroke-linecap: round; stroke-linejoin: round; }
.word { font-weight: 700; font-size: 1.15em; margin: 0; }
.detail, .facts { margin: 2px 0 0; overflow-wrap: anywhere; }
.facts { color: var(--_muted); font-size: .9em; }
ul { margin: 4px 0 0; padding-left: 1.2em; font-size: .9em; max-height: var(--stele-failures-max-height, 12em); overflow: auto; overflow-wrap: anywhere; }
.more { margin: 2px 0 0; font-size: .9em; color: var(--_muted); }
progress { width: 100%; height: 10px; accent-color: var(--_accent); }
.verified { border-color: var(--_ok); background: var(--_ok-bg); color: var(--_ok); }
.tampered { border-color: var(--_bad); background: var(--_bad-bg); color: var(--_bad); }
.partial, .unverified { border-color: var(--_warn); border-style: dashed; background: var(--_warn-bg); color: var(--_warn); }
.not_a_log { border-color: var(--_idle); background: var(--_idle-bg); color: var(--_idle); }
.error { border-color: var(--_err); background: var(--_err-bg); color: var(--_err); }
.working { color: var(--_accent); }
.detail, ul, .facts { color: var(--stele-text, #1c2430); }
.facts { color: var(--_muted); }
[hidden] { display: none !important; }
`;

const ICONS = {
  verified: ['M12 1a11 11 0 1 0 0 22a11 11 0 1 0 0-22z', 'M6.5 12.5l3.5 3.5 7.5-8'],
  tampered: ['M8 1h8l7 7v8l-7 7H8l-7-7V8z', 'M8 8l8 8M16 8l-8 8'],
  partial: ['M12 1a11 11 0 1 0 0 22a11 11 0 1 0 0-22z', 'M12 1v22'],
  unverified: ['M12 1.5L23 21.5H1z', 'M12 8.5v6M12 17.5v.5'],
  not_a_log: ['M5 1.5h10l4.5 4.5v16.5H5z', 'M9 10l6 6M15 10l-6 6'],
  error: ['M4 1.5h16a2.5 2.5 0 0 1 2.5 2.5v16a2.5 2.5 0 0 1-2.5 2.5H4A2.5 2.5 0 0 1 1.5 20V4A2.5 2.5 0 0 1 4 1.5z', 'M12 6.5v7M12 17v.5'],
  working: ['M12 1a11 11 0 1 0 0 22a11 11 0 1 0 0-22z', 'M12 6v6l4 2'],
  idle: ['M5 1.5h10l4.5 4.5v16.5H5z', 'M9 12h6M9 16h6'],
};

const MAX_LISTED = 10;

let sheet = null;
function styles() {
  if (!sheet) {
    sheet = new CSSStyleSheet();
    sheet.replaceSync(CSS);
  }
  return sheet;
}

/** An Error with a stable `code`: fetch_failed, bad_key, wasm_failed, verify_failed. */
class SteleError extends Error {
  constructor(code, message) {
    super(message);
    this.code = code;
  }
}

export class SteleVerifierElement extends HTMLElement {
  static observedAttributes = ['src', 'keys', 'revoked'];

  constructor() {
    super();
    const root = this.attachShadow({ mode: 'open' });
    root.adoptedStyleSheets = [styles()];
    const mk = (tag, cls, part) => {
      const e = document.createElement(tag);
      if (cls) e.className = cls;
      if (part) e.setAttribute('part', part);
      return e;
    };
    const box = mk('div', 'box', 'box');
    box.setAttribute('role', 'status');
    const svg = document.createElementNS('http://www.w3.org/2000/svg', 'svg');
    svg.setAttribute('viewBox', '0 0 24 24');
    svg.setAttribute('aria-hidden', 'true');
    svg.setAttribute('part', 'icon');
    const body = mk('div');
    const word = mk('p', 'word', 'word');
    const detail = mk('p', 'detail', 'detail');
    const facts = mk('p', 'facts', 'facts');
    const progress = mk('progress', null, 'progress');
    progress.max = 100;
    progress.hidden = true;
    progress.setAttribute('aria-label', 'Verification progress');
    const list = mk('ul', 'failures', 'failures');
    list.hidden = true;
    const more = mk('p', 'more', 'more');
    more.hidden = true;
    body.append(word, detail, facts, progress, list, more);
    box.append(svg, body);
    root.append(box);
    this._ui = { box, svg, word, detail, facts, progress, list, more };
    this._controller = null;
    this._report = null;
    this._source = null; // what verify() last checked: {blob} or {src}
    this._madeFor = null; // the inputs (_inputs()) of the verdict on show
    this._state = 'idle';
    this._show('idle', 'No log checked yet', '');
  }

  /** The inputs a verdict belongs to: the export (src, or the Blob given to verify()), the keys and the revocations. */
  _inputs() {
    return { src: this._source?.blob ? null : this.getAttribute('src') || null, blob: this._source?.blob ?? null, keys: this.keys, revoked: this.revoked };
  }

  /** Whether the verdict on show (or the run in progress) was made for the inputs as they are now. */
  _current() {
    const a = this._madeFor;
    const b = this._inputs();
    return !!a && a.src === b.src && a.blob === b.blob && a.keys === b.keys && a.revoked === b.revoked;
  }

  connectedCallback() {
    if (this._controller) return;
    // A verdict for these very inputs stays. Else (inputs changed while
    // detached, a run stopped by the detach, an error): verify again, or
    // withdraw what is on show.
    if (this._report && this._current()) return;
    if (this.getAttribute('src') && !this._source?.blob) this._verifySrc();
    else if (this._source?.blob) this.verify(this._source.blob).catch(() => {});
    else if (this._report || this._state !== 'idle') this._reset();
  }

  disconnectedCallback() {
    this._controller?.abort();
    this._controller = null;
  }

  attributeChangedCallback(name, old, value) {
    if (old === value) return;
    if (!this.isConnected) {
      // Detached: no run now (connectedCallback verifies again), but the
      // verdict on show no longer belongs to the inputs.
      if (name === 'src' && this._source?.blob) this._source = null;
      if (!this._current()) this._withdraw();
      return;
    }
    if (name === 'src') {
      if (value) this._verifySrc();
      else this._reset();
    } else if (name === 'keys' || name === 'revoked') {
      // The verdict on show was for the old keys: verify the same input again.
      if (this._source?.src && this.getAttribute('src')) this._verifySrc();
      else if (this._source?.blob) this.verify(this._source.blob).catch(() => {});
      else if (this._report) this._reset();
    }
  }

  /** Verifier keys, as a whitespace-separated string (the attribute); set a string or an array. */
  get keys() {
    return this.getAttribute('keys') ?? '';
  }

  set keys(v) {
    const s = Array.isArray(v) ? v.join(' ') : String(v ?? '');
    if (s) this.setAttribute('keys', s);
    else this.removeAttribute('keys');
  }

  /** Revoked keys, each VKEY@SIZE, as a whitespace-separated string (the attribute); set a string or an array. */
  get revoked() {
    return this.getAttribute('revoked') ?? '';
  }

  set revoked(v) {
    const s = Array.isArray(v) ? v.join(' ') : String(v ?? '');
    if (s) this.setAttribute('revoked', s);
    else this.removeAttribute('revoked');
  }

  /** URL of the export to verify (the attribute); null or '' removes it. */
  get src() {
    return this.getAttribute('src') ?? '';
  }

  set src(v) {
    if (v) this.setAttribute('src', String(v));
    else this.removeAttribute('src');
  }

  /**
   * URL of stele_wasm_bg.wasm (the attribute); null or '' removes it. The
   * wasm is loaded once per page, by its first init(): this URL counts only
   * when this element's run is that first init; later it is ignored.
   */
  get wasm() {
    return this.getAttribute('wasm') ?? '';
  }

  set wasm(v) {
    if (v) this.setAttribute('wasm', String(v));
    else this.removeAttribute('wasm');
  }

  /** The last report, or null (also while verifying and after inputs changed). */
  get report() {
    return this._report;
  }

  /** idle | working | verified | partial | tampered | unverified | not_a_log | error */
  get state() {
    return this._state;
  }

  _emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail, bubbles: true, composed: true }));
  }

  _show(kind, word, detail, facts = '') {
    const u = this._ui;
    this._state = kind;
    u.box.className = `box ${kind}`;
    u.svg.replaceChildren(...ICONS[kind].map((d) => {
      const p = document.createElementNS('http://www.w3.org/2000/svg', 'path');
      p.setAttribute('d', d);
      return p;
    }));
    u.word.textContent = word;
    u.detail.textContent = detail;
    u.facts.textContent = facts;
    u.facts.hidden = !facts;
  }

  _reset() {
    this._source = null;
    this._withdraw();
  }

  /** No verdict on show (the inputs it was for changed); what to verify (_source) is kept. */
  _withdraw() {
    this._controller?.abort();
    this._controller = null;
    this._report = null;
    this._madeFor = null;
    this._ui.list.hidden = true;
    this._ui.more.hidden = true;
    this._ui.progress.hidden = true;
    this._show('idle', 'No log checked yet', '');
  }

  async _verifySrc() {
    const src = this.getAttribute('src');
    const ac = new AbortController();
    this._controller?.abort();
    this._controller = ac;
    this._report = null;
    this._source = { src };
    this._madeFor = this._inputs();
    this._ui.list.hidden = true;
    this._ui.more.hidden = true;
    this._show('working', 'Loading…', src);
    try {
      let res;
      try {
        res = await fetch(src, { signal: ac.signal });
      } catch (e) {
        if (e.name === 'AbortError') throw e;
        throw new SteleError('fetch_failed', `could not fetch ${src}: ${e.message}`);
      }
      if (!res.ok) throw new SteleError('fetch_failed', `could not fetch ${src}: HTTP ${res.status}`);
      const blob = await res.blob();
      if (this._controller !== ac) return;
      await this._run(blob, ac);
    } catch (e) {
      // _run shows its own errors (it has ended the run by now).
      if (e.name !== 'AbortError' && this._controller === ac) this._fail(e);
    }
  }

  /** Shows `e` and fires stele-error; the run it ends is over. */
  _fail(e) {
    const code = e.code || 'verify_failed';
    this._report = null;
    this._controller = null;
    this._ui.progress.hidden = true;
    this._show('error', 'Could not verify', e.message);
    this._emit('stele-error', { code, message: e.message });
  }

  /** Verifies a File or Blob with the keys attribute; resolves to the report. */
  async verify(file) {
    this._controller?.abort();
    const ac = new AbortController();
    this._controller = ac;
    this._source = { blob: file };
    this._madeFor = this._inputs();
    return this._run(file, ac);
  }

  async _run(file, ac) {
    const u = this._ui;
    this._report = null;
    u.list.hidden = true;
    u.more.hidden = true;
    this._show('working', 'Verifying…', `${formatBytes(file.size)}`);
    u.progress.hidden = false;
    u.progress.value = 0;
    try {
      try {
        await init(this.wasm || undefined);
      } catch (e) {
        throw new SteleError('wasm_failed', e.message);
      }
      const keys = this.keys.split(/\s+/).filter(Boolean);
      let report;
      try {
        const revoked = this.revoked.split(/\s+/).filter(Boolean);
        report = await verifyFile(file, {
          keys,
          revoked: revoked.length ? revoked : undefined,
          signal: ac.signal,
          onProgress: (done, total) => {
            u.progress.value = total ? (done / total) * 100 : 100;
            this._emit('stele-progress', { done, total });
          },
        });
      } catch (e) {
        if (e.name === 'AbortError') throw e;
        throw new SteleError(/key/i.test(e.message) ? 'bad_key' : 'verify_failed', e.message);
      }
      if (this._controller !== ac) throw new DOMException('superseded', 'AbortError');
      this._report = report;
      const kind = verdictKind(report.verdict);
      const facts = [
        `${fmtInt(report.entries)} ${report.entries === 1 ? 'entry' : 'entries'}`,
        report.origin ? `origin ${revealText(report.origin)}` : null,
        report.key_id ? `key ${report.key_id}` : null,
        report.keys?.length > 1 ? `${report.keys.length} keys (rotated)` : null,
        (report.unsigned_from ?? report.tree_size) != null ? `signed up to ${fmtInt(report.unsigned_from ?? report.tree_size)}` : null,
        report.first_ts ? `${report.first_ts} to ${report.last_ts}` : null,
      ].filter(Boolean).join(' · ');
      this._show(kind, VERDICT_WORDS[kind], verdictDetail(report, keys.length), facts);
      const all = report.failures || [];
      const fs = kind === 'not_a_log' ? [] : all.slice(0, MAX_LISTED);
      u.list.replaceChildren(...fs.map((f) => {
        const li = document.createElement('li');
        const where = f.range ? `entries ${f.range.first}–${f.range.last}, ` : f.entry != null ? `entry ${f.entry}, ` : '';
        li.textContent = revealText(`${where}line ${f.line}: ${f.message}`);
        return li;
      }));
      u.list.hidden = fs.length === 0;
      const rest = (report.failures_total ?? all.length) - fs.length;
      u.more.hidden = kind === 'not_a_log' || rest <= 0;
      u.more.textContent = `+${fmtInt(rest)} more`;
      this._emit('stele-report', { report });
      return report;
    } catch (e) {
      // Shown here, while this run is still the current one (the finally
      // below ends it, and a caller could no longer tell).
      if (e.name !== 'AbortError' && this._controller === ac) this._fail(e);
      throw e;
    } finally {
      if (this._controller === ac) {
        u.progress.hidden = true;
        this._controller = null;
      }
    }
  }
}

if (!customElements.get('stele-verifier')) customElements.define('stele-verifier', SteleVerifierElement);
