//! The attack matrix of issue 6: every attack, the shared vector that carries
//! it (tests/vectors/NAME.*), and the failure code and entry the verifier must
//! report. The vectors are also run through the real `stele verify --json`
//! binary (writer/tests/attacks.rs, which also covers the attacks on a log
//! *directory*) and through the wasm adapter (wasm/tests/vectors.rs), so every
//! row here is checked natively, by the CLI and in wasm.
//!
//! "Caught" means: the verdict is `failed` with that failure at that entry,
//! or, for attacks by someone who holds no pinned key (re-signing with their
//! own key), the verdict is `unverified` with the notice that explains why.
//! Rows whose verdict is `verified` are the limits the threat model states
//! (nothing signed covers the unsigned tail) or harmless inputs the verifier
//! must not reject; they pin down that behaviour.

use stele_core::verify::{Report, StreamVerifier, Verdict, verify_bytes};
use stele_tests::kit::{Rng, options};
use stele_tests::vectors::{Vector, vectors};

/// (attack, vector, verdict, expected (code, entry) or notice)
type Row = (&'static str, &'static str, &'static str, Expect);

#[derive(Debug, Clone, Copy)]
enum Expect {
    Failure(&'static str, Option<u64>),
    Notice(&'static str),
    /// Checked on a log directory in writer/tests/attacks.rs.
    Dir(&'static str, Option<u64>),
}
use Expect::*;

#[rustfmt::skip] // reason: one attack per line reads as a table
const MATRIX: &[Row] = &[
    // The list, in its order.
    ("byte changed in an old event", "event-byte-changed", "tampered", Failure("hash_mismatch", Some(7))),
    ("prev edited", "prev-edited", "tampered", Failure("prev_mismatch", Some(7))),
    ("ts moved backwards", "ts-backwards", "tampered", Failure("ts_decreasing", Some(7))),
    ("entry deleted from the middle", "entry-deleted", "tampered", Failure("seq_mismatch", Some(7))),
    ("forged entry inserted, rest re-chained (no key)", "inserted-rechained", "tampered", Failure("root_mismatch", None)),
    ("two entries swapped", "entries-swapped", "tampered", Failure("seq_mismatch", Some(7))),
    ("entry duplicated", "entry-duplicated", "tampered", Failure("seq_mismatch", Some(8))),
    ("tail truncated below the last checkpoint (export)", "truncated", "tampered", Failure("truncated", Some(17))),
    ("tail truncated below the last checkpoint (log directory)", "dir:truncated", "tampered", Dir("truncated", Some(17))),
    ("rolled back, caught against an earlier trusted checkpoint (export)", "rollback", "tampered", Failure("rollback", Some(10))),
    ("rolled back, caught against an earlier trusted checkpoint (log directory)", "dir:rollback", "tampered", Dir("rollback", Some(10))),
    ("re-hashed and re-signed with an attacker's key", "resigned-attacker-key", "unverified", Notice("key_mismatch")),
    ("checkpoint signature removed", "signature-removed", "tampered", Failure("bad_checkpoint", None)),
    ("signature by a different key under the same name", "resigned-same-name", "unverified", Notice("key_mismatch")),
    ("checkpoint from another origin replayed", "checkpoint-other-origin", "tampered", Failure("origin_mismatch", None)),
    ("fork: two checkpoints of one size, different roots", "fork", "tampered", Failure("fork", None)),
    ("fork against an earlier trusted checkpoint (key holder rewrote history)", "fork-against-trusted", "tampered", Failure("fork", None)),
    ("fork in a log directory, key holder re-signs a rewritten history", "dir:fork", "tampered", Dir("fork", None)),
    ("non-canonical: extra white space", "whitespace", "tampered", Failure("not_canonical", Some(7))),
    ("non-canonical: needless escape", "needless-escape", "tampered", Failure("not_canonical", Some(7))),
    ("non-canonical: unsorted keys", "unsorted-keys", "tampered", Failure("not_canonical", Some(7))),
    ("non-canonical: duplicate keys", "duplicate-key", "tampered", Failure("duplicate_key", Some(7))),
    ("BOM before an entry", "bom", "tampered", Failure("bom", Some(7))),
    ("BOM at the start of the file", "bom-file", "tampered", Failure("bom", None)),
    ("CRLF line end", "crlf", "tampered", Failure("crlf", Some(7))),
    ("trailing garbage after the last line", "trailing-garbage", "tampered", Failure("trailing_data", None)),
    ("invalid UTF-8", "invalid-utf8", "tampered", Failure("invalid_utf8", Some(7))),
    ("a line over the size limit", "line-too-long", "tampered", Failure("line_too_long", Some(7))),
    ("inclusion proof with an extra hash", "inclusion-extra-hash", "tampered", Failure("inclusion_invalid", Some(17))),
    ("inclusion proof with a missing hash", "inclusion-missing-hash", "tampered", Failure("inclusion_invalid", Some(17))),
    ("inclusion proof with a wrong index", "inclusion-wrong-index", "tampered", Failure("inclusion_invalid", Some(16))),
    ("inclusion proof for a wrong tree size", "inclusion-wrong-size", "tampered", Failure("inclusion_invalid", Some(17))),
    ("interior node presented as a leaf (second preimage)", "interior-node-as-leaf", "tampered", Failure("inclusion_invalid", Some(1))),
    ("checkpoint size does not match the entries (root of another size)", "root-mismatch", "tampered", Failure("root_mismatch", None)),
    ("checkpoint size smaller than the entries before it", "checkpoint-misplaced", "tampered", Failure("checkpoint_misplaced", None)),
    // From the literature and beyond the list.
    ("entry with an out-of-range seq (2^53)", "seq-overflow", "tampered", Failure("bad_entry", Some(7))),
    ("checkpoint size 2^64 (integer overflow)", "checkpoint-size-overflow", "tampered", Failure("bad_checkpoint", None)),
    ("checkpoint size 2^64 - 1", "checkpoint-size-max", "tampered", Failure("truncated", Some(10))),
    ("checkpoints out of order in a range export", "checkpoint-order", "tampered", Failure("checkpoint_order", None)),
    ("signed entry's ts moved far into the future", "future-ts", "tampered", Failure("hash_mismatch", Some(7))),
    ("far-future entry appended after the last checkpoint (caught as partial)", "future-ts-tail", "partial", Notice("unsigned_tail")),
    ("issue 18's forgery: last signature replaced under the log's name, forged entry appended", "forged-tail-key-mismatch", "partial", Notice("key_mismatch")),
    ("last checkpoint removed, forged entry appended", "forged-tail-checkpoint-dropped", "partial", Notice("unsigned_tail")),
    ("genesis names an attacker's key", "genesis-key-replaced", "tampered", Failure("hash_mismatch", Some(0))),
    ("signature line forging the pinned key's name and key ID", "forged-key-id", "tampered", Failure("bad_signature", None)),
    ("pinned key ID under another name (key ID collision)", "key-id-other-name", "unverified", Notice("untrusted_signature")),
    ("key name that looks like the origin (Unicode confusable)", "confusable-key-name", "unverified", Notice("untrusted_signature")),
    ("checkpoint origin that looks like the log's (Unicode confusable)", "confusable-origin", "tampered", Failure("origin_mismatch", None)),
    ("extension line added to a signed checkpoint", "checkpoint-extension-added", "tampered", Failure("bad_signature", None)),
    ("note with more than 100 signatures", "too-many-signatures", "tampered", Failure("bad_checkpoint", None)),
    ("note with exactly 100 signatures (limit, accepted)", "hundred-signatures", "verified", Notice("-")),
    ("the pinned key's signature line duplicated (harmless)", "duplicate-signature", "verified", Notice("-")),
    ("a second, bad signature line by the pinned key", "duplicate-signature-bad", "tampered", Failure("bad_signature", None)),
    ("trusted checkpoint of another log replayed (monitor state)", "trusted-other-origin", "tampered", Failure("origin_mismatch", None)),
    ("entry deleted inside a range export", "range-entry-deleted", "tampered", Failure("seq_mismatch", Some(8))),
    ("entry changed inside a range export", "range-entry-changed", "tampered", Failure("hash_mismatch", Some(8))),
    ("entries added after a range's checkpoint moved up (its size covers them)", "range-entries-after-checkpoint", "partial", Notice("unsigned_tail")),
    ("a fork in a range hidden behind an unpinned key's checkpoint of the same size", "fork-behind-untrusted-checkpoint", "tampered", Failure("fork", None)),
    ("a split view in an entries export: two signed roots of one size with another checkpoint between", "entries-fork-apart", "tampered", Failure("fork", None)),
    ("a rollback hidden behind a larger checkpoint of an unpinned key", "rollback-behind-unsigned-checkpoint", "tampered", Failure("rollback", Some(10))),
    ("a range starting at the trusted size with forged left hashes", "range-from-trusted-size-forged-left", "tampered", Failure("fork", None)),
    ("entry changed inside a C2SP tlog-proof", "tlog-proof-entry-changed", "tampered", Failure("inclusion_invalid", Some(7))),
    ("entries export out of order", "entries-out-of-order", "tampered", Failure("entries_out_of_order", Some(4))),
    ("entry without its inclusion proof", "inclusion-missing", "tampered", Failure("missing_proof", Some(17))),
    ("a second genesis entry", "second-genesis", "tampered", Failure("bad_genesis", Some(7))),
    ("checked with the wrong key", "wrong-key", "unverified", Notice("untrusted_signature")),
    ("holder of a revoked key hands over to their own key below the revocation size, then signs beyond it", "rotation-revoked-handover", "tampered", Failure("key_revoked", None)),
];

// A deterministic chunking: sizes from the kit's RNG, 1 to 300 bytes.
fn chunked(v: &Vector, seed: u64) -> Report {
    let mut s = StreamVerifier::new(options(v));
    let mut rng = Rng(seed);
    let mut rest = &v.data[..];
    while !rest.is_empty() {
        let n = (rng.below(300) + 1) as usize;
        let (a, b) = rest.split_at(n.min(rest.len()));
        s.push(a);
        rest = b;
    }
    s.finish()
}

#[test]
fn every_attack_is_caught_with_its_code_and_entry() {
    let all = vectors();
    let mut table = String::from("attack | vector | verdict | code entry\n");
    for &(attack, name, verdict, expect) in MATRIX {
        if let Dir(code, entry) = expect {
            table.push_str(&format!(
                "{attack} | {name} | {verdict} | {code} {entry:?}\n"
            ));
            continue;
        }
        let v = all
            .iter()
            .find(|v| v.name == name)
            .unwrap_or_else(|| panic!("{attack}: no vector {name}"));
        assert_eq!(
            v.verdict, verdict,
            "{attack}: vector {name} expects {}",
            v.verdict
        );
        let report = verify_bytes(options(v), &v.data);
        let got = serde_json::to_value(report.verdict).unwrap();
        assert_eq!(got, verdict, "{attack} ({name}): {report:#?}");
        match expect {
            Failure(code, entry) => {
                assert!(
                    report
                        .failures
                        .iter()
                        .any(|f| f.code == code && f.entry == entry),
                    "{attack} ({name}): no {code} at {entry:?} in {:#?}",
                    report.failures
                );
                assert!(
                    v.failures.contains(&(code, entry)),
                    "{attack}: {name}.expect does not list {code} {entry:?}"
                );
            }
            Notice("-") => assert!(report.failures.is_empty()),
            Notice(code) => assert!(
                report.notices.iter().any(|n| n.code == code),
                "{attack} ({name}): no notice {code} in {:#?}",
                report.notices
            ),
            Dir(..) => unreachable!(),
        }
        if verdict == "verified" {
            assert_eq!(report.verdict, Verdict::Verified);
        }
        // Random chunkings give the same report.
        for seed in 0..3 {
            assert_eq!(chunked(v, seed), report, "{name}: chunking {seed} differs");
        }
        let first = report
            .failures
            .first()
            .map_or("-".to_string(), |f| format!("{} {:?}", f.code, f.entry));
        table.push_str(&format!("{attack} | {name} | {verdict} | {first}\n"));
    }
    println!("{table}");
}

#[test]
fn every_failure_vector_is_in_the_matrix_or_is_a_format_check() {
    // Vectors that test one format rule rather than an attack.
    let format_only = [
        "valid-log",
        "valid-range",
        "valid-entries",
        "valid-with-trusted",
        "valid-tlog-proof",
        "no-header",
        "unknown-record",
        "bad-header",
        "invalid-json",
        "bad-entry",
        "too-deep",
        "bad-genesis",
        "bad-signature",
        "range-bad-proof",
        "tlog-proof-no-entry",
        // docs/FORMAT.md rules pinned by tests/src/spec.rs.
        "size-zero-only",
        "size-zero-empty-log",
        "not-a-log-empty",
        "not-a-log-gzip",
        "not-a-log-zip",
        "not-a-log-signing-key",
        "not-a-log-verifier-key",
        "not-a-log-text",
        "range-second-range-zero",
        "note-then-long-line",
        "origin-mismatch-genesis",
        "entries-missing-entry-at-end",
        "trailing-long-entry",
        "entries-genesis-at-3",
        "entries-line-too-long",
        "long-header-line",
        "crlf-at-limit",
        "bom-file-twice",
        "entries-no-entries",
        // Key rotation (docs/FORMAT.md 15), pinned by writer/tests/rotation.rs
        // and the golden files.
        "rotation-valid",
        "rotation-range",
        "rotation-pinned-new-key",
        "rotation-retired-beyond-range",
        "rotation-unsigned",
        "rotation-bad-event",
        "rotation-revoked",
        "rotation-revoked-successor-pinned",
        "rotation-revoked-successor-unpinned",
    ];
    let listed: Vec<&str> = MATRIX.iter().map(|r| r.1).collect();
    for v in vectors() {
        assert!(
            listed.contains(&v.name) || format_only.contains(&v.name),
            "vector {} is neither an attack in the matrix nor a format check",
            v.name
        );
    }
}
