//! Entries: one canonical JSON line each, holding `seq`, `ts`, `prev` and `event`.
//!
//! ```text
//! {"event":{"action":"login","actor":"alice"},"prev":"<64 hex>","seq":1,"ts":"2026-11-26T12:00:00.000001Z"}
//! ```

use crate::canonical::{self, Captures, EVENT_FIELDS, JsonError, quote};
use crate::hash::Hash;
use serde_json::Value;
use std::fmt;

/// The largest entry, in bytes without its `\n`: it must fit a C2SP
/// tlog-tiles entry bundle (a 16-bit length prefix).
pub const MAX_ENTRY_BYTES: usize = 65_535;
/// `prev` of entry 0.
pub const ZERO_PREV: Hash = Hash([0; 32]);
/// Event type of entry 0.
pub const GENESIS_TYPE: &str = "stele.genesis";
/// Event types that begin with this are reserved for Stele itself.
pub const RESERVED_PREFIX: &str = "stele.";
/// Largest `seq` (and so largest log): 2^53 - 1, the largest integer that
/// every JSON reader holds exactly.
pub const MAX_SEQ: u64 = (1 << 53) - 1;

/// A timestamp in Stele's one form: RFC 3339, UTC, microseconds, `Z`
/// (`2026-11-26T12:00:00.000000Z`). Fixed width, so text order is time order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

impl Timestamp {
    /// From microseconds since 1970-01-01T00:00:00Z. Years 0000 to 9999 only.
    pub fn from_unix_micros(us: i64) -> Option<Self> {
        // 0000-01-01 .. 9999-12-31T23:59:59.999999
        const MIN: i64 = -62_167_219_200_000_000;
        const MAX: i64 = 253_402_300_799_999_999;
        (MIN..=MAX).contains(&us).then_some(Self(us))
    }

    /// Microseconds since the Unix epoch.
    pub fn unix_micros(self) -> i64 {
        self.0
    }

    /// Parses exactly `YYYY-MM-DDTHH:MM:SS.ffffffZ`.
    pub fn parse(s: &[u8]) -> Option<Self> {
        if s.len() != 27 {
            return None;
        }
        let sep = [
            (4, b'-'),
            (7, b'-'),
            (10, b'T'),
            (13, b':'),
            (16, b':'),
            (19, b'.'),
            (26, b'Z'),
        ];
        if sep.iter().any(|&(i, c)| s[i] != c) {
            return None;
        }
        let num = |a: usize, b: usize| -> Option<i64> {
            let mut v = 0i64;
            for &c in &s[a..b] {
                if !c.is_ascii_digit() {
                    return None;
                }
                v = v * 10 + i64::from(c - b'0');
            }
            Some(v)
        };
        let (y, mo, d) = (num(0, 4)?, num(5, 7)?, num(8, 10)?);
        let (h, mi, se, us) = (num(11, 13)?, num(14, 16)?, num(17, 19)?, num(20, 26)?);
        if !(1..=12).contains(&mo)
            || d < 1
            || d > days_in_month(y, mo)
            || h > 23
            || mi > 59
            || se > 59
        {
            return None;
        }
        let days = days_from_civil(y, mo, d);
        Some(Self(
            ((days * 24 + h) * 60 + mi) * 60_000_000 + se * 1_000_000 + us,
        ))
    }
}

impl Timestamp {
    /// The one text form, `YYYY-MM-DDTHH:MM:SS.ffffffZ`, as bytes (what
    /// [`Display`](fmt::Display) writes; without the formatting machinery,
    /// for building lines).
    pub fn to_text(self) -> [u8; 27] {
        // Writes `v` as `t.len()` decimal digits (values here are never
        // negative, and fit: years are 0000..9999).
        fn digits(t: &mut [u8], mut v: i64) {
            for c in t.iter_mut().rev() {
                *c = b'0' + (v % 10) as u8;
                v /= 10;
            }
        }
        let us = self.0.rem_euclid(1_000_000);
        let secs = self.0.div_euclid(1_000_000);
        let days = secs.div_euclid(86_400);
        let sod = secs.rem_euclid(86_400);
        let (y, m, d) = civil_from_days(days);
        let mut t = *b"0000-00-00T00:00:00.000000Z";
        digits(&mut t[0..4], y);
        digits(&mut t[5..7], m);
        digits(&mut t[8..10], d);
        digits(&mut t[11..13], sod / 3600);
        digits(&mut t[14..16], sod / 60 % 60);
        digits(&mut t[17..19], sod % 60);
        digits(&mut t[20..26], us);
        t
    }
}

/// A timestamp's text ([`Timestamp::to_text`]), made once for the many lines
/// of a batch that share it ([`push_entry_line_hashed`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimestampText([u8; 27]);

impl From<Timestamp> for TimestampText {
    fn from(ts: Timestamp) -> Self {
        Self(ts.to_text())
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // ASCII digits and separators: always UTF-8.
        f.write_str(std::str::from_utf8(&self.to_text()).unwrap_or_default())
    }
}

fn is_leap(y: i64) -> bool {
    y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// Why an entry line was rejected. Each variant has a stable code.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum EntryError {
    /// The line starts with a UTF-8 byte order mark.
    Bom,
    /// The line ends in `\r` (a CRLF line end).
    Crlf,
    /// The line is longer than [`MAX_ENTRY_BYTES`].
    TooLong(usize),
    /// The line is not valid UTF-8; the byte offset of the first bad byte.
    InvalidUtf8(usize),
    /// The line is not canonical JSON (or not JSON).
    Json(JsonError),
    /// The line is JSON but not an object.
    NotObject,
    /// A required member is missing.
    MissingField(&'static str),
    /// A top-level member other than `event`, `prev`, `seq`, `ts`.
    UnexpectedField(String),
    /// A member has the wrong type or form.
    BadField {
        /// The member's name.
        field: &'static str,
        /// What is wrong.
        why: String,
    },
}

impl EntryError {
    /// The stable failure code (see docs/FORMAT.md).
    pub fn code(&self) -> crate::codes::FailureCode {
        use crate::codes::FailureCode as C;
        match self {
            Self::Bom => C::Bom,
            Self::Crlf => C::Crlf,
            Self::TooLong(_) => C::LineTooLong,
            Self::InvalidUtf8(_) => C::InvalidUtf8,
            Self::Json(e) => match e.kind {
                canonical::JsonErrorKind::Syntax(_) => C::InvalidJson,
                canonical::JsonErrorKind::NotCanonical(_) => C::NotCanonical,
                canonical::JsonErrorKind::DuplicateKey(_) => C::DuplicateKey,
                canonical::JsonErrorKind::TooDeep => C::TooDeep,
            },
            Self::NotObject
            | Self::MissingField(_)
            | Self::UnexpectedField(_)
            | Self::BadField { .. } => C::BadEntry,
        }
    }
}

impl fmt::Display for EntryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Bom => f.write_str("line starts with a byte order mark (U+FEFF)"),
            Self::Crlf => f.write_str("line ends in CR LF; entries end in LF alone"),
            Self::TooLong(n) => write!(
                f,
                "line is {n} bytes, more than the limit of {MAX_ENTRY_BYTES}"
            ),
            Self::InvalidUtf8(at) => write!(f, "invalid UTF-8 at byte {at} of the line"),
            Self::Json(e) => write!(f, "{e}"),
            Self::NotObject => f.write_str("line is not a JSON object"),
            Self::MissingField(name) => write!(f, "missing field {}", quote(name)),
            Self::UnexpectedField(name) => write!(
                f,
                "unexpected field {} (entries have only event, prev, seq, ts)",
                quote(name)
            ),
            Self::BadField { field, why } => write!(f, "field {} {why}", quote(field)),
        }
    }
}

impl std::error::Error for EntryError {}

/// A checked entry line: canonical JSON with well-formed members.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedEntry<'a> {
    /// The line, without `\n`.
    pub line: &'a [u8],
    /// `seq`.
    pub seq: u64,
    /// `ts`.
    pub ts: Timestamp,
    /// `prev`.
    pub prev: Hash,
    /// Span of the `event` object in `line`.
    pub event: (usize, usize),
    /// Spans of the event's `type`, `actor`, `action`, `target`, `outcome`, `origin`, `key`.
    pub event_fields: [Option<(usize, usize)>; 7],
}

/// A [`ParsedEntry`] without its line, to keep or send between threads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryFields {
    seq: u64,
    ts: Timestamp,
    prev: Hash,
    event: (usize, usize),
    event_fields: [Option<(usize, usize)>; 7],
}

impl EntryFields {
    /// Size of [`EntryFields::encode`]'s output: seq, ts, prev, then the
    /// spans of `event` and of the seven event fields as two u16 each
    /// (entry lines are at most [`MAX_ENTRY_BYTES`] bytes).
    pub const ENCODED_LEN: usize = 8 + 8 + 32 + 8 * 4;

    /// A fixed-size binary form, to hand fields between threads or workers.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_bytes());
    }

    /// [`EntryFields::encode`]'s form as an array.
    pub fn to_bytes(&self) -> [u8; Self::ENCODED_LEN] {
        let mut b = [0u8; Self::ENCODED_LEN];
        b[0..8].copy_from_slice(&self.seq.to_le_bytes());
        b[8..16].copy_from_slice(&self.ts.unix_micros().to_le_bytes());
        b[16..48].copy_from_slice(&self.prev.0);
        let spans = std::iter::once(Some(self.event)).chain(self.event_fields);
        for (o, s) in b[48..].chunks_exact_mut(4).zip(spans) {
            // Absent: (MAX, 0). A span that does not fit (never from a
            // parsed entry) is written as (MAX, 1), which does not decode.
            let (a, z) = match s {
                None => (u16::MAX, 0),
                Some((a, z)) => match (u16::try_from(a), u16::try_from(z)) {
                    (Ok(a), Ok(z)) => (a, z),
                    _ => (u16::MAX, 1),
                },
            };
            o[..2].copy_from_slice(&a.to_le_bytes());
            o[2..].copy_from_slice(&z.to_le_bytes());
        }
        b
    }

    /// Reads [`EntryFields::encode`]'s form; `None` if it is not one, or if
    /// a span does not fit a line of `line_len` bytes.
    pub fn decode(b: &[u8], line_len: usize) -> Option<Self> {
        if b.len() != Self::ENCODED_LEN {
            return None;
        }
        let u64_at = |i: usize| u64::from_le_bytes(b[i..i + 8].try_into().unwrap_or_default());
        let span = |i: usize| -> Option<Option<(usize, usize)>> {
            let a = u16::from_le_bytes([b[i], b[i + 1]]);
            let z = u16::from_le_bytes([b[i + 2], b[i + 3]]);
            if (a, z) == (u16::MAX, 0) {
                return Some(None);
            }
            let (a, z) = (usize::from(a), usize::from(z));
            (a <= z && z <= line_len).then_some(Some((a, z)))
        };
        let mut prev = [0u8; 32];
        prev.copy_from_slice(&b[16..48]);
        let mut event_fields = [None; 7];
        for (k, f) in event_fields.iter_mut().enumerate() {
            *f = span(52 + 4 * k)?;
        }
        Some(Self {
            seq: u64_at(0),
            ts: Timestamp::from_unix_micros(u64_at(8) as i64)?,
            prev: Hash(prev),
            event: span(48)??,
            event_fields,
        })
    }

    /// Joins the fields again with the line they were parsed from.
    pub fn with_line(self, line: &[u8]) -> ParsedEntry<'_> {
        ParsedEntry {
            line,
            seq: self.seq,
            ts: self.ts,
            prev: self.prev,
            event: self.event,
            event_fields: self.event_fields,
        }
    }
}

impl<'a> ParsedEntry<'a> {
    /// The fields without the line.
    pub fn fields(&self) -> EntryFields {
        EntryFields {
            seq: self.seq,
            ts: self.ts,
            prev: self.prev,
            event: self.event,
            event_fields: self.event_fields,
        }
    }

    /// The event object's JSON text.
    pub fn event_json(&self) -> &'a str {
        std::str::from_utf8(&self.line[self.event.0..self.event.1]).unwrap_or("")
    }

    /// The event's `type` if it is a string (escapes left as written).
    pub fn event_type(&self) -> Option<&'a str> {
        self.field_raw(0)
            .and_then(|s| s.strip_prefix('"')?.strip_suffix('"'))
    }

    /// An event field's value if it is a JSON string, decoded.
    pub fn field_string(&self, name: &str) -> Option<String> {
        let n = EVENT_FIELDS.iter().position(|f| *f == name)?;
        let inner = self.field_raw(n)?.strip_prefix('"')?.strip_suffix('"')?;
        canonical::unescape(inner.as_bytes())
    }

    /// The `ts` text as written (the line is canonical, so it is the last member).
    pub fn ts_text(&self) -> &'a str {
        let n = self.line.len();
        std::str::from_utf8(&self.line[n - 29..n - 2]).unwrap_or("")
    }

    /// The raw JSON text of one of [`EVENT_FIELDS`] (by index).
    pub fn field_raw(&self, n: usize) -> Option<&'a str> {
        let (a, b) = self.event_fields[n]?;
        std::str::from_utf8(&self.line[a..b]).ok()
    }

    /// The raw JSON bytes of one of [`EVENT_FIELDS`] (by index), unchecked
    /// as UTF-8 (the line was checked whole).
    pub fn field_span(&self, n: usize) -> Option<&'a [u8]> {
        let (a, b) = self.event_fields[n]?;
        self.line.get(a..b)
    }

    /// A display value of an event field: a string's contents, or other JSON as text.
    pub fn field_display(&self, name: &str) -> Option<String> {
        let n = EVENT_FIELDS.iter().position(|f| *f == name)?;
        let raw = self.field_raw(n)?;
        if let Some(plain) = raw
            .strip_prefix('"')
            .and_then(|r| r.strip_suffix('"'))
            .filter(|r| !r.contains('\\'))
        {
            // No escapes: the text between the quotes is the string.
            Some(plain.to_string())
        } else if let Some(inner) = raw.strip_prefix('"').and_then(|r| r.strip_suffix('"')) {
            canonical::unescape(inner.as_bytes())
        } else {
            Some(raw.to_string())
        }
    }
}

/// Checks one entry line (without its `\n`): size, encoding, canonical JSON,
/// and the form of each member. Chain rules (seq order, prev) are the
/// verifier's job.
pub fn parse_entry(line: &[u8]) -> Result<ParsedEntry<'_>, EntryError> {
    match parse_entry_fast(line) {
        Some(p) => Ok(p),
        None => parse_entry_general(line),
    }
}

/// [`parse_entry`] for any line: the whole line through the validator.
fn parse_entry_general(line: &[u8]) -> Result<ParsedEntry<'_>, EntryError> {
    if line.len() > MAX_ENTRY_BYTES {
        return Err(EntryError::TooLong(line.len()));
    }
    if line.starts_with(&[0xEF, 0xBB, 0xBF]) {
        return Err(EntryError::Bom);
    }
    if line.last() == Some(&b'\r') {
        return Err(EntryError::Crlf);
    }
    if let Err(e) = std::str::from_utf8(line) {
        return Err(EntryError::InvalidUtf8(e.valid_up_to()));
    }
    if line.first() != Some(&b'{') {
        return Err(match canonical::validate(line) {
            Err(e) => EntryError::Json(e),
            Ok(_) => EntryError::NotObject,
        });
    }
    let caps: Captures = canonical::validate(line).map_err(EntryError::Json)?;
    if let Some((a, b)) = caps.unexpected {
        return Err(EntryError::UnexpectedField(
            String::from_utf8_lossy(&line[a..b]).into_owned(),
        ));
    }
    let span = |s: Option<(usize, usize)>, name: &'static str| {
        s.map(|(a, b)| &line[a..b])
            .ok_or(EntryError::MissingField(name))
    };
    let event = caps.event.ok_or(EntryError::MissingField("event"))?;
    if line[event.0] != b'{' {
        return Err(EntryError::BadField {
            field: "event",
            why: "is not a JSON object".into(),
        });
    }
    let seq_s = span(caps.seq, "seq")?;
    if !seq_s.iter().all(u8::is_ascii_digit) {
        return Err(EntryError::BadField {
            field: "seq",
            why: format!(
                "is {}, not a non-negative integer",
                String::from_utf8_lossy(seq_s)
            ),
        });
    }
    let seq: u64 = std::str::from_utf8(seq_s)
        .ok()
        .and_then(|s| s.parse().ok())
        .filter(|&n| n <= MAX_SEQ)
        .ok_or_else(|| EntryError::BadField {
            field: "seq",
            why: format!("is {}, larger than 2^53-1", String::from_utf8_lossy(seq_s)),
        })?;
    let ts_s = span(caps.ts, "ts")?;
    let ts = ts_s
        .strip_prefix(b"\"")
        .and_then(|s| s.strip_suffix(b"\""))
        .and_then(Timestamp::parse)
        .ok_or_else(|| EntryError::BadField {
            field: "ts",
            why: format!(
                "is {}, not a UTC time like \"2026-11-26T12:00:00.000000Z\"",
                String::from_utf8_lossy(ts_s)
            ),
        })?;
    let prev_s = span(caps.prev, "prev")?;
    let prev = prev_s
        .strip_prefix(b"\"")
        .and_then(|s| s.strip_suffix(b"\""))
        .and_then(Hash::from_hex)
        .ok_or_else(|| EntryError::BadField {
            field: "prev",
            why: format!(
                "is {}, not 64 lowercase hex digits",
                String::from_utf8_lossy(prev_s)
            ),
        })?;
    Ok(ParsedEntry {
        line,
        seq,
        ts,
        prev,
        event,
        event_fields: caps.event_fields,
    })
}

/// [`parse_entry`] of a line in the one form a valid entry has, checked
/// piece by piece: `{"event":` then the event object (the general validator
/// runs on that part only), then exactly `,"prev":"<64 hex>","seq":<digits>,
/// "ts":"<timestamp>"}`. `None` if anything differs, and then
/// [`parse_entry`] takes the general path, which also finds the error; when
/// it returns an entry, the general path returns the same one (the fixed
/// parts are ASCII, in key order, and are what the general path accepts).
fn parse_entry_fast(line: &[u8]) -> Option<ParsedEntry<'_>> {
    const HEAD: usize = b"{\"event\":".len();
    const TAIL: usize = b",\"ts\":\"".len() + 27 + b"\"}".len();
    if line.len() > MAX_ENTRY_BYTES || !line.starts_with(b"{\"event\":{") {
        return None;
    }
    // The validator checks the event's strings as UTF-8 (its other bytes are
    // ASCII or it fails), so the event needs no `from_utf8` of its own.
    let (end, event_fields) = canonical::validate_event(line, HEAD)?;
    let rest = line[end..].strip_prefix(b",\"prev\":\"")?;
    let (prev, rest) = rest.split_at_checked(64)?;
    let rest = rest.strip_prefix(b"\",\"seq\":")?;
    let (seq, tail) = rest.split_at_checked(rest.len().checked_sub(TAIL)?)?;
    let ts = tail.strip_prefix(b",\"ts\":\"")?.strip_suffix(b"\"}")?;
    // At most 15 digits: a plain integer to the validator, and below MAX_SEQ.
    if seq.is_empty()
        || seq.len() > 15
        || (seq[0] == b'0' && seq.len() > 1)
        || !seq.iter().all(u8::is_ascii_digit)
    {
        return None;
    }
    Some(ParsedEntry {
        line,
        seq: seq.iter().fold(0, |n, &d| n * 10 + u64::from(d - b'0')),
        ts: Timestamp::parse(ts)?,
        prev: Hash::from_hex(prev)?,
        event: (HEAD, end),
        event_fields,
    })
}

/// Why an entry could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// The event is not a JSON object.
    #[error("event is not a JSON object")]
    NotObject,
    /// The event cannot be written as canonical JSON.
    #[error("event cannot be written as canonical JSON: {0}")]
    NotCanonical(String),
    /// The event is too large.
    #[error("entry would be {0} bytes, more than the limit of {MAX_ENTRY_BYTES}")]
    TooLarge(usize),
    /// The event nests deeper than the limit.
    #[error("event nests deeper than {} levels", canonical::MAX_DEPTH - 1)]
    TooDeep,
}

/// Parses the text of an event for a new entry with
/// [`canonical::parse_strict`]'s rules and the nesting limit of an event
/// inside a line: one message for any depth beyond it.
pub fn parse_event(text: &str) -> Result<Value, String> {
    canonical::parse_strict_depth(text, canonical::MAX_DEPTH - 1).map_err(|(e, deep)| match deep {
        Some(at) => format!("{} (at byte {at})", BuildError::TooDeep),
        None => e,
    })
}

/// The canonical text of an event, as it stands inside an entry line.
#[cfg(feature = "std-float")]
pub fn canonical_event(event: &Value) -> Result<String, BuildError> {
    let mut out = String::new();
    canonical_event_into(event, &mut out)?;
    Ok(out)
}

/// [`canonical_event`] appended to `out` (to build many events into one
/// buffer); on an error `out` is left as it was.
#[cfg(feature = "std-float")]
pub fn canonical_event_into(event: &Value, out: &mut String) -> Result<(), BuildError> {
    canonical_event_into_swapped(event, out, &canonical::NoSwap)
}

/// [`canonical_event_into`] of the event with the values of `swap` replaced.
#[cfg(feature = "std-float")]
pub(crate) fn canonical_event_into_swapped(
    event: &Value,
    out: &mut String,
    swap: &impl canonical::Swap,
) -> Result<(), BuildError> {
    if !event.is_object() {
        return Err(BuildError::NotObject);
    }
    // Inside a line the event is one level down.
    if canonical::depth_swapped(event, swap) >= canonical::MAX_DEPTH {
        return Err(BuildError::TooDeep);
    }
    let start = out.len();
    canonical::write_canonical_swapped(out, event, swap).map_err(|e| {
        out.truncate(start);
        BuildError::NotCanonical(e)
    })
}

/// Builds an entry line (without `\n`) around an event already in canonical
/// form (from [`canonical_event`]), so the expensive part can be done before
/// seq, ts and prev are known.
pub fn entry_line_from_canonical(
    event: &str,
    seq: u64,
    ts: Timestamp,
    prev: &Hash,
) -> Result<String, BuildError> {
    let mut line = Vec::new();
    let _ = push_entry_line(&mut line, event, seq, ts, prev)?;
    // The event is a `str` and the rest is ASCII: never an error.
    String::from_utf8(line).map_err(|e| BuildError::NotCanonical(e.to_string()))
}

/// `n` in decimal, written at the end of `buf` (the text `write!` gives,
/// without the formatting machinery: it runs for every line built and every
/// sealed value's record).
pub fn decimal(mut n: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut at = buf.len();
    loop {
        at -= 1;
        buf[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return &buf[at..];
        }
    }
}

// An entry line up to its event, and from the event to `prev`'s digits.
const HEAD: &[u8] = b"{\"event\":";
const PREV: &[u8] = b",\"prev\":\"";

/// The leaf hash of an entry line fed as far as the line is known before
/// its `seq`, `ts` and `prev`: `0x00`, `{"event":`, the event, `,"prev":"`
/// (the line's fields are in key order, `event` first). A writer computes
/// it for many events in parallel; [`push_entry_line_hashed`] then only
/// hashes the rest of each line in chain order (each line holds the leaf
/// hash of the one before). For a 200-byte event that is 3 of the line's 6
/// SHA-256 blocks off the serial path.
#[derive(Clone)]
pub struct LinePrefix(sha2::Sha256);

impl fmt::Debug for LinePrefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("LinePrefix")
    }
}

impl LinePrefix {
    /// The prefix of the line of `event` (canonical text, as for
    /// [`push_entry_line`]).
    pub fn new(event: &str) -> Self {
        use sha2::Digest;
        let mut h = sha2::Sha256::new();
        h.update([0u8]);
        h.update(HEAD);
        h.update(event.as_bytes());
        h.update(PREV);
        Self(h)
    }
}

/// [`push_entry_line`], also returning the line's leaf hash
/// ([`crate::hash::leaf_hash`] of the bytes appended), finished from
/// `prefix`, which must be [`LinePrefix::new`] of the same `event`.
pub fn push_entry_line_hashed(
    out: &mut Vec<u8>,
    event: &str,
    seq: u64,
    ts: &TimestampText,
    prev: &Hash,
    prefix: &LinePrefix,
) -> Result<(usize, Hash), BuildError> {
    use sha2::Digest;
    let start = out.len();
    let len = push_line_with(out, event, seq, ts, prev)?;
    let mut h = prefix.0.clone();
    h.update(&out[start + HEAD.len() + event.len() + PREV.len()..]);
    let hash = Hash(h.finalize().into());
    debug_assert_eq!(hash, crate::hash::leaf_hash(&out[start..]));
    Ok((len, hash))
}

/// [`entry_line_from_canonical`] appended to `out` (no allocation when `out`
/// has room): returns the line's length. On an error nothing is appended.
/// Layout (keys in canonical order, `ts` last):
/// `{"event":EVENT,"prev":"<64 hex>","seq":SEQ,"ts":"<timestamp>"}`.
pub fn push_entry_line(
    out: &mut Vec<u8>,
    event: &str,
    seq: u64,
    ts: Timestamp,
    prev: &Hash,
) -> Result<usize, BuildError> {
    push_line_with(out, event, seq, &ts.into(), prev)
}

fn push_line_with(
    out: &mut Vec<u8>,
    event: &str,
    seq: u64,
    ts: &TimestampText,
    prev: &Hash,
) -> Result<usize, BuildError> {
    const SEQ: &[u8] = b"\",\"seq\":";
    const TS: &[u8] = b",\"ts\":\"";
    const END: &[u8] = b"\"}";
    let mut digits = [0u8; 20];
    let seq_text = decimal(seq, &mut digits);
    let len = HEAD.len()
        + event.len()
        + PREV.len()
        + 64
        + SEQ.len()
        + seq_text.len()
        + TS.len()
        + 27
        + END.len();
    if len > MAX_ENTRY_BYTES {
        return Err(BuildError::TooLarge(len));
    }
    let start = out.len();
    out.reserve(len);
    out.extend_from_slice(HEAD);
    out.extend_from_slice(event.as_bytes());
    out.extend_from_slice(PREV);
    out.extend_from_slice(&prev.hex_bytes());
    out.extend_from_slice(SEQ);
    out.extend_from_slice(seq_text);
    out.extend_from_slice(TS);
    out.extend_from_slice(&ts.0);
    out.extend_from_slice(END);
    debug_assert_eq!(out.len() - start, len);
    debug_assert!(
        canonical::validate(&out[start..]).is_ok(),
        "serializer wrote a non-canonical line: {}",
        String::from_utf8_lossy(&out[start..])
    );
    Ok(len)
}

/// Builds the canonical line (without `\n`) of an entry.
#[cfg(feature = "std-float")]
pub fn entry_line(
    seq: u64,
    ts: Timestamp,
    prev: &Hash,
    event: &Value,
) -> Result<String, BuildError> {
    entry_line_from_canonical(&canonical_event(event)?, seq, ts, prev)
}

/// The genesis event: binds the log to its origin and verifier key.
pub fn genesis_event(origin: &str, verifier_key: &str) -> Value {
    serde_json::json!({"type": GENESIS_TYPE, "origin": origin, "key": verifier_key})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_round_trip() {
        for s in [
            "1970-01-01T00:00:00.000000Z",
            "2026-11-26T12:34:56.789012Z",
            "2000-02-29T23:59:59.999999Z",
            "0000-01-01T00:00:00.000000Z",
            "9999-12-31T23:59:59.999999Z",
            "1969-12-31T23:59:59.999999Z",
        ] {
            let t = Timestamp::parse(s.as_bytes()).unwrap();
            assert_eq!(t.to_string(), s);
            assert_eq!(Timestamp::from_unix_micros(t.unix_micros()), Some(t));
        }
        for s in [
            "2026-02-29T00:00:00.000000Z",
            "2026-11-26T24:00:00.000000Z",
            "2026-11-26T12:00:00Z",
            "2026-11-26 12:00:00.000000Z",
            "2026-11-26T12:00:00.000000+00:00",
        ] {
            assert_eq!(Timestamp::parse(s.as_bytes()), None, "{s}");
        }
    }

    /// Valid lines of several shapes, each taking the fast path.
    fn fast_lines() -> Vec<String> {
        let ts = Timestamp::from_unix_micros(1_700_000_000_123_456).unwrap();
        let prev = Hash([0xab; 32]);
        let events = [
            r#"{"action":"login","actor":"alice"}"#,
            r#"{}"#,
            r#"{"a":[1,{"b":null}],"actor":"\u0001é\"","n":-1.5,"outcome":true,"target":"x","type":"t"}"#,
            r#"{"key":"k","origin":"o","type":"stele.genesis"}"#,
        ];
        let mut out = Vec::new();
        for (i, ev) in events.iter().enumerate() {
            for seq in [0, 7 + i as u64, 999_999_999_999_999] {
                let line = entry_line_from_canonical(ev, seq, ts, &prev).unwrap();
                assert!(parse_entry_fast(line.as_bytes()).is_some(), "{line}");
                out.push(line);
            }
        }
        out
    }

    /// The nesting limit counts the line's own object on both paths: an
    /// event nested to the limit parses, one level more fails on both.
    #[test]
    fn fast_path_keeps_the_depth_limit() {
        let ts = Timestamp::from_unix_micros(0).unwrap();
        let limit = canonical::MAX_DEPTH;
        for levels in limit - 2..=limit + 1 {
            // `levels` objects and arrays: the event object, then arrays.
            let ev = format!(
                "{{\"a\":{}1{}}}",
                "[".repeat(levels - 1),
                "]".repeat(levels - 1)
            );
            let line = format!(
                "{{\"event\":{ev},\"prev\":\"{}\",\"seq\":1,\"ts\":\"{ts}\"}}",
                "0".repeat(64)
            );
            let general = parse_entry_general(line.as_bytes());
            // The line's object is one level more than the event's.
            assert_eq!(
                general.is_ok(),
                levels < limit,
                "{levels} levels: {general:?}"
            );
            match parse_entry_fast(line.as_bytes()) {
                Some(p) => assert_eq!(Ok(p), general),
                None => assert!(
                    general.is_err(),
                    "{levels} levels: the fast path gave up on a valid line"
                ),
            }
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig { cases: 4000, ..Default::default() })]

        /// Whenever the fast path gives an entry, the general path gives the
        /// same one: valid lines with bytes changed, added and removed.
        #[test]
        fn fast_path_agrees_with_the_general_path(
            which in 0usize..12,
            edits in proptest::collection::vec((0usize..400, 0usize..3, 0usize..24), 0..4),
        ) {
            const BYTES: &[u8] = b"\"\\,:{}[]0912aAfZ -.eT\x80\xc3";
            let mut line = fast_lines()[which].clone().into_bytes();
            for (at, op, byte) in edits {
                let at = at % (line.len() + 1);
                let b = BYTES[byte % BYTES.len()];
                match op {
                    0 if at < line.len() => line[at] = b,
                    1 => line.insert(at, b),
                    _ if at < line.len() => {
                        let _ = line.remove(at);
                    }
                    _ => {}
                }
            }
            if let Some(p) = parse_entry_fast(&line) {
                proptest::prop_assert_eq!(Ok(p), parse_entry_general(&line));
            }
        }
    }

    proptest::proptest! {
        /// The text form agrees with the `write!` form it replaced, over the
        /// whole range of years 0000..9999.
        #[test]
        fn timestamp_text_agrees_with_the_formatting_machinery(
            us in -62_167_219_200_000_000i64..=253_402_300_799_999_999,
        ) {
            let t = Timestamp::from_unix_micros(us).unwrap();
            let secs = us.div_euclid(1_000_000);
            let sod = secs.rem_euclid(86_400);
            let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
            let want = format!(
                "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:06}Z",
                sod / 3600,
                sod / 60 % 60,
                sod % 60,
                us.rem_euclid(1_000_000)
            );
            proptest::prop_assert_eq!(t.to_string(), want);
            proptest::prop_assert_eq!(Timestamp::parse(&t.to_text()), Some(t));
        }
    }

    /// Lines are appended after what is already in the buffer and parse back
    /// to what built them; a line over the limit appends nothing.
    #[test]
    fn hashed_lines_match_leaf_hash() {
        // Events whose prefix ends at every offset in a block, and seqs and
        // prevs that move the rest across block ends.
        for n in 0..140usize {
            let ev = format!("{{\"a\":\"{}\"}}", "x".repeat(n));
            let prefix = LinePrefix::new(&ev);
            for (seq, prev) in [
                (0, ZERO_PREV),
                (7, crate::hash::leaf_hash(b"p")),
                (MAX_SEQ, Hash([0xab; 32])),
            ] {
                let ts = Timestamp::from_unix_micros(1_764_000_000_000_000 + n as i64).unwrap();
                let mut out = b"junk".to_vec();
                let (len, h) =
                    push_entry_line_hashed(&mut out, &ev, seq, &ts.into(), &prev, &prefix).unwrap();
                let mut want = b"junk".to_vec();
                assert_eq!(
                    push_entry_line(&mut want, &ev, seq, ts, &prev).unwrap(),
                    len
                );
                assert_eq!(out, want);
                assert_eq!(h, crate::hash::leaf_hash(&out[4..]));
            }
        }
    }

    #[test]
    fn push_entry_line_appends_one_line_or_nothing() {
        let prev = Hash([0x5a; 32]);
        let mut out = b"before\n".to_vec();
        for (seq, us) in [
            (0, -62_167_219_200_000_000),
            (9, 0),
            (10, 1_700_000_000_123_456),
            (MAX_SEQ, 253_402_300_799_999_999),
        ] {
            let ts = Timestamp::from_unix_micros(us).unwrap();
            let start = out.len();
            let ev = r#"{"actor":"a\"b","n":[1,2]}"#;
            let len = push_entry_line(&mut out, ev, seq, ts, &prev).unwrap();
            assert_eq!(out.len() - start, len);
            let p = parse_entry(&out[start..]).unwrap();
            assert_eq!((p.seq, p.ts, p.prev, p.event_json()), (seq, ts, prev, ev));
            assert_eq!(
                entry_line_from_canonical(ev, seq, ts, &prev)
                    .unwrap()
                    .as_bytes(),
                &out[start..]
            );
        }
        let before = out.clone();
        let big = format!("{{\"a\":\"{}\"}}", "x".repeat(MAX_ENTRY_BYTES));
        let ts = Timestamp::from_unix_micros(0).unwrap();
        assert!(matches!(
            push_entry_line(&mut out, &big, 1, ts, &prev),
            Err(BuildError::TooLarge(n)) if n > MAX_ENTRY_BYTES
        ));
        assert_eq!(out, before);
    }

    #[test]
    fn build_then_parse() {
        let ts = Timestamp::from_unix_micros(1_700_000_000_123_456).unwrap();
        let ev = serde_json::json!({"actor":"alice","action":"login","n":1.5});
        let line = entry_line(7, ts, &ZERO_PREV, &ev).unwrap();
        let p = parse_entry(line.as_bytes()).unwrap();
        assert_eq!((p.seq, p.ts, p.prev), (7, ts, ZERO_PREV));
        assert_eq!(p.field_display("actor").as_deref(), Some("alice"));
        assert_eq!(p.ts_text(), ts.to_string());
        assert_eq!(
            p.event_json(),
            r#"{"action":"login","actor":"alice","n":1.5}"#
        );
    }
}
