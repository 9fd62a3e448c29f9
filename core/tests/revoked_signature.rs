//! FORMAT 15.3 for one checkpoint judged without the key history (live mode):
//! `verify::revoked_signature` and `verify::parse_revoked_list`.

use stele_core::checkpoint::{Checkpoint, SignedCheckpoint};
use stele_core::note::SignerKey;
use stele_core::verify::{parse_revoked_list, revoked_signature};

fn key(seed: u8) -> SignerKey {
    SignerKey::from_seed("example.com/log", [seed; 32]).unwrap()
}

fn checkpoint(size: u64, signers: &[&SignerKey]) -> SignedCheckpoint {
    let cp = Checkpoint {
        origin: "example.com/log".into(),
        size,
        root: stele_core::Hash::default(),
        extensions: Vec::new(),
    };
    SignedCheckpoint::parse(cp.sign_with(signers).unwrap().as_bytes()).unwrap()
}

#[test]
fn a_pinned_key_revoked_at_or_below_the_size_is_named_with_its_smallest_size() {
    let (k0, k1) = (key(1), key(2));
    let (v0, v1) = (k0.verifier(), k1.verifier());
    let pinned = [v0.clone(), v1.clone()];
    let revoked = parse_revoked_list(&[format!("{v0}@9"), format!(" {v0}@7 ")]).unwrap();
    // below the smallest size: not revoked
    let sc = checkpoint(6, &[&k0]);
    assert_eq!(
        revoked_signature(&sc.verify(&pinned).verified_by, 6, &revoked),
        None
    );
    // at it and above: revoked from 7, even beside a signature by a key in range
    for (size, signers) in [(7, vec![&k0]), (12, vec![&k1, &k0])] {
        let sc = checkpoint(size, &signers);
        let v = sc.verify(&pinned);
        assert_eq!(
            revoked_signature(&v.verified_by, size, &revoked),
            Some((&v0, 7)),
            "size {size}"
        );
    }
    // another key's signature alone is not touched
    let sc = checkpoint(12, &[&k1]);
    assert_eq!(
        revoked_signature(&sc.verify(&pinned).verified_by, 12, &revoked),
        None
    );
}

#[test]
fn revocation_lists_name_the_first_that_does_not_parse() {
    let v0 = key(1).verifier();
    assert!(parse_revoked_list(&[]).unwrap().is_empty());
    let e = parse_revoked_list(&[format!("{v0}@3"), format!("{v0}@x")]).unwrap_err();
    assert!(
        e.starts_with("revoked \"") && e.contains("is not a decimal tree size"),
        "{e}"
    );
    let e = parse_revoked_list(&[v0.to_string()]).unwrap_err();
    assert!(e.contains("VKEY@SIZE"), "{e}");
}
