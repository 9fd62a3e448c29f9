// Values the entries table did not keep in memory (store.js NOT_KEPT: a
// column past its limit of distinct values), read back from the entries'
// lines in the file: for the rows drawn, and for the rows a filter could not
// decide. Core gives the values (summarizeLines), so a value read back is
// the one the verifier showed.
import { summarizeLines } from './verifier.js';
import { rowMatches } from './filters.js';

/** Bytes read from the file per step. */
const READ_BYTES = 4 << 20;
/** Rows given to core per call. */
const SUMMARY_ROWS = 512;

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
    const end = store.offsetAt(i) + store.length[i];
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
    const bytes = new Uint8Array(await blob.slice(start, store.offsetAt(last) + store.length[last]).arrayBuffer());
    if (await visit(run, (i) => bytes.subarray(store.offsetAt(i) - start, store.offsetAt(i) - start + store.length[i])) === false) return;
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
        if (rowMatches(store, fq, i, valuesOf(sums[j]))) out.push(i);
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
