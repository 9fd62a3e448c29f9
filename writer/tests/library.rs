//! The library: faults, concurrency, clock, derived-file rebuilds.

mod common;

use serde_json::json;
use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use stele_core::verify::{Options, verify_bytes};
use stele_writer::fs::FileRole;
use stele_writer::testing::{FaultFs, FaultMode, Op};
use stele_writer::{Error, Log, LogOptions, key};

fn new_log(dir: &Path, opts: LogOptions) -> (Log, stele_core::VerifierKey) {
    let signer = key::generate("test.example/log").unwrap();
    let log = Log::create_with(dir, "test.example/log", &signer, None, opts).unwrap();
    let vk = log.verifier();
    (log, vk)
}

fn check(dir: &Path, vk: &stele_core::VerifierKey) {
    let log = Log::open(dir).unwrap();
    let _ = log.checkpoint().unwrap();
    drop(log);
    let r = stele_writer::verify_dir(dir, Options::new(vec![vk.clone()]), &mut |_, _| {}).unwrap();
    common::assert_verified(&r);
}

#[test]
fn failed_fsync_poisons_until_reopen() {
    for mode in [FaultMode::NotPersisted, FaultMode::Persisted] {
        let tmp = tempfile::tempdir().unwrap();
        let fs = Arc::new(FaultFs::new());
        let opts = LogOptions {
            fs: fs.clone(),
            ..LogOptions::default()
        };
        let (log, vk) = new_log(tmp.path(), opts);
        let _ = log.append(json!({"n": 1})).unwrap();
        fs.fail_nth(Op::Sync, Some(FileRole::Entries), 1, mode);
        let e = log.append(json!({"n": 2})).unwrap_err();
        assert!(matches!(e, Error::Poisoned { .. }), "{e}");
        assert!(e.to_string().contains("injected fdatasync failure"), "{e}");
        // No retry: every later append and checkpoint fails too.
        let e = log.append(json!({"n": 3})).unwrap_err();
        assert!(matches!(e, Error::Poisoned { .. }), "{e}");
        assert!(log.checkpoint().is_err());
        assert_eq!(fs.fired().len(), 1);
        drop(log);
        // Reopened: the acknowledged entry is there; n=2 may or may not be
        // (its fsync's outcome is unknown), n=3 never is.
        let log = Log::open(tmp.path()).unwrap();
        let view = log.view();
        let n: Vec<serde_json::Value> = (1..view.size())
            .map(|i| serde_json::from_slice::<serde_json::Value>(&view.entry(i).unwrap()).unwrap()["event"]["n"].clone())
            .collect();
        assert_eq!(n[0], 1);
        assert!(!n.contains(&json!(3)));
        let _ = log.append(json!({"n": 4})).unwrap();
        drop(log);
        check(tmp.path(), &vk);
    }
}

#[test]
fn failed_write_is_cut_back_and_the_log_goes_on() {
    for mode in [
        FaultMode::NotPersisted,
        FaultMode::Partial,
        FaultMode::Persisted,
    ] {
        let tmp = tempfile::tempdir().unwrap();
        let fs = Arc::new(FaultFs::new());
        let opts = LogOptions {
            fs: fs.clone(),
            ..LogOptions::default()
        };
        let (log, vk) = new_log(tmp.path(), opts);
        let _ = log.append(json!({"n": 1})).unwrap();
        let len = std::fs::metadata(tmp.path().join("entries.jsonl"))
            .unwrap()
            .len();
        fs.fail_nth(Op::Write, Some(FileRole::Entries), 1, mode);
        let e = log
            .append_batch(vec![json!({"n": 2}), json!({"n": 3})])
            .unwrap_err();
        assert!(
            e.to_string().contains("injected write failure"),
            "{mode:?}: {e}"
        );
        // Nothing unacknowledged is left in the file.
        assert_eq!(
            std::fs::metadata(tmp.path().join("entries.jsonl"))
                .unwrap()
                .len(),
            len,
            "{mode:?}"
        );
        // Not poisoned: the next append reuses the seq.
        let r = log.append(json!({"n": 4})).unwrap();
        assert_eq!(r.seq, 2);
        drop(log);
        check(tmp.path(), &vk);
    }
}

#[test]
fn failed_checkpoint_fsync_poisons_and_failed_derived_write_is_repaired() {
    let tmp = tempfile::tempdir().unwrap();
    let fs = Arc::new(FaultFs::new());
    let opts = LogOptions {
        fs: fs.clone(),
        ..LogOptions::default()
    };
    let (log, vk) = new_log(tmp.path(), opts.clone());
    let _ = log.append(json!({"n": 1})).unwrap();
    fs.fail_nth(
        Op::Sync,
        Some(FileRole::Checkpoints),
        1,
        FaultMode::NotPersisted,
    );
    assert!(matches!(log.checkpoint(), Err(Error::Poisoned { .. })));
    assert!(log.append(json!({"n": 2})).is_err());
    drop(log);
    // A failed tree write: the entry is durable, the writer stops, reopen rebuilds.
    let log = Log::open_with(tmp.path(), opts).unwrap();
    fs.fail_nth(Op::Write, Some(FileRole::Tree), 1, FaultMode::Partial);
    let r = log.append(json!({"n": 3})).unwrap();
    assert!(matches!(
        log.append(json!({"n": 4})),
        Err(Error::Poisoned { .. })
    ));
    drop(log);
    let log = Log::open(tmp.path()).unwrap();
    let view = log.view();
    assert_eq!(view.leaf_hash(r.seq).unwrap(), r.leaf_hash);
    drop(view);
    drop(log);
    check(tmp.path(), &vk);
}

#[test]
fn sixteen_threads_get_distinct_seqs_and_share_fsyncs() {
    let tmp = tempfile::tempdir().unwrap();
    let (log, vk) = new_log(tmp.path(), LogOptions::default());
    let log = Arc::new(log);
    let handles: Vec<_> = (0..16)
        .map(|t| {
            let log = log.clone();
            std::thread::spawn(move || {
                (0..50)
                    .map(|i| log.append(json!({"t": t, "i": i})).unwrap())
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let mut seqs = BTreeSet::new();
    let mut all = Vec::new();
    for h in handles {
        for r in h.join().unwrap() {
            assert!(seqs.insert(r.seq), "seq {} handed out twice", r.seq);
            all.push(r);
        }
    }
    assert_eq!(seqs.len(), 800);
    assert_eq!(*seqs.first().unwrap(), 1);
    assert_eq!(*seqs.last().unwrap(), 800);
    let view = log.view();
    for r in all {
        assert_eq!(view.leaf_hash(r.seq).unwrap(), r.leaf_hash);
    }
    drop(view);
    drop(Arc::try_unwrap(log).unwrap());
    check(tmp.path(), &vk);
}

#[test]
fn timestamps_never_decrease_when_the_clock_steps_back() {
    let tmp = tempfile::tempdir().unwrap();
    let now = Arc::new(AtomicI64::new(1_800_000_000_000_000));
    let n2 = now.clone();
    let opts = LogOptions {
        clock: Arc::new(move || n2.load(Ordering::SeqCst)),
        ..LogOptions::default()
    };
    let (log, vk) = new_log(tmp.path(), opts);
    let _ = log.append(json!({"n": 1})).unwrap();
    now.store(1_700_000_000_000_000, Ordering::SeqCst); // a step backwards
    let _ = log.append(json!({"n": 2})).unwrap();
    let view = log.view();
    let ts = |i| {
        let v: serde_json::Value = serde_json::from_slice(&view.entry(i).unwrap()).unwrap();
        v["ts"].as_str().unwrap().to_string()
    };
    assert_eq!(ts(1), "2027-01-15T08:00:00.000000Z");
    assert_eq!(ts(2), ts(1));
    drop(view);
    drop(log);
    check(tmp.path(), &vk);
}

#[test]
fn derived_files_are_rebuilt_when_missing_or_wrong() {
    let tmp = tempfile::tempdir().unwrap();
    let (log, vk) = new_log(tmp.path(), LogOptions::default());
    let rs = log
        .append_batch((0..100).map(|i| json!({"i": i})).collect())
        .unwrap();
    let _ = log.checkpoint().unwrap();
    drop(log);
    std::fs::remove_file(tmp.path().join("tree")).unwrap();
    let mut idx = std::fs::read(tmp.path().join("index")).unwrap();
    idx[80] ^= 0xff;
    idx.truncate(idx.len() - 12);
    std::fs::write(tmp.path().join("index"), &idx).unwrap();
    let log = Log::open(tmp.path()).unwrap();
    let view = log.view();
    for r in &rs {
        assert_eq!(view.leaf_hash(r.seq).unwrap(), r.leaf_hash);
        let line = view.entry(r.seq).unwrap();
        assert_eq!(stele_core::leaf_hash(&line), r.leaf_hash);
    }
    // A flipped stored hash is found and rewritten too.
    drop(view);
    drop(log);
    let mut tree = std::fs::read(tmp.path().join("tree")).unwrap();
    tree[32 * 50] ^= 1;
    std::fs::write(tmp.path().join("tree"), &tree).unwrap();
    let log = Log::open(tmp.path()).unwrap();
    let cp = log.checkpoint().unwrap();
    let view = log.view();
    let proof = view.inclusion_proof(40, cp.checkpoint.size).unwrap();
    stele_core::merkle::verify_inclusion(
        &view.leaf_hash(40).unwrap(),
        40,
        cp.checkpoint.size,
        &proof,
        &cp.checkpoint.root,
    )
    .unwrap();
    let mut export = Vec::new();
    view.export_log(&mut export, &mut |_| {}).unwrap();
    common::assert_verified(&verify_bytes(Options::new(vec![vk.clone()]), &export));
    drop(view);
    drop(log);
    check(tmp.path(), &vk);
}

#[test]
fn batches_are_all_or_nothing_and_reserved_types_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let (log, _) = new_log(tmp.path(), LogOptions::default());
    let e = log
        .append_batch(vec![json!({"ok": 1}), json!("not an object")])
        .unwrap_err();
    assert!(matches!(e, Error::BadEvent { index: 1, .. }), "{e}");
    let e = log.append(json!({"type": "stele.genesis"})).unwrap_err();
    assert!(e.to_string().contains("reserved"), "{e}");
    let big = "x".repeat(70_000);
    let e = log.append(json!({ "big": big })).unwrap_err();
    assert!(e.to_string().contains("more than the limit"), "{e}");
    assert_eq!(log.size(), 1);
    assert_eq!(log.append(json!({"ok": 2})).unwrap().seq, 1);
}

/// Big batches are built on several threads straight into the pending
/// buffer: an event refused part way (by canonical JSON on another thread's
/// part, or as too large once its line is built after others) names its
/// index and leaves nothing behind; the next batch chains as if none came.
#[test]
fn a_refused_event_in_a_big_batch_leaves_nothing_behind() {
    let tmp = tempfile::tempdir().unwrap();
    let (log, vk) = new_log(tmp.path(), LogOptions::default());
    let batch = |bad: usize, ev: serde_json::Value| -> Vec<serde_json::Value> {
        (0..1500)
            .map(|i| {
                if i == bad {
                    ev.clone()
                } else {
                    json!({ "i": i })
                }
            })
            .collect()
    };
    let big = json!({ "big": "x".repeat(70_000) });
    let e = log.append_batch(batch(1200, big)).unwrap_err();
    assert!(matches!(e, Error::BadEvent { index: 1200, .. }), "{e}");
    let mut deep = json!(1);
    for _ in 0..70 {
        deep = json!([deep]);
    }
    let e = log
        .append_batch(batch(1400, json!({ "deep": deep })))
        .unwrap_err();
    assert!(matches!(e, Error::BadEvent { index: 1400, .. }), "{e}");
    assert_eq!(log.size(), 1);
    let r = log.append_batch(batch(usize::MAX, json!(null))).unwrap();
    assert_eq!((r[0].seq, r[1499].seq), (1, 1500));
    let line = log.view().entry(1500).unwrap();
    assert!(
        line.starts_with(br#"{"event":{"i":1499},"prev":""#),
        "{line:?}"
    );
    drop(log);
    check(tmp.path(), &vk);
}

#[test]
fn automatic_checkpoints_every_n_entries_and_on_a_timer() {
    let tmp = tempfile::tempdir().unwrap();
    let opts = LogOptions {
        checkpoint_every: Some(10),
        checkpoint_interval: None,
        ..LogOptions::default()
    };
    let (log, _) = new_log(tmp.path(), opts);
    for i in 0..25 {
        let _ = log.append(json!({ "i": i })).unwrap();
    }
    let sizes: Vec<u64> = log
        .view()
        .checkpoints()
        .iter()
        .map(|c| c.checkpoint.size)
        .collect();
    assert_eq!(sizes, [1, 11, 21]);
    drop(log);
    let opts = LogOptions {
        checkpoint_every: None,
        checkpoint_interval: Some(std::time::Duration::from_millis(50)),
        background_checkpoints: true,
        ..LogOptions::default()
    };
    let log = Log::open_with(tmp.path(), opts).unwrap();
    let _ = log.append(json!({"late": true})).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1500));
    assert_eq!(log.view().latest_checkpoint().unwrap().checkpoint.size, 27);
}

// `verify_dir` reads the entries straight into the verifier's buffer and
// cuts a chunk only where a checkpoint note or sealed-field records go: its
// report is byte for byte the stream verifier's on the export of the same
// log, over dense checkpoints (a cut in most chunks), long runs without any
// (no cut), and sealed records here and there.
#[test]
fn verify_dir_reports_what_the_export_reports_across_chunks_and_cuts() {
    let tmp = tempfile::tempdir().unwrap();
    let opts = LogOptions {
        checkpoint_every: None,
        checkpoint_interval: None,
        seal: stele_writer::sealed::SealConfig {
            seal: vec!["/ip".into()],
            subject: "/actor".into(),
        },
        ..LogOptions::default()
    };
    let (log, vk) = new_log(tmp.path(), opts);
    let vectors = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/vectors/sealed");
    let ids = stele_seal::Identity::parse_file(
        &std::fs::read_to_string(vectors.join("auditor.key")).unwrap(),
    )
    .unwrap();
    let recipient = ids[0].recipient();
    let _ = log.add_auditor(&recipient, "test").unwrap();
    let pad = "x".repeat(200);
    let entries = tmp.path().join("entries.jsonl");
    let (mut n, mut last_len, mut edges) = (0u64, 0u64, 0);
    for (count, every, sealed) in [
        (600u64, 7u64, false),
        (6000, 5000, false),
        (300, 40, true),
        (5000, 0, false),
    ] {
        for i in 0..count {
            let mut ev =
                json!({"action": "read", "actor": format!("a{}", n % 17), "n": n, "pad": pad});
            if sealed && i % 3 == 0 {
                ev["ip"] = json!(format!("192.0.2.{}", n % 250));
            }
            let _ = log.append(ev).unwrap();
            n += 1;
            // Also a checkpoint after the last line that fits before a MiB
            // boundary (the next one, about as long, would not): the last
            // whole line of a 1 MiB read, the edge of the no-cut path.
            let len = std::fs::metadata(&entries).unwrap().len();
            let room = (1 << 20) - len % (1 << 20);
            let edge = room + 4 < len - last_len;
            last_len = len;
            if edge {
                edges += 1;
            }
            if edge || (every > 0 && (i + 1) % every == 0) {
                let _ = log.checkpoint().unwrap();
            }
        }
    }
    assert!(edges >= 2, "{edges} checkpoints at a read's edge");
    let _ = log.checkpoint().unwrap();
    let view = log.view();
    let mut export = Vec::new();
    view.export_log_revealed(std::slice::from_ref(&recipient), &mut export, &mut |_| {})
        .unwrap();
    drop(view);
    drop(log);
    assert!(
        export.len() > 3 << 20,
        "{} bytes: several 1 MiB reads",
        export.len()
    );
    let want = verify_bytes(Options::new(vec![vk.clone()]), &export);
    common::assert_verified(&want);
    let have = stele_writer::verify_dir_revealed(
        tmp.path(),
        Options::new(vec![vk.clone()]),
        &[recipient],
        &mut |_, _| {},
    )
    .unwrap();
    assert_eq!(have, want);
}
