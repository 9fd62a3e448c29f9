//! SHA-256 of four messages at once: one message per u32 lane of a wasm
//! simd128 vector, every round applied to all four lanes with i32x4 ops.
//!
//! Messages of different lengths share the lanes without waiting for each
//! other: each lane walks its own message block by block, and when its
//! message ends, the lane's hash is taken out and the lane restarts from the
//! initial state with the next message (multi-buffer scheduling). Only the
//! last few blocks of a batch leave lanes idle.

use super::Hash;
use core::arch::wasm32::*;

/// FIPS 180-4 4.2.2.
const K32: [u32; 64] = [
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
];

/// FIPS 180-4 5.3.3.
const IV32: [u32; 8] = [
    0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
];

/// The round constants, one vector per round (all lanes the same).
const K: [v128; 64] = splat(K32);

/// The initial hash value in every lane.
const IV: State = splat(IV32);

/// Each word in all four lanes.
const fn splat<const N: usize>(words: [u32; N]) -> [v128; N] {
    let mut out = [u32x4(0, 0, 0, 0); N];
    let mut i = 0;
    while i < N {
        out[i] = u32x4(words[i], words[i], words[i], words[i]);
        i += 1;
    }
    out
}

/// All ones in lane `i`, zeros elsewhere.
const LANE: [v128; 4] = [
    u32x4(!0, 0, 0, 0),
    u32x4(0, !0, 0, 0),
    u32x4(0, 0, !0, 0),
    u32x4(0, 0, 0, !0),
];

type State = [v128; 8];

#[inline(always)]
fn rotr(x: v128, n: u32) -> v128 {
    v128_or(u32x4_shr(x, n), u32x4_shl(x, 32 - n))
}

#[inline(always)]
fn add(a: v128, b: v128) -> v128 {
    i32x4_add(a, b)
}

/// Message words of one block per lane, as little-endian loads: `w[i][lane]`.
/// Byte-swapped to big-endian in vector form by [`compress`].
type Words = [[u32; 4]; 16];

/// One block for each lane.
fn compress(state: &mut State, words: &Words) {
    // Reverses the bytes of each u32 lane: little-endian loads to big-endian words.
    let bswap =
        |v: v128| i8x16_shuffle::<3, 2, 1, 0, 7, 6, 5, 4, 11, 10, 9, 8, 15, 14, 13, 12>(v, v);
    let mut w = words.map(|[a, b, c, d]| bswap(u32x4(a, b, c, d)));
    let [mut a, mut b, mut c, mut d, mut e, mut f, mut g, mut h] = *state;

    let mut bc = v128_xor(b, c);
    macro_rules! round {
        ($a:ident, $b:ident, $c:ident, $d:ident, $e:ident, $f:ident, $g:ident, $h:ident, $k:expr, $j:expr) => {
            let s1 = v128_xor(v128_xor(rotr($e, 6), rotr($e, 11)), rotr($e, 25));
            // Ch(e, f, g): f where e is set, g elsewhere.
            let ch = v128_bitselect($f, $g, $e);
            let t1 = add(add(add($h, s1), add(ch, $k)), w[$j]);
            let s0 = v128_xor(v128_xor(rotr($a, 2), rotr($a, 13)), rotr($a, 22));
            // Maj(a, b, c) = b ^ ((a ^ b) & (b ^ c)), where this round's
            // b ^ c is the last round's a ^ b.
            let ab = v128_xor($a, $b);
            let maj = v128_xor($b, v128_and(ab, bc));
            bc = ab;
            $d = add($d, t1);
            $h = add(t1, add(s0, maj));
        };
    }

    // 64 rounds as 8 passes of 8 unrolled rounds (the names are back in
    // place after 8). W lives in a ring of 16: from pass 2 on, each pass
    // first computes its 8 words over the oldest 8.
    for pass in 0..8 {
        let k = &K[8 * pass..8 * pass + 8];
        let o = 8 * (pass & 1);
        if pass >= 2 {
            // W[t] = σ1(W[t-2]) + W[t-7] + σ0(W[t-15]) + W[t-16].
            for j in o..o + 8 {
                let x = w[(j + 1) & 15];
                let s0 = v128_xor(v128_xor(rotr(x, 7), rotr(x, 18)), u32x4_shr(x, 3));
                let y = w[(j + 14) & 15];
                let s1 = v128_xor(v128_xor(rotr(y, 17), rotr(y, 19)), u32x4_shr(y, 10));
                w[j] = add(add(w[j], s0), add(w[(j + 9) & 15], s1));
            }
        }
        round!(a, b, c, d, e, f, g, h, k[0], o);
        round!(h, a, b, c, d, e, f, g, k[1], o + 1);
        round!(g, h, a, b, c, d, e, f, k[2], o + 2);
        round!(f, g, h, a, b, c, d, e, k[3], o + 3);
        round!(e, f, g, h, a, b, c, d, k[4], o + 4);
        round!(d, e, f, g, h, a, b, c, k[5], o + 5);
        round!(c, d, e, f, g, h, a, b, k[6], o + 6);
        round!(b, c, d, e, f, g, h, a, k[7], o + 7);
    }

    for (s, v) in state.iter_mut().zip([a, b, c, d, e, f, g, h]) {
        *s = add(*s, v);
    }
}

/// Lane `lane` of the state as a hash (one copy, not one per lane).
#[inline(never)]
fn lane_hash(state: &State, lane: usize) -> Hash {
    // Byte indices that move lane `lane`'s word, byte-swapped, to lane 0.
    const PICK: [v128; 4] = [
        u8x16(3, 2, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0),
        u8x16(7, 6, 5, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0),
        u8x16(11, 10, 9, 8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0),
        u8x16(15, 14, 13, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0),
    ];
    let mut out = [0u8; 32];
    for (o, v) in out.chunks_exact_mut(4).zip(state) {
        let x = u32x4_extract_lane::<0>(i8x16_swizzle(*v, PICK[lane]));
        o.copy_from_slice(&x.to_le_bytes());
    }
    Hash(out)
}

/// Block `j` of the padded message `prefix || data`, as little-endian words
/// into lane `lane` of `words`. Not inlined: the loop over the four lanes
/// would otherwise hold four copies.
#[inline(never)]
fn load_block(words: &mut Words, lane: usize, prefix: u8, data: &[u8], j: usize) {
    let mut buf = [0u8; 64];
    // Message byte p (p >= 1) is data[p - 1]; this block holds bytes 64j..64j+64.
    let len = data.len() + 1;
    let start = 64 * j;
    let (at, from) = if j == 0 {
        buf[0] = prefix;
        (1, 0)
    } else {
        (0, start - 1)
    };
    if from < data.len() {
        let n = (data.len() - from).min(64 - at);
        buf[at..at + n].copy_from_slice(&data[from..from + n]);
    }
    if (start..start + 64).contains(&len) {
        buf[len - start] = 0x80;
    }
    if start + 64 >= len + 9 {
        // The last block: the message length in bits, big-endian.
        buf[56..].copy_from_slice(&(len as u64 * 8).to_be_bytes());
    }
    for (i, word) in buf.chunks_exact(4).enumerate() {
        words[i][lane] = u32::from_le_bytes([word[0], word[1], word[2], word[3]]);
    }
}

/// Blocks of the padded message `prefix || data`.
fn blocks(data: &[u8]) -> usize {
    (data.len() + 1 + 8) / 64 + 1
}

/// SHA-256(prefix || m) of each message into `out` (same length).
pub(super) fn hash_prefixed(prefix: u8, msgs: &[&[u8]], out: &mut [Hash]) {
    debug_assert_eq!(msgs.len(), out.len());
    // Per lane: (message index, next block, block count); None when idle.
    let mut lanes: [Option<(usize, usize, usize)>; 4] = [None; 4];
    let mut next = 0;
    let mut state = IV;
    let mut words: Words = [[0; 4]; 16];
    loop {
        let mut busy = false;
        for (l, lane) in lanes.iter_mut().enumerate() {
            if lane.is_none() && next < msgs.len() {
                *lane = Some((next, 0, blocks(msgs[next])));
                next += 1;
            }
            if let Some((m, j, _)) = *lane {
                load_block(&mut words, l, prefix, msgs[m], j);
                busy = true;
            }
        }
        if !busy {
            return;
        }
        compress(&mut state, &words);
        let mut restart = u32x4(0, 0, 0, 0);
        for (l, lane) in lanes.iter_mut().enumerate() {
            if let Some((m, j, n)) = lane {
                *j += 1;
                if j == n {
                    out[*m] = lane_hash(&state, l);
                    restart = v128_or(restart, LANE[l]);
                    *lane = None;
                }
            }
        }
        if v128_any_true(restart) {
            for (s, f) in state.iter_mut().zip(IV) {
                *s = v128_bitselect(f, *s, restart);
            }
        }
    }
}

/// RFC 9162 node hashes of four (left, right) pairs: the 65-byte message
/// `0x01 || left || right` is always two blocks.
pub(super) fn node_hashes4(pairs: &[(Hash, Hash); 4]) -> [Hash; 4] {
    let mut state = IV;
    let mut words: Words = [[0; 4]; 16];
    let mut buf = [0u8; 64];
    buf[0] = 1;
    for (l, (left, right)) in pairs.iter().enumerate() {
        buf[1..33].copy_from_slice(&left.0);
        buf[33..].copy_from_slice(&right.0[..31]);
        for (i, word) in buf.chunks_exact(4).enumerate() {
            words[i][l] = u32::from_le_bytes([word[0], word[1], word[2], word[3]]);
        }
    }
    compress(&mut state, &words);
    // Second block: right[31], 0x80, zeros, and the length 520 bits.
    let mut words: Words = [[0; 4]; 16];
    for (l, (_, right)) in pairs.iter().enumerate() {
        words[0][l] = u32::from_le_bytes([right.0[31], 0x80, 0, 0]);
        words[15][l] = u32::from_le_bytes((65u32 * 8).to_be_bytes());
    }
    compress(&mut state, &words);
    [0, 1, 2, 3].map(|l| lane_hash(&state, l))
}
