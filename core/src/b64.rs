//! Standard base64 (RFC 4648 section 4, with padding), strict as the base64
//! crate's `STANDARD` engine: padding required, no white space, and the bits
//! that padding drops must be zero. Hand-written because the crate's generic
//! engine is ~6 KB of the browser's wasm; tested against it.

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Base64 of `b`, padded.
pub(crate) fn encode(b: &[u8]) -> String {
    let mut out = String::with_capacity(b.len().div_ceil(3) * 4);
    for c in b.chunks(3) {
        let byte = |i: usize| u32::from(c.get(i).copied().unwrap_or(0));
        let n = (byte(0) << 16) | (byte(1) << 8) | byte(2);
        for i in 0..4 {
            out.push(if i <= c.len() {
                char::from(ALPHABET[(n >> (18 - 6 * i)) as usize & 63])
            } else {
                '='
            });
        }
    }
    out
}

fn value(c: u8) -> Option<u32> {
    Some(u32::from(match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        _ => return None,
    }))
}

/// The bytes `s` encodes; `None` unless `s` is canonical padded base64.
pub(crate) fn decode(s: &str) -> Option<Vec<u8>> {
    let b = s.as_bytes();
    if b.len() % 4 != 0 {
        return None;
    }
    let mut out = Vec::with_capacity(b.len() / 4 * 3);
    let quads = b.len() / 4;
    for (k, q) in b.chunks(4).enumerate() {
        let pad = if k + 1 == quads {
            q.iter().rev().take_while(|&&c| c == b'=').count()
        } else {
            0
        };
        if pad > 2 {
            return None;
        }
        let mut n = 0u32;
        for &c in &q[..4 - pad] {
            n = (n << 6) | value(c)?;
        }
        n <<= 6 * pad;
        // The bits the padding drops must be zero.
        if pad > 0 && n & ((1 << (8 * pad)) - 1) != 0 {
            return None;
        }
        out.extend_from_slice(&n.to_be_bytes()[1..4 - pad]);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;
    use proptest::prelude::*;

    #[test]
    fn small_cases_match_the_base64_crate() {
        for s in [
            "", "=", "==", "===", "====", "A", "AA", "AAA", "AAAA", "AA==", "AB==", "AQ==", "AAA=",
            "AAB=", "AAE=", "A===", "A=A=", "AA=A", "=AAA", "AAAA====", "AA==AAAA", "Zm9v",
            "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy", "Zm9 v", "Zm9v\n", "+/+/", "-_-_", "AAAAAA==",
        ] {
            assert_eq!(super::decode(s), STANDARD.decode(s).ok(), "{s:?}");
        }
        for n in 0..70u8 {
            let b: Vec<u8> = (0..n).map(|i| i.wrapping_mul(37).wrapping_add(n)).collect();
            assert_eq!(super::encode(&b), STANDARD.encode(&b));
            assert_eq!(super::decode(&super::encode(&b)), Some(b));
        }
    }

    proptest! {
        #[test]
        fn decode_matches_the_base64_crate(s in "[A-Za-z0-9+/=\\-_ ]{0,24}") {
            prop_assert_eq!(super::decode(&s), STANDARD.decode(&s).ok());
        }

        #[test]
        fn decode_matches_on_near_valid_text(b in prop::collection::vec(any::<u8>(), 0..40), cut in 0usize..3, last in 0u8..64) {
            let mut s = STANDARD.encode(&b).into_bytes();
            // Change the last symbol before the padding, then maybe drop padding.
            if let Some(i) = s.iter().rposition(|&c| c != b'=') {
                s[i] = super::ALPHABET[usize::from(last)];
            }
            s.truncate(s.len().saturating_sub(cut));
            let s = String::from_utf8(s).unwrap();
            prop_assert_eq!(super::decode(&s), STANDARD.decode(&s).ok());
        }

        #[test]
        fn encode_matches_the_base64_crate(b in prop::collection::vec(any::<u8>(), 0..100)) {
            prop_assert_eq!(super::encode(&b), STANDARD.encode(&b));
        }
    }
}
