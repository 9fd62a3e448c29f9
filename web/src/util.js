// Small helpers shared by the page and the <stele-verifier> element.

/** Re-indents JSON text without parsing numbers, so big integers stay exact. */
export function prettyJson(text) {
  JSON.parse(text); // throws if it is not JSON
  let out = '';
  let depth = 0;
  let inStr = false;
  const nl = () => '\n' + '  '.repeat(depth);
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (inStr) {
      out += ch;
      if (ch === '\\') out += text[++i];
      else if (ch === '"') inStr = false;
      continue;
    }
    switch (ch) {
      case '"':
        inStr = true;
        out += ch;
        break;
      case '{':
      case '[': {
        let j = i + 1;
        while (' \t\r\n'.includes(text[j])) j++;
        if (text[j] === (ch === '{' ? '}' : ']')) {
          out += ch + text[j];
          i = j;
        } else {
          depth++;
          out += ch + nl();
        }
        break;
      }
      case '}':
      case ']':
        depth--;
        out += nl() + ch;
        break;
      case ',':
        out += ',' + nl();
        break;
      case ':':
        out += ': ';
        break;
      case ' ':
      case '\t':
      case '\r':
      case '\n':
        break;
      default:
        out += ch;
    }
  }
  return out;
}

export function formatBytes(n) {
  if (n < 1e3) return `${n} B`;
  if (n < 1e6) return `${(n / 1e3).toFixed(1)} kB`;
  if (n < 1e9) return `${(n / 1e6).toFixed(1)} MB`;
  return `${(n / 1e9).toFixed(2)} GB`;
}

export const fmtInt = (n) => (n == null ? '–' : Number(n).toLocaleString('en-US'));

/** The one word for each verdict, everywhere on the page and in the element. */
export const VERDICT_WORDS = {
  verified: 'Verified',
  partial: 'Partly signed',
  tampered: 'Tampered',
  failed: 'Tampered', // reports from verifiers before the rename
  unverified: 'Unverified',
  not_a_log: 'Not a Stele export',
};

/** The page's state class for a verdict (failed and tampered are one state). */
export function verdictKind(verdict) {
  if (verdict === 'failed') return 'tampered';
  return verdict in VERDICT_WORDS ? verdict : 'unverified';
}

/**
 * Which of the three "unverified" situations a report is in:
 * 'no_key' (no key given), 'key_mismatch' (a signature under a trusted key's
 * name but another key ID: possible impersonation), 'no_trusted_checkpoint'
 * (a key was given, nothing is signed by it), or null.
 */
export function keySituation(report, keysGiven) {
  const codes = new Set((report.notices || []).map((n) => n.code));
  if (codes.has('key_mismatch')) return 'key_mismatch';
  if (codes.has('no_key') || keysGiven === 0) return 'no_key';
  if (codes.has('no_trusted_checkpoint')) return 'no_trusted_checkpoint';
  return null;
}

const plural = (n, one, many = `${one}s`) => `${fmtInt(n)} ${n === 1 ? one : many}`;
export { plural };

export function verdictDetail(report, keysGiven) {
  const kind = report.kind && report.kind !== 'log' ? ` (this export is a ${report.kind}, not a whole log)` : '';
  // docs/FORMAT.md 15: keys the trusted key handed over to sign too.
  const rotated = (report.keys || []).filter((k) => k.entry > 0 && k.trusted).length;
  switch (verdictKind(report.verdict)) {
    case 'verified':
      return `Every entry is intact and signed with the trusted key${rotated ? ` or the ${rotated === 1 ? 'key' : `${fmtInt(rotated)} keys`} it was rotated to (see the key history)` : ''}${kind}.`;
    case 'partial': {
      // The first unsigned entry: core says where (unsigned_from), which can
      // be below tree_size when the largest checkpoint came before entries.
      const n = report.unsigned_from ?? report.tree_size ?? 0;
      const range = report.kind === 'range';
      const first = range ? (report.first_seq ?? 0) : 0;
      const last = range ? report.last_seq : report.entries != null ? report.entries - 1 : null;
      const tail = last != null && last >= n ? (last === n ? `entry ${fmtInt(n)} is` : `entries ${fmtInt(n)}–${fmtInt(last)} are`) : 'the entries after it are';
      const signed = n > first ? `Entries ${fmtInt(first)}–${fmtInt(n - 1)} are intact and signed with the trusted key, but ` : 'No entry in this file is covered by a checkpoint signed with the trusted key: ';
      return `${signed}${tail} not signed: anyone could have added them${kind}.`;
    }
    case 'tampered': {
      // docs/FORMAT.md 14.4: the only failure is the witness quorum. What was
      // signed is intact; what is missing is the witnesses' word that others
      // were shown the same history.
      const failures = report.failures || [];
      const q = report.quorum;
      if (q && failures.length > 0 && failures.length === report.failures_total && failures.every((f) => f.code === 'quorum_not_met')) {
        const by = q.cosigned_by.length ? `only ${q.cosigned_by.map((n) => revealText(n)).join(', ')} cosigned it` : 'none of them cosigned it';
        return `The entries match what the log signed, but not enough of the witness policy's witnesses cosigned the checkpoint (quorum ${q.name} not met: ${by}). Nothing shows that everyone else was shown this same history: it may be a split view${kind}.`;
      }
      return `The log does not match what was signed: ${plural(report.failures_total, 'failure')} found${kind}.`;
    }
    case 'not_a_log': {
      const f = (report.failures || [])[0];
      if (!f) return 'This file is not a Stele export.';
      // core's message is "not a Stele export (FOUND): HINT"; the word above already says the first part
      const at = f.message.indexOf('): ');
      let hint = at >= 0 ? f.message.slice(at + 3) : f.message;
      if (f.found === 'a verifier key') hint = 'it is the key to verify with: paste it as the trusted key, and choose the export file';
      return `This file is ${f.found ?? 'not a Stele export'}: ${hint}.`;
    }
    default:
      if ((report.notices || []).some((n) => n.code === 'empty')) return `This export has no entries: there is nothing to verify${kind}.`;
      switch (keySituation(report, keysGiven)) {
        case 'no_key':
          return `No trusted key was given, so nothing was checked against a signature: the entries are chained, but anyone could have written them${kind}.`;
        case 'key_mismatch':
          return `Warning: the log is signed by a different key that uses the trusted key's name. This is what an impersonation looks like: do not trust this log${kind}.`;
        default:
          return `The trusted key signed nothing in this file, so nothing ties this log to it: it could have been forged${kind}.`;
      }
  }
}

// ---- hidden and bidirectional Unicode ---------------------------------------------

// Characters that change how text displays without being visible, by their
// Unicode properties rather than a hand-kept list: controls (Cc, except line
// feed and tab, handled below), format characters (Cf: bidi embeddings,
// overrides and isolates, zero-width characters, joiners, invisible
// operators, the byte order mark, interlinear annotation, tag characters),
// line and paragraph separators, and every default-ignorable code point
// (variation selectors, their supplement, Hangul fillers, musical symbol
// format characters, shorthand format controls, ...).
const HIDDEN_SRC = '[^\\P{Cc}\\n\\t]|[\\p{Cf}\\p{Zl}\\p{Zp}\\p{Default_Ignorable_Code_Point}]';
const HIDDEN_ALL = new RegExp(`${HIDDEN_SRC}|[\\n\\t]`, 'gu');
const HIDDEN_KEEP_LINES = new RegExp(HIDDEN_SRC, 'gu');

/**
 * The revoked keys (docs/FORMAT.md 15.3) typed into a "Revoked keys" field
 * (file mode and live mode): one VKEY@SIZE per line, or separated by
 * spaces. Core checks each (verify::parse_revoked).
 */
export const revokedList = (text) => text.split(/\s+/).filter(Boolean);

/** True when s has a character that would be invisible or reorder the text around it. */
export function hasHidden(s) {
  if (s == null) return false;
  HIDDEN_KEEP_LINES.lastIndex = 0;
  return HIDDEN_KEEP_LINES.test(s);
}

function escapeOf(ch) {
  const cp = ch.codePointAt(0);
  if (ch === '\n') return '\\n';
  if (ch === '\t') return '\\t';
  return cp > 0xffff ? `\\u{${cp.toString(16).toUpperCase()}}` : `\\u${cp.toString(16).toUpperCase().padStart(4, '0')}`;
}

/** s with every hidden character written as a visible escape (\u202E). */
export function revealText(s, { keepLines = false } = {}) {
  if (s == null) return s;
  return s.replace(keepLines ? HIDDEN_KEEP_LINES : HIDDEN_ALL, escapeOf);
}

/**
 * Fills el with s, each hidden character as a visible escape in a
 * <span class="esc"> (text nodes only, never HTML). Returns true if s had any.
 */
export function setRevealed(el, s, { keepLines = false } = {}) {
  const re = keepLines ? HIDDEN_KEEP_LINES : HIDDEN_ALL;
  re.lastIndex = 0;
  if (s == null || !re.test(s)) {
    if (el.childElementCount || el.textContent !== (s ?? '')) el.textContent = s ?? '';
    return false;
  }
  const parts = [];
  let at = 0;
  re.lastIndex = 0;
  for (let m = re.exec(s); m; m = re.exec(s)) {
    if (m.index > at) parts.push(document.createTextNode(s.slice(at, m.index)));
    const span = document.createElement('span');
    span.className = 'esc';
    span.textContent = escapeOf(m[0]);
    parts.push(span);
    at = m.index + m[0].length;
  }
  if (at < s.length) parts.push(document.createTextNode(s.slice(at)));
  el.replaceChildren(...parts);
  return hasHidden(s);
}

/** Summary rows [label, value] for a report. */
export function summaryRows(report, { identity = false } = {}) {
  const rows = [];
  rows.push(['Origin', report.origin ?? '–']);
  rows.push(['Key', report.key_id ? `${report.key_name ?? ''} (key ID ${report.key_id})`.trim() : 'none matched']);
  let entries = fmtInt(report.entries);
  if (report.first_seq != null) entries += ` (seq ${fmtInt(report.first_seq)} to ${fmtInt(report.last_seq)})`;
  rows.push(['Entries', entries]);
  rows.push(['Time range', report.first_ts ? `${report.first_ts} to ${report.last_ts}` : '–']);
  const cps = report.checkpoints || [];
  const ok = cps.filter((c) => c.status === 'ok').length;
  const bad = cps.filter((c) => c.status === 'mismatch').length;
  let cp = `${fmtInt(ok)} of ${fmtInt(report.checkpoints_total ?? cps.length)} verified`;
  if (bad) cp += `, ${fmtInt(bad)} mismatched`;
  rows.push(['Checkpoints checked', cp]);
  rows.push(['Root (tree size)', report.root ? `${report.root} (${fmtInt(report.tree_size)})` : '–']);
  rows.push(['Bytes read', report.bytes != null ? `${fmtInt(report.bytes)} (${formatBytes(report.bytes)})` : '–']);
  // Sealed fields (docs/FORMAT.md 13.8), as `stele verify --identity` counts them.
  const c = report.sealed_counts;
  if (c?.values) {
    let t = `${fmtInt(c.values)}: ${fmtInt(c.opened ?? 0)} opened, ${fmtInt(c.sealed ?? 0)} sealed`;
    if (c.forgotten) t += `, ${fmtInt(c.forgotten)} forgotten`;
    if (c.redacted) t += `, ${fmtInt(c.redacted)} redacted`;
    // A key that opens nothing is most likely not one the export was revealed to.
    if (identity && !c.opened && c.sealed) t += ' (your auditor key opened none of them: the export was not revealed to it)';
    rows.push(['Sealed values', t]);
  }
  return rows;
}
