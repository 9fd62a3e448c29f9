// The entries filters: search (every text column of the row, the seq, and
// what is on screen, i.e. hidden characters as their visible escapes),
// actor, action, a UTC time range, failing only. Pure over an EntryStore.
import { parseTs } from './engine.js';
import { revealText } from './util.js';

/** "2026-11-26T08:00:00" (UTC, 24-hour, seconds) for a datetime-local input. */
export function toLocalInput(us) {
  return new Date(Math.floor(us / 1000)).toISOString().slice(0, 19);
}

/**
 * Microseconds for a UTC time typed as YYYY-MM-DD, YYYY-MM-DDTHH:MM or
 * YYYY-MM-DDTHH:MM:SS (a space for the T, a trailing Z allowed); with `end`,
 * the last microsecond of that day, minute or second. NaN when empty or not
 * a time (see timeInputValid).
 */
export function fromLocalInput(v, end) {
  const m = /^(\d{4}-\d\d-\d\d)(?:[T ](\d\d):(\d\d)(?::(\d\d))?)?Z?$/.exec((v || '').trim());
  if (!m) return NaN;
  const [, day, hh, mm, ss] = m;
  const us = parseTs(`${day}T${hh ?? '00'}:${mm ?? '00'}:${ss ?? '00'}Z`);
  if (!end) return us;
  const span = ss != null ? 1e6 : hh != null ? 60e6 : 86400e6;
  return us + span - 1;
}

/** False when v is neither empty nor a time fromLocalInput reads. */
export function timeInputValid(v) {
  return !v.trim() || !Number.isNaN(fromLocalInput(v, false));
}

// Flags per dictionary code: 1 when the value (as stored, or as shown) contains q.
function dictFlags(dict, q) {
  const f = new Uint8Array(dict.length);
  for (let k = 1; k < dict.length; k++) {
    const v = dict[k];
    if (v.toLowerCase().includes(q) || revealText(v).toLowerCase().includes(q)) f[k] = 1;
  }
  return f;
}

/** The code of a value the store did not keep (store.js NOT_KEPT). */
const NOT_KEPT = 0xffff;

/** True when value v (as stored, or as shown) contains the lower-case query q. */
export function valueHas(v, q) {
  return v != null && (v.toLowerCase().includes(q) || revealText(v).toLowerCase().includes(q));
}

/**
 * The filter's queries: q (search), qa (actor), qb (action) lower-case, from
 * and to in microseconds (NaN: open); null when no filter is set.
 */
export function filterQuery(f) {
  const q = f.text.trim().toLowerCase();
  const qa = f.actor.trim().toLowerCase();
  const qb = f.action.trim().toLowerCase();
  const from = fromLocalInput(f.from, false);
  const to = fromLocalInput(f.to, true);
  if (!q && !qa && !qb && Number.isNaN(from) && Number.isNaN(to) && !f.failingOnly) return null;
  return { q, qa, qb, from, to, seqQ: /^\d+$/.test(q) ? Number(q) : NaN };
}

/**
 * Whether a row matches query `fq` (filterQuery) given `row` ({ts, tsText,
 * seq}: its timestamp in microseconds, as shown, and its seq) and `values`,
 * its five column values read from its line.
 * @param {NonNullable<ReturnType<typeof filterQuery>>} fq
 * @param {{ts: number, tsText: () => string, seq: number}} row
 * @param {(string | null | undefined)[]} values
 */
export function rowMatches(fq, row, values) {
  const { q, qa, qb, from, to } = fq;
  if (qa && !valueHas(values[1], qa)) return false;
  if (qb && !valueHas(values[2], qb)) return false;
  const t = row.ts;
  if (!Number.isNaN(from) && !(t >= from)) return false;
  if (!Number.isNaN(to) && !(t <= to)) return false;
  if (!q) return true;
  if (row.seq === fq.seqQ || (q.length > 3 && row.tsText().toLowerCase().includes(q))) return true;
  return values.some((v) => valueHas(v, q));
}

/**
 * A set of rows as one bit a row: the view of a filter on a paged store
 * (store.js PagedStore), filled as the file is read. at(pos) is the pos-th
 * row in the set and posOf(row) its position (ascending, like the views of
 * filterRows), through a count per block of 1,024 rows.
 */
export class RowSet {
  /** @param {number} n rows */
  constructor(n) {
    this.n = n;
    this.words = new Uint32Array((n + 31) >>> 5);
    this.before = new Uint32Array((this.words.length >>> 5) + 1); // rows in the set before each block of 32 words
    this.count = 0;
    this.dirty = false;
  }

  add(i) {
    const w = i >>> 5;
    const bit = 1 << (i & 31);
    if (this.words[w] & bit) return;
    this.words[w] |= bit;
    this.count++;
    this.dirty = true;
  }

  has(i) {
    return (this.words[i >>> 5] & (1 << (i & 31))) !== 0;
  }

  get length() {
    return this.count;
  }

  index() {
    if (!this.dirty) return;
    let c = 0;
    for (let b = 0; b < this.before.length; b++) {
      this.before[b] = c;
      const end = Math.min((b + 1) << 5, this.words.length);
      for (let w = b << 5; w < end; w++) c += popcount(this.words[w]);
    }
    this.dirty = false;
  }

  /** The pos-th row of the set (undefined past its end). */
  at(pos) {
    if (pos < 0 || pos >= this.count) return undefined;
    this.index();
    let lo = 0;
    let hi = this.before.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.before[mid] <= pos) lo = mid;
      else hi = mid - 1;
    }
    let left = pos - this.before[lo];
    for (let w = lo << 5; w < this.words.length; w++) {
      let x = this.words[w];
      const c = popcount(x);
      if (left >= c) {
        left -= c;
        continue;
      }
      for (; left > 0; left--) x &= x - 1; // drop the lowest bits
      return (w << 5) + (31 - Math.clz32(x & -x));
    }
    return undefined;
  }

  /** Position of row i in the set, or -1. */
  posOf(i) {
    if (i < 0 || i >= this.n || !this.has(i)) return -1;
    this.index();
    const b = i >>> 10;
    let c = this.before[b];
    for (let w = b << 5; w < i >>> 5; w++) c += popcount(this.words[w]);
    return c + popcount(this.words[i >>> 5] & ((1 << (i & 31)) - 1));
  }
}

function popcount(x) {
  x -= (x >>> 1) & 0x55555555;
  x = (x & 0x33333333) + ((x >>> 2) & 0x33333333);
  return (((x + (x >>> 4)) & 0x0f0f0f0f) * 0x01010101) >>> 24;
}

/**
 * Rows of `store` that match `f` ({text, actor, action, from, to, failingOnly}),
 * as ascending store indices; null when no filter is set (all rows).
 * `failing` is the set of failing store indices. A row the filter cannot
 * decide because a value it reads was not kept (NOT_KEPT) is left out, and
 * pushed to `unsure` when given (rowvalues.js settles it from the file).
 * `sealed` (sealed-view.js sealedSearch, when a key opened sealed values):
 * the search also matches the opened values, and the actor and action
 * filters the columns as shown.
 */
export function filterRows(store, f, failing, unsure = null, sealed = null) {
  const fq = filterQuery(f);
  if (!fq) return null;
  const { q, qa, qb, from, to, seqQ } = fq;
  const s = store;
  const textFlags = q ? s.dicts.map((d) => dictFlags(d, q)) : null;
  const actorFlags = qa ? dictFlags(s.dicts[1], qa) : null;
  const actionFlags = qb ? dictFlags(s.dicts[2], qb) : null;
  const candidates = f.failingOnly ? [...failing].sort((a, b) => a - b) : null;
  const total = candidates ? candidates.length : s.n;
  const out = new Uint32Array(total);
  let m = 0;
  for (let j = 0; j < total; j++) {
    const i = candidates ? candidates[j] : j;
    const shown = sealed?.cols.get(i);
    let unknown = false;
    if (actorFlags) {
      const k = s.codes[1][i];
      if (k === NOT_KEPT) unknown = true;
      else if (!actorFlags[k] && !shown?.[1]?.includes(qa)) continue;
    }
    if (actionFlags) {
      const k = s.codes[2][i];
      if (k === NOT_KEPT) unknown = true;
      else if (!actionFlags[k] && !shown?.[2]?.includes(qb)) continue;
    }
    const t = s.tsAt(i);
    if (!Number.isNaN(from) && !(t >= from)) continue;
    if (!Number.isNaN(to) && !(t <= to)) continue;
    if (textFlags) {
      let hit = s.seqAt(i) === seqQ || (q.length > 3 && s.tsText(i).toLowerCase().includes(q));
      let textUnknown = false;
      for (let c = 0; c < textFlags.length && !hit; c++) {
        const k = s.codes[c][i];
        if (k === NOT_KEPT) textUnknown = true;
        else hit = textFlags[c][k] === 1;
      }
      // Sealed values (sealed-view.js sealedSearch): the opened ones match.
      if (!hit && sealed) hit = sealed.text.get(i)?.includes(q) === true || shown?.some((t) => t?.includes(q)) === true;
      if (!hit && !textUnknown) continue;
      if (!hit) unknown = true;
    }
    if (unknown) {
      unsure?.push(i);
      continue;
    }
    out[m++] = i;
  }
  return out.subarray(0, m);
}
