// Sealed values in the entries table (docs/FORMAT.md 13.2): a cell whose text
// holds placeholders ({"stele.sealed":{...}}) shows, in each one's place, the
// opened value with a mark saying it was checked against its commitment, or
// the word for its state ("sealed" without a key that opens it, "forgotten",
// "redacted", "tampered"). Pure text work over the verifier's findings
// (report.sealed, from stele-core); nothing here decides a state. A
// placeholder's text in a cell is always a placeholder (an object): a string
// whose decoded text would read as one comes from wasm as its JSON text
// (wasm/src/table.rs `shown`), quotes and escapes included.
import { setRevealed } from './util.js';

/** A whole placeholder as canonical JSON writes it. */
const PLACEHOLDER = /\{"stele\.sealed":\{"commitment":"[0-9a-f]{64}","key":"[0-9a-f]{32}"\}\}/g;
/** A placeholder cut short by the table's 200-character limit (the text then ends in …). */
const CUT = /\{"stele\.sealed"[^]*…$/;

/** The words shown for each state, and what they mean (for the title). */
export const SEALED_WORDS = {
  opened: ['✓', 'Sealed value, opened with the auditor key and checked against its commitment in the signed entry'],
  sealed: ['sealed', 'Sealed value: no auditor key given opens it'],
  forgotten: ['forgotten', 'Sealed value whose key the export declares destroyed (a forgotten record: the exporter\'s statement, not checked); not opened; the entry\'s proof still holds'],
  redacted: ['redacted', 'Sealed value whose opening was deleted (stele redact)'],
  mismatch: ['tampered', 'Its opening does not match the commitment in the entry: see the failures'],
};

/** Whether a cell's text holds a placeholder (or the start of one). */
export function hasPlaceholder(text) {
  return text != null && text.includes('{"stele.sealed"');
}

/**
 * The parts of a cell: strings, and one {state, value, pointer} per
 * placeholder in its place. `column` is the event member the cell shows
 * (actor, action, target, outcome, type); `values` the entry's sealed values
 * (report.sealed of that entry, in entry order), absent without a key.
 * Placeholders appear in the text in the order core lists the values (the
 * event's member order), so the n-th placeholder under `/column` is the n-th
 * value whose pointer is `/column` or below it.
 * @param {string} text
 * @param {string} column
 * @param {{pointer: string, state: string, value: string | null}[]} [values]
 * @returns {(string | {state: string, value: string | null, pointer: string | null})[]}
 */
export function sealedParts(text, column, values = []) {
  const base = `/${column}`;
  const mine = values.filter((v) => v.pointer === base || v.pointer.startsWith(`${base}/`));
  /** @type {(string | {state: string, value: string | null, pointer: string | null})[]} */
  const parts = [];
  let at = 0;
  let n = 0;
  const next = () => {
    const v = mine[n++];
    return v ? { state: v.state, value: v.state === 'opened' ? v.value : null, pointer: v.pointer } : { state: 'sealed', value: null, pointer: null };
  };
  PLACEHOLDER.lastIndex = 0;
  for (let m = PLACEHOLDER.exec(text); m; m = PLACEHOLDER.exec(text)) {
    if (m.index > at) parts.push(text.slice(at, m.index));
    parts.push(next());
    at = m.index + m[0].length;
  }
  const rest = text.slice(at);
  const cut = CUT.exec(rest);
  if (cut) {
    if (cut.index > 0) parts.push(rest.slice(0, cut.index));
    parts.push(next(), '…');
  } else if (rest) parts.push(rest);
  // A cell that is one opened string shows the string, as plain cells do.
  if (parts.length === 1 && typeof parts[0] === 'object' && parts[0].value != null && parts[0].value.startsWith('"')) {
    try {
      parts[0] = { ...parts[0], value: JSON.parse(parts[0].value) };
    } catch {
      // not a JSON string after all: shown as its JSON text
    }
  }
  return parts;
}

/** The cell's text as a search sees it: opened values in place, other placeholders as their word. */
export function partsText(parts) {
  return parts.map((p) => (typeof p === 'string' ? p : p.value ?? SEALED_WORDS[p.state]?.[0] ?? p.state)).join('');
}

/**
 * Fills `cell` with `parts`: text as text (never HTML; hidden and
 * text-reversing characters as visible escapes, as in every cell), an opened
 * value followed by a ✓ mark, other states as a labelled badge. Returns
 * whether any text had hidden characters.
 * @param {HTMLElement} cell
 * @param {ReturnType<typeof sealedParts>} parts
 */
export function renderParts(cell, parts) {
  const nodes = [];
  let hidden = false;
  const text = (/** @type {string} */ s, cls) => {
    const span = document.createElement('span');
    if (cls) span.className = cls;
    hidden = setRevealed(span, s) || hidden;
    return span;
  };
  for (const p of parts) {
    if (typeof p === 'string') {
      nodes.push(text(p));
      continue;
    }
    const [word, title] = SEALED_WORDS[p.state] || [p.state, p.state];
    if (p.state === 'opened') {
      const v = text(p.value ?? '', 'sealed-value');
      const mark = document.createElement('span');
      mark.className = 'sealed-mark';
      mark.textContent = word;
      mark.title = title;
      mark.setAttribute('aria-label', 'opened, checked against its commitment');
      nodes.push(mark, v); // the mark first: a long cell is cut at its end
    } else {
      const b = document.createElement('span');
      b.className = `sealed-badge sealed-${p.state}`;
      b.textContent = word;
      b.title = title;
      nodes.push(b);
    }
  }
  cell.replaceChildren(...nodes);
  return hidden;
}

/**
 * What a search finds in an entry's opened values (shown in a column or
 * not): each one's JSON text, and a string's text too, lowercase; null when
 * none was opened.
 * @param {{state: string, value: string | null}[]} values
 * @returns {string | null}
 */
export function openedText(values) {
  const words = [];
  for (const v of values) {
    if (v.state !== 'opened' || v.value == null) continue;
    words.push(v.value);
    if (v.value.startsWith('"')) {
      try {
        words.push(JSON.parse(v.value));
      } catch {
        // shown as JSON text only
      }
    }
  }
  return words.length ? words.join('\n').toLowerCase() : null;
}

const COLUMN_NAMES = ['type', 'actor', 'action', 'target', 'outcome']; // engine.js STRING_COLUMNS

/**
 * What the filters search in rows with sealed values: per row, the opened
 * values (all of the entry's, shown in a column or not) and the columns'
 * texts as shown (opened values in place), lowercase.
 * @param {import('./store.js').EntryStore} store
 * @param {Map<number, {pointer: string, state: string, value: string | null}[]>} byEntry  report.sealed by entry
 * @returns {{text: Map<number, string>, cols: Map<number, (string | null)[]>}}
 */
export function sealedSearch(store, byEntry) {
  const text = new Map();
  const cols = new Map();
  for (const [entry, values] of byEntry) {
    const i = store.findBySeq(entry);
    if (i < 0) continue;
    const words = openedText(values);
    if (words != null) text.set(i, words);
    const shown = COLUMN_NAMES.map((name, c) => {
      const raw = store.str(c, i);
      return hasPlaceholder(raw) ? partsText(sealedParts(raw, name, values)).toLowerCase() : null;
    });
    if (shown.some((t) => t != null)) cols.set(i, shown);
  }
  return { text, cols };
}
