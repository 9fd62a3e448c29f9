//! Key rotation in the writer (docs/FORMAT.md 15, writer/README.md "Key
//! rotation"): a rotated log verifies from the genesis key alone; the old
//! key co-signs exactly the overlap; a failure at each step of a rotation
//! (the key file, the pending configuration, the stele.key event, the
//! covering checkpoint, the final configuration) leaves a log that opens,
//! completes the rotation once and verifies; a running writer completes a
//! rotation handed to it.

mod common;
use serde_json::json;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use stele_core::verify::{Options, Report, Verdict, verify_bytes};
use stele_core::{SignedCheckpoint, VerifierKey};
use stele_writer::fs::FileRole;
use stele_writer::testing::{FaultFs, FaultMode, Op};
use stele_writer::{Log, LogOptions, View, key};

const ORIGIN: &str = "example.com/rotation";

fn opts(fs: Option<Arc<FaultFs>>) -> LogOptions {
    let mut o = LogOptions {
        checkpoint_every: None,
        checkpoint_interval: None,
        ..LogOptions::default()
    };
    if let Some(fs) = fs {
        o.fs = fs;
    }
    o
}

fn new_log(dir: &Path) -> VerifierKey {
    let signer = key::generate(ORIGIN).unwrap();
    let log = Log::create_with(dir, ORIGIN, &signer, None, opts(None)).unwrap();
    for i in 0..4 {
        let _ = log.append(json!({"actor": "alice", "n": i})).unwrap();
    }
    let _ = log.checkpoint().unwrap();
    signer.verifier()
}

// The whole-log export, verified with `key` pinned.
fn verify(dir: &Path, key: &VerifierKey) -> Report {
    let mut out = Vec::new();
    View::open_read_only(dir)
        .unwrap()
        .export_log(&mut out, &mut |_| {})
        .unwrap();
    verify_bytes(Options::new(vec![key.clone()]), &out)
}

fn key_events(dir: &Path) -> usize {
    let text = std::fs::read_to_string(dir.join("entries.jsonl")).unwrap();
    text.lines()
        .filter(|l| l.contains("\"type\":\"stele.key\""))
        .count()
}

// Grows the log by `n` checkpoints of one entry each.
fn grow(log: &Log, n: usize) {
    for i in 0..n {
        let _ = log.append(json!({"actor": "bob", "n": i})).unwrap();
        let _ = log.checkpoint().unwrap();
    }
}

#[test]
fn a_rotated_log_verifies_from_the_genesis_key_and_the_old_key_cosigns_the_overlap() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("log");
    let k0 = new_log(&dir);
    let log = Log::open_with(&dir, opts(None)).unwrap();
    let r = log.rotate_key(2).unwrap();
    assert_eq!(r.replaces, k0);
    assert_eq!(r.from, r.entry + 1);
    assert_eq!(log.verifier(), r.key);
    assert_eq!(log.key_history(), vec![k0.clone(), r.key.clone()]);
    let mode = std::fs::metadata(&r.key_file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the new key file is 0600");
    grow(&log, 3);
    drop(log);
    // Signatures per checkpoint: one before the event, two for the first
    // two of size >= from (the overlap), then one (the new key's).
    let view = View::open_read_only(&dir).unwrap();
    let sigs: Vec<(u64, Vec<[u8; 4]>)> = view
        .checkpoints()
        .iter()
        .map(|c| {
            let sc = SignedCheckpoint::parse(c.note.as_bytes()).unwrap();
            let ids = sc.note.signatures.iter().map(|s| s.key_id).collect();
            (c.checkpoint.size, ids)
        })
        .collect();
    let (old, new) = (k0.id(), r.key.id());
    for (size, ids) in &sigs {
        let after: Vec<_> = sigs.iter().filter(|(s, _)| *s >= r.from).collect();
        let want = if *size < r.from {
            vec![old]
        } else if after.iter().position(|(s, _)| s == size).unwrap() < 2 {
            vec![old, new]
        } else {
            vec![new]
        };
        assert_eq!(ids, &want, "checkpoint of size {size}: {sigs:?}");
    }
    let report = verify(&dir, &k0);
    assert_eq!(report.verdict, Verdict::Verified, "{report:#?}");
    let keys = report.keys.as_ref().expect("key history");
    assert_eq!(keys.len(), 2);
    assert_eq!((keys[0].from, keys[0].to), (0, Some(r.from)));
    assert_eq!((keys[1].entry, keys[1].signed), (r.entry, Some(true)));
    assert!(keys.iter().all(|k| k.trusted));
    // The new key alone also verifies the whole log (its last checkpoint).
    assert_eq!(verify(&dir, &r.key).verdict, Verdict::Verified);
    // Reopened, the log signs with the new key only.
    let log = Log::open_with(&dir, opts(None)).unwrap();
    assert_eq!(log.verifier(), r.key);
    grow(&log, 1);
    drop(log);
    assert_eq!(verify(&dir, &k0).verdict, Verdict::Verified);
    // A second rotation: followed from the genesis key through both events.
    let log = Log::open_with(&dir, opts(None)).unwrap();
    let r2 = log.rotate_key(1).unwrap();
    assert_eq!(r2.replaces, r.key);
    grow(&log, 2);
    drop(log);
    let report = verify(&dir, &k0);
    assert_eq!(report.verdict, Verdict::Verified, "{report:#?}");
    assert_eq!(report.keys.unwrap().len(), 3);
    assert_eq!(key_events(&dir), 2);
}

#[test]
fn overlap_zero_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("log");
    let _ = new_log(&dir);
    let log = Log::open_with(&dir, opts(None)).unwrap();
    let err = log.rotate_key(0).unwrap_err().to_string();
    assert!(err.contains("--overlap must be at least 1"), "{err}");
}

/// An overlap the stele.key event cannot carry (past 2^53-1 it is not an
/// I-JSON integer) is refused before anything is written: the log's
/// configuration and directory are unchanged and the log keeps working.
#[test]
fn an_overlap_beyond_the_maximum_is_refused_before_anything_is_written() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("log");
    let k0 = new_log(&dir);
    let config = std::fs::read(dir.join("stele.json")).unwrap();
    let files = || {
        let mut v: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        v.sort();
        v
    };
    let before = files();
    let fs = LogOptions::default().fs;
    for overlap in [
        stele_writer::log::MAX_OVERLAP + 1,
        9_007_199_254_740_993,
        u64::MAX,
    ] {
        let err = stele_writer::log::request_rotation(&dir, fs.as_ref(), overlap, 0)
            .unwrap_err()
            .to_string();
        assert!(err.contains("beyond the maximum 1000000"), "{err}");
    }
    assert_eq!(std::fs::read(dir.join("stele.json")).unwrap(), config);
    assert_eq!(files(), before);
    let log = Log::open_with(&dir, opts(None)).unwrap();
    let _ = log.rotate_key(stele_writer::log::MAX_OVERLAP).unwrap();
    grow(&log, 2);
    drop(log);
    assert_eq!(verify(&dir, &k0).verdict, Verdict::Verified);
}

/// A pending rotation an older stele recorded with an overlap its event
/// cannot carry: opening the log says how to cancel it, `abort_rotation`
/// (`stele key rotate --abort`) cancels it, and the log works again.
#[test]
fn a_pending_rotation_that_cannot_complete_is_named_and_can_be_aborted() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("log");
    let k0 = new_log(&dir);
    let fs = LogOptions::default().fs;
    // As an older stele left it: the request recorded, overlap unchecked.
    let file = stele_writer::log::request_rotation(&dir, fs.as_ref(), 2, 5).unwrap();
    let path = dir.join("stele.json");
    let text = std::fs::read_to_string(&path).unwrap();
    let text = text.replace("\"overlap\": 2", "\"overlap\": 9007199254740993");
    assert!(text.contains("9007199254740993"), "{text}");
    std::fs::write(&path, text).unwrap();
    let err = Log::open_with(&dir, opts(None)).unwrap_err().to_string();
    assert!(
        err.contains("--abort") && err.contains("\"rotation\""),
        "{err}"
    );
    assert_eq!(
        stele_writer::log::abort_rotation(&dir, fs.as_ref()).unwrap(),
        file
    );
    assert!(file.exists(), "the new key's file is kept");
    let log = Log::open_with(&dir, opts(None)).unwrap();
    grow(&log, 2);
    let _ = log.rotate_key(3).unwrap();
    grow(&log, 2);
    drop(log);
    assert_eq!(verify(&dir, &k0).verdict, Verdict::Verified);
    assert_eq!(key_events(&dir), 1);
    // Nothing to cancel now.
    let err = stele_writer::log::abort_rotation(&dir, fs.as_ref())
        .unwrap_err()
        .to_string();
    assert!(err.contains("no rotation under way"), "{err}");
}

/// A failure at each step leaves the log consistent: it opens (completing
/// the rotation when its request was recorded), signs, and verifies from
/// the genesis key, with at most one stele.key event.
#[test]
fn a_failure_at_each_step_of_a_rotation_leaves_a_log_that_opens_and_verifies() {
    // (step, fault, whether the rotation was recorded and so completes on open)
    let steps: [(&str, Op, FileRole, u64, bool); 5] = [
        ("key file", Op::Write, FileRole::Key, 1, false),
        (
            "pending configuration",
            Op::Rename,
            FileRole::Config,
            1,
            false,
        ),
        ("stele.key event", Op::Write, FileRole::Entries, 1, true),
        (
            "covering checkpoint",
            Op::Write,
            FileRole::Checkpoints,
            1,
            true,
        ),
        ("final configuration", Op::Rename, FileRole::Config, 2, true),
    ];
    for (step, op, role, nth, recorded) in steps {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("log");
        let k0 = new_log(&dir);
        let fs = Arc::new(FaultFs::new());
        let log = Log::open_with(&dir, opts(Some(fs.clone()))).unwrap();
        fs.fail_nth(op, Some(role), nth, FaultMode::NotPersisted);
        assert!(
            log.rotate_key(2).is_err(),
            "{step}: the fault fails the rotation"
        );
        assert_eq!(fs.fired().len(), 1, "{step}: {:?}", fs.fired());
        drop(log);
        // Reopened as after a crash.
        let log = Log::open_with(&dir, opts(None)).unwrap();
        let rotated = log.verifier() != k0;
        assert_eq!(rotated, recorded, "{step}: rotation completed on open");
        grow(&log, 3);
        if !recorded {
            // Nothing was recorded: a new rotation works.
            let _ = log.rotate_key(1).unwrap();
            grow(&log, 2);
        }
        drop(log);
        let report = verify(&dir, &k0);
        assert_eq!(report.verdict, Verdict::Verified, "{step}: {report:#?}");
        assert_eq!(key_events(&dir), 1, "{step}: one stele.key event");
        let keys = report.keys.expect("key history");
        assert_eq!(keys.len(), 2, "{step}");
        assert_eq!(keys[1].signed, Some(true), "{step}");
    }
}

/// What `stele serve` does: its checkpoint timer completes a rotation that
/// `stele key rotate` recorded while the writer held the log.
#[test]
fn a_running_writer_completes_a_rotation_handed_to_it() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("log");
    let k0 = new_log(&dir);
    let log = Log::open_with(
        &dir,
        LogOptions {
            checkpoint_every: None,
            checkpoint_interval: Some(Duration::from_millis(20)),
            background_checkpoints: true,
            ..LogOptions::default()
        },
    )
    .unwrap();
    assert!(stele_writer::log::is_locked(&dir).unwrap());
    let fs = LogOptions::default().fs;
    let file = stele_writer::log::request_rotation(&dir, fs.as_ref(), 2, log.size()).unwrap();
    let new = key::load(&file).unwrap().verifier();
    let deadline = Instant::now() + Duration::from_secs(60);
    while log.verifier() != new {
        assert!(
            Instant::now() < deadline,
            "the writer did not complete the rotation"
        );
        let _ = log.append(json!({"actor": "carol"})).unwrap();
        std::thread::yield_now();
    }
    grow(&log, 3);
    drop(log);
    let report = verify(&dir, &k0);
    assert_eq!(report.verdict, Verdict::Verified, "{report:#?}");
    assert_eq!(key_events(&dir), 1);
}

/// `stele monitor DIR` pinned to the genesis key keeps verifying across a
/// rotation, also after a restart when its state checkpoint is signed by
/// the new key only.
#[test]
fn the_monitor_follows_a_rotation_from_the_genesis_key() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("log");
    let k0 = new_log(&dir);
    let state = tmp.path().join("state");
    let monitor = || {
        common::bounded_output(
            std::process::Command::new(env!("CARGO_BIN_EXE_stele"))
                .args(["monitor", dir.to_str().unwrap(), "--key", &k0.to_string()])
                .args(["--state", state.to_str().unwrap(), "--once"]),
            None,
        )
    };
    let out = monitor();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let log = Log::open_with(&dir, opts(None)).unwrap();
    let r = log.rotate_key(1).unwrap();
    grow(&log, 3);
    drop(log);
    for round in 0..2 {
        let out = monitor();
        assert!(
            out.status.success(),
            "round {round}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // The state's checkpoint is now signed by the new key alone.
    let note = std::fs::read(&state).unwrap();
    let sc = SignedCheckpoint::parse(&note).unwrap();
    let ids: Vec<_> = sc.note.signatures.iter().map(|s| s.key_id).collect();
    assert_eq!(ids, vec![r.key.id()]);
    // A checkpoint signed by the retired key alone beyond its range is an alert.
    let signer = key::load(&dir.join("key")).unwrap();
    let log = Log::open_with(&dir, opts(None)).unwrap();
    let _ = log.append(json!({"actor": "mallory"})).unwrap();
    let size = log.size();
    let root = log.view().root(size).unwrap();
    drop(log);
    let forged = stele_core::Checkpoint {
        origin: ORIGIN.into(),
        size,
        root,
        extensions: vec![],
    }
    .sign(&signer)
    .unwrap();
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(dir.join("checkpoints"))
        .unwrap();
    std::io::Write::write_all(&mut f, format!("{}\n{forged}", forged.len()).as_bytes()).unwrap();
    drop(f);
    let out = monitor();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("key_retired"), "{err}");
}
