// Columnar storage for entry summaries: a million entries cost tens of MB,
// not hundreds. Strings are interned per column (see engine.js BatchEncoder).
import { STRING_COLUMNS, formatTs } from './engine.js';

export class EntryStore {
  constructor() {
    this.n = 0;
    this.cap = 0;
    this.seq = new Float64Array(0);
    this.ts = new Float64Array(0);
    this.line = new Float64Array(0);
    this.offset = new Float64Array(0);
    this.length = new Float64Array(0);
    this.codes = STRING_COLUMNS.map(() => new Uint32Array(0));
    this.dicts = STRING_COLUMNS.map(() => [null]); // code 0 is null
    this.tsRaw = new Map(); // row -> original timestamp text, when not canonical
    this.minTs = Infinity;
    this.maxTs = -Infinity;
    this.sortedLines = true;
  }

  grow(need) {
    if (need <= this.cap) return;
    let cap = Math.max(1024, this.cap);
    while (cap < need) cap *= 2;
    const g = (a, T) => {
      const b = new T(cap);
      b.set(a.subarray(0, this.n));
      return b;
    };
    this.seq = g(this.seq, Float64Array);
    this.ts = g(this.ts, Float64Array);
    this.line = g(this.line, Float64Array);
    this.offset = g(this.offset, Float64Array);
    this.length = g(this.length, Float64Array);
    this.codes = this.codes.map((c) => g(c, Uint32Array));
    this.cap = cap;
  }

  append(b) {
    const base = this.n;
    this.grow(base + b.n);
    this.seq.set(b.seq, base);
    this.ts.set(b.ts, base);
    this.line.set(b.line, base);
    this.offset.set(b.offset, base);
    this.length.set(b.length, base);
    for (let c = 0; c < STRING_COLUMNS.length; c++) {
      this.codes[c].set(b.codes[c], base);
      for (const s of b.fresh[c]) this.dicts[c].push(s);
    }
    for (let i = 0; i < b.tsRaw.length; i += 2) this.tsRaw.set(base + b.tsRaw[i], b.tsRaw[i + 1]);
    for (let i = 0; i < b.n; i++) {
      const t = b.ts[i];
      if (t < this.minTs) this.minTs = t;
      if (t > this.maxTs) this.maxTs = t;
    }
    if (base > 0 && b.n > 0 && b.line[0] < this.line[base - 1]) this.sortedLines = false;
    this.n += b.n;
  }

  str(col, i) {
    return this.dicts[col][this.codes[col][i]];
  }

  tsText(i) {
    const raw = this.tsRaw.get(i);
    if (raw !== undefined) return raw;
    return formatTs(this.ts[i]);
  }

  seqText(i) {
    const s = this.seq[i];
    return Number.isNaN(s) ? '' : String(s);
  }

  /** Row index of the entry on `line`, or -1. */
  findByLine(line) {
    if (this.sortedLines) {
      let lo = 0;
      let hi = this.n - 1;
      while (lo <= hi) {
        const mid = (lo + hi) >> 1;
        const v = this.line[mid];
        if (v === line) return mid;
        if (v < line) lo = mid + 1;
        else hi = mid - 1;
      }
      return -1;
    }
    for (let i = 0; i < this.n; i++) if (this.line[i] === line) return i;
    return -1;
  }

  /** Row index of the entry with sequence number seq, or -1. */
  findBySeq(seq) {
    // Sequence numbers usually equal row index + first seq: try that first.
    const guess = seq - this.seq[0];
    if (guess >= 0 && guess < this.n && this.seq[guess] === seq) return guess;
    for (let i = 0; i < this.n; i++) if (this.seq[i] === seq) return i;
    return -1;
  }
}
