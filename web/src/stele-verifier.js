// <stele-verifier keys="name+hex8+base64" src="/exports/today.stele"></stele-verifier>
// A compact verdict for dashboards. Attributes: keys (verifier keys separated
// by whitespace), src (URL of an export to fetch and verify), wasm (optional
// URL of stele_wasm_bg.wasm). Method: verify(fileOrBlob) -> Promise<report>.
// Events: stele-progress {done,total}, stele-report {report}, stele-error {message}.
// Log text is only ever set with textContent.
import { init, verifyFile } from './verifier.js';
import { VERDICT_WORDS, verdictDetail, fmtInt, formatBytes } from './util.js';

const CSS = `
:host { display: block; font: 14px/1.4 system-ui, sans-serif; color: #1c2430; }
.box { display: flex; gap: 12px; align-items: flex-start; border: 2px solid #d5dbe2; border-radius: 8px; padding: 10px 12px; background: #f9fafb; }
svg { width: 28px; height: 28px; flex: none; fill: none; stroke: currentColor; stroke-width: 2.2; stroke-linecap: round; stroke-linejoin: round; }
.word { font-weight: 700; font-size: 1.15em; margin: 0; }
.detail, .facts { margin: 2px 0 0; }
.facts { color: #4f5b69; font-size: .9em; overflow-wrap: anywhere; }
ul { margin: 4px 0 0; padding-left: 1.2em; font-size: .9em; }
progress { width: 100%; height: 10px; accent-color: #1f5f99; }
.verified { border-color: #16703a; background: #e8f5ec; color: #16703a; }
.failed { border-color: #b3261e; background: #fdecea; color: #b3261e; }
.unverified { border-color: #b7791f; border-style: dashed; background: #fff3d6; color: #7a4f00; }
.error { border-color: #5b2a86; background: #f3ecfa; color: #5b2a86; }
.detail, ul { color: #1c2430; }
[hidden] { display: none !important; }
`;

const ICONS = {
  verified: ['M12 1a11 11 0 1 0 0 22a11 11 0 1 0 0-22z', 'M6.5 12.5l3.5 3.5 7.5-8'],
  failed: ['M8 1h8l7 7v8l-7 7H8l-7-7V8z', 'M8 8l8 8M16 8l-8 8'],
  unverified: ['M12 1.5L23 21.5H1z', 'M12 8.5v6M12 17.5v.5'],
  error: ['M4 1.5h16a2.5 2.5 0 0 1 2.5 2.5v16a2.5 2.5 0 0 1-2.5 2.5H4A2.5 2.5 0 0 1 1.5 20V4A2.5 2.5 0 0 1 4 1.5z', 'M12 6.5v7M12 17v.5'],
  working: ['M12 1a11 11 0 1 0 0 22a11 11 0 1 0 0-22z', 'M12 6v6l4 2'],
};

let sheet = null;
function styles() {
  if (!sheet) {
    sheet = new CSSStyleSheet();
    sheet.replaceSync(CSS);
  }
  return sheet;
}

export class SteleVerifierElement extends HTMLElement {
  static observedAttributes = ['src', 'keys'];

  constructor() {
    super();
    const root = this.attachShadow({ mode: 'open' });
    root.adoptedStyleSheets = [styles()];
    const box = document.createElement('div');
    box.className = 'box';
    box.setAttribute('role', 'status');
    box.setAttribute('part', 'box');
    const svg = document.createElementNS('http://www.w3.org/2000/svg', 'svg');
    svg.setAttribute('viewBox', '0 0 24 24');
    svg.setAttribute('aria-hidden', 'true');
    const body = document.createElement('div');
    const word = document.createElement('p');
    word.className = 'word';
    const detail = document.createElement('p');
    detail.className = 'detail';
    const facts = document.createElement('p');
    facts.className = 'facts';
    const progress = document.createElement('progress');
    progress.max = 100;
    progress.hidden = true;
    const list = document.createElement('ul');
    list.hidden = true;
    body.append(word, detail, facts, progress, list);
    box.append(svg, body);
    root.append(box);
    this._ui = { box, svg, word, detail, facts, progress, list };
    this._controller = null;
    this._show('working', 'No log checked yet', '');
  }

  connectedCallback() {
    if (this.getAttribute('src') && !this._controller && !this._report) this._verifySrc();
  }

  disconnectedCallback() {
    this._controller?.abort();
  }

  attributeChangedCallback(name, old, value) {
    if (old === value || !this.isConnected) return;
    if (name === 'src' && value) this._verifySrc();
  }

  /** The last report, or null. */
  get report() {
    return this._report ?? null;
  }

  _show(kind, word, detail, facts = '') {
    const u = this._ui;
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

  async _verifySrc() {
    const src = this.getAttribute('src');
    const ac = new AbortController();
    this._controller?.abort();
    this._controller = ac;
    this._show('working', 'Loading…', src);
    try {
      const res = await fetch(src, { signal: ac.signal });
      if (!res.ok) throw new Error(`could not fetch ${src}: HTTP ${res.status}`);
      const blob = await res.blob();
      if (this._controller === ac) await this.verify(blob);
    } catch (e) {
      if (e.name !== 'AbortError' && this._controller === ac) this._fail(e);
    }
  }

  _fail(e) {
    this._show('error', 'Could not verify', e.message);
    this.dispatchEvent(new CustomEvent('stele-error', { detail: { message: e.message } }));
  }

  /** Verifies a File or Blob with the keys attribute; resolves to the report. */
  async verify(file) {
    this._controller?.abort();
    const ac = new AbortController();
    this._controller = ac;
    const u = this._ui;
    this._report = null;
    u.list.hidden = true;
    this._show('working', 'Verifying…', `${formatBytes(file.size)}`);
    u.progress.hidden = false;
    u.progress.value = 0;
    try {
      await init(this.getAttribute('wasm') || undefined);
      const keys = (this.getAttribute('keys') || '').split(/\s+/).filter(Boolean);
      const report = await verifyFile(file, {
        keys,
        signal: ac.signal,
        onProgress: (done, total) => {
          u.progress.value = total ? (done / total) * 100 : 100;
          this.dispatchEvent(new CustomEvent('stele-progress', { detail: { done, total } }));
        },
      });
      this._report = report;
      const kind = report.verdict in VERDICT_WORDS ? report.verdict : 'unverified';
      const facts = [
        `${fmtInt(report.entries)} entries`,
        report.origin ? `origin ${report.origin}` : null,
        report.key_id ? `key ${report.key_id}` : null,
        report.first_ts ? `${report.first_ts} to ${report.last_ts}` : null,
      ].filter(Boolean).join(' · ');
      this._show(kind, VERDICT_WORDS[kind], verdictDetail(report), facts);
      const fs = (report.failures || []).slice(0, 3);
      u.list.replaceChildren(...fs.map((f) => {
        const li = document.createElement('li');
        li.textContent = `${f.entry != null ? `entry ${f.entry}, ` : ''}line ${f.line}: ${f.message}`;
        return li;
      }));
      u.list.hidden = fs.length === 0;
      this.dispatchEvent(new CustomEvent('stele-report', { detail: { report } }));
      return report;
    } catch (e) {
      if (e.name !== 'AbortError') this._fail(e);
      throw e;
    } finally {
      u.progress.hidden = true;
      if (this._controller === ac) this._controller = null;
    }
  }
}

if (!customElements.get('stele-verifier')) customElements.define('stele-verifier', SteleVerifierElement);
