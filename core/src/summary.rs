//! Entry summaries for tables: one compact row per entry line, with the
//! display fields (`event.type`, `actor`, `action`, `target`, `outcome`)
//! interned per column, so that a million-row table costs no allocation per
//! row and each distinct value is stored once.

use crate::entry::ParsedEntry;
use std::collections::HashMap;
use std::sync::Arc;

/// Display fields are cut to this many characters (then end in `…`).
pub const SUMMARY_CHARS: usize = 200;

/// The interned columns, in this order (indices into [`crate::canonical::EVENT_FIELDS`]).
pub const COLUMNS: [&str; 5] = ["type", "actor", "action", "target", "outcome"];

/// A short view of one entry, for tables.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct EntrySummary {
    /// `seq`, if the line parsed.
    pub seq: Option<u64>,
    /// `ts`.
    pub ts: Option<String>,
    /// `ts` as microseconds since the Unix epoch (exact in a JS number until 2255).
    pub ts_us: Option<i64>,
    /// `event.type`.
    #[serde(rename = "type")]
    pub kind: Option<String>,
    /// `event.actor`.
    pub actor: Option<String>,
    /// `event.action`.
    pub action: Option<String>,
    /// `event.target`.
    pub target: Option<String>,
    /// `event.outcome`.
    pub outcome: Option<String>,
    /// 1-based line number.
    pub line: u64,
    /// Byte offset of the line.
    pub offset: u64,
    /// Length of the line without `\n`.
    pub length: u64,
}

/// Entry summaries in columns, as a table in JavaScript takes them: numbers
/// as `f64` (NaN when absent; exact below 2^53) and display fields as codes
/// per column (0 = absent, k = the k-th distinct value of that column).
#[derive(Debug, Default, Clone, PartialEq)]
pub struct EntryColumns {
    /// `seq`.
    pub seq: Vec<f64>,
    /// `ts` in microseconds since the Unix epoch.
    pub ts_us: Vec<f64>,
    /// 1-based line numbers.
    pub line: Vec<f64>,
    /// Byte offsets of the lines.
    pub offset: Vec<f64>,
    /// Lengths of the lines without `\n`.
    pub length: Vec<f64>,
    /// Per column of [`COLUMNS`], the code of each row's value.
    pub codes: [Vec<u32>; 5],
    /// Per column, the values first seen since the previous take, in code order.
    pub fresh: [Vec<String>; 5],
    /// `(row, ts text)` for the rows whose `ts_us` is beyond 2^53 (after
    /// 2255), where the `f64` is not exact and cannot give the text back.
    pub ts_raw: Vec<(u32, String)>,
}

#[derive(Debug, Clone, Copy)]
struct Row {
    seq: Option<u64>,
    ts_us: Option<i64>,
    /// The `ts` text as written (always 27 bytes when the line parsed).
    ts: Option<[u8; 27]>,
    line: u64,
    offset: u64,
    length: u64,
    codes: [u32; 5],
}

#[derive(Debug, Default)]
struct Column {
    codes: HashMap<Arc<str>, u32>,
    values: Vec<Arc<str>>,
    /// Values below this index were handed out by [`Summaries::take_columns`].
    sent: usize,
}

impl Column {
    fn code(&mut self, value: &str) -> u32 {
        if let Some(&c) = self.codes.get(value) {
            return c;
        }
        let v: Arc<str> = Arc::from(value);
        self.values.push(v.clone());
        let c = self.values.len() as u32;
        self.codes.insert(v, c);
        c
    }

    fn value(&self, code: u32) -> Option<String> {
        let i = (code as usize).checked_sub(1)?;
        self.values.get(i).map(|s| s.to_string())
    }
}

/// Collected summaries since the last take, plus the per-column dictionaries.
#[derive(Debug, Default)]
pub(crate) struct Summaries {
    rows: Vec<Row>,
    columns: [Column; 5],
}

impl Summaries {
    pub(crate) fn push(
        &mut self,
        p: Option<&ParsedEntry<'_>>,
        line_no: u64,
        offset: u64,
        length: u64,
    ) {
        let mut codes = [0u32; 5];
        if let Some(p) = p {
            for (n, col) in self.columns.iter_mut().enumerate() {
                codes[n] = match p.field_raw(n) {
                    None => 0,
                    Some(raw) => match plain_short(raw) {
                        // The common case: a short string without escapes is its own display text.
                        Some(s) => col.code(s),
                        None => match p.field_display(COLUMNS[n]) {
                            Some(s) => col.code(&cut(s)),
                            None => 0,
                        },
                    },
                };
            }
        }
        self.rows.push(Row {
            seq: p.map(|p| p.seq),
            ts_us: p.map(|p| p.ts.unix_micros()),
            ts: p.and_then(|p| p.ts_text().as_bytes().try_into().ok()),
            line: line_no,
            offset,
            length,
            codes,
        });
    }

    pub(crate) fn take_entries(&mut self) -> Vec<EntrySummary> {
        let rows = std::mem::take(&mut self.rows);
        let c = &self.columns;
        rows.into_iter()
            .map(|r| EntrySummary {
                seq: r.seq,
                ts: r.ts.map(|t| String::from_utf8_lossy(&t).into_owned()),
                ts_us: r.ts_us,
                kind: c[0].value(r.codes[0]),
                actor: c[1].value(r.codes[1]),
                action: c[2].value(r.codes[2]),
                target: c[3].value(r.codes[3]),
                outcome: c[4].value(r.codes[4]),
                line: r.line,
                offset: r.offset,
                length: r.length,
            })
            .collect()
    }

    pub(crate) fn take_columns(&mut self) -> EntryColumns {
        let rows = std::mem::take(&mut self.rows);
        let num = |f: &dyn Fn(&Row) -> f64| rows.iter().map(f).collect::<Vec<f64>>();
        let mut out = EntryColumns {
            seq: num(&|r| r.seq.map_or(f64::NAN, |s| s as f64)),
            ts_us: num(&|r| r.ts_us.map_or(f64::NAN, |t| t as f64)),
            line: num(&|r| r.line as f64),
            offset: num(&|r| r.offset as f64),
            length: num(&|r| r.length as f64),
            ts_raw: rows
                .iter()
                .enumerate()
                .filter(|(_, r)| r.ts_us.is_some_and(|t| t.unsigned_abs() > 1 << 53))
                .filter_map(|(i, r)| Some((i as u32, std::str::from_utf8(&r.ts?).ok()?.to_owned())))
                .collect(),
            ..EntryColumns::default()
        };
        for (n, col) in self.columns.iter_mut().enumerate() {
            out.codes[n] = rows.iter().map(|r| r.codes[n]).collect();
            out.fresh[n] = col.values[col.sent..]
                .iter()
                .map(|s| s.to_string())
                .collect();
            col.sent = col.values.len();
        }
        out
    }
}

/// `raw` (a JSON value's text) when it is a string of at most
/// [`SUMMARY_CHARS`] bytes without escapes: its display text is the part
/// between the quotes.
fn plain_short(raw: &str) -> Option<&str> {
    let inner = raw.strip_prefix('"')?.strip_suffix('"')?;
    (inner.len() <= SUMMARY_CHARS && !inner.contains('\\')).then_some(inner)
}

/// A display text cut to [`SUMMARY_CHARS`] characters.
pub fn cut(s: String) -> String {
    if s.len() > SUMMARY_CHARS && s.chars().count() > SUMMARY_CHARS {
        s.chars().take(SUMMARY_CHARS).collect::<String>() + "…"
    } else {
        s
    }
}
