//! The page's table: one compact row per entry line, with the display
//! fields (`event.type`, `actor`, `action`, `target`, `outcome`) interned per
//! column, so that a million-row table costs no allocation per row and each
//! distinct value is stored once. Which columns and how their text is cut is
//! the page's choice, not a rule of the format: it lives here, fed by core's
//! [`EntrySink`].

use std::collections::HashMap;
use std::sync::Arc;
use stele_core::entry::{ParsedEntry, Timestamp};
use stele_core::verify::EntrySink;

/// Display fields are cut to this many characters (then end in `…`).
pub const SUMMARY_CHARS: usize = 200;

/// The code of a value that was not kept (see [`ValueLimit`]): the
/// column already held as many distinct values, or as many bytes, as the
/// limit allows, and the reader takes the value from the entry's line.
pub const NOT_KEPT: u32 = u32::MAX;

/// How many distinct values, and how many bytes of them, each column keeps
/// for [`EntryColumns`]. A log with a unique value per entry (a resource id
/// in `target`) would otherwise keep every one of them for as long as the
/// verifier lives; beyond the limit a row gets the code [`NOT_KEPT`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ValueLimit {
    /// Distinct values per column (codes run from 1 to this).
    pub values: u32,
    /// Bytes of those values per column.
    pub bytes: usize,
}

impl Default for ValueLimit {
    /// No limit: every value is kept.
    fn default() -> Self {
        Self {
            values: NOT_KEPT - 1,
            bytes: usize::MAX,
        }
    }
}

/// The interned columns, in this order: the first five of
/// [`stele_core::canonical::EVENT_FIELDS`], whose spans a parsed entry keeps.
pub const COLUMNS: [&str; 5] = ["type", "actor", "action", "target", "outcome"];

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
    /// Per column of [`COLUMNS`], the code of each row's value ([`NOT_KEPT`]
    /// when the column's [`ValueLimit`] was reached before this value).
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
    line: u64,
    offset: u64,
    length: u64,
    codes: [u32; 5],
}

/// Hashes a column's values. In wasm, std's `RandomState` has fixed keys
/// (no entropy source), so SipHash there buys no resistance to chosen
/// collisions: a multiply-rotate hash over eight bytes at a time is as good
/// and several times cheaper. Native builds keep `RandomState`.
#[cfg(target_arch = "wasm32")]
type ValueHasher = std::hash::BuildHasherDefault<FastHasher>;
#[cfg(not(target_arch = "wasm32"))]
type ValueHasher = std::collections::hash_map::RandomState;

/// FxHash's step (rotate, xor, multiply) over little-endian words.
#[cfg(target_arch = "wasm32")]
#[derive(Default)]
struct FastHasher(u64);

#[cfg(target_arch = "wasm32")]
impl std::hash::Hasher for FastHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut words = bytes.chunks_exact(8);
        for w in &mut words {
            self.add(u64::from_le_bytes([
                w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7],
            ]));
        }
        let rest = words.remainder();
        if !rest.is_empty() {
            let mut w = [0u8; 8];
            w[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(w));
        }
    }

    fn write_usize(&mut self, n: usize) {
        self.add(n as u64);
    }

    fn finish(&self) -> u64 {
        // A product's bits see only the bits of the words at or below
        // them, and the table takes both low and high bits: finish with
        // MurmurHash3's fmix64, which spreads every bit over all of them.
        let mut h = self.0;
        h ^= h >> 33;
        h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^= h >> 33;
        h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        h ^ (h >> 33)
    }
}

#[cfg(target_arch = "wasm32")]
impl FastHasher {
    fn add(&mut self, w: u64) {
        self.0 = (self.0.rotate_left(5) ^ w).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

/// One interned column. Values are kept as the bytes of a display text
/// (always UTF-8: parts of a checked line between the quotes of a string
/// without escapes, or a decoded string), so a row needs no UTF-8 check.
#[derive(Debug, Default)]
struct Column {
    codes: HashMap<Arc<[u8]>, u32, ValueHasher>,
    values: Vec<Arc<[u8]>>,
    /// Values below this index were handed out by [`Table::take_columns`].
    sent: usize,
    /// Bytes of `values`.
    bytes: usize,
}

impl Column {
    fn code(&mut self, value: &[u8], limit: ValueLimit) -> u32 {
        if let Some(&c) = self.codes.get(value) {
            return c;
        }
        if self.values.len() >= limit.values as usize
            || self.bytes.saturating_add(value.len()) > limit.bytes
        {
            return NOT_KEPT;
        }
        self.bytes += value.len();
        let v: Arc<[u8]> = Arc::from(value);
        self.values.push(v.clone());
        let c = self.values.len() as u32;
        let _ = self.codes.insert(v, c);
        c
    }
}

/// A stored value as a string (values are UTF-8, see [`Column`]).
fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Rows collected since the last take, plus the per-column dictionaries.
#[derive(Debug, Default)]
pub struct Table {
    rows: Vec<Row>,
    columns: [Column; 5],
    limit: ValueLimit,
}

impl EntrySink for Table {
    fn entry(&mut self, p: Option<&ParsedEntry<'_>>, line_no: u64, offset: u64, length: u64) {
        let mut codes = [0u32; 5];
        if let Some(p) = p {
            for (n, col) in self.columns.iter_mut().enumerate() {
                codes[n] = match p.field_span(n) {
                    None => 0,
                    Some(raw) => match plain_short(raw) {
                        // The common case: a short string without escapes is its own display text.
                        Some(s) => col.code(s, self.limit),
                        None => match p.field_display(COLUMNS[n]) {
                            Some(s) => col.code(cut(shown(raw, s)).as_bytes(), self.limit),
                            None => 0,
                        },
                    },
                };
            }
        }
        self.rows.push(Row {
            seq: p.map(|p| p.seq),
            ts_us: p.map(|p| p.ts.unix_micros()),
            line: line_no,
            offset,
            length,
            codes,
        });
    }
}

impl Table {
    /// Limits the distinct values each column keeps; later new values get
    /// the code [`NOT_KEPT`]. Takes effect for the rows read after it.
    pub fn limit_values(&mut self, limit: ValueLimit) {
        self.limit = limit;
    }

    /// The rows collected since the last call, in columns; each column's
    /// values first seen since then in `fresh`.
    pub fn take_columns(&mut self) -> EntryColumns {
        let mut out = EntryColumns::default();
        self.take_columns_into(&mut out);
        out
    }

    /// [`Table::take_columns`] written into `out`, whose vectors are
    /// cleared and keep their capacity: a caller taking the rows block after
    /// block into the same `out` allocates nothing once it is large enough.
    pub fn take_columns_into(&mut self, out: &mut EntryColumns) {
        let rows = &self.rows;
        let fill = |v: &mut Vec<f64>, f: &dyn Fn(&Row) -> f64| {
            v.clear();
            v.extend(rows.iter().map(f));
        };
        fill(&mut out.seq, &|r| r.seq.map_or(f64::NAN, |s| s as f64));
        fill(&mut out.ts_us, &|r| r.ts_us.map_or(f64::NAN, |t| t as f64));
        fill(&mut out.line, &|r| r.line as f64);
        fill(&mut out.offset, &|r| r.offset as f64);
        fill(&mut out.length, &|r| r.length as f64);
        out.ts_raw.clear();
        out.ts_raw.extend(
            rows.iter()
                .enumerate()
                .filter(|(_, r)| r.ts_us.is_some_and(|t| t.unsigned_abs() > 1 << 53))
                .filter_map(|(i, r)| {
                    let t = Timestamp::from_unix_micros(r.ts_us?)?;
                    Some((i as u32, t.to_string()))
                }),
        );
        for (n, col) in self.columns.iter_mut().enumerate() {
            out.codes[n].clear();
            out.codes[n].extend(rows.iter().map(|r| r.codes[n]));
            out.fresh[n].clear();
            out.fresh[n].extend(col.values[col.sent..].iter().map(|s| text(s)));
            col.sent = col.values.len();
        }
        self.rows.clear();
    }
}

/// `raw` (a JSON value's text) when it is a string of at most
/// [`SUMMARY_CHARS`] bytes without escapes: its display text is the part
/// between the quotes.
fn plain_short(raw: &[u8]) -> Option<&[u8]> {
    let inner = raw.strip_prefix(b"\"")?.strip_suffix(b"\"")?;
    (inner.len() <= SUMMARY_CHARS && !inner.contains(&b'\\')).then_some(inner)
}

/// The display text of a value whose JSON text is `raw` and decoded text
/// `s`: `s`, but for a string holding `{"stele.sealed"`, which is shown as
/// its JSON text (quotes and escapes included). A placeholder is an object
/// (docs/FORMAT.md 13.2); decoded, such a string would read as one, and the
/// page would draw it as a sealed value.
fn shown(raw: &[u8], s: String) -> String {
    const ESCAPED: &[u8] = br#"{\"stele.sealed\""#;
    if raw.first() == Some(&b'"') && raw.windows(ESCAPED.len()).any(|w| w == ESCAPED) {
        text(raw)
    } else {
        s
    }
}

/// A display text cut to [`SUMMARY_CHARS`] characters.
pub fn cut(s: String) -> String {
    if s.len() > SUMMARY_CHARS && s.chars().count() > SUMMARY_CHARS {
        s.chars().take(SUMMARY_CHARS).collect::<String>() + "…"
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_string_that_reads_as_a_placeholder_once_decoded_is_shown_as_its_json() {
        let raw = br#""{\"stele.sealed\":{\"commitment\":\"aa\",\"key\":\"bb\"}}""#;
        let decoded = r#"{"stele.sealed":{"commitment":"aa","key":"bb"}}"#.to_string();
        assert_eq!(shown(raw, decoded.clone()), text(raw));
        // A placeholder (an object) and other strings keep their display text.
        assert_eq!(shown(decoded.as_bytes(), decoded.clone()), decoded);
        assert_eq!(shown(br#""a\"b""#, "a\"b".to_string()), "a\"b");
    }

    #[test]
    fn the_columns_are_the_fields_whose_spans_an_entry_keeps() {
        assert_eq!(COLUMNS[..], stele_core::canonical::EVENT_FIELDS[..5]);
    }

    #[test]
    fn a_column_keeps_values_up_to_its_limit_and_codes_the_rest_not_kept() {
        let limit = ValueLimit {
            values: 2,
            bytes: usize::MAX,
        };
        let mut c = Column::default();
        assert_eq!(c.code(b"a", limit), 1);
        assert_eq!(c.code(b"b", limit), 2);
        assert_eq!(c.code(b"c", limit), NOT_KEPT);
        // A value kept earlier keeps its code after the limit is reached.
        assert_eq!(c.code(b"a", limit), 1);
        assert_eq!(c.code(b"c", limit), NOT_KEPT);
        assert_eq!(c.values.len(), 2);
        // The byte budget: "xyz" would make 5 bytes of 4.
        let limit = ValueLimit {
            values: 10,
            bytes: 4,
        };
        let mut c = Column::default();
        assert_eq!(c.code(b"ab", limit), 1);
        assert_eq!(c.code(b"xyz", limit), NOT_KEPT);
        assert_eq!(c.code(b"cd", limit), 2);
        assert_eq!(c.code(b"e", limit), NOT_KEPT);
        // Without a limit nothing is refused.
        let mut c = Column::default();
        for i in 0..1000u32 {
            assert_eq!(c.code(&i.to_le_bytes(), ValueLimit::default()), i + 1);
        }
    }
}
