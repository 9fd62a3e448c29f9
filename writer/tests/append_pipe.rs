//! `stele append` from stdin: input and receipts move independently, so a
//! client may write every event before reading any receipt; over-long input
//! lines are refused without being buffered.

mod common;

use common::*;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::time::Duration;
use stele_core::hash::{Hash, leaf_hash};

#[test]
fn writing_every_event_before_reading_any_receipt_does_not_deadlock() {
    let tmp = tempfile::tempdir().unwrap();
    let (log, vkey) = init(tmp.path());
    // 150k receipts are about 10 MB: far more than the two pipes hold
    // (64 KiB each on Linux), so a single-threaded appender would block
    // writing receipts while this test blocks writing events.
    let n = 150_000u64;
    let mut child = Command::new(env!("CARGO_BIN_EXE_stele"))
        .args(["append", &log])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // A watchdog that turns a deadlock into a failure instead of a hang
    // (generous: the work takes seconds even on a loaded machine).
    let (done_tx, done_rx) = mpsc::channel::<()>();
    let killed = Arc::new(AtomicBool::new(false));
    let pid = child.id();
    let k2 = killed.clone();
    let watchdog = std::thread::spawn(move || {
        if done_rx.recv_timeout(Duration::from_secs(600)).is_err() {
            k2.store(true, Ordering::SeqCst);
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
        }
    });
    let mut input = child.stdin.take().unwrap();
    let mut text = String::new();
    for i in 0..n {
        text.push_str(&format!("{{\"actor\":\"user-{}\",\"n\":{i}}}\n", i % 977));
        if text.len() > 1 << 16 {
            if input.write_all(text.as_bytes()).is_err() {
                break;
            }
            text.clear();
        }
    }
    let _ = input.write_all(text.as_bytes());
    drop(input);
    // Only now read the receipts.
    let out = BufReader::new(child.stdout.take().unwrap());
    let receipts: Vec<(u64, Hash)> = out
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(&l.unwrap()).unwrap();
            (
                v["seq"].as_u64().unwrap(),
                Hash::from_base64(v["leaf_hash"].as_str().unwrap()).unwrap(),
            )
        })
        .collect();
    let status = child.wait().unwrap();
    let _ = done_tx.send(());
    watchdog.join().unwrap();
    assert!(!killed.load(Ordering::SeqCst), "stele append deadlocked");
    assert!(status.success(), "{status:?}");
    assert_eq!(receipts.len() as u64, n);
    for (k, (seq, _)) in receipts.iter().enumerate() {
        assert_eq!(*seq, k as u64 + 1, "receipts in order, one per event");
    }
    let _ = ok(&stele(&["checkpoint", &log])); // sign the tail past the last 1024
    // Every receipt's leaf hash is the hash of the line stored for it.
    let lines = std::fs::read(std::path::Path::new(&log).join("entries.jsonl")).unwrap();
    for ((seq, h), line) in receipts.iter().zip(lines.split(|&b| b == b'\n').skip(1)) {
        assert_eq!(*h, leaf_hash(line), "receipt of entry {seq}");
    }
    assert_verified(&verify_core(&log, &vkey));
}

#[test]
fn an_over_long_input_line_is_refused_by_number_and_the_lines_before_are_kept() {
    let tmp = tempfile::tempdir().unwrap();
    let (log, vkey) = init(tmp.path());
    // Line 3 is 8 MiB: refused after reading at most the entry limit of it.
    let long = format!("{{\"p\":\"{}\"}}", "x".repeat(8 << 20));
    let input = format!("{{\"n\":1}}\n\n{long}\n{{\"n\":4}}\n");
    let out = stele_stdin(&["append", &log], Some(&input));
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("line 3: the line is longer than 65535 bytes, the entry size limit"),
        "{err}"
    );
    assert!(err.contains("nothing from it was written"), "{err}");
    let receipts: Vec<&str> = std::str::from_utf8(&out.stdout).unwrap().lines().collect();
    assert_eq!(receipts.len(), 1, "{receipts:?}");
    assert!(receipts[0].starts_with("{\"seq\":1,"), "{}", receipts[0]);
    // A line under the input limit whose entry would be over it: refused by
    // line number too, with the lines before it kept.
    let near = format!("{{\"p\":\"{}\"}}", "x".repeat(65_500));
    let input = format!("{{\"n\":5}}\n{near}\n");
    let out = stele_stdin(&["append", &log], Some(&input));
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains("line 2: entry would be"), "{err}");
    assert_eq!(std::str::from_utf8(&out.stdout).unwrap().lines().count(), 1);
    let _ = ok(&stele(&["checkpoint", &log])); // the failed runs signed nothing
    let r = verify_core(&log, &vkey);
    assert_verified(&r);
    assert_eq!(r.entries, 3);
}
