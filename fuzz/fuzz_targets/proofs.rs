//! The proof verifiers (RFC 9162 inclusion and consistency, compact ranges
//! with left and right hashes): never panic on any sizes and hash lists; real
//! proofs from a small tree verify; any changed proof is rejected.
#![no_main]

use libfuzzer_sys::fuzz_target;
use stele_core::hash::{Hash, leaf_hash};
use stele_core::merkle::{
    CompactRange, MemoryTree, consistency_proof, inclusion_proof, left_hashes, right_hashes,
    right_levels, root_from_inclusion, verify_consistency, verify_inclusion,
};

fn u64_at(d: &[u8], i: usize) -> u64 {
    let mut b = [0u8; 8];
    for (k, x) in b.iter_mut().enumerate() {
        *x = *d.get(i + k).unwrap_or(&0);
    }
    u64::from_le_bytes(b)
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 17 {
        return;
    }
    let mode = data[0];
    // Sizes: arbitrary 64-bit values, or small ones so proofs can be right.
    let (mut a, mut b) = (u64_at(data, 1), u64_at(data, 9));
    if mode & 1 == 0 {
        a %= 70;
        b %= 70;
    }
    let hashes: Vec<Hash> = data[17..]
        .chunks_exact(32)
        .map(|c| Hash(c.try_into().unwrap()))
        .collect();
    let h0 = hashes.first().copied().unwrap_or(Hash([0; 32]));
    // Arbitrary inputs: errors, never panics.
    let _ = verify_inclusion(&h0, a, b, &hashes, &h0);
    let _ = root_from_inclusion(&h0, a, b, &hashes);
    let _ = verify_consistency(a, b, &h0, &h0, &hashes);
    if let Ok(c) = CompactRange::from_left_hashes(a, &hashes) {
        let _ = c.root();
        let _ = c.root_with_right(b, &hashes);
    }
    if b.checked_sub(a).is_some_and(|d| d < 1 << 20) {
        let levels = right_levels(a, b);
        assert!(levels.len() <= 128);
    }
    // A real tree of up to 69 leaves: real proofs verify; changed ones do not.
    if mode & 1 == 0 && b > 0 {
        let mut t = MemoryTree::new();
        for i in 0..b {
            t.push(leaf_hash(&i.to_le_bytes()));
        }
        let root = t.root_at(b).unwrap();
        let flip = |p: &mut Vec<Hash>| {
            if p.is_empty() {
                return false;
            }
            let k = mode as usize % p.len();
            p[k].0[(mode >> 3) as usize % 32] ^= 1 << (mode % 8);
            true
        };
        if a < b {
            let leaf = leaf_hash(&a.to_le_bytes());
            let mut p = inclusion_proof(&t, a, b).unwrap();
            verify_inclusion(&leaf, a, b, &p, &root).expect("a real inclusion proof verifies");
            if flip(&mut p) {
                assert!(verify_inclusion(&leaf, a, b, &p, &root).is_err());
            }
        }
        if a <= b {
            let old = t.root_at(a).unwrap();
            let mut p = consistency_proof(&t, a, b).unwrap();
            verify_consistency(a, b, &old, &root, &p).expect("a real consistency proof verifies");
            if flip(&mut p) {
                assert!(verify_consistency(a, b, &old, &root, &p).is_err());
            }
            // Range [a, b) rebuilt from left hashes and the leaves equals the root.
            let mut c = CompactRange::from_left_hashes(a, &left_hashes(&t, a).unwrap()).unwrap();
            for i in a..b {
                c.push(leaf_hash(&i.to_le_bytes()));
            }
            assert_eq!(c.root(), root);
            // And a prefix [0, a) with right hashes reaches the root of b.
            let c = CompactRange::from_left_hashes(a, &left_hashes(&t, a).unwrap()).unwrap();
            let right = right_hashes(&t, a, b).unwrap();
            assert_eq!(c.root_with_right(b, &right).unwrap(), root);
        }
    }
});
