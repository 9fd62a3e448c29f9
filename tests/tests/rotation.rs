//! Revocations and hand-overs (docs/FORMAT.md 15.2, 15.3): a key reached
//! through a hand-over by a revoked key is revoked from the same size unless
//! it is pinned, transitively. The shared vectors rotation-revoked-* pin the
//! main cases; these are the variants around them.

use serde_json::json;
use stele_core::verify::{FailureCode, Options, Report, Verdict, verify_bytes};
use stele_core::{SignerKey, VerifierKey};
use stele_tests::rotation::cosigned;
use stele_tests::{TestLog, signer};

const ORIGIN: &str = "example.com/stele-vectors";

fn k(seed: u8) -> SignerKey {
    signer(ORIGIN, seed)
}

/// A log from the genesis key (seed 42) of `n` entries: `events` are
/// (entry, old key, new key) hand-overs, `cps` (size, signers) checkpoints.
fn log(n: u64, events: &[(u64, u8, u8)], cps: &[(u64, &[u8])]) -> String {
    let mut log = TestLog::new(ORIGIN, 42);
    log.checkpoints.clear();
    while (log.lines.len() as u64) < n {
        let i = log.lines.len() as u64;
        match events.iter().find(|e| e.0 == i) {
            Some(&(_, old, new)) => log.append(json!({
                "type": "stele.key",
                "key": k(new).verifier().to_string(),
                "replaces": k(old).verifier().to_string(),
                "from": i + 1,
            })),
            None => log.append_n(1),
        }
    }
    for (size, by) in cps {
        let notes: Vec<String> = by
            .iter()
            .map(|s| log.checkpoint_note(*size, &k(*s)))
            .collect();
        let rest: Vec<&str> = notes[1..].iter().map(String::as_str).collect();
        log.checkpoints.push((*size, cosigned(&notes[0], &rest)));
    }
    log.export_log()
}

fn verify(file: &str, pinned: &[u8], revoked: &[(u8, u64)]) -> Report {
    let mut o = Options::new(pinned.iter().map(|s| k(*s).verifier()).collect());
    o.revoked = revoked
        .iter()
        .map(|(s, size)| (k(*s).verifier(), *size))
        .collect();
    verify_bytes(o, file.as_bytes())
}

fn revoked_at(r: &Report) -> Vec<String> {
    r.failures
        .iter()
        .filter(|f| f.code == FailureCode::KeyRevoked)
        .map(|f| format!("{:?} {:?}", f.expected, f.found))
        .collect()
}

fn key(seed: u8) -> VerifierKey {
    k(seed).verifier()
}

/// The reviewer's reproduction: the attacker holds the genesis key (42),
/// revoked from 11, hands over to their key (66) at entry 3, then signs 100
/// forged entries up to size 104 alone.
#[test]
fn a_hand_over_by_a_revoked_key_below_its_size_does_not_outlive_it() {
    let f = log(104, &[(3, 42, 66)], &[(4, &[42, 66]), (104, &[66])]);
    // Without the revocation the fork verifies: the genesis key's holder may rotate.
    assert_eq!(verify(&f, &[42], &[]).verdict, Verdict::Verified);
    for pinned in [&[42][..], &[42, 43]] {
        let r = verify(&f, pinned, &[(42, 11)]);
        assert_eq!(r.verdict, Verdict::Tampered, "{pinned:?}: {r:#?}");
        assert_eq!(
            revoked_at(&r),
            ["Some(\"size < 11\") Some(\"size 104\")"],
            "{pinned:?}"
        );
        // Below the revocation the attacker's key still counts: the covering checkpoint is trusted.
        assert!(r.failures.iter().all(|f| f.code == FailureCode::KeyRevoked));
    }
    // Pinning the attacker's key is trusting it: no revocation is inherited.
    assert_eq!(
        verify(&f, &[42, 66], &[(42, 11)]).verdict,
        Verdict::Verified
    );
    // A revocation of the new key's own, smaller than the inherited one, is the one reported.
    let r = verify(&f, &[42], &[(42, 11), (66, 8)]);
    assert_eq!(revoked_at(&r), ["Some(\"size < 8\") Some(\"size 104\")"]);
}

/// The inherited revocation passes down the history: 42 (revoked from 11)
/// hands over to 66, 66 to 67, and 67's checkpoint of size 20 fails.
#[test]
fn an_inherited_revocation_is_inherited_again() {
    let f = log(
        20,
        &[(3, 42, 66), (5, 66, 67)],
        &[(4, &[42, 66]), (6, &[66, 67]), (10, &[67]), (20, &[67])],
    );
    let r = verify(&f, &[42, 43], &[(42, 11)]);
    assert_eq!(r.verdict, Verdict::Tampered, "{r:#?}");
    assert_eq!(
        revoked_at(&r),
        ["Some(\"size < 11\") Some(\"size 20\")"],
        "{r:#?}"
    );
    // A pinned key in the chain stops it: its successors inherit nothing.
    let r = verify(&f, &[42, 66], &[(42, 11)]);
    assert_eq!(r.verdict, Verdict::Verified, "{r:#?}");
    let keys = r.keys.expect("key history");
    assert_eq!(keys.len(), 3);
    assert!(keys.iter().all(|h| h.trusted));
    assert_eq!(keys[2].key, key(67).to_string());
}

/// The honest log rotated twice (42 to 43 at entry 10, 43 to 44 at entry
/// 20), the genesis key revoked from 16: pinning the direct successor is
/// enough; pinning only the newest key is too (the checkpoints of 43 alone
/// then are not trusted, the last one, by 44, covers every entry).
#[test]
fn pinning_a_successor_of_a_revoked_key_lets_the_honest_log_verify() {
    let f = log(
        30,
        &[(10, 42, 43), (20, 43, 44)],
        &[
            (5, &[42]),
            (11, &[42, 43]),
            (15, &[42, 43]),
            (20, &[43]),
            (21, &[43, 44]),
            (25, &[43, 44]),
            (30, &[44]),
        ],
    );
    assert_eq!(verify(&f, &[42], &[]).verdict, Verdict::Verified);
    assert_eq!(
        verify(&f, &[42, 43], &[(42, 16)]).verdict,
        Verdict::Verified
    );
    // Not pinned, 43 and 44 are revoked from 16 with 42: every checkpoint from 20 fails.
    let r = verify(&f, &[42], &[(42, 16)]);
    assert_eq!(r.verdict, Verdict::Tampered);
    assert_eq!(revoked_at(&r).len(), 3, "{:#?}", r.failures);
    // 44 pinned, not 43: 43's checkpoint of size 20 fails (it is revoked
    // with 42); 44 and its checkpoints are trusted.
    let r = verify(&f, &[42, 44], &[(42, 16)]);
    assert_eq!(
        revoked_at(&r),
        [
            "Some(\"size < 16\") Some(\"size 20\")",
            "Some(\"size < 16\") Some(\"size 21\")",
            "Some(\"size < 16\") Some(\"size 25\")",
        ],
        "{:#?}",
        r.failures
    );
}
