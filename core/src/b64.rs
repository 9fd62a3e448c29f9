//! Standard base64 (RFC 4648 section 4, with padding), strict as the base64
//! crate's `STANDARD` engine: padding required, no white space, and the bits
//! that padding drops must be zero. Written here (the base64 crate's generic
//! engine is ~6 KB of the browser's wasm, base64ct's ~6.5 KB); the tests pin
//! it to the base64 crate. Symbols are mapped by arithmetic, not a table,
//! and nothing branches on a symbol's value (as in base64ct): the same code
//! reads signing keys.

#[cfg(test)]
const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// The symbol of a 6-bit value.
fn symbol(v: u8) -> u8 {
    let v = i16::from(v);
    // 'A' + v, then shifted for each range v is beyond (-1 >> 8 is -1).
    let mut d = v + 65;
    d += ((25 - v) >> 8) & 6;
    d -= ((51 - v) >> 8) & 75;
    d -= ((61 - v) >> 8) & 15;
    d += ((62 - v) >> 8) & 3;
    d as u8
}

/// The 6-bit value of a symbol, or -1.
const fn value(c: u8) -> i16 {
    let c = c as i16;
    // -1 plus (value + 1) for the range `c` is in: (lo - c) & (c - hi) is
    // negative exactly when lo < c < hi.
    let mut r = -1;
    r += (((0x40 - c) & (c - 0x5b)) >> 8) & (c - 64);
    r += (((0x60 - c) & (c - 0x7b)) >> 8) & (c - 70);
    r += (((0x2f - c) & (c - 0x3a)) >> 8) & (c + 5);
    r += (((0x2a - c) & (c - 0x2c)) >> 8) & 63;
    r += (((0x2e - c) & (c - 0x30)) >> 8) & 64;
    r
}

/// Base64 of `b`, padded.
pub(crate) fn encode(b: &[u8]) -> String {
    let mut out = String::with_capacity(b.len().div_ceil(3) * 4);
    for c in b.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for k in 0..4 {
            if k <= c.len() {
                out.push(char::from(symbol((n >> (18 - 6 * k)) as u8 & 63)));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The bytes `s` encodes; `None` unless `s` is canonical padded base64.
/// Constant-time in the symbols (it reads signing keys).
pub(crate) fn decode(s: &str) -> Option<Vec<u8>> {
    decode_with(s, value)
}

/// [`value`] of every byte, computed at build time.
const VALUES: [i8; 256] = {
    let mut t = [0i8; 256];
    let mut c = 0;
    while c < 256 {
        t[c] = value(c as u8) as i8;
        c += 1;
    }
    t
};

/// As [`decode`], for text that is not secret (ciphertexts, wraps): the same
/// rules, with symbols looked up in a table (5x as fast; the lookup's
/// address depends on the symbol, so never for keys). The opening pass
/// decodes every opening's ciphertext with it.
///
/// Every quad but the last is decoded without the padding checks, straight
/// into the output (a `=` there is outside the alphabet, as [`decode`] has
/// it); the last through [`decode_with`]. Measured in wasm (simd128) in
/// Node, a 92-symbol opening: ~180-230 ns a decode instead of ~350-500
/// through [`decode_with`] alone (1M decodes, micro-benchmark); in the
/// page's opening pass (an export of 100k values, Node) its CPU samples went
/// from 0.69 to 0.35 of SHA-256's (the commitments, a fixed amount).
pub(crate) fn decode_public(s: &str) -> Option<Vec<u8>> {
    let b = s.as_bytes();
    if !b.len().is_multiple_of(4) {
        return None;
    }
    let body = b.len().saturating_sub(4);
    // Not vec![0; n]: its zeroed allocation kept __rust_alloc_zeroed in
    // the verifier's wasm (12 bytes more), though it never decodes
    // a ciphertext.
    let mut out = Vec::with_capacity(body / 4 * 3 + 3);
    out.resize(body / 4 * 3, 0);
    for (o, q) in out.chunks_exact_mut(3).zip(b[..body].chunks_exact(4)) {
        let v = |k: usize| VALUES[usize::from(q[k])];
        let (a, b, c, d) = (v(0), v(1), v(2), v(3));
        // Out at the first symbol outside the alphabet (one check at the
        // end measured the same; simd128 vectorizes that loop into lane by
        // lane table loads, larger).
        if (a | b | c | d) < 0 {
            return None;
        }
        let n = ((a as u32 & 63) << 18)
            | ((b as u32 & 63) << 12)
            | ((c as u32 & 63) << 6)
            | (d as u32 & 63);
        o[0] = (n >> 16) as u8;
        o[1] = (n >> 8) as u8;
        o[2] = n as u8;
    }
    // Not at a character's start: not base64 either.
    let last = decode_with(s.get(body..)?, |c| i16::from(VALUES[usize::from(c)]))?;
    out.extend_from_slice(&last);
    Some(out)
}

// The decoder, with `value` mapping a symbol to its 6-bit value or -1.
#[inline(always)]
fn decode_with(s: &str, value: impl Fn(u8) -> i16) -> Option<Vec<u8>> {
    let s = s.as_bytes();
    if !s.len().is_multiple_of(4) {
        return None;
    }
    let mut out = Vec::with_capacity(s.len() / 4 * 3);
    // Any symbol outside the alphabet makes `bad` negative.
    let mut bad = 0i16;
    for (i, q) in s.chunks_exact(4).enumerate() {
        // Padding: only in the last quad, as "xx==" or "xxx=".
        let pad = match (q[2], q[3]) {
            (b'=', b'=') => 2,
            (_, b'=') => 1,
            _ => 0,
        };
        if pad > 0 && (i + 1) * 4 != s.len() {
            return None;
        }
        let mut n = 0u32;
        for &c in &q[..4 - pad] {
            let v = value(c);
            bad |= v;
            n = (n << 6) | (v as u32 & 63);
        }
        n <<= 6 * pad as u32;
        // The bits the padding drops must be zero.
        if pad > 0 && n & (0xffff >> (8 * (2 - pad))) != 0 {
            return None;
        }
        out.extend_from_slice(&n.to_be_bytes()[1..4 - pad]);
    }
    (bad >= 0).then_some(out)
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
            "AéAAAAA", "AAAAAAé", "AAAA=AAA", "AAA=AAAA", "==AAAAAA",
        ] {
            assert_eq!(super::decode(s), STANDARD.decode(s).ok(), "{s:?}");
            assert_eq!(super::decode_public(s), STANDARD.decode(s).ok(), "{s:?}");
        }
        for n in 0..70u8 {
            let b: Vec<u8> = (0..n).map(|i| i.wrapping_mul(37).wrapping_add(n)).collect();
            assert_eq!(super::encode(&b), STANDARD.encode(&b));
            assert_eq!(super::decode(&super::encode(&b)), Some(b));
        }
    }

    #[test]
    fn every_symbol_maps_as_the_alphabet_says() {
        for v in 0..64u8 {
            assert_eq!(super::symbol(v), super::ALPHABET[usize::from(v)], "{v}");
        }
        for c in 0..=255u8 {
            let want = super::ALPHABET
                .iter()
                .position(|&a| a == c)
                .map_or(-1, |p| p as i16);
            assert_eq!(super::value(c), want, "{c}");
            assert_eq!(i16::from(super::VALUES[usize::from(c)]), want, "{c}");
        }
    }

    proptest! {
        #[test]
        fn decode_matches_the_base64_crate(s in "[A-Za-z0-9+/=\\-_ é]{0,40}") {
            prop_assert_eq!(super::decode(&s), STANDARD.decode(&s).ok());
            prop_assert_eq!(super::decode_public(&s), STANDARD.decode(&s).ok());
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
            prop_assert_eq!(super::decode_public(&s), STANDARD.decode(&s).ok());
        }

        #[test]
        fn encode_matches_the_base64_crate(b in prop::collection::vec(any::<u8>(), 0..100)) {
            prop_assert_eq!(super::encode(&b), STANDARD.encode(&b));
        }
    }
}
