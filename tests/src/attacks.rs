//! Attack vectors beyond one-per-failure-code: the attacks of issue 6 that had
//! no vector yet, and attacks from the transparency-log literature (key ID
//! collisions, confusable names, signature stuffing, replayed checkpoints,
//! integer limits). Each is a shared vector in tests/vectors/ like the others,
//! so the native tests, the CLI tests (writer/tests/attacks.rs) and the wasm
//! tests all check it; tests/tests/attacks.rs maps the attack list to
//! vector names.

use crate::vectors::{ORIGIN, Vector, edit_line, stele_vector as v};
use crate::{TestLog, signer};
use base64::Engine as _;
use serde_json::json;
use stele_core::entry::{Timestamp, entry_line};
use stele_core::export;
use stele_core::hash::leaf_hash;
use stele_core::{Checkpoint, SignerKey};

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// `example.com/stele-vectors` with U+0435 CYRILLIC SMALL LETTER IE for the
/// second `e` of `vectors`: renders like the origin, differs in bytes.
pub const CONFUSABLE_ORIGIN: &str = "example.com/stele-v\u{0435}ctors";

// A checkpoint note for `size` of `log` whose signature line claims `name` and
// `key_id` but whose signature is by `by` (a forged or mislabelled line).
fn relabelled_note(
    log: &TestLog,
    size: u64,
    by: &SignerKey,
    name: &str,
    key_id: [u8; 4],
) -> String {
    let note = log.checkpoint_note(size, by);
    let (text, sig) = note.split_once("\n\n").expect("a note");
    let b64 = sig.trim_end().rsplit_once(' ').expect("a signature line").1;
    let mut raw = B64.decode(b64).expect("base64");
    raw[..4].copy_from_slice(&key_id);
    format!("{text}\n\n\u{2014} {name} {}\n", B64.encode(raw))
}

// The log with every checkpoint note replaced by `f(size)`.
fn replace_notes(log: &TestLog, f: impl Fn(u64) -> String) -> String {
    let mut t = log.clone();
    t.checkpoints = log.checkpoints.iter().map(|(s, _)| (*s, f(*s))).collect();
    t.export_log()
}

fn note_of(log: &TestLog, size: u64) -> &str {
    &log.checkpoints
        .iter()
        .find(|c| c.0 == size)
        .expect("checkpoint")
        .1
}

// The valid export with `record` (a checkpoint note) inserted after entry `after`.
fn insert_note(valid: &str, after: u64, note: &str) -> String {
    edit_line(valid, after, |l| {
        format!("{l}\n{}", export::checkpoint_record(note).trim_end())
    })
}

/// The attack vectors, built from the vectors' base log.
pub fn vectors(log: &TestLog) -> Vec<Vector> {
    let key = log.key().to_string();
    let valid = log.export_log();
    let attacker = signer(ORIGIN, 66);
    let pinned_id = log.key().id();
    let mut out = Vec::new();

    out.push(v(
        "invalid-utf8",
        "entry 7 holds the byte 0xff inside a string",
        {
            let mut b =
                edit_line(&valid, 7, |l| l.replace("req-00000007", "req-0000@007")).into_bytes();
            let at = b.windows(9).position(|w| w == b"req-0000@").unwrap() + 8;
            b[at] = 0xff;
            b
        },
        &key,
        "tampered",
        vec![("invalid_utf8", Some(7))],
        vec![],
    ));
    out.push(v(
        "seq-overflow",
        "entry 7's seq is 2^53, one above the largest allowed",
        edit_line(&valid, 7, |l| {
            l.replace("\"seq\":7,", "\"seq\":9007199254740992,")
        }),
        &key,
        "tampered",
        vec![("bad_entry", Some(7))],
        vec![],
    ));
    out.push(v(
        "checkpoint-size-overflow",
        "a checkpoint of size 2^64, signed by the log key, after entry 9",
        insert_note(
            &valid,
            9,
            &log.signer
                .sign_note(&format!(
                    "{ORIGIN}\n18446744073709551616\n{}\n",
                    log.tree.root_at(10).unwrap().to_base64()
                ))
                .unwrap(),
        ),
        &key,
        "tampered",
        vec![("bad_checkpoint", None)],
        vec![],
    ));
    out.push(v(
        "checkpoint-size-max",
        "a checkpoint of size 2^64 - 1, signed by the log key, after entry 9 (it claims entries the file does not have)",
        insert_note(
            &valid,
            9,
            &log.signer
                .sign_note(&format!(
                    "{ORIGIN}\n18446744073709551615\n{}\n",
                    log.tree.root_at(10).unwrap().to_base64()
                ))
                .unwrap(),
        ),
        &key,
        "tampered",
        vec![("truncated", Some(10))],
        vec![],
    ));
    out.push(v(
        "future-ts",
        "entry 7's ts moved to 9999-12-31, the last representable instant",
        edit_line(&valid, 7, |l| {
            let i = l.find("\"ts\":\"").unwrap() + 6;
            format!("{}9999-12-31T23:59:59.999999Z{}", &l[..i], &l[i + 27..])
        }),
        &key,
        "tampered",
        vec![("hash_mismatch", Some(7)), ("ts_decreasing", Some(8))],
        vec![],
    ));
    out.push(v(
        "future-ts-tail",
        "an entry dated 9999-12-31 appended after the last checkpoint, correctly chained: partial (not signed), with the unsigned_tail notice",
        {
            let last = log.lines.last().unwrap();
            let ts = Timestamp::parse(b"9999-12-31T23:59:59.999999Z").unwrap();
            let line = entry_line(
                log.lines.len() as u64,
                ts,
                &leaf_hash(last.as_bytes()),
                &json!({"actor":"mallory","action":"pin-the-clock"}),
            )
            .unwrap();
            format!("{valid}{line}\n")
        },
        &key,
        "partial",
        vec![],
        vec!["unsigned_tail"],
    ));
    out.push(v(
        "genesis-key-replaced",
        "entry 0 names an attacker's key (same name) instead of the log's",
        edit_line(&valid, 0, |l| {
            l.replace(&log.key().to_string(), &attacker.verifier().to_string())
        }),
        &key,
        "tampered",
        vec![("hash_mismatch", Some(0)), ("root_mismatch", None)],
        vec![],
    ));
    out.push(v(
        "forged-key-id",
        "every checkpoint re-signed by an attacker whose signature lines claim the log's key name and key ID",
        replace_notes(log, |s| relabelled_note(log, s, &attacker, ORIGIN, pinned_id)),
        &key,
        "tampered",
        vec![("bad_signature", None)],
        vec![],
    ));
    out.push(v(
        "key-id-other-name",
        "every checkpoint re-signed by an attacker under another name, with the log key's key ID",
        replace_notes(log, |s| {
            relabelled_note(
                log,
                s,
                &attacker,
                "example.com/stele-vectors-mirror",
                pinned_id,
            )
        }),
        &key,
        "unverified",
        vec![],
        vec!["untrusted_signature", "no_trusted_checkpoint"],
    ));
    out.push(v(
        "confusable-key-name",
        "every checkpoint re-signed by an attacker's key whose name looks like the origin (Cyrillic e)",
        {
            let evil = signer(CONFUSABLE_ORIGIN, 66);
            replace_notes(log, |s| log.checkpoint_note(s, &evil))
        },
        &key,
        "unverified",
        vec![],
        vec!["untrusted_signature", "no_trusted_checkpoint"],
    ));
    out.push(v(
        "confusable-origin",
        "a checkpoint of size 10 whose origin looks like the log's (Cyrillic e), signed by the log key, after entry 9",
        insert_note(
            &valid,
            9,
            &Checkpoint {
                origin: CONFUSABLE_ORIGIN.into(),
                size: 10,
                root: log.tree.root_at(10).unwrap(),
                extensions: vec![],
            }
            .sign(&log.signer)
            .unwrap(),
        ),
        &key,
        "tampered",
        vec![("origin_mismatch", None)],
        vec![],
    ));
    out.push(v(
        "checkpoint-extension-added",
        "an extension line added to the signed text of the checkpoint of size 10, signature kept",
        {
            let note = note_of(log, 10);
            let (text, sig) = note.split_once("\n\n").unwrap();
            valid.replace(
                note,
                &format!("{text}\nwitnessed-by example.com/w\n\n{sig}"),
            )
        },
        &key,
        "tampered",
        vec![("bad_signature", None)],
        vec![],
    ));
    let witnesses: Vec<SignerKey> = (0..100)
        .map(|i| signer(&format!("witness.example/w{i:02}"), 100 + i as u8))
        .collect();
    let cosigned = |n: usize| {
        let note = note_of(log, 10);
        let text = note.split_once("\n\n").unwrap().0.to_string() + "\n";
        let mut s = note.to_string();
        for w in &witnesses[..n] {
            let wn = w.sign_note(&text).unwrap();
            s.push_str(wn.split_once("\n\n").unwrap().1);
        }
        valid.replace(note, &s)
    };
    out.push(v(
        "hundred-signatures",
        "the checkpoint of size 10 with 99 unknown witness cosignatures, 100 signature lines in all (the limit)",
        cosigned(99),
        &key,
        "verified",
        vec![],
        vec![],
    ));
    out.push(v(
        "too-many-signatures",
        "the checkpoint of size 10 with 100 unknown witness cosignatures, 101 signature lines in all (one over the limit)",
        cosigned(100),
        &key,
        "tampered",
        vec![("bad_checkpoint", None)],
        vec![],
    ));
    out.push(v(
        "duplicate-signature",
        "the log key's signature line on the checkpoint of size 10 written twice (harmless: both verify)",
        {
            let note = note_of(log, 10);
            let sig = note.split_once("\n\n").unwrap().1;
            valid.replace(note, &format!("{note}{sig}"))
        },
        &key,
        "verified",
        vec![],
        vec![],
    ));
    out.push(v(
        "duplicate-signature-bad",
        "a second signature line by the log key on the checkpoint of size 10, carrying the signature of size 5 (Go checks only the first; Stele checks both)",
        {
            let note = note_of(log, 10);
            let sig5 = note_of(log, 5).split_once("\n\n").unwrap().1;
            valid.replace(note, &format!("{note}{sig5}"))
        },
        &key,
        "tampered",
        vec![("bad_signature", None)],
        vec![],
    ));
    let entries = log.export_entries(&[3, 4, 17]);
    let incl17 = export::inclusion_record(17, &log.inclusion(17, 20));
    out.push(Vector {
        ext: "stele",
        ..v(
            "inclusion-wrong-size",
            "entry 17's inclusion proof is for a tree of size 18, not the checkpoint's 20",
            entries.replace(
                &incl17,
                &export::inclusion_record(17, &log.inclusion(17, 18)),
            ),
            &key,
            "tampered",
            vec![("inclusion_invalid", Some(17))],
            vec![],
        )
    });
    out.push(v(
        "checkpoint-order",
        "a range export whose checkpoint of size 15 comes after the one of size 20",
        {
            let mut r = log.export_range(6, 12);
            r.push_str(&export::right_record(
                15,
                &stele_core::merkle::right_hashes(&log.tree, 12, 15).unwrap(),
            ));
            r.push_str(&export::checkpoint_record(note_of(log, 15)));
            r
        },
        &key,
        "tampered",
        vec![("checkpoint_order", None)],
        vec![],
    ));
    out.push(v(
        "range-entry-deleted",
        "a range export of entries 6..11 with entry 8 removed",
        edit_line(&log.export_range(6, 12), 8, |_| String::new()),
        &key,
        "tampered",
        vec![("seq_mismatch", Some(8))],
        vec![],
    ));
    out.push(Vector {
        ext: "tlog-proof",
        ..v(
            "tlog-proof-entry-changed",
            "a C2SP tlog-proof of entry 7 whose entry bytes were changed",
            {
                let t = log.tlog_proof(7);
                let extra = t.lines().nth(1).unwrap().to_string();
                let changed = log.lines[7].replace("req-00000007", "req-00000009");
                t.replacen(&extra, &format!("extra {}", B64.encode(changed)), 1)
            },
            &key,
            "tampered",
            vec![("inclusion_invalid", Some(7))],
            vec![],
        )
    });
    out.push(Vector {
        trusted: Some(
            Checkpoint {
                origin: "example.com/another-log".into(),
                size: 15,
                root: log.tree.root_at(15).unwrap(),
                extensions: vec![],
            }
            .sign(&log.signer)
            .unwrap(),
        ),
        ..v(
            "trusted-other-origin",
            "the valid log checked against a trusted checkpoint of another log signed by the same key (a monitor's state replayed across logs)",
            valid.clone(),
            &key,
            "tampered",
            vec![("origin_mismatch", None)],
            vec![],
        )
    });
    out
}
