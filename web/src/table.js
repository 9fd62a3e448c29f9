// A virtual table: only the rows in view exist in the DOM, so a million
// entries scroll as smoothly as ten. One row at a time can be expanded to
// show the full event. All cell text is set with textContent; hidden and
// bidirectional Unicode is shown as visible escapes, with a badge on the row.
// ARIA: a treegrid; the expanded event is a level-2 row placed right after
// its row in the DOM, so Tab and screen readers meet it there.
import { setRevealed } from './util.js';
import { hasPlaceholder, sealedParts, renderParts } from './sealed-view.js';

const ROW_H = 30; // px, keep in sync with .vt-row height in style.css
const DETAIL_H = 300; // px, keep in sync with .vt-detail height
const MAX_PX = 8_000_000; // stay far below browsers' maximum element height
const COLS = 6;

export class VirtualTable {
  /**
   * @param {object} o
   * @param {HTMLElement} o.scroll   the scrolling container (position: relative)
   * @param {HTMLElement} o.spacer   sized to the (possibly scaled) content height
   * @param {HTMLElement} o.table    element carrying aria-rowcount
   * @param {import('./store.js').EntryStore | import('./store.js').PagedStore} o.store
   * @param {(i:number)=>Promise<{text:string, notes:string[], hidden:boolean}>} o.loadDetail  full event of row i
   * @param {(i:number)=>boolean} o.isFailing   a failure names this entry
   * @param {(i:number)=>boolean} [o.isInRange] in the range of a failing checkpoint (shaded lightly)
   * @param {(i:number)=>boolean} [o.isUnsigned] after the last trusted checkpoint (shaded)
   * @param {(i:number)=>{pointer:string, state:string, value:string|null}[]|undefined} [o.sealedValues] the row's sealed values (report.sealed), when a key opened the file
   * @param {(rows:number[])=>void} [o.needValues] rows drawn whose values the store did not keep:
   *   read them (store.setValues) and redraw; until then their cells show "…"
   */
  constructor({ scroll, spacer, table, store, loadDetail, isFailing, isInRange = () => false, isUnsigned = () => false, sealedValues = () => undefined, needValues = () => {} }) {
    Object.assign(this, { scroll, spacer, table, store, loadDetail, isFailing, isInRange, isUnsigned, sealedValues, needValues });
    this.view = null; // Uint32Array of store indices, or null for all rows
    this.count = 0;
    this.pool = [];
    this.expanded = -1; // store index
    this.active = 0; // view position
    this.flash = -1; // store index
    this.detail = this.makeDetail();
    this.scheduled = false;
    scroll.addEventListener('scroll', () => this.schedule(), { passive: true });
    scroll.addEventListener('click', (e) => this.onClick(e));
    scroll.addEventListener('keydown', (e) => this.onKey(e));
    new ResizeObserver(() => this.schedule()).observe(scroll);
  }

  makeDetail() {
    const d = document.createElement('div');
    d.className = 'vt-detail';
    d.setAttribute('role', 'row');
    d.setAttribute('aria-level', '2');
    const cell = document.createElement('div');
    cell.setAttribute('role', 'gridcell');
    cell.setAttribute('aria-colspan', String(COLS));
    const meta = document.createElement('p');
    meta.className = 'vt-detail-meta';
    const notes = document.createElement('ul');
    notes.className = 'vt-detail-notes';
    const pre = document.createElement('pre');
    pre.tabIndex = 0;
    pre.setAttribute('aria-label', 'Full event');
    cell.append(meta, notes, pre);
    d.append(cell);
    d.hidden = true;
    this.scroll.append(d);
    return { el: d, meta, notes, pre, index: -1 };
  }

  rowAt(pos) {
    return this.view ? this.view.at(pos) : pos;
  }

  posOf(index) {
    if (!this.view) return index < this.count ? index : -1;
    // a RowSet (filters.js) finds positions itself
    if ('posOf' in this.view) return this.view.posOf(index);
    // views are ascending store indices
    let lo = 0;
    let hi = this.count - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const v = this.view[mid];
      if (v === index) return mid;
      if (v < index) lo = mid + 1;
      else hi = mid - 1;
    }
    return -1;
  }

  setView(view, count) {
    this.view = view;
    this.count = count;
    if (this.active >= count) this.active = Math.max(0, count - 1);
    this.table.setAttribute('aria-rowcount', String(count + 1));
    this.schedule();
  }

  expandedPos() {
    return this.expanded < 0 ? -1 : this.posOf(this.expanded);
  }

  contentHeight() {
    return this.count * ROW_H + (this.expandedPos() >= 0 ? DETAIL_H : 0);
  }

  yOf(pos) {
    const ep = this.expandedPos();
    return pos * ROW_H + (ep >= 0 && pos > ep ? DETAIL_H : 0);
  }

  posAtY(y) {
    const ep = this.expandedPos();
    if (ep >= 0 && y >= (ep + 1) * ROW_H) {
      if (y < (ep + 1) * ROW_H + DETAIL_H) return ep;
      return Math.floor((y - DETAIL_H) / ROW_H);
    }
    return Math.floor(y / ROW_H);
  }

  // Scroll position <-> content position; identical unless the content is
  // taller than MAX_PX, in which case the scrollbar is scaled.
  geometry() {
    const H = this.contentHeight();
    const S = Math.min(H, MAX_PX);
    const vh = this.scroll.clientHeight;
    return { H, S, vh };
  }

  topFromScroll(st, g = this.geometry()) {
    if (g.H <= MAX_PX || g.S <= g.vh) return st;
    return (st / (g.S - g.vh)) * (g.H - g.vh);
  }

  scrollFromTop(top, g = this.geometry()) {
    if (g.H <= MAX_PX || g.S <= g.vh) return top;
    return (top / (g.H - g.vh)) * (g.S - g.vh);
  }

  schedule() {
    if (this.scheduled) return;
    this.scheduled = true;
    requestAnimationFrame(() => {
      this.scheduled = false;
      this.render();
    });
  }

  getRowEl(k) {
    while (this.pool.length <= k) {
      const r = document.createElement('div');
      r.className = 'vt-row';
      r.setAttribute('role', 'row');
      r.tabIndex = -1;
      r.setAttribute('aria-level', '1');
      for (let c = 0; c < COLS; c++) {
        const s = document.createElement('span');
        s.setAttribute('role', 'gridcell');
        r.append(s);
      }
      // The row's marker: a shape for sighted users, an image with a name for
      // screen readers; empty (and no role) on ordinary rows.
      const mark = document.createElement('span');
      mark.className = 'row-mark';
      r.firstChild.prepend(mark);
      r.firstChild.append(document.createTextNode(''));
      r.mark = mark;
      const badge = document.createElement('span');
      badge.className = 'uni-badge';
      badge.textContent = 'hidden Unicode';
      badge.title = 'This entry has invisible or text-reversing characters, shown as \\u escapes';
      r.badge = badge;
      this.scroll.append(r);
      this.pool.push(r);
    }
    return this.pool[k];
  }

  render() {
    const g = this.geometry();
    this.spacer.style.height = `${g.S}px`;
    const st = this.scroll.scrollTop;
    const top = this.topFromScroll(st, g);
    const first = Math.max(0, this.posAtY(top));
    const last = Math.min(this.count - 1, this.posAtY(top + g.vh) + 1);
    const store = this.store;
    const ep = this.expandedPos();
    const hadFocus = this.scroll.contains(document.activeElement) && document.activeElement.classList.contains('vt-row');
    const missing = [];
    // A value not kept and not read yet shows as "…" until its line is read.
    const val = (/** @type {string | null | undefined} */ v) => (v === undefined ? '…' : v ?? '');
    let k = 0;
    for (let pos = first; pos <= last; pos++, k++) {
      const i = this.rowAt(pos);
      const r = this.getRowEl(k);
      r.hidden = false;
      r.dataset.pos = String(pos);
      r.dataset.line = String(store.lineAt(i));
      r.style.transform = `translateY(${Math.round(st + this.yOf(pos) - top)}px)`;
      r.setAttribute('aria-rowindex', String(pos + 2));
      r.setAttribute('aria-expanded', String(i === this.expanded));
      const failing = this.isFailing(i);
      const unsigned = !failing && this.isUnsigned(i);
      r.classList.toggle('failing', failing);
      r.classList.toggle('in-range', this.isInRange(i));
      r.classList.toggle('unsigned', unsigned);
      setMark(r.mark, failing ? ['▲', 'failing entry'] : unsigned ? ['○', 'not signed'] : null);
      r.classList.toggle('flash', i === this.flash);
      r.classList.toggle('active', pos === this.active);
      r.classList.toggle('odd', (pos & 1) === 1);
      const cells = r.children;
      cells[0].lastChild.nodeValue = store.seqText(i) || '–';
      setText(cells[1], store.tsText(i));
      if (store.needsValues(i)) missing.push(i);
      const unreadable = Number.isNaN(store.seqAt(i)) && Number.isNaN(store.tsAt(i)) && store.str(1, i) == null && store.str(2, i) == null;
      r.classList.toggle('unreadable', unreadable);
      // System entries (stele.genesis, stele.recovery, stele.access) have a type and no action.
      const action = store.str(2, i);
      const texts = [unreadable ? 'unreadable entry: open it to see the line' : val(store.str(1, i)), action === null ? val(store.str(0, i)) : val(action), val(store.str(3, i)), val(store.str(4, i))];
      const names = ['actor', action === null ? 'type' : 'action', 'target', 'outcome'];
      let hiddenIn = null;
      for (let c = 0; c < 4; c++) {
        // Sealed values (FORMAT 13.2): opened with a mark, or the word for their state.
        if (!unreadable && hasPlaceholder(texts[c])) {
          if (renderParts(cells[c + 2], sealedParts(texts[c], names[c], this.sealedValues(i))) && !hiddenIn) hiddenIn = cells[c + 2];
        } else if (setRevealed(cells[c + 2], texts[c]) && !hiddenIn) hiddenIn = cells[c + 2];
      }
      r.classList.toggle('hidden-unicode', hiddenIn != null);
      if (hiddenIn) hiddenIn.prepend(r.badge);
      if (i === this.expanded && r.nextSibling !== this.detail.el) {
        const had = this.detail.el.contains(document.activeElement) ? document.activeElement : null;
        r.after(this.detail.el);
        had?.focus({ preventScroll: true });
      }
    }
    if (missing.length) this.needValues(missing);
    for (; k < this.pool.length; k++) {
      const r = this.pool[k];
      r.hidden = true;
      r.classList.remove('flash', 'active');
      r.dataset.pos = '';
    }
    const d = this.detail;
    if (ep >= 0 && ep >= first && ep <= last) {
      d.el.hidden = false;
      d.el.style.transform = `translateY(${Math.round(st + this.yOf(ep) + ROW_H - top)}px)`;
    } else {
      d.el.hidden = true;
    }
    if (hadFocus || this.wantFocus) {
      const el = this.pool.find((r) => !r.hidden && r.dataset.pos === String(this.active));
      if (el && document.activeElement !== el) el.focus({ preventScroll: true });
      this.wantFocus = false;
    }
  }

  /**
   * Forgets the previous file's rows: no row expanded, active or highlighted
   * (a highlight's store index would otherwise land on another file's row),
   * scrolled to the top.
   */
  reset() {
    this.expanded = -1;
    this.active = 0;
    this.flash = -1;
    clearTimeout(this.flashTimer);
    this.scroll.scrollTop = 0;
    this.schedule();
  }

  /** Scrolls so that view position pos is visible (centred when far away). */
  reveal(pos, center = false) {
    const g = this.geometry();
    const top = this.topFromScroll(this.scroll.scrollTop, g);
    const y = this.yOf(pos);
    let want = top;
    if (center || y < top || y + ROW_H > top + g.vh) {
      want = center ? y - g.vh / 3 : y < top ? y : y + ROW_H - g.vh;
      if (!center && pos === this.expandedPos()) want = Math.min(y, y + ROW_H + DETAIL_H - g.vh);
    }
    want = Math.max(0, Math.min(want, g.H - g.vh));
    this.scroll.scrollTop = this.scrollFromTop(want, g);
    this.schedule();
  }

  /** Scrolls to store index i, highlights it and focuses it. Returns false if filtered out. */
  goTo(i, { expand = false } = {}) {
    const pos = this.posOf(i);
    if (pos < 0) return false;
    this.active = pos;
    this.flash = i;
    if (expand && this.expanded !== i) this.toggle(pos);
    this.reveal(pos, true);
    this.wantFocus = true;
    clearTimeout(this.flashTimer);
    this.flashTimer = setTimeout(() => {
      this.flash = -1;
      this.schedule();
    }, 2500);
    return true;
  }

  toggle(pos) {
    const i = this.rowAt(pos);
    if (this.expanded === i) {
      this.expanded = -1;
      this.schedule();
      return;
    }
    this.expanded = i;
    this.fillDetail(i);
    this.schedule();
    this.reveal(pos);
  }

  /** The expanded row's detail read again (its notes depend on the result on show), if a row is expanded. */
  refreshDetail() {
    if (this.expanded >= 0) this.fillDetail(this.expanded);
  }

  /** Fills the detail with store row i's event and notes (loadDetail). */
  fillDetail(i) {
    const d = this.detail;
    d.index = i;
    const meta = () => {
      const at = this.store.offsetAt(i);
      // A paged store knows a row's bytes once its page is read (loadDetail reads it).
      d.meta.textContent = `Line ${this.store.lineAt(i)}${Number.isNaN(at) ? '' : ` · bytes ${at}–${at + this.store.lengthAt(i)}`}`;
    };
    meta();
    d.notes.replaceChildren();
    d.pre.textContent = 'Loading…';
    this.loadDetail(i).then(
      ({ text, notes, hidden }) => {
        if (d.index !== i) return;
        meta();
        const items = notes.map((n) => {
          const li = document.createElement('li');
          setRevealed(li, n, { keepLines: true });
          return li;
        });
        if (hidden) {
          const li = document.createElement('li');
          li.className = 'uni-note';
          li.textContent = 'Hidden Unicode: this event has invisible or text-reversing characters; they are shown as \\u escapes.';
          items.push(li);
        }
        d.notes.replaceChildren(...items);
        setRevealed(d.pre, text, { keepLines: true });
      },
      (e) => {
        if (d.index === i) d.pre.textContent = `Could not read this entry: ${e.message}`;
      },
    );
  }

  onClick(e) {
    const r = e.target.closest('.vt-row');
    if (!r || !this.scroll.contains(r)) return;
    const pos = Number(r.dataset.pos);
    this.active = pos;
    this.toggle(pos);
    this.wantFocus = true;
  }

  onKey(e) {
    if (e.target.tagName === 'PRE') return;
    const page = Math.max(1, Math.floor(this.scroll.clientHeight / ROW_H) - 1);
    let pos = this.active;
    switch (e.key) {
      case 'ArrowDown': pos++; break;
      case 'ArrowUp': pos--; break;
      case 'PageDown': pos += page; break;
      case 'PageUp': pos -= page; break;
      case 'Home': pos = 0; break;
      case 'End': pos = this.count - 1; break;
      case 'ArrowRight': // treegrid: expand
      case 'ArrowLeft': // treegrid: collapse
        if (this.count && (this.expanded === this.rowAt(this.active)) === (e.key === 'ArrowLeft')) this.toggle(this.active);
        this.wantFocus = true;
        e.preventDefault();
        return;
      case 'Enter':
      case ' ':
        if (this.count) this.toggle(this.active);
        this.wantFocus = true;
        e.preventDefault();
        return;
      default:
        return;
    }
    e.preventDefault();
    if (!this.count) return;
    this.active = Math.max(0, Math.min(this.count - 1, pos));
    this.reveal(this.active);
    this.wantFocus = true;
    this.schedule();
  }
}

function setMark(el, m) {
  const text = m ? m[0] : '';
  if (el.textContent === text) return;
  el.textContent = text;
  if (m) {
    el.setAttribute('role', 'img');
    el.setAttribute('aria-label', m[1]);
  } else {
    el.removeAttribute('role');
    el.removeAttribute('aria-label');
  }
}

function setText(el, s) {
  if (el.textContent !== s) el.textContent = s;
}
