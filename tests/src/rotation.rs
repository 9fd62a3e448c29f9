//! Key rotation vectors (docs/FORMAT.md 15): a log whose key is replaced by
//! a `stele.key` event, and the ways a rotation goes wrong.

use crate::vectors::{ORIGIN, Vector, stele_vector as v};
use crate::{TestLog, sample_log, signer};
use serde_json::json;
use stele_core::{SignerKey, VerifierKey};

/// The vectors verified with a revoked key (FORMAT 15.3): name and the
/// `VKEY@SIZE` the `.expect` file's `revoked:` line gives.
pub fn revoked_for(name: &str) -> Option<String> {
    let size = match name {
        "rotation-revoked"
        | "rotation-revoked-successor-pinned"
        | "rotation-revoked-successor-unpinned" => 16,
        "rotation-revoked-handover" => 11,
        _ => return None,
    };
    Some(format!("{}@{size}", base_key()))
}

/// The keys a vector's verifier pins besides its `key` (the `.expect`
/// file's further `key:` lines): the successor of a revoked key, published
/// with the revocation (FORMAT 15.3).
pub fn also_pinned(name: &str) -> Vec<String> {
    match name {
        "rotation-revoked-handover" | "rotation-revoked-successor-pinned" => {
            vec![new_signer().verifier().to_string()]
        }
        _ => vec![],
    }
}

/// The attacker's key in the revoked hand-over vector.
fn attacker() -> SignerKey {
    signer(ORIGIN, 66)
}

/// What an attacker holding the genesis key (revoked from size 11) makes: a
/// fork of 3 entries, a `stele.key` event at entry 3 handing over to the
/// attacker's key below the revocation (the covering checkpoint of size 4
/// signed by both), then entries up to 20 and checkpoints of sizes 10 and
/// 20 signed by the attacker's key alone.
fn revoked_handover() -> TestLog {
    let mut log = TestLog::new(ORIGIN, 42);
    log.append_n(2);
    let (old, a) = (log.signer.clone(), attacker());
    log.append(json!({
        "type": "stele.key",
        "key": a.verifier().to_string(),
        "replaces": old.verifier().to_string(),
        "from": 4,
    }));
    let both = cosigned(
        &log.checkpoint_note(4, &old),
        &[&log.checkpoint_note(4, &a)],
    );
    log.checkpoints.push((4, both));
    for size in [10, 20] {
        log.append_n(size - log.lines.len() as u64);
        log.checkpoints.push((size, log.checkpoint_note(size, &a)));
    }
    log
}

fn base_key() -> VerifierKey {
    signer(ORIGIN, 42).verifier()
}

/// The key that replaces the base log's key.
pub fn new_signer() -> SignerKey {
    signer(ORIGIN, 43)
}

/// `note` with the signature lines of `others` (notes of the same text) added.
pub fn cosigned(note: &str, others: &[&str]) -> String {
    let mut s = note.to_string();
    for o in others {
        let (_, sigs) = o.rsplit_once("\n\n").expect("a signed note");
        s.push_str(sigs);
    }
    s
}

/// A log of `n` entries whose key is rotated at entry 10 (a `stele.key`
/// event, new key from size 11): checkpoints every 5 entries, the one at
/// the first `overlap` of size 11 and more signed by both keys, later ones
/// by `after` (normally the new key). `event` may change the event.
pub fn rotated_log(
    n: u64,
    overlap: usize,
    after: &[&SignerKey],
    event: impl Fn(&mut serde_json::Value),
) -> TestLog {
    let mut log = sample_log(ORIGIN, 10, 5);
    let old = log.signer.clone();
    let new = new_signer();
    let mut ev = json!({
        "type": "stele.key",
        "key": new.verifier().to_string(),
        "replaces": old.verifier().to_string(),
        "from": 11,
        "overlap": overlap,
    });
    event(&mut ev);
    log.append(ev);
    let mut signed = 0;
    let sign = |log: &TestLog, size: u64, by: &[&SignerKey]| {
        let notes: Vec<String> = by.iter().map(|k| log.checkpoint_note(size, k)).collect();
        let rest: Vec<&str> = notes[1..].iter().map(String::as_str).collect();
        cosigned(&notes[0], &rest)
    };
    loop {
        let size = log.lines.len() as u64;
        if size == 11 || size.is_multiple_of(5) || size == n {
            let note = if signed < overlap {
                sign(&log, size, &[&old, &new])
            } else {
                sign(&log, size, after)
            };
            signed += 1;
            log.checkpoints.push((size, note));
        }
        if size == n {
            return log;
        }
        log.append_n(1);
    }
}

/// The rotation vectors.
pub fn vectors() -> Vec<Vector> {
    let old = signer(ORIGIN, 42);
    let new = new_signer();
    let k0 = old.verifier().to_string();
    let k1 = new.verifier().to_string();
    let mut out = Vec::new();
    out.push(v(
        "rotation-valid",
        "the key replaced at entry 10 (stele.key, from size 11); checkpoints 11 and 15 signed by both keys, 20 by the new key only; the genesis key pinned",
        rotated_log(20, 2, &[&new], |_| {}).export_log(),
        &k0,
        "verified",
        vec![],
        vec![],
    ));
    out.push(v(
        "rotation-range",
        "a range export of entries 6..14 of the rotated log, up to its last checkpoint (size 20, new key only): the genesis key pinned, the history starts at the stele.key event",
        rotated_log(20, 2, &[&new], |_| {}).export_range(6, 15),
        &k0,
        "verified",
        vec![],
        vec![],
    ));
    out.push(v(
        "rotation-pinned-new-key",
        "the rotated log verified with only the new key pinned: the last checkpoint, signed by it, covers every entry",
        rotated_log(20, 2, &[&new], |_| {}).export_log(),
        &k1,
        "verified",
        vec![],
        vec!["genesis_key_not_pinned"],
    ));
    out.push(v(
        "rotation-retired-beyond-range",
        "the rotated log's last checkpoint (size 20) signed by the old key alone, beyond its range",
        rotated_log(20, 2, &[&old], |_| {}).export_log(),
        &k0,
        "tampered",
        vec![("key_retired", None)],
        vec![],
    ));
    out.push(v(
        "rotation-unsigned",
        "a stele.key event whose covering checkpoint (size 11) is signed by the new key only, not by the key it replaces",
        rotated_log(20, 0, &[&new], |_| {}).export_log(),
        &k0,
        "tampered",
        vec![("key_unsigned", Some(10))],
        vec!["key_mismatch"],
    ));
    out.push(v(
        "rotation-bad-event",
        "a stele.key event whose from is not the size of the first tree that holds it",
        rotated_log(20, 2, &[&new], |e| e["from"] = json!(12)).export_log(),
        &k0,
        "tampered",
        vec![("bad_key_event", Some(10))],
        vec![],
    ));
    out.push(v(
        "rotation-revoked",
        "the genesis key, revoked from size 16, signs the log's checkpoint of size 20 (an attacker holding it extends a fork)",
        sample_log(ORIGIN, 20, 5).export_log(),
        &k0,
        "tampered",
        vec![("key_revoked", None)],
        vec![],
    ));
    out.push(v(
        "rotation-revoked-handover",
        "an attacker holding the genesis key, revoked from size 11, forks the log and hands over to their own key below that size (stele.key at entry 3, checkpoint 4 signed by both), then signs size 20 with it alone; the genesis key and its real successor pinned",
        revoked_handover().export_log(),
        &k0,
        "tampered",
        vec![("key_revoked", None)],
        vec![],
    ));
    out.push(v(
        "rotation-revoked-successor-pinned",
        "the rotated log (new key from size 11, overlap to 15) with the genesis key revoked from size 16 and the new key pinned beside it: the new key signs size 20",
        rotated_log(20, 2, &[&new], |_| {}).export_log(),
        &k0,
        "verified",
        vec![],
        vec![],
    ));
    out.push(v(
        "rotation-revoked-successor-unpinned",
        "the rotated log with the genesis key revoked from size 16 and the new key not pinned: the new key, handed over by a revoked key, is revoked from 16 too, so its checkpoint of size 20 fails",
        rotated_log(20, 2, &[&new], |_| {}).export_log(),
        &k0,
        "tampered",
        vec![("key_revoked", None)],
        vec![],
    ));
    out
}
