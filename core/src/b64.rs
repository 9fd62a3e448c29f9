//! Standard base64 (RFC 4648 section 4, with padding), strict as the base64
//! crate's `STANDARD` engine: padding required, no white space, and the bits
//! that padding drops must be zero. RustCrypto's base64ct does the work (the
//! base64 crate's generic engine is ~6 KB of the browser's wasm); the tests
//! pin it to the base64 crate.

use base64ct::{Base64, Encoding};

#[cfg(test)]
const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Base64 of `b`, padded.
pub(crate) fn encode(b: &[u8]) -> String {
    Base64::encode_string(b)
}

/// The bytes `s` encodes; `None` unless `s` is canonical padded base64.
pub(crate) fn decode(s: &str) -> Option<Vec<u8>> {
    Base64::decode_vec(s).ok()
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
