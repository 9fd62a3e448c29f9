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

export const VERDICT_WORDS = { verified: 'Verified', failed: 'Tampered', unverified: 'Unverified' };

export function verdictDetail(report) {
  const kind = report.kind && report.kind !== 'log' ? ` (this export is a ${report.kind}, not a whole log)` : '';
  switch (report.verdict) {
    case 'verified':
      return `Every entry is intact and the log is signed with the trusted key${kind}.`;
    case 'failed':
      return `The log does not match what was signed: ${fmtInt(report.failures_total)} ${report.failures_total === 1 ? 'failure' : 'failures'} found${kind}.`;
    default:
      return `No failure was found, but nothing ties this log to the trusted key, so it could have been forged${kind}.`;
  }
}

/** Summary rows [label, value] for a report. */
export function summaryRows(report) {
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
  return rows;
}
