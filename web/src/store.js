// Columnar storage for entry summaries, 15 to 20 bytes a row: ts is a
// Uint32 count of microseconds after the first timestamp of its group of 64
// rows (a Float64 per group), offset a Uint32 count of bytes after the first
// offset of its group of 4,096 rows, length a Uint16, and five codes of a
// Uint8 each (a Uint16 once the column has 255 distinct values or one not
// kept). A column whose values do not fit widens (ts: a few thousand rows
// apart, then a Float64 column; offset: a Float64 column; length: Uint32).
// seq and line cost nothing while they count up with the rows (seq: row +
// first seq, until a row breaks that, then a Float64 column; line: runs of
// rows on consecutive lines). Strings are interned per column, up to the
// page's limit of distinct values (VALUE_LIMIT): a value first seen after
// that (a unique resource id per event) is not kept but read back from the
// entry's line in the file when its row is drawn or searched (row values, a
// small cache).
import { STRING_COLUMNS, formatTs } from './engine.js';

/** The distinct values, and bytes of them, the page keeps per column (verifyFile's keepValues). */
export const VALUE_LIMIT = Object.freeze({ values: 16384, bytes: 1 << 20 });

/** A row's code for a value that was not kept: read it from the line. */
export const NOT_KEPT = 0xffff;

/** Rows whose values, read back from their lines, are kept for drawing. */
const ROW_VALUES_CACHED = 4096;

/** Rows per ts group (a power of two) and per offset group. */
const TS_SHIFT = 6;
const OFF_SHIFT = 12;
/** ts deltas that are not counts: no timestamp, and a ts kept apart (tsApart). */
const TS_NAN = 0xffffffff;
const TS_APART = 0xfffffffe;
/** Rows whose ts is kept apart before the ts becomes a Float64 column. */
const TS_APART_MAX = 4096;

export class EntryStore {
  /**
   * @param {{bytes?: number}} [o]  bytes: the size of the file the rows come
   *   from, to size the columns once from the first rows' line lengths (growing
   *   copies every column, and the old copies linger until collected)
   */
  constructor({ bytes = 0 } = {}) {
    this.bytes = bytes;
    this.n = 0;
    this.cap = 0;
    /** @type {Float64Array | null} seq per row, once a row's seq is not first seq + row */
    this.seqs = null;
    this.seq0 = NaN;
    /** Line per row: runs of rows whose lines are a fixed step apart. */
    this.lines = new StepRuns();
    this.lastLine = -Infinity;
    /** ts: per group of 2^TS_SHIFT rows its first timestamp, per row the microseconds after it (or TS_NAN, TS_APART). */
    this.tsBase = new Float64Array(0);
    this.tsDelta = new Uint32Array(0);
    /** @type {Map<number, number>} row -> ts that does not fit its group (earlier, or 71 minutes later) */
    this.tsApart = new Map();
    /** @type {Float64Array | null} ts per row, once too many did not fit their group */
    this.tsFull = null;
    /** offset: per group of 2^OFF_SHIFT rows its first offset, per row the bytes after it. */
    this.offBase = new Float64Array(0);
    this.offDelta = new Uint32Array(0);
    /** @type {Float64Array | null} offset per row, once a group spans 4 GiB */
    this.offFull = null;
    /** @type {Uint16Array | Uint32Array} line length per row (Uint32 once a line is longer than 65,535 bytes) */
    this.length = new Uint16Array(0);
    /** @type {(Uint8Array | Uint16Array)[]} code per row and column: Uint8 while every code is below 255 */
    this.codes = STRING_COLUMNS.map(() => new Uint8Array(0));
    /** @type {Map<number, (string | null)[]>} row -> its five values, read from its line */
    this.rowValues = new Map();
    this.dicts = STRING_COLUMNS.map(() => /** @type {(string | null)[]} */ ([null])); // code 0 is null
    this.tsRaw = new Map(); // row -> original timestamp text, when not canonical
    this.minTs = Infinity;
    this.maxTs = -Infinity;
    this.sortedLines = true;
  }

  /** @param {number} need */
  grow(need) {
    if (need <= this.cap) return;
    // Grows by half (not double): the old and new arrays coexist while copying.
    let cap = Math.max(1024, this.cap);
    while (cap < need) cap = Math.ceil(cap * 1.5);
    const n = this.n;
    if (this.bytes > 0 && n >= 1024) {
      // Rows the file holds at the bytes a row took so far, and 5% more.
      const used = this.offsetAt(n - 1) + this.length[n - 1] + 1;
      cap = Math.max(cap, Math.min(Math.ceil((this.bytes / used) * n * 1.05), 2 ** 26));
    }
    /** @template {Float64Array | Uint32Array | Uint16Array | Uint8Array} T @param {T} a @param {number} size @returns {T} */
    const g = (a, size = cap) => {
      const b = /** @type {T} */ (new /** @type {any} */ (a.constructor)(size));
      b.set(a.subarray(0, Math.min(a.length, size)));
      return b;
    };
    if (this.seqs) this.seqs = g(this.seqs);
    if (this.tsFull) this.tsFull = g(this.tsFull);
    else {
      const groups = (cap >> TS_SHIFT) + 1;
      const old = this.tsBase.length;
      this.tsBase = g(this.tsBase, groups);
      this.tsBase.fill(NaN, old);
      this.tsDelta = g(this.tsDelta);
    }
    if (this.offFull) this.offFull = g(this.offFull);
    else {
      const old = this.offBase.length;
      this.offBase = g(this.offBase, (cap >> OFF_SHIFT) + 1);
      this.offBase.fill(NaN, old);
      this.offDelta = g(this.offDelta);
    }
    this.length = g(this.length);
    this.codes = this.codes.map((c) => g(c));
    this.cap = cap;
  }

  /**
   * Row i's timestamp in microseconds since the epoch, NaN when it has none.
   * @param {number} i
   */
  tsAt(i) {
    if (this.tsFull) return this.tsFull[i];
    const d = this.tsDelta[i];
    if (d < TS_APART) return this.tsBase[i >> TS_SHIFT] + d;
    return d === TS_NAN ? NaN : /** @type {number} */ (this.tsApart.get(i));
  }

  /** @param {number} i @param {number} t */
  setTs(i, t) {
    if (this.tsFull) {
      this.tsFull[i] = t;
      return;
    }
    if (Number.isNaN(t)) {
      this.tsDelta[i] = TS_NAN;
      return;
    }
    const k = i >> TS_SHIFT;
    if (Number.isNaN(this.tsBase[k])) this.tsBase[k] = t;
    const d = t - this.tsBase[k];
    if (d >= 0 && d < TS_APART && Number.isInteger(d)) {
      this.tsDelta[i] = d;
      return;
    }
    this.tsDelta[i] = TS_APART;
    this.tsApart.set(i, t);
    if (this.tsApart.size <= TS_APART_MAX) return;
    // Timestamps far apart (hours between entries, or going back): one Float64 a row.
    const full = new Float64Array(this.cap);
    for (let r = 0; r <= i; r++) full[r] = this.tsAt(r);
    this.tsFull = full;
    this.tsBase = new Float64Array(0);
    this.tsDelta = new Uint32Array(0);
    this.tsApart = new Map();
  }

  /**
   * Row i's byte offset in the file.
   * @param {number} i
   */
  offsetAt(i) {
    return this.offFull ? this.offFull[i] : this.offBase[i >> OFF_SHIFT] + this.offDelta[i];
  }

  /** @param {number} i @param {number} o */
  setOffset(i, o) {
    if (!this.offFull) {
      const k = i >> OFF_SHIFT;
      if (Number.isNaN(this.offBase[k])) this.offBase[k] = o;
      const d = o - this.offBase[k];
      if (d >= 0 && d <= 0xffffffff && Number.isInteger(d)) {
        this.offDelta[i] = d;
        return;
      }
      // A group of rows spanning 4 GiB (lines far longer than entries): one Float64 a row.
      const full = new Float64Array(this.cap);
      for (let r = 0; r < i; r++) full[r] = this.offsetAt(r);
      this.offFull = full;
      this.offBase = new Float64Array(0);
      this.offDelta = new Uint32Array(0);
    }
    this.offFull[i] = o;
  }

  /** @param {import('./index.js').EntryBatch} b */
  append(b) {
    const base = this.n;
    this.grow(base + b.n);
    this.appendSeq(b, base);
    for (let k = 0; k < b.n; k++) {
      const i = base + k;
      this.lines.add(i, b.line[k]);
      if (b.line[k] < this.lastLine) this.sortedLines = false;
      this.lastLine = b.line[k];
      this.setTs(i, b.ts[k]);
      this.setOffset(i, b.offset[k]);
      const len = Math.min(b.length[k], 0xffffffff);
      if (len > 0xffff && this.length instanceof Uint16Array) this.length = Uint32Array.from(this.length);
      this.length[i] = len;
    }
    for (let c = 0; c < STRING_COLUMNS.length; c++) {
      const from = b.codes[c];
      let to = this.codes[c];
      if (to instanceof Uint8Array) {
        // Widens before a code (or NOT_KEPT) that a byte does not hold: a Uint8 column never holds NOT_KEPT.
        let max = 0;
        for (let i = 0; i < b.n; i++) if (from[i] > max) max = from[i];
        if (max >= 0xff) to = this.codes[c] = Uint16Array.from(to);
      }
      // Codes past what a Uint16 holds (a caller without the limit) are read from the line too.
      for (let i = 0; i < b.n; i++) to[base + i] = from[i] < NOT_KEPT ? from[i] : NOT_KEPT;
      for (const s of b.fresh[c]) this.dicts[c].push(s);
    }
    for (let i = 0; i < b.tsRaw.length; i += 2) this.tsRaw.set(base + /** @type {number} */ (b.tsRaw[i]), String(b.tsRaw[i + 1]));
    for (let i = 0; i < b.n; i++) {
      const t = b.ts[i];
      if (t < this.minTs) this.minTs = t;
      if (t > this.maxTs) this.maxTs = t;
    }
    this.n += b.n;
  }

  /**
   * Row i's value in column col: null when absent; undefined when it was
   * not kept and its line has not been read yet (see needsValues, setValues).
   */
  /** @param {import('./index.js').EntryBatch} b @param {number} base */
  appendSeq(b, base) {
    if (base === 0 && b.n) this.seq0 = b.seq[0];
    if (!this.seqs) {
      let k = 0;
      while (k < b.n && b.seq[k] === this.seq0 + base + k) k++;
      if (k === b.n) return;
      // The first row that breaks the count: from here on, a column.
      this.seqs = new Float64Array(this.cap);
      for (let i = 0; i < base; i++) this.seqs[i] = this.seq0 + i;
    }
    this.seqs.set(b.seq, base);
  }

  /**
   * Row i's seq, NaN when its line did not parse.
   * @param {number} i
   */
  seqAt(i) {
    return this.seqs ? this.seqs[i] : this.seq0 + i;
  }

  /**
   * Row i's line number (1-based).
   * @param {number} i
   */
  lineAt(i) {
    return /** @type {number} */ (this.lines.at(i));
  }

  /**
   * Row i's line length in bytes, without its line feed.
   * @param {number} i
   */
  lengthAt(i) {
    return this.length[i];
  }

  /** @param {number} col @param {number} i */
  str(col, i) {
    const k = this.codes[col][i];
    if (k !== NOT_KEPT) return this.dicts[col][k];
    return this.rowValues.get(i)?.[col];
  }

  /**
   * True when a value of row i was not kept and its line is not read yet.
   * @param {number} i
   */
  needsValues(i) {
    if (this.rowValues.has(i)) return false;
    for (const c of this.codes) if (c[i] === NOT_KEPT) return true;
    return false;
  }

  /**
   * Keeps row i's values read from its line (the most recent ROW_VALUES_CACHED rows).
   * @param {number} i
   * @param {(string | null)[]} values
   */
  setValues(i, values) {
    this.rowValues.delete(i);
    this.rowValues.set(i, values);
    if (this.rowValues.size > ROW_VALUES_CACHED) this.rowValues.delete(/** @type {number} */ (this.rowValues.keys().next().value));
  }

  /** @param {number} i */
  tsText(i) {
    const raw = this.tsRaw.get(i);
    if (raw !== undefined) return raw;
    return formatTs(this.tsAt(i));
  }

  /** @param {number} i */
  seqText(i) {
    const s = this.seqAt(i);
    return Number.isNaN(s) ? '' : String(s);
  }

  /**
   * Row index of the entry on `line`, or -1.
   * @param {number} line
   */
  findByLine(line) {
    return findLine(this, line);
  }

  /**
   * The first row whose seq is at least `entry`, or Infinity.
   * @param {number} entry
   */
  firstSeqAtLeast(entry) {
    for (let j = 0; j < this.n; j++) if (this.seqAt(j) >= entry) return j;
    return Infinity;
  }

  /**
   * Row index of the entry with sequence number seq, or -1.
   * @param {number} seq
   */
  findBySeq(seq) {
    // Sequence numbers usually equal row index + first seq: try that first.
    const guess = seq - this.seqAt(0);
    if (Number.isInteger(guess) && guess >= 0 && guess < this.n && this.seqAt(guess) === seq) return guess;
    if (!this.seqs) return -1;
    for (let i = 0; i < this.n; i++) if (this.seqs[i] === seq) return i;
    return -1;
  }
}

/**
 * A value per row that counts up with the rows in runs (a line number, a
 * seq): run k starts at row rows[k], whose value is rows[k] + shifts[k]. A
 * shift of NaN is a run of rows without a value. Costs two numbers a run,
 * nothing a row; past `max` runs the rows after the last one are unknown
 * (undefined).
 */
export class Runs {
  constructor(max = Infinity) {
    /** @type {number[]} */
    this.rows = [];
    /** @type {number[]} */
    this.shifts = [];
    this.max = max;
    /** Rows from here on are past `max` runs: unknown. */
    this.until = Infinity;
  }

  /**
   * Row i (rows come in ascending order) has `value`.
   * @param {number} i
   * @param {number} value
   */
  add(i, value) {
    if (i >= this.until) return;
    const shift = value - i;
    const k = this.shifts.length;
    if (k && Object.is(this.shifts[k - 1], shift)) return;
    if (k >= this.max) {
      this.until = i;
      return;
    }
    this.rows.push(i);
    this.shifts.push(shift);
  }

  /**
   * The run holding row i (rows[0] <= i).
   * @param {number} i
   */
  run(i) {
    const r = this.rows;
    let lo = 0;
    let hi = r.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (r[mid] <= i) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }

  /**
   * Row i's value: NaN when it has none, undefined when unknown.
   * @param {number} i
   */
  at(i) {
    return i < this.until ? i + this.shifts[this.run(i)] : undefined;
  }

  /**
   * The first of rows 0..n-1 whose value is `value` (or, with atLeast, at least it), or -1.
   * @param {number} value
   * @param {number} n
   */
  find(value, n, atLeast = false) {
    const end = Math.min(n, this.until);
    for (let k = 0; k < this.rows.length; k++) {
      const from = this.rows[k];
      const to = Math.min(k + 1 < this.rows.length ? this.rows[k + 1] : end, end);
      const i = Math.max(from, value - this.shifts[k]);
      if (!Number.isInteger(i)) continue; // NaN run, or a fraction
      if (i < to && (atLeast || i === value - this.shifts[k])) return i;
    }
    return -1;
  }
}

/**
 * A value per row that grows by a fixed step within runs: the line of each
 * row, where a sealed export's entry lines are each followed by the same
 * number of record lines (step 1 + k), a plain one's by none (step 1). Run k
 * starts at row rows[k] with value starts[k] and adds steps[k] a row: three
 * numbers a run, nothing a row (Runs, step 1 only, gave a sealed export a
 * run a row).
 */
export class StepRuns {
  constructor() {
    /** @type {number[]} */
    this.rows = [];
    /** @type {number[]} */
    this.starts = [];
    /** @type {number[]} */
    this.steps = [];
  }

  /**
   * Row i has `value`; rows are added one by one, in order (0, 1, 2, ...).
   * @param {number} i
   * @param {number} value
   */
  add(i, value) {
    const k = this.rows.length - 1;
    if (k >= 0) {
      const from = this.rows[k];
      if (value === this.starts[k] + this.steps[k] * (i - from)) return;
      // A run of one row takes the step its second row gives.
      if (i === from + 1) {
        this.steps[k] = value - this.starts[k];
        return;
      }
    }
    this.rows.push(i);
    this.starts.push(value);
    this.steps.push(1);
  }

  /**
   * Row i's value (rows[0] <= i).
   * @param {number} i
   */
  at(i) {
    const r = this.rows;
    let lo = 0;
    let hi = r.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (r[mid] <= i) lo = mid;
      else hi = mid - 1;
    }
    return this.starts[lo] + this.steps[lo] * (i - r[lo]);
  }
}

/**
 * Row index of the entry on `line` in a store (binary search on lineAt), or -1.
 * @param {{n: number, sortedLines: boolean, lineAt: (i: number) => number}} store
 * @param {number} line
 */
function findLine(store, line) {
  if (store.sortedLines) {
    let lo = 0;
    let hi = store.n - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const v = store.lineAt(mid);
      if (v === line) return mid;
      if (v < line) lo = mid + 1;
      else hi = mid - 1;
    }
    return -1;
  }
  for (let i = 0; i < store.n; i++) if (store.lineAt(i) === line) return i;
  return -1;
}

/** Rows per page of a PagedStore (a power of two), and pages whose rows are kept, read back. */
export const PAGE_SHIFT = 8;
export const PAGE_ROWS = 1 << PAGE_SHIFT;
const PAGES_CACHED = 32;
/** Seq runs a PagedStore keeps (a run per break in the count: a duplicated or missing entry). */
const SEQ_RUNS_MAX = 65536;

/**
 * The rows of a file too big to keep in memory (PAGED_BYTES and over): per
 * page of PAGE_ROWS rows the byte offset of its first row, its earliest and
 * latest timestamps and how many rows have none (26 bytes a page, 0.1 byte
 * a row); lines and seqs as runs (nothing a row while they count up). A row
 * drawn, searched or opened is read back from the file with its page
 * (rowvalues.js loadPages) and summarized again by core: the values shown
 * are the ones the verifier read. The last PAGES_CACHED pages read are kept.
 * Same reading interface as EntryStore; a value of a page not read yet is
 * undefined (tsText, seqText: "…").
 */
export class PagedStore {
  constructor() {
    this.paged = true;
    this.n = 0;
    this.lines = new StepRuns();
    this.seqs = new Runs(SEQ_RUNS_MAX);
    this.pageOff = new Float64Array(0);
    this.pageMin = new Float64Array(0);
    this.pageMax = new Float64Array(0);
    this.pageUntimed = new Uint16Array(0);
    /** The byte after the last row's line. */
    this.end = 0;
    /** @type {Map<number, import('./index.js').EntrySummary[]>} page -> its rows, read back */
    this.pages = new Map();
    /**
     * page -> its entries' sealed values (entry -> values), opened when the
     * page was read back (see openSealed); kept and dropped with its rows.
     * @type {Map<number, Map<number, import('./index.js').SealedValue[]>>}
     */
    this.sealed = new Map();
    /**
     * Opens the sealed values of a page's bytes (sealed.js openSealedSpan,
     * bound to the file, origin and key), when an auditor key opened values
     * and none are listed in memory (the page's values are opened when the
     * page is read back); null otherwise.
     * @type {((at: number, bytes: Uint8Array) => Promise<import('./index.js').SealedValue[] | null>) | null}
     */
    this.openSealed = null;
    /** Counts dropPages(): a page read before the last drop is not kept. */
    this.epoch = 0;
    this.dicts = STRING_COLUMNS.map(() => /** @type {(string | null)[]} */ ([null]));
    this.minTs = Infinity;
    this.maxTs = -Infinity;
    this.sortedLines = true;
    this.lastLine = -Infinity;
    /** @type {{page: number, lines: number, seqs: number, dicts: number[]} | null} what takeDelta sent */
    this.sent = null;
  }

  /** Pages holding rows. */
  get pageCount() {
    return (this.n + PAGE_ROWS - 1) >> PAGE_SHIFT;
  }

  /**
   * Room for `need` pages.
   * @param {number} need
   */
  ensurePages(need) {
    if (need > this.pageOff.length) {
      const cap = Math.max(1024, Math.ceil(need * 1.5));
      /** @param {Float64Array | Uint16Array} a @param {number | undefined} fill */
      const g = (a, fill) => {
        const c = new /** @type {any} */ (a.constructor)(cap);
        c.set(a);
        if (fill !== undefined) c.fill(fill, a.length);
        return c;
      };
      this.pageOff = g(this.pageOff, undefined);
      this.pageMin = g(this.pageMin, Infinity);
      this.pageMax = g(this.pageMax, -Infinity);
      this.pageUntimed = g(this.pageUntimed, undefined);
    }
  }

  /** @param {import('./index.js').EntryBatch} b */
  append(b) {
    const base = this.n;
    this.ensurePages(((base + b.n + PAGE_ROWS - 1) >> PAGE_SHIFT) + 1);
    for (let k = 0; k < b.n; k++) {
      const i = base + k;
      const p = i >> PAGE_SHIFT;
      if ((i & (PAGE_ROWS - 1)) === 0) this.pageOff[p] = b.offset[k];
      this.lines.add(i, b.line[k]);
      if (b.line[k] < this.lastLine) this.sortedLines = false;
      this.lastLine = b.line[k];
      this.seqs.add(i, b.seq[k]);
      const t = b.ts[k];
      if (Number.isNaN(t)) this.pageUntimed[p]++;
      else {
        if (t < this.pageMin[p]) this.pageMin[p] = t;
        if (t > this.pageMax[p]) this.pageMax[p] = t;
        if (t < this.minTs) this.minTs = t;
        if (t > this.maxTs) this.maxTs = t;
      }
      this.end = b.offset[k] + b.length[k] + 1;
    }
    // The values the verifier kept (its limit): offered in the filters' lists.
    for (let c = 0; c < STRING_COLUMNS.length; c++) for (const s of b.fresh[c]) this.dicts[c].push(s);
    this.n += b.n;
  }

  /**
   * What changed since the previous call, for another PagedStore's merge:
   * the verifier worker keeps a PagedStore of its own and posts these to the
   * page (a few hundred bytes a block) instead of the rows' batches (60
   * bytes a row, which the page's isolate would hold until its next garbage
   * collection).
   * @returns {PagedDelta}
   */
  takeDelta() {
    const sent = (this.sent ??= { page: 0, lines: 0, seqs: 0, dicts: this.dicts.map(() => 1) });
    const from = sent.page;
    const to = this.pageCount;
    const linesFrom = Math.max(0, sent.lines - 1);
    /** @type {PagedDelta} */
    const d = {
      n: this.n, end: this.end, minTs: this.minTs, maxTs: this.maxTs, sortedLines: this.sortedLines, from,
      pageOff: this.pageOff.slice(from, to), pageMin: this.pageMin.slice(from, to), pageMax: this.pageMax.slice(from, to), pageUntimed: this.pageUntimed.slice(from, to),
      // The last run sent again: its step may have been set since.
      lines: [linesFrom, this.lines.rows.slice(linesFrom), this.lines.starts.slice(linesFrom), this.lines.steps.slice(linesFrom)],
      seqs: [this.seqs.rows.slice(sent.seqs), this.seqs.shifts.slice(sent.seqs), this.seqs.until],
      fresh: this.dicts.map((dict, c) => /** @type {string[]} */ (dict.slice(sent.dicts[c]))),
    };
    // The last page may still be filling: sent again next time.
    sent.page = this.n & (PAGE_ROWS - 1) ? to - 1 : to;
    sent.lines = this.lines.rows.length;
    sent.seqs = this.seqs.rows.length;
    sent.dicts = this.dicts.map((dict) => dict.length);
    return d;
  }

  /** Takes in another PagedStore's takeDelta(). @param {PagedDelta} d */
  merge(d) {
    this.ensurePages(d.from + d.pageOff.length + 1);
    this.pageOff.set(d.pageOff, d.from);
    this.pageMin.set(d.pageMin, d.from);
    this.pageMax.set(d.pageMax, d.from);
    this.pageUntimed.set(d.pageUntimed, d.from);
    const [linesFrom, rows, starts, steps] = d.lines;
    for (const a of [this.lines.rows, this.lines.starts, this.lines.steps]) a.length = linesFrom;
    this.lines.rows.push(...rows);
    this.lines.starts.push(...starts);
    this.lines.steps.push(...steps);
    this.seqs.rows.push(...d.seqs[0]);
    this.seqs.shifts.push(...d.seqs[1]);
    this.seqs.until = d.seqs[2];
    d.fresh.forEach((f, c) => this.dicts[c].push(...f));
    Object.assign(this, { n: d.n, end: d.end, minTs: d.minTs, maxTs: d.maxTs, sortedLines: d.sortedLines });
  }

  /**
   * Page p's bytes in the file: from its first row's line to the next page's (or the last row's end).
   * @param {number} p
   */
  pageBytes(p) {
    return { from: this.pageOff[p], to: (p + 1) << PAGE_SHIFT < this.n ? this.pageOff[p + 1] : this.end };
  }

  /**
   * Keeps page p's rows, read back (the PAGES_CACHED most recent pages).
   * @param {number} p
   * @param {import('./index.js').EntrySummary[]} rows
   */
  setPage(p, rows, sealed = null) {
    this.pages.delete(p);
    this.pages.set(p, rows);
    this.sealed.delete(p);
    if (sealed) this.sealed.set(p, sealed);
    if (this.pages.size > PAGES_CACHED) {
      const old = /** @type {number} */ (this.pages.keys().next().value);
      this.pages.delete(old);
      this.sealed.delete(old);
    }
  }

  /**
   * Drops the pages read back (their rows and sealed values): they are read
   * again when drawn (after the sealed values became known, or went).
   */
  dropPages() {
    this.epoch++;
    this.pages.clear();
    this.sealed.clear();
  }

  /**
   * Row i's sealed values, opened with its page; undefined while its page
   * is not read back or none were opened.
   * @param {number} i
   */
  sealedAt(i) {
    return this.sealed.get(i >> PAGE_SHIFT)?.get(this.seqAt(i));
  }

  /** Sealed values held (those of the pages read back): for tests. */
  sealedHeld() {
    let n = 0;
    for (const page of this.sealed.values()) for (const values of page.values()) n += values.length;
    return n;
  }

  /**
   * Row i read back, or undefined while its page is not.
   * @param {number} i
   */
  row(i) {
    return this.pages.get(i >> PAGE_SHIFT)?.[i & (PAGE_ROWS - 1)];
  }

  /** @param {number} i */
  lineAt(i) {
    return /** @type {number} */ (this.lines.at(i));
  }

  /** @param {number} line */
  findByLine(line) {
    return findLine(this, line);
  }

  /** @param {number} i */
  seqAt(i) {
    return this.seqs.at(i) ?? this.row(i)?.seq ?? NaN;
  }

  /** @param {number} i */
  seqText(i) {
    const s = this.seqs.at(i) ?? this.row(i)?.seq;
    if (s === undefined) return '…';
    return s === null || Number.isNaN(s) ? '' : String(s);
  }

  /** @param {number} seq */
  findBySeq(seq) {
    const i = this.seqs.find(seq, this.n);
    if (i >= 0) return i;
    for (const [p, rows] of this.pages) for (let k = 0; k < rows.length; k++) if (rows[k].seq === seq) return (p << PAGE_SHIFT) + k;
    return -1;
  }

  /**
   * The first row whose seq is at least `entry`, or Infinity.
   * @param {number} entry
   */
  firstSeqAtLeast(entry) {
    const i = this.seqs.find(entry, this.n, true);
    return i >= 0 ? i : Infinity;
  }

  /** @param {number} i */
  tsAt(i) {
    return this.row(i)?.ts_us ?? NaN;
  }

  /** @param {number} i */
  tsText(i) {
    const r = this.row(i);
    return r ? (r.ts ?? '') : '…';
  }

  /** @param {number} i */
  offsetAt(i) {
    return this.row(i)?.offset ?? NaN;
  }

  /** @param {number} i */
  lengthAt(i) {
    return this.row(i)?.length ?? NaN;
  }

  /** @param {number} col @param {number} i */
  str(col, i) {
    return this.row(i)?.[STRING_COLUMNS[col]];
  }

  /** @param {number} i */
  needsValues(i) {
    return !this.pages.has(i >> PAGE_SHIFT);
  }
}

/**
 * @typedef {object} PagedDelta  PagedStore.takeDelta()
 * @property {number} n
 * @property {number} end
 * @property {number} minTs
 * @property {number} maxTs
 * @property {boolean} sortedLines
 * @property {number} from  the first page sent
 * @property {Float64Array} pageOff
 * @property {Float64Array} pageMin
 * @property {Float64Array} pageMax
 * @property {Uint16Array} pageUntimed
 * @property {[number, number[], number[], number[]]} lines  from which run, then the runs from there (rows, starts, steps)
 * @property {[number[], number[], number]} seqs  runs added, and where they stop
 * @property {string[][]} fresh  values added per column
 */

/** Files of this many bytes and more are kept as pages (PagedStore): about a million rows. */
export const PAGED_BYTES = 256 << 20;

/**
 * The store for a file of `bytes` bytes: every row in memory (EntryStore,
 * 15 to 20 bytes a row) below `pagedAbove` bytes, pages read back from the
 * file (PagedStore) from there on.
 * @param {{bytes?: number, pagedAbove?: number}} [o]
 */
export function makeStore({ bytes = 0, pagedAbove = PAGED_BYTES } = {}) {
  return bytes >= pagedAbove ? new PagedStore() : new EntryStore({ bytes });
}
