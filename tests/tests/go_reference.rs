//! Roots, proofs and a signed checkpoint made by Go's reference
//! implementations (golang.org/x/mod/sumdb/tlog and sumdb/note) agree with
//! stele-core, hash for hash.

use serde::Deserialize;
use std::collections::BTreeMap;
use stele_core::VerifierKey;
use stele_core::checkpoint::SignedCheckpoint;
use stele_core::hash::{Hash, leaf_hash};
use stele_core::merkle::{self, MemoryTree};

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Reference {
    origin: String,
    verifier_key: String,
    checkpoint: String,
    leaves: u64,
    roots: BTreeMap<String, String>,
    inclusion: Vec<Inclusion>,
    consistency: Vec<Consistency>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Inclusion {
    index: u64,
    size: u64,
    leaf_hash: String,
    root: String,
    proof: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Consistency {
    from: u64,
    to: u64,
    old_root: String,
    new_root: String,
    proof: Option<Vec<String>>,
}

fn h(s: &str) -> Hash {
    Hash::from_base64(s).expect("base64 hash")
}

fn hs(v: &Option<Vec<String>>) -> Vec<Hash> {
    v.iter().flatten().map(|s| h(s)).collect()
}

fn load() -> (Reference, MemoryTree) {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("vectors/go-reference");
    let r: Reference =
        serde_json::from_slice(&std::fs::read(dir.join("reference.json")).unwrap()).unwrap();
    let leaves = std::fs::read(dir.join("leaves.txt")).unwrap();
    let mut t = MemoryTree::new();
    for line in leaves.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        t.push(leaf_hash(line));
    }
    assert_eq!(t.size(), r.leaves);
    (r, t)
}

#[test]
fn roots_match_go() {
    let (r, t) = load();
    assert!(r.roots.len() >= 10);
    for (size, root) in &r.roots {
        assert_eq!(
            t.root_at(size.parse().unwrap()).unwrap(),
            h(root),
            "size {size}"
        );
    }
}

#[test]
fn inclusion_proofs_match_go_and_verify() {
    let (r, t) = load();
    assert!(!r.inclusion.is_empty());
    for p in &r.inclusion {
        let proof = hs(&p.proof);
        assert_eq!(
            merkle::inclusion_proof(&t, p.index, p.size).unwrap(),
            proof,
            "index {} size {}",
            p.index,
            p.size
        );
        merkle::verify_inclusion(&h(&p.leaf_hash), p.index, p.size, &proof, &h(&p.root)).unwrap();
    }
}

#[test]
fn consistency_proofs_match_go_and_verify() {
    let (r, t) = load();
    assert!(!r.consistency.is_empty());
    for p in &r.consistency {
        let proof = hs(&p.proof);
        assert_eq!(
            merkle::consistency_proof(&t, p.from, p.to).unwrap(),
            proof,
            "{} -> {}",
            p.from,
            p.to
        );
        merkle::verify_consistency(p.from, p.to, &h(&p.old_root), &h(&p.new_root), &proof).unwrap();
    }
}

#[test]
fn go_signed_checkpoint_verifies() {
    let (r, t) = load();
    let key = VerifierKey::parse(&r.verifier_key).unwrap();
    assert_eq!(key.to_string(), r.verifier_key);
    let sc = SignedCheckpoint::parse(r.checkpoint.as_bytes()).unwrap();
    assert_eq!(sc.verify(std::slice::from_ref(&key)).verified_by, vec![key]);
    assert_eq!(sc.checkpoint.origin, r.origin);
    assert_eq!(sc.checkpoint.size, r.leaves);
    assert_eq!(sc.checkpoint.root, t.root_at(r.leaves).unwrap());
    // Our serialisation of the body is Go's, byte for byte.
    assert_eq!(sc.checkpoint.to_text(), sc.note.text);
}
