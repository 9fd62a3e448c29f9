//! The `stele` binary, end to end, in temporary directories.

mod common;

use common::*;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use stele_core::VerifierKey;
use stele_core::hash::{Hash, leaf_hash};
use stele_core::merkle::{verify_consistency, verify_inclusion};
use stele_core::verify::{Options, Verdict, verify_bytes};

fn b64(v: &serde_json::Value) -> Hash {
    Hash::from_base64(v.as_str().unwrap()).unwrap()
}

#[test]
fn round_trip_append_checkpoint_prove_export_verify() {
    let tmp = tempfile::tempdir().unwrap();
    let (log, vkey) = init(tmp.path());
    assert!(vkey.starts_with("example.com/audit+"), "{vkey}");
    assert_eq!(ok(&stele(&["key", &log])).trim(), vkey);

    let receipts = append(
        &log,
        &[
            r#"{"actor":"alice","action":"login"}"#,
            r#"{"actor":"bob","action":"read","target":"doc/1"}"#,
        ],
    );
    assert_eq!(receipts.len(), 2);
    assert_eq!(receipts[0]["seq"], 1);
    assert_eq!(receipts[1]["seq"], 2);
    // Stdin: one receipt per line, printed as {"seq":N,"leaf_hash":...}.
    let input: String = (0..20).map(|i| format!("{{\"n\":{i}}}\n")).collect();
    let out = ok(&stele_stdin(&["append", &log], Some(&input)));
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 20);
    assert!(
        lines[0].starts_with("{\"seq\":3,\"leaf_hash\":\""),
        "{}",
        lines[0]
    );

    // The receipt's leaf hash is the hash of the line `cat` prints.
    let cat = ok(&stele(&["cat", &log, "--from", "1", "--to", "2"]));
    assert_eq!(
        b64(&receipts[0]["leaf_hash"]),
        leaf_hash(cat.trim_end_matches('\n').as_bytes())
    );

    let note = ok(&stele(&["checkpoint", &log]));
    let size: u64 = note.lines().nth(1).unwrap().parse().unwrap();
    // genesis + 22 events + the access entry of `cat`.
    assert_eq!(size, 24, "checkpoint note:\n{note}");

    for (args, kind) in [
        (vec!["-o", "all.txt"], "log"),
        (vec!["-o", "range.txt", "--from", "5", "--to", "9"], "range"),
        (vec!["-o", "sel.txt", "--entries", "3,17,2"], "entries"),
    ] {
        let out_path = tmp.path().join(args[1]);
        let mut a = vec!["export", log.as_str(), "-o", out_path.to_str().unwrap()];
        a.extend(&args[2..]);
        let _ = ok(&stele(&a));
        let bytes = std::fs::read(&out_path).unwrap();
        let r = verify_bytes(
            Options::new(vec![VerifierKey::parse(&vkey).unwrap()]),
            &bytes,
        );
        assert_eq!(r.kind, kind);
        assert_verified(&r);
        // And through the CLI, with --json.
        let out = stele(&[
            "verify",
            out_path.to_str().unwrap(),
            "--key",
            &vkey,
            "--json",
        ]);
        let report: serde_json::Value = serde_json::from_str(&ok(&out)).unwrap();
        assert_eq!(report["verdict"], "verified");
        assert!(report["failures"].as_array().unwrap().is_empty());
    }
    // The directory holds the exports' stele.access entries, each signed
    // with the read that made it: the log is verified, not partial.
    let out = stele(&["verify", &log, "--key", &vkey, "--json"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "reads leave the log signed: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    // An event appended without a checkpoint: a live log's unsigned tail.
    let _ = append(&log, &[r#"{"actor":"carol","action":"logout"}"#]);
    let r = verify_core(&log, &vkey);
    assert_eq!(r.verdict, Verdict::Partial, "{r:#?}");
    assert!(r.failures.is_empty());
    let out = stele(&["verify", &log, "--key", &vkey, "--json"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "partial exits 1 without the flag"
    );
    let _ = append(&log, &[r#"{"actor":"carol","action":"login"}"#]);
    let out = stele(&[
        "verify",
        &log,
        "--key",
        &vkey,
        "--json",
        "--allow-unsigned-tail",
    ]);
    let report: serde_json::Value = serde_json::from_str(&ok(&out)).unwrap();
    assert_eq!(report["verdict"], "partial", "{report:#}");
    assert!(report["failures"].as_array().unwrap().is_empty());
}

// What `stele prove` prints without --json, from what it prints with it:
// `name value` lines, then the proof's hashes one a line.
fn text_form(json: &serde_json::Value, fields: &[&str]) -> String {
    let mut text = String::new();
    for f in fields {
        match &json[f] {
            serde_json::Value::String(s) => text += &format!("{f} {s}\n"),
            v => text += &format!("{f} {v}\n"),
        }
    }
    for h in json["proof"].as_array().unwrap() {
        text += &format!("{}\n", h.as_str().unwrap());
    }
    text
}

#[test]
fn cli_proofs_verify_with_core() {
    let tmp = tempfile::tempdir().unwrap();
    let (log, _) = init(tmp.path());
    let evs: Vec<String> = (0..40).map(|i| format!("{{\"i\":{i}}}")).collect();
    let refs: Vec<&str> = evs.iter().map(String::as_str).collect();
    let receipts = append(&log, &refs);
    let _ = ok(&stele(&["checkpoint", &log]));
    for index in [0u64, 1, 7, 20, 40] {
        for size in [index + 1, 33, 41] {
            if index >= size {
                continue;
            }
            let out = ok(&stele(&[
                "prove",
                "inclusion",
                &log,
                "--index",
                &index.to_string(),
                "--size",
                &size.to_string(),
                "--json",
            ]));
            let p: serde_json::Value = serde_json::from_str(&out).unwrap();
            assert_eq!(p["index"], index);
            assert_eq!(p["tree_size"], size);
            let proof: Vec<Hash> = p["proof"].as_array().unwrap().iter().map(b64).collect();
            let leaf = b64(&p["leaf_hash"]);
            if index >= 1 {
                assert_eq!(leaf, b64(&receipts[index as usize - 1]["leaf_hash"]));
            }
            verify_inclusion(&leaf, index, size, &proof, &b64(&p["root"])).unwrap();
            // A flipped proof hash must not verify.
            if let Some(first) = proof.first() {
                let mut bad = proof.clone();
                bad[0] = Hash(first.0.map(|b| b ^ 1));
                assert!(verify_inclusion(&leaf, index, size, &bad, &b64(&p["root"])).is_err());
            }
        }
    }
    // Default size: the latest checkpoint (each read above signed its own
    // access record, so it is past the 41 entries appended).
    let note = ok(&stele(&["checkpoint", &log]));
    let latest: u64 = note.lines().nth(1).unwrap().parse().unwrap();
    assert!(latest > 41, "{note}");
    let p: serde_json::Value = serde_json::from_str(&ok(&stele(&[
        "prove",
        "inclusion",
        &log,
        "--index",
        "3",
        "--json",
    ])))
    .unwrap();
    assert_eq!(p["tree_size"], latest);
    for (from, to) in [(1u64, 41u64), (7, 33), (16, 41), (40, 41), (41, 41)] {
        let out = ok(&stele(&[
            "prove",
            "consistency",
            &log,
            "--from",
            &from.to_string(),
            "--to",
            &to.to_string(),
            "--json",
        ]));
        let p: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(
            (p["from"].as_u64(), p["to"].as_u64()),
            (Some(from), Some(to))
        );
        let proof: Vec<Hash> = p["proof"].as_array().unwrap().iter().map(b64).collect();
        verify_consistency(from, to, &b64(&p["old_root"]), &b64(&p["new_root"]), &proof).unwrap();
        // The text form: the same fields as `name value` lines, then the
        // proof's hashes one a line.
        let (f, t) = (from.to_string(), to.to_string());
        let args = ["prove", "consistency", &log, "--from", &f, "--to", &t];
        assert_eq!(
            ok(&stele(&args)),
            text_form(&p, &["from", "to", "old_root", "new_root"])
        );
    }
    let args = ["prove", "inclusion", &log, "--index", "7", "--size", "33"];
    let p: serde_json::Value =
        serde_json::from_str(&ok(&stele(&[&args[..], &["--json"]].concat()))).unwrap();
    assert_eq!(
        ok(&stele(&args)),
        text_form(&p, &["index", "tree_size", "leaf_hash", "root"])
    );
    // The tlog-proof form verifies with core's verifier.
    let out = ok(&stele(&[
        "prove",
        "inclusion",
        &log,
        "--index",
        "5",
        "--format",
        "tlog-proof",
    ]));
    let pk = ok(&stele(&["key", &log]));
    let r = verify_bytes(
        Options::new(vec![VerifierKey::parse(pk.trim()).unwrap()]),
        out.as_bytes(),
    );
    assert_verified(&r);
}

#[test]
fn closed_or_full_standard_output_is_a_clear_error_not_a_panic() {
    let tmp = tempfile::tempdir().unwrap();
    let (log, _) = init(tmp.path());
    let full = std::fs::File::create("/dev/full").unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_stele"))
        .args(["key", &log])
        .stdout(full)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.starts_with("stele: error: cannot write to standard output:"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");

    // A pipe whose reader is gone: `stele cat … | true`.
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_stele"))
        .args(["cat", &log])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked"), "{err}");
    assert_ne!(out.status.code(), Some(101), "{err}");
}

#[test]
fn second_writer_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let (log, _) = init(tmp.path());
    let held = stele_writer::Log::open(Path::new(&log)).unwrap();
    let out = stele(&["append", &log, "--event", r#"{"a":1}"#]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("is locked by another writer"),
        "{}",
        stderr(&out)
    );
    // Same process, second handle.
    match stele_writer::Log::open(Path::new(&log)) {
        Err(stele_writer::Error::Locked { .. }) => {}
        other => panic!("expected Locked, got {other:?}"),
    }
    // Read commands work with --access-log while the writer holds the lock.
    let (other, _) = init(&tmp.path().join("audit"));
    let cat = ok(&stele(&["cat", &log, "--access-log", &other]));
    assert_eq!(cat.lines().count(), 1);
    assert_eq!(event_types(&other).last().unwrap(), "stele.access");
    drop(held);
    let _ = ok(&stele(&["append", &log, "--event", r#"{"a":1}"#]));
}

#[test]
fn group_readable_key_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let (log, _) = init(tmp.path());
    let key = Path::new(&log).join("key");
    assert_eq!(
        std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
        0o600
    );
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = stele(&["append", &log, "--event", r#"{"a":1}"#]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains("has mode 0644"), "{err}");
    assert!(err.contains("chmod 600"), "{err}");
    assert!(!err.contains("PRIVATE+KEY"), "{err}");
    assert_eq!(entries(&log).len(), 1);
}

#[test]
fn external_key_file_and_reuse() {
    let tmp = tempfile::tempdir().unwrap();
    let key = tmp.path().join("k");
    let log = tmp.path().join("log");
    let vk = ok(&stele(&[
        "init",
        log.to_str().unwrap(),
        "--origin",
        "o.example",
        "--key-file",
        key.to_str().unwrap(),
    ]));
    assert!(!log.join("key").exists());
    let text = std::fs::read_to_string(&key).unwrap();
    assert!(text.starts_with("PRIVATE+KEY+o.example+"));
    assert!(!vk.contains("PRIVATE"));
    // A second log signed by the same key.
    let log2 = tmp.path().join("log2");
    let vk2 = ok(&stele(&[
        "init",
        log2.to_str().unwrap(),
        "--origin",
        "o.example",
        "--key-file",
        key.to_str().unwrap(),
    ]));
    assert_eq!(vk, vk2);
    let _ = append(log2.to_str().unwrap(), &[r#"{"x":1}"#]);
    // Not for another origin: its checkpoints would verify under this
    // log's pinned key (red-team finding).
    let log3 = tmp.path().join("log3");
    let out = stele(&[
        "init",
        log3.to_str().unwrap(),
        "--origin",
        "other.example",
        "--key-file",
        key.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("is the key of \"o.example\""), "{err}");
    assert!(!log3.exists());
}

#[test]
fn torn_tail_is_recovered_with_a_recovery_entry() {
    let tmp = tempfile::tempdir().unwrap();
    let (log, vkey) = init(tmp.path());
    let _ = append(&log, &[r#"{"a":1}"#, r#"{"a":2}"#]);
    let _ = ok(&stele(&["checkpoint", &log]));
    let _ = append(&log, &[r#"{"a":3}"#]);
    let path = Path::new(&log).join("entries.jsonl");
    let mut bytes = std::fs::read(&path).unwrap();
    let before = bytes.len();
    bytes.extend_from_slice(br#"{"event":{"a":4},"prev":"00"#);
    std::fs::write(&path, &bytes).unwrap();
    // The raw directory shows the torn tail.
    assert_eq!(verify_core(&log, &vkey).verdict, Verdict::Tampered);
    let r = append(&log, &[r#"{"a":5}"#]);
    assert_eq!(r[0]["seq"], 5, "entry 4 is the recovery entry");
    let es = entries(&log);
    let rec = &es[4]["event"];
    assert_eq!(rec["type"], "stele.recovery");
    assert_eq!(rec["dropped_bytes"], 27);
    assert_eq!(rec["offset"], before as u64);
    assert!(
        rec["reason"]
            .as_str()
            .unwrap()
            .contains("incomplete last line"),
        "{rec}"
    );
    assert_eq!(es[5]["event"]["a"], 5);
    let _ = ok(&stele(&["checkpoint", &log]));
    assert_verified(&verify_core(&log, &vkey));
}

#[test]
fn invalid_last_line_is_cut_but_not_below_a_checkpoint() {
    let tmp = tempfile::tempdir().unwrap();
    let (log, _) = init(tmp.path());
    let _ = append(&log, &[r#"{"a":1}"#, r#"{"a":2}"#]);
    let _ = ok(&stele(&["checkpoint", &log]));
    // Damage the last (signed) entry: refused, nothing changed.
    let path = Path::new(&log).join("entries.jsonl");
    let good = std::fs::read(&path).unwrap();
    let mut bad = good.clone();
    let n = bad.len();
    bad[n - 5] = b'X';
    std::fs::write(&path, &bad).unwrap();
    let out = stele(&["append", &log, "--event", r#"{"a":3}"#]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("entry 2") && err.contains("signed checkpoint of size 3"),
        "{err}"
    );
    assert_eq!(
        std::fs::read(&path).unwrap(),
        bad,
        "a refused open changes nothing"
    );
}

#[test]
fn mid_file_corruption_refuses_to_open_naming_the_entry() {
    let tmp = tempfile::tempdir().unwrap();
    let (log, vkey) = init(tmp.path());
    let _ = append(
        &log,
        &[
            r#"{"who":"alice"}"#,
            r#"{"who":"bob"}"#,
            r#"{"who":"carol"}"#,
            r#"{"who":"dave"}"#,
        ],
    );
    let path = Path::new(&log).join("entries.jsonl");
    let text = std::fs::read_to_string(&path).unwrap();
    let tampered = text.replace("\"bob\"", "\"eve\"");
    assert_ne!(text, tampered);
    std::fs::write(&path, &tampered).unwrap();
    let out = stele(&["append", &log, "--event", r#"{"a":1}"#]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    // "bob" is entry 2; entry 3's prev no longer matches it.
    assert!(
        err.contains("entry 3") && err.contains("entry 2 hashes to"),
        "{err}"
    );
    assert!(
        err.contains("not a torn tail") || err.contains("signed checkpoint"),
        "{err}"
    );
    assert_eq!(std::fs::read_to_string(&path).unwrap(), tampered);
    // verify exits 1 and names the damage too.
    let out = stele(&["verify", &log, "--key", &vkey]);
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn access_events_after_export_prove_verify_cat() {
    let tmp = tempfile::tempdir().unwrap();
    let (log, vkey) = init(tmp.path());
    let _ = append(&log, &[r#"{"a":1}"#, r#"{"a":2}"#, r#"{"a":3}"#]);
    let out = tmp.path().join("x.txt");
    let _ = ok(&stele(&[
        "export",
        &log,
        "-o",
        out.to_str().unwrap(),
        "--from",
        "1",
        "--to",
        "3",
    ]));
    let _ = ok(&stele(&[
        "prove",
        "inclusion",
        &log,
        "--index",
        "2",
        "--json",
    ]));
    let _ = ok(&stele(&["prove", "consistency", &log, "--from", "2"]));
    let _ = ok(&stele(&[
        "verify",
        &log,
        "--key",
        &vkey,
        "--allow-unsigned-tail",
    ]));
    let _ = ok(&stele(&["cat", &log, "--from", "0", "--to", "2"]));
    let es = entries(&log);
    let access: Vec<&serde_json::Value> = es
        .iter()
        .map(|e| &e["event"])
        .filter(|e| e["type"] == "stele.access")
        .collect();
    let cmds: Vec<&str> = access
        .iter()
        .map(|e| e["target"].as_str().unwrap())
        .collect();
    assert_eq!(
        cmds,
        [
            "export",
            "prove inclusion",
            "prove consistency",
            "verify",
            "cat"
        ]
    );
    assert_eq!(access[0]["read"]["entries"], serde_json::json!([1, 3]));
    assert_eq!(access[0]["read"]["kind"], "range");
    assert_eq!(access[0]["via"], "cli");
    assert!(access[0]["cli"]["uid"].is_u64());
    // The same shape as the HTTP service's records: no argument list.
    assert!(access[0].get("args").is_none());
    assert_eq!(access[1]["read"]["inclusion"], 2);
    // The earlier reads' access entries were signed with them.
    assert_eq!(access[3]["read"]["verdict"], "verified");
    // Reserved types cannot be forged by users.
    let bad = stele(&["append", &log, "--event", r#"{"type":"stele.access"}"#]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(stderr(&bad).contains("reserved"));
    let _ = ok(&stele(&["checkpoint", &log]));
    assert_verified(&verify_core(&log, &vkey));
}

#[test]
fn bad_stdin_line_names_the_line_and_writes_nothing_from_it() {
    let tmp = tempfile::tempdir().unwrap();
    let (log, _) = init(tmp.path());
    let out = stele_stdin(
        &["append", &log],
        Some("{\"a\":1}\n{\"b\":2}\n{\"c\":1,\"c\":2}\n{\"d\":4}\n"),
    );
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains("line 3") && err.contains("duplicate"), "{err}");
    // Lines 1 and 2 were acknowledged; 3 and 4 were not written.
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 2);
    let es = entries(&log);
    assert_eq!(es.len(), 3);
    assert_eq!(es[2]["event"]["b"], 2);
    let out = stele_stdin(&["append", &log], Some("[1,2]\n"));
    assert!(
        stderr(&out).contains("line 1: event is not a JSON object"),
        "{}",
        stderr(&out)
    );
    let out = stele(&["verify", &log]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("did you forget --key?"));
}

#[test]
fn monitor_alerts_on_rollback() {
    let tmp = tempfile::tempdir().unwrap();
    let (log, vkey) = init(tmp.path());
    let _ = append(&log, &[r#"{"a":1}"#]);
    let _ = ok(&stele(&["checkpoint", &log]));
    // Keep a copy of the log as it is now (3 entries... 2 entries signed).
    let old = tmp.path().join("old");
    copy_dir(Path::new(&log), &old);
    let _ = append(&log, &[r#"{"a":2}"#, r#"{"a":3}"#]);
    let _ = ok(&stele(&["checkpoint", &log]));
    let state = tmp.path().join("state");
    let alert = tmp.path().join("alert.json");
    let cmd = format!("cat > {}", alert.display());
    let out = stele(&[
        "monitor",
        &log,
        "--key",
        &vkey,
        "--state",
        state.to_str().unwrap(),
        "--once",
        "--on-alert",
        &cmd,
    ]);
    let _ = ok(&out);
    assert!(std::fs::read_to_string(&state).unwrap().contains("\n4\n"));
    assert!(!alert.exists());
    // Roll the log back to the copy.
    std::fs::remove_dir_all(&log).unwrap();
    copy_dir(&old, Path::new(&log));
    let out = stele(&[
        "monitor",
        &log,
        "--key",
        &vkey,
        "--state",
        state.to_str().unwrap(),
        "--once",
        "--on-alert",
        &cmd,
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("ALERT rollback"), "{}", stderr(&out));
    let a: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&alert).unwrap()).unwrap();
    assert_eq!(a["alert"], "rollback");
    assert_eq!(a["trusted_size"], 4);
    // The state still holds the larger checkpoint.
    assert!(std::fs::read_to_string(&state).unwrap().contains("\n4\n"));
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let _ = std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

#[test]
fn help_everywhere() {
    for args in [
        vec!["--help"],
        vec!["init", "--help"],
        vec!["append", "--help"],
        vec!["prove", "inclusion", "--help"],
        vec!["prove", "consistency", "--help"],
        vec!["export", "--help"],
        vec!["verify", "--help"],
        vec!["monitor", "--help"],
        vec!["cat", "--help"],
        vec!["bench", "append", "--help"],
    ] {
        let out = ok(&stele(&args));
        assert!(out.contains("Usage:"), "{args:?}");
    }
    assert!(ok(&stele(&["verify", "--help"])).contains("line numbers"));
    assert!(ok(&stele(&["cat", "--help"])).contains("--access-log"));
    let out = stele(&["frobnicate"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn init_refuses_an_origin_that_cannot_be_a_key_name() {
    let tmp = tempfile::tempdir().unwrap();
    let log = tmp.path().join("log");
    let out = stele(&["init", log.to_str().unwrap(), "--origin", "my log"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        stderr(&out).lines().next().unwrap_or_default(),
        "stele: error: origin \"my log\" cannot be a key name: it is empty or has white space or '+'"
    );
    assert!(!log.exists(), "nothing was created");
}

#[test]
fn reads_leave_the_log_signed_so_verify_dir_stays_verified() {
    // Each CLI read appends a stele.access entry; it is signed with it, so a
    // later `stele verify DIR` is not `partial` because of earlier reads.
    let tmp = tempfile::tempdir().unwrap();
    let (log, vkey) = init(tmp.path());
    let _ = append(&log, &[r#"{"actor":"alice","action":"login"}"#]);
    let _ = ok(&stele(&["checkpoint", &log]));
    let _ = ok(&stele(&["cat", &log]));
    for round in 0..2 {
        let out = stele(&["verify", &log, "--key", &vkey, "--json"]);
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(
            (out.status.code(), &report["verdict"]),
            (Some(0), &serde_json::json!("verified")),
            "verify DIR, round {round}: {report:#}"
        );
    }
}

#[test]
fn verify_dir_never_signs_a_tail_it_did_not_verify() {
    // A verifier review: `stele verify DIR` recorded the check and signed a
    // checkpoint whatever the verdict, so an unsigned entry changed on disk
    // was reported once (partial), then signed by the check itself, and
    // the next check said verified.
    let tmp = tempfile::tempdir().unwrap();
    let (log, vkey) = init(tmp.path());
    let _ = append(&log, &[r#"{"action":"pay","amount":5}"#]);
    let _ = ok(&stele(&["checkpoint", &log]));
    let _ = append(&log, &[r#"{"action":"pay","amount":6}"#]);
    let entries = Path::new(&log).join("entries.jsonl");
    let text = std::fs::read_to_string(&entries).unwrap();
    assert_eq!(text.matches("\"amount\":6").count(), 1, "{text}");
    std::fs::write(&entries, text.replace("\"amount\":6", "\"amount\":6000")).unwrap();
    for round in 0..2 {
        let out = stele(&["verify", &log, "--key", &vkey, "--json"]);
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(
            (out.status.code(), &report["verdict"]),
            (Some(1), &serde_json::json!("partial")),
            "verify DIR, round {round}: {report:#}"
        );
        // Partial is not "did not verify": the note says why nothing was
        // signed and what signs the tail.
        assert!(
            stderr(&out).contains("no checkpoint was signed")
                && stderr(&out).contains("stele checkpoint")
                && !stderr(&out).contains("did not verify"),
            "{}",
            stderr(&out)
        );
    }
}

/// `stele verify`'s text output goes to a terminal: a downloaded file's name
/// carrying an escape sequence (which could rewrite the verdict line) is
/// printed escaped, and so is every other control or bidi character.
#[test]
fn verify_text_output_escapes_what_a_terminal_would_act_on() {
    let tmp = tempfile::tempdir().unwrap();
    let (log, vkey) = init(&tmp.path().join("log"));
    let _ = append(&log, &[r#"{"n":1}"#]);
    let name = tmp
        .path()
        .join("audit\u{1b}[1A\u{1b}[2Kverified\u{202e}.stele");
    let _ = ok(&stele(&["export", &log, "-o", name.to_str().unwrap()]));
    let out = stele(&["verify", name.to_str().unwrap(), "--key", &vkey]);
    let text = String::from_utf8(out.stdout.clone()).unwrap();
    assert!(
        !text.contains('\u{1b}') && !text.contains('\u{202e}'),
        "{text:?}"
    );
    assert!(
        text.contains("audit\\u{001B}[1A") && text.contains("\\u{202E}"),
        "{text}"
    );
    assert!(text.starts_with("verified"), "{text}");
}

// An export repeating its final checkpoint many times verifies (each copy's
// signatures are checked once: red-team finding, 200,000 copies took 40
// times as long as a normal export), and a copy changed in one byte of its
// signature is still caught: only byte-identical notes share a result.
#[test]
fn repeated_checkpoints_verify_once_and_a_changed_copy_is_caught() {
    let tmp = tempfile::tempdir().unwrap();
    let log = tmp.path().join("log");
    let vk = ok(&stele(&[
        "init",
        log.to_str().unwrap(),
        "--origin",
        "r.example",
    ]));
    let _ = append(log.to_str().unwrap(), &[r#"{"x":1}"#, r#"{"x":2}"#]);
    let out = tmp.path().join("e.stele");
    let _ = ok(&stele(&[
        "export",
        log.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ]));
    let text = std::fs::read_to_string(&out).unwrap();
    let at = text.rfind("checkpoint\n").unwrap();
    let block = &text[at..];
    let verify = |body: &str| {
        let f = tmp.path().join("v.stele");
        std::fs::write(&f, body).unwrap();
        stele(&["verify", f.to_str().unwrap(), "--key", vk.trim()])
    };
    let repeated = format!("{text}{}", block.repeat(2000));
    let o = verify(&repeated);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stdout));
    assert!(String::from_utf8_lossy(&o.stdout).starts_with("verified"));
    // One copy among them with one signature character changed.
    // "— NAME BASE64": the base64 holds the key ID (4 bytes), then the signature.
    let line = block.rfind("— ").unwrap() + "— ".len();
    let sig = line + block[line..].find(' ').unwrap() + 1;
    let mut bad = block.to_string();
    let c = if &bad[sig + 10..sig + 11] == "A" {
        "B"
    } else {
        "A"
    };
    bad.replace_range(sig + 10..sig + 11, c);
    let o = verify(&format!(
        "{text}{}{bad}{}",
        block.repeat(1000),
        block.repeat(1000)
    ));
    assert!(!o.status.success());
    let report = String::from_utf8_lossy(&o.stdout);
    assert!(
        report.starts_with("TAMPERED") || report.contains("signature"),
        "{report}"
    );
}
