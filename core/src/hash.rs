//! The one hash type and the two RFC 9162 hash functions.

use sha2::{Digest, Sha256};
use std::fmt;

#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
mod x4;

/// A SHA-256 hash: a leaf hash, an interior node hash or a tree root.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Hash(pub [u8; 32]);

/// RFC 9162 2.1.1: the root of the empty tree is SHA-256 of the empty string.
pub const EMPTY_ROOT: Hash = Hash([
    0xe3, 0xb0, 0xc4, 0x42, 0x98, 0xfc, 0x1c, 0x14, 0x9a, 0xfb, 0xf4, 0xc8, 0x99, 0x6f, 0xb9, 0x24,
    0x27, 0xae, 0x41, 0xe4, 0x64, 0x9b, 0x93, 0x4c, 0xa4, 0x95, 0x99, 0x1b, 0x78, 0x52, 0xb8, 0x55,
]);

/// RFC 9162 2.1.1: leaf hash = SHA-256(0x00 || entry).
///
/// In Stele the entry is the line's bytes without its `\n`.
pub fn leaf_hash(entry: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(entry);
    Hash(h.finalize().into())
}

/// RFC 9162 2.1.1: node hash = SHA-256(0x01 || left || right).
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut buf = [0u8; 65];
    buf[0] = 1;
    buf[1..33].copy_from_slice(&left.0);
    buf[33..].copy_from_slice(&right.0);
    Hash(Sha256::digest(buf).into())
}

/// [`leaf_hash`] of each line, appended to `out` in order.
///
/// Several lines are hashed at once where the target allows it:
/// - in the browser build (wasm32 with simd128) four, one per vector lane,
///   which is 2-3 times faster than one at a time;
/// - on x86_64, 16 (AVX-512), 8 (AVX2) or 4 (SHA extensions) with
///   tape-sha256's multi-buffer kernels, lines of one length in blocks
///   together so that a pass's lanes finish together. `stele bench verify`
///   (1M entries, 2 cores, both builds in one run): `stele verify` 0.49 ->
///   0.38 s, python/verify 11.9 -> 15.3, go/verify 4.5 -> 5.5. sha2 stays
///   the one-at-a-time hash (and the reference of this crate's tests).
///
/// Elsewhere this is [`leaf_hash`] in a loop (sha2 there uses the CPU's SHA
/// instructions where it has them).
pub fn leaf_hashes(lines: &[&[u8]], out: &mut Vec<Hash>) {
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    if lines.len() >= 4 {
        let at = out.len();
        out.resize(at + lines.len(), Hash::default());
        x4::hash_prefixed(0, lines, &mut out[at..]);
        return;
    }
    #[cfg(target_arch = "x86_64")]
    if lines.len() >= 4 {
        leaf_hashes_lanes(lines, out);
        return;
    }
    out.extend(lines.iter().map(|l| leaf_hash(l)));
}

/// [`leaf_hashes`] on tape-sha256's lanes: the lines are taken in order of
/// their number of SHA-256 blocks (a pass over several lanes lasts as long
/// as its longest message: in their own order, lines of 150 to 600 bytes
/// gained nothing over sha2, grouped 1.1-1.3x), and the digests put back in
/// the lines' order.
#[cfg(target_arch = "x86_64")]
fn leaf_hashes_lanes(lines: &[&[u8]], out: &mut Vec<Hash>) {
    // Blocks of 0x00 || line with SHA-256's padding (0x80 and the length).
    let blocks = |l: &[u8]| (l.len() + 1 + 9).div_ceil(64);
    let mut order: Vec<usize> = (0..lines.len()).collect();
    order.sort_by_key(|&i| blocks(lines[i]));
    let sorted: Vec<&[u8]> = order.iter().map(|&i| lines[i]).collect();
    let mut digests = vec![[0u8; 32]; lines.len()];
    tape_sha256::hash_many_prefixed(&[0u8], &sorted, &mut digests);
    let at = out.len();
    out.resize(at + lines.len(), Hash::default());
    for (&i, d) in order.iter().zip(digests) {
        out[at + i] = Hash(d);
    }
}

/// [`node_hash`] of each (left, right) pair, appended to `out` in order.
///
/// Four pairs at a time in the browser build, as in [`leaf_hashes`].
pub fn node_hashes(pairs: &[(Hash, Hash)], out: &mut Vec<Hash>) {
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    let pairs = {
        let mut quads = pairs.chunks_exact(4);
        for q in &mut quads {
            // Always four (no panic path for the impossible case).
            if let Ok(q) = <&[(Hash, Hash); 4]>::try_from(q) {
                out.extend(x4::node_hashes4(q));
            }
        }
        quads.remainder()
    };
    out.extend(pairs.iter().map(|(l, r)| node_hash(l, r)));
}

impl Hash {
    /// Lowercase hex, as in an entry's `prev` field.
    pub fn to_hex(&self) -> String {
        self.hex_bytes().iter().map(|&c| char::from(c)).collect()
    }

    /// [`Hash::to_hex`] as bytes, without allocating (for line building).
    pub fn hex_bytes(&self) -> [u8; 64] {
        // Both digits of a byte from one table (each line the writer builds
        // holds one: digit by digit it was 29 of 786 samples of the serial
        // part of `stele bench append --entries 200000`, `perf record`).
        let mut out = [0u8; 64];
        for (o, b) in out.chunks_exact_mut(2).zip(self.0) {
            o.copy_from_slice(&HEX_PAIRS[usize::from(b)]);
        }
        out
    }

    /// Parses exactly 64 lowercase hex digits.
    pub fn from_hex(s: &[u8]) -> Option<Self> {
        if s.len() != 64 {
            return None;
        }
        // On the verifier's hot path: table lookups, out at the first bad
        // digit. Not one check at the end: for simd128 that loop was
        // auto-vectorized into lane by lane table loads, no faster in V8
        // (5M calls in a wasm micro-benchmark: within noise of this loop)
        // and 868 bytes more of the verifier's wasm after wasm-opt.
        let mut out = [0u8; 32];
        for (o, pair) in out.iter_mut().zip(s.chunks_exact(2)) {
            let (hi, lo) = (HEX_VAL[usize::from(pair[0])], HEX_VAL[usize::from(pair[1])]);
            if (hi | lo) & 0x80 != 0 {
                return None;
            }
            *o = (hi << 4) | lo;
        }
        Some(Self(out))
    }

    /// Standard base64 with padding, as in checkpoints and proofs.
    pub fn to_base64(&self) -> String {
        crate::b64::encode(&self.0)
    }

    /// Parses standard base64 of exactly 32 bytes.
    pub fn from_base64(s: &str) -> Option<Self> {
        let v = crate::b64::decode(s)?;
        Some(Self(v.try_into().ok()?))
    }

    /// A short form for messages: the first 4 hex digits and an ellipsis.
    pub fn short(&self) -> String {
        let mut h = self.to_hex();
        h.truncate(8);
        h.push('…');
        h
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

// The two lowercase hex digits of each byte value.
const HEX_PAIRS: [[u8; 2]; 256] = {
    let mut t = [[0u8; 2]; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = [HEX[i >> 4], HEX[i & 15]];
        i += 1;
    }
    t
};

// Lowercase hex digit values; 0x80 marks every other byte.
pub(crate) const HEX_VAL: [u8; 256] = {
    let mut t = [0x80u8; 256];
    let mut i = 0;
    while i < 10 {
        t[b'0' as usize + i] = i as u8;
        i += 1;
    }
    let mut i = 0;
    while i < 6 {
        t[b'a' as usize + i] = 10 + i as u8;
        i += 1;
    }
    t
};

impl fmt::Debug for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Hash({})", self.to_hex())
    }
}

impl fmt::Display for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_base64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_root_is_sha256_of_nothing() {
        assert_eq!(EMPTY_ROOT.0, <[u8; 32]>::from(Sha256::digest([])));
    }

    #[test]
    fn batches_match_one_at_a_time() {
        // The portable path here; wasm/tests/hash4.rs runs the simd128 one.
        let data: Vec<u8> = (0..700u32).map(|i| (i * 31 + 7) as u8).collect();
        let lines: Vec<&[u8]> = (0..=600).map(|n| &data[n % 97..n % 97 + n]).collect();
        for count in [0, 1, 3, 4, 5, 8, 601] {
            let mut out = vec![Hash([7; 32])];
            leaf_hashes(&lines[..count], &mut out);
            assert_eq!(out.len(), count + 1);
            assert_eq!(out[0], Hash([7; 32]));
            for (line, h) in lines.iter().zip(&out[1..]) {
                assert_eq!(*h, leaf_hash(line));
            }
        }
        let pairs: Vec<(Hash, Hash)> = (0..9u8)
            .map(|i| (leaf_hash(&[i]), leaf_hash(&[i, i])))
            .collect();
        let mut out = Vec::new();
        node_hashes(&pairs, &mut out);
        let want: Vec<Hash> = pairs.iter().map(|(l, r)| node_hash(l, r)).collect();
        assert_eq!(out, want);
    }

    proptest::proptest! {
        // Any batch (lengths across block and padding edges, in any
        // order) hashes as one line at a time with sha2 does: on x86_64 the
        // multi-buffer lanes are checked against sha2 here.
        #[test]
        fn any_batch_matches_sha2_one_at_a_time(
            lines in proptest::collection::vec(proptest::collection::vec(proptest::num::u8::ANY, 0..700), 0..80)
        ) {
            let slices: Vec<&[u8]> = lines.iter().map(Vec::as_slice).collect();
            let mut out = vec![Hash([9; 32])];
            leaf_hashes(&slices, &mut out);
            proptest::prop_assert_eq!(out.len(), lines.len() + 1);
            proptest::prop_assert_eq!(out[0], Hash([9; 32]));
            for (line, h) in slices.iter().zip(&out[1..]) {
                let mut one = Sha256::new();
                one.update([0u8]);
                one.update(line);
                proptest::prop_assert_eq!(h.0, <[u8; 32]>::from(one.finalize()));
            }
        }
    }

    #[test]
    fn every_length_to_five_blocks_matches_sha2() {
        // Each length from 0 to 320 bytes, in a batch in order and reversed.
        let data: Vec<u8> = (0..400u32).map(|i| (i * 131 + 17) as u8).collect();
        let mut lines: Vec<&[u8]> = (0..=320).map(|n| &data[n % 50..n % 50 + n]).collect();
        for _ in 0..2 {
            let mut out = Vec::new();
            leaf_hashes(&lines, &mut out);
            for (line, h) in lines.iter().zip(&out) {
                assert_eq!(*h, leaf_hash(line), "length {}", line.len());
            }
            lines.reverse();
        }
    }

    #[test]
    fn hex_round_trip_and_strictness() {
        let h = leaf_hash(b"x");
        assert_eq!(Hash::from_hex(h.to_hex().as_bytes()), Some(h));
        assert_eq!(Hash::from_hex(h.to_hex().to_uppercase().as_bytes()), None);
        assert_eq!(Hash::from_hex(&h.to_hex().as_bytes()[1..]), None);
        // Every byte value at every position: a digit changes that nibble,
        // anything else is refused.
        let text = h.to_hex().into_bytes();
        for at in 0..64 {
            for b in 0..=255u8 {
                let mut t = text.clone();
                t[at] = b;
                let want = match b {
                    b'0'..=b'9' | b'a'..=b'f' => {
                        let v = if b <= b'9' { b - b'0' } else { b - b'a' + 10 };
                        let mut x = h.0;
                        let shift = if at % 2 == 0 { 4 } else { 0 };
                        x[at / 2] = (x[at / 2] & !(0x0f << shift)) | (v << shift);
                        Some(Hash(x))
                    }
                    _ => None,
                };
                assert_eq!(Hash::from_hex(&t), want, "{at} {b}");
                if at < 32 {
                    let k = crate::sealed::KeyId::from_hex(
                        std::str::from_utf8(&t[..32]).unwrap_or("?"),
                    );
                    let want_k = want.map(|w| crate::sealed::KeyId(w.0[..16].try_into().unwrap()));
                    assert_eq!(k, want_k, "{at} {b}");
                }
            }
        }
    }
}
