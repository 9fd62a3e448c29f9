//! Request bodies of `POST /v1/entries`: one JSON object, a JSON array of
//! objects, or JSON Lines. Every problem names the item (0-based) and, for
//! JSON Lines, the line.

use crate::log::{WRITER_MEMBER, check_event};
use serde::de::{DeserializeSeed, SeqAccess, Visitor};
use serde_json::Value;
use serde_json::value::RawValue;
use std::fmt;
// Events are parsed as the CLI parses them (one nesting message at any depth).
use stele_core::entry::parse_event as parse_strict;
use stele_core::entry::{
    BuildError, MAX_ENTRY_BYTES, MAX_SEQ, Timestamp, ZERO_PREV, canonical_event,
    entry_line_from_canonical,
};

/// Why a body was refused: the item, what is wrong, and whether it is a
/// size problem (413) rather than a form problem (400).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ItemError {
    /// The item's 0-based position in the batch, when one is to blame.
    pub item: Option<usize>,
    /// What is wrong, with the item and line in it.
    pub msg: String,
    /// The item is too large (HTTP 413).
    pub too_large: bool,
}

impl ItemError {
    fn at(item: usize, msg: String) -> Self {
        Self {
            item: Some(item),
            msg,
            too_large: false,
        }
    }
}

// Raw JSON this long or longer is built once to check the entry size. A
// shorter one cannot reach the limit: canonical JSON is at most 25% longer
// than its source (only `1e21` -> `1e+21` grows) and the entry adds ~140 bytes.
const SIZE_CHECK_FROM: usize = 48 * 1024;

/// Checks one parsed event as the log will: an object, no reserved type
/// or member, and (for big ones, or all with `raw_len` `usize::MAX`) an
/// entry within the size and nesting limits, with the largest writer-added
/// member the server may add.
pub(super) fn check_item(
    item: usize,
    v: &Value,
    raw_len: usize,
    what: &str,
) -> Result<(), ItemError> {
    check_event(v, false).map_err(|why| ItemError::at(item, format!("{what}: {why}")))?;
    if raw_len >= SIZE_CHECK_FROM {
        match entry_size(v) {
            Ok(n) if n <= MAX_ENTRY_BYTES => {}
            Ok(n) => {
                return Err(ItemError {
                    item: Some(item),
                    msg: format!("{what}: {}", BuildError::TooLarge(n)),
                    too_large: true,
                });
            }
            Err(e) => return Err(ItemError::at(item, format!("{what}: {e}"))),
        }
    }
    Ok(())
}

/// The length of the entry line event `v` would make with the largest
/// writer-added member the server may add, computed without copying the
/// event (a 16 MiB event was once cloned just to be measured): its
/// canonical text, the member's, and the line around them.
fn entry_size(v: &Value) -> Result<usize, BuildError> {
    let event = canonical_event(v)?;
    // `{"stele":{...}}` less its braces, and a comma when the event has
    // members (keys are sorted, but a member's length is the same anywhere).
    let member = canonical_event(&serde_json::json!({
        WRITER_MEMBER: {"token": "t".repeat(64), "request": "k".repeat(128)}
    }))?;
    let comma = usize::from(v.as_object().is_some_and(|o| !o.is_empty()));
    let ts = Timestamp::from_unix_micros(0).expect("epoch is in range");
    let around = entry_line_from_canonical("{}", MAX_SEQ, ts, &ZERO_PREV)?.len() - 2;
    Ok(around + event.len() + member.len() - 2 + comma)
}

/// A lower bound of the length of the canonical JSON of the JSON text
/// `raw`, from its bytes alone: canonical JSON keeps every structural
/// character, both quotes of every string, each character of a string (an
/// escape becomes at least one byte) and at least one byte of every other
/// token (number, `true`, `false`, `null`).
fn canonical_len_at_least(raw: &[u8]) -> usize {
    let (mut n, mut i) = (0, 0);
    let (mut in_string, mut in_token) = (false, false);
    while i < raw.len() {
        let b = raw[i];
        if in_string {
            n += 1;
            match b {
                b'"' => in_string = false,
                b'\\' if raw.get(i + 1) == Some(&b'u') => i += 5,
                b'\\' => i += 1,
                _ => {}
            }
        } else {
            match b {
                b'"' => {
                    n += 1;
                    in_string = true;
                    in_token = false;
                }
                b'{' | b'}' | b'[' | b']' | b':' | b',' => {
                    n += 1;
                    in_token = false;
                }
                b' ' | b'\t' | b'\n' | b'\r' => in_token = false,
                _ if !in_token => {
                    n += 1;
                    in_token = true;
                }
                _ => {}
            }
        }
        i += 1;
    }
    n
}

/// Refuses an item whose raw text alone proves its entry would pass the
/// size limit, before its tree is built (an 8.4M-element array in one
/// 16 MiB event was built, ~600 MB, only to be refused).
fn check_raw(item: usize, raw: &str, what: &str) -> Result<(), ItemError> {
    if raw.len() <= MAX_ENTRY_BYTES {
        return Ok(());
    }
    let n = canonical_len_at_least(raw.as_bytes());
    if n > MAX_ENTRY_BYTES {
        return Err(ItemError {
            item: Some(item),
            msg: format!(
                "{what}: entry would be more than {n} bytes, more than the limit of {MAX_ENTRY_BYTES}"
            ),
            too_large: true,
        });
    }
    Ok(())
}

fn too_many(max: usize) -> ItemError {
    ItemError {
        item: Some(max),
        msg: format!(
            "more than {max} events in one request (--max-events): send them in several requests"
        ),
        too_large: true,
    }
}

/// Parses a body into events, all or nothing; more than `max` events is an
/// error found before the events are built.
pub(super) fn parse_events(body: &[u8], max: usize) -> Result<Vec<Value>, ItemError> {
    let text = std::str::from_utf8(body).map_err(|e| ItemError {
        item: None,
        msg: format!(
            "request body is not UTF-8 (invalid byte at offset {})",
            e.valid_up_to()
        ),
        too_large: false,
    })?;
    let trimmed = text.trim_start();
    if trimmed.is_empty() {
        return Err(ItemError {
            item: None,
            msg:
                "request body is empty; send a JSON object, a JSON array of objects, or JSON Lines"
                    .into(),
            too_large: false,
        });
    }
    if trimmed.starts_with('[') {
        return parse_array(trimmed, max);
    }
    // One object (possibly spread over several lines), else JSON Lines. A
    // text too large to be one entry is not built as one.
    let one_line = !trimmed.trim_end().contains('\n');
    let too_big = check_raw(0, trimmed, "item 0");
    if one_line {
        too_big.clone()?;
    }
    let single = match &too_big {
        Ok(()) => parse_strict(trimmed),
        Err(e) => Err(e.msg.clone()),
    };
    if let Ok(v) = single {
        check_item(0, &v, trimmed.len(), "item 0")?;
        return Ok(vec![v]);
    }
    let lines = text.split('\n').filter(|l| !l.trim().is_empty()).count();
    if lines > max {
        return Err(too_many(max));
    }
    let mut out = Vec::new();
    for (n, line) in text.split('\n').enumerate() {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.trim().is_empty() {
            continue;
        }
        let item = out.len();
        let what = format!("item {item} (line {})", n + 1);
        check_raw(item, line, &what)?;
        let v = match parse_strict(line) {
            Ok(v) => v,
            Err(_) if item == 0 && too_big.is_err() => {
                // Not JSON Lines, and too large to be one object.
                return too_big.map(|()| Vec::new());
            }
            Err(e) if item == 0 => {
                // Neither one JSON value nor JSON Lines: report the whole-body
                // parse, which is what a single pretty-printed object gets.
                let e = single.err().unwrap_or(e);
                return Err(ItemError::at(0, format!("item 0: {e}")));
            }
            Err(e) => return Err(ItemError::at(item, format!("{what}: {e}"))),
        };
        check_item(item, &v, line.len(), &what)?;
        out.push(v);
    }
    Ok(out)
}

// The array's items as raw JSON; stops (and sets the flag) past `max`.
struct Collect<'a>(&'a mut Vec<Box<RawValue>>, usize, &'a mut bool);

impl<'de> DeserializeSeed<'de> for Collect<'_> {
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for Collect<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON array")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(v) = seq.next_element::<Box<RawValue>>()? {
            if self.0.len() == self.1 {
                // Stop reading: the request is refused whatever follows.
                *self.2 = true;
                return Err(serde::de::Error::custom("too many events"));
            }
            self.0.push(v);
        }
        Ok(())
    }
}

fn parse_array(text: &str, max: usize) -> Result<Vec<Value>, ItemError> {
    let mut raws = Vec::new();
    let mut over = false;
    let mut de = serde_json::Deserializer::from_str(text);
    let r = Collect(&mut raws, max, &mut over)
        .deserialize(&mut de)
        .and_then(|()| de.end());
    if over {
        return Err(too_many(max));
    }
    if let Err(e) = r {
        // The items before the error were read; the error is in the next.
        let item = raws.len();
        return Err(ItemError::at(item, format!("item {item}: {e}")));
    }
    let mut out = Vec::with_capacity(raws.len());
    for (i, raw) in raws.iter().enumerate() {
        let what = format!("item {i}");
        check_raw(i, raw.get(), &what)?;
        let v = parse_strict(raw.get()).map_err(|e| ItemError::at(i, format!("{what}: {e}")))?;
        check_item(i, &v, raw.get().len(), &what)?;
        out.push(v);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nesting_gives_one_message_at_any_depth() {
        // Issue 16: 63-126 levels and 127+ levels used to read differently.
        for depth in [64usize, 70, 126, 127, 200] {
            let ev = format!("{{\"a\":{}1{}}}", "[".repeat(depth), "]".repeat(depth));
            for body in [
                ev.clone(),
                format!("{ev}\n{{\"b\":1}}\n"),
                format!("[{{\"b\":1}},{ev}]"),
            ] {
                let e = super::parse_events(body.as_bytes(), 100).unwrap_err();
                assert!(
                    e.msg.contains("event nests deeper than 63 levels"),
                    "depth {depth}, body {}: {}",
                    &body[..20],
                    e.msg
                );
            }
        }
    }

    fn err(body: &str) -> ItemError {
        super::parse_events(body.as_bytes(), 100).unwrap_err()
    }

    fn parse_events(body: &[u8]) -> Result<Vec<Value>, ItemError> {
        super::parse_events(body, 100)
    }

    #[test]
    fn more_events_than_the_cap_are_refused_before_they_are_built() {
        let arr = format!("[{}{{}}]", "{},".repeat(100));
        let e = super::parse_events(arr.as_bytes(), 100).unwrap_err();
        assert!(
            e.too_large && e.msg.starts_with("more than 100 events"),
            "{e:?}"
        );
        let lines = "{}\n".repeat(101);
        let e = super::parse_events(lines.as_bytes(), 100).unwrap_err();
        assert!(e.too_large, "{e:?}");
        let arr = format!("[{}{{}}]", "{},".repeat(99));
        assert_eq!(super::parse_events(arr.as_bytes(), 100).unwrap().len(), 100);
    }

    #[test]
    fn the_three_forms_parse() {
        assert_eq!(parse_events(br#"{"a":1}"#).unwrap().len(), 1);
        assert_eq!(parse_events(b"{\n  \"a\": 1\n}\n").unwrap().len(), 1);
        assert_eq!(parse_events(br#" [{"a":1},{"b":2}] "#).unwrap().len(), 2);
        assert_eq!(
            parse_events(b"{\"a\":1}\r\n\n{\"b\":2}\n").unwrap().len(),
            2
        );
        assert_eq!(parse_events(b"[]").unwrap().len(), 0);
    }

    #[test]
    fn errors_name_the_item_and_line() {
        let e = err("{\"a\":1}\n{\"b\":}\n");
        assert_eq!(e.item, Some(1));
        assert!(e.msg.starts_with("item 1 (line 2): "), "{}", e.msg);
        let e = err(r#"[{"a":1},{"type":"stele.access"}]"#);
        assert_eq!(e.item, Some(1));
        assert!(e.msg.contains("is reserved"), "{}", e.msg);
        let e = err(r#"[{"a":1},{"a":1,"a":2}]"#);
        assert_eq!(e.item, Some(1));
        assert!(e.msg.contains("duplicate"), "{}", e.msg);
        let e = err(r#"[{"a":1},{"b":2},{"c":"#);
        assert_eq!(e.item, Some(2), "{}", e.msg);
        let e = err(r#"[{"a":1}, 7]"#);
        assert_eq!(e.msg, "item 1: event is not a JSON object");
        let e = err("");
        assert_eq!(e.item, None);
        let e = err("{\n \"a\": \n}");
        assert_eq!(e.item, Some(0));
    }

    #[test]
    fn the_entry_size_is_measured_without_a_copy_as_it_was_with_one() {
        // What check_item measured before it stopped cloning the event.
        let with_clone = |v: &Value| {
            let mut full = v.clone();
            full[WRITER_MEMBER] =
                serde_json::json!({"token": "t".repeat(64), "request": "k".repeat(128)});
            let ts = Timestamp::from_unix_micros(0).unwrap();
            match stele_core::entry::entry_line(MAX_SEQ, ts, &ZERO_PREV, &full) {
                Ok(line) => line.len(),
                Err(BuildError::TooLarge(n)) => n,
                Err(e) => panic!("{e}"),
            }
        };
        for text in [
            "{}".to_string(),
            r#"{"a":1}"#.to_string(),
            r#"{"zz":[1,2.5,"x\u0000"],"b":{"c":null}}"#.to_string(),
            format!(r#"{{"p":"{}","a":true}}"#, "x".repeat(70_000)),
            format!(r#"{{"t":"{}"}}"#, "é".repeat(1_000)),
        ] {
            let v = parse_strict(&text).unwrap();
            assert_eq!(
                entry_size(&v).unwrap(),
                with_clone(&v),
                "{}",
                &text[..20.min(text.len())]
            );
        }
    }

    #[test]
    fn the_raw_bound_never_passes_the_canonical_length() {
        for text in [
            r#"{}"#.to_string(),
            r#" { "a" : [ 1 , -0 , 1E2 , 0.50 , true , null ] } "#.to_string(),
            r#"{"s":"\u0041\/\n\ud83d\ude00é","k\"":"\\"}"#.to_string(),
            format!("{{\"a\":[{}0]}}", "0.000,".repeat(1000)),
        ] {
            let v = parse_strict(&text).unwrap();
            let canonical = canonical_event(&v).unwrap().len();
            let bound = canonical_len_at_least(text.as_bytes());
            assert!(bound <= canonical, "{text}: {bound} > {canonical}");
        }
        // An 8.4M-element array in one event: refused from its bytes, as
        // one object, in an array, or as a line.
        let big = format!(r#"{{"type":"k","a":[{}0]}}"#, "0,".repeat(4 << 20));
        for body in [big.clone(), format!("[{big}]"), format!("{{}}\n{big}\n")] {
            let e = super::parse_events(body.as_bytes(), 10).unwrap_err();
            assert!(e.too_large, "{e:?}");
            assert!(e.msg.contains("entry would be more than 8388"), "{}", e.msg);
        }
        // Pretty-printed over several lines: too large as one object.
        let pretty = big.replace(',', ",\n");
        let e = super::parse_events(pretty.as_bytes(), usize::MAX).unwrap_err();
        assert!(e.too_large && e.item == Some(0), "{e:?}");
        assert!(
            e.msg.starts_with("item 0: entry would be more than"),
            "{}",
            e.msg
        );
        // Many small lines are JSON Lines, not one big object.
        let lines = format!(r#"{{"p":"{}"}}"#, "x".repeat(1000)) + "\n";
        assert_eq!(
            parse_events(lines.repeat(100).as_bytes()).unwrap().len(),
            100
        );
    }

    #[test]
    fn big_events_are_checked_against_the_entry_limit() {
        let ok = format!(r#"{{"p":"{}"}}"#, "x".repeat(60_000));
        assert!(parse_events(ok.as_bytes()).is_ok());
        let big = format!(r#"[{{}},{{"p":"{}"}}]"#, "x".repeat(65_500));
        let e = err(&big);
        assert!(e.too_large);
        assert_eq!(e.item, Some(1));
        assert!(e.msg.starts_with("item 1: entry would be "), "{}", e.msg);
    }
}
