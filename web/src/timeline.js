// Events per time interval, drawn on a canvas, with intervals that contain a
// failing entry marked in a distinct colour and shape, so gaps and bursts
// show at a glance. The caption gives the same facts in words.
import { formatTs } from './engine.js';
import { PAGE_SHIFT, PAGE_ROWS } from './store.js';

const STEPS_S = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400, 172800, 604800, 2592000, 7776000, 31536000];

const count = (n, one, many = `${one}s`) => `${n.toLocaleString('en-US')} ${n === 1 ? one : many}`;

export function niceStep(spanUs, maxBuckets) {
  const want = spanUs / 1e6 / Math.max(1, maxBuckets);
  for (const s of STEPS_S) if (s >= want) return s * 1e6;
  return Math.ceil(want / 31536000) * 31536000 * 1e6;
}

export function stepLabel(stepUs) {
  const s = stepUs / 1e6;
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${s / 60} min`;
  if (s < 86400) return `${s / 3600} h`;
  return `${s / 86400} d`;
}

export class Timeline {
  /**
   * wrap: the focusable slider around the canvas (arrow keys pick an
   * interval, Enter filters to it); hover: text of the interval pointed at.
   */
  /**
   * pageTimes(pages): for a paged store, the timestamps of the rows of each
   * page (read back from the file), to count pages across intervals exactly.
   */
  constructor({ canvas, wrap, caption, hover, store, onPick, pageTimes = null }) {
    Object.assign(this, { canvas, wrap, caption, hover, store, onPick, pageTimes });
    this.exact = null;
    this.refining = 0;
    this.buckets = null;
    this.cursor = -1;
    wrap?.addEventListener('keydown', (e) => this.onKey(e));
    wrap?.addEventListener('blur', () => {
      this.hover.textContent = '';
    });
    canvas.addEventListener('mousemove', (e) => this.onMove(e));
    canvas.addEventListener('mouseleave', () => (hover.textContent = ''));
    canvas.addEventListener('click', (e) => {
      const b = this.bucketAt(e);
      if (b >= 0 && this.buckets) onPick(this.start + b * this.step, this.start + (b + 1) * this.step - 1);
    });
    new ResizeObserver(() => this.draw()).observe(canvas);
  }

  /**
   * Recounts from the store; failing is an array of store indices; rows from
   * unsignedFrom on are not signed; ranges are [lo, hi] store index ranges of
   * checkpoints that did not match (shaded lightly).
   */
  update(failing = [], unsignedFrom = Infinity, ranges = [], { exact = false } = {}) {
    const s = this.store;
    if (!s.n || !Number.isFinite(s.minTs)) {
      this.buckets = null;
      this.draw();
      this.caption.textContent = s.n ? 'The entries carry no timestamps.' : '';
      return;
    }
    const width = this.canvas.clientWidth || 800;
    const span = Math.max(1e6, s.maxTs - s.minTs + 1);
    const step = niceStep(span, Math.floor(width / 4));
    const start = Math.floor(s.minTs / step) * step;
    const nb = Math.floor((s.maxTs - start) / step) + 1;
    const counts = new Uint32Array(nb);
    const fails = new Uint32Array(nb);
    const unsigned = new Uint32Array(nb);
    const inRange = new Uint8Array(nb);
    let untimed = 0;
    let estimated = false;
    if (s.paged) {
      const known = this.exact?.store === s ? this.exact.pages : null;
      const counted = countPages(s, start, step, counts, unsigned, unsignedFrom, known);
      untimed = counted.untimed;
      estimated = counted.across.length > 0;
      // exact: the timestamps of the pages across intervals are read back (pageTimes), then counted again.
      if (estimated && exact && this.pageTimes && counted.across.length <= EXACT_PAGES) {
        const gen = ++this.refining;
        const across = counted.across;
        this.pageTimes(across).then(
          (times) => {
            if (gen !== this.refining || this.store !== s) return;
            const pages = known && known.size + across.length <= EXACT_PAGES ? known : new Map();
            across.forEach((p, k) => pages.set(p, times[k]));
            this.exact = { store: s, pages };
            this.update(failing, unsignedFrom, ranges);
          },
          () => {}, // stays estimated
        );
      }
    } else for (let i = 0; i < s.n; i++) {
      const t = s.tsAt(i);
      if (Number.isNaN(t)) {
        untimed++;
        continue;
      }
      const b = Math.floor((t - start) / step);
      counts[b]++;
      if (i >= unsignedFrom) unsigned[b]++;
    }
    for (const [lo, hi] of ranges) {
      if (s.paged) {
        // The intervals of the pages the range covers.
        for (let p = lo >> PAGE_SHIFT; p <= Math.min(hi, s.n - 1) >> PAGE_SHIFT; p++) {
          if (!(s.pageMin[p] <= s.pageMax[p])) continue;
          for (let b = Math.floor((s.pageMin[p] - start) / step); b <= Math.floor((s.pageMax[p] - start) / step); b++) inRange[b] = 1;
        }
        continue;
      }
      for (let i = lo; i <= hi && i < s.n; i++) {
        const t = s.tsAt(i);
        if (!Number.isNaN(t)) inRange[Math.floor((t - start) / step)] = 1;
      }
    }
    for (const i of failing) {
      // A paged store's row not read back: its page's first interval.
      const t = s.paged && s.needsValues(i) ? s.pageMin[i >> PAGE_SHIFT] : s.tsAt(i);
      if (Number.isFinite(t)) fails[Math.floor((t - start) / step)]++;
    }
    Object.assign(this, { step, start, counts, fails, unsigned, inRange, buckets: nb });
    if (this.cursor >= nb) this.cursor = nb - 1;
    let max = 0;
    let empty = 0;
    let maxAt = 0;
    for (let b = 0; b < nb; b++) {
      if (counts[b] > max) {
        max = counts[b];
        maxAt = b;
      }
      if (!counts[b]) empty++;
    }
    this.max = max;
    const failBuckets = fails.reduce((a, v) => a + (v ? 1 : 0), 0);
    const unsignedBuckets = unsigned.reduce((a, v) => a + (v ? 1 : 0), 0);
    const parts = [
      `${count(s.n, 'entry', 'entries')} from ${formatTs(s.minTs)} to ${formatTs(s.maxTs)}, in ${count(nb, 'interval')} of ${stepLabel(step)}.`,
      `Busiest interval: ${count(max, 'entry', 'entries')} from ${formatTs(start + maxAt * step)}.`,
      empty ? `${count(empty, 'interval')} ${empty === 1 ? 'has' : 'have'} no entries (gaps).` : 'No empty intervals.',
    ];
    if (failBuckets) parts.push(`${count(failBuckets, 'interval')} ${failBuckets === 1 ? 'contains' : 'contain'} a failing entry.`);
    if (unsignedBuckets) parts.push(`${count(unsignedBuckets, 'interval')} ${unsignedBuckets === 1 ? 'contains' : 'contain'} entries that are not signed.`);
    if (estimated) parts.push(`Counts next to interval edges are estimated (this file is kept as pages of ${PAGE_ROWS} entries, read back from the file).`);
    if (untimed) parts.push(`${count(untimed, 'entry', 'entries')} ${untimed === 1 ? 'has' : 'have'} no timestamp.`);
    this.caption.textContent = parts.join(' ');
    if (this.wrap) {
      this.wrap.setAttribute('aria-valuemax', String(nb - 1));
      this.wrap.setAttribute('aria-valuenow', String(Math.max(0, this.cursor)));
      this.wrap.setAttribute('aria-valuetext', this.cursor >= 0 ? this.describe(this.cursor) : 'no interval chosen: use the arrow keys');
    }
    this.draw();
  }

  colors() {
    const cs = getComputedStyle(this.canvas);
    return {
      bar: cs.getPropertyValue('--tl-bar').trim() || '#4a6b8a',
      fail: cs.getPropertyValue('--tl-fail').trim() || '#c0262d',
      axis: cs.getPropertyValue('--tl-axis').trim() || '#5b6470',
      gap: cs.getPropertyValue('--tl-gap').trim() || '#eef1f4',
      unsigned: cs.getPropertyValue('--tl-unsigned').trim() || '#a86a00',
      range: cs.getPropertyValue('--tl-range').trim() || '#d9a93a',
      cursor: cs.getPropertyValue('--tl-cursor').trim() || '#1a6fd1',
    };
  }

  draw() {
    const c = this.canvas;
    const dpr = window.devicePixelRatio || 1;
    const w = c.clientWidth;
    const h = c.clientHeight;
    if (!w || !h) return;
    c.width = Math.round(w * dpr);
    c.height = Math.round(h * dpr);
    const ctx = c.getContext('2d');
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, w, h);
    if (!this.buckets) return;
    const col = this.colors();
    const padTop = 14;
    const padBottom = 18;
    const plotH = h - padTop - padBottom;
    const bw = w / this.buckets;
    // intervals in the range of a checkpoint that did not match: a band under the axis
    ctx.fillStyle = col.range;
    for (let b = 0; b < this.buckets; b++) if (this.inRange[b]) ctx.fillRect(b * bw, padTop + plotH + 1, Math.max(1, bw), 4);
    ctx.fillStyle = col.bar;
    for (let b = 0; b < this.buckets; b++) {
      const v = this.counts[b];
      if (!v) continue;
      const bh = Math.max(1, (v / this.max) * plotH);
      ctx.fillStyle = this.fails[b] ? col.fail : this.unsigned[b] ? col.unsigned : col.bar;
      ctx.fillRect(b * bw, padTop + plotH - bh, Math.max(1, bw - (bw > 3 ? 1 : 0)), bh);
    }
    if (this.cursor >= 0) {
      ctx.strokeStyle = col.cursor;
      ctx.lineWidth = 2;
      ctx.strokeRect(this.cursor * bw + 1, 1, Math.max(2, bw - 2), padTop + plotH - 1);
    }
    // failing intervals: a triangle marker above, so they are found even when tiny
    ctx.fillStyle = col.fail;
    for (let b = 0; b < this.buckets; b++) {
      if (!this.fails[b]) continue;
      const x = b * bw + bw / 2;
      ctx.beginPath();
      ctx.moveTo(x, padTop - 2);
      ctx.lineTo(x - 5, padTop - 11);
      ctx.lineTo(x + 5, padTop - 11);
      ctx.closePath();
      ctx.fill();
    }
    ctx.fillStyle = col.axis;
    ctx.fillRect(0, padTop + plotH, w, 1);
    ctx.font = '11px system-ui, sans-serif';
    ctx.textBaseline = 'bottom';
    ctx.textAlign = 'left';
    const narrow = w < 360;
    ctx.fillText(narrow ? `${formatTs(this.start).slice(0, 10)}` : `${formatTs(this.start).slice(0, 19)}Z`, 2, h);
    ctx.textAlign = 'right';
    const end = formatTs(this.start + this.buckets * this.step);
    ctx.fillText(narrow ? end.slice(0, 10) : `${end.slice(0, 19)}Z`, w - 2, h);
    if (w >= 560) {
      ctx.textAlign = 'center';
      ctx.fillText(`${stepLabel(this.step)} per bar · max ${this.max.toLocaleString('en-US')}`, w / 2, h);
    }
  }

  bucketAt(e) {
    if (!this.buckets) return -1;
    const r = this.canvas.getBoundingClientRect();
    const b = Math.floor(((e.clientX - r.left) / r.width) * this.buckets);
    return b >= 0 && b < this.buckets ? b : -1;
  }

  describe(b) {
    const from = formatTs(this.start + b * this.step).slice(0, 19);
    const f = this.fails[b] ? `, ${this.fails[b].toLocaleString('en-US')} failing` : '';
    const u = this.unsigned[b] ? `, ${this.unsigned[b].toLocaleString('en-US')} not signed` : '';
    return `${from}Z (+${stepLabel(this.step)}): ${count(this.counts[b], 'entry', 'entries')}${f}${u}`;
  }

  onMove(e) {
    const b = this.bucketAt(e);
    this.hover.textContent = b < 0 ? '' : this.describe(b);
  }

  onKey(e) {
    if (!this.buckets) return;
    let b = this.cursor;
    switch (e.key) {
      case 'ArrowRight': case 'ArrowUp': b = b < 0 ? 0 : b + 1; break;
      case 'ArrowLeft': case 'ArrowDown': b = b < 0 ? this.buckets - 1 : b - 1; break;
      case 'PageUp': b += 10; break;
      case 'PageDown': b -= 10; break;
      case 'Home': b = 0; break;
      case 'End': b = this.buckets - 1; break;
      case 'Enter':
      case ' ':
        e.preventDefault();
        if (b >= 0) this.onPick(this.start + b * this.step, this.start + (b + 1) * this.step - 1);
        return;
      default:
        return;
    }
    e.preventDefault();
    this.cursor = Math.max(0, Math.min(this.buckets - 1, b));
    const text = this.describe(this.cursor);
    this.hover.textContent = text;
    this.wrap.setAttribute('aria-valuenow', String(this.cursor));
    this.wrap.setAttribute('aria-valuetext', text);
    this.draw();
  }
}

/** Pages across intervals whose timestamps the timeline reads back to count exactly. */
const EXACT_PAGES = 2048;

/**
 * Counts the rows of a paged store (store.js PagedStore) per interval from
 * its pages' time spans: a page within one interval counts there exactly;
 * a page across several by its rows' timestamps when `known` has them (page
 * -> ts per row), else spread over them in proportion to time (and listed
 * in `across`). Rows from unsignedFrom on count as not signed too.
 */
function countPages(s, start, step, counts, unsigned, unsignedFrom, known) {
  let untimed = 0;
  const across = [];
  for (let p = 0; p < s.pageCount; p++) {
    const first = p << PAGE_SHIFT;
    const rows = Math.min(PAGE_ROWS, s.n - first);
    const none = s.pageUntimed[p];
    untimed += none;
    const timed = rows - none;
    if (!timed) continue;
    const lo = s.pageMin[p];
    const hi = s.pageMax[p];
    // Not signed: the page's rows from unsignedFrom on, in proportion.
    const late = unsignedFrom <= first ? timed : unsignedFrom >= first + rows ? 0 : Math.round((timed * (first + rows - unsignedFrom)) / rows);
    const b0 = Math.floor((lo - start) / step);
    const b1 = Math.floor((hi - start) / step);
    if (b0 === b1) {
      counts[b0] += timed;
      unsigned[b0] += late;
      continue;
    }
    const ts = known?.get(p);
    if (ts) {
      for (let k = 0; k < ts.length; k++) {
        if (Number.isNaN(ts[k])) continue;
        const b = Math.floor((ts[k] - start) / step);
        counts[b]++;
        if (first + k >= unsignedFrom) unsigned[b]++;
      }
      continue;
    }
    across.push(p);
    let gave = 0;
    let gaveLate = 0;
    for (let b = b0; b <= b1; b++) {
      const upTo = b === b1 ? 1 : (start + (b + 1) * step - lo) / (hi - lo);
      const c = Math.round(timed * upTo);
      const l = Math.round(late * upTo);
      counts[b] += c - gave;
      unsigned[b] += l - gaveLate;
      gave = c;
      gaveLate = l;
    }
  }
  return { untimed, across };
}
