//! The shared test vectors: generated here, committed in tests/vectors/,
//! checked by tests/tests/vectors.rs, the wasm tests and the browser tests.

use crate::{TestLog, sample_log, signer};
use base64::Engine as _;
use serde_json::json;
use std::path::PathBuf;
use stele_core::Checkpoint;
use stele_core::entry::{Timestamp, entry_line};
use stele_core::export::{self, ExportKind};
use stele_core::hash::{Hash, leaf_hash};

pub(crate) const ORIGIN: &str = "example.com/stele-vectors";

/// One test vector.
#[derive(Debug, Clone)]
pub struct Vector {
    /// See docs/FORMAT.md and tests/vectors.
    pub name: &'static str,
    /// See docs/FORMAT.md and tests/vectors.
    pub ext: &'static str,
    /// See docs/FORMAT.md and tests/vectors.
    pub about: &'static str,
    /// See docs/FORMAT.md and tests/vectors.
    pub data: Vec<u8>,
    /// See docs/FORMAT.md and tests/vectors.
    pub key: String,
    /// See docs/FORMAT.md and tests/vectors.
    pub trusted: Option<String>,
    /// See docs/FORMAT.md and tests/vectors.
    pub verdict: &'static str,
    /// See docs/FORMAT.md and tests/vectors.
    pub failures: Vec<(&'static str, Option<u64>)>,
    /// See docs/FORMAT.md and tests/vectors.
    pub notices: Vec<&'static str>,
}

/// The vectors folder.
pub fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("vectors")
}

fn base() -> TestLog {
    sample_log(ORIGIN, 20, 5)
}

// The export with entry k's line replaced by `f(line)` (lines are found by seq).
pub(crate) fn edit_line(text: &str, k: u64, f: impl Fn(&str) -> String) -> String {
    let needle = format!("\"seq\":{k},");
    // An empty replacement removes the line.
    let edit = |l: &str| {
        let r = f(l.strip_suffix('\n').unwrap_or(l));
        if r.is_empty() { r } else { r + "\n" }
    };
    text.split_inclusive('\n')
        .map(|l| {
            if l.starts_with('{') && l.contains(&needle) {
                edit(l)
            } else {
                l.to_string()
            }
        })
        .collect()
}

pub(crate) fn rechain(lines: &[String]) -> TestLog {
    // Rebuild lines with consecutive seq and prev, keeping each event and ts (an attacker without the key).
    let mut log = base();
    log.lines.clear();
    log.tree = Default::default();
    let mut prev = stele_core::entry::ZERO_PREV;
    for (i, l) in lines.iter().enumerate() {
        let p = stele_core::entry::parse_entry(l.as_bytes()).unwrap();
        let ev: serde_json::Value = serde_json::from_str(p.event_json()).unwrap();
        let line = entry_line(i as u64, p.ts, &prev, &ev).unwrap();
        prev = leaf_hash(line.as_bytes());
        log.tree.push(prev);
        log.lines.push(line);
    }
    log
}

/// Every vector.
pub fn vectors() -> Vec<Vector> {
    let log = base();
    let key = log.key().to_string();
    let valid = log.export_log();
    let mut v = Vec::new();
    let mut add =
        |name, about, data: String, verdict, failures: Vec<(&'static str, Option<u64>)>| {
            v.push(Vector {
                name,
                ext: "stele",
                about,
                data: data.into_bytes(),
                key: key.clone(),
                trusted: None,
                verdict,
                failures,
                notices: vec![],
            });
        };
    add(
        "valid-log",
        "a whole log of 20 entries with checkpoints at sizes 1, 5, 10, 15, 20",
        valid.clone(),
        "verified",
        vec![],
    );
    add(
        "valid-range",
        "entries 6..11 with left and right hashes up to the checkpoint of size 20",
        log.export_range(6, 12),
        "verified",
        vec![],
    );
    add(
        "valid-entries",
        "entries 0, 3, 4 and 17, each with an inclusion proof",
        log.export_entries(&[0, 3, 4, 17]),
        "verified",
        vec![],
    );
    add(
        "event-byte-changed",
        "one byte of entry 7's event changed",
        edit_line(&valid, 7, |l| l.replace("req-00000007", "req-00000009")),
        "tampered",
        vec![("hash_mismatch", Some(7)), ("root_mismatch", None)],
    );
    add(
        "prev-edited",
        "entry 7's prev field changed",
        edit_line(&valid, 7, |l| {
            let i = l.find("\"prev\":\"").unwrap() + 8;
            format!("{}{}{}", &l[..i], "ab".repeat(32), &l[i + 64..])
        }),
        "tampered",
        vec![("prev_mismatch", Some(7))],
    );
    add(
        "ts-backwards",
        "entry 7's ts moved before entry 6's",
        edit_line(&valid, 7, |l| l.replace("T09:00:07.", "T08:59:07.")),
        "tampered",
        vec![("ts_decreasing", Some(7)), ("hash_mismatch", Some(7))],
    );
    add(
        "entry-deleted",
        "entry 7 removed from the middle",
        edit_line(&valid, 7, |_| String::new()),
        "tampered",
        vec![("seq_mismatch", Some(7))],
    );
    add(
        "entries-swapped",
        "entries 7 and 8 swapped",
        {
            let (a, b) = (&log.lines[7], &log.lines[8]);
            valid.replace(&format!("{a}\n{b}\n"), &format!("{b}\n{a}\n"))
        },
        "tampered",
        vec![("seq_mismatch", Some(7))],
    );
    add(
        "entry-duplicated",
        "entry 7 appears twice",
        edit_line(&valid, 7, |l| format!("{l}\n{l}")),
        "tampered",
        vec![("seq_mismatch", Some(8))],
    );
    add(
        "inserted-rechained",
        "a forged entry inserted at 7 and every later entry re-numbered and re-chained (no key, so old checkpoints kept)",
        {
            let mut lines = log.lines.clone();
            lines.insert(
                7,
                log.lines[7].replace("\"actor\":\"deploy-bot\"", "\"actor\":\"mallory\""),
            );
            let mut forged = rechain(&lines);
            forged.checkpoints = log.checkpoints.clone();
            forged.export_log()
        },
        "tampered",
        vec![("root_mismatch", None)],
    );
    add(
        "truncated",
        "entries 17..19 cut off, the checkpoint of size 20 kept",
        {
            let mut t = log.clone();
            t.lines.truncate(17);
            t.export_log() + &export::checkpoint_record(&log.checkpoints.last().unwrap().1)
        },
        "tampered",
        vec![("truncated", Some(17))],
    );
    add(
        "signature-removed",
        "the signature lines of the checkpoint of size 10 removed",
        {
            let note = &log.checkpoints.iter().find(|c| c.0 == 10).unwrap().1;
            let text = note.split("\n\n").next().unwrap();
            valid.replace(note.as_str(), &format!("{text}\n"))
        },
        "tampered",
        vec![("bad_checkpoint", None)],
    );
    add(
        "bad-signature",
        "one byte of the signature on the last checkpoint changed",
        {
            let note = &log.checkpoints.last().unwrap().1;
            let (text, sig) = note.split_once("\n\n").unwrap();
            let (pre, b64) = sig.trim_end().rsplit_once(' ').unwrap();
            let mut raw = base64::engine::general_purpose::STANDARD
                .decode(b64)
                .unwrap();
            raw[10] ^= 0x01;
            valid.replace(
                note.as_str(),
                &format!(
                    "{text}\n\n{pre} {}\n",
                    base64::engine::general_purpose::STANDARD.encode(raw)
                ),
            )
        },
        "tampered",
        vec![("bad_signature", None)],
    );
    add(
        "checkpoint-other-origin",
        "a checkpoint for another origin, signed by the same key, replayed into the log",
        {
            let cp = Checkpoint {
                origin: "example.com/other-log".into(),
                size: 10,
                root: log.tree.root_at(10).unwrap(),
                extensions: vec![],
            };
            let note = cp.sign(&log.signer).unwrap();
            edit_line(&valid, 9, |l| {
                format!("{l}\n{}", export::checkpoint_record(&note).trim_end())
            })
        },
        "tampered",
        vec![("origin_mismatch", None)],
    );
    add(
        "fork",
        "two checkpoints of size 10 signed by the log key with different roots",
        {
            let cp = Checkpoint {
                origin: ORIGIN.into(),
                size: 10,
                root: log.tree.root_at(9).unwrap(),
                extensions: vec![],
            };
            let note = cp.sign(&log.signer).unwrap();
            edit_line(&valid, 9, |l| {
                format!("{l}\n{}", export::checkpoint_record(&note).trim_end())
            })
        },
        "tampered",
        vec![("fork", None), ("root_mismatch", None)],
    );
    add(
        "root-mismatch",
        "a checkpoint of size 12 whose root is the root of size 11, signed by the log key",
        {
            let cp = Checkpoint {
                origin: ORIGIN.into(),
                size: 12,
                root: log.tree.root_at(11).unwrap(),
                extensions: vec![],
            };
            edit_line(&valid, 11, |l| {
                format!(
                    "{l}\n{}",
                    export::checkpoint_record(&cp.sign(&log.signer).unwrap()).trim_end()
                )
            })
        },
        "tampered",
        vec![("root_mismatch", None)],
    );
    add(
        "checkpoint-misplaced",
        "the checkpoint of size 10 moved after entry 11",
        {
            let note = &log.checkpoints.iter().find(|c| c.0 == 10).unwrap().1;
            let rec = export::checkpoint_record(note);
            edit_line(&valid.replace(&rec, ""), 11, |l| {
                format!("{l}\n{}", rec.trim_end())
            })
        },
        "tampered",
        vec![("checkpoint_misplaced", None)],
    );
    add(
        "whitespace",
        "a space after a colon in entry 7",
        edit_line(&valid, 7, |l| l.replacen("\"actor\":", "\"actor\": ", 1)),
        "tampered",
        vec![("not_canonical", Some(7))],
    );
    add(
        "needless-escape",
        "entry 7 writes a as \\u0061",
        edit_line(&valid, 7, |l| {
            l.replacen("\"action\"", "\"\\u0061ction\"", 1)
        }),
        "tampered",
        vec![("not_canonical", Some(7))],
    );
    add(
        "unsorted-keys",
        "entry 7's event keys out of order",
        edit_line(&valid, 7, |l| l.replacen("{\"action\"", "{\"zaction\"", 1)),
        "tampered",
        vec![("not_canonical", Some(7))],
    );
    add(
        "duplicate-key",
        "entry 7's event has the key actor twice",
        edit_line(&valid, 7, |l| {
            l.replacen("\"actor\":", "\"actor\":\"x\",\"actor\":", 1)
        }),
        "tampered",
        vec![("duplicate_key", Some(7))],
    );
    add(
        "bom",
        "a UTF-8 byte order mark before entry 7",
        edit_line(&valid, 7, |l| format!("\u{feff}{l}")),
        "tampered",
        vec![("bom", Some(7))],
    );
    add(
        "bom-file",
        "a UTF-8 byte order mark at the start of the file",
        format!("\u{feff}{valid}"),
        "tampered",
        vec![("bom", None)],
    );
    add(
        "bom-file-twice",
        "two UTF-8 byte order marks at the start of the file: one is read as absent (7.1), the second makes the first line no header",
        format!("\u{feff}\u{feff}{valid}"),
        "not_a_log",
        vec![("not_a_log", None)],
    );
    add(
        "crlf",
        "entry 7 ends in CR LF",
        edit_line(&valid, 7, |l| format!("{l}\r")),
        "tampered",
        vec![("crlf", Some(7))],
    );
    add(
        "trailing-garbage",
        "bytes after the last line, with no newline",
        format!("{valid}garbage"),
        "tampered",
        vec![("trailing_data", None)],
    );
    add(
        "unknown-record",
        "a line that is neither an entry nor a record",
        edit_line(&valid, 7, |l| format!("{l}\nhello")),
        "tampered",
        vec![("unknown_record", None)],
    );
    add(
        "bad-header",
        "an unknown export kind",
        valid.replacen("stele-export v1 log", "stele-export v1 everything", 1),
        "tampered",
        vec![("bad_header", None)],
    );
    add(
        "line-too-long",
        "entry 7 is 70,000 bytes",
        edit_line(&valid, 7, |l| {
            l.replacen(
                "\"actor\":",
                &format!("\"acto\":\"{}\",\"actor\":", "x".repeat(70_000)),
                1,
            )
        }),
        "tampered",
        vec![("line_too_long", Some(7))],
    );
    add(
        "invalid-json",
        "entry 7 lost its closing brace",
        edit_line(&valid, 7, |l| l[..l.len() - 1].to_string()),
        "tampered",
        vec![("invalid_json", Some(7))],
    );
    add(
        "bad-entry",
        "entry 7 has an extra top-level field",
        edit_line(&valid, 7, |l| format!("{},\"x\":1}}", &l[..l.len() - 1])),
        "tampered",
        vec![("bad_entry", Some(7))],
    );
    add(
        "too-deep",
        "entry 7's event nests 70 levels deep",
        edit_line(&valid, 7, |l| {
            l.replacen(
                "\"actor\":",
                &format!("\"acto\":{}1{},\"actor\":", "[".repeat(70), "]".repeat(70)),
                1,
            )
        }),
        "tampered",
        vec![("too_deep", Some(7))],
    );
    add(
        "bad-genesis",
        "entry 0 is an ordinary event, not a genesis event",
        {
            let mut lines = log.lines.clone();
            lines[0] = entry_line(
                0,
                Timestamp::from_unix_micros(crate::T0).unwrap(),
                &stele_core::entry::ZERO_PREV,
                &json!({"actor":"mallory","action":"create"}),
            )
            .unwrap();
            let mut t = rechain(&lines);
            t.checkpoints.clear();
            let _ = t.checkpoint();
            t.export_log()
        },
        "tampered",
        vec![("bad_genesis", Some(0))],
    );
    add(
        "second-genesis",
        "entry 7 claims to be a genesis event",
        {
            let mut t = TestLog::new(ORIGIN, 42);
            t.append_n(6);
            t.append(json!({"type":"stele.genesis","origin":"example.com/elsewhere","key":"x"}));
            t.append_n(2);
            let _ = t.checkpoint();
            t.export_log()
        },
        "tampered",
        vec![("bad_genesis", Some(7))],
    );
    let entries = log.export_entries(&[3, 4, 17]);
    let incl17 = export::inclusion_record(17, &log.inclusion(17, 20));
    add(
        "inclusion-extra-hash",
        "entry 17's inclusion proof has one hash too many",
        entries.replace(
            &incl17,
            &format!("{} {}\n", incl17.trim_end(), Hash([7; 32]).to_base64()),
        ),
        "tampered",
        vec![("inclusion_invalid", Some(17))],
    );
    add(
        "inclusion-missing-hash",
        "entry 17's inclusion proof lacks its last hash",
        entries.replace(
            &incl17,
            &format!("{}\n", incl17.trim_end().rsplit_once(' ').unwrap().0),
        ),
        "tampered",
        vec![("inclusion_invalid", Some(17))],
    );
    add(
        "inclusion-wrong-index",
        "entry 17's inclusion proof claims index 16",
        entries.replace(&incl17, &incl17.replacen("inclusion 17", "inclusion 16", 1)),
        "tampered",
        vec![("inclusion_invalid", Some(16)), ("seq_mismatch", Some(16))],
    );
    add(
        "inclusion-missing",
        "entry 17 without its inclusion record",
        entries.replace(&incl17, ""),
        "tampered",
        vec![("missing_proof", Some(17))],
    );
    add(
        "entries-out-of-order",
        "entry 4 listed after entry 17",
        {
            let mut t = log.export_entries(&[3, 17]);
            t.push_str(&export::inclusion_record(4, &log.inclusion(4, 20)));
            t.push_str(&log.lines[4]);
            t.push('\n');
            t
        },
        "tampered",
        vec![("entries_out_of_order", Some(4))],
    );
    add(
        "range-entry-changed",
        "a range export with one byte of entry 8 changed",
        edit_line(&log.export_range(6, 12), 8, |l| {
            l.replace("req-00000008", "req-00000018")
        }),
        "tampered",
        vec![("hash_mismatch", Some(8)), ("root_mismatch", None)],
    );
    add(
        "range-entries-after-checkpoint",
        "entries 6..11 after the checkpoint that proves the range 6..6: no checkpoint covers them",
        {
            let mut t = log.export_range(6, 6);
            for l in &log.lines[6..12] {
                t.push_str(l);
                t.push('\n');
            }
            t
        },
        "partial",
        vec![],
    );
    add(
        "range-bad-proof",
        "a range export whose range record has a corrupt hash",
        {
            let r = log.export_range(6, 12);
            let line = r.lines().nth(1).unwrap().to_string();
            r.replacen(&line, &format!("{}!", line), 1)
        },
        "tampered",
        vec![("bad_proof", None)],
    );

    // A range 8..12 whose checkpoint of size 20 is given twice with two roots,
    // both signed by the log's key, and a note of an unpinned key between
    // them (the attacker holds the log's key, not a witness's): the pair is
    // a fork, whatever comes between (a verifier review).
    let (size20, note20) = log.checkpoints.last().expect("a checkpoint").clone();
    let fake_right: Vec<Hash> = stele_core::merkle::right_levels(12, size20)
        .iter()
        .enumerate()
        .map(|(i, _)| Hash([0x5a ^ i as u8; 32]))
        .collect();
    let left8 = stele_core::merkle::left_hashes(&log.tree, 8).expect("left");
    let forged_root = {
        let mut r = stele_core::merkle::CompactRange::from_left_hashes(8, &left8).expect("left");
        for l in &log.lines[8..12] {
            r.push(leaf_hash(l.as_bytes()));
        }
        r.root_with_right(size20, &fake_right).expect("right")
    };
    let note_with = |root: Hash, by: &stele_core::SignerKey| {
        Checkpoint {
            origin: ORIGIN.to_string(),
            size: size20,
            root,
            extensions: vec![],
        }
        .sign(by)
        .expect("sign")
    };
    let hidden_fork = {
        let mut t = export::header(ExportKind::Range);
        t.push_str(&export::range_record(8, &left8));
        t.push_str(&export::right_record(
            size20,
            &stele_core::merkle::right_hashes(&log.tree, 8, size20).expect("right"),
        ));
        t.push_str(&export::checkpoint_record(&note20));
        for l in &log.lines[8..12] {
            t.push_str(l);
            t.push('\n');
        }
        for by in [signer(ORIGIN, 66), log.signer.clone()] {
            t.push_str(&export::right_record(size20, &fake_right));
            t.push_str(&export::checkpoint_record(&note_with(forged_root, &by)));
        }
        t
    };
    add(
        "fork-behind-untrusted-checkpoint",
        "a range 8..11 with two checkpoints of size 20 signed by the log key with different roots, and an unpinned key's between them",
        hidden_fork,
        "tampered",
        vec![("fork", None)],
    );

    // An entries export whose checkpoints come in any order (7.4): the
    // log's checkpoint of size 20, one of size 15, then another of size 20
    // with another root, both signed by the log's key. The pair is a fork
    // (9.1) though not side by side (a FORMAT review: it was verified).
    let fork_apart = {
        let (size15, note15) = log
            .checkpoints
            .iter()
            .find(|c| c.0 == 15)
            .expect("a checkpoint of size 15")
            .clone();
        let mut t = export::header(ExportKind::Entries);
        t.push_str(&export::checkpoint_record(&note20));
        t.push_str(&export::inclusion_record(3, &log.inclusion(3, size20)));
        t.push_str(&log.lines[3]);
        t.push('\n');
        t.push_str(&export::checkpoint_record(&note15));
        t.push_str(&export::inclusion_record(4, &log.inclusion(4, size15)));
        t.push_str(&log.lines[4]);
        t.push('\n');
        t.push_str(&export::checkpoint_record(&note_with(
            forged_root,
            &log.signer,
        )));
        t
    };
    add(
        "entries-no-entries",
        "an entries export of the log's checkpoint of size 20 and no entry: nothing is proved (the notice says the trusted checkpoint proves no entry of the file)",
        {
            let mut t = export::header(ExportKind::Entries);
            t.push_str(&export::checkpoint_record(&note20));
            t
        },
        "unverified",
        vec![],
    );
    add(
        "entries-fork-apart",
        "an entries export with the checkpoint of size 20, one of size 15, then another of size 20 with another root, all signed by the log key",
        fork_apart,
        "tampered",
        vec![("fork", None)],
    );

    // The log's signed checkpoint of `size` (an earlier trusted checkpoint).
    let note_at = |size: u64| {
        log.checkpoints
            .iter()
            .find(|c| c.0 == size)
            .expect("a checkpoint of that size")
            .1
            .clone()
    };
    // Key and trust vectors.
    let attacker = signer(ORIGIN, 66);
    let mut more = vec![
        Vector {
            name: "wrong-key",
            ext: "stele",
            about: "a valid log checked with a key from another log",
            data: valid.clone().into_bytes(),
            key: signer("example.com/another-log", 9).verifier().to_string(),
            trusted: None,
            verdict: "unverified",
            failures: vec![],
            notices: vec!["untrusted_signature", "no_trusted_checkpoint"],
        },
        Vector {
            name: "resigned-attacker-key",
            ext: "stele",
            about: "the whole log rebuilt (entry 7 changed) and re-signed with an attacker's key of the same name",
            data: {
                let mut t = TestLog::new(ORIGIN, 66);
                for (i, l) in log.lines.iter().enumerate().skip(1) {
                    let p = stele_core::entry::parse_entry(l.as_bytes()).unwrap();
                    let mut ev: serde_json::Value = serde_json::from_str(p.event_json()).unwrap();
                    if i == 7 {
                        ev["outcome"] = json!("success");
                    }
                    t.append(ev);
                    if (i + 1) % 5 == 0 {
                        let _ = t.checkpoint();
                    }
                }
                let _ = &attacker;
                t.export_log().into_bytes()
            },
            key: key.clone(),
            trusted: None,
            verdict: "unverified",
            failures: vec![],
            notices: vec![
                "key_mismatch",
                "genesis_key_not_pinned",
                "no_trusted_checkpoint",
            ],
        },
        Vector {
            name: "no-header",
            ext: "stele",
            about: "entry lines only: chained but nothing signed",
            data: (log.lines.join("\n") + "\n").into_bytes(),
            key: key.clone(),
            trusted: None,
            verdict: "unverified",
            failures: vec![],
            notices: vec!["no_header", "no_trusted_checkpoint"],
        },
        Vector {
            name: "rollback",
            ext: "stele",
            about: "the log as it was at size 10, checked against an earlier trusted checkpoint of size 15",
            data: {
                let mut t = log.clone();
                t.lines.truncate(10);
                t.checkpoints.retain(|c| c.0 <= 10);
                t.export_log().into_bytes()
            },
            key: key.clone(),
            trusted: Some(note_at(15)),
            verdict: "tampered",
            failures: vec![("rollback", Some(10))],
            notices: vec![],
        },
        Vector {
            name: "valid-with-trusted",
            ext: "stele",
            about: "the valid log checked against an earlier trusted checkpoint of size 15",
            data: valid.clone().into_bytes(),
            key: key.clone(),
            trusted: Some(note_at(15)),
            verdict: "verified",
            failures: vec![],
            notices: vec![],
        },
        Vector {
            name: "rollback-behind-unsigned-checkpoint",
            ext: "stele",
            about: "a range 4..7 of the log at size 10, then a size-100 checkpoint of an unpinned key, checked against an earlier trusted checkpoint of size 15",
            data: {
                let mut t = log.clone();
                t.lines.truncate(10);
                t.checkpoints.retain(|c| c.0 <= 10);
                t.tree = {
                    let mut m = stele_core::merkle::MemoryTree::new();
                    for l in &t.lines {
                        m.push(leaf_hash(l.as_bytes()));
                    }
                    m
                };
                let mut e = t.export_range(4, 8);
                let right: Vec<Hash> = stele_core::merkle::right_levels(8, 100)
                    .iter()
                    .map(|_| Hash([0x33; 32]))
                    .collect();
                let mut r = stele_core::merkle::CompactRange::from_left_hashes(
                    4,
                    &stele_core::merkle::left_hashes(&t.tree, 4).unwrap(),
                )
                .unwrap();
                for l in &t.lines[4..8] {
                    r.push(leaf_hash(l.as_bytes()));
                }
                e.push_str(&export::right_record(100, &right));
                let note = Checkpoint {
                    origin: ORIGIN.to_string(),
                    size: 100,
                    root: r.root_with_right(100, &right).unwrap(),
                    extensions: vec![],
                }
                .sign(&attacker)
                .unwrap();
                e.push_str(&export::checkpoint_record(&note));
                e.into_bytes()
            },
            key: key.clone(),
            trusted: Some(note_at(15)),
            verdict: "tampered",
            failures: vec![("rollback", Some(10))],
            notices: vec![],
        },
        Vector {
            name: "range-from-trusted-size-forged-left",
            ext: "stele",
            about: "a range 10..14 whose left hashes are forged and whose size-15 checkpoint the log key signed over them, checked against an earlier trusted checkpoint of size 10",
            data: {
                let left = vec![Hash([0x44; 32]), Hash([0x45; 32])];
                let mut r = stele_core::merkle::CompactRange::from_left_hashes(10, &left).unwrap();
                for l in &log.lines[10..15] {
                    r.push(leaf_hash(l.as_bytes()));
                }
                let mut e = export::header(ExportKind::Range);
                e.push_str(&export::range_record(10, &left));
                for l in &log.lines[10..15] {
                    e.push_str(l);
                    e.push('\n');
                }
                let note = Checkpoint {
                    origin: ORIGIN.to_string(),
                    size: 15,
                    root: r.root(),
                    extensions: vec![],
                }
                .sign(&log.signer)
                .unwrap();
                e.push_str(&export::checkpoint_record(&note));
                e.into_bytes()
            },
            key: key.clone(),
            trusted: Some(note_at(10)),
            verdict: "tampered",
            failures: vec![("fork", None)],
            notices: vec![],
        },
        Vector {
            name: "fork-against-trusted",
            ext: "stele",
            about: "a rewritten log (entry 7 changed, re-signed with the real key) checked against the earlier trusted checkpoint of size 15",
            data: {
                let mut lines = log.lines.clone();
                lines[7] = lines[7].replace("req-00000007", "req-00000070");
                let mut t = rechain(&lines);
                t.checkpoints.clear();
                for s in [1, 5, 10, 15, 20] {
                    let note = t.checkpoint_note(s, &log.signer);
                    t.checkpoints.push((s, note));
                }
                t.export_log().into_bytes()
            },
            key: key.clone(),
            trusted: Some(note_at(15)),
            verdict: "tampered",
            failures: vec![("fork", None)],
            notices: vec![],
        },
        Vector {
            name: "valid-tlog-proof",
            ext: "tlog-proof",
            about: "a C2SP tlog-proof of entry 7 with the entry as extra data",
            data: log.tlog_proof(7).into_bytes(),
            key: key.clone(),
            trusted: None,
            verdict: "verified",
            failures: vec![],
            notices: vec![],
        },
        Vector {
            name: "tlog-proof-no-entry",
            ext: "tlog-proof",
            about: "a C2SP tlog-proof without the extra line",
            data: {
                let t = log.tlog_proof(7);
                let extra = t.lines().nth(1).unwrap().to_string();
                t.replacen(&format!("{extra}\n"), "", 1).into_bytes()
            },
            key: key.clone(),
            trusted: None,
            verdict: "tampered",
            failures: vec![("missing_entry", Some(7))],
            notices: vec![],
        },
        Vector {
            name: "interior-node-as-leaf",
            ext: "tlog-proof",
            about: "a tlog-proof presenting the two children of an interior node as if they were a leaf (second preimage)",
            data: {
                use stele_core::merkle::HashReader;
                let (l, r) = (
                    log.tree.read_hash(0, 2).unwrap(),
                    log.tree.read_hash(0, 3).unwrap(),
                );
                let mut fake = l.0.to_vec();
                fake.extend_from_slice(&r.0);
                // The node (level 1, index 1) proven as "leaf 1" of a tree of 10 leaves seen at level 1.
                let full = log.inclusion(2, 20);
                export::tlog_proof(&fake, 1, &full[1..], &log.checkpoints.last().unwrap().1)
                    .into_bytes()
            },
            key: key.clone(),
            trusted: None,
            verdict: "tampered",
            failures: vec![("inclusion_invalid", Some(1))],
            notices: vec![],
        },
    ];
    more.push(Vector { name: "resigned-same-name", ext: "stele", about: "the unchanged log with every checkpoint re-signed by a different key under the log's name", data: {
        let mut t = log.clone();
        t.checkpoints = log.checkpoints.iter().map(|(s, _)| (*s, log.checkpoint_note(*s, &attacker))).collect();
        t.export_log().into_bytes()
    }, key: key.clone(), trusted: None, verdict: "unverified", failures: vec![], notices: vec!["key_mismatch", "no_trusted_checkpoint"] });
    v.extend(more);
    v.extend(crate::attacks::vectors(&log));
    v.extend(crate::spec::vectors(&log));
    v.extend(crate::rotation::vectors());
    v
}

/// The `.expect` file of a vector.
pub fn expect_text(v: &Vector) -> String {
    let mut s = format!("# {}\nkey: {}\n", v.about, v.key);
    for k in crate::rotation::also_pinned(v.name) {
        s.push_str(&format!("key: {k}\n"));
    }
    if let Some(r) = crate::rotation::revoked_for(v.name) {
        s.push_str(&format!("revoked: {r}\n"));
    }
    if v.trusted.is_some() {
        s.push_str(&format!("trusted: {}.trusted\n", v.name));
    }
    s.push_str(&format!("verdict: {}\n", v.verdict));
    for (code, entry) in &v.failures {
        s.push_str(&format!(
            "failure: {code} {}\n",
            entry.map_or("-".to_string(), |e| e.to_string())
        ));
    }
    for n in &v.notices {
        s.push_str(&format!("notice: {n}\n"));
    }
    s
}

/// A `.stele` vector with no trusted checkpoint (the spec and attack tables build theirs with it).
pub(crate) fn stele_vector(
    name: &'static str,
    about: &'static str,
    data: impl Into<Vec<u8>>,
    key: &str,
    verdict: &'static str,
    failures: Vec<(&'static str, Option<u64>)>,
    notices: Vec<&'static str>,
) -> Vector {
    Vector {
        name,
        ext: "stele",
        about,
        data: data.into(),
        key: key.to_string(),
        trusted: None,
        verdict,
        failures,
        notices,
    }
}
