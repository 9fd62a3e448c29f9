//! Strict query strings: each value percent-decoded, every name known to
//! the endpoint, none repeated, numbers written as plain decimal digits.
//! Errors name the parameter (400).

use percent_encoding::percent_decode_str;

/// A parsed query: (name, decoded value) in request order.
#[derive(Debug, Default)]
pub(super) struct Query(Vec<(String, String)>);

/// Most decimal digits a u64 has.
const U64_DIGITS: usize = 20;

impl Query {
    /// Parses `raw` (without the `?`), accepting only the names in `known`.
    pub(super) fn parse(raw: Option<&str>, known: &[&str]) -> Result<Self, String> {
        let mut out: Vec<(String, String)> = Vec::new();
        for part in raw.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
            let (k, v) = part.split_once('=').unwrap_or((part, ""));
            let k = decode(k).map_err(|e| format!("query parameter name: {e}"))?;
            let v = decode(v).map_err(|e| format!("query parameter {}: {e}", show(&k)))?;
            if !known.contains(&k.as_str()) {
                return Err(if known.is_empty() {
                    format!(
                        "unknown query parameter {}: this endpoint takes none",
                        show(&k)
                    )
                } else {
                    format!(
                        "unknown query parameter {}: this endpoint takes {}",
                        show(&k),
                        known.join(", ")
                    )
                });
            }
            if out.iter().any(|(n, _)| *n == k) {
                return Err(format!("query parameter {} is given twice", show(&k)));
            }
            out.push((k, v));
        }
        Ok(Self(out))
    }

    /// The value of `name`, if given.
    pub(super) fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// `name` as a non-negative integer of plain decimal digits.
    pub(super) fn u64(&self, name: &str) -> Result<Option<u64>, String> {
        self.get(name).map(|v| parse_u64(name, v)).transpose()
    }
}

/// A non-negative integer of plain decimal digits (no sign, no spaces).
pub(super) fn parse_u64(name: &str, v: &str) -> Result<u64, String> {
    let digits = !v.is_empty() && v.len() <= U64_DIGITS && v.bytes().all(|b| b.is_ascii_digit());
    match digits.then(|| v.parse::<u64>().ok()).flatten() {
        Some(n) => Ok(n),
        None => Err(format!(
            "query parameter {name}={} is not a non-negative integer of decimal digits",
            show(v)
        )),
    }
}

fn decode(s: &str) -> Result<String, String> {
    // A stray % that does not start an escape is refused, not passed on.
    let b = s.as_bytes();
    for (i, _) in s.match_indices('%') {
        let hex = |j: usize| b.get(j).is_some_and(u8::is_ascii_hexdigit);
        if !(hex(i + 1) && hex(i + 2)) {
            return Err(format!("{} has a % that is not %XX", show(s)));
        }
    }
    percent_decode_str(s)
        .decode_utf8()
        .map(|c| c.into_owned())
        .map_err(|_| format!("{} is not UTF-8 once percent-decoded", show(s)))
}

// A value for an error message: quoted, escaped, at most 64 characters.
fn show(s: &str) -> String {
    let mut t: String = s.chars().take(64).collect();
    if t.len() < s.len() {
        t.push('…');
    }
    format!("{t:?}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_decoded_and_names_checked() {
        let q = Query::parse(Some("from=%31&to=5"), &["from", "to"]).unwrap();
        assert_eq!(q.u64("from"), Ok(Some(1)));
        assert_eq!(q.u64("to"), Ok(Some(5)));
        assert_eq!(q.u64("size"), Ok(None));
        let e = Query::parse(Some("fromm=0&too=5"), &["from", "to"]).unwrap_err();
        assert_eq!(
            e,
            "unknown query parameter \"fromm\": this endpoint takes from, to"
        );
        let e = Query::parse(Some("from=1&from=2"), &["from"]).unwrap_err();
        assert_eq!(e, "query parameter \"from\" is given twice");
        let e = Query::parse(Some("x=1"), &[]).unwrap_err();
        assert!(e.contains("takes none"), "{e}");
        assert!(Query::parse(Some("from=%zz"), &["from"]).is_err());
        assert!(Query::parse(Some("from=%ff"), &["from"]).is_err());
    }

    #[test]
    fn integers_are_plain_digits() {
        for bad in [
            "+1",
            "-1",
            " 1",
            "1 ",
            "",
            "0x10",
            "1e3",
            "18446744073709551616",
        ] {
            assert!(parse_u64("index", bad).is_err(), "{bad:?} accepted");
        }
        assert_eq!(parse_u64("index", "007"), Ok(7));
        assert_eq!(parse_u64("index", "18446744073709551615"), Ok(u64::MAX));
        let q = Query::parse(Some("index=%2B1"), &["index"]).unwrap();
        assert!(q.u64("index").unwrap_err().contains("\"+1\""));
    }
}
