// Values the entries table did not keep in memory (store.js NOT_KEPT: a
// column past its limit of distinct values), read back from the entries'
// lines in the file: for the rows drawn, and for the rows a filter could not
// decide. Core gives the values (summarizeLines), so a value read back is
// the one the verifier showed.
import { readInto } from './blobread.js';
import { summarizeLines } from './verifier.js';
import { rowMatches, RowSet } from './filters.js';
import { PAGE_SHIFT, PAGE_ROWS } from './store.js';
import { STRING_COLUMNS } from './engine.js';
import { hasPlaceholder, openedText, partsText, sealedParts } from './sealed-view.js';

/** Bytes read from the file per step. */
const READ_BYTES = 4 << 20;
/**
 * Bytes read past a paged store's last row for the records that follow it
 * (its sealed values' openings): more than an entry's (at most 64 KiB,
 * FORMAT 7.1) records can take.
 */
const SEALED_TAIL = 1 << 20;
/** Rows given to core per call. */
const SUMMARY_ROWS = 512;

/** Read buffers kept for the next read (readSpan), at most two. */
/** @type {ArrayBuffer[]} */
const spareBuffers = [];

/**
 * Bytes `from` to `to` of `blob`, read (a byte stream, BYOB) into a buffer
 * used again by the next read: the pages read back after a verification
 * (the timeline's exact counts, a search) were a new ArrayBuffer each, tens
 * of MB of dead ones on the page until they were collected. The bytes are
 * valid until `giveBack(bytes)` hands the buffer back. Where a Blob has no byte
 * stream, a new slice's ArrayBuffer. Shorter than asked if the file is.
 * @param {Blob} blob
 * @param {number} from
 * @param {number} to
 * @returns {Promise<Uint8Array>}
 */
async function readSpan(blob, from, to) {
  return readInto(blob, from, to, (n) => {
    const k = spareBuffers.findIndex((b) => b.byteLength >= n);
    return k >= 0 ? spareBuffers.splice(k, 1)[0] : new ArrayBuffer(Math.max(n, 64 << 10));
  });
}

/**
 * Hands the buffer of readSpan's `bytes` back for the next read.
 * @param {Uint8Array} bytes
 */
function giveBack(bytes) {
  const b = bytes.buffer;
  if (b instanceof ArrayBuffer && b.byteLength <= READ_BYTES && spareBuffers.length < 2 && !spareBuffers.includes(b)) spareBuffers.push(b);
}

/** The five column values of a summary (store.js column order). */
function valuesOf(r) {
  return [r.type, r.actor, r.action, r.target, r.outcome];
}

/**
 * Splits ascending store rows into runs whose lines lie within READ_BYTES
 * of the run's first line, so that each run is one read of the file.
 * @returns {number[][]}
 */
function runs(store, rows) {
  const out = [];
  let cur = [];
  let start = 0;
  for (const i of rows) {
    const end = store.offsetAt(i) + store.lengthAt(i);
    if (cur.length && (store.offsetAt(i) < start || end - start > READ_BYTES)) {
      out.push(cur);
      cur = [];
    }
    if (!cur.length) start = store.offsetAt(i);
    cur.push(i);
  }
  if (cur.length) out.push(cur);
  return out;
}

/**
 * Reads each run of rows from `blob` and calls visit(rows, lineOf) where
 * lineOf(i) is the bytes of row i's line.
 */
async function eachRun(blob, store, rows, visit) {
  for (const run of runs(store, rows)) {
    const start = store.offsetAt(run[0]);
    const last = run[run.length - 1];
    const bytes = await readSpan(blob, start, store.offsetAt(last) + store.lengthAt(last));
    try {
      if (await visit(run, (i) => bytes.subarray(store.offsetAt(i) - start, store.offsetAt(i) - start + store.lengthAt(i))) === false) return;
    } finally {
      giveBack(bytes);
    }
  }
}

/**
 * Reads the values of `rows` (ascending store indices whose values were not
 * kept) from `blob` into the store's row-value cache.
 * @param {Blob} blob
 * @param {import('./store.js').EntryStore} store
 * @param {number[]} rows
 */
export async function loadRowValues(blob, store, rows) {
  if (store.paged) {
    await loadPages(blob, store, [...new Set(rows.map((i) => i >> PAGE_SHIFT))]);
    return;
  }
  await eachRun(blob, store, rows, (run, lineOf) => {
    const sums = summarizeLines(run.map(lineOf));
    run.forEach((i, k) => store.setValues(i, valuesOf(sums[k])));
  });
}

// A line of printable ASCII without a backslash holds each of its string
// values as written (no escape to decode, no hidden character to reveal),
// so a query that its lower-case text lacks is in none of its values.
const PLAIN = /^[\x20-\x5b\x5d-\x7e]*$/;
const decoder = new TextDecoder();

/**
 * The rows among `unsure` (ascending store indices that filterRows could not
 * decide) that match filter `fq` (filters.js filterQuery), reading their
 * lines from `blob`. Lines that cannot hold the queries are skipped without
 * asking core. onProgress(done, total) after each read; stops (resolving to
 * null) when cancelled() turns true.
 * @param {Blob} blob
 * @param {import('./store.js').EntryStore} store
 * @param {number[]} unsure
 * @param {NonNullable<ReturnType<typeof import('./filters.js').filterQuery>>} fq
 * @param {{onProgress?: (done: number, total: number) => void, cancelled?: () => boolean}} [o]
 * @returns {Promise<number[] | null>}
 */
export async function settleRows(blob, store, unsure, fq, { onProgress, cancelled } = {}) {
  const needles = [fq.q, fq.qa, fq.qb].filter(Boolean);
  // "…" ends a value cut short: a query with it may match only the shown form.
  const exact = needles.some((q) => q.includes('…'));
  const out = [];
  let done = 0;
  let stopped = false;
  await eachRun(blob, store, unsure, async (run, lineOf) => {
    const ask = [];
    for (const i of run) {
      const line = lineOf(i);
      const text = decoder.decode(line);
      if (exact || !PLAIN.test(text)) ask.push(i);
      else {
        const lower = text.toLowerCase();
        if (needles.every((q) => lower.includes(q))) ask.push(i);
      }
    }
    for (let k = 0; k < ask.length; k += SUMMARY_ROWS) {
      const part = ask.slice(k, k + SUMMARY_ROWS);
      const sums = summarizeLines(part.map(lineOf));
      part.forEach((i, j) => {
        if (rowMatches(fq, { ts: store.tsAt(i), tsText: () => store.tsText(i), seq: store.seqAt(i) }, valuesOf(sums[j]))) out.push(i);
      });
    }
    done += run.length;
    onProgress?.(done, unsure.length);
    await new Promise((r) => setTimeout(r, 0));
    if (cancelled?.()) {
      stopped = true;
      return false;
    }
    return true;
  });
  return stopped ? null : out;
}

// ---- paged stores (store.js PagedStore) -----------------------------------------

/**
 * Reads ascending `pages` of a paged store from `blob`, a span of consecutive
 * pages (up to READ_BYTES) at a time, and calls visit(page, lines) where
 * lines[k] is {line, offset, bytes} of the page's k-th row, found by counting
 * line feeds from the page's first row (the store keeps every row's line),
 * and span, the page's bytes (its rows' lines and the records after them)
 * and where they start in the file. A visit returning false stops the reading.
 * @param {Blob} blob
 * @param {import('./store.js').PagedStore} store
 * @param {number[]} pages
 * @param {(page: number, lines: {line: number, offset: number, bytes: Uint8Array}[], span: {at: number, bytes: Uint8Array}) => unknown} visit
 */
async function eachPage(blob, store, pages, visit) {
  // The last page's span goes on past its last row's line when sealed values
  // are opened: the records of that entry follow it.
  const last = store.pageCount - 1;
  const endOf = (/** @type {number} */ p) => (store.openSealed && p === last ? Math.min(blob.size, store.end + SEALED_TAIL) : store.pageBytes(p).to);
  for (let k = 0; k < pages.length; ) {
    let j = k + 1;
    const { from } = store.pageBytes(pages[k]);
    while (j < pages.length && pages[j] === pages[j - 1] + 1 && endOf(pages[j]) - from <= READ_BYTES) j++;
    const to = endOf(pages[j - 1]);
    const bytes = await readSpan(blob, from, to);
    try {
      if (bytes.length !== to - from) throw new Error(`could not read bytes ${from}–${to} of the file`);
      for (; k < j; k++) {
        const p = pages[k];
        const first = p << PAGE_SHIFT;
        const count = Math.min(PAGE_ROWS, store.n - first);
        let at = store.pageBytes(p).from - from;
        let cur = store.lineAt(first);
        const lines = [];
        for (let r = 0; r < count; r++) {
          const line = store.lineAt(first + r);
          for (; cur < line; cur++) {
            const lf = bytes.indexOf(10, at);
            if (lf < 0) throw new Error(`line ${line} is no longer where it was when verified: was the file changed?`);
            at = lf + 1;
          }
          let end = bytes.indexOf(10, at);
          if (end < 0) end = bytes.length;
          lines.push({ line, offset: from + at, bytes: bytes.subarray(at, end) });
        }
        const spanAt = store.pageBytes(p).from;
        let spanBytes = bytes.subarray(spanAt - from, endOf(p) - from);
        // Past the last row: up to the last whole line read.
        if (p === last && endOf(p) > store.end) spanBytes = spanBytes.subarray(0, Math.max(store.end - spanAt, spanBytes.lastIndexOf(10) + 1));
        if ((await visit(p, lines, { at: spanAt, bytes: spanBytes })) === false) return;
      }
    } finally {
      giveBack(bytes);
    }
  }
}

/** The rows of a page summarized by core, with their line, offset and length in the file. */
function summarizePage(lines) {
  const sums = summarizeLines(lines.map((l) => l.bytes));
  return sums.map((r, k) => ({ ...r, line: lines[k].line, offset: lines[k].offset, length: lines[k].bytes.length }));
}

/**
 * The timestamps (microseconds, NaN for none) of the rows of each of
 * `pages` (ascending) of a paged store, read from the file.
 * @param {Blob} blob
 * @param {import('./store.js').PagedStore} store
 * @param {number[]} pages
 * @returns {Promise<Float64Array[]>}
 */
export async function readPageTimes(blob, store, pages) {
  const out = [];
  await eachPage(blob, store, pages, (p, lines) => {
    out.push(Float64Array.from(summarizeLines(lines.map((l) => l.bytes)), (r) => r.ts_us ?? NaN));
  });
  return out;
}

/**
 * Reads `pages` of a paged store (not read yet) from the file into its cache.
 * @param {Blob} blob
 * @param {import('./store.js').PagedStore} store
 * @param {number[]} pages
 */
export async function loadPages(blob, store, pages) {
  const want = pages.filter((p) => !store.pages.has(p)).sort((a, b) => a - b);
  const epoch = store.epoch;
  await eachPage(blob, store, want, async (p, lines, span) => {
    const rows = summarizePage(lines);
    const sealed = await pageSealed(store, span);
    // Dropped meanwhile (the sealed values came, or went): read again when drawn.
    if (store.epoch !== epoch) return false;
    store.setPage(p, rows, sealed);
  });
}

/** The bytes of `"stele.sealed"`, which every placeholder holds. */
const SEALED_KEY = new TextEncoder().encode('"stele.sealed"');

/** Whether `bytes` hold a placeholder's key. @param {Uint8Array} bytes */
function mayHoldSealed(bytes) {
  const k = SEALED_KEY;
  for (let at = bytes.indexOf(k[0]); at >= 0 && at + k.length <= bytes.length; at = bytes.indexOf(k[0], at + 1)) {
    let j = 1;
    while (j < k.length && bytes[at + j] === k[j]) j++;
    if (j === k.length) return true;
  }
  return false;
}

/**
 * The sealed values of a page's entries by entry (store.openSealed: core's
 * opening pass over the page's bytes), or null: no opener, or no
 * placeholder in the page.
 * @param {import('./store.js').PagedStore} store
 * @param {{at: number, bytes: Uint8Array}} span
 * @returns {Promise<Map<number, import('./index.js').SealedValue[]> | null>}
 */
async function pageSealed(store, span) {
  if (!store.openSealed || !mayHoldSealed(span.bytes)) return null;
  const values = await store.openSealed(span.at, span.bytes);
  if (!values) return null;
  /** @type {Map<number, import('./index.js').SealedValue[]>} */
  const byEntry = new Map();
  for (const v of values) {
    const list = byEntry.get(v.entry);
    if (list) list.push(v);
    else byEntry.set(v.entry, [v]);
  }
  return byEntry;
}

/**
 * The rows of a paged store that match filter `fq` (filters.js filterQuery),
 * read from the file a span at a time: a RowSet, filled as it goes, handed
 * to onProgress(set, done, total) after each span (done, total: pages);
 * resolves to it at the end, or to null when cancelled() turns true.
 * A page whose time span lies outside the time filter is not read; a line
 * of plain text without the searched words is not summarized. failing: the
 * failing rows (with fq.failingOnly, only their pages are read); sealed:
 * sealed-view.js sealedSearch's index (an opened value matches the search);
 * sealedValues(i): row i's sealed values (report.sealed) when a key opened
 * them: its columns match as shown (opened values in place), as in the table.
 * With store.openSealed (no values in memory), each page's values are opened
 * as it is read, and searched the same way (then dropped).
 * @param {Blob} blob
 * @param {import('./store.js').PagedStore} store
 * @param {NonNullable<ReturnType<typeof import('./filters.js').filterQuery>>} fq
 * @param {{failingOnly?: boolean, failing?: Set<number>, sealed?: {text: Map<number, string>} | null, sealedValues?: (i: number) => {pointer: string, state: string, value: string | null}[] | undefined, onProgress?: (set: RowSet, done: number, total: number) => void, cancelled?: () => boolean}} [o]
 * @returns {Promise<RowSet | null>}
 */
export async function scanRows(blob, store, fq, { failingOnly = false, failing = new Set(), sealed = null, sealedValues = () => undefined, onProgress, cancelled } = {}) {
  const set = new RowSet(store.n);
  const needles = [fq.q, fq.qa, fq.qb].filter(Boolean);
  const exact = needles.some((q) => q.includes('…'));
  const timed = !Number.isNaN(fq.from) || !Number.isNaN(fq.to);
  const from = Number.isNaN(fq.from) ? -Infinity : fq.from;
  const to = Number.isNaN(fq.to) ? Infinity : fq.to;
  /** @type {number[]} */
  let pages = [];
  if (failingOnly) pages = [...new Set([...failing].map((i) => i >> PAGE_SHIFT))].sort((a, b) => a - b);
  const total = failingOnly ? pages.length : store.pageCount;
  const read = [];
  for (let p = 0; p < total; p++) {
    const page = failingOnly ? pages[p] : p;
    const first = page << PAGE_SHIFT;
    const count = Math.min(PAGE_ROWS, store.n - first);
    if (timed && !failingOnly) {
      // Decided by the page's time span: no row in the range, or every row (and nothing else asked).
      if (store.pageMax[page] < from || store.pageMin[page] > to) continue;
      if (!needles.length && store.pageUntimed[page] === 0 && store.pageMin[page] >= from && store.pageMax[page] <= to) {
        for (let r = 0; r < count; r++) set.add(first + r);
        continue;
      }
    }
    read.push(page);
  }
  let done = total - read.length;
  let stopped = false;
  let shown = performance.now();
  await eachPage(blob, store, read, async (page, lines, span) => {
    const first = page << PAGE_SHIFT;
    // This page's values opened now (store.openSealed), by entry: the rows' own lookups otherwise.
    const opened = needles.length ? await pageSealed(store, span) : null;
    /** Whether row i (line text `text`) has sealed values to search as shown. @param {number} i @param {string} text */
    const withSealed = (i, text) => (opened ? opened.size > 0 && text.includes('"stele.sealed"') : sealedValues(i) != null);
    const ask = [];
    for (let r = 0; r < lines.length; r++) {
      const i = first + r;
      if (failingOnly && !failing.has(i)) continue;
      const text = needles.length ? decoder.decode(lines[r].bytes) : '';
      if (!needles.length || exact || !PLAIN.test(text) || withSealed(i, text)) ask.push(r);
      else {
        const lower = text.toLowerCase();
        if (needles.every((q) => lower.includes(q))) ask.push(r);
      }
    }
    if (ask.length) {
      const sums = summarizeLines(ask.map((r) => lines[r].bytes));
      ask.forEach((r, k) => {
        const s = sums[k];
        const i = first + r;
        const row = { ts: s.ts_us ?? NaN, tsText: () => s.ts ?? '', seq: s.seq ?? NaN };
        /** @type {(string | null)[]} */
        let values = valuesOf(s);
        const sv = opened ? opened.get(s.seq ?? NaN) : sealedValues(i);
        if (sv) {
          // A sealed value matches as stored and as shown; the search also finds the entry's opened values.
          values = values.map((v, c) => (hasPlaceholder(v) ? `${v}\u0000${partsText(sealedParts(v, STRING_COLUMNS[c], sv))}` : v));
          values.push(opened ? openedText(sv) : (sealed?.text.get(i) ?? null));
        }
        if (rowMatches(fq, row, values)) set.add(i);
      });
    }
    done++;
    const now = performance.now();
    if (now - shown > 100 || done === total) {
      shown = now;
      onProgress?.(set, done, total);
      await new Promise((r) => setTimeout(r, 0));
      if (cancelled?.()) {
        stopped = true;
        return false;
      }
    }
    return true;
  });
  if (stopped) return null;
  onProgress?.(set, total, total);
  return set;
}
