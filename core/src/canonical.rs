//! RFC 8785 (JCS) canonical JSON: a strict single-pass validator that proves a
//! line is already canonical (without building a tree), and a serializer.
//!
//! Canonical form: no insignificant white space; object keys sorted by their
//! UTF-16 code units, no duplicates; strings escape only `"`, `\` and control
//! characters (`\b \t \n \f \r`, else `\u00xx` in lowercase hex); numbers as
//! ECMAScript's `Number.prototype.toString` writes them.

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};
use std::cmp::Ordering;
use std::fmt;

// Bytes that end a run of plain string content: '"', '\\' and control characters.
const STRING_STOP: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 0x20 {
        t[i] = true;
        i += 1;
    }
    t[b'"' as usize] = true;
    t[b'\\' as usize] = true;
    t
};

/// The index of the first byte of `s` that [`STRING_STOP`] stops at, eight
/// bytes at a time (strings in audit events are short, so this beats a
/// vector search, and it needs no target features). With `HIGH`, bytes
/// from 0x80 (non-ASCII text) stop it too.
fn find_string_stop_in<const HIGH: bool>(s: &[u8]) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH_BITS: u64 = 0x8080_8080_8080_8080;
    let mut words = s.chunks_exact(8);
    let mut at = 0;
    for w in &mut words {
        let w = u64::from_le_bytes([w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7]]);
        let quote = w ^ (ONES * u64::from(b'"'));
        let backslash = w ^ (ONES * u64::from(b'\\'));
        // The high bit of each byte that is zero in `quote` or `backslash`, or
        // below 0x20 in `w`. A borrow can also mark bytes after a true match,
        // never before it, so the lowest mark is the first stop.
        let marks = ((quote.wrapping_sub(ONES) & !quote)
            | (backslash.wrapping_sub(ONES) & !backslash)
            | (w.wrapping_sub(ONES * 0x20) & !w)
            | if HIGH { w } else { 0 })
            & HIGH_BITS;
        if marks != 0 {
            return Some(at + (marks.trailing_zeros() / 8) as usize);
        }
        at += 8;
    }
    let tail = words.remainder();
    tail.iter()
        .position(|&c| STRING_STOP[usize::from(c)] || (HIGH && c >= 0x80))
        .map(|j| at + j)
}

/// [`find_string_stop_in`] stopping at [`STRING_STOP`] only.
fn find_string_stop(s: &[u8]) -> Option<usize> {
    find_string_stop_in::<false>(s)
}

/// Deepest nesting of objects and arrays accepted.
pub const MAX_DEPTH: usize = 64;

/// Why a JSON text was rejected, and where (byte offset in the text).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonError {
    /// Byte offset of the problem.
    pub offset: usize,
    /// What the problem is.
    pub kind: JsonErrorKind,
}

/// The kinds of [`JsonError`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum JsonErrorKind {
    /// Not JSON at all.
    Syntax(String),
    /// JSON, but not in canonical form; says what the canonical form wants.
    NotCanonical(String),
    /// An object has the same key twice.
    DuplicateKey(String),
    /// Nesting deeper than [`MAX_DEPTH`].
    TooDeep,
}

impl fmt::Display for JsonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            JsonErrorKind::Syntax(w) => write!(f, "invalid JSON at byte {}: {w}", self.offset),
            JsonErrorKind::NotCanonical(w) => {
                write!(f, "not canonical JSON at byte {}: {w}", self.offset)
            }
            JsonErrorKind::DuplicateKey(k) => {
                write!(f, "duplicate key {} at byte {}", quote(k), self.offset)
            }
            JsonErrorKind::TooDeep => write!(
                f,
                "JSON nested deeper than {MAX_DEPTH} levels at byte {}",
                self.offset
            ),
        }
    }
}

impl std::error::Error for JsonError {}

/// Byte spans (start, end) of interesting members, filled by [`validate`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Captures {
    /// Top-level members by name: `event`, `prev`, `seq`, `ts`.
    pub event: Option<(usize, usize)>,
    /// The `prev` member's value span.
    pub prev: Option<(usize, usize)>,
    /// The `seq` member's value span.
    pub seq: Option<(usize, usize)>,
    /// The `ts` member's value span.
    pub ts: Option<(usize, usize)>,
    /// The first top-level key that is none of the above.
    pub unexpected: Option<(usize, usize)>,
    /// Members of the `event` object: `type`, `actor`, `action`, `target`, `outcome`.
    pub event_fields: [Option<(usize, usize)>; 7],
}

/// The event member names captured in [`Captures::event_fields`], in order
/// (`origin` and `key` are the genesis event's).
pub const EVENT_FIELDS: [&str; 7] = [
    "type", "actor", "action", "target", "outcome", "origin", "key",
];

/// The index of `key` in [`EVENT_FIELDS`], or 7 for any other member (a
/// `match`, not a search: this runs for every member of every event).
#[inline]
fn event_field_index(key: &[u8]) -> usize {
    let n = match key {
        b"type" => 0,
        b"actor" => 1,
        b"action" => 2,
        b"target" => 3,
        b"outcome" => 4,
        b"origin" => 5,
        b"key" => 6,
        _ => 7,
    };
    debug_assert!(n == 7 || EVENT_FIELDS[n].as_bytes() == key);
    n
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Cap {
    None,
    Top,
    Event,
}

/// Checks that `b` is one JSON value in RFC 8785 canonical form. `b` must be
/// valid UTF-8 (callers check that once for the whole line). Returns the spans
/// of the entry members, when the value is an object.
pub fn validate(b: &[u8]) -> Result<Captures, JsonError> {
    let mut p = Parser {
        b,
        i: 0,
        caps: Captures::default(),
    };
    p.value(0, Cap::Top)?;
    if p.i != b.len() {
        return Err(p.trailing());
    }
    Ok(p.caps)
}

/// Spans of the [`EVENT_FIELDS`] in a line.
pub(crate) type EventFields = [Option<(usize, usize)>; 7];

/// Checks the JSON value at `b[start..]` as the `event` member of an entry
/// line (`b` the whole line): the nesting depth and captures [`validate`]
/// gives it. Returns where the value ends and the spans of the
/// [`EVENT_FIELDS`], or `None` on any error (the caller then runs
/// [`validate`] on the whole line, which finds the same error).
pub(crate) fn validate_event(b: &[u8], start: usize) -> Option<(usize, EventFields)> {
    // Not in the browser build: its verifier is at its size gate (the loop
    // is ~2 KB of wasm), and both ways give the same result.
    #[cfg(not(target_arch = "wasm32"))]
    {
        let mut fields: EventFields = [None; 7];
        if let Some(end) = validate_event_members(b, start, &mut fields) {
            return end.map(|end| (end, fields));
        }
    }
    let mut p = Parser {
        b,
        i: start,
        caps: Captures::default(),
    };
    p.value(1, Cap::Event).ok()?;
    Some((p.i, p.caps.event_fields))
}

/// [`validate_event`] for an object whose keys are plain ASCII (the field
/// names of audit events are), member by member in one loop: keys are
/// checked in place, values that are strings of plain ASCII too, and every
/// other value goes to the [`Parser`]. Fills `fields` and returns what
/// [`validate_event`] returns: where the object ends, or `None` for an
/// error. Returns `None` (not an answer) when a key is not plain ASCII,
/// keys are not in strictly ascending order, or the value is not a
/// non-empty object: [`validate_event`]'s parser then checks the whole
/// event and finds any error. The parser's walk over each member was ~40%
/// of the verifier's instructions besides hashing (callgrind, 100k entries
/// of `stele bench verify`'s log).
#[cfg(not(target_arch = "wasm32"))]
fn validate_event_members(
    b: &[u8],
    start: usize,
    fields: &mut EventFields,
) -> Option<Option<usize>> {
    // The end of a string of plain ASCII starting after the quote at `at`:
    // no escape, control character or byte from 0x80.
    let plain_end = |at: usize| -> Option<usize> {
        let from = at + 1;
        let n = find_string_stop_in::<true>(b.get(from..)?)?;
        (b[from + n] == b'"').then_some(from + n)
    };
    let mut i = start;
    if b.get(i) != Some(&b'{') || b.get(i + 1) == Some(&b'}') {
        return None;
    }
    i += 1;
    let mut prev: Option<&[u8]> = None;
    loop {
        if b.get(i) != Some(&b'"') {
            return None;
        }
        let ke = plain_end(i)?;
        let key = &b[i + 1..ke];
        // ASCII keys sort by bytes as by UTF-16 code units; equal ones are
        // duplicates, which the parser reports.
        if prev.is_some_and(|p| p >= key) {
            return None;
        }
        prev = Some(key);
        i = ke + 1;
        if b.get(i) != Some(&b':') {
            return None;
        }
        i += 1;
        let vs = i;
        match b.get(i) {
            Some(b'"') => match plain_end(i) {
                Some(ve) => i = ve + 1,
                None => i = member_value(b, i)?,
            },
            _ => i = member_value(b, i)?,
        }
        if let Some(f) = fields.get_mut(event_field_index(key)) {
            *f = Some((vs, i));
        }
        match b.get(i) {
            Some(b',') => i += 1,
            Some(b'}') => return Some(Some(i + 1)),
            _ => return Some(None),
        }
    }
}

/// A member's value at `b[at..]` checked by the [`Parser`] at the depth of
/// an event member; where it ends, `None` if it does not validate.
#[cfg(not(target_arch = "wasm32"))]
fn member_value(b: &[u8], at: usize) -> Option<usize> {
    let mut p = Parser {
        b,
        i: at,
        caps: Captures::default(),
    };
    p.value(2, Cap::None).ok()?;
    Some(p.i)
}

struct Parser<'a> {
    b: &'a [u8],
    i: usize,
    caps: Captures,
}

impl Parser<'_> {
    #[cold]
    #[inline(never)]
    fn err(&self, kind: JsonErrorKind) -> JsonError {
        JsonError {
            offset: self.i,
            kind,
        }
    }

    #[cold]
    #[inline(never)]
    fn syntax(&self, what: &str) -> JsonError {
        self.err(JsonErrorKind::Syntax(what.to_string()))
    }

    #[cold]
    #[inline(never)]
    fn trailing(&self) -> JsonError {
        if matches!(self.b[self.i], b' ' | b'\t' | b'\r' | b'\n') {
            self.err(JsonErrorKind::NotCanonical(
                "white space after the value".into(),
            ))
        } else {
            self.syntax("data after the end of the value")
        }
    }

    // What to say when the byte at i is not the expected one.
    fn unexpected(&self, expected: &str) -> JsonError {
        match self.b.get(self.i) {
            None => self.syntax(&format!("unexpected end, expected {expected}")),
            Some(b' ' | b'\t' | b'\r' | b'\n') => self.err(JsonErrorKind::NotCanonical(
                "white space between tokens".into(),
            )),
            Some(_) => self.syntax(&format!("expected {expected}")),
        }
    }

    fn value(&mut self, depth: usize, cap: Cap) -> Result<(), JsonError> {
        match self.b.get(self.i) {
            Some(b'{') => self.object(depth + 1, cap),
            Some(b'[') => self.array(depth + 1),
            Some(b'"') => self.string().map(|_| ()),
            Some(b'-' | b'0'..=b'9') => self.number(),
            Some(b't') => self.literal(b"true"),
            Some(b'f') => self.literal(b"false"),
            Some(b'n') => self.literal(b"null"),
            _ => Err(self.unexpected("a value")),
        }
    }

    fn literal(&mut self, lit: &[u8]) -> Result<(), JsonError> {
        if self.b[self.i..].starts_with(lit) {
            self.i += lit.len();
            Ok(())
        } else {
            Err(self.syntax("invalid literal"))
        }
    }

    fn object(&mut self, depth: usize, cap: Cap) -> Result<(), JsonError> {
        if depth > MAX_DEPTH {
            return Err(self.err(JsonErrorKind::TooDeep));
        }
        self.i += 1;
        if self.b.get(self.i) == Some(&b'}') {
            self.i += 1;
            return Ok(());
        }
        let mut prev_key: Option<(usize, usize, bool)> = None;
        loop {
            if self.b.get(self.i) != Some(&b'"') {
                return Err(self.unexpected("a string key"));
            }
            let key_at = self.i;
            let (ks, ke, esc) = self.string()?;
            if let Some((ps, pe, pesc)) = prev_key {
                match cmp_keys(&self.b[ps..pe], pesc, &self.b[ks..ke], esc) {
                    Ordering::Less => {}
                    Ordering::Equal => {
                        return Err(JsonError {
                            offset: key_at,
                            kind: JsonErrorKind::DuplicateKey(key_text(&self.b[ks..ke], esc)),
                        });
                    }
                    Ordering::Greater => {
                        return Err(JsonError {
                            offset: key_at,
                            kind: JsonErrorKind::NotCanonical(format!(
                                "key {} must come before key {} (keys sorted by UTF-16 code units)",
                                quote(&key_text(&self.b[ks..ke], esc)),
                                quote(&key_text(&self.b[ps..pe], pesc))
                            )),
                        });
                    }
                }
            }
            prev_key = Some((ks, ke, esc));
            if self.b.get(self.i) != Some(&b':') {
                return Err(self.unexpected("':'"));
            }
            self.i += 1;
            let key = &self.b[ks..ke];
            let child = if cap == Cap::Top && key == b"event" {
                Cap::Event
            } else {
                Cap::None
            };
            let vs = self.i;
            self.value(depth, child)?;
            let span = Some((vs, self.i));
            match cap {
                Cap::Top => match key {
                    b"event" => self.caps.event = span,
                    b"prev" => self.caps.prev = span,
                    b"seq" => self.caps.seq = span,
                    b"ts" => self.caps.ts = span,
                    _ => {
                        if self.caps.unexpected.is_none() {
                            self.caps.unexpected = Some((ks, ke));
                        }
                    }
                },
                Cap::Event => {
                    if let Some(f) = self.caps.event_fields.get_mut(event_field_index(key)) {
                        *f = span;
                    }
                }
                Cap::None => {}
            }
            match self.b.get(self.i) {
                Some(b',') => self.i += 1,
                Some(b'}') => {
                    self.i += 1;
                    return Ok(());
                }
                _ => return Err(self.unexpected("',' or '}'")),
            }
        }
    }

    fn array(&mut self, depth: usize) -> Result<(), JsonError> {
        if depth > MAX_DEPTH {
            return Err(self.err(JsonErrorKind::TooDeep));
        }
        self.i += 1;
        if self.b.get(self.i) == Some(&b']') {
            self.i += 1;
            return Ok(());
        }
        loop {
            self.value(depth, Cap::None)?;
            match self.b.get(self.i) {
                Some(b',') => self.i += 1,
                Some(b']') => {
                    self.i += 1;
                    return Ok(());
                }
                _ => return Err(self.unexpected("',' or ']'")),
            }
        }
    }

    // Returns the span of the string's contents and whether it has escapes.
    fn string(&mut self) -> Result<(usize, usize, bool), JsonError> {
        self.i += 1;
        let start = self.i;
        let mut escaped = false;
        loop {
            // Stops at non-ASCII bytes too, to check them as UTF-8 here:
            // the only bytes from 0x80 a valid value has are in its
            // strings, so a value that validates is valid UTF-8 (the fast
            // path of `entry::parse_entry` relies on it and does not run
            // `from_utf8` over the event again: ~3% of `stele verify`).
            let Some(j) = find_string_stop_in::<true>(&self.b[self.i..]) else {
                self.i = self.b.len();
                return Err(self.syntax("unterminated string"));
            };
            self.i += j;
            match self.b[self.i] {
                b'"' => {
                    let end = self.i;
                    self.i += 1;
                    return Ok((start, end, escaped));
                }
                b'\\' => {
                    escaped = true;
                    self.escape()?;
                }
                0x80.. => {
                    // A run of non-ASCII bytes: whole characters, as no
                    // character's encoding holds an ASCII byte.
                    let rest = &self.b[self.i..];
                    let run = rest.iter().position(|&c| c < 0x80).unwrap_or(rest.len());
                    if std::str::from_utf8(&rest[..run]).is_err() {
                        return Err(self.syntax("invalid UTF-8 in string"));
                    }
                    self.i += run;
                }
                _ => return Err(self.syntax("raw control character in string (must be escaped)")),
            }
        }
    }

    fn escape(&mut self) -> Result<(), JsonError> {
        let Some(&e) = self.b.get(self.i + 1) else {
            return Err(self.syntax("unterminated escape"));
        };
        match e {
            b'"' | b'\\' | b'b' | b'f' | b'n' | b'r' | b't' => {
                self.i += 2;
                Ok(())
            }
            b'/' => Err(self.err(JsonErrorKind::NotCanonical(
                "\"\\/\" must be written \"/\"".into(),
            ))),
            b'u' => {
                let hex = self
                    .b
                    .get(self.i + 2..self.i + 6)
                    .ok_or_else(|| self.syntax("short \\u escape"))?;
                let s = std::str::from_utf8(hex).map_err(|_| self.syntax("bad \\u escape"))?;
                let v = u32::from_str_radix(s, 16).map_err(|_| self.syntax("bad \\u escape"))?;
                if !s
                    .bytes()
                    .all(|c| c.is_ascii_digit() || c.is_ascii_lowercase())
                {
                    return Err(self.err(JsonErrorKind::NotCanonical(format!(
                        "\"\\u{s}\" must use lowercase hex"
                    ))));
                }
                let short = match v {
                    0x08 => Some("\\b"),
                    0x09 => Some("\\t"),
                    0x0a => Some("\\n"),
                    0x0c => Some("\\f"),
                    0x0d => Some("\\r"),
                    _ => None,
                };
                if let Some(short) = short {
                    return Err(self.err(JsonErrorKind::NotCanonical(format!(
                        "\"\\u{s}\" must be written \"{short}\""
                    ))));
                }
                if v >= 0x20 {
                    return Err(self.err(JsonErrorKind::NotCanonical(format!(
                        "U+{v:04X} must be written as the character itself, not \"\\u{s}\""
                    ))));
                }
                self.i += 6;
                Ok(())
            }
            _ => Err(self.syntax("invalid escape")),
        }
    }

    fn number(&mut self) -> Result<(), JsonError> {
        let start = self.i;
        let b = self.b;
        let mut i = self.i;
        if b[i] == b'-' {
            i += 1;
        }
        let int_start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        let int_len = i - int_start;
        if int_len == 0 {
            self.i = i;
            return Err(self.syntax("number has no digits"));
        }
        if int_len > 1 && b[int_start] == b'0' {
            self.i = int_start;
            return Err(self.syntax("number has a leading zero"));
        }
        let mut plain = true;
        if i < b.len() && b[i] == b'.' {
            plain = false;
            i += 1;
            let s = i;
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
            if i == s {
                self.i = i;
                return Err(self.syntax("number has no digits after '.'"));
            }
        }
        if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
            plain = false;
            i += 1;
            if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
                i += 1;
            }
            let s = i;
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
            if i == s {
                self.i = i;
                return Err(self.syntax("number has no digits in its exponent"));
            }
        }
        self.i = i;
        let tok = &b[start..i];
        if plain && int_len <= 15 {
            if tok == b"-0" {
                return Err(JsonError {
                    offset: start,
                    kind: JsonErrorKind::NotCanonical("-0 must be written 0".into()),
                });
            }
            return Ok(());
        }
        // Anything else goes through the ECMAScript number formatting rule.
        let s = std::str::from_utf8(tok).map_err(|_| self.syntax("bad number"))?;
        self.number_form(s, start)
    }

    #[cold]
    #[inline(never)]
    fn number_form(&self, s: &str, start: usize) -> Result<(), JsonError> {
        let not_canonical = |msg: String| JsonError {
            offset: start,
            kind: JsonErrorKind::NotCanonical(msg),
        };
        let canon = match number_canon(s) {
            NumberForm::Finite(c) => c,
            NumberForm::NotFinite => {
                return Err(not_canonical(format!("number {s} is out of range")));
            }
            #[cfg(feature = "std-float")]
            NumberForm::Unparsed => return Err(self.syntax("bad number")),
            #[cfg(not(feature = "std-float"))]
            NumberForm::Unchecked => {
                return Err(not_canonical(format!(
                    "number {s} cannot be checked: this build has no number formatting"
                )));
            }
        };
        if canon != s {
            return Err(not_canonical(format!("number {s} must be written {canon}")));
        }
        Ok(())
    }
}

/// What [`number_canon`] found.
enum NumberForm {
    /// `String(Number(s))`.
    Finite(String),
    /// The number is too large for a double.
    NotFinite,
    /// Not a number at all.
    #[cfg(feature = "std-float")]
    Unparsed,
    /// No formatter (a build without `std-float` where none was registered).
    #[cfg(not(feature = "std-float"))]
    Unchecked,
}

/// Puts a JSON number token in ECMAScript form, `String(Number(s))`
/// (`None` if the number is not finite). Registered with
/// [`set_number_formatter`] by builds without the `std-float` feature, e.g.
/// the browser verifier, where JavaScript itself is the reference.
pub type NumberFormatter = fn(&str) -> Option<String>;

#[cfg(not(feature = "std-float"))]
static NUMBER_FORMATTER: std::sync::OnceLock<NumberFormatter> = std::sync::OnceLock::new();

/// Sets the number formatter of a build without the `std-float` feature
/// (the first call wins; `false` if one was already set). Until one is set,
/// every number other than a plain integer of up to 15 digits is refused as
/// not canonical. With `std-float` (the default) the built-in formatter is
/// always used and this does nothing.
pub fn set_number_formatter(f: NumberFormatter) -> bool {
    #[cfg(not(feature = "std-float"))]
    {
        NUMBER_FORMATTER.set(f).is_ok()
    }
    #[cfg(feature = "std-float")]
    {
        let _ = f;
        false
    }
}

#[cfg(feature = "std-float")]
fn number_canon(s: &str) -> NumberForm {
    match s.parse::<f64>() {
        Ok(f) => format_number(f).map_or(NumberForm::NotFinite, NumberForm::Finite),
        Err(_) => NumberForm::Unparsed,
    }
}

#[cfg(not(feature = "std-float"))]
fn number_canon(s: &str) -> NumberForm {
    match NUMBER_FORMATTER.get() {
        Some(f) => f(s).map_or(NumberForm::NotFinite, NumberForm::Finite),
        None => NumberForm::Unchecked,
    }
}

/// ECMAScript `Number.prototype.toString` of a finite double (JCS 3.2.2.3).
#[cfg(feature = "std-float")]
pub fn format_number(f: f64) -> Option<String> {
    if !f.is_finite() {
        return None;
    }
    let mut buf = ryu_js::Buffer::new();
    Some(buf.format_finite(f).to_string())
}

fn key_text(raw: &[u8], escaped: bool) -> String {
    if escaped {
        unescape(raw).unwrap_or_else(|| String::from_utf8_lossy(raw).into_owned())
    } else {
        String::from_utf8_lossy(raw).into_owned()
    }
}

/// Decodes the contents of a JSON string (between its quotes). `None` if the
/// escapes are malformed or the text is not UTF-8.
pub fn unescape(raw: &[u8]) -> Option<String> {
    let s = std::str::from_utf8(raw).ok()?;
    if !s.contains('\\') {
        return Some(s.to_string());
    }
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    let hex4 = |it: &mut std::str::Chars<'_>| -> Option<u32> {
        let h: String = it.by_ref().take(4).collect();
        if h.len() == 4 {
            u32::from_str_radix(&h, 16).ok()
        } else {
            None
        }
    };
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next()? {
            '"' => out.push('"'),
            '\\' => out.push('\\'),
            '/' => out.push('/'),
            'b' => out.push('\u{8}'),
            'f' => out.push('\u{c}'),
            'n' => out.push('\n'),
            'r' => out.push('\r'),
            't' => out.push('\t'),
            'u' => {
                let hi = hex4(&mut chars)?;
                let code = if (0xD800..0xDC00).contains(&hi) {
                    if chars.next()? != '\\' || chars.next()? != 'u' {
                        return None;
                    }
                    let lo = hex4(&mut chars)?;
                    if !(0xDC00..0xE000).contains(&lo) {
                        return None;
                    }
                    0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00)
                } else {
                    hi
                };
                out.push(char::from_u32(code)?);
            }
            _ => return None,
        }
    }
    Some(out)
}

/// Writes `s` as a JSON string in canonical form (for hand-written JSON output).
pub fn push_json_string(out: &mut String, s: &str) {
    write_string(out, s);
}

/// `s` as a JSON string in canonical form (RFC 8785: only `"`, `\\` and
/// the C0 controls escaped). What a format field holding a JSON string
/// needs (a sealed-field record's pointer); [`quote`] is for messages and
/// escapes more, so its text is not canonical.
pub fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    write_string(&mut out, s);
    out
}

/// `s` quoted for a message, as a JSON string that also escapes (as
/// `\uXXXX`) DEL, the C1 controls and the invisible characters that could
/// disguise text (zero-width, bidirectional controls, line and paragraph
/// separators, BOM): a message never carries them raw. Cheaper than `{:?}`,
/// which brings Unicode tables into the WebAssembly build.
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\0'..='\u{1f}'
            | '\u{7f}'..='\u{9f}'
            | '\u{200b}'..='\u{200f}'
            | '\u{2028}'..='\u{202e}'
            | '\u{2060}'..='\u{206f}'
            | '\u{feff}' => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.push_str("\\u");
                for shift in [12, 8, 4, 0] {
                    out.push(char::from(HEX[(c as usize >> shift) & 15]));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// [`quote`] appended to `out`. Printable ASCII (every pointer the writer
/// makes, most values) is copied in runs between the characters it escapes
/// (`"` and `\`); other text goes through [`quote`]. The page's opening
/// pass quotes every value's pointer and opened value with it.
pub(crate) fn quote_into(out: &mut String, s: &str) {
    if !s.bytes().all(|c| (0x20..0x7f).contains(&c)) {
        out.push_str(&quote(s));
        return;
    }
    out.push('"');
    let mut run = 0;
    for (i, c) in s.bytes().enumerate() {
        if c == b'"' || c == b'\\' {
            out.push_str(&s[run..i]);
            out.push('\\');
            run = i; // the character itself starts the next run
        }
    }
    out.push_str(&s[run..]);
    out.push('"');
}

// RFC 8785 3.2.3: compare keys by their UTF-16 code units.
fn cmp_keys(a: &[u8], a_esc: bool, b: &[u8], b_esc: bool) -> Ordering {
    if !a_esc && !b_esc && a.is_ascii() && b.is_ascii() {
        return a.cmp(b);
    }
    let (a, b) = (key_text(a, a_esc), key_text(b, b_esc));
    a.encode_utf16().cmp(b.encode_utf16())
}

/// Serializes a JSON value in RFC 8785 canonical form.
#[cfg(feature = "std-float")]
pub fn to_canonical(v: &Value) -> Result<String, String> {
    if depth(v) > MAX_DEPTH {
        return Err(format!("nested deeper than {MAX_DEPTH} levels"));
    }
    let mut out = String::new();
    write_value(&mut out, v, &NoSwap)?;
    Ok(out)
}

/// [`to_canonical`] appended to `out` (a reused buffer). On an error part
/// of the value may have been written.
#[cfg(feature = "std-float")]
pub fn to_canonical_into(v: &Value, out: &mut String) -> Result<(), String> {
    if depth(v) > MAX_DEPTH {
        return Err(format!("nested deeper than {MAX_DEPTH} levels"));
    }
    write_value(out, v, &NoSwap)
}

/// Values written as other canonical text (a sealed value's placeholder),
/// found by address inside the value being written: what the text of the
/// value would be with them replaced, without building that value.
pub(crate) trait Swap {
    /// The nesting depth of what stands for `v`, if something else does.
    fn depth(&self, v: &Value) -> Option<usize>;
    /// Writes what stands for `v` and returns `true`, if something else does.
    fn write(&self, v: &Value, out: &mut String) -> bool;
}

/// Nothing swapped (inlined away: the plain path's code is unchanged).
pub(crate) struct NoSwap;

impl Swap for NoSwap {
    #[inline(always)]
    fn depth(&self, _: &Value) -> Option<usize> {
        None
    }
    #[inline(always)]
    fn write(&self, _: &Value, _: &mut String) -> bool {
        false
    }
}

/// [`to_canonical`] appended to `out` with the values of `swap` written as
/// what stands for them, for a value whose depth the caller has checked (at
/// most [`MAX_DEPTH`]). On an error part of the value may have been written.
#[cfg(feature = "std-float")]
pub(crate) fn write_canonical_swapped(
    out: &mut String,
    v: &Value,
    swap: &impl Swap,
) -> Result<(), String> {
    write_value(out, v, swap)
}

/// Nesting depth of objects and arrays (a scalar is 0).
pub fn depth(v: &Value) -> usize {
    depth_swapped(v, &NoSwap)
}

/// [`depth`] of the value with the values of `swap` replaced.
pub(crate) fn depth_swapped(v: &Value, swap: &impl Swap) -> usize {
    if let Some(d) = swap.depth(v) {
        return d;
    }
    match v {
        Value::Array(a) => 1 + a.iter().map(|x| depth_swapped(x, swap)).max().unwrap_or(0),
        Value::Object(m) => {
            1 + m
                .values()
                .map(|x| depth_swapped(x, swap))
                .max()
                .unwrap_or(0)
        }
        _ => 0,
    }
}

#[cfg(feature = "std-float")]
fn write_value(out: &mut String, v: &Value, swap: &impl Swap) -> Result<(), String> {
    if swap.write(v, out) {
        return Ok(());
    }
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => match n.as_i64() {
            // A safe integer is its own canonical form: written without a
            // String of its own.
            Some(i) if i.unsigned_abs() <= MAX_SAFE_INTEGER => {
                use std::fmt::Write as _;
                let _ = write!(out, "{i}");
            }
            _ => out.push_str(&canonical_number(n)?),
        },
        Value::String(s) => write_string(out, s),
        Value::Array(a) => {
            out.push('[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_value(out, x, swap)?;
            }
            out.push(']');
        }
        Value::Object(m) => {
            // serde_json's map is in code point order, which is UTF-16 order
            // unless a key has characters from U+E000 up (in UTF-8 exactly
            // those whose lead byte is 0xEE or more; no other byte is).
            out.push('{');
            if m.keys().any(|k| k.bytes().any(|b| b >= 0xEE)) {
                let mut members: Vec<(&String, &Value)> = m.iter().collect();
                members.sort_by(|a, b| a.0.encode_utf16().cmp(b.0.encode_utf16()));
                write_members(out, members, swap)?;
            } else {
                // The common case: in the map's own order, with no list of
                // keys and no look-up per key.
                write_members(out, m.iter(), swap)?;
            }
            out.push('}');
        }
    }
    Ok(())
}

#[cfg(feature = "std-float")]
fn write_members<'a>(
    out: &mut String,
    members: impl IntoIterator<Item = (&'a String, &'a Value)>,
    swap: &impl Swap,
) -> Result<(), String> {
    for (i, (k, v)) in members.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_string(out, k);
        out.push(':');
        write_value(out, v, swap)?;
    }
    Ok(())
}

/// The largest integer magnitude a JSON number carries exactly between
/// systems (I-JSON, RFC 7493 2.2: IEEE 754 doubles), 2^53 - 1.
pub const MAX_SAFE_INTEGER: u64 = (1 << 53) - 1;

// The one I-JSON rule for numbers, for values (to_canonical) and text
// (parse_strict): canonical form writes the double nearest to the number
// (`f`); if that double's text has another value than the one written, the
// number would be silently changed, so it is refused.
//
// `written` is quoted in the message for a value (`to_canonical`), never for
// text being parsed for a new entry (`parse_strict`): that text may be a
// value a log seals, and a refusal is sent back, printed and logged. The
// byte offset there says where.
fn number_change(written: &str, f: f64, integer: bool, quote_it: bool) -> Option<String> {
    let suffix = "(I-JSON, RFC 7493); send it as a string";
    let what = if integer { "integer" } else { "number" };
    let Some(canon) = format_number_any(f) else {
        return Some(if quote_it {
            format!(
                "{what} {} is too large for a double {suffix}",
                shown(written)
            )
        } else {
            format!("{what} too large for a double {suffix}")
        });
    };
    if decimal_value(written) == decimal_value(&canon) {
        return None;
    }
    Some(match (quote_it, integer, f == 0.0) {
        (true, true, _) => format!(
            "integer {} is beyond ±{MAX_SAFE_INTEGER} (2^53-1) and a double cannot hold it: it would be stored as {canon} {suffix}",
            shown(written)
        ),
        (true, false, true) => format!(
            "number {} is too small for a double and would be stored as 0 {suffix}",
            shown(written)
        ),
        (true, false, false) => format!(
            "number {} has more precision than a double and would be stored as {canon} {suffix}",
            shown(written)
        ),
        (false, true, _) => format!(
            "integer beyond ±{MAX_SAFE_INTEGER} (2^53-1) that a double cannot hold {suffix}"
        ),
        (false, false, true) => {
            format!("number too small for a double (it would be stored as 0) {suffix}")
        }
        (false, false, false) => {
            format!("number with more precision than a double holds {suffix}")
        }
    })
}

// A number token for a message: a long one is cut (it may be megabytes).
fn shown(tok: &str) -> String {
    match tok.get(..40) {
        Some(head) if tok.len() > 48 => format!("{head}… ({} characters)", tok.len()),
        _ => tok.to_string(),
    }
}

#[cfg(feature = "std-float")]
fn canonical_number(n: &Number) -> Result<String, String> {
    let (text, f) = if let Some(u) = n.as_u64() {
        (u.to_string(), u as f64)
    } else if let Some(i) = n.as_i64() {
        (i.to_string(), i as f64)
    } else {
        (String::new(), f64::NAN)
    };
    if !text.is_empty() {
        if f.abs() <= MAX_SAFE_INTEGER as f64 {
            return Ok(text);
        }
        if let Some(why) = number_change(&text, f, true, true) {
            return Err(why);
        }
    }
    let f = n.as_f64().ok_or("number is not representable")?;
    format_number(f).ok_or_else(|| format!("number {n} is not finite"))
}

/// What the lexical pass of [`parse_strict`] found.
enum Lexical {
    TooDeep(usize),
    Other(usize, String),
}

/// One pass over JSON text that is valid up to `until` (the whole text when
/// serde_json accepted it), finding what serde_json lets through or
/// misreports: nesting deeper than `max_depth`, numbers a double cannot
/// carry unchanged (I-JSON), and lone surrogate escapes. The first problem
/// before `until` wins.
fn lexical_check(b: &[u8], max_depth: usize, until: usize) -> Option<Lexical> {
    let mut depth = 0usize;
    let mut i = 0usize;
    while i < b.len().min(until) {
        match b[i] {
            b'{' | b'[' => {
                depth += 1;
                if depth > max_depth {
                    return Some(Lexical::TooDeep(i));
                }
                i += 1;
            }
            b'}' | b']' => {
                depth = depth.saturating_sub(1);
                i += 1;
            }
            b'"' => {
                i += 1;
                // the offset of a high surrogate escape waiting for its low half
                let mut high: Option<usize> = None;
                while i < b.len() {
                    let j = find_string_stop(&b[i..])?;
                    if j > 0
                        && let Some(at) = high.take()
                    {
                        return Some(lone_high(at));
                    }
                    i += j;
                    match b[i] {
                        b'"' => {
                            if let Some(at) = high.take() {
                                return Some(lone_high(at));
                            }
                            i += 1;
                            break;
                        }
                        b'\\' => {
                            let at = i;
                            let hex = (b.get(i + 1) == Some(&b'u'))
                                .then(|| b.get(i + 2..i + 6))
                                .flatten()
                                .and_then(|h| std::str::from_utf8(h).ok())
                                .and_then(|h| u32::from_str_radix(h, 16).ok());
                            match (hex, high.take()) {
                                (Some(0xDC00..=0xDFFF), Some(_)) => i += 6,
                                (_, Some(at)) => return Some(lone_high(at)),
                                (Some(0xD800..=0xDBFF), None) => {
                                    high = Some(at);
                                    i += 6;
                                }
                                (Some(0xDC00..=0xDFFF), None) => {
                                    return Some(Lexical::Other(
                                        at,
                                        "a lone low (trailing) surrogate escape: it may only follow a high surrogate \\ud800..\\udbff".to_string(),
                                    ));
                                }
                                (Some(_), None) => i += 6,
                                (None, None) => i += 2,
                            }
                        }
                        _ => return None,
                    }
                }
            }
            b'-' | b'0'..=b'9' => {
                let start = i;
                while i < b.len() && matches!(b[i], b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9')
                {
                    i += 1;
                }
                let tok = std::str::from_utf8(&b[start..i]).unwrap_or_default();
                if let Some(why) = number_problem(tok) {
                    return Some(Lexical::Other(start, why));
                }
            }
            _ => i += 1,
        }
    }
    None
}

fn lone_high(at: usize) -> Lexical {
    Lexical::Other(
        at,
        "a high (leading) surrogate escape not followed by a low surrogate \\udc00..\\udfff"
            .to_string(),
    )
}

/// Why canonical form would not keep the number `tok` (a JSON number token)
/// as written, if it would not (I-JSON, RFC 7493 2.2): an integer beyond
/// ±(2^53-1) that a double cannot hold (2^53+1, 2^64-1), or any value a
/// double cannot hold (overflow, underflow to 0, more precision than a
/// double). `1.0`, `1e3`, `-0` or `9007199254740992` are kept as the same
/// value and pass.
fn number_problem(tok: &str) -> Option<String> {
    let integer = !tok.contains(['.', 'e', 'E']);
    if integer && tok.trim_start_matches('-').len() <= 15 {
        return None;
    }
    let f: f64 = tok.parse().ok()?;
    number_change(tok, f, integer, false)
}

// The canonical form of a finite double (any shortest round-trip form has
// the same value; builds without `std-float` use Rust's).
fn format_number_any(f: f64) -> Option<String> {
    #[cfg(feature = "std-float")]
    {
        format_number(f)
    }
    #[cfg(not(feature = "std-float"))]
    {
        f.is_finite().then(|| format!("{f:e}"))
    }
}

/// A decimal number token's exact value as (negative, significant digits,
/// exponent) with value = 0.DIGITS × 10^exponent; zero is (false, "", 0).
fn decimal_value(tok: &str) -> (bool, String, i64) {
    let (neg, t) = match tok.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, tok),
    };
    let (mant, exp) = match t.find(['e', 'E']) {
        Some(k) => (&t[..k], &t[k + 1..]),
        None => (t, "0"),
    };
    let exp: i64 = exp
        .trim_start_matches('+')
        .parse()
        .unwrap_or(if exp.starts_with('-') {
            i64::MIN / 2
        } else {
            i64::MAX / 2
        });
    let (int, frac) = mant.split_once('.').unwrap_or((mant, ""));
    let mut digits: String = format!("{int}{frac}");
    let mut e = exp.saturating_add(int.len() as i64);
    let lead = digits.len() - digits.trim_start_matches('0').len();
    digits.replace_range(..lead, "");
    e = e.saturating_sub(lead as i64);
    let trimmed = digits.trim_end_matches('0').len();
    digits.truncate(trimmed);
    if digits.is_empty() {
        return (false, String::new(), 0);
    }
    (neg, digits, e)
}

fn write_string(out: &mut String, s: &str) {
    out.push('"');
    // Copy runs that need no escape in one go.
    let mut run = 0;
    for (i, b) in s.bytes().enumerate() {
        if !STRING_STOP[usize::from(b)] {
            continue;
        }
        // Both ends are next to ASCII bytes: `get` cannot fail (and, unlike
        // indexing, brings no panic path).
        out.push_str(s.get(run..i).unwrap_or_default());
        match b {
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            0x08 => out.push_str("\\b"),
            b'\t' => out.push_str("\\t"),
            b'\n' => out.push_str("\\n"),
            0x0c => out.push_str("\\f"),
            b'\r' => out.push_str("\\r"),
            c => out.push_str(&format!("\\u{c:04x}")),
        }
        run = i + 1;
    }
    out.push_str(s.get(run..).unwrap_or_default());
    out.push('"');
}

/// Deepest nesting [`parse_strict`] accepts (serde_json's own limit is one
/// more; this one gives the same message at every depth beyond it).
pub const PARSE_MAX_DEPTH: usize = 127;

/// Parses (possibly non-canonical) JSON received for a new entry into a
/// value. Refused: duplicate keys (serde_json would silently collapse
/// them), nesting deeper than [`PARSE_MAX_DEPTH`], lone surrogate escapes,
/// and numbers that canonical form would change (I-JSON, RFC 7493 2.2):
/// integers beyond ±(2^53-1) a double cannot hold, and values a double
/// cannot hold (overflow, underflow to 0, more precision than a double
/// has). Messages give the byte offset.
pub fn parse_strict(text: &str) -> Result<Value, String> {
    parse_strict_depth(text, PARSE_MAX_DEPTH).map_err(|(e, deep)| match deep {
        Some(at) => format!("JSON nested deeper than {PARSE_MAX_DEPTH} levels at byte {at}"),
        None => e,
    })
}

/// [`parse_strict`] with a nesting limit; a nesting error is returned as
/// `(message, Some(byte offset))` for the caller to word.
pub fn parse_strict_depth(text: &str, max_depth: usize) -> Result<Value, (String, Option<usize>)> {
    let lexical = |until| match lexical_check(text.as_bytes(), max_depth, until) {
        Some(Lexical::TooDeep(at)) => Err((String::new(), Some(at))),
        Some(Lexical::Other(at, why)) => Err((format!("{why} (at byte {at})"), None)),
        None => Ok(()),
    };
    match serde_json::from_str::<NoDup>(text) {
        Ok(v) => {
            lexical(text.len())?;
            Ok(v.0)
        }
        Err(e) => {
            // What serde_json misreports (surrogates, nesting, number range)
            // is said here when it comes no later than serde_json's error.
            let at = byte_offset(text, e.line(), e.column());
            lexical(at.saturating_add(1))?;
            Err((e.to_string(), None))
        }
    }
}

// serde_json's 1-based line and column (bytes) as a byte offset.
fn byte_offset(text: &str, line: usize, column: usize) -> usize {
    let start: usize = text
        .split_inclusive('\n')
        .take(line.saturating_sub(1))
        .map(str::len)
        .sum();
    start + column.saturating_sub(1)
}

struct NoDup(Value);

impl<'de> Deserialize<'de> for NoDup {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(NoDupVisitor).map(NoDup)
    }
}

struct NoDupVisitor;

impl<'de> Visitor<'de> for NoDupVisitor {
    type Value = Value;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        Number::from_f64(v)
            .map(Value::Number)
            .ok_or_else(|| E::custom("number is not finite"))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<Value, A::Error> {
        let mut v = Vec::new();
        while let Some(NoDup(x)) = a.next_element()? {
            v.push(x);
        }
        Ok(Value::Array(v))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<Value, A::Error> {
        let mut m = Map::new();
        while let Some(k) = a.next_key::<String>()? {
            if m.contains_key(&k) {
                // Not named: the text may be a value a log seals (the
                // position serde_json adds says where).
                return Err(de::Error::custom("duplicate key"));
            }
            let NoDup(v) = a.next_value()?;
            let _ = m.insert(k, v);
        }
        Ok(Value::Object(m))
    }
}

#[cfg(all(test, feature = "std-float"))]
mod tests {
    #[test]
    fn quote_escapes_controls_and_invisible_characters() {
        assert_eq!(quote("a\"b\\c\n"), r#""a\"b\\c\n""#);
        assert_eq!(
            quote("x\u{1}\u{7f}\u{85}é\u{202e}\u{feff}"),
            r#""x\u0001\u007f\u0085é\u202e\ufeff""#
        );
        for c in (0..=0x10ffff).filter_map(char::from_u32) {
            let q = quote(&c.to_string());
            assert!(!q.chars().any(char::is_control), "{c:?}");
        }
    }

    #[test]
    fn quote_into_appends_what_quote_gives() {
        let mut out = String::from("x");
        for s in [
            "", "a", "\"", "\\", "a\"b\\c", "\"\"\\\\", "/ip", "\n", "é\"", "a\u{7f}", "~",
        ] {
            out.truncate(1);
            quote_into(&mut out, s);
            assert_eq!(out, format!("x{}", quote(s)), "{s:?}");
        }
        // Every character alone and between printable ASCII.
        for c in (0..=0x10ffff)
            .step_by(7)
            .chain(0..0x100)
            .filter_map(char::from_u32)
        {
            for s in [c.to_string(), format!("a\"{c}\\b")] {
                out.clear();
                quote_into(&mut out, &s);
                assert_eq!(out, quote(&s), "{s:?}");
            }
        }
    }

    #[test]
    fn the_member_loop_agrees_with_the_parser() {
        use proptest::prelude::*;
        // The parser alone, as validate_event ran before the member loop.
        let parser = |b: &[u8], start: usize| {
            let mut p = Parser {
                b,
                i: start,
                caps: Captures::default(),
            };
            p.value(1, Cap::Event).ok()?;
            Some((p.i, p.caps.event_fields))
        };
        // Events built from keys and values that take every branch: plain
        // and escaped, ASCII and not, nested, numbers, bad bytes, keys in
        // and out of order and repeated, odd separators.
        let keys = prop::sample::select(vec![
            "\"type\"",
            "\"actor\"",
            "\"action\"",
            "\"target\"",
            "\"outcome\"",
            "\"origin\"",
            "\"key\"",
            "\"a\"",
            "\"z\"",
            "\"\"",
            "\"t\\u0000\"",
            "\"\u{e9}\"",
            "\"\u{1f600}\"",
            "\"\u{ff61}\"",
            "\"b\"",
            "\"type",
        ]);
        let values = prop::sample::select(vec![
            "\"x\"",
            "\"\"",
            "\"a\\nb\"",
            "\"\u{e9}t\u{e9}\"",
            "\"\u{1f600}\"",
            "1",
            "0",
            "-0",
            "1.5",
            "01",
            "1e3",
            "true",
            "null",
            "{}",
            "[]",
            "{\"b\":1,\"a\":2}",
            "[1,{\"x\":\"y\"}]",
            "\"\\u0041\"",
            "\"a\tb\"",
            "\"",
            "x",
            "{\"a\":\"\\q\"}",
        ]);
        let seps = prop::sample::select(vec![",", ",", ",", " ,", ";"]);
        let member = (keys, values, seps);
        proptest!(|(members in prop::collection::vec(member, 0..6), lead in 0usize..3, tail in prop::sample::select(vec!["}", "}", "} ", "", ",}", "},\"prev\""]))| {
            let mut t = String::from(&"{\"event\":"[..lead * 4]);
            let start = t.len();
            t.push('{');
            for (k, (key, value, sep)) in members.iter().enumerate() {
                if k > 0 {
                    t.push_str(sep);
                }
                t.push_str(key);
                t.push(':');
                t.push_str(value);
            }
            t.push_str(tail);
            let mut b = t.into_bytes();
            prop_assert_eq!(validate_event(&b, start), parser(&b, start));
            // A bad UTF-8 byte anywhere: refused (entry::parse_entry's
            // fast path relies on a validated event being UTF-8).
            for at in start..b.len() {
                let keep = b[at];
                b[at] = 0xff;
                let got = validate_event(&b, start);
                prop_assert_eq!(&got, &parser(&b, start), "0xff at {}", at);
                if let Some((end, _)) = got {
                    prop_assert!(std::str::from_utf8(&b[start..end]).is_ok(), "0xff at {}", at);
                }
                b[at] = keep;
            }
        });
    }

    #[test]
    fn the_word_scan_stops_where_the_byte_scan_does() {
        use proptest::prelude::*;
        let naive = |s: &[u8]| s.iter().position(|&c| STRING_STOP[usize::from(c)]);
        // With HIGH, bytes from 0x80 stop it too (the UTF-8 check's runs).
        let naive_high = |s: &[u8]| {
            s.iter()
                .position(|&c| STRING_STOP[usize::from(c)] || c >= 0x80)
        };
        // Every byte value at every position of a 17-byte run of plain text,
        // alone and before a second stop further on.
        for pos in 0..17 {
            for b in 0..=255u8 {
                let mut s = [b'a'; 17];
                s[pos] = b;
                assert_eq!(find_string_stop(&s), naive(&s), "byte {b:#x} at {pos}");
                assert_eq!(
                    find_string_stop_in::<true>(&s),
                    naive_high(&s),
                    "HIGH: byte {b:#x} at {pos}"
                );
                for later in pos + 1..17 {
                    let mut t = s;
                    t[later] = 0xc3;
                    assert_eq!(
                        find_string_stop_in::<true>(&t),
                        naive_high(&t),
                        "HIGH: byte {b:#x} at {pos}, 0xc3 at {later}"
                    );
                }
            }
        }
        // Random text rich in stops, borrows and high bytes.
        let bytes = prop::sample::select(vec![
            b'a', b'"', b'\\', 0x00, 0x1f, 0x20, 0x21, 0x5b, 0x5d, 0x7f, 0x80, 0xe2, 0xff,
        ]);
        proptest!(|(s in prop::collection::vec(bytes, 0..40))| {
            prop_assert_eq!(find_string_stop(&s), naive(&s));
            prop_assert_eq!(find_string_stop_in::<true>(&s), naive_high(&s));
        });
    }

    use super::*;

    fn canon(s: &str) -> String {
        to_canonical(&parse_strict(s).unwrap()).unwrap()
    }

    #[test]
    fn rfc8785_examples() {
        assert_eq!(
            canon(r#"{"b":1,"a":[1.0,2.5e3,-0.0,1e21,1e-7]}"#),
            r#"{"a":[1,2500,0,1e+21,1e-7],"b":1}"#
        );
        assert_eq!(
            canon("\"\\u0041\\u00e9\\/\\u001f\\n\""),
            "\"Aé/\\u001f\\n\""
        );
        // UTF-16 order: U+10000 (D800 DC00) sorts before U+E000.
        assert_eq!(
            canon("{\"\u{e000}\":1,\"\u{10000}\":2}"),
            "{\"\u{10000}\":2,\"\u{e000}\":1}"
        );
    }

    #[test]
    fn validator_accepts_what_serializer_writes() {
        for s in [
            r#"{"a":[1,2500,0,1e+21,1e-7,true,null,"x\n\u001f"],"b":{"c":{}}}"#,
            "{\"\u{10000}\":2,\"\u{e000}\":1}",
            "[]",
            "9007199254740991",
        ] {
            let _ = validate(s.as_bytes()).unwrap();
            assert_eq!(canon(s), s);
        }
    }

    #[test]
    fn validator_rejects_non_canonical_forms() {
        for s in [
            r#"{"b":1,"a":2}"#,
            r#"{"a":1,"a":1}"#,
            r#"{"a": 1}"#,
            r#"{"a":1.0}"#,
            r#"{"a":"\/"}"#,
            r#"{"a":"\u0041"}"#,
            r#"{"a":"\u000a"}"#,
            r#"{"a":"\u001F"}"#,
            "-0",
            "1E3",
            "[1 ]",
            "{} ",
            "01",
        ] {
            assert!(validate(s.as_bytes()).is_err(), "{s}");
        }
    }

    #[test]
    fn strict_parse_refuses_what_canonical_form_would_change() {
        // Nothing of the text is quoted (it may be a sealed value): the kind
        // of problem and the byte say what and where.
        for (text, want) in [
            (
                "18446744073709551615",
                "integer beyond ±9007199254740991 (2^53-1) that a double cannot hold (I-JSON, RFC 7493); send it as a string (at byte 0)",
            ),
            (
                "[9007199254740993]",
                "integer beyond ±9007199254740991 (2^53-1) that a double cannot hold (I-JSON, RFC 7493); send it as a string (at byte 1)",
            ),
            ("-1152921504606846976", "integer beyond ±9007199254740991"),
            (
                "1e400",
                "number too large for a double (I-JSON, RFC 7493); send it as a string (at byte 0)",
            ),
            (
                "{\"a\":-1E-400}",
                "number too small for a double (it would be stored as 0) (I-JSON, RFC 7493); send it as a string (at byte 5)",
            ),
            (
                "9007199254740993.0",
                "number with more precision than a double holds",
            ),
            (
                "\"\\udc00\"",
                "a lone low (trailing) surrogate escape: it may only follow a high surrogate \\ud800..\\udbff (at byte 1)",
            ),
            (
                "[\"a\\ud800\"]",
                "a high (leading) surrogate escape not followed by a low surrogate \\udc00..\\udfff (at byte 3)",
            ),
            (
                "\"\\ud800\\n\"",
                "high (leading) surrogate escape not followed",
            ),
            (
                "{\"secret-name\":1,\"secret-name\":2}",
                "duplicate key at line 1 column",
            ),
        ] {
            let e = parse_strict(text).unwrap_err();
            assert!(e.contains(want), "{text}: {e}");
            for quoted in [
                "secret",
                "1844",
                "9007199254740993",
                "115292",
                "1e400",
                "1E-400",
                "dc00\"",
                "d800\"",
            ] {
                assert!(!e.contains(quoted), "{text}: {e}");
            }
        }
        let long = "1".repeat(100_000);
        let e = parse_strict(&long).unwrap_err();
        assert!(e.len() < 300 && !e.contains("1111"), "{e}");
        for text in [
            "9007199254740991",
            "-9007199254740991",
            "9007199254740992",
            "100000000000000000000",
            "1.0",
            "1e3",
            "-0",
            "0e-999",
            "0.1",
            "1e20",
            "5e-324",
            "1.7976931348623157e308",
            "\"\\ud83d\\ude00 \\u0041\"",
        ] {
            let _ = parse_strict(text).unwrap_or_else(|e| panic!("{text}: {e}"));
        }
        // One message at every depth, whether serde_json's own limit is
        // reached or not.
        for n in [128, 129, 200, 5000] {
            let e = parse_strict(&"[".repeat(n)).unwrap_err();
            assert_eq!(e, "JSON nested deeper than 127 levels at byte 127", "{n}");
        }
        let _ = parse_strict(&format!("{}{}", "[".repeat(127), "]".repeat(127))).unwrap();
        let deep = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
        for n in [64, 100, 127, 128, 1000] {
            assert_eq!(
                crate::entry::parse_event(&deep(n)).unwrap_err(),
                "event nests deeper than 63 levels (at byte 63)",
                "{n}"
            );
        }
    }

    #[test]
    fn strict_parse_refuses_duplicates() {
        assert!(
            parse_strict(r#"{"a":1,"a":2}"#)
                .unwrap_err()
                .contains("duplicate key")
        );
        assert!(parse_strict(r#"{"x":{"a":1,"a":2}}"#).is_err());
    }
}
