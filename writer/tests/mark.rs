//! The check mark: open re-checks only the entries after it; `Log::fsck`
//! and `verify_dir` still read everything; a mark that does not hold is
//! ignored (a full check), never trusted.

mod common;

use common::*;
use std::path::Path;
use std::sync::Arc;
use stele_core::VerifierKey;
use stele_writer::{Error, Log, LogOptions, key};

fn opts(mark_bytes: u64) -> LogOptions {
    LogOptions {
        checkpoint_every: None,
        checkpoint_interval: None,
        check_mark_bytes: mark_bytes,
        ..LogOptions::default()
    }
}

// A log of 1 + 200 entries with a checkpoint (and the mark) at 101 and 201.
fn fixture(dir: &Path) -> VerifierKey {
    let signer = key::generate("example.com/mark").unwrap();
    let log = Log::create_with(dir, "example.com/mark", &signer, None, opts(1)).unwrap();
    for half in 0..2 {
        let batch = (0..100)
            .map(|i| serde_json::json!({"actor": "alice", "n": half * 100 + i}))
            .collect();
        let _ = log.append_batch(batch).unwrap();
        let _ = log.checkpoint().unwrap();
    }
    signer.verifier()
}

fn mark_text(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("checked")).unwrap()
}

fn entry_offsets(dir: &Path) -> Vec<usize> {
    let bytes = std::fs::read(dir.join("entries.jsonl")).unwrap();
    let mut ends = vec![0];
    ends.extend(memchr::memchr_iter(b'\n', &bytes).map(|i| i + 1));
    ends
}

// Changes one digit inside entry `i`'s event without breaking its form.
fn flip_digit_in_entry(dir: &Path, i: usize) {
    let path = dir.join("entries.jsonl");
    let mut bytes = std::fs::read(&path).unwrap();
    let ends = entry_offsets(dir);
    let line = &bytes[ends[i]..ends[i + 1]];
    let at = ends[i] + line.windows(4).position(|w| w == b"\"n\":").unwrap() + 4;
    bytes[at] = if bytes[at] == b'9' {
        b'8'
    } else {
        bytes[at] + 1
    };
    std::fs::write(&path, bytes).unwrap();
}

#[test]
fn the_mark_follows_signed_checkpoints() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("log");
    let _ = fixture(&dir);
    let text = mark_text(&dir);
    let ends = entry_offsets(&dir);
    let first: Vec<&str> = text.lines().collect();
    assert_eq!(first[0], "stele-checked v1");
    let fields: Vec<&str> = first[1].split(' ').collect();
    assert_eq!(fields[0], "201", "{text}");
    assert_eq!(fields[1], ends[201].to_string(), "{text}");
    // With the default threshold (4 MiB) a small log gets no new mark.
    let log = Log::open(&dir).unwrap();
    let _ = log.append(serde_json::json!({"n": 1})).unwrap();
    let _ = log.checkpoint().unwrap();
    drop(log);
    assert_eq!(mark_text(&dir), text);
}

#[test]
fn open_skips_marked_entries_and_fsck_and_verify_do_not() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("log");
    let vk = fixture(&dir);
    // Damage before the mark: an O(1) open does not read it (the trade)...
    flip_digit_in_entry(&dir, 50);
    drop(Log::open_with(&dir, opts(u64::MAX)).unwrap());
    // ...but the full check and the verifier do, and change nothing.
    let before = std::fs::read(dir.join("entries.jsonl")).unwrap();
    let e = Log::fsck(&dir, opts(u64::MAX)).unwrap_err();
    // Entry 50 still parses; entry 51's prev no longer matches it.
    assert!(matches!(e, Error::Corrupt { entry: 51, .. }), "{e}");
    assert_eq!(std::fs::read(dir.join("entries.jsonl")).unwrap(), before);
    let r =
        stele_writer::verify_dir(&dir, stele_core::Options::new(vec![vk]), &mut |_, _| {}).unwrap();
    assert_ne!(r.verdict, stele_core::verify::Verdict::Verified);
    let log = dir.to_str().unwrap();
    let out = stele(&["fsck", log]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("entry 51: prev is"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn damage_after_the_mark_is_still_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("log");
    let _ = fixture(&dir);
    // Move the mark back to the checkpoint of size 101: entries 101..201
    // are then the tail every open checks.
    let ends = entry_offsets(&dir);
    let text = mark_text(&dir);
    let cps = std::fs::read(dir.join("checkpoints")).unwrap();
    let note = stele_writer::view::parse_checkpoints(&dir, &cps, &[])
        .unwrap()
        .0;
    let c = note.iter().find(|c| c.checkpoint.size == 101).unwrap();
    let back = format!(
        "stele-checked v1\n101 {} 0 {}\n",
        ends[101],
        c.checkpoint.root.to_base64()
    );
    assert_ne!(back, text);
    std::fs::write(dir.join("checked"), &back).unwrap();
    flip_digit_in_entry(&dir, 150);
    let e = Log::open_with(&dir, opts(u64::MAX)).unwrap_err();
    assert!(matches!(e, Error::Corrupt { entry: 151, .. }), "{e}");
}

#[test]
fn a_mark_that_does_not_hold_means_a_full_check() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("log");
    let vk = fixture(&dir);
    let good = mark_text(&dir);
    let ends = entry_offsets(&dir);
    let fields: Vec<String> = good
        .lines()
        .nth(1)
        .unwrap()
        .split(' ')
        .map(String::from)
        .collect();
    let other_root = stele_core::hash::leaf_hash(b"x").to_base64();
    let bad_marks = [
        String::new(),
        "garbage".to_string(),
        good.replace("v1", "v2"),
        // A root no checkpoint has.
        format!("stele-checked v1\n201 {} 0 {other_root}\n", fields[1]),
        // The right root at a size no checkpoint has.
        format!("stele-checked v1\n150 {} 0 {}\n", ends[150], fields[3]),
        // Entries length not where entry 200 ends.
        format!("stele-checked v1\n201 {} 0 {}\n", ends[201] - 1, fields[3]),
        // Beyond the end of the entries file.
        format!("stele-checked v1\n201 {} 0 {}\n", u64::MAX, fields[3]),
    ];
    for (k, m) in bad_marks.iter().enumerate() {
        std::fs::write(dir.join("checked"), m).unwrap();
        // Damage before where a trusted mark would have started: a full
        // check finds it, so the open fails.
        let entries = std::fs::read(dir.join("entries.jsonl")).unwrap();
        flip_digit_in_entry(&dir, 50);
        assert!(
            Log::open_with(&dir, opts(u64::MAX)).is_err(),
            "mark {k}: {m:?}"
        );
        std::fs::write(dir.join("entries.jsonl"), &entries).unwrap();
        // Undamaged: the open works and the log verifies.
        drop(Log::open_with(&dir, opts(u64::MAX)).unwrap());
        assert_verified(
            &stele_writer::verify_dir(
                &dir,
                stele_core::Options::new(vec![vk.clone()]),
                &mut |_, _| {},
            )
            .unwrap(),
        );
    }
    // Derived files lost or damaged under a good mark: rebuilt, not trusted.
    std::fs::write(dir.join("checked"), &good).unwrap();
    std::fs::write(dir.join("tree"), b"").unwrap();
    let log = Log::open_with(&dir, opts(u64::MAX)).unwrap();
    let view = log.view();
    assert_eq!(view.size(), 201);
    view.check_inclusion(7, 201).unwrap();
    drop(log);
    let mut tree = std::fs::read(dir.join("tree")).unwrap();
    let n = tree.len();
    tree[n - 40] ^= 1; // inside the root's left hashes
    std::fs::write(dir.join("tree"), &tree).unwrap();
    drop(Log::open_with(&dir, opts(u64::MAX)).unwrap());
    let log = Log::fsck(&dir, opts(u64::MAX)).unwrap();
    for i in [0, 100, 200] {
        log.view().check_inclusion(i, 201).unwrap();
    }
}

#[test]
fn torn_and_overlong_tails_after_the_mark_are_cut() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("log");
    let vk = fixture(&dir);
    let log = Log::open_with(&dir, opts(u64::MAX)).unwrap();
    let _ = log.append(serde_json::json!({"n": "unsigned"})).unwrap();
    drop(log);
    let path = dir.join("entries.jsonl");
    let kept = std::fs::metadata(&path).unwrap().len();
    // A line of 4 MiB without a newline: read up to the entry limit only.
    let mut bytes = std::fs::read(&path).unwrap();
    bytes.extend(std::iter::repeat_n(b'x', 4 << 20));
    std::fs::write(&path, &bytes).unwrap();
    let log = Log::open_with(&dir, opts(u64::MAX)).unwrap();
    let r = log.recovery().unwrap().clone();
    assert_eq!(r.offset, kept);
    assert_eq!(r.dropped_bytes, 4 << 20);
    assert!(r.reason.contains("over the limit of 65535"), "{}", r.reason);
    drop(log);
    // The same line with a newline, then a complete entry after it: damage,
    // not a torn tail (the entry after is read past the long line).
    let mut bytes = std::fs::read(&path).unwrap();
    let good_last = bytes[..bytes.len() - 1]
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |p| p + 1);
    let last = bytes[good_last..].to_vec();
    bytes.extend(std::iter::repeat_n(b'y', 1 << 20));
    bytes.push(b'\n');
    bytes.extend_from_slice(&last);
    std::fs::write(&path, &bytes).unwrap();
    let e = Log::open_with(&dir, opts(u64::MAX)).unwrap_err();
    assert!(e.to_string().contains("not a torn tail"), "{e}");
    // The read-only view takes the derived files (they cover 203 entries)
    // and never reads the long line.
    let v = stele_writer::View::open_read_only(&dir).unwrap();
    assert_eq!(v.size(), 203);
    let _ = vk;
}

#[test]
fn a_failed_mark_write_leaves_the_old_mark_and_the_log_working() {
    use stele_writer::fs::FileRole;
    use stele_writer::testing::{FaultFs, FaultMode, Op};
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("log");
    let vk = fixture(&dir);
    let before = mark_text(&dir);
    for (k, (op, role, mode)) in [
        (Op::Sync, FileRole::Tree, FaultMode::NotPersisted),
        (Op::Sync, FileRole::Index, FaultMode::NotPersisted),
        (Op::Write, FileRole::Checked, FaultMode::Partial),
        (Op::Sync, FileRole::Checked, FaultMode::NotPersisted),
        (Op::Rename, FileRole::Checked, FaultMode::NotPersisted),
        (Op::Rename, FileRole::Checked, FaultMode::Persisted),
    ]
    .into_iter()
    .enumerate()
    {
        let fs = Arc::new(FaultFs::new());
        fs.fail_nth(op, Some(role), 1, mode);
        let o = LogOptions {
            fs: fs.clone(),
            ..opts(1)
        };
        let log = Log::open_with(&dir, o).unwrap();
        let _ = log.append(serde_json::json!({"case": k})).unwrap();
        // The checkpoint is durable and returned; only the mark is not moved.
        let cp = log.checkpoint().unwrap();
        assert_eq!(fs.fired().len(), 1, "case {k}: {:?}", fs.fired());
        // The log goes on (not poisoned) and the next checkpoint moves it.
        let _ = log
            .append(serde_json::json!({"case": k, "after": true}))
            .unwrap();
        drop(log);
        let text = mark_text(&dir);
        if mode != FaultMode::Persisted {
            assert!(
                !text.contains(&format!("\n{} ", cp.checkpoint.size)),
                "case {k}: {text}"
            );
        }
        // Reopened without faults: opens, and everything checks out (once
        // the unsigned entry is signed).
        let _ = Log::open_with(&dir, opts(u64::MAX))
            .unwrap()
            .checkpoint()
            .unwrap();
        drop(Log::fsck(&dir, opts(u64::MAX)).unwrap());
        assert_verified(
            &stele_writer::verify_dir(
                &dir,
                stele_core::Options::new(vec![vk.clone()]),
                &mut |_, _| {},
            )
            .unwrap(),
        );
    }
    assert_ne!(mark_text(&dir), before, "fsck moves the mark");
}

// Checkpoints lost while the entries stay (a partial restore, a deleted or
// emptied file): the writer refuses to open rather than sign a checkpoint
// over a history that forks the one it published. `stele fsck` does not
// accept it either; putting the file back does.
#[test]
fn lost_checkpoints_are_refused_never_signed_over() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("log");
    let vk = fixture(&dir);
    let cps = std::fs::read(dir.join("checkpoints")).unwrap();
    let refused = |what: &str, expect: &str| match Log::open_with(&dir, opts(u64::MAX)) {
        Err(e @ Error::CheckpointMismatch { .. }) => {
            assert!(e.to_string().contains(expect), "{what}: {e}")
        }
        Err(e) => panic!("{what}: another error: {e}"),
        Ok(_) => panic!("{what}: opened"),
    };
    // Shorter than the check mark says.
    std::fs::write(dir.join("checkpoints"), &cps[..cps.len() / 2]).unwrap();
    refused("shorter than the mark", "signed checkpoints were lost");
    // Emptied, or removed, with no mark to say so.
    std::fs::remove_file(dir.join("checked")).unwrap();
    std::fs::write(dir.join("checkpoints"), b"").unwrap();
    refused("emptied", "holds no checkpoint signed");
    std::fs::remove_file(dir.join("checkpoints")).unwrap();
    refused("removed", "holds no checkpoint signed");
    assert!(Log::fsck(&dir, opts(u64::MAX)).is_err());
    // Nothing was appended or signed meanwhile: put back, it opens and verifies.
    std::fs::write(dir.join("checkpoints"), &cps).unwrap();
    let log = Log::open_with(&dir, opts(u64::MAX)).unwrap();
    assert_eq!(log.view().size(), 201);
    drop(log);
    assert_verified(
        &stele_writer::verify_dir(&dir, stele_core::Options::new(vec![vk]), &mut |_, _| {})
            .unwrap(),
    );
    // A log that crashed between its genesis entry and its first checkpoint
    // still opens (and signs that checkpoint).
    let young = tmp.path().join("young");
    let signer = key::generate("example.com/young").unwrap();
    drop(Log::create_with(&young, "example.com/young", &signer, None, opts(1)).unwrap());
    std::fs::write(young.join("checkpoints"), b"").unwrap();
    let _ = std::fs::remove_file(young.join("checked"));
    let log = Log::open_with(&young, opts(u64::MAX)).unwrap();
    assert_eq!(log.view().size(), 1);
}

// The mark spares open the signatures it covers, but not the last one: a
// key file or configuration restored from another log or from before a
// rotation would otherwise sign new checkpoints no verifier accepts.
#[test]
fn a_key_from_elsewhere_is_refused_even_under_the_mark() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("log");
    let _ = fixture(&dir);
    assert!(mark_text(&dir).contains("201"), "{}", mark_text(&dir));
    let own = std::fs::read(dir.join("key")).unwrap();
    // Another key under the same name, as a wrong backup would put there.
    let other = tmp.path().join("other");
    let signer = key::generate("example.com/mark").unwrap();
    drop(Log::create_with(&other, "example.com/mark", &signer, None, opts(1)).unwrap());
    let _ = std::fs::copy(other.join("key"), dir.join("key")).unwrap();
    match Log::open_with(&dir, opts(u64::MAX)) {
        Err(e @ Error::CheckpointMismatch { .. }) => {
            let m = e.to_string();
            assert!(m.contains("not signed by the log's key"), "{m}");
            assert!(m.contains(&signer.verifier().id_hex()), "{m}");
        }
        Err(e) => panic!("another error: {e}"),
        Ok(_) => panic!("opened with another log's key"),
    }
    // Put back, it opens (nothing was changed).
    std::fs::write(dir.join("key"), own).unwrap();
    let log = Log::open_with(&dir, opts(u64::MAX)).unwrap();
    assert_eq!(log.view().size(), 201);
}

// Many checkpoints over few entries (one per append, as `stele serve
// --checkpoint-every 1` signs): the mark follows them too, so an open
// verifies the signatures of at most about 32 KiB of notes, not all the
// ones signed since 4 MiB of entries ago.
#[test]
fn the_mark_follows_many_small_checkpoints() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let signer = key::generate("example.com/mark").unwrap();
    let log = Log::create_with(dir, "example.com/mark", &signer, None, opts(4 << 20)).unwrap();
    for n in 0..400 {
        let _ = log
            .append(serde_json::json!({"actor": "alice", "n": n}))
            .unwrap();
        let _ = log.checkpoint().unwrap();
    }
    drop(log);
    let cps = std::fs::metadata(dir.join("checkpoints")).unwrap().len();
    assert!(cps > 64 << 10, "{cps}");
    let mark = mark_text(dir);
    let marked: u64 = mark
        .lines()
        .nth(1)
        .unwrap()
        .split(' ')
        .nth(2)
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        cps - marked <= 32 << 10,
        "{cps} bytes of checkpoints, {marked} marked: {mark}"
    );
    // The mark holds: the log opens and goes on from it.
    let log = Log::open(dir).unwrap();
    assert_eq!(log.size(), 401);
}
