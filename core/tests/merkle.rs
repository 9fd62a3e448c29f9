//! Exhaustive checks of the RFC 9162 proof code on every tree size 0..=130
//! (azul's test_tree habit): every proof verifies; any bit flip, extra or
//! missing hash, or change of index or size is rejected.

use stele_core::hash::{Hash, leaf_hash};
use stele_core::merkle::{self, CompactRange, HashReader, MemoryTree};

const MAX: u64 = 130;

fn tree(n: u64) -> MemoryTree {
    let mut t = MemoryTree::new();
    for i in 0..n {
        t.push(leaf_hash(format!("leaf {i}").as_bytes()));
    }
    t
}

fn leaf(t: &MemoryTree, i: u64) -> Hash {
    t.read_hash(0, i).unwrap()
}

// Every bit for small trees; for larger ones one bit in each 32-bit word, so
// the run stays short in debug builds while every part of each hash is hit.
fn flips(n: u64) -> Vec<(usize, u8)> {
    if n <= 40 {
        (0..32)
            .flat_map(|b| (0..8).map(move |bit| (b, 1u8 << bit)))
            .collect()
    } else {
        (0..8).map(|w| (w * 4 + w % 4, 1u8 << (w % 8))).collect()
    }
}

#[test]
fn every_inclusion_proof_verifies_and_every_corruption_fails() {
    let t = tree(MAX + 1);
    for n in 1..=MAX {
        let root = t.root_at(n).unwrap();
        for i in 0..n {
            let lh = leaf(&t, i);
            let proof = merkle::inclusion_proof(&t, i, n).unwrap();
            assert_eq!(proof.len(), merkle::inclusion_proof_len(i, n));
            merkle::verify_inclusion(&lh, i, n, &proof, &root)
                .unwrap_or_else(|e| panic!("index {i} size {n}: {e}"));
            for k in 0..proof.len() {
                for &(byte, mask) in &flips(n) {
                    let mut bad = proof.clone();
                    bad[k].0[byte] ^= mask;
                    assert!(
                        merkle::verify_inclusion(&lh, i, n, &bad, &root).is_err(),
                        "flip accepted: index {i} size {n} hash {k}"
                    );
                }
            }
            let mut longer = proof.clone();
            longer.push(root);
            assert!(merkle::verify_inclusion(&lh, i, n, &longer, &root).is_err());
            if !proof.is_empty() {
                assert!(
                    merkle::verify_inclusion(&lh, i, n, &proof[..proof.len() - 1], &root).is_err()
                );
            }
            for j in [i.wrapping_sub(1), i + 1] {
                if j < n {
                    assert!(
                        merkle::verify_inclusion(&lh, j, n, &proof, &root).is_err(),
                        "index {j} accepted for {i} size {n}"
                    );
                }
            }
            // The proof presented as one for a neighbouring size, against that size's root.
            for m in [n - 1, n + 1] {
                if m > i {
                    let root_m = t.root_at(m).unwrap();
                    assert!(
                        merkle::verify_inclusion(&lh, i, m, &proof, &root_m).is_err(),
                        "size {m} accepted for {i} size {n}"
                    );
                }
            }
            let mut wrong_leaf = lh;
            wrong_leaf.0[0] ^= 1;
            assert!(merkle::verify_inclusion(&wrong_leaf, i, n, &proof, &root).is_err());
        }
    }
}

#[test]
fn every_consistency_proof_verifies_and_every_corruption_fails() {
    let t = tree(MAX + 1);
    for n in 0..=MAX {
        let new_root = t.root_at(n).unwrap();
        for m in 0..=n {
            let old_root = t.root_at(m).unwrap();
            let proof = merkle::consistency_proof(&t, m, n).unwrap();
            assert_eq!(proof.len(), merkle::consistency_proof_len(m, n), "{m}->{n}");
            merkle::verify_consistency(m, n, &old_root, &new_root, &proof)
                .unwrap_or_else(|e| panic!("{m}->{n}: {e}"));
            for k in 0..proof.len() {
                for &(byte, mask) in &flips(n) {
                    let mut bad = proof.clone();
                    bad[k].0[byte] ^= mask;
                    assert!(
                        merkle::verify_consistency(m, n, &old_root, &new_root, &bad).is_err(),
                        "flip accepted: {m}->{n} hash {k}"
                    );
                }
            }
            let mut longer = proof.clone();
            longer.push(new_root);
            assert!(merkle::verify_consistency(m, n, &old_root, &new_root, &longer).is_err());
            if !proof.is_empty() {
                assert!(
                    merkle::verify_consistency(
                        m,
                        n,
                        &old_root,
                        &new_root,
                        &proof[..proof.len() - 1]
                    )
                    .is_err()
                );
            }
            // The same proof presented for neighbouring sizes.
            for (a, b) in [
                (m + 1, n),
                (m.wrapping_sub(1), n),
                (m, n + 1),
                (m, n.wrapping_sub(1)),
            ] {
                if a <= b && b <= MAX && (a, b) != (m, n) {
                    let (ra, rb) = (t.root_at(a).unwrap(), t.root_at(b).unwrap());
                    if merkle::verify_consistency(a, b, &ra, &rb, &proof).is_ok() {
                        // Only an empty proof can be valid for two size pairs.
                        assert!(proof.is_empty(), "{m}->{n} proof accepted for {a}->{b}");
                    }
                }
            }
            if m > 0 && m < n {
                let mut wrong = old_root;
                wrong.0[5] ^= 0x10;
                assert!(merkle::verify_consistency(m, n, &wrong, &new_root, &proof).is_err());
                let mut wrong = new_root;
                wrong.0[5] ^= 0x10;
                assert!(merkle::verify_consistency(m, n, &old_root, &wrong, &proof).is_err());
            }
        }
    }
}

#[test]
fn compact_ranges_give_every_root_and_range_proofs_work() {
    let t = tree(MAX + 1);
    let mut c = CompactRange::new();
    for n in 0..=MAX {
        assert_eq!(c.root(), t.root_at(n).unwrap(), "size {n}");
        c.push(leaf(&t, n));
    }
    // A range [a, b) of a tree of size n: left hashes, the leaves, right hashes.
    for n in 0..=64u64 {
        let root = t.root_at(n).unwrap();
        for a in 0..=n {
            for b in a..=n {
                let left = merkle::left_hashes(&t, a).unwrap();
                let mut r = CompactRange::from_left_hashes(a, &left).unwrap();
                for i in a..b {
                    r.push(leaf(&t, i));
                }
                let right = merkle::right_hashes(&t, b, n).unwrap();
                assert_eq!(
                    r.root_with_right(n, &right).unwrap(),
                    root,
                    "range {a}..{b} of {n}"
                );
                if let Some(first) = right.first() {
                    let mut bad = right.clone();
                    bad[0] = Hash(first.0.map(|x| x ^ 1));
                    assert_ne!(r.root_with_right(n, &bad).unwrap(), root);
                    assert!(r.root_with_right(n, &right[1..]).is_err());
                }
            }
        }
    }
}

#[test]
fn extend_is_the_same_range_as_pushing_one_leaf_at_a_time() {
    let t = tree(300);
    let leaves: Vec<Hash> = (0..300).map(|i| leaf(&t, i)).collect();
    // Every start size up to 70 and every run length up to 230, from ranges
    // built both ways (so the existing nodes merge with the run's subtrees).
    for a in 0..=70usize {
        for n in 0..=230usize {
            let mut pushed = CompactRange::new();
            for l in &leaves[..a + n] {
                pushed.push(*l);
            }
            let mut extended = CompactRange::new();
            extended.extend(&leaves[..a]);
            extended.extend(&leaves[a..a + n]);
            assert_eq!(extended, pushed, "start {a}, {n} leaves");
        }
    }
    // From a range proof's left hashes (a range export), far from zero.
    let start = (1u64 << 40) + 12_345;
    let left: Vec<Hash> = (0..start.count_ones())
        .map(|i| Hash([i as u8; 32]))
        .collect();
    let mut pushed = CompactRange::from_left_hashes(start, &left).unwrap();
    let mut extended = pushed.clone();
    for l in &leaves {
        pushed.push(*l);
    }
    extended.extend(&leaves);
    assert_eq!(extended, pushed);
}
