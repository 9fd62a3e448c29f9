//! Vectors for the rules of docs/FORMAT.md where the spec and the code once
//! disagreed or the spec was silent (issue 18), the verdicts `partial` and
//! `not_a_log`, and the forgeries they catch. Each pins one decision.

use crate::vectors::{ORIGIN, Vector, edit_line, stele_vector as v};
use crate::{TestLog, signer};
use serde_json::json;
use stele_core::entry::{Timestamp, entry_line};
use stele_core::export;
use stele_core::hash::{EMPTY_ROOT, leaf_hash};
use stele_core::{Checkpoint, SignedCheckpoint};

// A correctly chained forged entry after the last line of `log`.
fn forged_entry(log: &TestLog) -> String {
    let last = log.lines.last().expect("entries");
    let ts = Timestamp::parse(b"2026-11-26T10:00:00.000000Z").expect("ts");
    entry_line(
        log.lines.len() as u64,
        ts,
        &leaf_hash(last.as_bytes()),
        &json!({"actor":"mallory","action":"grant","target":"admin"}),
    )
    .expect("entry")
}

// A note for the empty tree of `origin`, signed by the log's key.
fn size_zero_note(log: &TestLog, origin: &str) -> String {
    Checkpoint {
        origin: origin.into(),
        size: 0,
        root: EMPTY_ROOT,
        extensions: vec![],
    }
    .sign(&log.signer)
    .expect("sign")
}

/// The vectors, built from the vectors' base log.
pub fn vectors(log: &TestLog) -> Vec<Vector> {
    let key = log.key().to_string();
    let valid = log.export_log();
    let attacker = signer(ORIGIN, 66);
    let last_note = &log.checkpoints.last().expect("checkpoint").1;
    let mut out = Vec::new();

    // "Verified" means every entry shown is signed.
    out.push(v(
        "forged-tail-key-mismatch",
        "issue 18's forgery: the last checkpoint's signature replaced by one under the log's key name with another key ID, and a forged entry appended; only entries 0..14 are signed",
        {
            let forged = log.checkpoint_note(20, &attacker);
            format!("{}{}\n", valid.replace(last_note.as_str(), &forged), forged_entry(log))
        },
        &key,
        "partial",
        vec![],
        vec!["key_mismatch", "unsigned_tail"],
    ));
    out.push(v(
        "forged-tail-checkpoint-dropped",
        "the last checkpoint record removed and a forged entry appended; only entries 0..14 are signed",
        format!(
            "{}{}\n",
            valid.replace(&export::checkpoint_record(last_note), ""),
            forged_entry(log)
        ),
        &key,
        "partial",
        vec![],
        vec!["unsigned_tail"],
    ));
    out.push(v(
        "size-zero-only",
        "a log whose only checkpoint is a trusted size-0 checkpoint: it counts (it signs the empty tree), so every entry after it is unsigned",
        {
            let mut t = log.clone();
            t.checkpoints = vec![(0, size_zero_note(log, ORIGIN))];
            t.export_log()
        },
        &key,
        "partial",
        vec![],
        vec!["unsigned_tail"],
    ));
    out.push(v(
        "size-zero-empty-log",
        "a header and a trusted size-0 checkpoint, no entries: the empty log is signed",
        format!(
            "{}{}",
            export::header(export::ExportKind::Log),
            export::checkpoint_record(&size_zero_note(log, ORIGIN))
        ),
        &key,
        "verified",
        vec![],
        vec!["empty"],
    ));

    // Not a Stele export at all: one not_a_log failure, with a hint.
    out.push(v(
        "not-a-log-empty",
        "an empty file",
        Vec::new(),
        &key,
        "not_a_log",
        vec![("not_a_log", None)],
        vec![],
    ));
    out.push(v(
        "not-a-log-gzip",
        "a gzip-compressed export (gzip magic, then binary data)",
        {
            let mut b = vec![0x1f, 0x8b, 0x08, 0x00, 0, 0, 0, 0, 0, 0x03];
            b.extend((0u8..=255).cycle().take(3000).map(|x| x.wrapping_mul(37)));
            b
        },
        &key,
        "not_a_log",
        vec![("not_a_log", None)],
        vec![],
    ));
    out.push(v(
        "not-a-log-zip",
        "a zip archive",
        b"PK\x03\x04\x14\x00\x00\x00\x08\x00log.stele\n\x00\x01\x02".to_vec(),
        &key,
        "not_a_log",
        vec![("not_a_log", None)],
        vec![],
    ));
    out.push(v(
        "not-a-log-signing-key",
        "a Stele signing key file chosen by mistake (a test key; the report never repeats it)",
        format!(
            "{}\n",
            signer("example.com/test-only", 99).to_private_string()
        ),
        &key,
        "not_a_log",
        vec![("not_a_log", None)],
        vec![],
    ));
    out.push(v(
        "not-a-log-verifier-key",
        "the verifier key file chosen instead of the export",
        format!("{key}\n"),
        &key,
        "not_a_log",
        vec![("not_a_log", None)],
        vec![],
    ));
    out.push(v(
        "not-a-log-text",
        "a text file whose first line is neither a header nor an entry",
        "Dear auditor,\nplease find the log attached.\n",
        &key,
        "not_a_log",
        vec![("not_a_log", None)],
        vec![],
    ));

    // Spec and code disagreed: one vector per decision.
    out.push(v(
        "range-second-range-zero",
        "a range export starting at 0 with its range record twice: a range export has one range record, so the second is unknown_record",
        {
            let r = log.export_range(0, 6);
            let line = r.lines().nth(1).expect("range record").to_string();
            r.replacen(&format!("{line}\n"), &format!("{line}\n{line}\n"), 1)
        },
        &key,
        "tampered",
        vec![("unknown_record", None)],
        vec![],
    ));
    out.push(v(
        "note-then-long-line",
        "the complete checkpoint of size 10 followed by an over-long entry 10: the checkpoint is read and verified, then line_too_long",
        edit_line(&valid, 10, |l| {
            l.replacen("\"actor\":", &format!("\"acto\":\"{}\",\"actor\":", "x".repeat(70_000)), 1)
        }),
        &key,
        "tampered",
        vec![("line_too_long", Some(10))],
        vec![],
    ));
    out.push(v(
        "origin-mismatch-genesis",
        "a size-0 checkpoint of another origin before the genesis entry: origin_mismatch names entry 0, where the genesis states the origin",
        {
            let mut t = log.clone();
            t.checkpoints.insert(0, (0, size_zero_note(log, "example.com/other-log")));
            t.export_log()
        },
        &key,
        "tampered",
        vec![("origin_mismatch", Some(0))],
        vec![],
    ));
    out.push(v(
        "entries-missing-entry-at-end",
        "an entries export ending after the inclusion record of entry 17: missing_entry names entry 17",
        {
            let e = log.export_entries(&[3, 17]);
            let cut = e.trim_end().rfind('\n').expect("lines") + 1;
            e[..cut].to_string()
        },
        &key,
        "tampered",
        vec![("missing_entry", Some(17))],
        vec![],
    ));
    out.push(v(
        "trailing-long-entry",
        "70,000 bytes starting with { after the last newline: trailing_data names entry 20, and bytes counts the whole file",
        format!("{valid}{{\"event\":\"{}", "x".repeat(70_000)),
        &key,
        "tampered",
        vec![("trailing_data", Some(20))],
        vec![],
    ));
    out.push(v(
        "entries-genesis-at-3",
        "an entries export whose entry 3 has type stele.genesis: bad_genesis, as in a whole log",
        {
            let mut t = TestLog::new(ORIGIN, 42);
            t.append_n(2);
            t.append(json!({"type":"stele.genesis","origin":"example.com/elsewhere","key":"x"}));
            t.append_n(2);
            let _ = t.checkpoint();
            t.export_entries(&[3])
        },
        &TestLog::new(ORIGIN, 42).key().to_string(),
        "tampered",
        vec![("bad_genesis", Some(3))],
        vec![],
    ));
    out.push(v(
        "entries-line-too-long",
        "an entries export whose entry 17 is 70,000 bytes: line_too_long names entry 17 (its inclusion record's index), and nothing else is reported",
        edit_line(&log.export_entries(&[3, 17]), 17, |l| {
            l.replacen("\"actor\":", &format!("\"acto\":\"{}\",\"actor\":", "x".repeat(70_000)), 1)
        }),
        &key,
        "tampered",
        vec![("line_too_long", Some(17))],
        vec![],
    ));
    out.push(v(
        "long-header-line",
        "a first line starting with the export header but 70,000 bytes long: bad_header, not an entry",
        format!("stele-export v1 log{}\n{}", " ".repeat(70_000), valid.split_once('\n').expect("header").1),
        &key,
        "tampered",
        vec![("bad_header", None)],
        vec![],
    ));
    out.push(v(
        "crlf-at-limit",
        "entry 7 padded to exactly 65,535 bytes, then a CR: the length is checked first, so line_too_long (not crlf)",
        edit_line(&valid, 7, |l| {
            let pad = 65_535 - l.len() - "\"acto\":\"\",".len();
            format!("{}\r", l.replacen("\"actor\":", &format!("\"acto\":\"{}\",\"actor\":", "x".repeat(pad)), 1))
        }),
        &key,
        "tampered",
        vec![("line_too_long", Some(7))],
        vec![],
    ));
    out
}

/// The earlier checkpoint of size 15 with two signature lines by the pinned
/// key, one good and one corrupted: trusted by nobody (docs/FORMAT.md 5.4,
/// 8.6). Written as tests/vectors/trusted-mixed-signature.note.
pub fn mixed_signature_note(log: &TestLog) -> String {
    let note = &log.checkpoints.iter().find(|c| c.0 == 15).expect("15").1;
    let (text, sig) = note.split_once("\n\n").expect("a note");
    let line = sig.trim_end();
    let (pre, b64) = line.rsplit_once(' ').expect("a signature line");
    use base64::Engine as _;
    let b = base64::engine::general_purpose::STANDARD;
    let mut raw = b.decode(b64).expect("base64");
    raw[20] ^= 1;
    let bad = format!("{pre} {}", b.encode(raw));
    let out = format!("{text}\n\n{line}\n{bad}\n");
    debug_assert!(SignedCheckpoint::parse(out.as_bytes()).is_ok());
    out
}
