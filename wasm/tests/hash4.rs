//! The batch hash functions in Node, where they hash four messages per
//! simd128 vector: the same hashes as one-at-a-time sha2 for every length
//! around the block boundaries, mixed lengths in one batch and batch sizes
//! that are not a multiple of four. Plus a timing print (not a pass/fail
//! check): run with `--release` for meaningful numbers.
#![cfg(target_arch = "wasm32")]

use stele_core::hash::{Hash, leaf_hash, leaf_hashes, node_hash, node_hashes};
use wasm_bindgen_test::{console_log, wasm_bindgen_test};

/// xorshift64*: deterministic test bytes.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
    fn hash(&mut self) -> Hash {
        let mut h = [0u8; 32];
        h.iter_mut().for_each(|b| *b = self.next() as u8);
        Hash(h)
    }
}

fn check_leaves(lines: &[Vec<u8>]) {
    let slices: Vec<&[u8]> = lines.iter().map(Vec::as_slice).collect();
    // Appends after what is already there.
    let mut out = vec![Hash([7; 32])];
    leaf_hashes(&slices, &mut out);
    assert_eq!(out.len(), lines.len() + 1);
    assert_eq!(out[0], Hash([7; 32]));
    for (i, (line, h)) in lines.iter().zip(&out[1..]).enumerate() {
        assert_eq!(
            *h,
            leaf_hash(line),
            "line {i} of {} ({} bytes)",
            lines.len(),
            line.len()
        );
    }
}

#[wasm_bindgen_test]
fn known_answer() {
    // RFC 9162: the leaf hash of an empty entry, SHA-256(0x00).
    let mut out = Vec::new();
    leaf_hashes(&[b"", b"", b"", b"", b""], &mut out);
    for h in out {
        assert_eq!(
            h.to_hex(),
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
        );
    }
}

#[wasm_bindgen_test]
fn every_length_to_700_in_one_batch() {
    let mut rng = Rng(1);
    let lines: Vec<Vec<u8>> = (0..=700).map(|n| rng.bytes(n)).collect();
    check_leaves(&lines);
    // Longest first, and shuffled: lanes finish at different times.
    let rev: Vec<Vec<u8>> = lines.iter().rev().cloned().collect();
    check_leaves(&rev);
    let mut shuffled = lines.clone();
    for i in (1..shuffled.len()).rev() {
        shuffled.swap(i, (rng.next() % (i as u64 + 1)) as usize);
    }
    check_leaves(&shuffled);
}

#[wasm_bindgen_test]
fn block_boundaries_in_every_lane_and_batch_size() {
    // With the 0x00 prefix the message is one byte longer than the line:
    // messages of 55/56 and 63/64 bytes (mod 64) change the block count.
    let mut lens = vec![0usize, 1, 2, 3, 4, 5, 1000, 4096, 10_000];
    for b in 0..6 {
        lens.extend([54, 55, 56, 62, 63, 64].map(|l| 64 * b + l));
    }
    let mut rng = Rng(2);
    for &l in &lens {
        for count in 0..=9 {
            // All lanes the same length.
            let same: Vec<Vec<u8>> = (0..count).map(|_| rng.bytes(l)).collect();
            check_leaves(&same);
            // This length beside random other lengths.
            let mixed: Vec<Vec<u8>> = (0..count)
                .map(|i| {
                    if i % 2 == 0 {
                        rng.bytes(l)
                    } else {
                        let n = (rng.next() % 400) as usize;
                        rng.bytes(n)
                    }
                })
                .collect();
            check_leaves(&mixed);
        }
    }
    // One long line among short ones: the other lanes go through many lines.
    let mut lines: Vec<Vec<u8>> = (0..50).map(|i| rng.bytes(i * 3)).collect();
    lines.insert(1, rng.bytes(20_000));
    check_leaves(&lines);
}

#[wasm_bindgen_test]
fn node_hashes_match_for_every_count() {
    let mut rng = Rng(3);
    for count in 0..=17 {
        let pairs: Vec<(Hash, Hash)> = (0..count).map(|_| (rng.hash(), rng.hash())).collect();
        let mut out = vec![Hash([9; 32])];
        node_hashes(&pairs, &mut out);
        assert_eq!(out.len(), count + 1);
        for (i, ((l, r), h)) in pairs.iter().zip(&out[1..]).enumerate() {
            assert_eq!(*h, node_hash(l, r), "pair {i} of {count}");
        }
    }
}

/// Prints MB/s for one-at-a-time and batch hashing; asserts only equality.
#[wasm_bindgen_test]
fn hash_speed() {
    let now = js_sys::Date::now;
    let mb = if cfg!(debug_assertions) { 1 } else { 64 };
    let mut rng = Rng(4);
    // ~250-byte lines (200..300 bytes), like entry lines.
    let mut data = Vec::new();
    let mut lines = Vec::new();
    while data.len() < mb << 20 {
        let n = 200 + (rng.next() % 101) as usize;
        lines.push(data.len()..data.len() + n);
        data.extend(rng.bytes(n));
    }
    let slices: Vec<&[u8]> = lines.iter().map(|r| &data[r.clone()]).collect();
    let bytes = data.len() as f64;
    for _ in 0..3 {
        let t = now();
        let one: Vec<Hash> = slices.iter().map(|l| leaf_hash(l)).collect();
        let t1 = now() - t;
        let t = now();
        let mut four = Vec::with_capacity(slices.len());
        leaf_hashes(&slices, &mut four);
        let t4 = now() - t;
        assert_eq!(one, four);
        console_log!(
            "leaves ({} lines, {:.0} bytes avg): one at a time {:.0} MB/s, batch {:.0} MB/s ({:.2}x)",
            slices.len(),
            bytes / slices.len() as f64,
            bytes / 1e3 / t1,
            bytes / 1e3 / t4,
            t1 / t4
        );
    }
    let pairs: Vec<(Hash, Hash)> = (0..(mb << 20) / 64)
        .map(|_| (rng.hash(), rng.hash()))
        .collect();
    // Each node hashes 65 bytes of message.
    let bytes = pairs.len() as f64 * 65.0;
    for _ in 0..3 {
        let t = now();
        let one: Vec<Hash> = pairs.iter().map(|(l, r)| node_hash(l, r)).collect();
        let t1 = now() - t;
        let t = now();
        let mut four = Vec::with_capacity(pairs.len());
        node_hashes(&pairs, &mut four);
        let t4 = now() - t;
        assert_eq!(one, four);
        console_log!(
            "nodes ({}): one at a time {:.0} MB/s = {:.2} M/s, batch {:.0} MB/s = {:.2} M/s ({:.2}x)",
            pairs.len(),
            bytes / 1e3 / t1,
            pairs.len() as f64 / 1e3 / t1,
            bytes / 1e3 / t4,
            pairs.len() as f64 / 1e3 / t4,
            t1 / t4
        );
    }
}
